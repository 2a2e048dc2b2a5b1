// The side-by-side benchmark suite: duplex and `ws` servers under the same wsload workloads,
// alternating (A B A B …) over several rounds, server pinned to CPU 0 and load to CPU 1 when
// `taskset` exists. Prints one table of medians and same-run ratios (min–max over rounds).
//
//   WSLOAD=/tmp/wsload npm run bench:load [-- --rounds 3 --seconds 5 --only echo64,idle --json]
//
// Build wsload first: cc -O2 -Wall -o /tmp/wsload <path to shared>/wsload/wsload.c
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
    impls: { type: 'string', default: 'duplex,ws' },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const WSLOAD = process.env.WSLOAD ?? '/tmp/wsload';
const SERVER = fileURLToPath(new URL('./servers.js', import.meta.url));
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

interface Workload {
  name: string;
  mode: 'echo' | 'broadcast';
  args: string[];
  /** The figure compared, read from wsload's JSON; `higher` says which way is better. */
  metric: (r: WsloadResult) => number;
  unit: string;
  higher: boolean;
}
interface WsloadResult {
  msgs_per_s?: number;
  mb_per_s?: number;
  deliveries_per_s?: number;
  kib_per_conn?: number;
  connect_rate_per_s?: number;
  lat_us?: { p50: number; p99: number };
  server_cpu_pct?: number;
  client_cpu_pct?: number;
  opened?: number;
  lost_deliveries?: number;
  errors?: Record<string, number>;
}

const d = String(SECONDS);
const WORKLOADS: Workload[] = [
  { name: 'echo64', mode: 'echo', args: ['echo', '-c', '100', '-w', '16', '-s', '64', '--text', '-d', d, '--warmup', '1'], metric: (r) => r.msgs_per_s ?? 0, unit: 'msgs/s', higher: true },
  { name: 'echo64-p99', mode: 'echo', args: ['echo', '-c', '100', '-w', '16', '-s', '64', '--text', '-d', d, '--warmup', '1'], metric: (r) => r.lat_us?.p99 ?? 0, unit: 'µs p99', higher: false },
  { name: 'echo16k', mode: 'echo', args: ['echo', '-c', '50', '-w', '4', '-s', '16384', '--binary', '-d', d, '--warmup', '1'], metric: (r) => r.mb_per_s ?? 0, unit: 'MB/s', higher: true },
  { name: 'idle10k', mode: 'echo', args: ['idle', '-c', '10000', '-d', '3', '--rate', '20000', '--max-pending', '500'], metric: (r) => r.kib_per_conn ?? 0, unit: 'KiB/conn', higher: false },
  { name: 'connect', mode: 'echo', args: ['idle', '-c', '5000', '-d', '1', '--max-pending', '200'], metric: (r) => r.connect_rate_per_s ?? 0, unit: 'conns/s', higher: true },
  { name: 'broadcast1k', mode: 'broadcast', args: ['broadcast', '-c', '1000', '-w', '4', '-s', '64', '-d', d], metric: (r) => r.deliveries_per_s ?? 0, unit: 'deliveries/s', higher: true },
];

function startServer(impl: string, mode: string): Promise<{ child: ChildProcess; port: number }> {
  const cmd = hasTaskset ? 'taskset' : process.execPath;
  const args = [...(hasTaskset ? ['-c', '0', process.execPath] : []), SERVER, '--impl', impl, '--mode', mode];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk;
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`${impl} server exited with ${code}`)));
  });
}

function runWsload(args: string[], port: number, pid: number): WsloadResult {
  const all = [...args, '--port', String(port), '--server-pid', String(pid)];
  const cmd = hasTaskset ? 'taskset' : WSLOAD;
  const full = hasTaskset ? ['-c', '1', WSLOAD, ...all] : all;
  const res = spawnSync(cmd, full, { encoding: 'utf8', timeout: (SECONDS + 60) * 1000 });
  const line = res.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as WsloadResult;
  } catch {
    throw new Error(`wsload gave no JSON (status ${res.status}): ${res.stderr}`);
  }
}

async function main(): Promise<void> {
  if (!existsSync(WSLOAD)) {
    process.stdout.write(`wsload not found at ${WSLOAD}. Build it (cc -O2 -Wall -o /tmp/wsload …/wsload/wsload.c) and set WSLOAD.\n`);
    return;
  }
  const impls = values.impls!.split(',');
  const only = values.only?.split(',');
  const table: Array<{ workload: string; unit: string; medians: Record<string, number>; ratio: number; min: number; max: number; details: Record<string, WsloadResult[]> }> = [];
  for (const w of WORKLOADS) {
    if (only && !only.includes(w.name)) continue;
    const results: Record<string, WsloadResult[]> = Object.fromEntries(impls.map((i) => [i, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const impl of impls) {
        const { child, port } = await startServer(impl, w.mode);
        try {
          results[impl].push(runWsload(w.args, port, child.pid!));
        } finally {
          child.kill('SIGTERM');
          await new Promise((r) => child.once('exit', r));
        }
        process.stderr.write(`  ${w.name} round ${round + 1} ${impl}: ${w.metric(results[impl].at(-1)!).toFixed(1)} ${w.unit}\n`);
      }
    }
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const medians = Object.fromEntries(impls.map((i) => [i, med(results[i].map(w.metric))]));
    // Same-round ratios of the first impl to the second (inverted where lower is better).
    const ratios = results[impls[0]].map((r, k) => {
      const a = w.metric(r);
      const b = w.metric(results[impls[1]][k]);
      return w.higher ? a / b : b / a;
    });
    table.push({ workload: w.name, unit: w.unit, medians, ratio: med(ratios), min: Math.min(...ratios), max: Math.max(...ratios), details: results });
  }
  if (values.json) {
    process.stdout.write(JSON.stringify({ rounds: ROUNDS, seconds: SECONDS, taskset: hasTaskset, table }) + '\n');
    return;
  }
  process.stdout.write(`\nmedians of ${ROUNDS} alternating rounds; ratio = ${impls[0]} vs ${impls[1]} (>1 is better for ${impls[0]}), min–max over rounds\n`);
  process.stdout.write(`${'workload'.padEnd(12)} ${'unit'.padEnd(13)} ${impls.map((i) => i.padStart(12)).join(' ')}   ratio (min–max)\n`);
  for (const row of table) {
    const cells = impls.map((i) => row.medians[i].toFixed(row.medians[i] < 100 ? 2 : 0).padStart(12)).join(' ');
    process.stdout.write(`${row.workload.padEnd(12)} ${row.unit.padEnd(13)} ${cells}   ${row.ratio.toFixed(2)}× (${row.min.toFixed(2)}–${row.max.toFixed(2)})\n`);
  }
}

await main();
