// The slow-consumer policy 'drop' on a hub route: deliveries a lagging subscriber's socket
// refused are not lost silently. The subscription holds back what comes next, and once the
// socket has drained it is made good from history, in order, with no hole and no duplicate; if
// history no longer reaches back, a `gap` says where the subscriber continues.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer } from '../../src/index.js';
import { Hub } from '../../src/hub/index.js';
import { OP, RawClient } from '../interop/raw-client.js';

const text = (value: unknown): { opcode: number; payload: Buffer } => ({ opcode: OP.Text, payload: Buffer.from(JSON.stringify(value)) });

interface Seen {
  offsets: number[];
  gaps: Array<{ offset: number; reason: string }>;
}

async function run(historySize: number, publishes: number): Promise<{ seen: Seen; dropped: number }> {
  const hub = new Hub({ anonymous: true, presence: false, history: { size: historySize, ttl: 600_000 } });
  await hub.start();
  const server = new WebSocketServer<unknown>({ ...hub.routeOptions, pingInterval: 0, maxBufferedAmount: 64 * 1024, slowConsumer: 'drop' });
  const { port } = await server.listen(0, '127.0.0.1');
  const client = await RawClient.connect(port, { path: '/hub' });
  try {
    client.send(text({ type: 'subscribe', id: 1, topic: 'feed' }));
    assert.equal(JSON.parse((await client.nextMessage()).payload.toString()).type, 'reply');
    client.socket.pause(); // reads nothing: the kernel's buffers fill, then the server's
    const payload = 'x'.repeat(4096);
    for (let i = 0; i < publishes; i++) {
      await hub.publish('feed', payload);
      if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const dropped = server.stats().dropped;
    client.socket.resume();
    const seen: Seen = { offsets: [], gaps: [] };
    const last = (await hub.history('feed', { reverse: true, limit: 1 })).offset;
    while ((seen.offsets.at(-1) ?? 0) < last) {
      const message = JSON.parse((await client.nextMessage(5000)).payload.toString()) as { type: string; offset: number; reason: string };
      if (message.type === 'message') seen.offsets.push(message.offset);
      else if (message.type === 'gap') {
        seen.gaps.push({ offset: message.offset, reason: message.reason });
        if (message.offset >= last) break;
      }
    }
    return { seen, dropped };
  } finally {
    client.destroy();
    await server.close();
    await hub.close();
  }
}

test("'drop': what the lagging socket refused is written from history once it drains, in order", { timeout: 60_000 }, async () => {
  const publishes = 3000; // 12 MB: far past the kernel's loopback buffers and the 64 KiB ceiling
  const { seen, dropped } = await run(publishes, publishes);
  assert.ok(dropped > 0, 'the policy refused sends');
  assert.deepEqual(seen.gaps, []);
  assert.deepEqual(seen.offsets, Array.from({ length: publishes }, (_, i) => i + 1), 'every offset once, in order');
});

test("'drop': when history no longer reaches back, a gap says so and delivery goes on after it", { timeout: 60_000 }, async () => {
  const { seen, dropped } = await run(50, 3000);
  assert.ok(dropped > 0);
  assert.equal(seen.gaps.length, 1, JSON.stringify(seen.gaps));
  assert.equal(seen.gaps[0]!.reason, 'too old');
  // Before the gap, a run from 1 with no hole; after it, nothing at or below the gap's offset.
  const gapAt = seen.gaps[0]!.offset;
  const before = seen.offsets.filter((o) => o <= gapAt);
  assert.deepEqual(before, Array.from({ length: before.length }, (_, i) => i + 1));
  const after = seen.offsets.slice(before.length);
  for (let i = 1; i < after.length; i++) assert.equal(after[i], after[i - 1]! + 1, 'after the gap, no hole');
});
