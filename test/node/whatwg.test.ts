// The browser `WebSocket` API on Node: browser-style code run unchanged against a duplex server
// and a `ws` server, binaryType, the spec's exceptions, close codes and event timing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer as WsServer, type RawData } from 'ws';
import { CloseEvent, HandshakeError, WHATWGWebSocket, WebSocketErrorEvent, WebSocketServer } from '../../src/index.js';
import { docExample, runExample } from './readme-example.js';

/**
 * Browser code, as a browser developer writes it: only the `WebSocket` constructor is injected.
 * open → send text and bytes → check the echoes → close → report.
 */
function browserSnippet(WebSocket: typeof WHATWGWebSocket, url: string): Promise<string[]> {
  return new Promise((resolve) => {
    const log: string[] = [];
    const socket = new WebSocket(url, ['chat']);
    socket.binaryType = 'arraybuffer';
    log.push(`state ${socket.readyState}`);
    socket.onopen = () => {
      log.push(`open ${socket.readyState} ${socket.protocol}`);
      socket.send('hello');
      socket.send(new Uint8Array([1, 2, 3]).buffer);
    };
    socket.onmessage = (event) => {
      if (typeof event.data === 'string') {
        log.push(`text ${event.data}`);
      } else {
        log.push(`binary ${event.data instanceof ArrayBuffer} ${new Uint8Array(event.data as ArrayBuffer).join(',')}`);
        socket.close(1000, 'done');
        log.push(`closing ${socket.readyState === WebSocket.CLOSING}`);
      }
    };
    socket.onerror = () => log.push('error');
    socket.onclose = (event) => {
      log.push(`close ${event.code} ${event.reason} ${event.wasClean} ${socket.readyState}`);
      resolve(log);
    };
  });
}

const EXPECTED = ['state 0', 'open 1 chat', 'text hello', 'binary true 1,2,3', 'closing true', 'close 1000 done true 3'];

async function duplexEcho(protocols?: string[]): Promise<{ url: string; close: () => Promise<void>; closes: [number, string][] }> {
  const closes: [number, string][] = [];
  const server = new WebSocketServer({
    protocols,
    handlers: {
      message: (ws, data, isBinary) => void ws.send(data, { binary: isBinary }),
      close: (_ws, code, reason) => void closes.push([code, reason]),
    },
  });
  const { port } = await server.listen(0);
  return { url: `ws://127.0.0.1:${port}/echo`, close: () => server.close(), closes };
}

