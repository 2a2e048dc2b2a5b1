// Origin allow-lists, max connections, header size limits and the statistics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { WebSocketServer, connect } from '../../src/index.js';
import { captureLogger, deferred, firstMessage, refused, until, wsClosed, wsOpen, wsRefusal } from './server-helpers.js';

test('origins: listed and matching origins pass; others and a missing Origin get 403 unless the list has null', { timeout: 5000 }, async () => {
  const { logger, lines } = captureLogger();
  const server = new WebSocketServer({ logger, origins: ['https://Example.com', /^https:\/\/[a-z]+\.example\.com$/] })
    .route('/open-to-tools', { origins: [null, 'https://example.com'], handlers: { open: (ws) => void ws.send('ok') } })
    .route('/anyone', { origins: false, handlers: { open: (ws) => void ws.send('ok') } })
    .route('/*', { handlers: { open: (ws) => void ws.send('ok') } });
  const { port } = await server.listen(0);
  const base = `ws://127.0.0.1:${port}`;
  try {
    assert.equal(await firstMessage(`${base}/x`, { origin: 'https://example.com' }), 'ok');
    assert.equal(await firstMessage(`${base}/x`, { origin: 'https://chat.example.com' }), 'ok');
    for (const origin of ['https://evil.com', 'https://example.com.evil.com', 'http://example.com', 'null']) {
      const error = await refused(`${base}/x`, { origin });
      assert.equal(error.status, 403, origin);
      assert.match(error.message, /is not allowed/);
    }
    const missing = await wsRefusal(`${base}/x`); // npm ws sends no Origin by default
    assert.equal(missing.status, 403);
    assert.equal(missing.body, 'an Origin header is required');
    assert.equal(await firstMessage(`${base}/open-to-tools`), 'ok');
    assert.equal((await refused(`${base}/open-to-tools`, { origin: 'https://evil.com' })).status, 403);
    assert.equal(await firstMessage(`${base}/anyone`, { origin: 'https://evil.com' }), 'ok');
    const line = lines.find((l) => l.fields.status === 403 && l.fields.origin === 'https://evil.com');
    assert.ok(line, 'a refused origin is logged with the origin');
  } finally {
    await server.close();
  }
});

test('maxConnections: over it → 503 with Retry-After before the upgrade; a slot freed is reusable', { timeout: 5000 }, async () => {
  const server = new WebSocketServer({ maxConnections: 2, handlers: {} });
  const { port } = await server.listen(0);
  const url = `ws://127.0.0.1:${port}/`;
  try {
    const a = await connect(url);
    const { client: b } = await wsOpen(url);
    const seen = await wsRefusal(url);
    assert.equal(seen.status, 503);
    assert.equal(seen.headers['retry-after'], '5');
    assert.match(seen.body, /too many connections \(limit 2\)/);
    const closed = wsClosed(b);
    b.close();
    await closed;
    await until(() => server.clients.size === 1, 2000, 'the server to drop the closed client');
    const c = await connect(url);
    assert.equal(server.clients.size, 2);
    a.close();
    c.close();
  } finally {
    await server.close();
  }
});

test('maxConnections counts handshakes in progress', { timeout: 5000 }, async () => {
  const gate = deferred<void>();
  const server = new WebSocketServer({ maxConnections: 1, upgrade: () => gate.promise, handlers: {} });
  const { port } = await server.listen(0);
  const url = `ws://127.0.0.1:${port}/`;
  try {
    const first = connect(url);
    await until(() => server.stats().handshakesPending === 1, 2000, 'the first handshake');
    assert.equal((await refused(url)).status, 503);
    gate.resolve();
    (await first).close();
  } finally {
    await server.close();
  }
});

test('oversized handshake headers → 431: on the server of listen, and on an attached server with maxHeaderSize', { timeout: 5000 }, async () => {
  const { logger, lines } = captureLogger();
  const server = new WebSocketServer({ logger, handlers: {} });
  const { port } = await server.listen(0);
  const http = createServer();
  const attached = new WebSocketServer({ maxHeaderSize: 2048, handlers: {} }).attach(http);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const httpPort = (http.address() as { port: number }).port;
  try {
    const big = { headers: { 'X-Padding': 'x'.repeat(20_000) } };
    const seen = await wsRefusal(`ws://127.0.0.1:${port}/`, big);
    assert.equal(seen.status, 431);
    assert.ok(lines.some((l) => l.fields.status === 431 && l.fields.remote === '127.0.0.1'));
    const medium = { headers: { 'X-Padding': 'x'.repeat(3000) } };
    const seenAttached = await wsRefusal(`ws://127.0.0.1:${httpPort}/`, medium);
    assert.equal(seenAttached.status, 431);
    assert.match(seenAttached.body, /more than the 2048 allowed/);
    const { client } = await wsOpen(`ws://127.0.0.1:${httpPort}/`, { headers: { 'X-Padding': 'x'.repeat(1000) } });
    client.close();
    assert.equal(server.stats().rejections[431], 1);
  } finally {
    await attached.close();
    await server.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  }
});

test('stats: connections, traffic, rejections by status, closes by code, errors', { timeout: 5000 }, async () => {
  const server = new WebSocketServer()
    .route('/echo', { handlers: { message: (ws, data) => void ws.send(data) } })
    .route('/deny', { upgrade: ({ reject }) => reject(401, 'no'), handlers: {} });
  const { port } = await server.listen(0);
  const base = `ws://127.0.0.1:${port}`;
  try {
    const replies: string[] = [];
    const closed = deferred<number>();
    const ws = await connect(`${base}/echo`, {
      handlers: { message: (_ws, data) => void replies.push(String(data)), close: (_ws, code) => closed.resolve(code) },
    });
    ws.send('hello');
    ws.send('wörld');
    await until(() => replies.length === 2);
    const during = server.stats();
    assert.equal(during.connections, 1);
    assert.equal(during.connectionsTotal, 1);
    assert.equal(during.messagesIn, 2);
    assert.equal(during.messagesOut, 2);
    assert.equal(during.bytesIn, 5 + 6);
    assert.equal(during.bytesOut, 5 + 6);
    await refused(`${base}/deny`);
    await refused(`${base}/none`);
    ws.close(4001, 'done');
    await closed.promise;
    // A peer that breaks the protocol: an unmasked frame from a client → 1002 and an error.
    const { client } = await wsOpen(`${base}/echo`);
    const rawSocket = (client as unknown as { _socket: import('node:net').Socket })._socket;
    rawSocket.write(Buffer.from([0x81, 0x02, 0x68, 0x69])); // unmasked text "hi"
    await wsClosed(client);
    await until(() => server.stats().connections === 0);
    const after = server.stats();
    assert.equal(after.connectionsTotal, 2);
    assert.deepEqual(after.rejections, { 401: 1, 404: 1 });
    assert.equal(after.closes[4001], 1);
    assert.equal(Object.values(after.closes).reduce((a, b) => a + b, 0), 2);
    assert.equal(after.errors, 1);
  } finally {
    await server.close();
  }
});
