// The attack benchmark: what one attacker does to other connections' latency and to the
// server's event loop, for several server impls side by side, alternating round by round
// (duplex ws duplex ws …, as bench/run.ts). The runs themselves are `bench/attack-core.ts`.
//
//   npx tsc -p tsconfig.json
//   node dist/bench/attack.js [--rounds 3] [--seconds 10] [--only inflate-flood,text-flood]
//                             [--impls duplex,baseline,ws] [--victims 20] [--interval 10]
//                             [--window 16] [--warmup 0] [--json] [--out results.json]
//   BASELINE=<checkout>/dist/bench/servers.js node dist/bench/attack.js   # adds impl baseline
//
// Workloads (attack-core.ts WORKLOADS): inflate-flood, text-flood (default), inflate-flood-64m,
// quiet (no attacker: the reference). Every impl is the echo server of bench/servers.js with
// permessage-deflate on and the same maxMessageSize / maxPayload (64 MiB; 100 MiB for -64m).
// Prints, per workload, the medians over rounds per impl and same-round ratios to ws.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { WORKLOADS, hasTaskset, runAttack, type AttackResult, type Impl, type WorkloadName } from './attack-core.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '0' },
    only: { type: 'string', default: 'inflate-flood,text-flood' },
    impls: { type: 'string' },
    victims: { type: 'string', default: '20' },
    interval: { type: 'string', default: '10' },
    window: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const BASELINE = process.env.BASELINE;
const impls = (values.impls ?? (BASELINE ? 'duplex,baseline,ws' : 'duplex,ws')).split(',') as Impl[];
const workloads = values.only.split(',') as WorkloadName[];
for (const w of workloads) if (!(w in WORKLOADS)) throw new RangeError(`unknown workload ${w}; one of ${Object.keys(WORKLOADS).join(', ')}`);
for (const i of impls) if (!['duplex', 'baseline', 'ws'].includes(i)) throw new RangeError(`unknown impl ${i}; one of duplex, baseline, ws`);
if (impls.includes('baseline') && !BASELINE) throw new Error('impl baseline needs BASELINE=<another checkout>/dist/bench/servers.js');
const settings = {
  seconds: Number(values.seconds),
  warmup: Number(values.warmup),
  victims: Number(values.victims),
  victimInterval: Number(values.interval),
  attackWindow: Number(values.window),
};

/** The figures of the table, read from one result. */
const FIGURES: Array<{ name: string; read: (r: AttackResult) => number; ratio?: boolean }> = [
  { name: 'rtt p50', read: (r) => r.victims.rtt.p50 },
  { name: 'rtt p99', read: (r) => r.victims.rtt.p99, ratio: true },
  { name: 'rtt p999', read: (r) => r.victims.rtt.p999 },
  { name: 'rtt max', read: (r) => r.victims.rtt.max },
  { name: 'n', read: (r) => r.victims.rtt.count },
  { name: 'loop p50', read: (r) => r.server.loopDelay.p50 },
  { name: 'loop p99', read: (r) => r.server.loopDelay.p99, ratio: true },
  { name: 'loop max', read: (r) => r.server.loopDelay.max },
  { name: 'echoed/s', read: (r) => r.attacker?.echoedPerS ?? NaN, ratio: true },
  { name: 'cpu%', read: (r) => r.server.cpuPct },
];

const med = (xs: number[]): number => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
};

async function main(): Promise<void> {
  const results: AttackResult[] = [];
  const started = performance.now();
  for (const workload of workloads) {
    for (let round = 0; round < ROUNDS; round++) {
      for (const impl of impls) {
        const r = await runAttack({ impl, workload, ...settings, baseline: BASELINE });
        results.push(r);
        const closed = r.attacker?.closeCode === undefined ? '' : ` (attacker closed with ${r.attacker.closeCode})`;
        process.stderr.write(
          `  ${workload} round ${round + 1} ${impl}: rtt p99 ${r.victims.rtt.p99.toFixed(1)} ms, max ${r.victims.rtt.max.toFixed(0)} ms; loop p99 ${r.server.loopDelay.p99.toFixed(1)} ms; ${(r.attacker?.echoedPerS ?? 0).toFixed(1)} echoed/s${closed}\n`,
        );
      }
    }
  }
  const table = workloads.map((workload) => {
    const of = (impl: Impl): AttackResult[] => results.filter((r) => r.workload === workload && r.impl === impl);
    const rows = impls.map((impl) => {
      const rs = of(impl);
      const medians = Object.fromEntries(FIGURES.map((f) => [f.name, med(rs.map(f.read))]));
      // Same-round ratios impl / ws: < 1 is better for latency, > 1 for echoed/s.
      const ratios: Record<string, { median: number; min: number; max: number }> = {};
      if (impls.includes('ws') && impl !== 'ws') {
        const ws = of('ws');
        for (const f of FIGURES.filter((x) => x.ratio)) {
          const xs = rs.map((r, k) => f.read(r) / f.read(ws[k]!)).filter((x) => Number.isFinite(x));
          if (xs.length > 0) ratios[f.name] = { median: med(xs), min: Math.min(...xs), max: Math.max(...xs) };
        }
      }
      const closes = rs.map((r) => r.attacker?.closeCode).filter((c) => c !== undefined);
      return { impl, medians, ratios, attackerClosed: closes, hostBusy: [0, 1].map((c) => med(rs.map((r) => r.hostBusy[c] ?? NaN))) };
    });
    return { workload, rows };
  });
  const minutes = (performance.now() - started) / 60_000;
  const json = JSON.stringify({ rounds: ROUNDS, ...settings, impls, taskset: hasTaskset(), minutes, table, results });
  if (values.out) writeFileSync(values.out, json + '\n');
  if (values.json) {
    process.stdout.write(json + '\n');
    return;
  }
  const fmt = (x: number): string => (Number.isNaN(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(x >= 10 ? 1 : 2));
  process.stdout.write(
    `\nmedians of ${ROUNDS} alternating rounds, ${settings.seconds} s each (${minutes.toFixed(1)} min); ${settings.victims} victims, one 64 B echo per ${settings.victimInterval} ms each, ` +
      `open loop, RTT ms; loop = server event-loop delay (ms, monitorEventLoopDelay, idle ≈ 1.1); ` +
      `×ws = same-round ratio to ws, median (min–max); host = busy % of CPU 0/1${hasTaskset() ? '' : ' (no taskset: nothing pinned)'}\n`,
  );
  for (const { workload, rows } of table) {
    process.stdout.write(`\n${workload}\n${'impl'.padEnd(9)}${FIGURES.map((f) => f.name.padStart(9)).join('')}   ${'rtt p99 ×ws'.padEnd(19)}${'loop p99 ×ws'.padEnd(19)}${'echoed/s ×ws'.padEnd(19)}host\n`);
    for (const row of rows) {
      const ratio = (name: string): string => {
        const r = row.ratios[name];
        return (r ? `${fmt(r.median)} (${fmt(r.min)}–${fmt(r.max)})` : '').padEnd(19);
      };
      const closed = row.attackerClosed.length > 0 ? `  attacker closed: ${row.attackerClosed.join(',')}` : '';
      process.stdout.write(
        `${row.impl.padEnd(9)}${FIGURES.map((f) => fmt(row.medians[f.name]!).padStart(9)).join('')}   ${ratio('rtt p99')}${ratio('loop p99')}${ratio('echoed/s')}${row.hostBusy.map((x) => x.toFixed(0)).join('/')}${closed}\n`,
      );
    }
  }
}

await main();
