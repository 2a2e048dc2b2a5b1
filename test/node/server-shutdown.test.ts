// Graceful shutdown: 1000 live connections all see 1001; handshakes in progress get 503;
// stragglers are terminated after the timeout; attached servers keep running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { WebSocket as WsClient } from 'ws';
import { WebSocketServer, connect, type WebSocket } from '../../src/index.js';
import { deferred, refused, until, wsClosed, wsOpen, wsRefusal } from './server-helpers.js';

/** Run `task` for 0…n-1 with at most `limit` at a time. */
async function pool<T>(n: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < n) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

test('close() with 1000 live connections: every client sees 1001 and the reason, within seconds', { timeout: 15000 }, async () => {
  const server = new WebSocketServer({ handlers: { message: (ws, data) => void ws.send(data) } });
  const { port } = await server.listen(0);
  const url = `ws://127.0.0.1:${port}/`;
  const N = 1000;
  const codes: Array<[number, string]> = [];
  const clients = await pool(N, 50, async (i) => {
    // Half npm `ws`, half duplex clients.
    if (i % 2 === 0) {
      const { client } = await wsOpen(url);
      void wsClosed(client).then((result) => codes.push(result));
      return client;
    }
    return connect(url, { handlers: { close: (_ws, code, reason) => void codes.push([code, reason]) } });
  });
  assert.equal(server.clients.size, N);
  const started = Date.now();
  await server.close(1001, 'maintenance', 3000);
  const elapsed = Date.now() - started;
  await until(() => codes.length === N, 3000, 'every client to see the close');
  assert.equal(server.clients.size, 0);
  assert.ok(codes.every(([code, reason]) => code === 1001 && reason === 'maintenance'), 'every client got 1001 maintenance');
  assert.ok(elapsed < 3000, `took ${elapsed} ms`);
  assert.equal(server.stats().closes[1001], N);
  assert.ok(clients.length === N);
});

test('close(): clients that never answer are terminated after the timeout; handshakes in progress get 503', { timeout: 5000 }, async () => {
  const gate = deferred<void>();
  const server = new WebSocketServer()
    .route('/wait', { upgrade: () => gate.promise, handlers: {} })
    .route('/*', { handlers: {} });
  const { port } = await server.listen(0);
  try {
    // A peer that stops reading: it will never answer the close frame.
    const { client } = await wsOpen(`ws://127.0.0.1:${port}/`);
    const socket = (client as unknown as { _socket: import('node:net').Socket })._socket;
    socket.pause();
    socket.removeAllListeners('data');
    const stuck = wsClosed(client);
    const waiting = refused(`ws://127.0.0.1:${port}/wait`);
    await until(() => server.stats().handshakesPending === 1);
    const started = Date.now();
    await server.close(1001, 'bye', 200);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 150 && elapsed < 2000, `took ${elapsed} ms`);
    assert.equal((await waiting).status, 503);
    socket.destroy();
    await stuck;
    assert.equal(server.stats().closes[1006], 1);
  } finally {
    gate.resolve();
    await server.close();
  }
});

test('close() on an attached server: upgrades during shutdown get 503, the HTTP server keeps running', { timeout: 5000 }, async () => {
  const http = createServer((_req, res) => res.end('still here'));
  const server = new WebSocketServer({ handlers: {} }).attach(http);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as { port: number };
  try {
    const live: WebSocket<undefined> = await connect(`ws://127.0.0.1:${port}/`, { handlers: {} });
    const closed = deferred<number>();
    const ws = new WsClient(`ws://127.0.0.1:${port}/`);
    await new Promise((resolve) => ws.once('open', resolve));
    ws.once('close', (code: number) => closed.resolve(code));
    // A peer that never answers the close frame keeps the shutdown busy for the timeout…
    const { client: stuck } = await wsOpen(`ws://127.0.0.1:${port}/`);
    (stuck as unknown as { _socket: import('node:net').Socket })._socket.pause();
    const shutting = server.close(1001, 'bye', 300);
    // …and meanwhile a new upgrade is refused.

    assert.equal((await wsRefusal(`ws://127.0.0.1:${port}/`)).status, 503);
    await shutting;
    assert.equal(await closed.promise, 1001);
    assert.equal(live.readyState, 3);
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(await res.text(), 'still here');
    assert.equal(http.listenerCount('upgrade'), 0);
  } finally {
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  }
});
