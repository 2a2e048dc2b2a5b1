// Publishes per second through the server API (HTTP/1.1 keep-alive, driven by wrk) beside the
// same publishes over WebSocket (HubClient.publish), at the same concurrency, in the same run.
// Not a test: it reports figures.
//
// The server under test runs in a process of its own, pinned to CPU 0 when `taskset` exists:
// `duplex serve` as built (`--server serve`, the default: in-memory broker, anonymous, demo feed
// and apps off, logs at warn), or bench/server-api-server.js (`--server bare`: a Hub, the API
// and the WebSocket endpoint on one http.Server, without serve's metrics and logs). Each load
// generator is pinned to CPU 1. Both loads are closed loops: `--connections` HTTP connections
// (wrk) or hub connections (HubClients), each with one publish in flight, the next sent when the
// answer came. The rounds alternate HTTP, WebSocket, HTTP, … on the same server process.
//
//   npx tsc -p tsconfig.json && node dist/bench/server-api.js [--rounds 3] [--seconds 5] [--connections 50] [--server serve|bare] [--json]
//
// wrk: from Debian/Ubuntu, `apt-get install wrk` (/usr/bin/wrk); elsewhere build it from
// https://github.com/wg/wrk. WRK=/path/to/wrk overrides.
//
// Figures: publishes/s (acknowledged: HTTP 200 / the publish reply), latency p50/p99 as each
// generator measures it, and publishes per second of *server* CPU time (the fairer figure on a
// shared machine: it is what one publish costs the server by each path).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { HubClient } from '../src/hub/index.js';
import { cpuTimes, hostBusy } from './proc-stat.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    server: { type: 'string', default: 'serve' },
    json: { type: 'boolean', default: false },
    // For the WebSocket load child (`ws-load` mode).
    url: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const KEY = 'bench-key-server-api';
const TOPIC = 'bench.api';
/** The publication both paths send: a small JSON object, as a backend's event is. */
const DATA = { event: 'order.created', id: 12345, total: 99.5, items: ['a', 'b'] };
const WRK = process.env.WRK ?? '/usr/bin/wrk';
const BARE_SERVER = fileURLToPath(new URL('./server-api-server.js', import.meta.url));
const DUPLEX = fileURLToPath(new URL('../../bin/duplex.js', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** What one measured phase gave. */
interface Phase {
  path: 'http' | 'ws';
  publishes: number;
  perSecond: number;
  p50ms: number;
  p99ms: number;
  serverCpuPct: number;
  perServerCpuSecond: number;
  host: Array<{ busy: number }>;
  errors: number;
}

/** A command on CPU `cpu` when taskset exists. */
function pinned(cpu: number, command: string, args: string[]): [string, string[]] {
  return hasTaskset ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args];
}

/** A process's CPU time so far, seconds (utime + stime of /proc/<pid>/stat). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function startServer(): Promise<{ child: ChildProcess; port: number }> {
  const serve = values.server !== 'bare';
  const [command, args] = pinned(0, process.execPath, serve ? [DUPLEX, 'serve', '--port', '0', '--anonymous'] : [BARE_SERVER, '--key', KEY]);
  const env = serve ? { ...process.env, DUPLEX_API_KEYS: KEY, DUPLEX_DEMO_FEED: 'false', DUPLEX_APPS: 'false', DUPLEX_LOG_LEVEL: 'warn' } : process.env;
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let errors = '';
  child.stderr!.on('data', (chunk: Buffer) => (errors = (errors + chunk.toString('utf8')).slice(-2000)));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      // `duplex serve` says "listening on http://127.0.0.1:PORT/", the bare server "ready PORT".
      const match = /(?:^ready |listening on http:\/\/[^/\s]+:)(\d+)/m.exec(out);
      if (match) resolve({ child, port: Number(match[1]) });
    });
    child.once('exit', (code) => reject(new Error(`the server exited with ${code}: ${errors}`)));
  });
}

/** wrk's duration text (`1.23ms`, `850.00us`, `1.01s`) in ms. */
function wrkMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!match) return NaN;
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[match[2] as 'us' | 'ms' | 's' | 'm'];
  return Number(match[1]) * scale;
}

