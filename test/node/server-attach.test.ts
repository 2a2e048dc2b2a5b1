// Attaching to an existing HTTP server: an Express app, other upgrade listeners on the same
// server (exclusive: false), and handleUpgrade from your own listener.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { WebSocketServer as WsServer } from 'ws';
import { WebSocketServer, requestInfo } from '../../src/index.js';
import { firstMessage, refused, wsOpen } from './server-helpers.js';

async function listening(server: Server): Promise<number> {
  if (!server.listening) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

test('Express routes and duplex routes share one port; another library keeps its own WebSocket path (exclusive: false)', { timeout: 5000 }, async () => {
  const app = express();
  app.use(express.json());
  app.get('/api/rooms', (_req, res) => {
    res.json(['lobby', 'dev']);
  });
  app.post('/api/echo', (req, res) => {
    res.json(req.body);
  });
  const http = createServer(app);
  const duplex = new WebSocketServer()
    .route('/ws/:room', {
      upgrade: ({ params, query }) => ({ room: params.room, nick: query.get('nick') ?? 'anon' }),
      handlers: { open: (ws) => void ws.send(`${ws.data.nick}@${ws.data.room}`) },
    })
    .attach(http, { exclusive: false });
  // Another WebSocket library on the same server, answering only its own path.
  const legacy = new WsServer({ noServer: true });
  legacy.on('connection', (ws) => ws.on('message', (data: Buffer) => ws.send(`legacy ${data.toString()}`)));
  http.on('upgrade', (req, socket, head) => {
    if (req.url === '/legacy') legacy.handleUpgrade(req, socket, head, (ws) => legacy.emit('connection', ws, req));
  });
  const port = await listening(http);
  try {
    assert.deepEqual(await (await fetch(`http://127.0.0.1:${port}/api/rooms`)).json(), ['lobby', 'dev']);
    const posted = await fetch(`http://127.0.0.1:${port}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    assert.deepEqual(await posted.json(), { a: 1 });
    assert.equal(await firstMessage(`ws://127.0.0.1:${port}/ws/lobby?nick=ann`), 'ann@lobby');
    const { client } = await wsOpen(`ws://127.0.0.1:${port}/legacy`);
    const message = new Promise<string>((resolve) => client.once('message', (data: Buffer) => resolve(data.toString())));
    client.send('hi');
    assert.equal(await message, 'legacy hi');
    client.close();
    assert.equal(duplex.stats().connectionsTotal, 1, 'duplex did not touch /legacy');
    assert.deepEqual(duplex.stats().rejections, {});
  } finally {
    await duplex.close();
    legacy.close();
    await stop(http);
  }
});

test('attached exclusively (the default): unknown upgrade paths get 404, plain HTTP stays with the app', { timeout: 5000 }, async () => {
  const app = express();
  app.get('/', (_req, res) => {
    res.send('home');
  });
  const http = createServer(app);
  const duplex = new WebSocketServer().route('/live', { handlers: { open: (ws) => void ws.send(requestInfo(ws)!.route) } }).attach(http);
  const port = await listening(http);
  try {
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'home');
    assert.equal(await firstMessage(`ws://127.0.0.1:${port}/live`), '/live');
    assert.equal((await refused(`ws://127.0.0.1:${port}/`)).status, 404);
    assert.equal((await refused(`ws://127.0.0.1:${port}/live/x`)).status, 404);
  } finally {
    await duplex.close();
    await stop(http);
  }
});

test('handleUpgrade from your own listener: false (socket untouched) when no route matches', { timeout: 5000 }, async () => {
  const http = createServer();
  const duplex = new WebSocketServer().route('/mine', { handlers: { open: (ws) => void ws.send('mine') } });
  const unmatched: string[] = [];
  http.on('upgrade', (req, socket, head) => {
    if (duplex.handleUpgrade(req, socket, head)) return;
    unmatched.push(req.url ?? '');
    socket.end('HTTP/1.1 418 I\'m a teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  const port = await listening(http);
  try {
    assert.equal(await firstMessage(`ws://127.0.0.1:${port}/mine`), 'mine');
    assert.equal((await refused(`ws://127.0.0.1:${port}/other`)).status, 418);
    assert.deepEqual(unmatched, ['/other']);
  } finally {
    await duplex.close();
    await stop(http);
  }
});

test('two duplex servers on one HTTP server, each non-exclusive for its own routes', { timeout: 5000 }, async () => {
  const http = createServer();
  const a = new WebSocketServer().route('/a', { handlers: { open: (ws) => void ws.send('a') } }).attach(http, { exclusive: false });
  const b = new WebSocketServer().route('/b', { handlers: { open: (ws) => void ws.send('b') } }).attach(http);
  const port = await listening(http);
  try {
    assert.equal(await firstMessage(`ws://127.0.0.1:${port}/a`), 'a');
    assert.equal(await firstMessage(`ws://127.0.0.1:${port}/b`), 'b');
  } finally {
    await a.close();
    await b.close();
    await stop(http);
  }
});
