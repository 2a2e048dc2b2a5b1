// Socket.IO 4 on the ws API: engine.io's `wsEngine` set to each implementation's
// WebSocketServer, driven by socket.io-client (its own Node client, which runs on the real ws)
// over the websocket transport only. Every scenario runs on ws first (the baseline), then on
// duplex-ws/ws.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket as NetSocket } from 'node:net';
import { Server, type Socket as ServerSocket, type ServerOptions } from 'socket.io';
import { io as ioClient, type Socket as ClientSocket, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import { WebSocket as WsClient, type WebSocket as WsWebSocket } from 'ws';
import { IMPL_NAMES, useImpl, next, until, within, pattern, type Impl } from './impls.js';

const TEST_TIMEOUT = 20_000;
const MiB = 1024 * 1024;

/** The server side of the engine.io websocket transport: the ws-API socket it runs on. */
function engineWebSocket(socket: ServerSocket): WsWebSocket {
  return (socket.conn.transport as unknown as { socket: WsWebSocket }).socket;
}

/** The client side: engine.io-client's websocket transport wraps a real ws client. */
function clientWebSocket(client: ClientSocket): WsWebSocket {
  return (client.io.engine.transport as unknown as { ws: WsWebSocket }).ws;
}

/** The TCP socket under the client's ws. */
function clientTcp(client: ClientSocket): NetSocket {
  return (clientWebSocket(client) as unknown as { _socket: NetSocket })._socket;
}

/** The TCP socket under a server-side connection (the upgraded request's socket). */
function serverTcp(socket: ServerSocket): NetSocket {
  return socket.conn.request.socket as NetSocket;
}

interface IoFixture {
  io: Server;
  http: HttpServer;
  url: string;
  /** Server sockets in connection order. */
  connections: ServerSocket[];
  /** Connect a socket.io client over the websocket transport; resolves once connected. */
  connect(options?: Partial<ManagerOptions & SocketOptions>): Promise<ClientSocket>;
  /** The server socket of a connected client. */
  peer(client: ClientSocket): ServerSocket;
  /** Disconnect every client and close the server. */
  close(): Promise<void>;
}

async function startIo(impl: Impl, options: Partial<ServerOptions> = {}): Promise<IoFixture> {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], wsEngine: impl.WebSocketServer, ...options });
  const connections: ServerSocket[] = [];
  io.on('connection', (socket) => void connections.push(socket));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const clients: ClientSocket[] = [];
  return {
    io,
    http,
    url,
    connections,
    async connect(clientOptions = {}) {
      const client = ioClient(url, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 3000, ...clientOptions });
      clients.push(client);
      await within(
        new Promise<void>((resolve, reject) => {
          client.once('connect', resolve);
          client.once('connect_error', reject);
        }),
        5000,
        'the socket.io client to connect',
      );
      return client;
    },
    peer(client) {
      const socket = io.of('/').sockets.get(client.id ?? '');
      assert.ok(socket, `no server socket for client ${client.id}`);
      return socket;
    },
    async close() {
      for (const client of clients) client.disconnect();
      if (http.listening) await within(new Promise<void>((resolve) => void io.close(() => resolve())), 5000, 'io.close()');
    },
  };
}

