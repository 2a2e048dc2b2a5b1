// Regression of the second bug the partition test found (docs/partitions.md, bug 2), in the bed:
// the link from Redis to node a drops every TCP segment that carries data while acknowledgements
// pass. The node's PING is acknowledged but its PONG never comes, so node-redis (which waits for
// each PONG before the next PING, without a timeout) stops pinging; Redis gives up retransmitting
// and forgets the connection. Before the fix the node noticed only by TCP keepalive after 30 s of
// silence — about 14 s after the link was whole again, delivering nothing meanwhile. Now keepalive
// probes the silent subscriber connection after one liveness period: the reset comes while the
// link is still broken, and delivery resumes as soon as it is whole.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { findBinary } from '../hub/cluster-helpers.js';
import { Bed, addressOn, linkNamed } from './bed.js';
import { partitionSkip } from './run.js';

const PROBE = fileURLToPath(new URL('./broker-probe.js', import.meta.url));
/** Longer than Redis's retransmissions last in the bed (tcp_retries2 = 5: about 12.6 s), so Redis forgets the connection. */
const DATA_DROPPED_MS = 16_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The times of the publications a listener printed. */
function deliveries(output: string): number[] {
  return [...output.matchAll(/^pub \d+ (\d+)$/gm)].map((m) => Number(m[1]));
}

test('redis broker: data dropped, acknowledgements passing — the silent subscriber connection is noticed, delivery resumes when the link is whole', { skip: partitionSkip('redis'), timeout: 90_000 }, async () => {
  const bed = await Bed.create(0);
  try {
    const redis = bed.spawn('broker', 'redis-server', findBinary('redis-server')!, ['--port', '6379', '--bind', '0.0.0.0', '--save', '', '--appendonly', 'no', '--protected-mode', 'no']);
    await redis.waitFor(/Ready to accept connections/, 15_000);
    const url = (node: 'a' | 'b'): string => `redis://${addressOn(linkNamed(`${node}-broker`), 'broker')}:6379`;
    const listener = bed.spawn('a', 'listener', process.execPath, [PROBE, '--broker', url('a'), '--role', 'listen']);
    await listener.waitFor(/^ready$/m, 15_000);
    const publisher = bed.spawn('b', 'publisher', process.execPath, [PROBE, '--broker', url('b'), '--role', 'publish']);
    await publisher.waitFor(/^ready$/m, 15_000);
    const deadline = Date.now() + 10_000;
    while (deliveries(listener.output()).length < 10 && Date.now() < deadline) await sleep(50);
    assert.ok(deliveries(listener.output()).length >= 10, 'the listener receives');

    await bed.emulator.set('a-broker', '21', { dropData: true }); // broker → a: data lost, ACKs through
    await sleep(DATA_DROPPED_MS);
    await bed.emulator.heal();
    const healedAt = Date.now();
    let resumed: number | undefined;
    while (resumed === undefined && Date.now() < healedAt + 40_000) {
      resumed = deliveries(listener.output()).find((t) => t > healedAt);
      await sleep(50);
    }
    assert.notEqual(resumed, undefined, `delivery resumed; listener output:\n${listener.output().slice(-2000)}`);
    const after = resumed! - healedAt;
    console.log(`[redis keepalive] delivery resumed ${after} ms after the link was whole`);
    assert.ok(after < 5000, `delivery resumed ${after} ms after the link was whole (before the fix: ~14 s)`);
    assert.match(listener.output(), /^reconnect \d+$/m, 'the broker reconnected (and told its node to catch up)');
  } finally {
    await bed.destroy();
  }
});
