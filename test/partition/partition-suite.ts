// The partition test for one broker (partition-redis.test.ts, partition-nats.test.ts): one run of
// `PARTITION_SECONDS` (default 60) of nemesis with a seed (`PARTITION_SEED`, printed), and the
// checker's verdict: zero silent losses, zero duplicates, zero reorderings — and nothing else the
// checker calls a violation (checker.ts). `PARTITION_KEEP=1` keeps the logs of a passing run too. The bed and the nemesis are described in bed.ts,
// netem.py and nemesis.ts; the figures and what they found in docs/partitions.md.
//
// Link emulation: TUN pairs and a user-space forwarder (netem.py, Debian's python3 standard
// library), because the kernel has no sch_netem: it delays (order kept), drops at random and
// cuts, on commands from the test. Python rather than C compiled at test time: nothing to build,
// no compiler needed in CI, and the test's few thousand packets a second cost it little.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { describeRun } from './report.js';
import { partitionSkip, runPartition, secondsFromEnv, seedFromEnv, type BrokerKind } from './run.js';

export function partitionSuite(kind: BrokerKind): void {
  const skip = partitionSkip(kind);
  const seconds = secondsFromEnv(60);
  // Setup, the settle phase (bounded by the workload) and teardown on top of the nemesis.
  const timeout = (seconds + 120) * 1000;
  test(`partitions (${kind}): every acknowledged publication delivered, recovered or gap-notified, once and in order`, { skip, timeout }, async (t) => {
    const seed = seedFromEnv();
    console.log(`[partition ${kind}] seed ${seed} (replay: PARTITION_SEED=${seed})`);
    const result = await runPartition({ broker: kind, seconds, seed, keep: process.env.PARTITION_KEEP === '1', log: (line) => console.log(line) });
    const report = describeRun(result);
    console.log(report);
    t.diagnostic(report.split('\n')[0]!);
    const c = result.check;
    assert.ok(c.acked > 100, `publications were acknowledged (${c.acked})`);
    assert.ok(result.faults.length > 0, 'the nemesis ran');
    assert.equal(c.totals.silentlyLost, 0, 'silently lost');
    assert.equal(c.totals.duplicates, 0, 'duplicates');
    assert.equal(c.totals.outOfOrder, 0, 'out of order');
    assert.deepEqual(c.violations, [], `violations (logs in ${result.runDir})`);
    assert.equal(c.totals.acked, c.totals.delivered + c.totals.recovered + c.totals.gapNotified, 'every acknowledged publication accounted for');
  });
}