async function wsEcho(): Promise<{ url: string; server: WsServer; close: () => Promise<void> }> {
  const server = new WsServer({ port: 0, host: '127.0.0.1' });
  server.on('connection', (ws) => ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { url: `ws://127.0.0.1:${port}/`, server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function nextEvent<E extends Event>(target: EventTarget, type: string): Promise<E> {
  return new Promise((resolve) => target.addEventListener(type, (event) => resolve(event as E), { once: true }));
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('browser code runs unchanged', { timeout: 5000 }, () => {
  test('against a duplex server', async () => {
    const { url, close, closes } = await duplexEcho(['chat']);
    assert.deepEqual(await browserSnippet(WHATWGWebSocket, url), EXPECTED);
    await close();
    assert.deepEqual(closes, [[1000, 'done']]);
  });

  test('against a ws server', async () => {
    const { url, server, close } = await wsEcho();
    const serverSaw = new Promise<[number, string]>((resolve) =>
      server.once('connection', (ws) => ws.once('close', (code: number, reason: Buffer) => resolve([code, reason.toString()]))),
    );
    assert.deepEqual(await browserSnippet(WHATWGWebSocket, url), EXPECTED);
    assert.deepEqual(await serverSaw, [1000, 'done']);
    await close();
  });

  test('the example of docs/clients.md runs against a duplex and a ws server', async () => {
    const code = docExample('docs/clients.md', "The browser's `WebSocket` API", 'WHATWGWebSocket');
    for (const start of [duplexEcho, wsEcho]) {
      const server = await start();
      try {
        const lines = await runExample(code, { 'ws://127.0.0.1:8080/': server.url });
        assert.deepEqual(lines, ['text hello', 'binary 1,2,3', 'closed 1000 done true']);
      } finally {
        await server.close();
      }
    }
  });
});

describe('the WHATWG API', { timeout: 5000 }, () => {
  let echo: Awaited<ReturnType<typeof duplexEcho>>;
  let wsServer: Awaited<ReturnType<typeof wsEcho>>;
  before(async () => {
    echo = await duplexEcho();
    wsServer = await wsEcho();
  });
  after(async () => {
    await echo.close();
    await wsServer.close();
  });

  test('constants, url, and open never fires synchronously', async () => {
    assert.equal(WHATWGWebSocket.CONNECTING, 0);
    assert.equal(WHATWGWebSocket.OPEN, 1);
    assert.equal(WHATWGWebSocket.CLOSING, 2);
    assert.equal(WHATWGWebSocket.CLOSED, 3);
    const socket = new WHATWGWebSocket(echo.url.replace('ws:', 'http:'));
    assert.equal(socket.CONNECTING, 0);
    assert.equal(socket.CLOSED, 3);
    assert.ok(!Object.hasOwn(socket, 'OPEN'), 'constants live on the prototype');
    assert.equal(socket.url, echo.url); // http: maps to ws:
    assert.equal(socket.binaryType, 'blob');
    assert.equal(socket.protocol, '');
    assert.equal(socket.bufferedAmount, 0);
    assert.ok(socket instanceof EventTarget);
    assert.equal(Object.prototype.toString.call(socket), '[object WebSocket]');
    let opened = false;
    socket.addEventListener('open', () => (opened = true));
    await Promise.resolve();
    await new Promise((resolve) => process.nextTick(resolve));
    assert.equal(opened, false);
    assert.equal(socket.readyState, WHATWGWebSocket.CONNECTING);
    await nextEvent(socket, 'open');
    assert.equal(socket.readyState, WHATWGWebSocket.OPEN);
    socket.close();
    const event = await nextEvent<CloseEvent>(socket, 'close');
    assert.ok(event instanceof CloseEvent && event instanceof Event);
    assert.equal(event.code, 1000); // close() without a code sends 1000 (see docs/clients.md)
    assert.equal(event.wasClean, true);
  });

  test('binaryType: blob by default, arraybuffer, nodebuffer; unknown values are ignored', async () => {
    const socket = new WHATWGWebSocket(wsServer.url);
    await nextEvent(socket, 'open');
    socket.send(Buffer.from('blob'));
    const blob = (await nextEvent<MessageEvent>(socket, 'message')).data as Blob;
    assert.ok(blob instanceof Blob);
    assert.equal(await blob.text(), 'blob');

    socket.binaryType = 'arraybuffer';
    socket.send(new DataView(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2));
    const buffer = (await nextEvent<MessageEvent>(socket, 'message')).data as ArrayBuffer;
    assert.ok(buffer instanceof ArrayBuffer);
    assert.deepEqual([...new Uint8Array(buffer)], [8, 7]);

    socket.binaryType = 'nodebuffer';
    socket.binaryType = 'fragments' as 'blob'; // not ours: ignored, as WebIDL asks of enums
    assert.equal(socket.binaryType, 'nodebuffer');
    socket.send(new Blob(['from a blob']));
    const node = (await nextEvent<MessageEvent>(socket, 'message')).data as Buffer;
    assert.ok(Buffer.isBuffer(node));
    assert.equal(node.toString(), 'from a blob');
    socket.close(3000);
    await nextEvent(socket, 'close');
  });

  test('a Blob keeps its place in the send order; listeners and on… attributes both fire', async () => {
    const socket = new WHATWGWebSocket(echo.url);
    await nextEvent(socket, 'open');
    socket.binaryType = 'nodebuffer'; // String(buffer) is its text
    const got: string[] = [];
    socket.onmessage = (event) => void got.push(`on:${String(event.data)}`);
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const listener = (event: Event): void => {
      got.push(`listener:${String((event as MessageEvent).data)}`);
      if (got.length === 6) done();
    };
    socket.addEventListener('message', listener);
    socket.send('one');
    socket.send(new Blob(['two']));
    socket.send('three');
    assert.ok(socket.bufferedAmount >= 3, 'the blob and what follows it are buffered');
    await finished;
    assert.deepEqual(got, ['on:one', 'listener:one', 'on:two', 'listener:two', 'on:three', 'listener:three']);
    // Setting the attribute to null removes it; removeEventListener removes the listener.
    socket.onmessage = null;
    assert.equal(socket.onmessage, null);
    socket.removeEventListener('message', listener);
    got.length = 0;
    const handler = (): void => void got.push('again');
    socket.onmessage = handler;
    assert.equal(socket.onmessage, handler);
    socket.send('x');
    await nextEvent(socket, 'message');
    assert.deepEqual(got, ['again']);
    socket.close();
    await nextEvent(socket, 'close');
  });

  test('send while CONNECTING throws InvalidStateError; after close it only grows bufferedAmount', async () => {
    const socket = new WHATWGWebSocket(echo.url);
    assert.throws(
      () => socket.send('too early'),
      (error: unknown) => error instanceof DOMException && error.name === 'InvalidStateError',
    );
    await nextEvent(socket, 'open');
    socket.close(4000, 'bye');
    assert.equal(socket.readyState, WHATWGWebSocket.CLOSING);
    socket.send('late'); // no throw
    socket.send(new Uint8Array(10));
    assert.ok(socket.bufferedAmount >= 14);
    const event = await nextEvent<CloseEvent>(socket, 'close');
    assert.deepEqual([event.code, event.reason, event.wasClean], [4000, 'bye', true]);
    socket.send('later still');
    assert.ok(socket.bufferedAmount >= 25);
    assert.equal(socket.readyState, WHATWGWebSocket.CLOSED);
  });

  test('close() validates code and reason as the spec says', async () => {
    const socket = new WHATWGWebSocket(echo.url);
    await nextEvent(socket, 'open');
    const isDomError = (name: string) => (error: unknown) => error instanceof DOMException && error.name === name;
    for (const code of [0, 999, 1001, 1005, 1006, 1011, 2999, 5000]) {
      assert.throws(() => socket.close(code), isDomError('InvalidAccessError'), `code ${code}`);
    }
    assert.throws(() => socket.close(1000, 'x'.repeat(124)), isDomError('SyntaxError'));
    assert.throws(() => socket.close(1000, 'é'.repeat(62)), isDomError('SyntaxError')); // 124 bytes
    assert.equal(socket.readyState, WHATWGWebSocket.OPEN);
    socket.close(4999, 'é'.repeat(61)); // 122 bytes: fine
    socket.close(3000); // already closing: ignored
    const event = await nextEvent<CloseEvent>(socket, 'close');
    assert.deepEqual([event.code, event.reason], [4999, 'é'.repeat(61)]);
    assert.throws(() => socket.close(1001), isDomError('InvalidAccessError')); // validated even when closed
  });

  test('the constructor throws SyntaxError for bad URLs and subprotocols', () => {
    const syntax = (error: unknown): boolean => error instanceof DOMException && error.name === 'SyntaxError';
    assert.throws(() => new WHATWGWebSocket('not a url'), syntax);
    assert.throws(() => new WHATWGWebSocket('ftp://127.0.0.1/'), syntax);
    assert.throws(() => new WHATWGWebSocket('ws://127.0.0.1/#fragment'), syntax);
    assert.throws(() => new WHATWGWebSocket('ws://127.0.0.1/', 'two words'), syntax);
    assert.throws(() => new WHATWGWebSocket('ws://127.0.0.1/', ['chat', 'chat']), syntax);
  });

  test('a failed connection fires error, then close with 1006', async () => {
    const socket = new WHATWGWebSocket(`ws://127.0.0.1:${await closedPort()}/`);
    const order: string[] = [];
    socket.onerror = (event) => order.push(`error ${socket.readyState} ${(event as WebSocketErrorEvent).error?.message.includes('ECONNREFUSED')}`);
    const event = await new Promise<CloseEvent>((resolve) => (socket.onclose = resolve));
    order.push(`close ${event.code} ${event.wasClean}`);
    assert.deepEqual(order, ['error 3 true', 'close 1006 false']);

    // A refused handshake: the error event carries the HTTP status.
    const refusing = createServer();
    refusing.on('upgrade', (_req, raw) => raw.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    const refused = new WHATWGWebSocket(`ws://127.0.0.1:${(refusing.address() as AddressInfo).port}/`);
    const [error, close] = await Promise.all([nextEvent<WebSocketErrorEvent>(refused, 'error'), nextEvent<CloseEvent>(refused, 'close')]);
    assert.ok(error.error instanceof HandshakeError && error.error.status === 401);
    assert.equal(close.code, 1006);
    refusing.close();
  });

  test('close() while CONNECTING fails the connection: error, then close 1006', async () => {
    let connected = 0;
    wsServer.server.once('connection', () => connected++);
    const socket = new WHATWGWebSocket(wsServer.url);
    const events: string[] = [];
    socket.addEventListener('open', () => events.push('open'));
    socket.addEventListener('error', () => events.push('error'));
    socket.close();
    assert.equal(socket.readyState, WHATWGWebSocket.CLOSING);
    const event = await nextEvent<CloseEvent>(socket, 'close');
    assert.deepEqual(events, ['error']);
    assert.deepEqual([event.code, event.wasClean], [1006, false]);
    assert.ok(connected <= 1);
  });

  test('a server-initiated close reaches onclose with its code and reason', async () => {
    const server = new WsServer({ port: 0, host: '127.0.0.1' });
    server.on('connection', (ws) => ws.close(4001, 'go away'));
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const socket = new WHATWGWebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const events: string[] = [];
    socket.onopen = () => events.push('open');
    const event = await new Promise<CloseEvent>((resolve) => (socket.onclose = resolve));
    assert.deepEqual(events, ['open']);
    assert.deepEqual([event.code, event.reason, event.wasClean], [4001, 'go away', true]);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
