// Fairness under attack (issue 13): one peer flooding the server with large legal messages
// (16 MiB-inflating compressed ones, or 16 MiB of uncompressed text) must not take the event
// loop from the others. The run is bench/attack-core.ts's, shortened: the server (duplex's
// echo with permessage-deflate and a 64 MiB limit) in its own process, 20 victims sending a
// 64-byte echo every 10 ms each on a fixed schedule, the attacker on a raw socket; the server
// reports its event-loop delay (monitorEventLoopDelay) over the measured window.
//
// Before the slices (0.3.0), the same run gave victims p99 3.2–3.9 s (inflate, 16 messages in
// flight) and 38 ms (text); `ws` 28 ms and 63 ms. Now, on this 2-core machine: inflate 10–13 ms,
// text 14–18 ms for both figures, what is left being V8's garbage collection of ~1 GB/s of
// message buffers (docs/security.md, "Fairness"). The target is 10 ms; the bound here is
// 25 ms, under every peer's figure and far under a regression to whole-message work (seconds).
// A timing bound on a shared machine can be missed by noise: each workload gets a second run if
// the first misses, and fails only when both do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAttack, type AttackResult, type WorkloadName } from '../../bench/attack-core.js';

const SECONDS = 3;
const BOUND_MS = 25;

function describeRun(r: AttackResult): string {
  return (
    `victims p50 ${r.victims.rtt.p50.toFixed(2)} / p99 ${r.victims.rtt.p99.toFixed(2)} / max ${r.victims.rtt.max.toFixed(1)} ms (n ${r.victims.rtt.count}), ` +
    `loop p99 ${r.server.loopDelay.p99.toFixed(2)} / max ${r.server.loopDelay.max.toFixed(1)} ms, attacker ${r.attacker?.echoedPerS.toFixed(1)} echoed/s`
  );
}

async function floodHolds(workload: WorkloadName): Promise<void> {
  const runs: AttackResult[] = [];
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = await runAttack({ impl: 'duplex', workload, seconds: SECONDS });
    runs.push(r);
    console.log(`# ${workload} run ${attempt + 1}: ${describeRun(r)}`);
    // The attack really ran: the server took the attacker's messages (it did not close it) and
    // answered every victim.
    assert.equal(r.attacker?.closeCode, undefined, 'the attacker was not closed');
    assert.ok((r.attacker?.echoedPerS ?? 0) > 1, 'the attacker got its messages echoed');
    assert.equal(r.victims.closed, 0);
    assert.equal(r.victims.unanswered, 0);
    assert.ok(r.victims.rtt.count >= (SECONDS * 1000 * 20) / 10 / 2, 'the victims sent on schedule');
    if (r.victims.rtt.p99 <= BOUND_MS && r.server.loopDelay.p99 <= BOUND_MS) return;
  }
  assert.fail(`${workload}: over ${BOUND_MS} ms p99 in both runs: ${runs.map(describeRun).join('; ')}`);
}

test('a flood of 16 MiB-inflating compressed messages: victims p99 and event-loop p99 stay ≤ 25 ms', { timeout: 60_000 }, () =>
  floodHolds('inflate-flood'));

test('a flood of 16 MiB uncompressed text messages: victims p99 and event-loop p99 stay ≤ 25 ms', { timeout: 60_000 }, () =>
  floodHolds('text-flood'));
