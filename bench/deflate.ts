// Load generator for the compressed workloads (wsload has no permessage-deflate): the npm `ws`
// client with `perMessageDeflate: true` against a server started by `bench/servers.js
// --deflate`. `bench/run.js` runs it (workloads `deflate-echo` and `deflate-idle`, alternating
// duplex and ws like every other workload, load pinned to CPU 1):
//
//   WSLOAD=/tmp/wsload node dist/bench/run.js --only deflate-echo,deflate-idle
//
// or by hand against a running server:
//
//   node dist/bench/deflate.js echo --port P --server-pid PID [-c 50] [-w 4] [-d 4] [--warmup 1]
//   node dist/bench/deflate.js idle --port P --server-pid PID [-c 2000] [-d 2]
//
// echo: every connection keeps WINDOW JSON-like text messages of 1–4 KiB (compressible, ~5:1
// at level 1) in flight; messages/s echoed inside the measured window, RTT percentiles, and
// the server's CPU% (/proc/PID/stat) and this process's. The `ws` client compresses and
// inflates every message in this one Node process, so it is often the limit: when
// `client_cpu_pct` is near 100 the figure is the client's, and the server's cost is better
// read as messages per server CPU-second (`msgs_per_server_cpu_s`).
// idle: opens CONNS compressed connections, sends one compressible message each way on each
// (so the inflate/deflate contexts the server keeps exist), holds them, and reports the
// server's RSS growth per connection (/proc/PID/status VmRSS: after the hold minus before).
//
// Output: one JSON object on one line (the field names of wsload's, where they mean the same).
import { readFileSync } from 'node:fs';
import { cpuTimes, hostBusy } from './proc-stat.js';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string' },
    path: { type: 'string', default: '/echo' },
    'server-pid': { type: 'string' },
    c: { type: 'string', short: 'c' },
    w: { type: 'string', short: 'w', default: '4' },
    d: { type: 'string', short: 'd' },
    warmup: { type: 'string', default: '1' },
  },
});
const mode = positionals[0] ?? 'echo';
const PORT = Number(values.port);
const PID = values['server-pid'] ? Number(values['server-pid']) : undefined;
const CONNS = Number(values.c ?? (mode === 'idle' ? 2000 : 50));
const WINDOW = Number(values.w);
const SECONDS = Number(values.d ?? (mode === 'idle' ? 2 : 4));
const WARMUP = Number(values.warmup);
const CLK_TCK = 100; // Linux USER_HZ

/** Server CPU time in seconds (utime + stime), or NaN. */
function serverCpu(): number {
  if (PID === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${PID}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Server VmRSS in KiB, or NaN. */
function serverRss(): number {
  if (PID === undefined) return NaN;
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${PID}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Deterministic PRNG (xorshift32) so both servers get the same messages. */
let seed = 0x9e3779b9;
function rand(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}

/** A JSON-like text message of about `size` bytes: the kind of payload compression is for. */
function jsonMessage(size: number): string {
  const words = ['update', 'price', 'quantity', 'status', 'pending', 'shipped', 'customer', 'warehouse', 'north', 'south', 'express', 'standard'];
  const items: string[] = [];
  let length = 40;
  for (let i = 0; length < size - 80; i++) {
    const item = `{"sku":"SKU-${1000 + rand(9000)}","name":"${words[rand(words.length)]} ${words[rand(words.length)]}","qty":${rand(50)},"price":${rand(10000) / 100},"state":"${words[rand(words.length)]}"}`;
    items.push(item);
    length += item.length + 1;
  }
  return `{"type":"order.update","seq":0,"customer":"customer-${rand(100000)}","items":[${items.join(',')}]}`;
}
const MESSAGES = Array.from({ length: 64 }, () => jsonMessage(1024 + rand(3072)));

function open(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${PORT}${values.path}`, { perMessageDeflate: true });
    ws.once('open', () => {
      if (!ws.extensions.includes('permessage-deflate')) reject(new Error(`server did not negotiate permessage-deflate: '${ws.extensions}'`));
      else resolve(ws);
    });
    ws.once('error', reject);
  });
}

async function openAll(n: number): Promise<WebSocket[]> {
  const all: WebSocket[] = [];
  for (let i = 0; i < n; i += 100) all.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, open))));
  return all;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function echo(): Promise<object> {
  const sockets = await openAll(CONNS);
  let measuring = false;
  let msgs = 0;
  let bytes = 0;
  let mismatches = 0;
  const latencies: number[] = [];
  let next = 0;
  for (const ws of sockets) {
    const sent: Array<[number, number]> = []; // [time, length] FIFO
    const send = (): void => {
      const text = MESSAGES[next++ & 63]!;
      sent.push([performance.now(), text.length]);
      ws.send(text);
    };
    ws.on('message', (data: Buffer) => {
      const [t, length] = sent.shift()!;
      if (data.length !== length) mismatches++;
      if (measuring) {
        msgs++;
        bytes += data.length;
        if ((msgs & 7) === 0) latencies.push(performance.now() - t);
      }
      send();
    });
    for (let i = 0; i < WINDOW; i++) send();
  }
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  const cpu0 = serverCpu();
  const client0 = process.cpuUsage();
  const host0 = cpuTimes();
  const t0 = performance.now();
  measuring = true;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  const client = process.cpuUsage(client0);
  const serverSeconds = serverCpu() - cpu0;
  const host = hostBusy(host0, cpuTimes());
  for (const ws of sockets) ws.terminate();
  const lat = Float64Array.from(latencies).sort();
  return {
    tool: 'bench/deflate',
    mode: 'echo',
    conns: CONNS,
    window: WINDOW,
    duration_s: elapsed,
    msgs,
    msgs_per_s: msgs / elapsed,
    mb_per_s: bytes / elapsed / 1e6,
    msgs_per_server_cpu_s: msgs / serverSeconds,
    lat_us: { p50: percentile(lat, 50) * 1000, p99: percentile(lat, 99) * 1000 },
    server_cpu_pct: (100 * serverSeconds) / elapsed,
    client_cpu_pct: (100 * (client.user + client.system)) / 1e6 / elapsed,
    host_cpus: host,
    errors: { length_mismatch: mismatches },
  };
}

async function idle(): Promise<object> {
  const before = serverRss();
  const t0 = performance.now();
  const sockets = await openAll(CONNS);
  const connectSeconds = (performance.now() - t0) / 1000;
  // One compressible message each way on every connection, so that the contexts exist.
  for (let i = 0; i < sockets.length; i += 100) {
    await Promise.all(
      sockets.slice(i, i + 100).map(
        (ws, k) =>
          new Promise<void>((resolve) => {
            ws.once('message', () => resolve());
            ws.send(MESSAGES[(i + k) & 63]!);
          }),
      ),
    );
  }
  const afterMessages = serverRss();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const endHold = serverRss();
  const open = sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length;
  for (const ws of sockets) ws.terminate();
  return {
    tool: 'bench/deflate',
    mode: 'idle',
    conns: CONNS,
    opened: sockets.length,
    connect_rate_per_s: sockets.length / connectSeconds,
    dropped: sockets.length - open,
    server_rss_kib: { before, after_messages: afterMessages, end_hold: endHold },
    kib_per_conn: (endHold - before) / sockets.length,
  };
}

const result = mode === 'idle' ? await idle() : await echo();
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(0);
