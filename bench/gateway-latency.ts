// Publish → browser delivery latency through the gateway: `duplex serve` in a process of its
// own (in-memory broker, server API on), a headless Chromium page subscribed with the browser
// client, and publishes from this process at a steady rate, each carrying its send time: through
// the server API (HTTP POST, keep-alive) and, in the same run, over a WebSocket (HubClient
// publish). The page records when each arrives; both clocks are this machine's. Not a test: it
// reports figures.
//
//   npx tsc -p tsconfig.json && node dist/bench/gateway-latency.js [--rate 200] [--seconds 10] [--json]
//
// Needs Debian's Chromium (/usr/bin/chromium, or CHROMIUM_PATH).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { HubClient } from '../src/hub/index.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const KEY = 'bench-gateway-latency-key-0123456789';
const DUPLEX = fileURLToPath(new URL('../../bin/duplex.js', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function startServer(): Promise<{ url: string; stop(): void }> {
  const child = spawn(process.execPath, [DUPLEX, 'serve'], {
    env: { ...process.env, DUPLEX_PORT: '0', DUPLEX_API_KEYS: KEY, DUPLEX_DEMO_FEED: 'false', DUPLEX_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let seen = '';
    child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      const match = /listening on (http:\/\/\S+?)\/\s/.exec(seen);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`duplex serve exited with ${String(code)}`)));
  });
  return { url, stop: () => void child.kill('SIGTERM') };
}

const agent = new Agent({ keepAlive: true, maxSockets: 8 });
function postPublish(base: string, data: unknown): Promise<number> {
  const body = JSON.stringify({ topic: 'bench', data });
  return new Promise((resolve, reject) => {
    const req = request(`${base}/api/publish`, { method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Authorization: `apikey ${KEY}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Publish at RATE per second for SECONDS via `send`; resolves once all were acknowledged. */
async function drive(send: (data: { path: string; sent: number; n: number }) => Promise<unknown>, path: string): Promise<number> {
  const total = Math.round(RATE * SECONDS);
  const start = performance.now();
  const inflight: Promise<unknown>[] = [];
  for (let n = 0; n < total; n++) {
    const due = start + (n * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    // performance.timeOrigin + now(): the wall clock with sub-millisecond resolution, in both processes.
    inflight.push(send({ path, sent: performance.timeOrigin + performance.now(), n }));
  }
  await Promise.all(inflight);
  return total;
}

const server = await startServer();
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'] });
try {
  const page = await browser.newPage();
  await page.goto(`${server.url}/`);
  await page.evaluate(async () => {
    const { DuplexClient } = (await import('/duplex/client.js' as string)) as { DuplexClient: new (url: string) => { subscribe(topic: string, listener: (data: { path: string; sent: number }) => void): Promise<unknown> } };
    const seen: Record<string, number[]> = { api: [], ws: [] };
    (window as unknown as { latencies: Record<string, number[]> }).latencies = seen;
    const client = new DuplexClient('/ws');
    await client.subscribe('bench', (data) => seen[data.path]!.push(performance.timeOrigin + performance.now() - data.sent));
  });
  const publisher = new HubClient(server.url.replace(/^http/, 'ws') + '/ws');
  await publisher.ping();
  const results: Record<string, { sent: number; received: number; p50: number; p99: number; max: number }> = {};
  for (const path of ['api', 'ws', 'api', 'ws'] as const) {
    const sent = await drive((data) => (path === 'api' ? postPublish(server.url, data) : publisher.publish('bench', data)), path);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const latencies = await page.evaluate((p) => (window as unknown as { latencies: Record<string, number[]> }).latencies[p]!.splice(0), path);
    const sorted = latencies.sort((a, b) => a - b);
    const entry = results[path] ?? { sent: 0, received: 0, p50: 0, p99: 0, max: 0 };
    // The second round of each path is the one reported (the first warms both paths up).
    results[path] = { sent: entry.sent + sent, received: entry.received + sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? NaN };
  }
  await publisher.close();
  if (values.json) {
    process.stdout.write(JSON.stringify({ rate: RATE, seconds: SECONDS, results }) + '\n');
  } else {
    process.stdout.write(`publish → Chromium delivery, ${RATE}/s for ${SECONDS} s per round (2 rounds per path, the second reported)\n`);
    process.stdout.write('| path | delivered | p50 ms | p99 ms | max ms |\n|---|--:|--:|--:|--:|\n');
    for (const [path, r] of Object.entries(results)) {
      process.stdout.write(`| ${path === 'api' ? 'server API (HTTP POST)' : 'WebSocket (HubClient)'} | ${r.received}/${r.sent} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.max.toFixed(2)} |\n`);
    }
  }
} finally {
  await browser.close();
  server.stop();
  agent.destroy();
}
