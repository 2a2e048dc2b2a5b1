// Hostile peers over real loopback sockets, each bounded in time: a decompression bomb, a
// message of tens of thousands of tiny fragments, a ping flood from a peer that never reads.
// (Oversized headers → 431: test/node/server-limits.test.ts; a client that never reads:
// test/node/websocket.test.ts "a slow consumer over the ceiling…"; hub protocol abuse:
// test/hub/hub-abuse.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, deflateRawSync } from 'node:zlib';
import { WebSocketServer, connect, type WebSocketServerOptions } from '../../src/index.js';
import { OP, RSV1, RawClient, encodeFrame } from '../interop/raw-client.js';

const MiB = 1024 * 1024;

function echoServer(options: WebSocketServerOptions = {}): WebSocketServer {
  return new WebSocketServer({ ...options, handlers: { message: (ws, data, isBinary) => void ws.send(data, { binary: isBinary }) } });
}

test('decompression bomb: 64 MiB of zeros in a ~64 KiB frame → 1009, RSS grows by little', { timeout: 10_000 }, async () => {
  const server = echoServer({ perMessageDeflate: true, maxMessageSize: MiB });
  const { port } = await server.listen(0);
  try {
    const bomb = deflateRawSync(Buffer.alloc(64 * MiB), { level: 9, finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
    const client = await RawClient.connect(port, { extensions: 'permessage-deflate' });
    assert.match(client.headers['sec-websocket-extensions'] ?? '', /permessage-deflate/);
    global.gc?.();
    const before = process.memoryUsage().rss;
    client.send({ opcode: OP.Binary, rsv: RSV1, payload: bomb });
    const close = await client.expectClose({ timeout: 5000 });
    const grown = process.memoryUsage().rss - before;
    console.log(`# bomb: ${bomb.length} bytes on the wire, 64 MiB inflated, limit 1 MiB → ${close.code}; RSS +${(grown / MiB).toFixed(1)} MiB`);
    assert.equal(close.code, 1009);
    assert.ok(grown < 16 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
    // The server keeps serving others.
    const other = await RawClient.connect(port);
    other.send({ opcode: OP.Text, payload: 'still here' });
    assert.equal((await other.nextMessage()).payload.toString(), 'still here');
    other.destroy();
  } finally {
    await server.close();
  }
});

test('50,000 one-byte fragments: the message arrives whole, in bounded time and memory', { timeout: 10_000 }, async () => {
  const server = echoServer({ maxMessageSize: MiB });
  const { port } = await server.listen(0);
  try {
    const n = 50_000;
    const mask = Buffer.from([1, 2, 3, 4]);
    const frames: Buffer[] = [];
    for (let i = 0; i < n; i++) frames.push(encodeFrame({ opcode: i === 0 ? OP.Binary : OP.Continuation, fin: i === n - 1, payload: Buffer.of(i & 0xff), mask }));
    const wire = Buffer.concat(frames);
    const client = await RawClient.connect(port);
    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    await client.write(wire);
    const echo = await client.nextMessage(8000);
    const ms = performance.now() - t0;
    const heap = process.memoryUsage().heapUsed - heapBefore;
    console.log(`# fragments: ${n} frames (${wire.length} bytes on the wire) → ${echo.payload.length}-byte message in ${ms.toFixed(0)} ms, heap +${(heap / MiB).toFixed(1)} MiB`);
    assert.equal(echo.payload.length, n);
    assert.equal(echo.payload[n - 1], (n - 1) & 0xff);
    assert.ok(ms < 5000);
    client.destroy();
  } finally {
    await server.close();
  }
});

test('ping flood from a peer that never reads: pongs hit the send-buffer ceiling → 1008; another client is served meanwhile', { timeout: 10_000 }, async () => {
  const server = echoServer({ maxBufferedAmount: 256 * 1024 });
  const { port } = await server.listen(0);
  try {
    const flooder = await RawClient.connect(port);
    flooder.socket.pause(); // never read: pongs pile up in the server's send buffer
    const ping = encodeFrame({ opcode: OP.Ping, payload: Buffer.alloc(125, 0x70), mask: Buffer.from([9, 9, 9, 9]) });
    const burst = Buffer.concat(Array.from({ length: 2000 }, () => ping));
    let sent = 0;
    const flood = (async () => {
      // Up to ~64 MiB of pings: far more than the ceiling plus both kernels' socket buffers.
      while (sent < 256 && !flooder.socket.destroyed) {
        await flooder.write(burst).catch(() => {});
        sent++;
      }
    })();
    const t0 = Date.now();
    let echoed = 0;
    const echoes = new Promise<void>((resolve) => {
      const ws2 = connect(`ws://127.0.0.1:${port}/`, {
        handlers: {
          message: (ws) => {
            if (++echoed === 20) {
              ws.close();
              resolve();
            } else ws.send('again');
          },
        },
      });
      void ws2.then((ws) => ws.send('first'));
    });
    await echoes;
    const echoMs = Date.now() - t0;
    // Read only once the whole flood is in: the pongs of 512,000 pings pile up meanwhile (the
    // server reads on, a slice at a time, and the echoes above are served between its slices).
    await flood;
    flooder.socket.resume();
    const close = await flooder.expectClose({ timeout: 8000 });
    console.log(`# ping flood: ${sent * 2000} pings sent before the close; 20 echoes to another client took ${echoMs} ms; close ${close.code}`);
    assert.equal(close.code, 1008);
    assert.equal(close.reason.toString(), 'slow consumer');
  } finally {
    await server.close();
  }
});
