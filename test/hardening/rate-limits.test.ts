// Rate limits: per-connection message rate (token bucket → 1008 "rate limit", or drop), and
// per-IP concurrent connections and new connections per interval (→ 429 with Retry-After).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer, connect } from '../../src/index.js';
import { refused, wsClosed, wsOpen } from '../node/server-helpers.js';

test('messageRate: a burst over the bucket is closed with 1008 "rate limit"; a client within it is not', { timeout: 5000 }, async () => {
  let received = 0;
  const server = new WebSocketServer({ messageRate: { perSecond: 10, burst: 20 }, handlers: { message: () => void received++ } });
  const { port } = await server.listen(0);
  try {
    const { client } = await wsOpen(`ws://127.0.0.1:${port}/`);
    const closed = wsClosed(client);
    for (let i = 0; i < 100; i++) client.send(`m${i}`);
    assert.deepEqual(await closed, [1008, 'rate limit']);
    assert.ok(received >= 20 && received <= 22, `received ${received}`);
    assert.ok(server.stats().rateLimited >= 1);
    // Within the limit: 5 messages, no close.
    const polite = await wsOpen(`ws://127.0.0.1:${port}/`);
    for (let i = 0; i < 5; i++) polite.client.send('ok');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(polite.client.readyState, polite.client.OPEN);
    polite.client.close();
  } finally {
    await server.close();
  }
});

test("messageRate with onExceed 'drop' drops the excess, keeps the connection; a route may override the server's", { timeout: 5000 }, async () => {
  const got: string[] = [];
  const server = new WebSocketServer({ messageRate: { perSecond: 1, burst: 1 } });
  server.route('/drop', { messageRate: { perSecond: 1000, burst: 5, onExceed: 'drop' }, handlers: { message: (_ws, data) => void got.push(String(data)) } });
  const { port } = await server.listen(0);
  try {
    const done = new Promise<void>((resolve) => {
      void connect(`ws://127.0.0.1:${port}/drop`, {
        handlers: { message: (ws) => (ws.close(), resolve()) },
      }).then((ws) => {
        for (let i = 0; i < 50; i++) ws.send(`m${i}`);
        setTimeout(() => ws.ping(), 50);
        setTimeout(() => resolve(), 300);
      });
    });
    await done;
    assert.ok(got.length >= 5 && got.length < 50, `got ${got.length}`);
    assert.deepEqual(got.slice(0, 5), ['m0', 'm1', 'm2', 'm3', 'm4']);
    assert.equal(server.stats().closes[1008] ?? 0, 0);
  } finally {
    await server.close();
  }
});

test('maxConnectionsPerIp: over it → 429 with Retry-After before the upgrade; a closed slot is reusable', { timeout: 5000 }, async () => {
  const server = new WebSocketServer({ maxConnectionsPerIp: 2, handlers: {} });
  const { port } = await server.listen(0);
  const url = `ws://127.0.0.1:${port}/`;
  try {
    const a = await connect(url);
    const b = await connect(url);
    const error = await refused(url);
    assert.equal(error.status, 429);
    assert.equal(error.headers['retry-after'], '5');
    a.terminate();
    await new Promise((r) => setTimeout(r, 100));
    const c = await connect(url);
    b.terminate();
    c.terminate();
    assert.equal(server.stats().rejections[429], 1);
  } finally {
    await server.close();
  }
});

test('connectionRatePerIp: the 4th handshake in the window → 429 with the seconds left; the next window admits again', { timeout: 5000 }, async () => {
  const server = new WebSocketServer({ connectionRatePerIp: { connections: 3, interval: 1000 }, handlers: {} });
  const { port } = await server.listen(0);
  const url = `ws://127.0.0.1:${port}/`;
  try {
    for (let i = 0; i < 3; i++) (await connect(url)).terminate();
    const error = await refused(url);
    assert.equal(error.status, 429);
    assert.equal(error.headers['retry-after'], '1');
    await new Promise((r) => setTimeout(r, 1100));
    (await connect(url)).terminate();
  } finally {
    await server.close();
  }
});
