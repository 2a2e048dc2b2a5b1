// The side-by-side benchmark suite: duplex and `ws` servers under the same wsload workloads,
// alternating (A B A B …) over several rounds, server pinned to CPU 0 and load to CPU 1 when
// `taskset` exists. Prints one table of medians and same-run ratios (min–max over rounds).
//
//   WSLOAD=/tmp/wsload npm run bench [-- --rounds 3 --seconds 5 --only echo64,idle10k --json --out results.json]
//
// Build wsload first: cc -O2 -Wall -o /tmp/wsload <path to shared>/wsload/wsload.c
//
// Options:
//   --node-flags "--max-semi-space-size=1"   V8/Node flags for BOTH Node servers (e.g. to keep
//                                            young-generation growth out of the idle RSS figure)
//   CECHO=/tmp/c-echo                        adds impl `c`: bench/c-echo/echo.c, the C ceiling
//                                            (cc -O2 -Wall -o /tmp/c-echo bench/c-echo/echo.c)
//   BASELINE=<checkout>/dist/bench/servers.js   adds impl `baseline`: the duplex server of another
//                                            build (e.g. the commit before a change), to measure a
//                                            change before and after in the same run:
//                                            --impls duplex,baseline,ws
// Workloads `deflate-echo` and `deflate-idle` use bench/deflate.js (the npm `ws` client with
// permessage-deflate) as the load generator instead of wsload; the C server has no deflate and
// is skipped there.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

// `--node-flags "--x=1"` as two words: parseArgs refuses a value that starts with a dash.
const argv = process.argv.slice(2);
const nf = argv.indexOf('--node-flags');
if (nf !== -1 && nf + 1 < argv.length) argv.splice(nf, 2, `--node-flags=${argv[nf + 1]}`);
const { values } = parseArgs({
  args: argv,
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
    out: { type: 'string' },
    impls: { type: 'string' },
    'node-flags': { type: 'string', default: '' },
  },
});
const CECHO = process.env.CECHO;
const NODE_FLAGS = values['node-flags']!.split(' ').filter((f) => f.length > 0);
const DEFLATE_GEN = fileURLToPath(new URL('./deflate.js', import.meta.url));
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const WSLOAD = process.env.WSLOAD ?? '/tmp/wsload';
const SERVER = fileURLToPath(new URL('./servers.js', import.meta.url));
const BASELINE = process.env.BASELINE;
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

interface Workload {
  name: string;
  mode: 'echo' | 'broadcast';
  args: string[];
  /** The load generator: wsload (default) or bench/deflate.js (permessage-deflate). */
  gen?: 'wsload' | 'deflate';
  /** A throughput (so `metric / server CPU` — work per server CPU-second — is meaningful too). */
  rate?: boolean;
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
  host_cpus?: Array<{ busy: number }>;
  opened?: number;
  lost_deliveries?: number;
  errors?: Record<string, number>;
}

