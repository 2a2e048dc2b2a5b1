// The ws-compatible WebSocket's own workings: the entry points (ESM, CommonJS), its binding to the
// engine's WebSocket (one shared handlers object, shared settings and socket listeners), and the
// behaviour it adds on top: ws's send/ping/pong/close rules, binaryType, event order on a protocol
// error, allowSynchronousEvents, autoPong, the EventTarget face; and the fixes of the consumer runs
// (closing after a failed handshake or from an error listener, ws's setSocket over any Duplex,
// generateMask, ws 8.23's maxFragments / maxBufferedChunks / maxPendingAutoPongs, typed events).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { WebSocket as WsClient, WebSocketServer as WsServer, type ClientOptions as WsClientOptions } from 'ws';
import WebSocketDefault, { CloseEvent, MessageEvent, WebSocket, WebSocketServer, createWebSocketStream, type ServerOptions } from '../../src/ws/index.js';
import { until, wsClosed } from '../node/server-helpers.js';

const require = createRequire(import.meta.url);

/** A server, a ws client connected to it, and the server side of that connection. */
async function pair(options: Omit<ServerOptions, 'port'> = {}, clientOptions: WsClientOptions = {}): Promise<{
  wss: WebSocketServer;
  ws: WebSocket;
  client: WsClient;
  done: () => Promise<void>;
}> {
  const wss = await new Promise<WebSocketServer>((resolve) => {
    const server: WebSocketServer = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options }, () => resolve(server));
  });
  const connected = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const client = new WsClient(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, clientOptions);
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  const ws = await connected;
  const done = async (): Promise<void> => {
    client.terminate();
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  };
  return { wss, ws, client, done };
}

function next<T extends unknown[]>(emitter: { once(event: string, listener: (...args: T) => void): unknown }, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (...args: T) => resolve(args)));
}

type Internals = { _inner: { handlers: unknown; cfg: unknown; rawSocket: Socket } };

describe('entry points', () => {
  test('require() gives the class with ws\'s statics; import gives default and named exports', () => {
    const cjs = require('../../src/ws/index.cjs') as typeof WebSocket;
    assert.equal(cjs, WebSocketDefault);
    assert.equal(WebSocketDefault, WebSocket);
    assert.equal(cjs.WebSocket, WebSocket);
    assert.equal(cjs.WebSocketServer, WebSocketServer);
    assert.equal(cjs.Server, WebSocketServer);
    assert.equal(cjs.createWebSocketStream, createWebSocketStream);
  });

  test('typed as ws is: `import WebSocket, { … }` in .mts and `import WebSocket = require()` in .cts', { timeout: 60_000 }, async () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const dir = await mkdtemp(join(tmpdir(), 'duplex-ws-types-'));
    try {
      await mkdir(join(dir, 'node_modules'));
      await symlink(root, join(dir, 'node_modules', 'duplex-ws'), 'dir');
      await writeFile(join(dir, 'esm.mts'), [
        "import WebSocket, { WebSocketServer, createWebSocketStream, type RawData } from 'duplex-ws/ws';",
        'const wss = new WebSocketServer({ noServer: true, perMessageDeflate: { threshold: 0 } });',
        "wss.on('connection', (ws: WebSocket) => ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary })));",
        "const ws = new WebSocket('ws://127.0.0.1:1', ['chat'], { handshakeTimeout: 1 });",
        'ws.onmessage = (event) => void event.data;',
        'const state: 0 | 1 | 2 | 3 = ws.readyState;',
        'void createWebSocketStream(ws); void state; void WebSocket.OPEN;',
        // Untyped listeners get @types/ws's argument types (strict: an implicit any fails).
        "wss.on('connection', (peer, req) => {",
        '  const url: string | undefined = req.url; void url;',
        "  peer.on('message', (data, isBinary) => { const raw: RawData = data; const flag: boolean = isBinary; void raw; void flag; });",
        "  peer.once('close', (code, reason) => void [code.toFixed(), reason.byteLength]);",
        '});',
        "wss.on('headers', (lines) => void lines.push('X-A: b'));",
        "ws.on('error', (error) => void error.message);",
        "ws.off('ping', (data) => void data.byteLength);",
        "ws.on('custom', (...args) => void args.length);",
      ].join('\n'));
      await writeFile(join(dir, 'cjs.cts'), [
        "import WebSocket = require('duplex-ws/ws');",
        'const server: InstanceType<typeof WebSocket.Server> = new WebSocket.WebSocketServer({ noServer: true });',
        "const ws: WebSocket = new WebSocket('ws://127.0.0.1:1');",
        "ws.on('open', () => ws.send('x'));",
        'void server;',
      ].join('\n'));
      await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: {
          strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true,
          types: ['node'], typeRoots: [join(root, 'node_modules/@types')], skipLibCheck: false,
        },
        files: ['esm.mts', 'cjs.cts'],
      }));
      await promisify(execFile)(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir]).catch((error: { stdout?: string }) => {
        assert.fail(`tsc: ${error.stdout ?? String(error)}`);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('ready-state constants are enumerable, read-only, on the class and the prototype', () => {
    for (const [name, value] of [['CONNECTING', 0], ['OPEN', 1], ['CLOSING', 2], ['CLOSED', 3]] as const) {
      const expected = { configurable: false, enumerable: true, value, writable: false };
      assert.deepEqual(Object.getOwnPropertyDescriptor(WebSocket, name), expected);
      assert.deepEqual(Object.getOwnPropertyDescriptor(WebSocket.prototype, name), expected);
    }
    const readyState = Object.getOwnPropertyDescriptor(WebSocket.prototype, 'readyState');
    assert.equal(readyState?.enumerable, true);
    assert.equal(typeof readyState?.get, 'function');
  });
});

