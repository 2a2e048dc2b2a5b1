// Several processes on one port (`runWorkers`, `duplex serve --workers N`): what they buy on
// this machine, and which broker and which balancing to choose. Two experiments, each
// alternating its configurations round by round in one run (the machine is shared and noisy):
//
//   node dist/bench/workers.js echo [--rounds 3] [--seconds 4]      # needs WSLOAD (default /tmp/wsload)
//     An echo server (duplex's WebSocketServer, as bench/servers.ts writes it) as one process,
//     and under runWorkers with 1 and 2 workers, round robin ('rr', node:cluster's Linux
//     default) and 'none' (the kernel spreads accepts on the shared socket). Per configuration:
//     how 1,000 idle connections spread over the workers (their sockets, read from /proc), then
//     wsload echo (100 connections × 16 in flight, 64 B text): msgs/s, p99, and the CPU of every
//     server process (primary included).
//
//   node dist/bench/workers.js hub [--rounds 3] [--seconds 5] [--pairs 50] [--window 8]
//     `duplex serve` as one process and with --workers 2, with the in-memory broker (IPC with
//     workers) and with Redis (127.0.0.1:6379). The load (a child process): `pairs` publishers,
//     each publishing to its own topic with `window` publishes in flight, and one subscriber per
//     topic opened right after its publisher (round robin puts the two on different workers):
//     publishes acknowledged per second, deliveries per second, publish → delivery latency, and
//     the CPU of every server process, of redis-server and of the load.
//
//   node dist/bench/workers.js broker [--rounds 3] [--seconds 3] [--count 1000] [--in-flight 64]
//     The brokers alone, no hub: two processes, one publishing, one subscribed, through the IPC
//     broker (this process is their primary) and through Redis (127.0.0.1:6379). `count`
//     publications one at a time (publish → delivery in the other process: unloaded latency),
//     then `seconds` of publishing with `in-flight` publishes in flight (publishes/s, latency).
//     The two processes' clocks: performance.timeOrigin + performance.now() in each.
//
//   node dist/bench/workers.js broadcast [--rounds 3] [--seconds 4] [--receivers 1000]
//     Fan-out across workers: a server whose every connection on /broadcast receives what any
//     of them sends, carried by a broker (the hub's delivery path without the hub's envelope,
//     so that wsload's broadcast mode can drive it): each message is published to one topic,
//     every node frames each publication once and writes it to its own connections. One process
//     (MemoryBroker), 2 workers with the IPC broker, 2 workers with Redis. wsload broadcast,
//     `receivers` connections, `in-flight` broadcasts in flight (default 64), 64 B: deliveries/s and latency.
//
// Roles used by the four above (each prints one line on stdout, or talks to its parent):
//   node dist/bench/workers.js echo-server --workers N [--scheduling rr|none]   (N = 0: no runWorkers)
//   node dist/bench/workers.js hub-load --url WS --pairs P --window W --seconds S --warmup S
//   node dist/bench/workers.js broker-node --broker ipc|redis://… --topic T (forked, with an IPC channel)
//   node dist/bench/workers.js broadcast-server --workers N --broker memory|redis://…   (N = 0: no runWorkers)
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { WebSocketServer, prepareMessage, type WebSocket } from '../src/index.js';
import { corkLoopPass } from '../src/node/write-batch.js';
import { MemoryBroker } from '../src/hub/brokers/memory.js';
import { connect } from '../src/node/client.js';
import { runWorkers, type WorkerScheduling } from '../src/hub/workers.js';
import { IpcBroker, IpcBrokerPrimary, type IpcPort } from '../src/hub/brokers/ipc.js';
import type { Broker, Publication } from '../src/hub/broker.js';