/** One phase of HTTP publishes: wrk with a Lua script for the POST, its header and body. */
function httpPhase(port: number, pid: number, seconds: number, dir: string): Phase {
  const script = join(dir, 'publish.lua');
  writeFileSync(
    script,
    [
      'wrk.method = "POST"',
      `wrk.body = ${JSON.stringify(JSON.stringify({ topic: TOPIC, data: DATA }))}`,
      'wrk.headers["Content-Type"] = "application/json"',
      `wrk.headers["Authorization"] = "apikey ${KEY}"`,
      '',
    ].join('\n'),
  );
  const cpu0 = cpuSeconds(pid);
  const host0 = cpuTimes();
  const [command, args] = pinned(1, WRK, ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', script, `http://127.0.0.1:${port}/api/publish`]);
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  const cpu = cpuSeconds(pid) - cpu0;
  const host = hostBusy(host0, cpuTimes());
  const out = result.stdout;
  const total = /(\d+) requests in ([\d.]+)(\w+)/.exec(out);
  if (result.status !== 0 || !total) throw new Error(`wrk failed (${result.status}): ${result.stderr}${out}`);
  const nonOk = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = nonOk + (socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0);
  const elapsed = wrkMs(`${total[2]}${total[3]}`) / 1000;
  const publishes = Number(total[1]) - nonOk;
  return {
    path: 'http',
    publishes,
    perSecond: publishes / elapsed,
    p50ms: wrkMs(/50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99ms: wrkMs(/99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    serverCpuPct: (100 * cpu) / elapsed,
    perServerCpuSecond: publishes / cpu,
    host,
    errors,
  };
}

/** One phase of WebSocket publishes: a child process on CPU 1 with the HubClients (this file, `ws-load`). */
function wsPhase(port: number, pid: number, seconds: number): Phase {
  const cpu0 = cpuSeconds(pid);
  const host0 = cpuTimes();
  const [command, args] = pinned(1, process.execPath, [SELF, 'ws-load', '--url', `ws://127.0.0.1:${port}/ws`, '--connections', String(CONNECTIONS), '--seconds', String(seconds)]);
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: (seconds + 60) * 1000 });
  const cpu = cpuSeconds(pid) - cpu0;
  const host = hostBusy(host0, cpuTimes());
  const line = result.stdout.trim().split('\n').pop() ?? '';
  let load: { publishes: number; elapsed: number; p50ms: number; p99ms: number; errors: number; serverCpu: number };
  try {
    load = JSON.parse(line) as typeof load;
  } catch {
    throw new Error(`ws-load gave no JSON (${result.status}): ${result.stderr}`);
  }
  // The child's measured window only (its connections and warm-up excluded): the server CPU
  // it reports for that window, from /proc, is the figure to compare.
  const serverCpu = load.serverCpu > 0 ? load.serverCpu : cpu;
  return {
    path: 'ws',
    publishes: load.publishes,
    perSecond: load.publishes / load.elapsed,
    p50ms: load.p50ms,
    p99ms: load.p99ms,
    serverCpuPct: (100 * serverCpu) / load.elapsed,
    perServerCpuSecond: load.publishes / serverCpu,
    host,
    errors: load.errors,
  };
}

/** The `ws-load` child: CONNECTIONS HubClients, each publishing in a closed loop for SECONDS. */
async function wsLoad(): Promise<void> {
  const url = values.url!;
  const serverPid = Number(process.env.SERVER_PID ?? 0);
  const clients = Array.from({ length: CONNECTIONS }, () => new HubClient(url, { reconnect: { perMessageDeflate: false } }));
  await Promise.all(clients.map((c) => c.connected()));
  let stopAt = 0;
  let measuring = false;
  let publishes = 0;
  let errors = 0;
  const latencies: number[] = [];
  const loop = async (client: HubClient): Promise<void> => {
    while (performance.now() < stopAt) {
      const start = performance.now();
      try {
        await client.publish(TOPIC, DATA);
        if (measuring) {
          publishes++;
          latencies.push(performance.now() - start);
        }
      } catch {
        if (measuring) errors++;
      }
    }
  };
  // One second of warm-up (JIT, buffers), then the measured window.
  stopAt = performance.now() + 1000;
  await Promise.all(clients.map(loop));
  measuring = true;
  const cpu0 = serverPid > 0 ? cpuSeconds(serverPid) : 0;
  const started = performance.now();
  stopAt = started + SECONDS * 1000;
  await Promise.all(clients.map(loop));
  const elapsed = (performance.now() - started) / 1000;
  const serverCpu = serverPid > 0 ? cpuSeconds(serverPid) - cpu0 : 0;
  await Promise.all(clients.map((c) => c.close()));
  latencies.sort((a, b) => a - b);
  process.stdout.write(`${JSON.stringify({ publishes, elapsed, p50ms: percentile(latencies, 50), p99ms: percentile(latencies, 99), errors, serverCpu })}\n`);
}

async function main(): Promise<void> {
  if (!existsSync(WRK)) {
    process.stdout.write(`wrk not found at ${WRK}: install it (Debian/Ubuntu: sudo apt-get install wrk) or set WRK=/path/to/wrk.\n`);
    process.exitCode = 1;
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'duplex-bench-api-'));
  const { child, port } = await startServer();
  process.env.SERVER_PID = String(child.pid);
  const phases: Phase[] = [];
  try {
    // Warm both paths once (JIT, history of the topic), unmeasured.
    httpPhase(port, child.pid!, 1, dir);
    wsPhase(port, child.pid!, 1);
    for (let round = 0; round < ROUNDS; round++) {
      phases.push(httpPhase(port, child.pid!, SECONDS, dir));
      phases.push(wsPhase(port, child.pid!, SECONDS));
    }
  } finally {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  const of = (path: Phase['path']): Phase[] => phases.filter((p) => p.path === path);
  const summary = (path: Phase['path']) => ({
    perSecond: Math.round(median(of(path).map((p) => p.perSecond))),
    p50ms: median(of(path).map((p) => p.p50ms)),
    p99ms: median(of(path).map((p) => p.p99ms)),
    serverCpuPct: Math.round(median(of(path).map((p) => p.serverCpuPct))),
    perServerCpuSecond: Math.round(median(of(path).map((p) => p.perServerCpuSecond))),
    errors: of(path).reduce((sum, p) => sum + p.errors, 0),
  });
  const http = summary('http');
  const ws = summary('ws');
  // Same-round ratios: HTTP's rate over the WebSocket rate of the same round.
  const ratios = of('http').map((p, i) => p.perSecond / of('ws')[i]!.perSecond);
  const cpuRatios = of('http').map((p, i) => p.perServerCpuSecond / of('ws')[i]!.perServerCpuSecond);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ server: values.server, rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, taskset: hasTaskset, http, ws, ratios, cpuRatios, phases })}\n`);
    return;
  }
  const row = (name: string, s: typeof http): string =>
    `${name.padEnd(22)} ${String(s.perSecond).padStart(9)}  ${s.p50ms.toFixed(2).padStart(7)}  ${s.p99ms.toFixed(2).padStart(7)}  ${String(s.serverCpuPct).padStart(5)}%  ${String(s.perServerCpuSecond).padStart(10)}  ${String(s.errors).padStart(6)}`;
  const range = (list: number[]): string => `${median(list).toFixed(2)} (${Math.min(...list).toFixed(2)}-${Math.max(...list).toFixed(2)})`;
  process.stdout.write(
    [
      `server API vs WebSocket publishes (${values.server === 'bare' ? 'bare server' : 'duplex serve'}): ${CONNECTIONS} connections x 1 in flight, ${SECONDS} s x ${ROUNDS} rounds${hasTaskset ? ', server on CPU 0, load on CPU 1' : ''}`,
      `${'path'.padEnd(22)} ${'publish/s'.padStart(9)}  ${'p50 ms'.padStart(7)}  ${'p99 ms'.padStart(7)}  ${'cpu'.padStart(6)}  ${'per CPU-s'.padStart(10)}  ${'errors'.padStart(6)}`,
      row('HTTP POST /api/publish', http),
      row('WebSocket publish', ws),
      `HTTP / WebSocket: publish/s ${range(ratios)}, per server CPU-s ${range(cpuRatios)}`,
      `host busy per CPU (last round): HTTP ${of('http').at(-1)!.host.map((h) => `${h.busy}%`).join(' / ')}, WebSocket ${of('ws').at(-1)!.host.map((h) => `${h.busy}%`).join(' / ')}`,
      '',
    ].join('\n'),
  );
}

if (positionals[0] === 'ws-load') await wsLoad();
else await main();
