// The Node connection's behaviour over real sockets: flow control, slow consumers, keepalive,
// idle timeout, async iteration with read pausing, class handlers, failing handlers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { WebSocket as WsClient, type RawData } from 'ws';
import {
  WebSocketServer,
  WebSocketHandler,
  connect,
  fromClass,
  prepareMessage,
  type MessageData,
  type WebSocket,
  type WebSocketServerOptions,
} from '../../src/index.js';

async function serve<D = undefined>(options: WebSocketServerOptions<D>): Promise<{ url: string; server: WebSocketServer<D> }> {
  const server = new WebSocketServer<D>(options);
  const { port } = await server.listen(0);
  return { url: `ws://127.0.0.1:${port}/`, server };
}

async function wsClient(url: string): Promise<WsClient> {
  const client = new WsClient(url);
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  return client;
}

function rawSocket(client: WsClient): Socket {
  return (client as unknown as { _socket: Socket })._socket;
}

function closeCode(client: WsClient): Promise<[number, string]> {
  return new Promise((resolve) => client.once('close', (code: number, reason: Buffer) => resolve([code, reason.toString()])));
}

const waitFor = async (predicate: () => boolean, ms = 3000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

test('send() reports backpressure at the high watermark and drain fires at the low watermark', async () => {
  let drained = 0;
  let peer!: WebSocket<undefined>;
  const { url, server } = await serve({
    highWaterMark: 64 * 1024,
    lowWaterMark: 8 * 1024,
    maxBufferedAmount: 64 << 20,
    handlers: { open: (ws) => void (peer = ws), drain: () => void drained++ },
  });
  const client = await wsClient(url);
  await waitFor(() => peer !== undefined);
  rawSocket(client).pause(); // the client stops reading: the server's buffer fills
  const chunk = Buffer.alloc(32 * 1024, 1);
  let sends = 0;
  while (peer.send(chunk)) sends++;
  // The kernel's socket buffers take some first; after that the user-space buffer grows.
  assert.ok(peer.bufferedAmount >= 64 * 1024, `bufferedAmount ${peer.bufferedAmount}`);
  assert.ok(sends > 0);
  assert.equal(drained, 0);
  let received = 0;
  client.on('message', () => void received++);
  rawSocket(client).resume();
  await waitFor(() => drained === 1);
  assert.ok(peer.bufferedAmount <= 8 * 1024);
  await waitFor(() => received === sends + 1);
  client.close();
  await server.close();
});

test('a slow consumer over the ceiling is closed with 1008 while another client keeps receiving', async () => {
  const { url, server } = await serve({ maxBufferedAmount: 256 * 1024, handlers: {} });
  const slow = await wsClient(url);
  const fast = await wsClient(url);
  await waitFor(() => server.clients.size === 2);
  rawSocket(slow).pause();
  const slowClosed = closeCode(slow);
  let fastReceived = 0;
  fast.on('message', () => void fastReceived++);
  const message = Buffer.alloc(16 * 1024, 7);
  for (let i = 0; i < 400; i++) {
    for (const ws of server.clients) ws.send(message);
    await new Promise((r) => setImmediate(r));
  }
  await waitFor(() => fastReceived === 400);
  rawSocket(slow).resume();
  assert.deepEqual(await slowClosed, [1008, 'slow consumer']);
  assert.equal(fast.readyState, WsClient.OPEN);
  fast.close();
  await server.close();
});

test("the 'drop' policy drops messages over the ceiling and keeps the connection", async () => {
  let peer!: WebSocket<undefined>;
  const { url, server } = await serve({ maxBufferedAmount: 128 * 1024, slowConsumer: 'drop', handlers: { open: (ws) => void (peer = ws) } });
  const client = await wsClient(url);
  await waitFor(() => peer !== undefined);
  rawSocket(client).pause();
  const message = Buffer.alloc(32 * 1024);
  let refused = 0;
  for (let i = 0; i < 200; i++) if (!peer.send(message) && peer.bufferedAmount >= 128 * 1024) refused++;
  assert.ok(refused > 0);
  assert.equal(peer.readyState, 1);
  const last = new Promise<string>((resolve) => client.on('message', (d: RawData, binary: boolean) => !binary && resolve(String(d))));
  rawSocket(client).resume();
  await waitFor(() => peer.bufferedAmount === 0);
  peer.send('still here');
  assert.equal(await last, 'still here');
  client.close();
  await server.close();
});

test('sendAsync resolves once written and rejects after close; send after close returns false', async () => {
  let peer!: WebSocket<undefined>;
  const { url, server } = await serve({ handlers: { open: (ws) => void (peer = ws) } });
  const client = await wsClient(url);
  await waitFor(() => peer !== undefined);
  const got = new Promise<string>((resolve) => client.once('message', (d: RawData) => resolve(String(d))));
  await peer.sendAsync('flushed');
  assert.equal(await got, 'flushed');
  peer.close(1000);
  assert.equal(peer.send('late'), false);
  await assert.rejects(peer.sendAsync('late'), { name: 'InvalidStateError' });
  await server.close();
});

test('keepalive: a peer that stops answering pings is released within interval + timeout', async () => {
  let closed: [number, number] | undefined;
  let opened = 0;
  const { url, server } = await serve({
    pingInterval: 100,
    pingTimeout: 100,
    handlers: { open: () => void (opened = Date.now()), close: (_ws, code) => void (closed = [code, Date.now()]) },
  });
  const client = await wsClient(url);
  client.on('error', () => {});
  rawSocket(client).pause(); // alive at TCP level, but never reads the ping nor answers it
  await waitFor(() => closed !== undefined, 2000);
  assert.equal(closed![0], 1006);
  const elapsed = closed![1] - opened;
  assert.ok(elapsed >= 180 && elapsed < 1000, `released after ${elapsed} ms`);
  assert.equal(server.clients.size, 0);
  client.terminate();
  await server.close();
});

test('keepalive: a live peer answers pings and stays connected', async () => {
  let pongs = 0;
  const { url, server } = await serve({ pingInterval: 50, pingTimeout: 100, handlers: { pong: () => void pongs++ } });
  const client = await wsClient(url); // ws answers pings automatically
  await new Promise((r) => setTimeout(r, 400));
  assert.ok(pongs >= 3, `${pongs} pongs`);
  assert.equal(client.readyState, WsClient.OPEN);
  client.close();
  await server.close();
});

test('idle timeout closes with 1001 when no message goes either way', async () => {
  const { url, server } = await serve({ idleTimeout: 150, pingInterval: 0, handlers: {} });
  const client = await wsClient(url);
  const started = Date.now();
  assert.deepEqual(await closeCode(client), [1001, 'idle timeout']);
  assert.ok(Date.now() - started >= 140);
  await server.close();
});

test('async iteration: messages arrive in order and reading pauses while the consumer lags', async () => {
  const seen: MessageData[] = [];
  let pausedObserved = false;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const { url, server } = await serve({
    maxQueuedMessages: 8,
    handlers: {
      async open(ws) {
        for await (const message of ws) {
          seen.push(message);
          if (ws.rawSocket.isPaused()) pausedObserved = true;
          await new Promise((r) => setTimeout(r, 1)); // a slow consumer
        }
        done();
      },
    },
  });
  const client = await wsClient(url);
  for (let i = 0; i < 200; i++) client.send(`m${i}`);
  client.send(Buffer.from([1, 2, 3]));
  await waitFor(() => seen.length === 201, 5000);
  assert.deepEqual(seen.slice(0, 3), ['m0', 'm1', 'm2']);
  assert.equal(seen[199], 'm199');
  assert.ok(Buffer.isBuffer(seen[200]));
  assert.ok(pausedObserved, 'the socket was paused while messages waited');
  client.close();
  await finished; // the loop ends when the connection closes
  await server.close();
});

test('class handlers: one instance per connection, with message() or with iteration', async () => {
  class Echo extends WebSocketHandler<undefined> {
    count = 0;
    message(data: MessageData): void {
      this.count++;
      this.send(`${this.count}:${String(data)}`);
    }
  }
  class Iterating extends WebSocketHandler<undefined> {
    async open(): Promise<void> {
      for await (const m of this.ws) this.send(`it:${String(m)}`);
    }
  }
  for (const [cls, expected] of [
    [Echo, ['1:a', '2:b']],
    [Iterating, ['it:a', 'it:b']],
  ] as const) {
    const { url, server } = await serve({ handlers: fromClass(cls) });
    const c1 = await wsClient(url);
    const got: string[] = [];
    c1.on('message', (d: RawData) => got.push(String(d)));
    c1.send('a');
    c1.send('b');
    await waitFor(() => got.length === 2);
    assert.deepEqual(got, expected);
    // A second connection gets its own instance (counts restart).
    const c2 = await wsClient(url);
    const first = new Promise<string>((resolve) => c2.once('message', (d: RawData) => resolve(String(d))));
    c2.send('a');
    assert.equal(await first, expected[0]);
    c1.close();
    c2.close();
    await server.close();
  }
});

test('a handler that throws or rejects closes that connection with 1011 and nothing else', async () => {
  const errors: string[] = [];
  const { url, server } = await serve({
    handlers: {
      async message(ws, data) {
        if (data === 'throw') throw new Error('boom');
        if (data === 'reject') await Promise.reject(new Error('async boom'));
        ws.send(`ok:${String(data)}`);
      },
      error: (_ws, error) => void errors.push(error.message),
    },
  });
  const a = await wsClient(url);
  const b = await wsClient(url);
  const c = await wsClient(url);
  const closedA = closeCode(a);
  const closedB = closeCode(b);
  a.send('throw');
  b.send('reject');
  assert.deepEqual(await closedA, [1011, 'internal error']);
  assert.deepEqual(await closedB, [1011, 'internal error']);
  const reply = new Promise<string>((resolve) => c.once('message', (d: RawData) => resolve(String(d))));
  c.send('hello');
  assert.equal(await reply, 'ok:hello');
  assert.deepEqual(errors.sort(), ['async boom', 'boom']);
  c.close();
  await server.close();
});

test('client side: async iteration over connect() with no handlers', async () => {
  const { url, server } = await serve({
    handlers: {
      open(ws) {
        ws.send('one');
        ws.send(Buffer.from('two'));
        ws.close(1000, 'end');
      },
    },
  });
  const ws = await connect(url);
  const got: MessageData[] = [];
  for await (const m of ws) got.push(m);
  assert.deepEqual(got, ['one', Buffer.from('two')]);
  await server.close();
});

test('sendPrepared: one frame (and one compressed frame) fanned out to plain and deflate clients', async () => {
  const { url, server } = await serve({ perMessageDeflate: true, handlers: {} });
  const plain = await wsClient(url);
  const deflated = new WsClient(url, { perMessageDeflate: true });
  await new Promise((resolve) => deflated.once('open', resolve));
  assert.match(deflated.extensions, /permessage-deflate/);
  await waitFor(() => server.clients.size === 2);
  const text = JSON.stringify({ greeting: 'hello'.repeat(500) }); // over the 1 KiB threshold
  const prepared = prepareMessage(text);
  const got = Promise.all(
    [plain, deflated].map((c) => new Promise<string>((resolve) => c.once('message', (d: RawData) => resolve(String(d))))),
  );
  for (const ws of server.clients) assert.equal(ws.sendPrepared(prepared), true);
  assert.deepEqual(await got, [text, text]);
  const binary = prepareMessage(Buffer.from([1, 2, 3]));
  const gotBinary = new Promise<boolean>((resolve) => plain.once('message', (_d: RawData, isBinary: boolean) => resolve(isBinary)));
  for (const ws of server.clients) ws.sendPrepared(binary);
  assert.equal(await gotBinary, true);
  plain.close();
  deflated.close();
  await server.close();
});