const { values, positionals } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string' },
    workers: { type: 'string', default: '0' },
    scheduling: { type: 'string' },
    url: { type: 'string' },
    pairs: { type: 'string', default: '50' },
    window: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '1' },
    count: { type: 'string', default: '1000' },
    'in-flight': { type: 'string', default: '64' },
    broker: { type: 'string' },
    topic: { type: 'string' },
    receivers: { type: 'string', default: '1000' },
  },
  allowPositionals: true,
});
const SELF = fileURLToPath(import.meta.url);
const ROOT = join(SELF, '..', '..', '..');
const WSLOAD = process.env.WSLOAD ?? '/tmp/wsload';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---- processes and /proc ------------------------------------------------------------------------

/** CPU seconds (user + system) of a process so far; 0 once it is gone. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** The direct children of a process. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** How many sockets a process holds. */
function sockets(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
      } catch {
        return false;
      }
    }).length;
  } catch {
    return 0;
  }
}

/** Start a process and resolve with it once a stdout line matches `ready`. */
function startProcess(command: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')}: not ready in 20 s`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = ready.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

/** How busy the machine's CPUs were, on average, while wsload measured (its `host_cpus`). */
const hostBusyOf = (report: { host_cpus: Array<{ busy: number }> }): number => Math.round(report.host_cpus.reduce((sum, cpu) => sum + cpu.busy, 0) / Math.max(1, report.host_cpus.length));

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
};

// ---- roles ----------------------------------------------------------------------------------------

/** An echo server on every path: one process (`workers` 0) or `workers` processes of runWorkers. */
async function echoServer(): Promise<void> {
  const workers = Number(values.workers);
  const start = async (): Promise<{ port: number; close(): Promise<void> }> => {
    const server = new WebSocketServer({
      textAsBuffer: true,
      pingInterval: 0,
      maxBufferedAmount: 64 << 20,
      handlers: {
        message(ws: WebSocket<undefined>, data, isBinary) {
          if (isBinary) ws.send(data as Buffer);
          else ws.sendText(data as Buffer);
        },
      },
    });
    const { port } = await server.listen(Number(process.env.ECHO_PORT ?? 0), '127.0.0.1');
    return { port, close: () => server.close() };
  };
  if (workers === 0) {
    const { port } = await start();
    process.stdout.write(`ready ${port} ${process.pid}\n`);
    return;
  }
  const scheduling = values.scheduling as WorkerScheduling | undefined;
  const result = await runWorkers({
    workers,
    ...(scheduling !== undefined ? { scheduling } : {}),
    ipcBroker: false,
    async start() {
      const server = await start();
      return { close: server.close, info: { port: server.port } };
    },
  });
  if (result.role === 'primary') {
    const port = (result.workers[0]!.info as { port: number }).port;
    process.stdout.write(`ready ${port} ${result.workers.map((w) => w.pid).join(',')}\n`);
  }
}

