// The README's "Server framework" examples, copied as they are written there (ports set to 0,
// certificate files replaced by a certificate generated here), then exercised.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import express from 'express';
import { WebSocketServer, connect, createConsoleLogger, requestInfo } from '../../src/index.js';
import { firstMessage, refused, wsRefusal } from './server-helpers.js';

test('README: routes and an authentication hook', { timeout: 5000 }, async () => {
  // ---- from the README
  const sessions = new Map([['s3cret', { name: 'ann' }]]);

  const server = new WebSocketServer();

  server.route('/chat/:room', {
    // Runs before the 101. Whatever it returns becomes `ws.data` (typed).
    upgrade: async ({ params, query, cookies, reject, setHeader }) => {
      const user = sessions.get(query.get('token') ?? cookies.session ?? '');
      if (!user) return reject(401, 'invalid or missing token'); // HTTP 401, body = the message
      setHeader('Set-Cookie', 'seen=1; HttpOnly; Secure');
      return { user, room: params.room };
    },
    handlers: {
      open(ws) { ws.send(`welcome to ${ws.data.room}, ${ws.data.user.name}`); },
      message(ws, data) { ws.send(`${ws.data.user.name}: ${String(data)}`); },
    },
  });

  server.route('/feeds/*', {
    handlers: { open(ws) { ws.send(`feed ${requestInfo(ws)?.params['*']}`); } },
  });

  const { port } = await server.listen(0);
  // ---- end of the README code
  const base = `ws://127.0.0.1:${port}`;
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

test('README: attaching to Express (HTTP and WebSocket on one port)', { timeout: 5000 }, async () => {
  // ---- from the README
  const app = express();
  app.get('/health', (_req, res) => { res.json({ ok: true }); });
  const httpServer = app.listen(0); // HTTP and WebSocket on one port

  const live = new WebSocketServer().route('/live/:topic', {
    handlers: { open(ws) { ws.send(`subscribed to ${requestInfo(ws)?.params.topic}`); } },
  });
  live.attach(httpServer);
  // ---- end of the README code
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

test('README: origin checks', { timeout: 5000 }, async () => {
  // ---- from the README
  const server = new WebSocketServer({
    origins: ['https://app.example.com', /^https:\/\/[a-z0-9-]+\.example\.com$/],
    handlers: { open(ws) { ws.send('hello, browser'); } },
  });
  server.route('/api', {
    origins: ['https://app.example.com', null], // null: also admit clients that send no Origin
    handlers: { open(ws) { ws.send('hello, browser or script'); } },
  });
  // ---- end of the README code
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

test('README: TLS and IPv6', { timeout: 5000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'duplex-readme-'));
  const readFileSync = (name: string): Promise<Buffer> => readFile(join(dir, name)); // stands in for fs.readFileSync
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:::1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ]);
  let server: WebSocketServer | undefined;
  try {
    // ---- from the README (readFileSync awaited)
    server = new WebSocketServer({
      tls: { cert: await readFileSync('cert.pem'), key: await readFileSync('key.pem') }, // any https.createServer options
      handlers: { message(ws, data) { ws.send(data); } },
    });
    const { port } = await server.listen(0, '::1'); // IPv6 loopback; '::' for every interface

    const ws = await connect(`wss://[::1]:${port}/`, { tls: { ca: await readFileSync('cert.pem') } });
    // ---- end of the README code
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

test('README: graceful shutdown', { timeout: 5000 }, async () => {
  const server = new WebSocketServer({ handlers: {} });
  const { port } = await server.listen(0);
  const closed = new Promise<[number, string]>((resolve, reject) => {
    connect(`ws://127.0.0.1:${port}/`, { handlers: { close: (_ws, code, reason) => resolve([code, reason]) } }).catch(reject);
  });
  await new Promise((resolve) => setTimeout(resolve, 20));
  // ---- from the README (the SIGTERM listener is removed again below)
  async function shutdown(): Promise<void> {
    await server.close(1001, 'server restarting', 5000);
  }
  const onSigterm = (): void => void shutdown().then(() => process.exit(0));
  process.once('SIGTERM', onSigterm);
  // ---- end of the README code
  process.off('SIGTERM', onSigterm);
  await shutdown();
  assert.deepEqual(await closed, [1001, 'server restarting']);
});

test('README: limits, statistics and logs', { timeout: 5000 }, async () => {
  const lines: string[] = [];
  const stream = { write: (s: string) => lines.push(s) };
  // ---- from the README (the log stream captured)
  const server = new WebSocketServer({
    logger: createConsoleLogger('info', stream, true), // or a pino instance
    handlers: { message(ws, data) { ws.send(data); } },
  });
  // ---- end of the README code
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
    await server.close();
  }
});
