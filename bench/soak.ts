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
import { writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Opcode, WebSocketServer } from '../src/index.js';
import { MaskKeySource, encodeFrame } from '../src/protocol/index.js';
import { Hub } from '../src/hub/index.js';
import { openWebSocket, parseTarget } from '../src/cli/bench/handshake.js';
import { COMMON_HELP, COMMON_OPTIONS, OWN_OPTIONS, numberArg } from './soak-args.js';
import { Children, canPin, childArgs, exitIfFailed, requireDescriptors, sampleEvery, waitFor } from './soak-children.js';
import { timeSeriesSvg } from './soak-plot.js';
import { ELD_RESOLUTION, ProcessProbe, loopDelay, type ProcessSample } from './soak-probe.js';
import { MiB, Table, growth, growthLine, lastQuarter, mean, secondQuarter, tooFewHeld, type Growth } from './soak-stats.js';

const { values } = parseArgs({
  options: {
    ...COMMON_OPTIONS,
    topics: { type: 'string', default: '100' },
    'publish-min': { type: 'string', default: '30' },
    'publish-max': { type: 'string', default: '90' },
    'churn-seconds': { type: 'string', default: '10' },
    'churn-clean': { type: 'string', default: '2' },
    'churn-abrupt': { type: 'string', default: '1' },
  },
  strict: true,
});

const num = (name: keyof typeof values, min: number): number => numberArg(name, values[name], min);

// ---- messages between the processes --------------------------------------------------------------

/** What the server reports each sample: its own process figures, and the server's and hub's counters. */
interface ServerSample extends ProcessSample {
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

// ---- role: server under test -------------------------------------------------------------------

async function serverRole(): Promise<void> {
  const probe = new ProcessProbe(!values['no-gc']);
  const hub = new Hub({ anonymous: true, presence: !values['no-presence'] });
  await hub.start();
  const server = new WebSocketServer<unknown>({ handlers: hub.handlers });
  const address = await server.listen(0, '127.0.0.1');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: ToChild) => {
    if (message.type === 'sample') {
      const own = probe.sample();
      const stats = server.stats();
      const hubStats = hub.stats();
      send({
        type: 'sample',
        sample: {
          ...own,
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

const TABLE = new Table([
  ['t min', 6],
  ['phase', 5],
  ['conns', 6],
  ['RSS MiB', 7],
  ['heap MiB', 8],
  ['heapTot', 7],
  ['ext MiB', 7],
  ['fds', 6],
  ['ELD p50', 7],
  ['ELD p99', 7],
  ['ELD max', 7],
  ['gc ms', 6],
  ['in/s', 6],
  ['out/s', 7],
]);

function tableRow(r: Row): string {
  const s = r.server;
  return TABLE.row([
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
  ]);
}

/** RSS and heap, fds and connections, ELD p99 over time. */
function svgPlot(rows: Row[], heldStart: number, title: string): string {
  const line = (name: string, color: string, pick: (r: Row) => number): { name: string; color: string; values: number[] } => ({ name, color, values: rows.map(pick) });
  return timeSeriesSvg({
    title,
    t: rows.map((r) => r.t),
    heldStart,
    caption: 'minutes since the first connection (grey: ramp; dashed: quarters of the held phase)',
    panels: [
      {
        label: 'MiB',
        series: [
          line('RSS', '#d62728', (r) => r.server.rss / MiB),
          line('heap used (after GC)', '#1f77b4', (r) => r.server.heapUsed / MiB),
          line('external', '#9467bd', (r) => r.server.external / MiB),
        ],
      },
      {
        label: 'count',
        series: [line('open fds', '#2ca02c', (r) => r.server.fds), line('connections', '#ff7f0e', (r) => r.server.connections)],
      },
      {
        label: 'ms',
        series: [line('event-loop delay p99', '#8c564b', (r) => r.server.eldP99), line('p50', '#7f7f7f', (r) => r.server.eldP50)],
      },
    ],
  });
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
  requireDescriptors(connections);
  const pin = !values['no-pin'] && canPin();
  // The children get the workload options; not the orchestrator's own (output, pinning).
  const passOn = childArgs(process.argv.slice(2), ...OWN_OPTIONS);
  const children = new Children(fileURLToPath(import.meta.url), pin);

  // Whatever happens, the run ends: ramp allowance + held time + 2 minutes.
  // A shared machine can make the ramp many times slower than `connections / openRate`.
  const rampAllowance = Math.max(120, (connections / openRate) * 10) * 1000;
  children.watchdog(rampAllowance + minutes * 60_000 + 120_000);

  // Server (plain node --expose-gc so the sample can force a full GC).
  const server = children.start('server', 0, values['no-gc'] ? [] : ['--expose-gc'], passOn);
  const { port } = await waitFor<{ type: 'listening'; port: number }>(server, 'listening', 20_000);
  const load = children.start('load', 1, [], [...passOn, '--port', String(port)]);
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

  const rows: Row[] = [];
  log('');
  log(TABLE.header());
  let prev = { in: 0, out: 0 };
  await sampleEvery<ServerSample, LoadSample>(children, [server, load], t0, sampleSeconds, () => heldStart, ({ dt, ...sampled }) => {
    const { server: s, load: l } = sampled;
    const row: Row = { ...sampled, inRate: (s.messagesIn - prev.in) / dt, outRate: (s.messagesOut - prev.out) / dt };
    prev = { in: s.messagesIn, out: s.messagesOut };
    rows.push(row);
    log(tableRow(row));
    for (const e of l.firstErrors) log(`  load: ${e}`);
    return heldStart >= 0 && row.held >= minutes * 60 - sampleSeconds / 2;
  });
  clearTimeout(rampTimer);

  // Stop: the load first (it destroys its sockets), then the server (graceful close).
  await children.stop(load, server);

  const held = rows.filter((r) => r.held >= 0);
  exitIfFailed('soak', children.failure ?? tooFewHeld(held.length));
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
    p99Q2: mean(secondQuarter(held).map((r) => r.server.eldP99)),
    p99Q4: mean(lastQuarter(held).map((r) => r.server.eldP99)),
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
  for (const g of growths) log(growthLine(g));
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
${COMMON_HELP}  --svg FILE            write a plot of RSS/heap, fds/connections and ELD to FILE
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