describe('binding to the engine', () => {
  test('connections share one handlers object, one settings object and the socket listeners', async () => {
    const { wss, ws, done } = await pair();
    const second = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
    const other = new WsClient(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    await next(other, 'open');
    const ws2 = await second;
    const a = (ws as unknown as Internals)._inner;
    const b = (ws2 as unknown as Internals)._inner;
    assert.equal(a.handlers, b.handlers);
    assert.equal(a.cfg, b.cfg);
    assert.equal(a.rawSocket.listeners('data')[0], b.rawSocket.listeners('data')[0]);
    assert.equal(ws._socket, a.rawSocket);
    other.terminate();
    await done();
  });

  test('ws\'s settings: no keepalive, no slow-consumer ceiling, maxPayload as the message limit', async () => {
    const { ws, client, done } = await pair({ maxPayload: 1000 });
    const cfg = (ws as unknown as { _inner: { cfg: { pingInterval: number; maxBufferedAmount: number; maxMessageSize: number; closeTimeout: number } } })._inner.cfg;
    assert.equal(cfg.pingInterval, 0);
    assert.equal(cfg.maxBufferedAmount, Infinity);
    assert.equal(cfg.maxMessageSize, 1000);
    assert.equal(cfg.closeTimeout, 30_000);
    const error = next<[Error & { code: string }]>(ws, 'error');
    const closed = wsClosed(client);
    client.send(Buffer.alloc(1001));
    const [err] = await error;
    assert.ok(err instanceof RangeError);
    assert.equal(err.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
    assert.equal(err.message, 'Max payload size exceeded');
    assert.equal((await closed)[0], 1009);
    await done();
  });
});

describe('receiving', () => {
  test('text arrives as a Buffer; binary as binaryType says', async () => {
    const { ws, client, done } = await pair();
    const got: unknown[] = [];
    ws.on('message', (data: unknown, isBinary: boolean) => got.push([data, isBinary]));
    client.send('text');
    client.send(Buffer.from([1, 2]));
    await until(() => got.length === 2);
    const [[text, textBinary], [bytes, bytesBinary]] = got as Array<[Buffer, boolean]>;
    assert.ok(Buffer.isBuffer(text) && text.toString() === 'text' && textBinary === false);
    assert.ok(Buffer.isBuffer(bytes) && bytesBinary === true);
    for (const [type, check] of [
      ['arraybuffer', (d: unknown) => d instanceof ArrayBuffer && d.byteLength === 2],
      ['fragments', (d: unknown) => Array.isArray(d) && Buffer.concat(d as Buffer[]).equals(Buffer.from([1, 2]))],
      ['blob', (d: unknown) => d instanceof Blob && d.size === 2],
    ] as const) {
      ws.binaryType = type;
      const message = next<[unknown, boolean]>(ws, 'message');
      client.send(Buffer.from([1, 2]));
      assert.ok(check((await message)[0]), type);
    }
    ws.binaryType = 'bogus' as never;
    assert.equal(ws.binaryType, 'blob');
    await done();
  });

  test('a protocol error: error (ws\'s class, message, code), then close 1006 once; the peer gets 1002', async () => {
    const { ws, client, done } = await pair();
    const events: string[] = [];
    ws.on('error', (err: Error & { code: string }) => events.push(`error ${err.name} ${err.code} ${err.message}`));
    const closed = new Promise<void>((resolve) =>
      ws.on('close', (code: number, reason: Buffer) => {
        events.push(`close ${code} ${reason.length}`);
        resolve();
      }),
    );
    const peer = wsClosed(client);
    // A masked frame with reserved opcode 5, under ws's framing layer.
    (client as unknown as { _socket: Socket })._socket.write(Buffer.from([0x85, 0x80, 0, 0, 0, 0]));
    await closed;
    assert.deepEqual(events, ['error RangeError WS_ERR_INVALID_OPCODE Invalid WebSocket frame: invalid opcode 5', 'close 1006 0']);
    assert.equal(ws.readyState, WebSocket.CLOSED);
    // As ws: the close frame of a failure has the code alone.
    assert.deepEqual(await peer, [1002, '']);
    await done();
  });

  test('allowSynchronousEvents: false emits one message per loop pass', async () => {
    const { ws, client, done } = await pair({ allowSynchronousEvents: false });
    const ticks: number[] = [];
    let tick = 0;
    const timer = setInterval(() => {}, 1);
    const counter = (): void => {
      tick++;
      if (ticks.length < 3) setImmediate(counter);
    };
    ws.on('message', () => ticks.push(tick));
    // Three messages in one TCP write: one read, three events.
    const socket = (client as unknown as { _socket: Socket })._socket;
    const frame = (text: string): Buffer => Buffer.concat([Buffer.from([0x81, 0x80 | text.length, 0, 0, 0, 0]), Buffer.from(text)]);
    setImmediate(counter);
    socket.write(Buffer.concat([frame('a'), frame('b'), frame('c')]));
    await until(() => ticks.length === 3);
    clearInterval(timer);
    assert.equal(new Set(ticks).size, 3, `messages in distinct passes: ${ticks.join(',')}`);
    await done();
  });

  test('autoPong: false reports the ping and sends no pong; ping data and pong() reach the peer', async () => {
    const { ws, client, done } = await pair({ autoPong: false });
    let autoPongs = 0;
    client.on('pong', () => autoPongs++);
    const ping = next<[Buffer]>(ws, 'ping');
    client.ping('p1');
    assert.equal((await ping)[0].toString(), 'p1');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(autoPongs, 0);
    const pong = next<[Buffer]>(client, 'pong');
    const written = new Promise<Error | null | undefined>((resolve) => ws.pong('p2', resolve));
    assert.equal((await pong)[0].toString(), 'p2');
    assert.equal(await written, null);
    await done();
  });
});

describe('sending', () => {
  test('send: callbacks after the write, fragments with fin:false, numbers as text, typed arrays as binary', async () => {
    const { ws, client, done } = await pair();
    const got: Array<[string, boolean]> = [];
    client.on('message', (data: Buffer, isBinary: boolean) => got.push([data.toString('latin1'), isBinary]));
    const errors: Array<Error | null | undefined> = [];
    ws.send('a', (error) => errors.push(error));
    ws.send('b', { fin: false });
    ws.send(Buffer.from('c'), { fin: true }, (error) => errors.push(error));
    ws.send(42);
    ws.send(new Uint16Array([0x4141]));
    ws.send(Buffer.from('t'), { binary: false });
    await until(() => got.length === 5);
    assert.deepEqual(got, [['a', false], ['bc', false], ['42', false], ['AA', true], ['t', false]]);
    assert.deepEqual(errors, [null, null]);
    await done();
  });

  test('send/ping while CONNECTING throw; after close the callback gets the error and bufferedAmount grows', async () => {
    const ws = new WebSocket(null);
    assert.equal(ws.readyState, WebSocket.CONNECTING);
    assert.throws(() => ws.send('x'), { message: 'WebSocket is not open: readyState 0 (CONNECTING)' });
    assert.throws(() => ws.ping(), { message: 'WebSocket is not open: readyState 0 (CONNECTING)' });

    const { ws: open, client, done } = await pair();
    const closed = next(open, 'close');
    client.close();
    await closed;
    let sync = true;
    const error = new Promise<Error | null | undefined>((resolve) => open.send('abc', (err) => resolve(sync ? new Error('called synchronously') : err)));
    sync = false;
    assert.equal((await error)?.message, 'WebSocket is not open: readyState 3 (CLOSED)');
    assert.equal(open.bufferedAmount, 3);
    await done();
  });

  test('ping over 125 bytes is a RangeError; ping data reaches the peer with its callback', async () => {
    const { ws, client, done } = await pair();
    assert.throws(() => ws.ping(Buffer.alloc(126)), { name: 'RangeError', message: 'The data size must not be greater than 125 bytes' });
    const ping = next<[Buffer]>(client, 'ping');
    const cb = new Promise<Error | null | undefined>((resolve) => ws.ping('hello', false, resolve));
    assert.equal((await ping)[0].toString(), 'hello');
    assert.equal(await cb, null);
    const pong = next<[Buffer]>(ws, 'pong');
    assert.equal((await pong)[0].toString(), 'hello'); // ws's client answered
    await done();
  });
});

describe('closing', () => {
  test('close validates as ws: TypeError for a bad code, RangeError for a long reason', async () => {
    const { ws, done } = await pair();
    assert.throws(() => ws.close(1005), { name: 'TypeError', message: 'First argument must be a valid error code number' });
    assert.throws(() => ws.close('x' as unknown as number), { name: 'TypeError' });
    assert.throws(() => ws.close(1000, 'x'.repeat(124)), { name: 'RangeError', message: 'The message must not be greater than 123 bytes' });
    assert.equal(ws.readyState, WebSocket.OPEN);
    await done();
  });

  test('close() without a code sends an empty close frame: both sides see 1005', async () => {
    const { ws, client, done } = await pair();
    const peer = wsClosed(client);
    const own = next<[number, Buffer]>(ws, 'close');
    ws.close();
    assert.equal(ws.readyState, WebSocket.CLOSING);
    assert.equal((await peer)[0], 1005);
    assert.equal((await own)[0], 1005);
    await done();
  });

  test('close(code, reason) reaches the peer; its echo gives close with a Buffer reason, wasClean true', async () => {
    const { ws, client, done } = await pair();
    const peer = wsClosed(client);
    const event = new Promise<CloseEvent>((resolve) => ws.addEventListener('close', resolve, { once: true }));
    ws.close(4001, 'bye');
    assert.deepEqual(await peer, [4001, 'bye']);
    const closeEvent = await event;
    assert.equal(closeEvent.code, 4001);
    assert.equal(closeEvent.reason, 'bye');
    assert.equal(closeEvent.wasClean, true);
    assert.equal(closeEvent.target, ws);
    await done();
  });

  test('terminate: CLOSING at once, close 1006 after the socket closed', async () => {
    const { ws, client, done } = await pair();
    const peer = wsClosed(client);
    const own = next<[number, Buffer]>(ws, 'close');
    ws.terminate();
    assert.equal(ws.readyState, WebSocket.CLOSING);
    assert.equal((await own)[0], 1006);
    assert.equal(ws.readyState, WebSocket.CLOSED);
    assert.equal((await peer)[0], 1006);
    await done();
  });

  test('close while CONNECTING aborts the handshake: error, then close 1006', async () => {
    const ws = new WebSocket(null);
    const events: string[] = [];
    ws.on('error', (error: Error) => events.push(error.message));
    const closed = new Promise<void>((resolve) => ws.on('close', (code: number) => (events.push(`close ${code}`), resolve())));
    ws.close();
    assert.equal(ws.readyState, WebSocket.CLOSING);
    await closed;
    assert.deepEqual(events, ['WebSocket was closed before the connection was established', 'close 1006']);
  });
});

describe('EventTarget face', () => {
  test('on<event> replaces only its own listener; a non-function removes it; addEventListener dedups', async () => {
    const { ws, client, done } = await pair();
    const calls: string[] = [];
    const listener = (event: MessageEvent): void => void calls.push(`listener ${String(event.data)}`);
    ws.addEventListener('message', listener);
    ws.addEventListener('message', listener);
    ws.onmessage = () => calls.push('first');
    ws.onmessage = (event) => calls.push(`second ${String(event.data)}`);
    assert.equal(ws.listenerCount('message'), 2);
    client.send('m');
    await until(() => calls.length === 2);
    assert.deepEqual(calls.sort(), ['listener m', 'second m']);
    ws.onmessage = 'nope' as never;
    assert.equal(ws.onmessage, null);
    ws.removeEventListener('message', listener);
    assert.equal(ws.listenerCount('message'), 0);
    await done();
  });
});

describe('our client against a ws server', () => {
  test('open, echo, close', async () => {
    const server = await new Promise<WsServer>((resolve) => {
      const s: WsServer = new WsServer({ port: 0, host: '127.0.0.1' }, () => resolve(s));
    });
    server.on('connection', (peer) => peer.on('message', (data, isBinary) => peer.send(data, { binary: isBinary })));
    const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    assert.equal(ws.readyState, WebSocket.CONNECTING);
    await next(ws, 'open');
    assert.equal(ws.extensions, ''); // ws's server does not compress by default
    const echo = next<[Buffer, boolean]>(ws, 'message');
    ws.send('round trip');
    const [data, isBinary] = await echo;
    assert.equal(data.toString(), 'round trip');
    assert.equal(isBinary, false);
    const closed = next<[number, Buffer]>(ws, 'close');
    ws.close(1000);
    assert.equal((await closed)[0], 1000);
    await new Promise((resolve) => server.close(resolve));
  });
});

/** Two connected in-memory Duplex streams: what one writes, the other reads, one chunk per write. */
function duplexPair(onWrite?: (chunk: Buffer) => boolean): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  for (let i = 0; i < 2; i++) {
    sides.push(new Duplex({
      // As a TCP peer: the end of what it reads ends what it writes.
      allowHalfOpen: false,
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        // `onWrite` false: the write never completes (a peer that stopped reading).
        if (i === 0 && onWrite !== undefined && !onWrite(chunk)) return;
        sides[1 - i]!.push(chunk);
        callback();
      },
      final(callback) {
        sides[1 - i]!.push(null);
        callback();
      },
    }));
  }
  const [a, b] = sides as [Duplex, Duplex];
  a.once('close', () => b.destroy());
  b.once('close', () => a.destroy());
  return [a, b];
}