const d = String(SECONDS);
const WORKLOADS: Workload[] = [
  { name: 'echo64', mode: 'echo', args: ['echo', '-c', '100', '-w', '16', '-s', '64', '--text', '-d', d, '--warmup', '1'], metric: (r) => r.msgs_per_s ?? 0, unit: 'msgs/s', higher: true, rate: true },
  { name: 'echo64-p99', mode: 'echo', args: ['echo', '-c', '100', '-w', '16', '-s', '64', '--text', '-d', d, '--warmup', '1'], metric: (r) => r.lat_us?.p99 ?? 0, unit: 'µs p99', higher: false },
  { name: 'echo16k', mode: 'echo', args: ['echo', '-c', '50', '-w', '4', '-s', '16384', '--binary', '-d', d, '--warmup', '1'], metric: (r) => r.mb_per_s ?? 0, unit: 'MB/s', higher: true, rate: true },
  { name: 'idle10k', mode: 'echo', args: ['idle', '-c', '10000', '-d', '3', '--rate', '20000', '--max-pending', '500'], metric: (r) => r.kib_per_conn ?? 0, unit: 'KiB/conn', higher: false },
  { name: 'connect', mode: 'echo', args: ['idle', '-c', '5000', '-d', '1', '--max-pending', '200'], metric: (r) => r.connect_rate_per_s ?? 0, unit: 'conns/s', higher: true },
  { name: 'broadcast1k', mode: 'broadcast', args: ['broadcast', '-c', '1000', '-w', '4', '-s', '64', '-d', d], metric: (r) => r.deliveries_per_s ?? 0, unit: 'deliveries/s', higher: true, rate: true },
  { name: 'deflate-echo', mode: 'echo', gen: 'deflate', args: ['echo', '-c', '50', '-w', '4', '-d', d, '--warmup', '1'], metric: (r) => r.msgs_per_s ?? 0, unit: 'msgs/s', higher: true, rate: true },
  { name: 'deflate-idle', mode: 'echo', gen: 'deflate', args: ['idle', '-c', '2000', '-d', '2'], metric: (r) => r.kib_per_conn ?? 0, unit: 'KiB/conn', higher: false },
];

function startServer(impl: string, mode: string, deflate: boolean): Promise<{ child: ChildProcess; port: number }> {
  const deflateFlag = deflate ? ['--deflate'] : [];
  const server =
    impl === 'c'
      ? [CECHO!, '--mode', mode]
      : impl === 'baseline'
        ? [process.execPath, ...NODE_FLAGS, BASELINE!, '--impl', 'duplex', '--mode', mode, ...deflateFlag]
        : [process.execPath, ...NODE_FLAGS, SERVER, '--impl', impl, '--mode', mode, ...deflateFlag];
  const cmd = hasTaskset ? 'taskset' : server[0]!;
  const args = hasTaskset ? ['-c', '0', ...server] : server.slice(1);
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

function runWsload(args: string[], port: number, pid: number, gen: 'wsload' | 'deflate'): WsloadResult {
  const all = [...args, '--port', String(port), '--server-pid', String(pid)];
  const tool = gen === 'deflate' ? [process.execPath, DEFLATE_GEN] : [WSLOAD];
  const cmd = hasTaskset ? 'taskset' : tool[0]!;
  const full = hasTaskset ? ['-c', '1', ...tool, ...all] : [...tool.slice(1), ...all];
  const res = spawnSync(cmd, full, { encoding: 'utf8', timeout: (SECONDS + 60) * 1000 });
  const line = res.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as WsloadResult;
  } catch {
    throw new Error(`${gen} gave no JSON (status ${res.status}): ${res.stderr}`);
  }
}

