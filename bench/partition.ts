// Longer runs of the partition test (test/partition/): the same bed, nemesis and checker as
// `test/partition/partition-*.test.ts`, for as long as asked, and the table of docs/partitions.md.
//
//   npx tsc -p tsconfig.json
//   node dist/bench/partition.js --broker both --seconds 180 --seed 42 --runs 2
//
// Flags: --broker redis|nats|both (default both), --seconds N of nemesis per run (default 180),
// --seed N (default random; run k of --runs uses seed + k), --runs N per broker (default 1),
// --keep (keep every run's logs, not only those of runs with violations). Needs root, /dev/net/tun,
// ip, /usr/bin/python3 and the broker's server binary. Exits 1 if the checker found a violation.
import { parseArgs } from 'node:util';

import { TABLE_HEADER, describeRun, tableRow } from '../test/partition/report.js';
import { partitionSkip, runPartition, type BrokerKind, type RunResult } from '../test/partition/run.js';

const { values } = parseArgs({
  options: {
    broker: { type: 'string', default: 'both' },
    seconds: { type: 'string', default: '180' },
    seed: { type: 'string' },
    runs: { type: 'string', default: '1' },
    keep: { type: 'boolean', default: false },
  },
  strict: true,
});

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer, not ${text}`);
  return n;
}

const brokers: BrokerKind[] = values.broker === 'both' ? ['redis', 'nats'] : [values.broker as BrokerKind];
if (!brokers.every((b) => b === 'redis' || b === 'nats')) throw new RangeError(`--broker must be redis, nats or both, not ${values.broker}`);
const seconds = positive('seconds', values.seconds!);
const runs = positive('runs', values.runs!);
const firstSeed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);

const results: RunResult[] = [];
for (const broker of brokers) {
  const skip = partitionSkip(broker);
  if (skip !== undefined) {
    console.log(`[partition ${broker}] not run: ${skip}`);
    continue;
  }
  for (let k = 0; k < runs; k++) {
    const result = await runPartition({ broker, seconds, seed: firstSeed + k, keep: values.keep, log: (line) => console.log(line) });
    console.log(describeRun(result));
    console.log('');
    results.push(result);
  }
}
console.log(TABLE_HEADER);
for (const r of results) console.log(tableRow(r));
if (results.some((r) => !r.check.ok)) {
  console.log('\nthe checker found violations (see above; logs kept)');
  process.exitCode = 1;
}