/** Hub publishers and subscribers in pairs; prints one JSON line with what it measured. */
async function hubLoad(): Promise<void> {
  const url = values.url!;
  const pairs = Number(values.pairs);
  const window = Number(values.window);
  const seconds = Number(values.seconds ?? 5);
  const warmup = Number(values.warmup);
  const run = randomBytes(3).toString('hex');
  let measuring = false;
  let acks = 0;
  let deliveries = 0;
  const latencies: number[] = [];
  let stopped = false;

  interface Conn {
    ws: WebSocket<undefined>;
    node: string;
    onReply: Map<number, () => void>;
  }
  const open = async (onMessage: (m: { type: string; id?: number; data?: { t: number }; result?: { node?: string } }) => void): Promise<Conn> => {
    const conn: Conn = { ws: undefined as unknown as WebSocket<undefined>, node: '', onReply: new Map() };
    conn.ws = await connect(url, {
      handlers: {
        message(_ws, data) {
          const message = JSON.parse(String(data)) as { type: string; id?: number; data?: { t: number }; result?: { node?: string } };
          if (message.type === 'reply' && message.id !== undefined) {
            if (message.id === 0) conn.node = message.result?.node ?? '';
            const done = conn.onReply.get(message.id);
            conn.onReply.delete(message.id);
            done?.();
          }
          onMessage(message);
        },
      },
    });
    await new Promise<void>((resolve) => {
      conn.onReply.set(0, resolve);
      conn.ws.send(JSON.stringify({ type: 'connect', id: 0 }));
    });
    return conn;
  };

  let cross = 0;
  const publishers: Array<{ conn: Conn; topic: string }> = [];
  for (let i = 0; i < pairs; i++) {
    const topic = `bench.${run}.${i}`;
    const publisher = await open(() => {});
    const subscriber = await open((m) => {
      if (m.type !== 'message' || !measuring) return;
      deliveries++;
      latencies.push(performance.now() - m.data!.t);
    });
    await new Promise<void>((resolve) => {
      subscriber.onReply.set(1, resolve);
      subscriber.ws.send(JSON.stringify({ type: 'subscribe', id: 1, topic }));
    });
    if (publisher.node !== subscriber.node) cross++;
    publishers.push({ conn: publisher, topic });
  }

  let nextId = 1;
  const publish = (p: { conn: Conn; topic: string }): void => {
    if (stopped) return;
    const id = nextId++;
    p.conn.onReply.set(id, () => {
      if (measuring) acks++;
      publish(p);
    });
    p.conn.ws.send(`{"type":"publish","id":${id},"topic":${JSON.stringify(p.topic)},"data":{"t":${performance.now()}}}`);
  };
  for (const p of publishers) for (let w = 0; w < window; w++) publish(p);
  await sleep(warmup * 1000);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  await sleep(seconds * 1000);
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  stopped = true;
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! * 100) / 100;
  process.stdout.write(
    `${JSON.stringify({
      acksPerSecond: Math.round(acks / elapsed),
      deliveriesPerSecond: Math.round(deliveries / elapsed),
      p50: pct(0.5),
      p99: pct(0.99),
      crossWorkerPairs: cross,
      pairs,
      loadCpuPct: Math.round(((cpu.user + cpu.system) / 1e6 / elapsed) * 100),
    })}\n`,
  );
  for (const p of publishers) p.conn.ws.terminate();
  process.exit(0);
}

// ---- experiments --------------------------------------------------------------------------------

interface EchoConfig {
  readonly name: string;
  readonly workers: number;
  readonly scheduling?: WorkerScheduling;
}

