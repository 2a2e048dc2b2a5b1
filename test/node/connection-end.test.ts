// Every way a connection ends releases its permessage-deflate codec exactly once (its zlib
// contexts are freed then, not at garbage collection): the closing handshake either way,
// terminate(), a failing handler, a protocol error, a reset, a half-close, the close timeout,
// the keepalive timeout; and over the server and connect() too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  InvalidStateError,
  Opcode,
  WebSocket,
  WebSocketServer,
  connect,
  createDeflateCodec,
  type ConnectionSettings,
  type Side,
  type WebSocketHandlers,
} from '../../src/index.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import type { MessageCodec } from '../../src/protocol/index.js';

/** Context takeover both ways, so that each codec holds zlib contexts of its own. */
const TAKEOVER = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };

/** A real deflate codec whose close() calls are counted. */
function countedCodec(side: Side): { codec: MessageCodec; closes: number } {
  const codec = createDeflateCodec(side, TAKEOVER, { threshold: 0 });
  const counted = { codec, closes: 0 };
  const close = codec.close.bind(codec);
  codec.close = () => {
    counted.closes++;
    close();
  };
  return counted;
}

/** Both ends of a loopback TCP connection. */
async function tcpPair(): Promise<{ serverSocket: Socket; clientSocket: Socket }> {
  const listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const clientSocket = netConnect((listener.address() as AddressInfo).port, '127.0.0.1');
  const [[serverSocket]] = (await Promise.all([once(listener, 'connection'), once(clientSocket, 'connect')])) as [[Socket], unknown];
  listener.close();
  return { serverSocket, clientSocket };
}

interface End {
  code: number;
  /** What `send` returned from inside the close handler (false: refused, and no throw). */
  sendAfterClose: boolean;
}

/** A WebSocket on `socket` with a counted codec; `ended` resolves from its close handler. */
function endpoint(socket: Socket, side: Side, handlers: WebSocketHandlers = {}, settings: ConnectionSettings = {}) {
  const counted = countedCodec(side);
  let resolveEnded!: (end: End) => void;
  const ended = new Promise<End>((resolve) => (resolveEnded = resolve));
  const ws = new WebSocket(socket, {
    side,
    data: undefined,
    codec: counted.codec,
    pingInterval: 0,
    closeTimeout: 200,
    ...settings,
    handlers: {
      ...handlers,
      close: (peer, code) => resolveEnded({ code, sendAfterClose: peer.send('too late') }),
    },
  });
  return { ws, counted, ended };
}

/** A server and a client WebSocket over one TCP connection, after one compressed message each way. */
async function openPair(serverHandlers: WebSocketHandlers = {}, serverSettings: ConnectionSettings = {}) {
  const { serverSocket, clientSocket } = await tcpPair();
  let echoed!: () => void;
  const echo = new Promise<void>((resolve) => (echoed = resolve));
  const server = endpoint(serverSocket, 'server', { message: (ws, data) => void ws.send(data), ...serverHandlers }, serverSettings);
  const client = endpoint(clientSocket, 'client', { message: () => echoed() });
  server.ws.start();
  client.ws.start();
  client.ws.send('a compressed message');
  await echo;
  return { server, client, clientSocket };
}

/** The codec was closed exactly once, and is unusable afterwards (its contexts are gone). */
async function assertReleasedOnce(counted: { codec: MessageCodec; closes: number }, where: string): Promise<void> {
  await sleep(30); // a second close (the transport's `close` after its `end`) would come by now
  assert.equal(counted.closes, 1, `${where}: codec closed ${counted.closes} times`);
  assert.throws(() => counted.codec.compress(Buffer.from('x')), InvalidStateError, where);
}

test('the closing handshake started by the server releases both codecs once', async () => {
  const { server, client } = await openPair();
  server.ws.close(1000, 'bye');
  const [s, c] = await Promise.all([server.ended, client.ended]);
  assert.equal(s.code, 1000);
  assert.equal(c.code, 1000);
  assert.equal(s.sendAfterClose, false);
  assert.equal(c.sendAfterClose, false);
  await assertReleasedOnce(server.counted, 'server');
  await assertReleasedOnce(client.counted, 'client');
});

test('the closing handshake started by the client releases both codecs once', async () => {
  const { server, client } = await openPair();
  client.ws.close(1001);
  assert.equal((await server.ended).code, 1001);
  assert.equal((await client.ended).code, 1001);
  await assertReleasedOnce(server.counted, 'server');
  await assertReleasedOnce(client.counted, 'client');
});

test('terminate() releases both codecs once (the peer sees 1006)', async () => {
  const { server, client } = await openPair();
  server.ws.terminate();
  assert.equal((await server.ended).code, 1006);
  assert.equal((await client.ended).code, 1006);
  await assertReleasedOnce(server.counted, 'server');
  await assertReleasedOnce(client.counted, 'client');
});