/** An upgrade request as code that drives `handleUpgrade` by hand builds it (@fastify/websocket's injectWS). */
function handMadeRequest(headers: Record<string, string | number> = {}): IncomingMessage {
  return {
    method: 'GET',
    httpVersion: '1.1',
    url: '/',
    headers: {
      host: 'localhost',
      connection: 'upgrade',
      upgrade: 'websocket',
      // A number, as injectWS writes it: ws takes it, and so must we.
      'sec-websocket-version': 13,
      'sec-websocket-key': randomBytes(16).toString('base64'),
      ...headers,
    },
    socket: {},
  } as unknown as IncomingMessage;
}

/**
 * A server-side connection over an in-memory pair, upgraded by `handleUpgrade`, and the bytes its
 * peer end reads after the 101 (frames, unparsed).
 */
async function inMemory(options: Omit<ServerOptions, 'noServer'> = {}, onWrite?: (chunk: Buffer) => boolean): Promise<{ ws: WebSocket; peer: Duplex; received: Buffer[] }> {
  const wss = new WebSocketServer({ noServer: true, ...options });
  const [serverSide, peer] = duplexPair(onWrite);
  const received: Buffer[] = [];
  const upgraded = new Promise<Buffer>((resolve) => peer.once('data', resolve));
  const ws = await new Promise<WebSocket>((resolve) => wss.handleUpgrade(handMadeRequest(), serverSide, Buffer.alloc(0), resolve));
  assert.match((await upgraded).toString(), /^HTTP\/1\.1 101 /);
  peer.on('data', (chunk: Buffer) => received.push(chunk));
  return { ws, peer, received };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('fix round: ws 8.23 parity', () => {
  test('close(), terminate(), pause(), resume() after a failed handshake do nothing (ws: callable from the error listener)', async () => {
    const probe = createNetServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    const events: string[] = [];
    ws.on('error', (error: Error & { code?: string }) => {
      events.push(`error ${error.code}`);
      ws.close();
      ws.terminate();
      ws.close(1000, 'again');
      ws.pause();
      ws.resume();
      events.push(`state ${ws.readyState}`);
    });
    await new Promise<void>((resolve) => ws.on('close', (code: number) => (events.push(`close ${code}`), resolve())));
    assert.deepEqual(events, ['error ECONNREFUSED', 'state 2', 'close 1006']);
    assert.equal(ws.readyState, WebSocket.CLOSED);
  });

  test('close() in the error listener of a protocol error: the peer still gets the failure\'s close frame (1009)', async () => {
    const { ws, client, done } = await pair({ maxPayload: 1024 });
    const errors: Error[] = [];
    // As engine.io does: its 'error' handler closes the socket.
    ws.on('error', (error: Error) => {
      errors.push(error);
      ws.close();
    });
    const peer = wsClosed(client);
    const own = next<[number, Buffer]>(ws, 'close');
    client.send(Buffer.alloc(2048));
    assert.equal((await peer)[0], 1009);
    assert.equal((await own)[0], 1006);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.message, 'Max payload size exceeded');
    assert.equal((errors[0] as Error & { code: string }).code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
    await done();
  });

  test('fields ws\'s tests read: _isServer (true for address null), _redirects (0 on a client)', async () => {
    const server = new WebSocket(null, undefined, { isServer: false } as ServerOptions);
    assert.equal(server._isServer, true);
    assert.equal('_redirects' in server, false);
    const client = new WebSocket('ws://127.0.0.1:1', { handshakeTimeout: 1 });
    client.on('error', () => {});
    assert.equal(client._isServer, false);
    assert.equal(client._redirects, 0);
    await next(client, 'close');
  });

  test('setSocket with ws\'s own options over a Duplex (injectWS): the side from _isServer, a numeric version accepted', async () => {
    const wss = new WebSocketServer({ noServer: true });
    const [serverSide, clientSide] = duplexPair();
    const client = new WebSocket(null, undefined, { isServer: false } as ServerOptions);
    const opened = next(client, 'open');
    clientSide.once('data', (chunk: Buffer) => {
      assert.match(chunk.toString(), /^HTTP\/1\.1 101 Switching Protocols\r\n/);
      client._isServer = false;
      client.setSocket(clientSide, Buffer.alloc(0), { maxPayload: 0 });
    });
    wss.handleUpgrade(handMadeRequest(), serverSide, Buffer.alloc(0), (ws) => {
      ws.on('message', (data: Buffer) => ws.send(`echo:${data.toString()}`));
    });
    await opened;
    assert.equal(client.readyState, WebSocket.OPEN);
    const reply = next<[Buffer, boolean]>(client, 'message');
    // A server would fail an unmasked frame with 1002: the echo proves the client side masks.
    client.send('ping');
    assert.equal((await reply)[0].toString(), 'echo:ping');
    const closed = next<[number, Buffer]>(client, 'close');
    client.close(4000, 'done');
    assert.equal((await closed)[0], 4000);
  });

  test('a hand-made request without Host is refused with duplex\'s 400 (stricter than ws, by design)', async () => {
    const wss = new WebSocketServer({ noServer: true });
    const [serverSide, peer] = duplexPair();
    const answer = new Promise<Buffer>((resolve) => peer.once('data', resolve));
    wss.handleUpgrade(handMadeRequest({ host: undefined as unknown as string }), serverSide, Buffer.alloc(0), () => assert.fail('upgraded'));
    assert.match((await answer).toString(), /^HTTP\/1\.1 400 /);
  });

  test('generateMask: the client masks each frame with the key it fills in (on the wire)', async () => {
    const http = createServer();
    let upgraded: Socket | undefined;
    const frames = new Promise<Buffer>((resolve) => {
      http.on('upgrade', (req: IncomingMessage, socket: Socket) => {
        upgraded = socket;
        const key = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${key}\r\n\r\n`);
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          const bytes = Buffer.concat(chunks);
          if (bytes.length >= 2 * (6 + 2)) resolve(bytes);
        });
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const keys = [[1, 2, 3, 4], [0, 0, 0, 0]];
    let calls = 0;
    const ws = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`, {
      perMessageDeflate: false,
      generateMask: (mask: Buffer) => {
        assert.ok(Buffer.isBuffer(mask) && mask.length === 4);
        mask.set(keys[calls++ % 2]!);
      },
    });
    await next(ws, 'open');
    ws.send('hi');
    ws.send('yo');
    const bytes = await frames;
    // Frame 1: 0x81, 0x82, key 1 2 3 4, "hi" XOR the key; frame 2: a zero key leaves "yo" readable.
    assert.deepEqual([...bytes.subarray(0, 8)], [0x81, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2]);
    assert.deepEqual([...bytes.subarray(8, 16)], [0x81, 0x82, 0, 0, 0, 0, 0x79, 0x6f]);
    const closed = next(ws, 'close');
    ws.terminate();
    upgraded!.destroy();
    await closed;
    await new Promise((resolve) => http.close(resolve));
  });

  test('maxFragments: one frame too many fails with ws\'s RangeError and 1008', async () => {
    const { ws, client, done } = await pair({ maxFragments: 2 });
    const error = next<[Error & { code: string }]>(ws, 'error');
    const peer = wsClosed(client);
    client.send('a', { fin: false });
    client.send('b', { fin: false });
    client.send('c');
    const [err] = await error;
    assert.ok(err instanceof RangeError);
    assert.equal(err.message, 'Too many message fragments');
    assert.equal(err.code, 'WS_ERR_TOO_MANY_BUFFERED_PARTS');
    assert.equal((await peer)[0], 1008);
    await done();
  });

  test('maxBufferedChunks: a payload in one chunk too many fails with ws\'s RangeError and 1008', async () => {
    const { ws, peer, received } = await inMemory({ maxBufferedChunks: 2 });
    const errors: Array<Error & { code: string }> = [];
    ws.on('error', (error: Error & { code: string }) => errors.push(error));
    const closed = next<[number, Buffer]>(ws, 'close');
    // A masked 30-byte binary frame, its payload in 3 chunks (the first with the header).
    const frame = Buffer.concat([Buffer.from([0x82, 0x80 | 30, 0, 0, 0, 0]), Buffer.alloc(30, 1)]);
    peer.write(frame.subarray(0, 16));
    await tick();
    peer.write(frame.subarray(16, 26));
    await tick();
    assert.equal(errors.length, 0, 'two chunks are allowed');
    peer.write(frame.subarray(26));
    await closed;
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof RangeError);
    assert.equal(errors[0].message, 'Too many buffered chunks');
    assert.equal(errors[0].code, 'WS_ERR_TOO_MANY_BUFFERED_PARTS');
    // The close frame the peer got, as ws's: 1008 and no reason.
    assert.deepEqual([...Buffer.concat(received)], [0x88, 0x02, 0x03, 0xf0]);
  });

  test('maxPendingAutoPongs: a ping while that many pongs are unwritten terminates the connection', async () => {
    let stalled = false;
    // Once upgraded, the peer stops reading: no write completes.
    const { ws, peer } = await inMemory({ maxPendingAutoPongs: 2 }, () => !stalled);
    stalled = true;
    const pings: string[] = [];
    ws.on('ping', (data: Buffer) => pings.push(`${data.toString()}@${ws.readyState}`));
    const closed = next<[number, Buffer]>(ws, 'close');
    const ping = (text: string): Buffer => Buffer.concat([Buffer.from([0x89, 0x80 | text.length, 0, 0, 0, 0]), Buffer.from(text)]);
    peer.write(ping('1'));
    peer.write(ping('2'));
    await tick();
    assert.equal(ws.readyState, WebSocket.OPEN);
    peer.write(ping('3'));
    assert.equal((await closed)[0], 1006);
    // As ws: the third ping is still emitted, after the terminate.
    assert.deepEqual(pings, ['1@1', '2@1', '3@2']);
  });

  test('maxPendingAutoPongs: written pongs do not count; ws\'s defaults on the server options', async () => {
    const { ws, wss, client, done } = await pair({ maxPendingAutoPongs: 1 });
    assert.equal(wss.options.maxPendingAutoPongs, 1);
    let pongs = 0;
    client.on('pong', () => pongs++);
    for (let i = 0; i < 5; i++) {
      client.ping(String(i));
      await until(() => pongs === i + 1);
    }
    assert.equal(ws.readyState, WebSocket.OPEN);
    await done();
    const defaults = new WebSocketServer({ noServer: true }).options;
    assert.deepEqual(
      [defaults.maxPendingAutoPongs, defaults.maxFragments, defaults.maxBufferedChunks],
      [60, 16 * 1024, 256 * 1024],
    );
  });

  test('a client applies ws\'s constructor defaults: automatic pongs, and closeTimeout when given', async () => {
    const server = await new Promise<WsServer>((resolve) => {
      const s: WsServer = new WsServer({ port: 0, host: '127.0.0.1' }, () => resolve(s));
    });
    const peer = new Promise<import('ws').WebSocket>((resolve) => server.once('connection', resolve));
    const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`, { closeTimeout: 50 });
    await next(ws, 'open');
    const serverSide = await peer;
    const pong = next<[Buffer]>(serverSide, 'pong');
    serverSide.ping('are you there');
    assert.equal((await pong)[0].toString(), 'are you there');
    // The server never answers the close frame: the socket goes after closeTimeout (50 ms, not 30 s).
    serverSide.pause();
    (serverSide as unknown as { _socket: Socket })._socket.pause();
    const started = Date.now();
    const closed = next<[number, Buffer]>(ws, 'close');
    ws.close(1000);
    assert.equal((await closed)[0], 1006);
    assert.ok(Date.now() - started < 5000);
    serverSide.terminate();
    await new Promise((resolve) => server.close(resolve));
  });
});

describe('Blob sends, in order (ws\'s sender queue)', () => {
  test('close() right after send(blob): the blobs go out first, then the close frame; bufferedAmount counts them meanwhile', async () => {
    const { ws, client, done } = await pair();
    const got: string[] = [];
    client.on('message', (data) => got.push(String(data)));
    ws.send(new Blob(['foo']));
    ws.send('bar');
    assert.equal(ws.bufferedAmount, 6, 'queued behind the Blob: 3 + 3 bytes');
    ws.close(1000, 'bye');
    assert.equal(ws.readyState, WebSocket.CLOSING);
    const [code, reason] = await wsClosed(client);
    assert.deepEqual(got, ['foo', 'bar']);
    assert.equal(code, 1000);
    assert.equal(reason, 'bye');
    await done();
  });

  test('a Blob that cannot be read: every queued callback and one error event get its error; the socket ends', async () => {
    const { ws, client, done } = await pair();
    const bad = new Blob(['x']);
    const failure = new DOMException('cannot read', 'NotReadableError');
    bad.arrayBuffer = () => Promise.reject(failure);
    const errors: unknown[] = [];
    const callbacks: unknown[] = [];
    ws.on('error', (error) => errors.push(error));
    ws.send(bad, (error) => callbacks.push(error));
    ws.send('after', (error) => callbacks.push(error));
    const [code] = await wsClosed(client);
    assert.equal(code, 1006);
    assert.deepEqual(callbacks, [failure, failure]);
    assert.deepEqual(errors, [failure]);
    await done();
  });

  test('terminate() while a Blob is read: its callback says the socket closed meanwhile', async () => {
    const { ws, done } = await pair();
    const result = new Promise<Error | undefined>((resolve) => ws.send(new Blob(['late']), resolve));
    ws.terminate();
    const error = await result;
    assert.equal(error?.message, 'The socket was closed while the blob was being read');
    await done();
  });
});
