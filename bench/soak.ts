// Soak test: a duplex hub server holding many WebSocket connections for a long time, with
// periodic traffic and churn, and its memory, file descriptors and event-loop delay sampled
// over time. The figures must be flat after warm-up: that is the verdict printed at the end.
//
//   npm run soak                                     # 10,000 connections held 10 minutes
//   npm run soak -- --connections 1000 --minutes 1   # smoke run
//   npm run soak -- --json --out /tmp/soak.json --svg docs/soak.svg
//
// Three processes, loopback only (127.0.0.1):
//   - this one, the orchestrator: starts the other two, asks both for a sample every
//     `--sample-seconds`, prints one table row per sample, stops everything after `--minutes`
//     of holding the target count (plus the ramp), and prints the verdict;
//   - the server under test (`--role server`, pinned to CPU 0 with `taskset` when available):
//     a `Hub` (in-memory broker, anonymous connections, presence and history on) mounted on a
//     `WebSocketServer` with its default settings (keepalive pings every 25 s included). Each
//     sample it reports its RSS, heapUsed/heapTotal/external (after a forced full GC, so the
//     heap figure is the live heap; `--no-gc` reports them as they are), its open file
//     descriptors (entries of /proc/self/fd), event-loop delay p50/p99/max since the previous
//     sample (`perf_hooks.monitorEventLoopDelay`, reset each sample, the 10 ms sampling interval
//     subtracted; the forced GC's own pause is measured and reported separately as `gc ms`),
//     its connection count and traffic counters;
//   - the load (`--role load`, pinned to CPU 1): raw `net` sockets with the engine's client
//     handshake (`src/cli/bench/handshake.ts`), opened at a bounded rate (`--open-rate` per
//     second, at most `--open-concurrency` handshakes in flight). Each connection subscribes
//     to one of `--topics` topics, publishes a small JSON message every `--publish-min` to
//     `--publish-max` seconds (uniformly random) and receives the topic's fan-out and presence
//     events; it answers the server's pings. Every `--churn-seconds`, `--churn-clean` % of the
//     connections close cleanly (close frame 1000, wait for the server's) and `--churn-abrupt` %
//     are destroyed (no close frame), and replacements are opened at once, so the count stays
//     about constant.
//
// Verdict: over the samples taken while the target count was held, the mean of the 2nd quarter
// (after warm-up) is compared with the mean of the last quarter for RSS, heap and fds; a figure
// is flat when it grew by no more than its tolerance (10 % or an absolute floor, whichever is
// larger). The slope over the second half (per minute) is reported too. Exit status 0 when
// flat, 1 when something grew, 2 when the run itself failed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getHeapSpaceStatistics } from 'node:v8';
import { Opcode, WebSocketServer } from '../src/index.js';
import { MaskKeySource, encodeFrame } from '../src/protocol/index.js';
import { Hub } from '../src/hub/index.js';
import { openWebSocket, parseTarget } from '../src/cli/bench/handshake.js';

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    port: { type: 'string', default: '0' },
    connections: { type: 'string', default: '10000' },
    minutes: { type: 'string', default: '10' },
    'sample-seconds': { type: 'string', default: '10' },
    topics: { type: 'string', default: '100' },
    'publish-min': { type: 'string', default: '30' },
    'publish-max': { type: 'string', default: '90' },
    'churn-seconds': { type: 'string', default: '10' },
    'churn-clean': { type: 'string', default: '2' },
    'churn-abrupt': { type: 'string', default: '1' },
    'open-rate': { type: 'string', default: '500' },
    'open-concurrency': { type: 'string', default: '100' },
    'no-gc': { type: 'boolean', default: false },
    'no-presence': { type: 'boolean', default: false },
    'no-pin': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    out: { type: 'string' },
    svg: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

function num(name: keyof typeof values, min: number): number {
  const raw = values[name];
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) {
    process.stderr.write(`--${name} must be a number ≥ ${min} (got ${String(raw)})\n`);
    process.exit(2);
  }
  return n;
}

const MiB = 1024 * 1024;

// ---- messages between the processes --------------------------------------------------------------

/** What the server reports each sample. */
interface ServerSample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** heapUsed before the forced GC (as the process saw it). */
  heapUsedBeforeGc: number;
  /** Committed size of V8's young generation (new space), bytes: it grows to its maximum under load. */
  newSpace: number;
  /** Committed size of the old generation (old + code + map + large-object spaces), bytes. */
  oldSpaces: number;
  /** Duration of the forced full GC, ms (0 with --no-gc). */
  gcMs: number;
  fds: number;
  eldP50: number;
  eldP99: number;
  eldMax: number;
  connections: number;
  connectionsTotal: number;
  hubConnections: number;
  topics: number;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  dropped: number;
  deliveries: number;
  publications: number;
  gaps: number;
  invalidMessages: number;
  errors: number;
  closes: Record<number, number>;
  rejections: Record<number, number>;
  cpuUser: number;
  cpuSystem: number;
}

