// The ws-compatible WebSocketServer's own workings: its three modes, the handshake checks in ws's
// order with their statuses (and duplex's stricter 426 and 400s), verifyClient, handleProtocols,
// the 'headers' and 'wsClientError' events, client tracking and ws 8's close() semantics.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket as WsClient } from 'ws';
import { WebSocket, WebSocketServer, type ServerOptions } from '../../src/ws/index.js';
import { rawExchange, until, wsClosed, wsOpen, wsRefusal } from '../node/server-helpers.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** A server on 127.0.0.1, port 0, listening. */
async function listening(options: Omit<ServerOptions, 'port'> = {}): Promise<{ wss: WebSocketServer; port: number; url: string }> {
  const wss = await new Promise<WebSocketServer>((resolve, reject) => {
    const server: WebSocketServer = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options }, () => resolve(server));
    server.once('error', reject);
  });
  const { port } = wss.address() as AddressInfo;
  return { wss, port, url: `ws://127.0.0.1:${port}` };
}

function closeServer(wss: WebSocketServer): Promise<void> {
  for (const client of wss.clients ?? []) client.terminate();
  return new Promise((resolve) => wss.close(() => resolve()));
}

/** An upgrade request with the given changes: `null` removes a header. */
function upgradeRequest(changes: { method?: string; path?: string; version?: string; headers?: Record<string, string | null> } = {}): string {
  const headers: Record<string, string | null> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
    ...changes.headers,
  };
  let out = `${changes.method ?? 'GET'} ${changes.path ?? '/'} HTTP/${changes.version ?? '1.1'}\r\n`;
  for (const [name, value] of Object.entries(headers)) if (value !== null) out += `${name}: ${value}\r\n`;
  return `${out}\r\n`;
}

/** Status code, headers (lower-case) and body of a raw HTTP response. */
function parseResponse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const end = raw.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: raw.slice(end + 4) };
}