async function echoExperiment(): Promise<void> {
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds ?? 4);
  const configs: EchoConfig[] = [
    { name: 'one process', workers: 0 },
    { name: '1 worker, rr', workers: 1, scheduling: 'rr' },
    { name: '2 workers, rr', workers: 2, scheduling: 'rr' },
    { name: '2 workers, none', workers: 2, scheduling: 'none' },
  ];
  const results = new Map<string, Array<{ msgs: number; p99: number; cpu: number; spread: number[]; echoSpread: number[]; perConn: number[]; wsloadCpu: number; hostBusy: number }>>();
  for (let round = 1; round <= rounds; round++) {
    for (const config of configs) {
      const args = [SELF, 'echo-server', '--workers', String(config.workers), ...(config.scheduling ? ['--scheduling', config.scheduling] : [])];
      const { child, match } = await startProcess(process.execPath, args, /^ready (\d+) ([\d,]+)$/m);
      const port = match[1]!;
      const workers = match[2]!.split(',').map(Number);
      const all = config.workers === 0 ? [child.pid!] : [child.pid!, ...workers];
      try {
        // Spread: 1,000 idle connections, counted per worker while they are held.
        const base = workers.map(sockets);
        const idle = run(WSLOAD, ['idle', '--port', port, '--path', '/', '-c', '1000', '-d', '2', '--rate', '5000']);
        await sleep(1500);
        const spread = workers.map((pid, i) => sockets(pid) - base[i]!);
        await idle;
        // The idle connections close asynchronously: wait for their sockets to go.
        for (let i = 0; i < 300 && workers.some((pid, w) => sockets(pid) > base[w]! + 2); i++) await sleep(10);
        // Throughput.
        const cpu0 = all.map(cpuSeconds);
        const t0 = performance.now();
        const base2 = workers.map(sockets);
        const echo = run(WSLOAD, ['echo', '--port', port, '--path', '/', '-c', '100', '-w', '16', '-s', '64', '--text', '-d', String(seconds), '--warmup', '1']);
        await sleep(1000);
        const echoSpread = workers.map((pid, i) => sockets(pid) - base2[i]!);
        const out = await echo;
        const wall = (performance.now() - t0) / 1000;
        const cpu = all.reduce((sum, pid, i) => sum + cpuSeconds(pid) - cpu0[i]!, 0);
        const report = JSON.parse(out.trim().split('\n').at(-1)!) as { msgs_per_s: number; lat_us: { p99: number }; per_conn_msgs: { min: number; max: number }; client_cpu_pct: number; host_cpus: Array<{ busy: number }> };
        const entry = { msgs: report.msgs_per_s, p99: report.lat_us.p99, cpu: Math.round((cpu / wall) * 100), spread, echoSpread, perConn: [report.per_conn_msgs.min, report.per_conn_msgs.max], wsloadCpu: report.client_cpu_pct, hostBusy: hostBusyOf(report) };
        (results.get(config.name) ?? results.set(config.name, []).get(config.name)!).push(entry);
        console.error(`round ${round} ${config.name}: ${JSON.stringify(entry)}`);
      } finally {
        await stop(child);
      }
    }
  }
  console.log('\nconfiguration      | echo msgs/s (median) | p99 µs | server CPU % (all processes) | wsload CPU % | host busy % | 1,000 idle connections per worker | the 100 echo connections');
  for (const config of configs) {
    const rows = results.get(config.name)!;
    console.log(
      `${config.name.padEnd(18)} | ${String(Math.round(median(rows.map((r) => r.msgs)))).padStart(20)} | ${String(Math.round(median(rows.map((r) => r.p99)))).padStart(6)} | ${String(median(rows.map((r) => r.cpu))).padStart(28)} | ${String(median(rows.map((r) => r.wsloadCpu))).padStart(12)} | ${String(median(rows.map((r) => r.hostBusy))).padStart(11)} | ${rows.map((r) => r.spread.join('/')).join(', ')} | ${rows.map((r) => r.echoSpread.join('/')).join(', ')}`,
    );
  }
}

interface HubConfig {
  readonly name: string;
  readonly workers: number;
  readonly broker: string;
}