async function main(): Promise<void> {
  if (!existsSync(WSLOAD)) {
    process.stdout.write(`wsload not found at ${WSLOAD}. Build it (cc -O2 -Wall -o /tmp/wsload …/wsload/wsload.c) and set WSLOAD.\n`);
    return;
  }
  const allImpls = (values.impls ?? (CECHO && existsSync(CECHO) ? 'duplex,ws,c' : 'duplex,ws')).split(',');
  if (allImpls.includes('c') && !(CECHO && existsSync(CECHO))) {
    process.stdout.write('impl c needs CECHO=<path to the built bench/c-echo/echo.c>\n');
    return;
  }
  if (allImpls.includes('baseline') && !(BASELINE && existsSync(BASELINE))) {
    process.stdout.write('impl baseline needs BASELINE=<another checkout>/dist/bench/servers.js\n');
    return;
  }
  const only = values.only?.split(',');
  const table: Array<{
    workload: string;
    unit: string;
    medians: Record<string, number>;
    ratio: number;
    min: number;
    max: number;
    /** Median server CPU% per impl, and the same-round ratio of work per server CPU-second. */
    cpu: Record<string, number>;
    cpuRatio?: { ratio: number; min: number; max: number };
    /** Median busy% of the host's CPUs over the rounds (other load on a shared machine). */
    hostBusy: number[];
    details: Record<string, WsloadResult[]>;
  }> = [];
  for (const w of WORKLOADS) {
    if (only ? !only.includes(w.name) : w.name.startsWith('deflate') && process.env.SKIP_DEFLATE) continue;
    const gen = w.gen ?? 'wsload';
    const impls = gen === 'deflate' ? allImpls.filter((i) => i !== 'c') : allImpls;
    const results: Record<string, WsloadResult[]> = Object.fromEntries(impls.map((i) => [i, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const impl of impls) {
        const { child, port } = await startServer(impl, w.mode, gen === 'deflate');
        try {
          results[impl].push(runWsload(w.args, port, child.pid!, gen));
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
    const cpu = Object.fromEntries(impls.map((i) => [i, med(results[i].map((r) => r.server_cpu_pct ?? NaN))]));
    let cpuRatio: { ratio: number; min: number; max: number } | undefined;
    if (w.rate) {
      const perCpu = (r: WsloadResult): number => w.metric(r) / Math.max(1, r.server_cpu_pct ?? NaN);
      const rs = results[impls[0]].map((r, k) => perCpu(r) / perCpu(results[impls[1]][k]));
      cpuRatio = { ratio: med(rs), min: Math.min(...rs), max: Math.max(...rs) };
    }
    const hostBusy = [0, 1].map((c) => med(impls.flatMap((i) => results[i].map((r) => r.host_cpus?.[c]?.busy ?? NaN))));
    table.push({ workload: w.name, unit: w.unit, medians, ratio: med(ratios), min: Math.min(...ratios), max: Math.max(...ratios), cpu, cpuRatio, hostBusy, details: results });
  }
  const json = JSON.stringify({ rounds: ROUNDS, seconds: SECONDS, taskset: hasTaskset, nodeFlags: NODE_FLAGS, table });
  if (values.out) writeFileSync(values.out, json + '\n');
  if (values.json) {
    process.stdout.write(json + '\n');
    return;
  }
  const [a, b] = allImpls;
  process.stdout.write(`\nmedians of ${ROUNDS} alternating rounds${NODE_FLAGS.length ? ` (node flags: ${NODE_FLAGS.join(' ')})` : ''}; ratio = ${a} vs ${b} (>1 is better for ${a}), min–max over rounds;\n`);
  process.stdout.write(`per CPU-s = the same ratio of work per second of server CPU time (fairer when the host is busy); cpu% = server CPU, host = busy% of CPU 0/1\n`);
  process.stdout.write(`${'workload'.padEnd(13)} ${'unit'.padEnd(13)} ${allImpls.map((i) => i.padStart(10)).join(' ')}   ${'ratio (min–max)'.padEnd(20)} ${'per CPU-s'.padEnd(20)} ${'cpu%'.padEnd(16)} host\n`);
  const fmt = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(x < 100 ? 2 : 0));
  for (const row of table) {
    const cells = allImpls.map((i) => fmt(row.medians[i]).padStart(10)).join(' ');
    const ratio = `${row.ratio.toFixed(2)}× (${row.min.toFixed(2)}–${row.max.toFixed(2)})`;
    const cpuRatio = row.cpuRatio ? `${row.cpuRatio.ratio.toFixed(2)}× (${row.cpuRatio.min.toFixed(2)}–${row.cpuRatio.max.toFixed(2)})` : '';
    const cpu = allImpls.filter((i) => i in row.cpu).map((i) => (row.cpu[i] ?? NaN).toFixed(0)).join('/');
    process.stdout.write(`${row.workload.padEnd(13)} ${row.unit.padEnd(13)} ${cells}   ${ratio.padEnd(20)} ${cpuRatio.padEnd(20)} ${cpu.padEnd(16)} ${row.hostBusy.map((x) => x.toFixed(0)).join('/')}\n`);
  }
}

await main();