test('a handler that throws (1011) releases both codecs once', async () => {
  const { server, client } = await openPair({
    message: (ws, data) => {
      if (String(data) === 'boom') throw new Error('handler bug');
      ws.send(data);
    },
  });
  client.ws.send('boom');
  assert.equal((await client.ended).code, 1011);
  await server.ended;
  await assertReleasedOnce(server.counted, 'server');
  await assertReleasedOnce(client.counted, 'client');
});

test('a protocol error from the peer (1002) releases both codecs once', async () => {
  const { server, client, clientSocket } = await openPair();
  clientSocket.write(Buffer.from([0x81, 0x00])); // an unmasked client frame (RFC 6455 §5.1)
  assert.equal((await client.ended).code, 1002);
  await server.ended;
  await assertReleasedOnce(server.counted, 'server');
  await assertReleasedOnce(client.counted, 'client');
});

test('a connection reset (socket error) releases both codecs once', async () => {
  const errors: Error[] = [];
  const { server, client, clientSocket } = await openPair({ error: (_ws, error) => void errors.push(error) });
  clientSocket.resetAndDestroy();
  assert.equal((await server.ended).code, 1006);
  assert.equal((await client.ended).code, 1006);
  assert.deepEqual(
    errors.map((error) => (error as NodeJS.ErrnoException).code),
    ['ECONNRESET'],
  );
  await assertReleasedOnce(server.counted, 'server');
  await assertReleasedOnce(client.counted, 'client');
});

test('a peer that half-closes without a close frame (end, then close) releases both codecs once', async () => {
  const { server, client, clientSocket } = await openPair();
  clientSocket.end();
  assert.equal((await server.ended).code, 1006);
  assert.equal((await client.ended).code, 1006);
  await assertReleasedOnce(server.counted, 'server');
  await assertReleasedOnce(client.counted, 'client');
});

test('the close timeout (the peer never answers the close frame) releases the codec once', async () => {
  const { serverSocket, clientSocket } = await tcpPair();
  clientSocket.on('data', () => {}); // reads, never answers
  const server = endpoint(serverSocket, 'server', {}, { closeTimeout: 50 });
  server.ws.start();
  server.ws.send('compressed before closing');
  server.ws.close();
  assert.equal((await server.ended).code, 1006);
  await assertReleasedOnce(server.counted, 'server');
  clientSocket.destroy();
});

test('the keepalive timeout (no pong) releases the codec once', async () => {
  const { serverSocket, clientSocket } = await tcpPair();
  clientSocket.on('data', () => {}); // never answers the pings
  const server = endpoint(serverSocket, 'server', {}, { pingInterval: 20, pingTimeout: 20 });
  server.ws.start();
  assert.equal((await server.ended).code, 1006);
  await assertReleasedOnce(server.counted, 'server');
  clientSocket.destroy();
});

test('data received with the handshake, then the end: the codec is released once', async () => {
  const { serverSocket, clientSocket } = await tcpPair();
  const server = endpoint(serverSocket, 'server');
  // A masked close frame arrives with the upgrade request (the `head` of the upgrade event).
  server.ws.start(encodeFrame(Opcode.Close, Buffer.from([0x03, 0xe8]), { maskKey: Uint8Array.of(1, 2, 3, 4) }));
  clientSocket.on('data', () => {});
  clientSocket.end();
  assert.equal((await server.ended).code, 1000);
  await assertReleasedOnce(server.counted, 'server');
});

test('server and connect(): both ends release the codecs the handshake made', async () => {
  let serverSide!: WebSocket;
  let serverClosed!: () => void;
  const closed = new Promise<void>((resolve) => (serverClosed = resolve));
  const server = new WebSocketServer({
    perMessageDeflate: { threshold: 0 },
    handlers: {
      open: (ws) => void (serverSide = ws),
      message: (ws, data) => void ws.send(data),
      close: () => serverClosed(),
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  try {
    let echoed!: () => void;
    const echo = new Promise<void>((resolve) => (echoed = resolve));
    let clientClosed!: () => void;
    const clientDone = new Promise<void>((resolve) => (clientClosed = resolve));
    const client = await connect(`ws://127.0.0.1:${port}/`, { perMessageDeflate: { threshold: 0 }, handlers: { message: () => echoed(), close: () => clientClosed() } });
    assert.match(client.extensions, /permessage-deflate/);
    client.send('compressed both ways');
    await echo;
    const serverCodec = serverSide.connection.messageCodec!;
    const clientCodec = client.connection.messageCodec!;
    client.close();
    await Promise.all([closed, clientDone]);
    assert.throws(() => serverCodec.compress(Buffer.from('x')), InvalidStateError);
    assert.throws(() => clientCodec.compress(Buffer.from('x')), InvalidStateError);
  } finally {
    await server.close();
  }
});