async function hubExperiment(): Promise<void> {
  const rounds = Number(values.rounds);
  const configs: HubConfig[] = [
    { name: '1 process, memory', workers: 1, broker: 'memory' },
    { name: '1 process, redis', workers: 1, broker: 'redis://127.0.0.1:6379' },
    { name: '2 workers, ipc', workers: 2, broker: 'memory' },
    { name: '2 workers, redis', workers: 2, broker: 'redis://127.0.0.1:6379' },
  ];
  let redisPid = 0;
  try {
    redisPid = Number(/process_id:(\d+)/.exec(execFileSync('redis-cli', ['info', 'server'], { encoding: 'utf8' }))?.[1] ?? 0);
  } catch {
    // No redis-cli: its CPU is not reported.
  }
  const prefix = `duplexbench${randomBytes(3).toString('hex')}`;
  const results = new Map<string, Array<Record<string, number>>>();
  for (let round = 1; round <= rounds; round++) {
    for (const config of configs) {
      const env = {
        ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('DUPLEX_'))),
        DUPLEX_DEMO_FEED: 'false',
        DUPLEX_APPS: 'false',
        DUPLEX_LOG_LEVEL: 'warn',
        DUPLEX_BROKER_PREFIX: prefix,
      };
      const args = [join(ROOT, 'bin', 'duplex.js'), 'serve', '--port', '0', '--workers', String(config.workers), '--broker', config.broker];
      const { child, match } = await startProcess(process.execPath, args, /^listening on http:\/\/([\d.]+:\d+)\/$/m, env);
      const servers = [child.pid!, ...childrenOf(child.pid!)];
      try {
        const cpu0 = servers.map(cpuSeconds);
        const redis0 = cpuSeconds(redisPid);
        const t0 = performance.now();
        const loadArgs = [SELF, 'hub-load', '--url', `ws://${match[1]}/ws`, '--pairs', values.pairs!, '--window', values.window!, '--seconds', values.seconds ?? '5', '--warmup', values.warmup!];
        const load = JSON.parse((await run(process.execPath, loadArgs)).trim()) as Record<string, number>;
        const wall = (performance.now() - t0) / 1000;
        const serverCpu = servers.map((pid, i) => Math.round(((cpuSeconds(pid) - cpu0[i]!) / wall) * 100));
        const entry = { ...load, serverCpuPct: serverCpu.reduce((a, b) => a + b, 0), primaryCpuPct: config.workers > 1 ? serverCpu[0]! : NaN, redisCpuPct: config.broker.startsWith('redis') ? Math.round(((cpuSeconds(redisPid) - redis0) / wall) * 100) : 0 };
        (results.get(config.name) ?? results.set(config.name, []).get(config.name)!).push(entry);
        console.error(`round ${round} ${config.name}: ${JSON.stringify(entry)}`);
      } finally {
        await stop(child);
      }
    }
  }
  try {
    const keys = execFileSync('redis-cli', ['--scan', '--pattern', `${prefix}:*`], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (let i = 0; i < keys.length; i += 500) execFileSync('redis-cli', ['del', ...keys.slice(i, i + 500)]);
  } catch {
    // Nothing to clean, or no redis-cli.
  }
  const columns = ['acksPerSecond', 'deliveriesPerSecond', 'p50', 'p99', 'serverCpuPct', 'primaryCpuPct', 'redisCpuPct', 'loadCpuPct', 'crossWorkerPairs'];
  console.log(`\n${'configuration'.padEnd(18)} | ${columns.join(' | ')}   (medians; latency in ms)`);
  for (const config of configs) {
    const rows = results.get(config.name)!;
    console.log(`${config.name.padEnd(18)} | ${columns.map((c) => String(median(rows.map((r) => r[c]!))).padStart(c.length)).join(' | ')}`);
  }
}


// ---- the brokers alone ----------------------------------------------------------------------------

/** A clock both processes share (to well under a millisecond): the wall-clock origin plus the monotonic time since. */
const now = (): number => performance.timeOrigin + performance.now();

type NodeCommand = { readonly cmd: 'latency'; readonly count: number } | { readonly cmd: 'load'; readonly window: number; readonly seconds: number } | { readonly cmd: 'report' } | { readonly cmd: 'close' };

/** One broker node as a forked process: publishes when told, records what it receives, reports. */
async function brokerNode(): Promise<void> {
  const url = values.broker!;
  const topic = values.topic!;
  const broker: Broker = url === 'ipc' ? new IpcBroker() : new (await import('../src/hub/brokers/redis.js')).RedisBroker({ url, prefix: `${topic}:` });
  const received: number[] = [];
  let waiting: (() => void) | undefined;
  await broker.start({
    id: `bench-${process.pid}`,
    onPublication(publication: Publication) {
      received.push(now() - (JSON.parse(publication.data) as { t: number }).t);
      waiting?.();
    },
    onPresence() {},
    onReconnect() {},
  });
  await broker.subscribe(topic);
  const keep = { size: 100, ttl: 60_000 };
  const answer = (message: object): void => void process.send!(message);
  process.on('message', (message: { cmd?: string }) => {
    const command = message as NodeCommand;
    void (async () => {
      switch (command.cmd) {
        case 'latency': {
          // One at a time: the next publish once the previous one was acknowledged.
          for (let i = 0; i < command.count; i++) await broker.publish(topic, `{"t":${now()}}`, keep);
          answer({ done: true });
          break;
        }
        case 'load': {
          let acks = 0;
          let running = true;
          const one = (): void => {
            if (!running) return;
            void broker.publish(topic, `{"t":${now()}}`, keep).then(() => {
              acks++;
              one();
            });
          };
          for (let w = 0; w < command.window; w++) one();
          await sleep(command.seconds * 1000);
          running = false;
          answer({ done: true, acks });
          break;
        }
        case 'report':
          answer({ received: received.splice(0) });
          break;
        case 'close':
          await broker.close();
          process.exit(0);
      }
    })();
  });
  answer({ ready: true });
}

