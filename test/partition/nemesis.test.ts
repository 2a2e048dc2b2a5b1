// The nemesis's schedule: the same seed gives the same faults (so PARTITION_SEED replays a run),
// the faults fit in the time given and do not overlap, and over many seeds every kind of fault and
// every link is drawn. Runs without the bed.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LINKS } from './bed.js';
import { DELAY_MS, LOSS, schedule, type FaultKind } from './nemesis.js';

test('nemesis: a seed gives one schedule; another seed another', () => {
  assert.deepEqual(schedule(42, 60), schedule(42, 60));
  assert.notDeepEqual(schedule(42, 60), schedule(43, 60));
});

test('nemesis: faults start after a clean spell, do not overlap, and end within the time given', () => {
  for (let seed = 0; seed < 500; seed++) {
    const faults = schedule(seed, 60);
    assert.ok(faults.length > 0, `seed ${seed}: at least one fault`);
    assert.ok(faults[0]!.at >= 2000);
    for (let i = 0; i < faults.length; i++) {
      const f = faults[i]!;
      assert.ok(f.duration >= 500 && f.at + f.duration <= 60_000, `seed ${seed}: ${f.description} within the run`);
      if (i > 0) assert.ok(f.at >= faults[i - 1]!.at + faults[i - 1]!.duration + 1000, `seed ${seed}: a quiet spell before ${f.description}`);
      if (f.flap) assert.equal(f.flap.spells.reduce((a, b) => a + b, 0), f.duration);
    }
  }
});

test('nemesis: over many seeds every kind of fault and every link is drawn, with the asked delay and loss', () => {
  const kinds = new Set<FaultKind>();
  const links = new Set<string>();
  for (let seed = 0; seed < 200; seed++) {
    for (const f of schedule(seed, 180)) {
      kinds.add(f.kind);
      for (const s of f.settings) {
        links.add(s.link);
        if (s.impairment.delay !== undefined) assert.equal(s.impairment.delay, DELAY_MS);
        if (s.impairment.loss !== undefined) assert.equal(s.impairment.loss, LOSS);
      }
      if (f.flap) links.add(f.flap.link);
    }
  }
  assert.deepEqual([...kinds].sort(), ['cut', 'cut-one-way', 'cut-slow', 'delay', 'flap', 'isolate-broker', 'isolate-node', 'loss', 'slow-lossy']);
  assert.deepEqual([...links].sort(), LINKS.map((l) => l.name).sort());
});
