// The short fuzz run of `npm test`: each target with fast-check (shrinking on failure), a batch
// of mutations, and a replay of every corpus input that once found a bug. The long run is
// `npm run fuzz` (test/fuzz/long.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Connection } from '../../src/protocol/connection.js';
import { createDeflateCodec } from '../../src/node/deflate.js';
import { TARGETS, type FrameInput } from './targets.js';
import { fuzz, loadCorpus } from './runner.js';

const RUNS = Number(process.env.DUPLEX_FUZZ_RUNS ?? 1000);
const MUTATIONS = Number(process.env.DUPLEX_FUZZ_MUTATIONS ?? 20000);

for (const target of TARGETS) {
  test(`fuzz ${target.name}: ${RUNS} generated inputs hold the invariants (fast-check, shrinking)`, { timeout: 20_000 }, () => {
    fc.assert(
      fc.property(target.arbitrary, (input) => target.check(input)),
      { numRuns: RUNS, seed: 42 },
    );
  });

  test(`fuzz ${target.name}: ${MUTATIONS} generated and mutated inputs, and the corpus, hold the invariants`, { timeout: 20_000 }, () => {
    for (const input of loadCorpus(target)) target.check(input);
    const stats = fuzz(target, MUTATIONS, 7, { maxFailures: 1, generatedShare: 0.1 });
    assert.deepEqual(stats.failures.map((f) => f.message), []);
    assert.equal(stats.inputs, MUTATIONS);
  });
}

test('corpus: a compressed message in 3 fragments under the limit is delivered whole (once a native zlib abort)', () => {
  const target = TARGETS.find((t) => t.name === 'frames/server+deflate')!;
  const entry = loadCorpus(target)[0] as FrameInput;
  let delivered = -1;
  const conn = new Connection(
    { side: entry.side, maxMessageSize: entry.maxMessageSize, codec: createDeflateCodec('server', entry.deflate!, {}) },
    { onMessage: (data) => (delivered = data.length), onPing() {}, onPong() {}, onClose() {}, onProtocolError: (error) => assert.fail(error.message) },
  );
  conn.receiveData(entry.bytes.slice());
  assert.equal(delivered, 900);
});