/** Ask a broker node something and wait for its answer. */
function ask<T>(child: ChildProcess, command: NodeCommand): Promise<T> {
  return new Promise((resolve) => {
    const listener = (message: Record<string, unknown>): void => {
      if (!('done' in message) && !('received' in message)) return;
      child.off('message', listener);
      resolve(message as T);
    };
    child.on('message', listener);
    child.send(command);
  });
}

async function brokerExperiment(): Promise<void> {
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds ?? 3);
  const count = Number(values.count);
  const window = Number(values['in-flight']);
  const pct = (sorted: number[], p: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! * 1000) / 1000;
  const results = new Map<string, Array<Record<string, number>>>();
  for (let round = 1; round <= rounds; round++) {
    for (const broker of ['ipc', 'redis://127.0.0.1:6379']) {
      const primary = broker === 'ipc' ? new IpcBrokerPrimary() : undefined;
      const topic = `duplexbench${randomBytes(3).toString('hex')}`;
      const nodes: ChildProcess[] = [];
      for (let i = 0; i < 2; i++) {
        const child = spawn(process.execPath, [SELF, 'broker-node', '--broker', broker, '--topic', topic], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        primary?.attach(child as unknown as IpcPort);
        await new Promise<void>((resolve) => {
          const listener = (message: Record<string, unknown>): void => {
            if (message.ready !== true) return;
            child.off('message', listener);
            resolve();
          };
          child.on('message', listener);
        });
        nodes.push(child);
      }
      const [publisher, subscriber] = nodes as [ChildProcess, ChildProcess];
      const cpuPids = [process.pid, ...nodes.map((n) => n.pid!)];
      await ask(publisher, { cmd: 'latency', count });
      await sleep(100);
      const unloaded = (await ask<{ received: number[] }>(subscriber, { cmd: 'report' })).received.sort((a, b) => a - b);
      await ask(publisher, { cmd: 'report' }); // its own copies
      const cpu0 = cpuPids.map(cpuSeconds);
      const t0 = performance.now();
      const { acks } = await ask<{ acks: number }>(publisher, { cmd: 'load', window, seconds });
      await sleep(200);
      const wall = (performance.now() - t0) / 1000;
      const cpu = cpuPids.map((pid, i) => Math.round(((cpuSeconds(pid) - cpu0[i]!) / wall) * 100));
      const loaded = (await ask<{ received: number[] }>(subscriber, { cmd: 'report' })).received.sort((a, b) => a - b);
      for (const node of nodes) node.send({ cmd: 'close' });
      await Promise.all(nodes.map((node) => new Promise((resolve) => node.once('exit', resolve))));
      await primary?.close();
      if (broker !== 'ipc') {
        try {
          const keys = execFileSync('redis-cli', ['--scan', '--pattern', `${topic}:*`], { encoding: 'utf8' }).split('\n').filter(Boolean);
          if (keys.length > 0) execFileSync('redis-cli', ['del', ...keys]);
        } catch {
          // No redis-cli: the keys expire with the broker's metaTtl.
        }
      }
      const name = broker === 'ipc' ? 'ipc' : 'redis';
      const entry = {
        unloadedP50: pct(unloaded, 0.5),
        unloadedP99: pct(unloaded, 0.99),
        publishesPerSecond: Math.round(acks / seconds),
        loadedP50: pct(loaded, 0.5),
        loadedP99: pct(loaded, 0.99),
        primaryCpuPct: broker === 'ipc' ? cpu[0]! : NaN,
        publisherCpuPct: cpu[1]!,
        subscriberCpuPct: cpu[2]!,
      };
      (results.get(name) ?? results.set(name, []).get(name)!).push(entry);
      console.error(`round ${round} ${name}: ${JSON.stringify(entry)}`);
    }
  }
  const columns = ['unloadedP50', 'unloadedP99', 'publishesPerSecond', 'loadedP50', 'loadedP99', 'primaryCpuPct', 'publisherCpuPct', 'subscriberCpuPct'];
  console.log(`\nbroker | ${columns.join(' | ')}   (medians; latency in ms, publish → delivery in the other process; window ${window})`);
  for (const [name, rows] of results) console.log(`${name.padEnd(6)} | ${columns.map((c) => String(median(rows.map((r) => r[c]!))).padStart(c.length)).join(' | ')}`);
}

