// The examples of docs/server.md (the server framework), read from the guide and run as they are
// written there — ports set to 0, certificate files replaced by a certificate generated here —
// then exercised from outside.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, connect, requestInfo, type WebSocket } from '../../src/index.js';
import { docExample, loadExample, startExample } from './readme-example.js';
import { firstMessage, refused, selfSignedCertificate, wsRefusal } from './server-helpers.js';

const GUIDE = 'docs/server.md';

function portOf(server: WebSocketServer<unknown>): number {
  const address = server.address();
  assert.ok(address, 'the example left its server listening');
  return address.port;
}

test('docs/server.md: routes and an authentication hook', { timeout: 5000 }, async () => {
  const code = docExample(GUIDE, 'Routes and an authentication hook', "server.route('/chat/:room'");
  const { server } = await loadExample<{ server: WebSocketServer<unknown> }>(code, ['server'], { 'await server.listen(8080);': 'await server.listen(0);' });
  const base = `ws://127.0.0.1:${portOf(server)}`;
  try {
    assert.equal(await firstMessage(`${base}/chat/lobby?token=s3cret`), 'welcome to lobby, ann');
    assert.equal(await firstMessage(`${base}/chat/lobby`, { headers: { Cookie: 'session=s3cret' } }), 'welcome to lobby, ann');
    const denied = await refused(`${base}/chat/lobby?token=wrong`);
    assert.equal(denied.status, 401);
    assert.match(denied.message, /invalid or missing token/);
    assert.equal(await firstMessage(`${base}/feeds/btc/usd`), 'feed btc/usd');
    assert.equal((await refused(`${base}/elsewhere`)).status, 404);
  } finally {
    await server.close();
  }
});

test('docs/server.md: attaching to Express (HTTP and WebSocket on one port)', { timeout: 5000 }, async () => {
  const code = docExample(GUIDE, 'Attaching to Express (or any `http.Server`)', 'live.attach(httpServer)');
  const { httpServer, live } = await loadExample<{ httpServer: HttpServer; live: WebSocketServer<unknown> }>(code, ['httpServer', 'live'], {
    'app.listen(3000)': 'app.listen(0)',
  });
  await new Promise<void>((resolve) => (httpServer.listening ? resolve() : httpServer.once('listening', () => resolve())));
  const { port } = httpServer.address() as { port: number };
  try {
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    assert.deepEqual(await health.json(), { ok: true });
    assert.equal((await fetch(`http://127.0.0.1:${port}/nothing`)).status, 404, 'Express answers its own 404s');
    assert.equal(await firstMessage(`ws://127.0.0.1:${port}/live/prices`), 'subscribed to prices');
    assert.equal((await refused(`ws://127.0.0.1:${port}/health`)).status, 404, 'no WebSocket route there');
  } finally {
    await live.close();
    httpServer.closeAllConnections();
    await new Promise((resolve) => httpServer.close(resolve));
  }
});

test('docs/server.md: origin checks', { timeout: 5000 }, async () => {
  const code = docExample(GUIDE, 'Origin checks (cross-site WebSocket hijacking)', 'origins:');
  const { server } = await loadExample<{ server: WebSocketServer<unknown> }>(code, ['server']);
  const { port } = await server.listen(0);
  const base = `ws://127.0.0.1:${port}`;
  try {
    assert.equal(await firstMessage(`${base}/`, { origin: 'https://app.example.com' }), 'hello, browser');
    assert.equal(await firstMessage(`${base}/`, { origin: 'https://docs.example.com' }), 'hello, browser');
    assert.equal((await refused(`${base}/`, { origin: 'https://evil.example' })).status, 403);
    assert.equal((await wsRefusal(`${base}/`)).status, 403, 'no Origin');
    assert.equal(await firstMessage(`${base}/api`), 'hello, browser or script');
    assert.equal((await refused(`${base}/api`, { origin: 'https://docs.example.com' })).status, 403);
  } finally {
    await server.close();
  }
});

test('docs/server.md: TLS and IPv6', { timeout: 5000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'duplex-docs-'));
  let server: WebSocketServer<unknown> | undefined;
  try {
    const { certFile, keyFile } = await selfSignedCertificate(dir);
    const code = docExample(GUIDE, 'TLS (`wss://`) and IPv6', 'wss://');
    const loaded = await loadExample<{ server: WebSocketServer<unknown>; ws: WebSocket<undefined> }>(code, ['server', 'ws'], {
      "'cert.pem'": JSON.stringify(certFile),
      "'key.pem'": JSON.stringify(keyFile),
      "await server.listen(8443, '::')": "const { port } = await server.listen(0, '::')",
      "'wss://localhost:8443/'": '`wss://localhost:${port}/`',
    });
    server = loaded.server;
    const { ws } = loaded;
    ws.send('over tls');
    const first = await ws[Symbol.asyncIterator]().next();
    assert.equal(first.value, 'over tls');
    assert.equal(requestInfo([...server.clients][0]!)?.url.protocol, 'wss:');
    ws.close();
  } finally {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('docs/server.md: graceful shutdown on SIGTERM', { timeout: 10_000 }, async () => {
  const code = docExample(GUIDE, 'Graceful shutdown', "process.once('SIGTERM'");
  const running = await startExample(code, { 'await server.listen(8080);': 'console.log((await server.listen(0)).port);' });
  try {
    const port = Number(await running.nextLine());
    const closed = new Promise<[number, string]>((resolve, reject) => {
      connect(`ws://127.0.0.1:${port}/`, { handlers: { close: (_ws, code, reason) => resolve([code, reason]) } }).then(() => running.child.kill('SIGTERM'), reject);
    });
    assert.deepEqual(await closed, [1001, 'server restarting']);
    assert.equal(await running.exited, 0, running.stderr());
  } finally {
    if (running.child.exitCode === null) running.child.kill('SIGKILL');
  }
});

test('docs/server.md: limits, statistics and logs', { timeout: 5000 }, async () => {
  const lines: string[] = [];
  (globalThis as Record<string, unknown>).docLogStream = { write: (s: string) => lines.push(s) };
  const code = docExample(GUIDE, 'Limits, statistics and logs', 'createConsoleLogger');
  const { server } = await loadExample<{ server: WebSocketServer<unknown> }>(code, ['server'], { 'process.stderr': 'globalThis.docLogStream' });
  const { port } = await server.listen(0);
  try {
    const reply = await new Promise<string>((resolve, reject) => {
      connect(`ws://127.0.0.1:${port}/`, { handlers: { message: (ws, data) => (resolve(String(data)), ws.close()) } })
        .then((ws) => ws.send('ping!'))
        .catch(reject);
    });
    assert.equal(reply, 'ping!');
    const { connections, messagesIn, bytesOut, rejections, closes } = server.stats();
    assert.ok(connections <= 1);
    assert.equal(messagesIn, 1);
    assert.equal(bytesOut, 5);
    assert.deepEqual(rejections, {});
    assert.ok(closes);
    const seen = await wsRefusal(`ws://127.0.0.1:${port}/`, { headers: { 'X-Big': 'x'.repeat(20_000) } });
    assert.equal(seen.status, 431);
    const line = JSON.parse(lines.find((l) => l.includes('"status":431'))!) as Record<string, unknown>;
    assert.equal(line.level, 'warn');
    assert.equal(line.remote, '127.0.0.1');
  } finally {
    delete (globalThis as Record<string, unknown>).docLogStream;
    await server.close();
  }
});