/** What the load reports each sample. */
interface LoadSample {
  open: number;
  handshaking: number;
  opened: number;
  openFailed: number;
  closedClean: number;
  closedAbrupt: number;
  /** Closed by the server or the network, not by us. */
  closedUnexpected: number;
  published: number;
  received: number;
  replies: number;
  presence: number;
  errors: number;
  gaps: number;
  pings: number;
  firstErrors: string[];
  rss: number;
  eldP99: number;
}

type ToChild = { type: 'sample' } | { type: 'stop' };
type FromServer = { type: 'listening'; port: number } | { type: 'sample'; sample: ServerSample } | { type: 'stopped' };
type FromLoad = { type: 'ready' } | { type: 'sample'; sample: LoadSample } | { type: 'stopped' };

function send(message: FromServer | FromLoad): void {
  process.send!(message);
}

/** Sampling interval of the event-loop delay histogram, ms. */
const ELD_RESOLUTION = 10;

/**
 * A histogram value (ns) as a delay in ms. The histogram records the time between two of its
 * timer's ticks, the sampling interval included (an idle loop reads ~10 ms): subtract it.
 */
function loopDelay(ns: number): number {
  return Math.max(0, ns / 1e6 - ELD_RESOLUTION);
}

function fdCount(): number {
  // The directory listing itself holds one descriptor while it runs.
  return readdirSync('/proc/self/fd').length - 1;
}

// ---- role: server under test -------------------------------------------------------------------

async function serverRole(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const forceGc = !values['no-gc'] && gc !== undefined;
  const hub = new Hub({ anonymous: true, presence: !values['no-presence'] });
  await hub.start();
  const server = new WebSocketServer<unknown>({ handlers: hub.handlers });
  const address = await server.listen(0, '127.0.0.1');
  const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION });
  eld.enable();
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: ToChild) => {
    if (message.type === 'sample') {
      const eldP50 = loopDelay(eld.percentile(50));
      const eldP99 = loopDelay(eld.percentile(99));
      const eldMax = loopDelay(eld.max);
      const before = process.memoryUsage();
      let gcMs = 0;
      if (forceGc) {
        const start = performance.now();
        gc();
        gcMs = performance.now() - start;
      }
      const memory = forceGc ? process.memoryUsage() : before;
      let newSpace = 0;
      let oldSpaces = 0;
      for (const space of getHeapSpaceStatistics()) {
        if (space.space_name === 'new_space') newSpace += space.space_size;
        else oldSpaces += space.space_size;
      }
      const stats = server.stats();
      const hubStats = hub.stats();
      const cpu = process.cpuUsage();
      eld.reset();
      // The forced GC blocked the loop; the delay it caused is measured by the histogram's next
      // tick. Reset once more after it, so the ELD figures are the server's own (gcMs is reported).
      if (forceGc) setTimeout(() => eld.reset(), 25).unref();
      send({
        type: 'sample',
        sample: {
          rss: memory.rss,
          heapUsed: memory.heapUsed,
          heapTotal: memory.heapTotal,
          external: memory.external,
          arrayBuffers: memory.arrayBuffers,
          heapUsedBeforeGc: before.heapUsed,
          newSpace,
          oldSpaces,
          gcMs,
          fds: fdCount(),
          eldP50,
          eldP99,
          eldMax,
          connections: stats.connections,
          connectionsTotal: stats.connectionsTotal,
          hubConnections: hubStats.connections,
          topics: hubStats.topics,
          messagesIn: stats.messagesIn,
          messagesOut: stats.messagesOut,
          bytesIn: stats.bytesIn,
          bytesOut: stats.bytesOut,
          dropped: stats.dropped,
          deliveries: hubStats.deliveries,
          publications: hubStats.publications,
          gaps: hubStats.gaps,
          invalidMessages: hubStats.invalidMessages,
          errors: stats.errors,
          closes: stats.closes,
          rejections: stats.rejections,
          cpuUser: cpu.user / 1e6,
          cpuSystem: cpu.system / 1e6,
        },
      });
    } else if (message.type === 'stop') {
      void (async () => {
        await hub.close();
        await server.close(1001, 'soak over', 2000);
        send({ type: 'stopped' });
        process.exit(0);
      })();
    }
  });
  send({ type: 'listening', port: address.port });
}

// ---- role: load -----------------------------------------------------------------------------------

const maskKeys = new MaskKeySource();

/** A masked client frame (RFC 6455 §5.3: every client frame is masked), built by the engine. */
function clientFrame(opcode: number, payload: Buffer): Uint8Array {
  return encodeFrame(opcode, payload, { maskKey: maskKeys.next() });
}

const OP_TEXT = Opcode.Text;
const OP_BINARY = Opcode.Binary;
const OP_CLOSE = Opcode.Close;
const OP_PING = Opcode.Ping;
const OP_PONG = Opcode.Pong;

/** The byte after `{"type":"` in a hub message: enough to tell the kinds apart. */
const TYPE_OFFSET = 9;

interface Client {
  index: number;
  socket: Socket;
  topic: string;
  nextPublish: number;
  seq: number;
  /** 'open' → ('closing' | 'gone'). */
  state: 'open' | 'closing' | 'gone';
  rest: Buffer | undefined;
  closeTimer: NodeJS.Timeout | undefined;
}