// ---- fan-out across workers -----------------------------------------------------------------------

/** What one node of the broadcast server does: publish what it receives, write each publication to its own connections. */
async function broadcastServer(): Promise<void> {
  const workers = Number(values.workers);
  const url = values.broker ?? 'memory';
  const topic = values.topic ?? 'broadcast';
  const none = { size: 0, ttl: 0 };
  const start = async (inWorker: boolean): Promise<{ port: number; close(): Promise<void> }> => {
    const broker: Broker =
      url === 'memory' ? (inWorker ? new IpcBroker() : new MemoryBroker()) : new (await import('../src/hub/brokers/redis.js')).RedisBroker({ url, prefix: `${topic}:` });
    const server = new WebSocketServer({
      textAsBuffer: true,
      pingInterval: 0,
      maxBufferedAmount: 64 << 20,
      handlers: {
        message(_ws: WebSocket<undefined>, data) {
          // latin1: wsload's payloads are ASCII, and a byte per character keeps them as they are.
          void broker.publish(topic, (data as Buffer).toString('latin1'), none);
        },
      },
    });
    await broker.start({
      id: `broadcast-${process.pid}`,
      onPublication(publication) {
        // As the hub does: frame once, write the same bytes to every local connection, one write per loop pass.
        corkLoopPass();
        const prepared = prepareMessage(Buffer.from(publication.data, 'latin1'), false);
        for (const client of server.clients) client.sendPrepared(prepared);
      },
      onPresence() {},
      onReconnect() {},
    });
    await broker.subscribe(topic);
    const { port } = await server.listen(0, '127.0.0.1');
    return {
      port,
      close: async () => {
        await server.close();
        await broker.close();
      },
    };
  };
  if (workers === 0) {
    const { port } = await start(false);
    process.stdout.write(`ready ${port} ${process.pid}\n`);
    return;
  }
  const result = await runWorkers({
    workers,
    ipcBroker: url === 'memory' ? {} : false,
    async start() {
      const server = await start(true);
      return { close: server.close, info: { port: server.port } };
    },
  });
  if (result.role === 'primary') {
    const port = (result.workers[0]!.info as { port: number }).port;
    process.stdout.write(`ready ${port} ${result.workers.map((w) => w.pid).join(',')}\n`);
  }
}