for (const name of IMPL_NAMES) {
  describe(`Socket.IO 4 with wsEngine = ${name}'s WebSocketServer`, () => {
    let impl: Impl;
    before(() => {
      impl = useImpl(name);
    });

    test('connects over the websocket transport, on an engine socket of this implementation', { timeout: TEST_TIMEOUT }, async (t) => {
      const s = await startIo(impl);
      t.after(() => s.close());
      const client = await s.connect({ auth: { token: 'abc' }, query: { room: 'lobby' } });
      const peer = s.peer(client);
      assert.equal(client.io.engine.transport.name, 'websocket');
      assert.equal(peer.conn.transport.name, 'websocket');
      assert.ok(engineWebSocket(peer) instanceof impl.WebSocket, 'the engine socket is an instance of the implementation under test');
      assert.equal(engineWebSocket(peer).readyState, impl.WebSocket.OPEN);
      assert.deepEqual(peer.handshake.auth, { token: 'abc' });
      assert.equal(peer.handshake.query.room, 'lobby');
      assert.equal(peer.handshake.query.transport, 'websocket');

      const disconnected = next<[string]>(peer, 'disconnect');
      client.disconnect();
      assert.equal((await disconnected)[0], 'client namespace disconnect');
    });

    test("engine.io's extra headers reach the 101 through the server's 'headers' event", { timeout: TEST_TIMEOUT }, async (t) => {
      const s = await startIo(impl);
      t.after(() => s.close());
      s.io.engine.on('initial_headers', (headers: Record<string, string>) => {
        headers['set-cookie'] = 'io=abc; Path=/; HttpOnly';
      });
      s.io.engine.on('headers', (headers: Record<string, string>) => {
        headers['x-engine'] = 'yes';
      });
      // A bare ws client on the engine.io endpoint, to see the 101's headers and the open packet.
      const raw = new WsClient(`${s.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
      t.after(() => raw.terminate());
      // Both awaited from the start: the open packet may come in the same read as the 101.
      const upgraded = next<[IncomingMessage]>(raw, 'upgrade');
      const firstMessage = next<[Buffer, boolean]>(raw, 'message');
      const [response] = await upgraded;
      assert.equal(response.headers['set-cookie']?.[0], 'io=abc; Path=/; HttpOnly');
      assert.equal(response.headers['x-engine'], 'yes');
      const [open] = await firstMessage;
      assert.match(open.toString(), /^0\{"sid":"[^"]+","upgrades":\[\],"pingInterval":\d+/);
    });

    test('the engine.io heartbeat (ping/pong packets) keeps the connection up', { timeout: TEST_TIMEOUT }, async (t) => {
      const s = await startIo(impl, { pingInterval: 25, pingTimeout: 200 });
      t.after(() => s.close());
      const client = await s.connect();
      let heartbeats = 0;
      s.peer(client).conn.on('heartbeat', () => void heartbeats++);
      await until(() => heartbeats >= 4, 3000, 'four heartbeats');
      assert.ok(client.connected);
      assert.ok(s.peer(client).connected);
    });

    test('emit with acknowledgement, both ways, many in flight', { timeout: TEST_TIMEOUT }, async (t) => {
      const s = await startIo(impl);
      t.after(() => s.close());
      s.io.on('connection', (socket) => {
        socket.on('sum', (a: number, b: number, ack: (sum: number) => void) => ack(a + b));
      });
      const client = await s.connect();
      client.on('double', (n: number, ack: (n: number) => void) => ack(n * 2));

      assert.equal(await client.timeout(2000).emitWithAck('sum', 2, 3), 5);
      assert.equal(await s.peer(client).timeout(2000).emitWithAck('double', 21), 42);

      // Acknowledgements are matched by id: interleaved requests get their own answers.
      const sums = await Promise.all(Array.from({ length: 200 }, (_, i) => client.timeout(5000).emitWithAck('sum', i, 1000)));
      assert.deepEqual(
        sums,
        Array.from({ length: 200 }, (_, i) => i + 1000),
      );
      const doubles = await Promise.all(Array.from({ length: 200 }, (_, i) => s.peer(client).timeout(5000).emitWithAck('double', i)));
      assert.deepEqual(
        doubles,
        Array.from({ length: 200 }, (_, i) => i * 2),
      );
    });

    test('rooms: join, to(room).emit, broadcast, leave; a socket outside the room gets nothing', { timeout: TEST_TIMEOUT }, async (t) => {
      const s = await startIo(impl);
      t.after(() => s.close());
      s.io.on('connection', (socket) => {
        socket.on('join', async (room: string, ack: () => void) => {
          await socket.join(room);
          ack();
        });
        socket.on('leave', async (room: string, ack: () => void) => {
          await socket.leave(room);
          ack();
        });
        socket.on('shout', (room: string, text: string) => void socket.to(room).emit('news', text));
      });
      const [a, b, c] = await Promise.all([s.connect(), s.connect(), s.connect()]);
      const got = new Map<ClientSocket, string[]>([
        [a, []],
        [b, []],
        [c, []],
      ]);
      for (const [client, list] of got) {
        client.on('news', (text: string) => void list.push(text));
        client.on('sync', (text: string) => void list.push(`sync:${text}`));
      }
      await a.timeout(2000).emitWithAck('join', 'r');
      await b.timeout(2000).emitWithAck('join', 'r');

      // A later emit to everyone is a barrier: the websocket is ordered, so anything sent
      // before it to a socket would have arrived first.
      const barrier = async (tag: string): Promise<void> => {
        const synced = [a, b, c].map((client) => next(client, 'sync'));
        s.io.emit('sync', tag);
        await Promise.all(synced);
      };

      s.io.to('r').emit('news', 'to-room');
      await barrier('1');
      assert.deepEqual(got.get(a), ['to-room', 'sync:1']);
      assert.deepEqual(got.get(b), ['to-room', 'sync:1']);
      assert.deepEqual(got.get(c), ['sync:1'], 'the socket outside the room got nothing');

      // socket.to(room) from a member excludes the sender.
      c.emit('shout', 'r', 'from-c');
      a.emit('shout', 'r', 'from-a');
      await until(() => got.get(b)!.includes('from-a'), 3000, 'b to receive from-a');
      await barrier('2');
      assert.deepEqual(got.get(a), ['to-room', 'sync:1', 'from-c', 'sync:2']);
      assert.deepEqual(got.get(b), ['to-room', 'sync:1', 'from-c', 'from-a', 'sync:2']);
      assert.deepEqual(got.get(c), ['sync:1', 'sync:2']);

      await a.timeout(2000).emitWithAck('leave', 'r');
      s.io.to('r').emit('news', 'after-leave');
      await barrier('3');
      assert.deepEqual(got.get(a)!.slice(4), ['sync:3'], 'a left the room');
      assert.deepEqual(got.get(b)!.slice(5), ['after-leave', 'sync:3']);
      assert.deepEqual(got.get(c)!.slice(2), ['sync:3']);
      assert.deepEqual([...(s.io.of('/').adapter.rooms.get('r') ?? [])], [s.peer(b).id]);
    });

    test('binary: Buffers and nested binary attachments, both ways', { timeout: TEST_TIMEOUT }, async (t) => {
      const s = await startIo(impl);
      t.after(() => s.close());
      const one = pattern(1000, 1);
      const two = pattern(70_000, 2); // beyond 65535: a 64-bit frame length
      const three = Uint8Array.from([0, 1, 2, 255]);
      let received: unknown[] = [];
      s.io.on('connection', (socket) => {
        socket.on('bin', (...args: unknown[]) => {
          const ack = args.pop() as (...reply: unknown[]) => void;
          received = args;
          ack(...args);
        });
      });
      const client = await s.connect();
      const payload = { text: 'é✓', nested: { two, list: [three, 'x', { deeper: one }] } };
      const echoed = (await client.timeout(5000).emitWithAck('bin', one, payload)) as unknown;

      // What the server got: Buffers (socket.io's Node side), the structure intact.
      const [first, second] = received as [Buffer, { text: string; nested: { two: Buffer; list: [Buffer, string, { deeper: Buffer }] } }];
      assert.ok(Buffer.isBuffer(first));
      assert.deepEqual(first, one);
      assert.equal(second.text, 'é✓');
      assert.deepEqual(Buffer.from(second.nested.two), two);
      assert.deepEqual(Buffer.from(second.nested.list[0]), Buffer.from(three));
      assert.equal(second.nested.list[1], 'x');
      assert.deepEqual(Buffer.from(second.nested.list[2].deeper), one);

      // What came back in the acknowledgement (only the first argument of the ack arrives).
      assert.deepEqual(Buffer.from(echoed as Uint8Array), one);

      // Server → client, binary inside an object.
      const got = next<[{ blob: ArrayBuffer | Buffer; n: number }]>(client, 'blob');
      s.peer(client).emit('blob', { blob: two, n: 7 });
      const [message] = await got;
      assert.equal(message.n, 7);
      assert.deepEqual(Buffer.from(message.blob as ArrayBuffer), two);
    });

    test('large messages (5 MiB binary, 2 MiB text) both ways under maxHttpBufferSize', { timeout: TEST_TIMEOUT }, async (t) => {
      const s = await startIo(impl, { maxHttpBufferSize: 8 * MiB });
      t.after(() => s.close());
      const big = pattern(5 * MiB, 3);
      const text = 'ab✓'.repeat((2 * MiB) / 5);
      s.io.on('connection', (socket) => {
        socket.on('big', (data: Buffer, ack: (got: { length: number; sum: number }) => void) => ack({ length: data.length, sum: checksum(data) }));
        socket.on('text', (data: string, ack: (length: number) => void) => ack(data.length));
      });
      const client = await s.connect();
      assert.deepEqual(await client.timeout(10_000).emitWithAck('big', big), { length: 5 * MiB, sum: checksum(big) });
      assert.equal(await client.timeout(10_000).emitWithAck('text', text), text.length);

      const got = next<[ArrayBuffer | Buffer, string]>(client, 'big', 10_000);
      s.peer(client).emit('big', big, text);
      const [data, str] = await got;
      assert.equal(checksum(Buffer.from(data as ArrayBuffer)), checksum(big));
      assert.equal(str, text);
    });

    test('a message beyond maxHttpBufferSize closes the connection (maxPayload)', { timeout: TEST_TIMEOUT }, async (t) => {
      const s = await startIo(impl, { maxHttpBufferSize: 64 * 1024 });
      t.after(() => s.close());
      const client = await s.connect();
      const peer = s.peer(client);
      const ws = clientWebSocket(client);
      const closed = next<[number, Buffer]>(ws, 'close', 5000);
      const serverGone = next<[string]>(peer, 'disconnect', 5000);
      client.emit('too-big', pattern(100 * 1024));
      const [code] = await closed;
      assert.equal(code, 1009, 'the server closes with 1009 Message Too Big');
      // ws reports the oversized message as an 'error' on the socket before 'close'.
      assert.equal((await serverGone)[0], 'transport error');
    });

    test('perMessageDeflate: negotiated, compressed on the wire both ways, data intact', { timeout: TEST_TIMEOUT }, async (t) => {
      const s = await startIo(impl, { perMessageDeflate: { threshold: 0 }, maxHttpBufferSize: 8 * MiB });
      t.after(() => s.close());
      s.io.on('connection', (socket) => {
        socket.on('echo', (data: unknown, ack: (data: unknown) => void) => ack(data));
      });
      const client = await s.connect({ perMessageDeflate: { threshold: 0 } } as Partial<ManagerOptions>);
      const peer = s.peer(client);
      assert.equal(clientWebSocket(client).extensions, 'permessage-deflate');
      assert.equal(engineWebSocket(peer).extensions, 'permessage-deflate');

      // 1 MiB of very compressible JSON: if either side did not compress, the bytes on the
      // wire would be at least the payload's size.
      const doc = { rows: Array.from({ length: 20_000 }, (_, i) => ({ id: i % 10, name: 'duplex', ok: true })) };
      const size = JSON.stringify(doc).length;
      const clientIn = clientTcp(client).bytesRead;
      const serverIn = serverTcp(peer).bytesRead;
      const echoed = await client.timeout(10_000).emitWithAck('echo', doc);
      assert.deepEqual(echoed, doc);
      assert.ok(serverTcp(peer).bytesRead - serverIn < size / 10, `client → server compressed (${serverTcp(peer).bytesRead - serverIn} bytes for ${size})`);
      assert.ok(
        clientTcp(client).bytesRead - clientIn < size / 10,
        `server → client compressed (${clientTcp(client).bytesRead - clientIn} bytes for ${size})`,
      );

      // Small and binary messages through the same contexts, many in a row.
      for (let i = 0; i < 50; i++) assert.equal(await client.timeout(2000).emitWithAck('echo', `m${i}`), `m${i}`);
      assert.deepEqual(Buffer.from((await client.timeout(2000).emitWithAck('echo', pattern(4096))) as ArrayBuffer), pattern(4096));
    });

    for (const how of ['closes', 'terminates'] as const) {
      test(`reconnection: the server ${how} the websocket, the client reconnects by itself`, { timeout: TEST_TIMEOUT }, async (t) => {
        const s = await startIo(impl);
        t.after(() => s.close());
        s.io.on('connection', (socket) => {
          socket.on('ping?', (ack: (id: string) => void) => ack(socket.id));
        });
        const client = await s.connect({ reconnection: true, reconnectionDelay: 20, reconnectionDelayMax: 50, randomizationFactor: 0 });
        const firstId = client.id;
        const first = s.peer(client);

        const disconnected = next<[string]>(client, 'disconnect', 5000);
        const serverSaw = next<[string]>(first, 'disconnect', 5000);
        const reconnected = next<[number]>(client.io, 'reconnect', 5000);
        if (how === 'closes') first.conn.close();
        else engineWebSocket(first).terminate();
        assert.equal((await disconnected)[0], 'transport close');
        assert.equal((await serverSaw)[0], how === 'closes' ? 'forced close' : 'transport close');
        const [attempts] = await reconnected;
        assert.ok(attempts >= 1);
        await until(() => client.connected, 3000, 'the client to be connected again');

        assert.notEqual(client.id, firstId, 'a new session');
        assert.equal(s.connections.length, 2);
        const second = s.peer(client);
        assert.ok(engineWebSocket(second) instanceof impl.WebSocket);
        assert.equal(await client.timeout(2000).emitWithAck('ping?'), second.id);
      });
    }

    test('clean shutdown: io.close() disconnects every socket and closes the HTTP server', { timeout: TEST_TIMEOUT }, async () => {
      const s = await startIo(impl);
      const clients = await Promise.all([s.connect(), s.connect()]);
      const peers = clients.map((client) => s.peer(client));
      const sockets = peers.map((peer) => engineWebSocket(peer));
      const clientReasons = Promise.all(clients.map((client) => next<[string]>(client, 'disconnect', 5000)));
      const serverReasons = Promise.all(peers.map((peer) => next<[string]>(peer, 'disconnect', 5000)));
      const serverClosed = next(s.http, 'close', 5000);
      await within(new Promise<void>((resolve, reject) => s.io.close((error) => (error ? reject(error) : resolve()))), 5000, 'io.close()');
      assert.deepEqual(
        (await serverReasons).map(([reason]) => reason),
        ['server shutting down', 'server shutting down'],
      );
      assert.deepEqual(
        (await clientReasons).map(([reason]) => reason),
        ['transport close', 'transport close'],
      );
      await serverClosed;
      assert.equal(s.http.listening, false);
      await until(() => sockets.every((ws) => ws.readyState === impl.WebSocket.CLOSED), 3000, 'the engine sockets to be closed');
      assert.ok(clients.every((client) => !client.connected));
    });
  });
}

/** A cheap order-sensitive checksum, to compare megabytes without printing them on failure. */
function checksum(data: Buffer): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 7) sum = (sum * 31 + data[i]!) >>> 0;
  return sum ^ data.length;
}
