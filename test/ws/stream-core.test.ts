// createWebSocketStream (src/ws/stream.ts) over a ws-style WebSocket: the npm ws client and
// ours, each against an npm ws server as the peer. Data, options, backpressure, half-close,
// errors and destruction, with the event order ws gives.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Duplex } from 'node:stream';
import * as ws from 'ws';
import { createWebSocketStream } from '../../src/ws/stream.js';
import * as ours from '../../src/ws/index.js';

/** The client classes the stream wraps in these tests. */
type ClientClass = new (address: string) => ws.WebSocket;
type Wrap = (socket: ws.WebSocket, options?: ConstructorParameters<typeof Duplex>[0]) => Duplex;
const oursWrap: Wrap = (socket, options) => createWebSocketStream(socket as unknown as Parameters<typeof createWebSocketStream>[0], options);

/**
 * ws's own stream over ws's client is the baseline that proves each case right; then our stream
 * over ws's client and over ours.
 */
const IMPLEMENTATIONS: Array<{ name: string; WebSocket: ClientClass; wrap: Wrap }> = [
  { name: "ws's stream over ws's WebSocket", WebSocket: ws.WebSocket, wrap: ws.createWebSocketStream },
  { name: "our stream over ws's WebSocket", WebSocket: ws.WebSocket, wrap: oursWrap },
  { name: 'our stream over our WebSocket', WebSocket: ours.WebSocket as unknown as ClientClass, wrap: oursWrap },
];

const servers: ws.WebSocketServer[] = [];
after(() => servers.forEach((server) => server.close()));

