// The patterns of docs/migrating-from-ws.md run as written (ports made ephemeral, the heartbeat's
// period shortened), against a real `ws` peer where the pattern needs one: what the guide promises
// after the one-line switch is what happens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WsClient, { WebSocketServer as WsServer } from 'ws';
import { docExample, loadExample, runExample } from '../node/readme-example.js';
import type { WebSocketServer } from '../../src/ws/index.js';

const DOC = 'docs/migrating-from-ws.md';
const LOCAL = { 'port: 8080 }': "port: 0, host: '127.0.0.1' }" };

function portOf(wss: WebSocketServer): number {
  return (wss.address() as AddressInfo).port;
}

/** Open a real ws client and collect `count` messages (as strings). */
async function exchange(url: string, send: string[], count: number, options?: WsClient.ClientOptions): Promise<string[]> {
  const ws = new WsClient(url, options);
  const got: string[] = [];
  const done = new Promise<void>((resolve, reject) => {
    ws.on('message', (data) => {
      got.push(String(data));
      if (got.length === count) resolve();
    });
    ws.once('error', reject);
    setTimeout(() => reject(new Error(`timed out with ${JSON.stringify(got)}`)), 5000).unref();
  });
  await once(ws, 'open');
  for (const text of send) ws.send(text);
  await done;
  ws.close();
  await once(ws, 'close');
  return got;
}

function closeServer(wss: WebSocketServer): Promise<void> {
  for (const client of wss.clients) client.terminate();
  return new Promise((resolve) => wss.close(() => resolve()));
}

test('migrating: a server on a port greets and echoes', async () => {
  const { wss } = await loadExample<{ wss: WebSocketServer }>(docExample(DOC, 'A server on a port', "port: 8080"), ['wss'], LOCAL);
  if (!wss.address()) await once(wss, 'listening');
  assert.deepEqual(await exchange(`ws://127.0.0.1:${portOf(wss)}/`, ['ping'], 2), ['hello 127.0.0.1', 'ping']);
  await closeServer(wss);
});

test('migrating: noServer + handleUpgrade refuses without the token, accepts with it; plain HTTP stays with the server', async () => {
  const code = docExample(DOC, 'Your own HTTP server: `noServer` and `handleUpgrade`', 'handleUpgrade');
  const { server, wss } = await loadExample<{ server: Server; wss: WebSocketServer }>(code, ['server', 'wss'], { 'server.listen(8080);': "server.listen(0, '127.0.0.1');" });
  if (!server.listening) await once(server, 'listening');
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const refused = new WsClient(url);
  const [, res] = (await once(refused, 'unexpected-response')) as [unknown, { statusCode: number }];
  assert.equal(res.statusCode, 401);
  refused.on('error', () => {}); // ws reports the abandoned handshake as an error
  refused.terminate();
  assert.deepEqual(await exchange(url, ['x'], 1, { headers: { authorization: 'Bearer let-me-in' } }), ['got x']);
  assert.equal(await (await fetch(url.replace('ws:', 'http:'))).text(), 'plain HTTP here\n');
  await closeServer(wss);
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('migrating: broadcast reaches every other open client, not the sender', async () => {
  const { wss } = await loadExample<{ wss: WebSocketServer }>(docExample(DOC, 'Broadcast', 'wss.clients'), ['wss'], LOCAL);
  if (!wss.address()) await once(wss, 'listening');
  const url = `ws://127.0.0.1:${portOf(wss)}/`;
  const a = new WsClient(url);
  const b = new WsClient(url);
  await Promise.all([once(a, 'open'), once(b, 'open')]);
  const silent: string[] = [];
  a.on('message', (data) => silent.push(String(data)));
  const heard = once(b, 'message');
  a.send('to all');
  assert.equal(String((await heard)[0]), 'to all');
  assert.deepEqual(silent, []);
  a.close();
  b.close();
  await closeServer(wss);
});

test('migrating: the heartbeat terminates a peer that stops answering pings, and keeps one that answers', async () => {
  const code = docExample(DOC, 'Heartbeat: finding dead connections', 'terminate');
  const { wss } = await loadExample<{ wss: WebSocketServer }>(code, ['wss'], { ...LOCAL, '}, 30_000);': '}, 40);' });
  if (!wss.address()) await once(wss, 'listening');
  const url = `ws://127.0.0.1:${portOf(wss)}/`;
  const healthy = new WsClient(url);
  // autoPong off: this peer stays connected but never answers a ping, like a dead one.
  const dead = new WsClient(url, { autoPong: false });
  await Promise.all([once(healthy, 'open'), once(dead, 'open')]);
  const [code1006] = (await once(dead, 'close')) as [number];
  assert.equal(code1006, 1006);
  assert.equal(healthy.readyState, WsClient.OPEN);
  healthy.close();
  await once(healthy, 'close');
  await closeServer(wss);
});

test('migrating: a client with headers sends them, talks, closes', async () => {
  const server = new WsServer({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  const seen: string[] = [];
  server.on('connection', (ws, req) => {
    seen.push(String(req.headers.authorization));
    ws.on('message', (data) => ws.send(`echo ${data}`));
  });
  const code = docExample(DOC, 'A client with headers', 'handshakeTimeout');
  const lines = await runExample(code, { 'ws://localhost:8080/feed': `ws://127.0.0.1:${(server.address() as AddressInfo).port}/feed` });
  assert.deepEqual(lines, ['echo hi']);
  assert.deepEqual(seen, ['Bearer let-me-in']);
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('migrating: streams pipe a WebSocket both ways', async () => {
  const server = new WsServer({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  server.on('connection', (ws) => {
    ws.on('message', (data) => {
      ws.send(String(data).toUpperCase());
      ws.close();
    });
  });
  const code = docExample(DOC, 'Streams', 'createWebSocketStream');
  const lines = await runExample(code, {
    'ws://localhost:8080': `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    "import { pipeline } from 'node:stream/promises';": "import { pipeline } from 'node:stream/promises';\nimport { Readable } from 'node:stream';",
    'process.stdin': "Readable.from(['shout\\n'])",
  });
  assert.deepEqual(lines, ['SHOUT']);
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