async function loadRole(): Promise<void> {
  const port = num('port', 1);
  const target = num('connections', 1);
  const topics = num('topics', 1);
  const publishMin = num('publish-min', 0.1) * 1000;
  const publishMax = Math.max(publishMin, num('publish-max', 0.1) * 1000);
  const churnEvery = num('churn-seconds', 0.1) * 1000;
  const churnClean = num('churn-clean', 0) / 100;
  const churnAbrupt = num('churn-abrupt', 0) / 100;
  const openRate = num('open-rate', 1);
  const openConcurrency = num('open-concurrency', 1);
  const url = parseTarget(`ws://127.0.0.1:${port}/hub`);
  const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION });
  eld.enable();

  const clients = new Set<Client>();
  const counts = {
    opened: 0,
    openFailed: 0,
    closedClean: 0,
    closedAbrupt: 0,
    closedUnexpected: 0,
    published: 0,
    received: 0,
    replies: 0,
    presence: 0,
    errors: 0,
    gaps: 0,
    pings: 0,
  };
  const firstErrors: string[] = [];
  let handshaking = 0;
  let nextIndex = 0;
  let stopping = false;
  let ready = false;
  const closeFrame = (): Uint8Array => {
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(1000, 0);
    return clientFrame(OP_CLOSE, payload);
  };
  const randomPublishDelay = (): number => publishMin + Math.random() * (publishMax - publishMin);

  function gone(client: Client): void {
    if (client.state === 'gone') return;
    if (client.state === 'open' && !stopping) counts.closedUnexpected++;
    client.state = 'gone';
    clearTimeout(client.closeTimer);
    clients.delete(client);
  }

  function onFrame(client: Client, opcode: number, payload: Buffer): void {
    switch (opcode) {
      case OP_TEXT:
      case OP_BINARY: {
        const kind = payload[TYPE_OFFSET];
        if (kind === 0x6d /* m: message */) counts.received++;
        else if (kind === 0x72 /* r: reply */) counts.replies++;
        else if (kind === 0x6a /* j: join */ || kind === 0x6c /* l: leave */) counts.presence++;
        else if (kind === 0x67 /* g: gap */) counts.gaps++;
        else if (kind === 0x65 /* e: error */) {
          counts.errors++;
          if (firstErrors.length < 5) firstErrors.push(payload.toString('utf8', 0, 200));
        }
        break;
      }
      case OP_PING:
        counts.pings++;
        if (client.state === 'open') client.socket.write(clientFrame(OP_PONG, payload));
        break;
      case OP_CLOSE:
        if (client.state === 'open') {
          // The server closed: answer (RFC 6455 §5.5.1) and count it as unexpected.
          client.socket.write(clientFrame(OP_CLOSE, payload.subarray(0, 2)));
          gone(client);
          if (firstErrors.length < 5) firstErrors.push(`server closed with ${payload.length >= 2 ? payload.readUInt16BE(0) : 1005} ${payload.toString('utf8', 2)}`);
        }
        client.socket.end();
        break;
      default:
        break;
    }
  }

  /** Parse unmasked server frames; a partial frame waits in `client.rest`. */
  function onData(client: Client, chunk: Buffer): void {
    let buffer = client.rest ? Buffer.concat([client.rest, chunk]) : chunk;
    client.rest = undefined;
    let offset = 0;
    while (buffer.length - offset >= 2) {
      const opcode = buffer[offset]! & 0x0f;
      const len7 = buffer[offset + 1]! & 0x7f;
      let headerLength = 2;
      let length = len7;
      if (len7 === 126) {
        if (buffer.length - offset < 4) break;
        length = buffer.readUInt16BE(offset + 2);
        headerLength = 4;
      } else if (len7 === 127) {
        if (buffer.length - offset < 10) break;
        length = Number(buffer.readBigUInt64BE(offset + 2));
        headerLength = 10;
      }
      if (buffer.length - offset < headerLength + length) break;
      onFrame(client, opcode, buffer.subarray(offset + headerLength, offset + headerLength + length));
      offset += headerLength + length;
    }
    if (offset < buffer.length) {
      buffer = buffer.subarray(offset);
      // Copy a small remainder so the big chunk it came from can be freed.
      client.rest = buffer.length < 4096 ? Buffer.from(buffer) : buffer;
    }
  }

  async function openOne(): Promise<void> {
    handshaking++;
    try {
      const { socket, head } = await openWebSocket(url, 10_000);
      handshaking--;
      if (stopping) {
        socket.destroy();
        return;
      }
      const index = nextIndex++;
      const client: Client = {
        index,
        socket,
        topic: `t${index % topics}`,
        nextPublish: Date.now() + randomPublishDelay(),
        seq: 0,
        state: 'open',
        rest: undefined,
        closeTimer: undefined,
      };
      clients.add(client);
      counts.opened++;
      socket.on('data', (chunk: Buffer) => onData(client, chunk));
      socket.on('error', () => gone(client));
      socket.on('close', () => gone(client));
      socket.write(clientFrame(OP_TEXT, Buffer.from(JSON.stringify({ type: 'subscribe', id: 0, topic: client.topic }))));
      if (head.length > 0) onData(client, head);
    } catch (error) {
      handshaking--;
      counts.openFailed++;
      if (firstErrors.length < 5) firstErrors.push(`open failed: ${(error as Error).message}`);
    }
  }

  // Keep `target` connections open: at most `openRate` handshakes started per second and
  // `openConcurrency` in flight.
  const PUMP_MS = 50;
  let budget = 0;
  const pump = setInterval(() => {
    if (stopping) return;
    budget = Math.min(budget + (openRate * PUMP_MS) / 1000, openRate);
    while (budget >= 1 && handshaking < openConcurrency && clients.size + handshaking < target) {
      budget--;
      void openOne();
    }
    if (!ready && clients.size >= target) {
      ready = true;
      send({ type: 'ready' });
    }
  }, PUMP_MS);

  // Traffic: every 250 ms, the connections whose time has come publish one message.
  const traffic = setInterval(() => {
    if (stopping) return;
    const now = Date.now();
    for (const client of clients) {
      if (client.state !== 'open' || client.nextPublish > now) continue;
      client.nextPublish = now + randomPublishDelay();
      client.seq++;
      const text = `{"type":"publish","id":${client.seq},"topic":"${client.topic}","data":{"from":${client.index},"seq":${client.seq},"text":"soak soak soak soak"}}`;
      client.socket.write(clientFrame(OP_TEXT, Buffer.from(text)));
      counts.published++;
    }
  }, 250);

  // Churn: close some connections cleanly and some abruptly; the pump replaces them.
  const churn = setInterval(() => {
    if (stopping || !ready) return;
    const open = [...clients].filter((c) => c.state === 'open');
    const clean = Math.round(open.length * churnClean);
    const abrupt = Math.round(open.length * churnAbrupt);
    // A partial Fisher–Yates shuffle picks clean + abrupt distinct connections.
    for (let i = 0; i < clean + abrupt && i < open.length; i++) {
      const j = i + Math.floor(Math.random() * (open.length - i));
      [open[i], open[j]] = [open[j]!, open[i]!];
      const client = open[i]!;
      if (i < clean) {
        client.state = 'closing';
        counts.closedClean++;
        client.socket.write(closeFrame());
        // The server answers with its close frame and ends the TCP connection; don't wait forever.
        client.closeTimer = setTimeout(() => client.socket.destroy(), 5000);
        // Leaves the open set now: the replacement is opened without waiting for the close.
        clients.delete(client);
      } else {
        counts.closedAbrupt++;
        client.state = 'gone';
        clients.delete(client);
        client.socket.destroy();
      }
    }
  }, churnEvery);

  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: ToChild) => {
    if (message.type === 'sample') {
      const sample: LoadSample = {
        open: clients.size,
        handshaking,
        ...counts,
        firstErrors: firstErrors.splice(0),
        rss: process.memoryUsage().rss,
        eldP99: loopDelay(eld.percentile(99)),
      };
      eld.reset();
      send({ type: 'sample', sample });
    } else if (message.type === 'stop') {
      stopping = true;
      clearInterval(pump);
      clearInterval(traffic);
      clearInterval(churn);
      for (const client of clients) client.socket.destroy();
      clients.clear();
      send({ type: 'stopped' });
      setTimeout(() => process.exit(0), 200);
    }
  });
}