describe('construction and modes', () => {
  test('exactly one of port, server, noServer, else ws\'s TypeError', () => {
    const message = 'One and only one of the "port", "server", or "noServer" options must be specified';
    assert.throws(() => new WebSocketServer({}), { name: 'TypeError', message });
    assert.throws(() => new WebSocketServer({ port: 0, noServer: true }), { name: 'TypeError', message });
    assert.throws(() => new WebSocketServer({ server: createServer(), noServer: true }), { name: 'TypeError', message });
  });

  test('port mode answers plain HTTP requests with 426 Upgrade Required', async () => {
    const { wss, port } = await listening();
    const res = parseResponse(await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    assert.equal(res.status, 426);
    assert.equal(res.body, 'Upgrade Required');
    await closeServer(wss);
  });

  test('ws\'s defaults are in wss.options; perMessageDeflate is off by default', async () => {
    const { wss, url } = await listening();
    assert.equal(wss.options.maxPayload, 100 * 1024 * 1024);
    assert.equal(wss.options.clientTracking, true);
    assert.equal(wss.options.perMessageDeflate, false);
    const { client, headers } = await wsOpen(url);
    assert.equal(headers['sec-websocket-extensions'], undefined);
    client.close();
    await wsClosed(client);
    await closeServer(wss);
  });

  test('noServer: address() throws, handleUpgrade by hand works, the same socket twice throws', async () => {
    const wss = new WebSocketServer({ noServer: true });
    assert.throws(() => wss.address(), { message: 'The server is operating in "noServer" mode' });
    const http = createServer();
    const second: Error[] = [];
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.send('hi');
        try {
          wss.handleUpgrade(req, socket, head, () => {});
        } catch (error) {
          second.push(error as Error);
        }
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const client = new WsClient(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
    const [message] = await new Promise<[Buffer]>((resolve) => client.once('message', (data: Buffer) => resolve([data])));
    assert.equal(message.toString(), 'hi');
    assert.equal(second.length, 1);
    assert.match(second[0].message, /^server\.handleUpgrade\(\) was called more than once with the same socket/);
    client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise((resolve) => http.close(resolve));
  });
});

describe('handshake refusals, in ws\'s order', () => {
  const cases: Array<[string, Parameters<typeof upgradeRequest>[0], number, string]> = [
    ['a method other than GET', { method: 'POST' }, 405, 'Invalid HTTP method'],
    ['an Upgrade other than websocket', { headers: { Upgrade: 'foo' } }, 400, 'Invalid Upgrade header'],
    ['a missing key', { headers: { 'Sec-WebSocket-Key': null } }, 400, 'Missing or invalid Sec-WebSocket-Key header'],
    ['an invalid key', { headers: { 'Sec-WebSocket-Key': 'short' } }, 400, 'Missing or invalid Sec-WebSocket-Key header'],
    // duplex: 426 with the versions it speaks, 13 and 8 as ws (ws: 400).
    ['version 12', { headers: { 'Sec-WebSocket-Version': '12' } }, 426, 'Missing or invalid Sec-WebSocket-Version header'],
    ['a missing version', { headers: { 'Sec-WebSocket-Version': null } }, 426, 'Missing or invalid Sec-WebSocket-Version header'],
    ['a repeated subprotocol', { headers: { 'Sec-WebSocket-Protocol': 'a, a' } }, 400, 'Invalid Sec-WebSocket-Protocol header'],
    ['a malformed subprotocol list', { headers: { 'Sec-WebSocket-Protocol': 'a b' } }, 400, 'Invalid Sec-WebSocket-Protocol header'],
  ];
  for (const [what, changes, status, message] of cases) {
    test(`${what} → ${status} "${message}"`, async () => {
      const { wss, port } = await listening();
      const res = parseResponse(await rawExchange(port, upgradeRequest(changes)));
      assert.equal(res.status, status);
      assert.equal(res.body, message);
      assert.equal(res.headers.connection, 'close');
      if (status === 426) assert.equal(res.headers['sec-websocket-version'], '13, 8');
      await closeServer(wss);
    });
  }

  test('duplex refuses HTTP/1.0 with 400 (ws does not check)', async () => {
    const { wss, port } = await listening();
    const res = parseResponse(await rawExchange(port, upgradeRequest({ version: '1.0' })));
    assert.equal(res.status, 400);
    assert.match(res.body, /HTTP\/1\.1/);
    await closeServer(wss);
  });

  test('another path → 400 Bad Request, before the subprotocol check', async () => {
    const { wss, port } = await listening({ path: '/chat' });
    const res = parseResponse(await rawExchange(port, upgradeRequest({ path: '/other', headers: { 'Sec-WebSocket-Protocol': 'a, a' } })));
    assert.equal(res.status, 400);
    assert.equal(res.body, 'Bad Request');
    const { client } = await wsOpen(`ws://127.0.0.1:${port}/chat?x=1`);
    client.terminate();
    await closeServer(wss);
  });

  test('permessage-deflate offered with nothing acceptable → 400 when compression is on', async () => {
    const { wss, port } = await listening({ perMessageDeflate: true });
    const request = upgradeRequest({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=99' } });
    const res = parseResponse(await rawExchange(port, request));
    assert.equal(res.status, 400);
    assert.equal(res.body, 'Invalid or unacceptable Sec-WebSocket-Extensions header');
    await closeServer(wss);
  });

  test('wsClientError listeners get the error, the socket and the request, and answer themselves', async () => {
    const { wss, port } = await listening();
    const seen: string[] = [];
    wss.on('wsClientError', (error: Error, socket: Duplex, req: IncomingMessage) => {
      seen.push(`${error.message} ${req.method}`);
      socket.end('HTTP/1.1 418 I\'m a Teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    const res = parseResponse(await rawExchange(port, upgradeRequest({ method: 'PUT' })));
    assert.equal(res.status, 418);
    assert.deepEqual(seen, ['Invalid HTTP method PUT']);
    await closeServer(wss);
  });
});

describe('verifyClient and handleProtocols', () => {
  test('sync verifyClient false → 401; info carries origin, secure and req', async () => {
    const infos: Array<{ origin: string | undefined; secure: boolean; url: string | undefined }> = [];
    const { wss, url } = await listening({
      verifyClient: (info) => {
        infos.push({ origin: info.origin, secure: info.secure, url: info.req.url });
        return false;
      },
    });
    const refusal = await wsRefusal(`${url}/v`, { origin: 'https://example.test' });
    assert.equal(refusal.status, 401);
    assert.equal(refusal.body, 'Unauthorized');
    assert.deepEqual(infos, [{ origin: 'https://example.test', secure: false, url: '/v' }]);
    await closeServer(wss);
  });

  test('async verifyClient refuses with its code, message and headers, or accepts', async () => {
    const { wss, url } = await listening({
      verifyClient: (info, done) => {
        if (info.req.url === '/ok') setImmediate(() => done(true));
        else setImmediate(() => done(false, 403, 'No entry', { 'X-Why': 'test' }));
      },
    });
    const refusal = await wsRefusal(`${url}/no`);
    assert.equal(refusal.status, 403);
    assert.equal(refusal.body, 'No entry');
    assert.equal(refusal.headers['x-why'], 'test');
    const { client } = await wsOpen(`${url}/ok`);
    client.terminate();
    await closeServer(wss);
  });

  test('handleProtocols gets the offers as a Set and chooses; the first one by default', async () => {
    let offered: string[] = [];
    const { wss, url } = await listening({
      handleProtocols: (protocols) => {
        offered = [...protocols];
        return protocols.has('b') ? 'b' : false;
      },
    });
    const chosen = new Promise<string>((resolve) => wss.once('connection', (ws: WebSocket) => resolve(ws.protocol)));
    const { client } = await wsOpen(url, { protocols: ['a', 'b'] } as never);
    assert.deepEqual(offered, ['a', 'b']);
    assert.equal(client.protocol, 'b');
    assert.equal(await chosen, 'b');
    client.terminate();
    await closeServer(wss);

    const plain = await listening();
    const first = new WsClient(plain.url, ['x', 'y']);
    await new Promise((resolve) => first.once('open', resolve));
    assert.equal(first.protocol, 'x');
    first.terminate();
    await closeServer(plain.wss);
  });
});

describe('events, tracking and close()', () => {
  test('a headers listener may add lines to the 101', async () => {
    const { wss, url } = await listening();
    wss.on('headers', (lines: string[], req: IncomingMessage) => {
      assert.equal(lines[0], 'HTTP/1.1 101 Switching Protocols');
      lines.push(`X-Path: ${req.url}`);
    });
    const { client, headers } = await wsOpen(`${url}/h`);
    assert.equal(headers['x-path'], '/h');
    client.terminate();
    await closeServer(wss);
  });

  test('connection gets our WebSocket (or the WebSocket option\'s subclass) and the request', async () => {
    class Custom extends WebSocket {
      readonly created = Date.now();
    }
    const { wss, url } = await listening({ WebSocket: Custom });
    const connection = new Promise<[WebSocket, IncomingMessage]>((resolve) => wss.once('connection', (ws: WebSocket, req: IncomingMessage) => resolve([ws, req])));
    const { client } = await wsOpen(`${url}/c?q=1`);
    const [ws, req] = await connection;
    assert.ok(ws instanceof Custom);
    assert.equal(req.url, '/c?q=1');
    assert.equal(ws.readyState, WebSocket.OPEN);
    client.terminate();
    await closeServer(wss);
  });

  test('clients holds the open connections; without clientTracking there is none', async () => {
    const { wss, url } = await listening();
    const { client } = await wsOpen(url);
    await until(() => wss.clients.size === 1, 2000, 'a tracked client');
    client.close();
    await until(() => wss.clients.size === 0, 2000, 'the client to go');
    await closeServer(wss);
    const untracked = await listening({ clientTracking: false });
    assert.equal(untracked.wss.clients, undefined);
    await closeServer(untracked.wss);
  });

  test('close() in port mode closes the http server but not the open connections (ws 8)', async () => {
    const { wss, url } = await listening();
    const serverSide = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
    const { client } = await wsOpen(url);
    const ws = await serverSide;
    let closed = false;
    wss.close(() => (closed = true));
    const echo = new Promise<string>((resolve) => client.once('message', (data: Buffer) => resolve(data.toString())));
    ws.send('still here');
    assert.equal(await echo, 'still here');
    assert.equal(closed, false);
    client.close();
    await until(() => closed, 3000, 'close');
    const again = await new Promise<Error | undefined>((resolve) => wss.close(resolve));
    assert.equal(again?.message, 'The server is not running');
  });

  test('close() with an external server: its listeners go, close waits for the tracked clients', async () => {
    const http: Server = createServer();
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const wss = new WebSocketServer({ server: http });
    const { client } = await wsOpen(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
    await until(() => wss.clients.size === 1, 2000, 'the client');
    let closed = false;
    wss.close(() => (closed = true));
    assert.equal(http.listenerCount('upgrade'), 0);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(closed, false);
    client.close();
    await until(() => closed, 3000, 'close');
    assert.equal(http.listening, true);
    await new Promise((resolve) => http.close(resolve));
  });

  test('a handleUpgrade after close() in noServer mode is refused with 503', async () => {
    const wss = new WebSocketServer({ noServer: true });
    wss.close();
    const http = createServer();
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => wss.handleUpgrade(req, socket, head, () => assert.fail('accepted')));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const res = parseResponse(await rawExchange((http.address() as AddressInfo).port, upgradeRequest()));
    assert.equal(res.status, 503);
    await new Promise((resolve) => http.close(resolve));
  });

  test('perMessageDeflate: true negotiates with ws\'s client, and messages go both ways compressed', async () => {
    const { wss, url } = await listening({ perMessageDeflate: { threshold: 0 } });
    wss.on('connection', (ws: WebSocket) => {
      assert.equal(ws.extensions, 'permessage-deflate');
      ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary }));
    });
    const { client, headers } = await wsOpen(url);
    assert.match(headers['sec-websocket-extensions'] ?? '', /^permessage-deflate/);
    const big = 'x'.repeat(100_000);
    const echo = new Promise<string>((resolve) => client.once('message', (data: Buffer) => resolve(data.toString())));
    client.send(big);
    assert.equal(await echo, big);
    client.terminate();
    await closeServer(wss);
  });
});
