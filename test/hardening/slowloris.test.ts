// Slowloris: 1,000 sockets send part of a handshake and stall. A new client must still connect
// and be served at once, and the server's headersTimeout must release the stalled sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect, type Socket } from 'node:net';
import { WebSocketServer } from '../../src/index.js';
import { firstMessage } from '../node/server-helpers.js';

test('slowloris: 1,000 stalled handshakes do not stop a new client; headersTimeout releases them', { timeout: 20_000 }, async () => {
  const headersTimeout = 2000;
  const server = new WebSocketServer({ headersTimeout, handlers: { message: (ws, data) => void ws.send(`echo ${String(data)}`), open: (ws) => void ws.send('hello') } });
  const { port } = await server.listen(0);
  const sockets: Socket[] = [];
  const closedAt: number[] = [];
  try {
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 1000 }, () =>
        new Promise<void>((resolve, reject) => {
          const socket = tcpConnect({ port, host: '127.0.0.1' }, () => {
            socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n'); // …and nothing more
            resolve();
          });
          socket.on('error', () => {});
          socket.resume(); // read, so the server's answer and FIN are seen
          socket.once('error', reject);
          socket.on('close', () => closedAt.push(Date.now() - t0));
          sockets.push(socket);
        }),
      ),
    );
    const opened = Date.now() - t0;
    const t1 = Date.now();
    assert.equal(await firstMessage(`ws://127.0.0.1:${port}/`), 'hello');
    const served = Date.now() - t1;
    // Wait for the timeout to release every stalled socket.
    const deadline = Date.now() + headersTimeout + 5000;
    while (closedAt.length < sockets.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    closedAt.sort((a, b) => a - b);
    console.log(
      `# slowloris: 1000 stalled sockets opened in ${opened} ms; a new client was served in ${served} ms; ` +
        `released by headersTimeout=${headersTimeout} ms (rejections ${JSON.stringify(server.stats().rejections)}) after ${closedAt[0]}–${closedAt[closedAt.length - 1]} ms (${closedAt.length} of 1000)`,
    );
    assert.ok(served < 2000, `a new client took ${served} ms`);
    assert.equal(closedAt.length, 1000);
    assert.ok(closedAt[closedAt.length - 1]! < opened + headersTimeout + 3000);
    assert.equal((server.stats().rejections[408] ?? 0) > 0 || closedAt.length === 1000, true);
  } finally {
    for (const s of sockets) s.destroy();
    await server.close();
  }
});