// ---- role: orchestrator ---------------------------------------------------------------------------

interface Row {
  /** Seconds since the load started. */
  t: number;
  /** Seconds since the target count was first reached (negative during the ramp). */
  held: number;
  server: ServerSample;
  load: LoadSample;
  /** Messages per second since the previous row, as the server counts them. */
  inRate: number;
  outRate: number;
}

interface Growth {
  metric: string;
  unit: string;
  q2: number;
  q4: number;
  delta: number;
  deltaPct: number;
  /** Least-squares slope over the second half of the held samples, per minute. */
  slopePerMin: number;
  tolerance: number;
  flat: boolean;
}

function mean(xs: number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function slope(points: Array<[number, number]>): number {
  if (points.length < 2) return 0;
  const mx = mean(points.map((p) => p[0]));
  const my = mean(points.map((p) => p[1]));
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) * (x - mx);
  }
  return den === 0 ? 0 : num / den;
}

function growth(held: Row[], metric: string, unit: string, pick: (r: Row) => number, relTol: number, absTol: number): Growth {
  const n = held.length;
  const q2 = mean(held.slice(Math.floor(n / 4), Math.floor(n / 2)).map(pick));
  const q4 = mean(held.slice(Math.floor((3 * n) / 4)).map(pick));
  const delta = q4 - q2;
  const tolerance = Math.max(relTol * q2, absTol);
  const half = held.slice(Math.floor(n / 2)).map((r): [number, number] => [r.held / 60, pick(r)]);
  return { metric, unit, q2, q4, delta, deltaPct: (delta / q2) * 100, slopePerMin: slope(half), tolerance, flat: delta <= tolerance };
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : ' '.repeat(width - text.length) + text;
}