async function broadcastExperiment(): Promise<void> {
  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds ?? 4);
  const configs = [
    { name: '1 process, memory', workers: 0, broker: 'memory' },
    { name: '2 workers, ipc', workers: 2, broker: 'memory' },
    { name: '2 workers, redis', workers: 2, broker: 'redis://127.0.0.1:6379' },
  ];
  const results = new Map<string, Array<Record<string, number | string>>>();
  for (let round = 1; round <= rounds; round++) {
    for (const config of configs) {
      const topic = `duplexbench${randomBytes(3).toString('hex')}`;
      const args = [SELF, 'broadcast-server', '--workers', String(config.workers), '--broker', config.broker, '--topic', topic];
      const { child, match } = await startProcess(process.execPath, args, /^ready (\d+) ([\d,]+)$/m);
      const workers = match[2]!.split(',').map(Number);
      const all = config.workers === 0 ? [child.pid!] : [child.pid!, ...workers];
      try {
        const cpu0 = all.map(cpuSeconds);
        const t0 = performance.now();
        const out = await run(WSLOAD, ['broadcast', '--port', match[1]!, '--path', '/broadcast', '-c', values.receivers!, '-w', values['in-flight']!, '-s', '64', '-d', String(seconds), '--warmup', '1']);
        const wall = (performance.now() - t0) / 1000;
        const cpu = all.map((pid, i) => Math.round(((cpuSeconds(pid) - cpu0[i]!) / wall) * 100));
        const report = JSON.parse(out.trim().split('\n').at(-1)!) as { deliveries_per_s: number; lat_us: { p50: number; p99: number }; lost_deliveries: number; broadcasts_timed_out: number; client_cpu_pct: number; host_cpus: Array<{ busy: number }> };
        const entry = {
          deliveriesPerSecond: Math.round(report.deliveries_per_s),
          p50us: Math.round(report.lat_us.p50),
          p99us: Math.round(report.lat_us.p99),
          lost: report.lost_deliveries + report.broadcasts_timed_out,
          serverCpuPct: cpu.reduce((a, b) => a + b, 0),
          primaryCpuPct: config.workers === 0 ? NaN : cpu[0]!,
          wsloadCpuPct: report.client_cpu_pct,
          hostBusyPct: hostBusyOf(report),
        };
        (results.get(config.name) ?? results.set(config.name, []).get(config.name)!).push(entry);
        console.error(`round ${round} ${config.name}: ${JSON.stringify(entry)}`);
      } finally {
        await stop(child);
        if (config.broker !== 'memory') {
          try {
            const keys = execFileSync('redis-cli', ['--scan', '--pattern', `${topic}:*`], { encoding: 'utf8' }).split('\n').filter(Boolean);
            if (keys.length > 0) execFileSync('redis-cli', ['del', ...keys]);
          } catch {
            // No redis-cli: the keys expire with the broker's metaTtl.
          }
        }
      }
    }
  }
  const columns = ['deliveriesPerSecond', 'p50us', 'p99us', 'lost', 'serverCpuPct', 'primaryCpuPct', 'wsloadCpuPct', 'hostBusyPct'];
  console.log(`\n${'configuration'.padEnd(18)} | ${columns.join(' | ')}   (medians; ${values.receivers} receivers, ${values['in-flight']} broadcasts in flight, 64 B)`);
  for (const config of configs) {
    const rows = results.get(config.name)!;
    console.log(`${config.name.padEnd(18)} | ${columns.map((c) => String(median(rows.map((r) => Number(r[c]))))).map((v, i) => v.padStart(columns[i]!.length)).join(' | ')}`);
  }
}

switch (positionals[0] ?? 'echo') {
  case 'echo':
    await echoExperiment();
    break;
  case 'hub':
    await hubExperiment();
    break;
  case 'echo-server':
    await echoServer();
    break;
  case 'hub-load':
    await hubLoad();
    break;
  case 'broker':
    await brokerExperiment();
    break;
  case 'broker-node':
    await brokerNode();
    break;
  case 'broadcast':
    await broadcastExperiment();
    break;
  case 'broadcast-server':
    await broadcastServer();
    break;
  default:
    throw new TypeError(`unknown mode ${positionals[0]}: echo, hub, broker, broadcast, echo-server, hub-load, broker-node or broadcast-server`);
}