/** An npm ws server on 127.0.0.1 whose connections go to `onConnection`. */
async function peer(onConnection: (socket: ws.WebSocket) => void, options: ws.ServerOptions = {}): Promise<string> {
  const server = new ws.WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
  servers.push(server);
  server.on('connection', onConnection);
  await once(server, 'listening');
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const rawSocket = (socket: ws.WebSocket): Socket => (socket as unknown as { _socket: Socket })._socket;

/** Resolves on 'close' (unlike events.once, it does not reject on 'error'). */
const closeOf = (emitter: EventEmitter): Promise<void> => new Promise((resolve) => emitter.once('close', () => resolve()));

/** Resolves with the events of `names` on `emitter`, in order, once `last` is emitted. */
function record(emitter: EventEmitter, names: string[], last: string): Promise<string[]> {
  const events: string[] = [];
  for (const name of names) emitter.on(name, () => events.push(name));
  return new Promise((resolve) => emitter.once(last, () => resolve(events)));
}

test('returns a Duplex, even around a bare EventEmitter', () => {
  const duplex = createWebSocketStream(new EventEmitter() as unknown as Parameters<typeof createWebSocketStream>[0]);
  assert.ok(duplex instanceof Duplex);
  assert.equal(duplex.writableObjectMode, false);
});

for (const impl of IMPLEMENTATIONS) {
  const { wrap } = impl;
  describe(impl.name, { timeout: 10_000 }, () => {
    test('passes the options to Duplex, but not objectMode', async () => {
      const url = await peer((socket) => {
        socket.send(Buffer.from('hi'));
        socket.close();
      });
      const duplex = wrap(new impl.WebSocket(url), { allowHalfOpen: false, encoding: 'utf8', objectMode: true });
      assert.equal(duplex.readableObjectMode, false);
      assert.equal(duplex.writableObjectMode, false);
      const [chunk] = (await once(duplex, 'data')) as [unknown];
      assert.equal(chunk, 'hi');
      await once(duplex, 'close');
    });

    test('readableObjectMode: text messages as strings, binary as Buffers, one chunk per message', async () => {
      const url = await peer((socket) => {
        socket.send('text');
        socket.send(Buffer.from([1, 2, 3]));
        socket.send('more');
        socket.close();
      });
      const duplex = wrap(new impl.WebSocket(url), { allowHalfOpen: false, readableObjectMode: true });
      const chunks: unknown[] = [];
      duplex.on('data', (chunk: unknown) => chunks.push(chunk));
      await once(duplex, 'close');
      assert.deepEqual(chunks, ['text', Buffer.from([1, 2, 3]), 'more']);
    });

    test('writes made while CONNECTING are sent once open, as binary messages', async () => {
      const received: Array<[Buffer, boolean]> = [];
      let serverClose!: Promise<unknown[]>;
      const url = await peer((socket) => {
        serverClose = once(socket, 'close');
        socket.on('message', (data: Buffer, isBinary: boolean) => received.push([data, isBinary]));
      });
      const client = new impl.WebSocket(url);
      assert.equal(client.readyState, 0);
      const duplex = wrap(client);
      duplex.write(Buffer.from('one'));
      duplex.write('two');
      duplex.end();
      duplex.resume();
      await once(duplex, 'close');
      const [code] = await serverClose;
      assert.equal(code, 1005);
      assert.deepEqual(received, [
        [Buffer.from('one'), true],
        [Buffer.from('two'), true],
      ]);
    });

    test("ending the writable side closes the WebSocket: 'finish', then 'end', then 'close'", async () => {
      const url = await peer((socket) => socket.send('x'));
      const client = new impl.WebSocket(url);
      const duplex = wrap(client);
      const events = record(duplex, ['finish', 'end'], 'close');
      await once(client, 'open');
      duplex.resume();
      duplex.end();
      assert.deepEqual(await events, ['finish', 'end']);
      assert.equal(client.readyState, client.CLOSED);
    });

    test("the WebSocket's close ends the readable side; then end() finishes and destroys", async () => {
      const url = await peer((socket) => {
        socket.send('foo');
        socket.close();
      });
      const client = new impl.WebSocket(url);
      const duplex = wrap(client);
      const events: string[] = [];
      duplex.on('finish', () => {
        events.push('finish');
        assert.equal(duplex.destroyed, false);
        duplex.resume();
      });
      duplex.on('end', () => {
        events.push('end');
        assert.equal(duplex.destroyed, true);
      });
      client.on('close', () => duplex.end());
      await once(duplex, 'close');
      assert.deepEqual(events, ['finish', 'end']);
    });

    test('allowHalfOpen is left to Duplex (true, as with ws): the readable end does not end the writable side', async () => {
      const url = await peer((socket) => socket.close(1000, 'bye'));
      const halfOpen = wrap(new impl.WebSocket(url));
      assert.equal(halfOpen.allowHalfOpen, true);
      halfOpen.resume();
      await once(halfOpen, 'end');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(halfOpen.writableEnded, false);
      assert.equal(halfOpen.destroyed, false);
      halfOpen.end();
      await once(halfOpen, 'close');

      const url2 = await peer((socket) => socket.close(1000, 'bye'));
      const closing = wrap(new impl.WebSocket(url2), { allowHalfOpen: false });
      const events = record(closing, ['end', 'finish'], 'close');
      closing.resume();
      assert.deepEqual(await events, ['end', 'finish']);
      assert.equal(closing.writableEnded, true);
    });

    test('a write after the WebSocket closed errors and destroys the stream', async () => {
      const url = await peer((socket) => socket.close());
      const client = new impl.WebSocket(url);
      const duplex = wrap(client);
      client.on('close', () => duplex.write('late'));
      const closed = closeOf(duplex);
      const [error] = (await once(duplex, 'error')) as [Error];
      assert.equal(error.message, 'WebSocket is not open: readyState 3 (CLOSED)');
      assert.equal(duplex.destroyed, true);
      await closed;
    });

    test('destroy(error) terminates the WebSocket and emits that error, then close', async () => {
      let serverClose!: Promise<unknown[]>;
      const url = await peer((socket) => (serverClose = once(socket, 'close')));
      const client = new impl.WebSocket(url);
      const duplex = wrap(client);
      await once(client, 'open');
      const oops = new Error('Oops');
      const events = record(duplex, ['error'], 'close');
      duplex.on('error', (error) => assert.equal(error, oops));
      duplex.destroy(oops);
      assert.deepEqual(await events, ['error']);
      assert.equal(client.readyState, client.CLOSED);
      const [code] = await serverClose;
      assert.equal(code, 1006);
    });

    test('destroy() while CONNECTING: the abort error is the stream error', async () => {
      const url = await peer(() => {});
      const client = new impl.WebSocket(url);
      const duplex = wrap(client);
      const closed = closeOf(duplex);
      duplex.destroy();
      const [error] = (await once(duplex, 'error')) as [Error];
      assert.equal(error.message, 'WebSocket was closed before the connection was established');
      await closed;
    });

    test("the WebSocket's error is re-emitted and the stream closes after the WebSocket", async () => {
      let serverClose!: Promise<unknown[]>;
      const url = await peer((socket) => {
        serverClose = once(socket, 'close');
        rawSocket(socket).write(Buffer.from([0x85, 0x00])); // opcode 5 is reserved
      });
      const duplex = wrap(new impl.WebSocket(url));
      const closed = closeOf(duplex);
      const [error] = (await once(duplex, 'error')) as [Error & { code?: string }];
      assert.ok(error instanceof RangeError);
      assert.equal(error.message, 'Invalid WebSocket frame: invalid opcode 5');
      assert.equal(error.code, 'WS_ERR_INVALID_OPCODE');
      await closed;
      // The WebSocket closed itself with 1002 (not terminated by the stream).
      const [code] = await serverClose;
      assert.equal(code, 1002);
    });

    test('a failed handshake is the stream error; end() while CONNECTING then waits for it', async () => {
      const url = await peer(() => {}, { verifyClient: () => false });
      const duplex = wrap(new impl.WebSocket(url));
      duplex.end();
      const events = record(duplex, ['finish', 'error'], 'close');
      let message = '';
      duplex.on('error', (error) => (message = error.message));
      assert.deepEqual(await events, ['error']);
      assert.equal(message, 'Unexpected server response: 401');
    });

    test("end() after the handshake failed (CLOSING, no socket) waits for the error: no 'finish'", async () => {
      const server = createServer();
      server.on('upgrade', (_req, socket: Socket) => {
        socket.on('error', () => {});
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: foo\r\n\r\n');
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const client = new impl.WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
        const duplex = wrap(client);
        const states: number[] = [];
        client.on('upgrade', () =>
          process.nextTick(() => {
            states.push(client.readyState);
            duplex.end();
          }),
        );
        const events = record(duplex, ['finish', 'error'], 'close');
        let message = '';
        duplex.on('error', (error) => (message = error.message));
        assert.deepEqual(await events, ['error']);
        assert.deepEqual(states, [client.CLOSING]);
        assert.equal(message, 'Invalid Sec-WebSocket-Accept header');
      } finally {
        server.close();
      }
    });

    test('backpressure: the WebSocket pauses while the readable buffer is full, resumes on read', async () => {
      const count = 64;
      const url = await peer((socket) => {
        for (let i = 0; i < count; i++) socket.send(Buffer.alloc(1024, i));
        socket.send('done');
      });
      const client = new impl.WebSocket(url);
      const duplex = wrap(client, { allowHalfOpen: false, highWaterMark: 4096 });
      await once(client, 'open');
      const deadline = Date.now() + 3000;
      while (!client.isPaused && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.equal(client.isPaused, true);
      assert.ok(duplex.readableLength >= 4096);
      const chunks: Buffer[] = [];
      duplex.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if (chunks.length === count + 1) client.close();
      });
      await once(duplex, 'close');
      assert.equal(chunks.length, count + 1);
      assert.ok(chunks.slice(0, count).every((chunk, i) => chunk.length === 1024 && chunk[0] === i));
      assert.equal(chunks[count]!.toString(), 'done');
    });
  });
}