const COLUMNS = ['t min', 'phase', 'conns', 'RSS MiB', 'heap MiB', 'heapTot', 'ext MiB', 'fds', 'ELD p50', 'ELD p99', 'ELD max', 'gc ms', 'in/s', 'out/s'];
const WIDTHS = [6, 5, 6, 7, 8, 7, 7, 6, 7, 7, 7, 6, 6, 7];

function tableHeader(): string {
  const head = `| ${COLUMNS.map((c, i) => pad(c, WIDTHS[i]!)).join(' | ')} |`;
  const rule = `|${WIDTHS.map((w) => '-'.repeat(w + 1) + ':').join('|')}|`;
  return `${head}\n${rule}`;
}

function tableRow(r: Row): string {
  const s = r.server;
  const cells = [
    (r.t / 60).toFixed(2),
    r.held < 0 ? 'ramp' : 'held',
    String(s.connections),
    (s.rss / MiB).toFixed(1),
    (s.heapUsed / MiB).toFixed(1),
    (s.heapTotal / MiB).toFixed(1),
    (s.external / MiB).toFixed(1),
    String(s.fds),
    s.eldP50.toFixed(1),
    s.eldP99.toFixed(1),
    s.eldMax.toFixed(1),
    s.gcMs.toFixed(0),
    r.inRate.toFixed(0),
    r.outRate.toFixed(0),
  ];
  return `| ${cells.map((c, i) => pad(c, WIDTHS[i]!)).join(' | ')} |`;
}

