// Benchmark servers, one process each, for `bench/run.ts`: the same workloads written with
// duplex and with `ws` the way their documentation suggests.
//
//   node dist/bench/servers.js --impl duplex|ws|compat --mode echo|broadcast [--deflate] [--port 0]
//                              [--max-message-size BYTES] [--loop-delay] [--lib PATH]
//
// `compat` is the ws server code below, word for word, on duplex-ws/ws instead of ws: what a
// user who switched by changing the import line gets.
//
// Prints `ready <port>` once listening. echo: every message back to its sender. broadcast:
// every message to every connection (wsload's broadcast mode reads and ignores its own copy).
//
// For `bench/attack.ts` (all optional; without them the servers are as before):
//   --max-message-size BYTES  duplex's maxMessageSize and ws's maxPayload (default: duplex's own
//                             default; ws 100 MiB, its own default).
//   --loop-delay              read `start [T]` / `stop [T]` lines on stdin: `start` enables
//                             perf_hooks.monitorEventLoopDelay({ resolution: 1 }), notes the
//                             process's CPU time and prints `started`; `stop` disables it and prints
//                             one line `loop-delay {json}` (ms, and CPU seconds of every thread in
//                             the window). T, the driver's clock when it sent the line
//                             (performance.timeOrigin + performance.now(), ms), gives how late the
//                             line was read (`startLate`, `stopLate`). `stopBlocked`: how long the
//                             loop had been held when it read `stop` (time since timers last ran),
//                             a delay the histogram, disabled before its next tick, never sees.
//   --lib PATH                load duplex (impl duplex) from another build's dist/src/index.js, so
//                             the same server code runs on a baseline engine.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocketServer as WsServer, WebSocket as WsSocket, type RawData } from 'ws';
import * as ours from '../src/index.js';
import type { WebSocket } from '../src/index.js';
import * as compat from '../src/ws/index.js';

const { values } = parseArgs({
  options: {
    impl: { type: 'string', default: 'duplex' },
    mode: { type: 'string', default: 'echo' },
    deflate: { type: 'boolean', default: false },
    port: { type: 'string', default: '0' },
    'max-message-size': { type: 'string' },
    'loop-delay': { type: 'boolean', default: false },
    lib: { type: 'string' },
  },
});
const port = Number(values.port);
const broadcast = values.mode === 'broadcast';
const maxMessageSize = values['max-message-size'] === undefined ? undefined : Number(values['max-message-size']);
if (maxMessageSize !== undefined && !(Number.isInteger(maxMessageSize) && maxMessageSize > 0)) {
  throw new RangeError(`--max-message-size must be a positive integer (bytes), got ${values['max-message-size']}`);
}
// The engine under test: this build's, or another build's with the same API (a baseline).
const duplex = values.lib === undefined ? ours : ((await import(pathToFileURL(values.lib).href)) as typeof ours);

async function startDuplex(): Promise<number> {
  const { WebSocketServer, prepareMessage } = duplex;
  const server: ours.WebSocketServer = new WebSocketServer({
    perMessageDeflate: values.deflate,
    ...(maxMessageSize === undefined ? {} : { maxMessageSize }),
    textAsBuffer: true,
    pingInterval: 0,
    maxBufferedAmount: 64 << 20,
    handlers: {
      message(ws: WebSocket<undefined>, data, isBinary) {
        if (!broadcast) {
          if (isBinary) ws.send(data as Buffer);
          else ws.sendText(data as Buffer);
          return;
        }
        // Frame once, write the same bytes to every connection.
        const prepared = prepareMessage(data as Buffer, isBinary);
        for (const client of server.clients) client.sendPrepared(prepared);
      },
    },
  });
  return (await server.listen(port, '127.0.0.1')).port;
}

/** What the code below uses of ws's API, which `ws` and duplex-ws/ws both have. */
interface WsApiSocket {
  readonly readyState: number;
  on(event: 'message', listener: (data: RawData, isBinary: boolean) => void): unknown;
  send(data: RawData, options: { binary: boolean }): void;
}
interface WsApiServer {
  readonly clients: Set<WsApiSocket>;
  on(event: 'connection', listener: (ws: WsApiSocket) => void): unknown;
  once(event: 'listening', listener: () => void): unknown;
  address(): unknown;
}

/** The ws server of ws's README, on `ws` itself or on duplex-ws/ws (the same code: only the module differs). */
async function startWs(Server: new (options: { port: number; host: string; perMessageDeflate: boolean; maxPayload: number }) => unknown, OPEN: number): Promise<number> {
  const server = new Server({ port, host: '127.0.0.1', perMessageDeflate: Boolean(values.deflate), maxPayload: maxMessageSize ?? 100 << 20 }) as WsApiServer;
  server.on('connection', (ws) => {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!broadcast) {
        ws.send(data, { binary: isBinary });
        return;
      }
      // ws's README recipe ("Server broadcast"): every open client but none skipped.
      for (const client of server.clients) if (client.readyState === OPEN) client.send(data, { binary: isBinary });
    });
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return (server.address() as { port: number }).port;
}

/**
 * The event loop's delay over a window the driver chooses (`start` … `stop` on stdin): how long
 * a 1 ms timer waited, i.e. how long other connections' work could not run.
 */
function controlLoopDelay(): void {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  let cpu0 = process.cpuUsage();
  let t0 = performance.now();
  const ms = (ns: number): number => ns / 1e6;
  let startLate = 0;
  // How long after the driver's clock `sent` (ms) this line is read: 0 without a time.
  const late = (sent: string | undefined): number => (sent === undefined ? 0 : Math.max(0, performance.timeOrigin + performance.now() - Number(sent)));
  // When the loop last ran its timers: a line read after a long callback tells how long that was.
  let lastTick = performance.now();
  setInterval(() => (lastTick = performance.now()), 1).unref();
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [command, sent] = line.split(' ');
    if (command === 'start') {
      startLate = late(sent);
      histogram.reset();
      histogram.enable();
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      process.stdout.write('started\n');
    } else if (command === 'stop') {
      const stopLate = late(sent);
      const stopBlocked = performance.now() - lastTick;
      histogram.disable();
      // process.cpuUsage() is getrusage(RUSAGE_SELF): every thread, zlib's thread pool included.
      const cpu = process.cpuUsage(cpu0);
      const report = {
        p50: ms(histogram.percentile(50)),
        p99: ms(histogram.percentile(99)),
        p999: ms(histogram.percentile(99.9)),
        max: ms(histogram.max),
        mean: ms(histogram.mean),
        count: histogram.count,
        // The whole distribution (percentile → ms), for a driver that adds the delays it missed.
        percentiles: [...histogram.percentiles].map(([p, v]) => [p, ms(v)]),
        startLate,
        stopLate,
        stopBlocked,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        elapsed: (performance.now() - t0) / 1000,
      };
      process.stdout.write(`loop-delay ${JSON.stringify(report)}\n`);
    }
  });
}

const bound =
  values.impl === 'ws' ? await startWs(WsServer, WsSocket.OPEN) : values.impl === 'compat' ? await startWs(compat.WebSocketServer, compat.WebSocket.OPEN) : await startDuplex();
if (values['loop-delay']) controlLoopDelay();
process.stdout.write(`ready ${bound}\n`);
process.on('SIGTERM', () => process.exit(0));