/** A hand-written SVG: RSS and heap, fds and connections, ELD p99 over time. */
function svgPlot(rows: Row[], heldStart: number, title: string): string {
  const W = 900;
  const panelH = 170;
  const left = 70;
  const right = 20;
  const top = 40;
  const gap = 45;
  const plotW = W - left - right;
  const tMax = Math.max(...rows.map((r) => r.t), 1);
  const x = (t: number): number => left + (t / tMax) * plotW;
  const panels: Array<{ label: string; series: Array<{ name: string; color: string; pick: (r: Row) => number }> }> = [
    {
      label: 'MiB',
      series: [
        { name: 'RSS', color: '#d62728', pick: (r) => r.server.rss / MiB },
        { name: 'heap used (after GC)', color: '#1f77b4', pick: (r) => r.server.heapUsed / MiB },
        { name: 'external', color: '#9467bd', pick: (r) => r.server.external / MiB },
      ],
    },
    {
      label: 'count',
      series: [
        { name: 'open fds', color: '#2ca02c', pick: (r) => r.server.fds },
        { name: 'connections', color: '#ff7f0e', pick: (r) => r.server.connections },
      ],
    },
    {
      label: 'ms',
      series: [
        { name: 'event-loop delay p99', color: '#8c564b', pick: (r) => r.server.eldP99 },
        { name: 'p50', color: '#7f7f7f', pick: (r) => r.server.eldP50 },
      ],
    },
  ];
  const out: string[] = [];
  const H = top + panels.length * (panelH + gap) + 10;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${title}</text>`);
  panels.forEach((panel, p) => {
    const y0 = top + p * (panelH + gap);
    const values = panel.series.flatMap((s) => rows.map(s.pick));
    const vMax = Math.max(...values, 1) * 1.1;
    const y = (v: number): number => y0 + panelH - (v / vMax) * panelH;
    out.push(`<rect x="${left}" y="${y0}" width="${plotW}" height="${panelH}" fill="none" stroke="#999"/>`);
    // Ramp shaded; quarter boundaries of the held phase dashed.
    if (heldStart > 0) out.push(`<rect x="${left}" y="${y0}" width="${x(heldStart) - left}" height="${panelH}" fill="#eee"/>`);
    const heldEnd = tMax;
    for (let q = 1; q < 4; q++) {
      const tq = heldStart + ((heldEnd - heldStart) * q) / 4;
      out.push(`<line x1="${x(tq).toFixed(1)}" y1="${y0}" x2="${x(tq).toFixed(1)}" y2="${y0 + panelH}" stroke="#bbb" stroke-dasharray="4 3"/>`);
    }
    for (let i = 0; i <= 4; i++) {
      const v = (vMax * i) / 4;
      out.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v >= 100 ? v.toFixed(0) : v.toFixed(1)}</text>`);
      out.push(`<line x1="${left - 3}" y1="${y(v).toFixed(1)}" x2="${left}" y2="${y(v).toFixed(1)}" stroke="#999"/>`);
    }
    out.push(`<text x="16" y="${y0 + panelH / 2}" transform="rotate(-90 16 ${y0 + panelH / 2})" text-anchor="middle">${panel.label}</text>`);
    const stepMin = tMax > 1200 ? 5 : tMax > 180 ? 1 : 0.25;
    for (let m = 0; m * 60 <= tMax; m += stepMin) {
      out.push(`<text x="${x(m * 60).toFixed(1)}" y="${y0 + panelH + 14}" text-anchor="middle">${String(m)}</text>`);
    }
    panel.series.forEach((s, i) => {
      const points = rows.map((r) => `${x(r.t).toFixed(1)},${y(s.pick(r)).toFixed(1)}`).join(' ');
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.8" points="${points}"/>`);
      out.push(`<rect x="${left + 10 + i * 190}" y="${y0 + 8}" width="12" height="3" fill="${s.color}"/>`);
      out.push(`<text x="${left + 26 + i * 190}" y="${y0 + 13}">${s.name}</text>`);
    });
  });
  out.push(`<text x="${left + plotW / 2}" y="${H - 6}" text-anchor="middle">minutes since the first connection (grey: ramp; dashed: quarters of the held phase)</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function ulimitN(): number {
  const res = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const text = res.stdout.trim();
  return text === 'unlimited' ? Infinity : Number(text);
}

async function main(): Promise<void> {
  if (values.help) {
    process.stdout.write(readHelp());
    return;
  }
  const connections = num('connections', 1);
  const minutes = num('minutes', 0.05);
  const sampleSeconds = num('sample-seconds', 1);
  const openRate = num('open-rate', 1);
  const json = values.json;
  const log = (line: string): void => {
    (json ? process.stderr : process.stdout).write(line + '\n');
  };

  // Each side holds one descriptor per connection (plus churned sockets in flight), in its own process.
  const limit = ulimitN();
  if (!(limit >= connections + 1024)) {
    process.stderr.write(`ulimit -n is ${limit}: each process needs ${connections} descriptors and some spare; raise it (ulimit -n ${connections + 4096}) or lower --connections\n`);
    process.exit(2);
  }
  const pin = !values['no-pin'] && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  const script = fileURLToPath(import.meta.url);
  // The children get the workload options; not the orchestrator's own (output, pinning).
  const passOn: string[] = [];
  const own = new Set(['--json', '--no-pin', '--out', '--svg']);
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]!.split('=')[0]!;
    if (!own.has(name)) passOn.push(argv[i]!);
    else if ((name === '--out' || name === '--svg') && !argv[i]!.includes('=')) i++;
  }
  const children: ChildProcess[] = [];
  const start = (role: string, cpu: number, nodeFlags: string[], extra: string[]): ChildProcess => {
    const argv = [process.execPath, ...nodeFlags, script, '--role', role, ...passOn, ...extra];
    // `taskset` execs node with the IPC descriptor and NODE_CHANNEL_FD inherited.
    const child = pin ? spawn('taskset', ['-c', String(cpu), ...argv], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }) : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    return child;
  };
  const killAll = (): void => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('exit', killAll);
  process.on('SIGINT', () => {
    killAll();
    process.exit(130);
  });

  // Whatever happens, the run ends: ramp allowance + held time + 2 minutes.
  // A shared machine can make the ramp many times slower than `connections / openRate`.
  const rampAllowance = Math.max(120, (connections / openRate) * 10) * 1000;
  const watchdog = setTimeout(() => {
    process.stderr.write('soak: watchdog expired; killing the children\n');
    killAll();
    process.exit(2);
  }, rampAllowance + minutes * 60_000 + 120_000);
  watchdog.unref();

  // Server (plain node --expose-gc so the sample can force a full GC).
  const server = start('server', 0, values['no-gc'] ? [] : ['--expose-gc'], []);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start within 20 s')), 20_000);
    server.on('message', function onListening(message: FromServer) {
      if (message.type === 'listening') {
        clearTimeout(timer);
        server.off('message', onListening);
        resolve(message.port);
      }
    });
    server.once('exit', (code) => reject(new Error(`the server exited with ${code}`)));
  });
  const load = start('load', 1, [], ['--port', String(port)]);
  const t0 = performance.now();
  let heldStart = -1;
  log(
    `soak: ${connections} connections for ${minutes} min, sample every ${sampleSeconds} s, server pid ${server.pid} port ${port}` +
      `${pin ? ' (server on CPU 0, load on CPU 1)' : ' (not pinned)'}; node ${process.version}`,
  );
  const markHeld = (why: string): void => {
    if (heldStart >= 0) return;
    heldStart = (performance.now() - t0) / 1000;
    log(`soak: ${why} after ${heldStart.toFixed(1)} s; holding for ${minutes} min`);
  };
  load.on('message', (message: FromLoad) => {
    if (message.type === 'ready') markHeld(`${connections} connections open`);
  });
  const rampTimer = setTimeout(() => markHeld(`ramp allowance (${(rampAllowance / 1000).toFixed(0)} s) over, target not reached`), rampAllowance);
  let failed: string | undefined;
  let stopping = false;
  for (const [name, child] of [['server', server], ['load', load]] as const) {
    child.once('exit', (code, signal) => {
      if (!stopping) failed ??= `the ${name} process exited early (code ${code}, signal ${signal})`;
    });
  }

  const ask = <T>(child: ChildProcess): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.off('message', onMessage);
        reject(new Error('no sample within 15 s'));
      }, 15_000);
      function onMessage(message: { type: string; sample?: T }): void {
        if (message.type !== 'sample') return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(message.sample as T);
      }
      child.on('message', onMessage);
      child.send({ type: 'sample' } satisfies ToChild);
    });

  const rows: Row[] = [];
  log('');
  log(tableHeader());
  let prev: { t: number; in: number; out: number } = { t: 0, in: 0, out: 0 };
  while (!failed) {
    const nextAt = t0 + (rows.length + 1) * sampleSeconds * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, nextAt - performance.now())));
    if (failed) break;
    let s: ServerSample;
    let l: LoadSample;
    try {
      [s, l] = await Promise.all([ask<ServerSample>(server), ask<LoadSample>(load)]);
    } catch (error) {
      failed = `sampling failed: ${(error as Error).message}`;
      break;
    }
    const t = (performance.now() - t0) / 1000;
    const dt = t - prev.t;
    const row: Row = {
      t,
      held: heldStart < 0 ? -1 : t - heldStart,
      server: s,
      load: l,
      inRate: (s.messagesIn - prev.in) / dt,
      outRate: (s.messagesOut - prev.out) / dt,
    };
    prev = { t, in: s.messagesIn, out: s.messagesOut };
    rows.push(row);
    log(tableRow(row));
    for (const e of l.firstErrors) log(`  load: ${e}`);
    if (heldStart >= 0 && row.held >= minutes * 60 - sampleSeconds / 2) break;
  }
  clearTimeout(rampTimer);

  // Stop: the load first (it destroys its sockets), then the server (graceful close).
  stopping = true;
  const stopChild = (child: ChildProcess): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 15_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        child.send({ type: 'stop' } satisfies ToChild);
      } catch {
        child.kill('SIGKILL');
      }
    });
  await stopChild(load);
  await stopChild(server);

  const held = rows.filter((r) => r.held >= 0);
  if (failed || held.length < 8) {
    process.stderr.write(`soak: ${failed ?? `too few held samples (${held.length}); use more --minutes or fewer --sample-seconds`}\n`);
    process.exit(2);
  }
  const growths: Growth[] = [
    growth(held, 'RSS', 'MiB', (r) => r.server.rss / MiB, 0.1, 8),
    growth(held, 'heap used', 'MiB', (r) => r.server.heapUsed / MiB, 0.1, 4),
    growth(held, 'external', 'MiB', (r) => r.server.external / MiB, 0.1, 4),
    growth(held, 'fds', '', (r) => r.server.fds, 0.02, 50),
  ];
  // Where committed heap went (informational): the young generation grows to its maximum
  // (16 MiB per semi-space by default) under sustained allocation; that is sizing, not a leak.
  const heapSizing = [
    growth(held, 'heapTotal', 'MiB', (r) => r.server.heapTotal / MiB, 0.1, 8),
    growth(held, 'new space', 'MiB', (r) => r.server.newSpace / MiB, 0.1, 8),
    growth(held, 'old spaces', 'MiB', (r) => r.server.oldSpaces / MiB, 0.1, 8),
  ];
  const eld = {
    p99Q2: mean(held.slice(Math.floor(held.length / 4), Math.floor(held.length / 2)).map((r) => r.server.eldP99)),
    p99Q4: mean(held.slice(Math.floor((3 * held.length) / 4)).map((r) => r.server.eldP99)),
    p99Max: Math.max(...held.map((r) => r.server.eldP99)),
    maxMax: Math.max(...held.map((r) => r.server.eldMax)),
  };
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  const lastLoad = last.load;
  const lastServer = last.server;
  const flat = growths.every((g) => g.flat);
  const cpuSeconds = lastServer.cpuUser + lastServer.cpuSystem;
  const summary = {
    config: {
      connections,
      minutes,
      sampleSeconds,
      topics: num('topics', 1),
      publishSeconds: [num('publish-min', 0.1), num('publish-max', 0.1)],
      churnEverySeconds: num('churn-seconds', 0.1),
      churnCleanPct: num('churn-clean', 0),
      churnAbruptPct: num('churn-abrupt', 0),
      openRate,
      forcedGc: !values['no-gc'],
      presence: !values['no-presence'],
      pinned: pin,
      node: process.version,
    },
    rampSeconds: heldStart,
    heldSamples: held.length,
    growth: growths,
    heapSizing,
    eventLoopDelayMs: eld,
    verdict: flat ? 'flat' : 'growth',
    totals: {
      serverConnectionsTotal: lastServer.connectionsTotal,
      serverCpuSeconds: cpuSeconds,
      messagesIn: lastServer.messagesIn,
      messagesOut: lastServer.messagesOut,
      publications: lastServer.publications,
      deliveries: lastServer.deliveries,
      dropped: lastServer.dropped,
      hubGaps: lastServer.gaps,
      invalidMessages: lastServer.invalidMessages,
      serverErrors: lastServer.errors,
      closes: lastServer.closes,
      rejections: lastServer.rejections,
      load: {
        opened: lastLoad.opened,
        openFailed: lastLoad.openFailed,
        closedClean: lastLoad.closedClean,
        closedAbrupt: lastLoad.closedAbrupt,
        closedUnexpected: lastLoad.closedUnexpected,
        published: lastLoad.published,
        received: lastLoad.received,
        replies: lastLoad.replies,
        presence: lastLoad.presence,
        errors: lastLoad.errors,
        gaps: lastLoad.gaps,
        pings: lastLoad.pings,
      },
    },
    rows: rows.map((r) => ({ t: r.t, held: r.held, inRate: r.inRate, outRate: r.outRate, server: r.server, load: { ...r.load, firstErrors: undefined } })),
  };

  log('');
  log(`verdict over ${held.length} held samples (2nd quarter mean → last quarter mean; slope = least squares over the 2nd half):`);
  for (const g of growths) {
    const u = g.unit ? ` ${g.unit}` : '';
    const d = g.unit === 'MiB' ? 1 : 0;
    log(
      `  ${pad(g.metric, 9)}: ${g.q2.toFixed(d)} → ${g.q4.toFixed(d)}${u}  (${g.delta >= 0 ? '+' : ''}${g.delta.toFixed(d)}${u}, ${g.deltaPct >= 0 ? '+' : ''}${g.deltaPct.toFixed(1)} %; ` +
        `slope ${g.slopePerMin >= 0 ? '+' : ''}${g.slopePerMin.toFixed(2)}${u}/min; tolerance ${g.tolerance.toFixed(d)}${u})  ${g.flat ? 'flat' : 'GROWTH'}`,
    );
  }
  for (const g of heapSizing) {
    log(`  (${g.metric} committed: ${g.q2.toFixed(1)} → ${g.q4.toFixed(1)} MiB, slope ${g.slopePerMin >= 0 ? '+' : ''}${g.slopePerMin.toFixed(2)} MiB/min; informational)`);
  }
  log(`  ELD p99  : ${eld.p99Q2.toFixed(1)} → ${eld.p99Q4.toFixed(1)} ms (worst sample p99 ${eld.p99Max.toFixed(1)} ms, worst max ${eld.maxMax.toFixed(1)} ms)  reported, not judged`);
  log(
    `  traffic  : ${lastServer.connectionsTotal} connections served in all (${lastLoad.closedClean} closed cleanly, ${lastLoad.closedAbrupt} destroyed by the load, ` +
      `${lastLoad.closedUnexpected} closed unexpectedly, ${lastLoad.openFailed} failed opens); ${lastLoad.published} publishes, ` +
      `${lastServer.deliveries} deliveries, ${lastLoad.presence} presence events; server ${lastServer.messagesIn} msgs in / ${lastServer.messagesOut} out; ` +
      `hub errors sent ${lastLoad.errors}, gaps ${lastLoad.gaps}; server CPU ${cpuSeconds.toFixed(0)} s`,
  );
  log(`  close codes seen by the server: ${JSON.stringify(lastServer.closes)}; refused handshakes: ${JSON.stringify(lastServer.rejections)}`);
  log(`  start (first held sample) vs end: RSS ${(held[0]!.server.rss / MiB).toFixed(1)} → ${(lastServer.rss / MiB).toFixed(1)} MiB, heap ${(held[0]!.server.heapUsed / MiB).toFixed(1)} → ${(lastServer.heapUsed / MiB).toFixed(1)} MiB, fds ${held[0]!.server.fds} → ${lastServer.fds}; first sample RSS ${(first.server.rss / MiB).toFixed(1)} MiB`);
  log(`verdict: ${flat ? 'FLAT — no growth beyond warm-up' : 'GROWTH — see the lines marked GROWTH'}`);

  if (values.svg) {
    const title = `duplex soak: ${connections} connections (hub, ${summary.config.topics} topics), ${minutes} min held, churn ${summary.config.churnCleanPct}+${summary.config.churnAbruptPct} % / ${summary.config.churnEverySeconds} s`;
    writeFileSync(values.svg, svgPlot(rows, heldStart, title));
    log(`plot written to ${values.svg}`);
  }
  if (values.out) writeFileSync(values.out, JSON.stringify(summary, null, 2) + '\n');
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  process.exitCode = flat ? 0 : 1;
}

function readHelp(): string {
  return `npm run soak -- [options]
  --connections N       connections held (default 10000)
  --minutes M           how long the target count is held, after the ramp (default 10)
  --sample-seconds S    sample interval (default 10)
  --topics T            hub topics (default 100)
  --publish-min/max S   each connection publishes every S seconds, uniformly random (default 30–90:
                        ~170 publications/s × ~100 subscribers each at 10,000 connections)
  --churn-seconds S     churn interval (default 10)
  --churn-clean P       % of connections closed with a close frame each interval (default 2)
  --churn-abrupt P      % of connections destroyed each interval (default 1)
  --open-rate R         handshakes started per second at most (default 500)
  --open-concurrency C  handshakes in flight at most (default 100)
  --no-gc               do not force a full GC before each memory reading
  --no-presence         hub without presence
  --no-pin              do not pin the processes to CPUs with taskset
  --json                one JSON object on stdout (the table goes to stderr)
  --out FILE            write the JSON summary to FILE
  --svg FILE            write a plot of RSS/heap, fds/connections and ELD to FILE
`;
}

const role = values.role;
if (role === 'server') await serverRole();
else if (role === 'load') await loadRole();
else
  await main().catch((error: unknown) => {
    process.stderr.write(`soak: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(2);
  });
