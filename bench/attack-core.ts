// The core of the attack benchmark (`bench/attack.ts`), importable by a test: start one server
// impl, run one workload against it, return the figures.
//
//   import { runAttack } from '../../bench/attack-core.js';
//   const r = await runAttack({ impl: 'duplex', workload: 'inflate-flood', seconds: 3 });
//   r.victims.rtt.p99, r.server.loopDelay.p99   // ms
//
// One workload run = three processes besides the caller:
// - the server: `servers.js --mode echo --deflate --loop-delay` pinned to CPU 0 (`taskset`);
// - the victims: this file run as `victims`, pinned to CPU 1, V connections without deflate,
//   each sending a 64-byte text message every `victimInterval` ms;
// - the attacker: this file run as `attacker`, pinned to CPU 1, one connection flooding the
//   server with one precomputed frame, written again whenever the socket drains, at most
//   `attackWindow` messages not yet echoed.
// Attacker and victims are separate processes so that the attacker's reading of its echoes
// never delays a victim's timer or reply (each process reports its own event-loop delay).
//
// The victims are an open loop, so that a stall counts as long as it lasts, not once per
// connection (coordinated omission): each sends on a fixed schedule, one message per interval,
// whether or not the previous one was answered, and each message's RTT runs from its send to
// its echo. Every victim yields one sample per interval whatever the server does, so p99 is the
// latency exceeded 1 % of the time; `maxInFlight` shows how many piled up during a stall.
import { cpuTimes, hostBusy } from './proc-stat.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { constants as zlib, deflateRawSync } from 'node:zlib';
import { CloseCode, Opcode, isControlOpcode } from '../src/protocol/constants.js';
import { HandshakeError } from '../src/protocol/errors.js';
import { encodeFrame } from '../src/protocol/frame.js';
import { clientRequestHeaders, generateKey, validateResponse } from '../src/protocol/handshake.js';
import { formatExtensions } from '../src/protocol/headers.js';
import { MaskKeySource } from '../src/protocol/mask.js';
import { acceptServerResponse, buildClientOffer, type PerMessageDeflateOptions } from '../src/protocol/permessage-deflate.js';
import { openWebSocket, parseTarget } from '../src/cli/bench/handshake.js';

const MiB = 1024 * 1024;

/** What the attacker sends, message after message. */
export interface Workload {
  /** `inflate`: a compressed binary message of `size` zeros; `text`: `size` ASCII bytes, uncompressed; `none`: no attacker. */
  kind: 'inflate' | 'text' | 'none';
  /** Bytes of one message as the server's application sees it (after inflation). */
  size: number;
  /** The server's maxMessageSize (duplex) / maxPayload (ws), the same for every impl. */
  maxMessageSize: number;
}

export const WORKLOADS = {
  'inflate-flood': { kind: 'inflate', size: 16 * MiB, maxMessageSize: 64 * MiB },
  'text-flood': { kind: 'text', size: 16 * MiB, maxMessageSize: 64 * MiB },
  'inflate-flood-64m': { kind: 'inflate', size: 64 * MiB, maxMessageSize: 100 * MiB },
  /** No attacker: the victims' and the loop's figures when nobody attacks, for reference. */
  quiet: { kind: 'none', size: 0, maxMessageSize: 64 * MiB },
} as const satisfies Record<string, Workload>;
export type WorkloadName = keyof typeof WORKLOADS;

/** `duplex`: this build; `baseline`: the same server code on another build's engine; `ws`: the npm package. */
export type Impl = 'duplex' | 'baseline' | 'ws';

export interface AttackOptions {
  impl: Impl;
  workload: WorkloadName;
  /** Seconds measured (default 10). */
  seconds?: number;
  /**
   * Seconds of attack before the measured window opens (default 0: the attack starts with the
   * window, once the server's histogram runs; with a warmup, a server blocked when the window
   * opens reads its `start` late, and that time counts as one delay sample).
   */
  warmup?: number;
  /** Victim connections (default 20). */
  victims?: number;
  /** ms between two sends of one victim (default 10). */
  victimInterval?: number;
  /**
   * Attacker messages sent and not yet echoed, at most (default 3: 48 MiB of echoes in flight,
   * under the servers' 64 MiB slow-consumer ceiling, so a server that keeps up is not made to close
   * the attacker for reading its echoes slowly).
   */
  attackWindow?: number;
  /** For impl `baseline`: another checkout's `dist/bench/servers.js` (its `dist/src/index.js` is loaded). Default: env BASELINE. */
  baseline?: string;
  /** Node flags for the server process. */
  nodeFlags?: readonly string[];
  /** Pin the server to CPU 0 and the load to CPU 1 (default: when `taskset` works). */
  taskset?: boolean;
}

/** Percentiles in ms. */
export interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  count: number;
}

export interface AttackResult {
  impl: Impl;
  workload: WorkloadName;
  seconds: number;
  victims: {
    /** RTT of the messages sent in the window, ms. */
    rtt: Percentiles;
    /** Messages sent in the window that got no answer before the victims gave up (5 s after the window). */
    unanswered: number;
    /** Victim connections the server closed or that failed. */
    closed: number;
    /** Most messages of one victim unanswered at once. */
    maxInFlight: number;
    /** The victims' own process: event-loop delay p99 and max (ms), CPU %. */
    clientLoopDelay: { p99: number; max: number };
    clientCpuPct: number;
  };
  server: {
    /** monitorEventLoopDelay({ resolution: 1 }) over the window, ms. */
    /**
     * monitorEventLoopDelay({ resolution: 1 }) over the window, ms (an idle loop reads about
     * 1.1: a sample is the whole interval between two ticks), with up to two more samples (when
     * over 1 ms) that the histogram cannot see: `stopBlocked`, the block the loop was in when it
     * read `stop` (the histogram is disabled before the tick that would record it), and with a
     * warmup `startLate`, how long `start` waited for the loop. Without them a loop blocked across
     * the whole window would read as no delay at all. `stopLate`: how late `stop` was read.
     */
    loopDelay: { p50: number; p99: number; p999: number; max: number; mean: number; count: number; startLate: number; stopLate: number; stopBlocked: number };
    /** CPU of every server thread over the window, % of one core. */
    cpuPct: number;
  };
  attacker?: {
    /** Bytes of the frame written per message. */
    frameBytes: number;
    sent: number;
    echoed: number;
    echoedPerS: number;
    /** Whether the server agreed permessage-deflate with the attacker. */
    deflate: boolean;
    /** The close code if the server closed the attacker's connection (the flood then stopped). */
    closeCode?: number;
    clientCpuPct: number;
  };
  /** Busy % of each host CPU over the window (other load on a shared machine shows here). */
  hostBusy: number[];
}

// ————————————————————————————————————————————— the load roles

/**
 * Counts the messages in a stream of server frames (unmasked, RFC 6455 §5.2) without keeping
 * their payloads: the load must stay cheaper than the server it measures.
 */
class FrameCounter {
  private readonly header = new Uint8Array(14);
  private readonly view = new DataView(this.header.buffer);
  private have = 0;
  private need = 2;
  private remaining = 0;
  private opcode = 0;
  private fin = false;
  private messageLength = 0;
  private closePayload: number[] | undefined;

  constructor(
    private readonly onMessage: (length: number) => void,
    private readonly onClose: (code: number) => void,
  ) {}

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        if (this.closePayload && this.closePayload.length < 2) this.closePayload.push(...chunk.subarray(i, i + Math.min(n, 2 - this.closePayload.length)));
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) this.endFrame();
        continue;
      }
      this.header[this.have++] = chunk[i++]!;
      if (this.have === 2) {
        const len7 = this.header[1]! & 0x7f;
        this.need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.header[1]! & 0x80 ? 4 : 0);
      }
      if (this.have >= 2 && this.have === this.need) this.startFrame();
    }
  }

  private startFrame(): void {
    const h = this.header;
    this.fin = (h[0]! & 0x80) !== 0;
    this.opcode = h[0]! & 0x0f;
    const len7 = h[1]! & 0x7f;
    let length = len7;
    if (len7 === 126) length = (h[2]! << 8) | h[3]!;
    else if (len7 === 127) length = this.view.getUint32(2) * 2 ** 32 + this.view.getUint32(6);
    this.have = 0;
    this.need = 2;
    this.remaining = length;
    this.closePayload = this.opcode === Opcode.Close ? [] : undefined;
    if (!isControlOpcode(this.opcode)) this.messageLength += length;
    if (length === 0) this.endFrame();
  }

  private endFrame(): void {
    if (this.opcode === Opcode.Close) {
      const p = this.closePayload!;
      this.onClose(p.length === 2 ? (p[0]! << 8) | p[1]! : CloseCode.NoStatusReceived);
    } else if (!isControlOpcode(this.opcode) && this.fin) {
      const length = this.messageLength;
      this.messageLength = 0;
      this.onMessage(length);
    }
  }
}

/** Reads `start` / `measure` / `stop` lines from the driver. */
function control(handlers: { start(): void; measure(): void; stop(): void }): void {
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'start') handlers.start();
    else if (line === 'measure') handlers.measure();
    else if (line === 'stop') handlers.stop();
  });
}

function percentiles(samples: number[]): Percentiles {
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);
  return { p50: at(50), p99: at(99), p999: at(99.9), max: sorted.length === 0 ? NaN : sorted[sorted.length - 1]!, count: sorted.length };
}

const cpuSeconds = (usage: NodeJS.CpuUsage): number => (usage.user + usage.system) / 1e6;

/**
 * The victims: V plain connections, each sending a 64-byte text message every `interval` ms
 * on a fixed schedule whatever the server does (open loop: a message is not held back by an
 * unanswered one), each RTT from its send to its echo (the server answers a connection's
 * messages in order).
 */
async function victimsRole(port: number, count: number, interval: number): Promise<void> {
  const target = parseTarget(`ws://127.0.0.1:${port}/echo`);
  const opened = await Promise.all(Array.from({ length: count }, () => openWebSocket(target, 10_000)));
  const payload = new TextEncoder().encode('v'.repeat(64));
  const keys = new MaskKeySource();
  const rtt: number[] = [];
  let windowStart = Infinity;
  let windowEnd = Infinity;
  let closed = 0;
  let maxInFlight = 0;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  let cpu0 = process.cpuUsage();
  let done: (() => void) | undefined;

  interface Victim {
    socket: Socket;
    /** Slot k is due at base + k × interval. */
    base: number;
    next: number;
    /** Send times of the messages not answered yet, oldest first. */
    sent: number[];
    timer: NodeJS.Timeout | undefined;
    alive: boolean;
  }
  const victims: Victim[] = [];
  /** Still waiting for an answer to a message sent inside the window. */
  const waiting = (v: Victim): boolean => v.alive && v.sent.length > 0 && v.sent[0]! <= windowEnd;
  const checkDone = (): void => {
    if (done && !victims.some(waiting)) done();
  };
  const tick = (v: Victim): void => {
    const now = performance.now();
    if (now > windowEnd) return;
    // Every slot that is due (more than one when this process itself was held up).
    while (v.base + v.next * interval <= now) {
      v.next++;
      v.sent.push(now);
      v.socket.write(encodeFrame(Opcode.Text, payload, { maskKey: keys.next() }));
    }
    maxInFlight = Math.max(maxInFlight, v.sent.length);
    v.timer = setTimeout(() => tick(v), v.base + v.next * interval - now);
  };
  for (const [k, { socket, head }] of opened.entries()) {
    // Spread over the interval, so that the victims' sends do not come in bursts.
    const v: Victim = { socket, base: (k * interval) / count, next: 0, sent: [], timer: undefined, alive: true };
    victims.push(v);
    const lost = (): void => {
      if (!v.alive) return;
      v.alive = false;
      closed++;
      clearTimeout(v.timer);
      checkDone();
    };
    const counter = new FrameCounter(() => {
      const sentAt = v.sent.shift();
      if (sentAt !== undefined && sentAt >= windowStart && sentAt <= windowEnd) rtt.push(performance.now() - sentAt);
      if (done) checkDone();
    }, lost);
    socket.on('data', (chunk: Buffer) => counter.push(chunk));
    socket.on('close', lost);
    socket.on('error', lost);
    if (head.length > 0) counter.push(head);
  }
  control({
    start() {
      const t0 = performance.now();
      for (const v of victims) {
        v.base += t0;
        tick(v);
      }
    },
    measure() {
      windowStart = performance.now();
      cpu0 = process.cpuUsage();
      loop.enable();
    },
    stop() {
      windowEnd = performance.now();
      loop.disable();
      for (const v of victims) clearTimeout(v.timer);
      const cpu = cpuSeconds(process.cpuUsage(cpu0));
      const elapsed = (windowEnd - windowStart) / 1000;
      // Wait for the answers to the messages sent inside the window (the worst ones are often
      // those held at its end), at most 5 s.
      const finish = (): void => {
        const unanswered = victims.reduce((n, v) => n + v.sent.filter((t) => t >= windowStart && t <= windowEnd).length, 0);
        const report = {
          rtt: percentiles(rtt),
          unanswered,
          closed,
          maxInFlight,
          clientLoopDelay: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
          clientCpuPct: (100 * cpu) / elapsed,
        };
        process.stdout.write(`result ${JSON.stringify(report)}\n`);
        for (const v of victims) v.socket.destroy();
        process.exit(0);
      };
      const timer = setTimeout(finish, 5000);
      done = () => {
        clearTimeout(timer);
        finish();
      };
      checkDone();
    },
  });
  process.stdout.write('ready\n');
}

/** The offer of an attacker that compresses: no context takeover, so one compressed payload is valid every time (RFC 7692 §7.1.1.2). */
const ATTACKER_DEFLATE: PerMessageDeflateOptions = { clientNoContextTakeover: true, clientMaxWindowBits: false };

/** The opening handshake over `http.request`, offering permessage-deflate when asked; the engine checks the 101. */
function openAttacker(port: number, deflate: boolean): Promise<{ socket: Socket; head: Buffer; deflate: boolean }> {
  const key = generateKey();
  const extensions = deflate ? formatExtensions([buildClientOffer(ATTACKER_DEFLATE)]) : undefined;
  const headers = clientRequestHeaders({ host: `127.0.0.1:${port}`, path: '/echo', key, extensions });
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: '127.0.0.1', port, path: '/echo', headers });
    request.on('upgrade', (response, socket: Socket, head: Buffer) => {
      try {
        const validated = validateResponse({ status: response.statusCode ?? 0, headers: response.headers }, { key, protocols: [] });
        const negotiated = deflate ? acceptServerResponse(validated.extensions, ATTACKER_DEFLATE) : undefined;
        socket.setNoDelay(true);
        resolve({ socket, head, deflate: negotiated !== undefined });
      } catch (error) {
        socket.destroy();
        reject(error as Error);
      }
    });
    request.on('response', (response) => reject(new HandshakeError(`server answered ${response.statusCode}`, response.statusCode ?? 0)));
    request.on('error', reject);
    request.end();
  });
}

/**
 * The one frame the attacker sends again and again, built once. `inflate`: `size` zeros
 * deflated (RFC 7692 §7.2.1: a sync flush, its trailing 00 00 FF FF removed), RSV1 set;
 * `text`: `size` bytes of ASCII. Masked once: the server cannot tell a reused key from a fresh one,
 * and re-masking 16 MiB per message would make the attacker, not the server, the limit.
 */
export function attackFrame(kind: 'inflate' | 'text', size: number): Uint8Array {
  const maskKey = globalThis.crypto.getRandomValues(new Uint8Array(4));
  if (kind === 'text') return encodeFrame(Opcode.Text, new Uint8Array(size).fill(0x61), { maskKey });
  const compressed = deflateRawSync(new Uint8Array(size), { level: 9, finishFlush: zlib.Z_SYNC_FLUSH });
  return encodeFrame(Opcode.Binary, compressed.subarray(0, compressed.length - 4), { rsv1: true, maskKey });
}

async function attackerRole(port: number, kind: 'inflate' | 'text', size: number, window: number): Promise<void> {
  const frame = attackFrame(kind, size);
  const { socket, head, deflate } = await openAttacker(port, kind === 'inflate');
  if (kind === 'inflate' && !deflate) throw new Error('the server did not agree permessage-deflate with the attacker');
  let flooding = false;
  let measuring = false;
  let sent = 0;
  let echoed = 0;
  let sentInWindow = 0;
  let echoedInWindow = 0;
  let closeCode: number | undefined;
  let t0 = 0;
  let cpu0 = process.cpuUsage();
  // Flood: the next frame as soon as the socket has taken the last one (`drain`), as long as
  // fewer than `window` are unanswered, so the server always has the next one waiting.
  const pump = (): void => {
    while (flooding && sent - echoed < window && !socket.writableNeedDrain) {
      socket.write(frame);
      sent++;
      if (measuring) sentInWindow++;
    }
  };
  const counter = new FrameCounter(
    () => {
      echoed++;
      if (measuring) echoedInWindow++;
      pump();
    },
    (code) => {
      closeCode = code;
      flooding = false;
    },
  );
  socket.on('data', (chunk: Buffer) => counter.push(chunk));
  socket.on('drain', pump);
  socket.on('error', () => (flooding = false));
  socket.on('close', () => {
    flooding = false;
    closeCode ??= CloseCode.AbnormalClosure;
  });
  if (head.length > 0) counter.push(head);
  control({
    start() {
      flooding = true;
      pump();
    },
    measure() {
      measuring = true;
      t0 = performance.now();
      cpu0 = process.cpuUsage();
    },
    stop() {
      const elapsed = (performance.now() - t0) / 1000;
      const cpu = cpuSeconds(process.cpuUsage(cpu0));
      flooding = false;
      measuring = false;
      const report = { frameBytes: frame.length, sent: sentInWindow, echoed: echoedInWindow, echoedPerS: echoedInWindow / elapsed, deflate, closeCode, clientCpuPct: (100 * cpu) / elapsed };
      process.stdout.write(`result ${JSON.stringify(report)}\n`);
      socket.destroy();
      process.exit(0);
    },
  });
  process.stdout.write('ready\n');
}

// ————————————————————————————————————————————— the driver

/** A child process spoken to by lines: commands on stdin, `ready` / `result …` on stdout. */
class Role {
  readonly proc: ChildProcess;
  private readonly lines: string[] = [];
  private readonly waiters = new Set<() => void>();
  private stderr = '';
  private exited = false;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
  ) {
    this.proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      this.lines.push(line);
      for (const wake of this.waiters) wake();
    });
    this.proc.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    this.proc.stdin!.on('error', () => {});
    this.proc.once('exit', () => {
      this.exited = true;
      for (const wake of this.waiters) wake();
    });
  }

  /** The rest of the first line starting with `prefix`. */
  waitFor(prefix: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const line = this.lines.find((l) => l.startsWith(prefix));
        if (line !== undefined || this.exited) {
          this.waiters.delete(check);
          clearTimeout(timer);
          if (line !== undefined) resolve(line.slice(prefix.length).trim());
          else reject(new Error(`${this.name} exited before "${prefix}"${this.stderr ? `: ${this.stderr.trim()}` : ''}`));
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.name}: no "${prefix}" within ${timeoutMs} ms${this.stderr ? `: ${this.stderr.trim()}` : ''}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  send(line: string): void {
    if (!this.exited) this.proc.stdin!.write(`${line}\n`);
  }

  /** SIGTERM, then SIGKILL after 2 s; resolves when the process is gone. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(timer);
  }
}

let tasksetWorks: boolean | undefined;
/** Whether `taskset` can pin processes here (checked once). */
export function hasTaskset(): boolean {
  tasksetWorks ??= spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  return tasksetWorks;
}


/** What `servers.js --loop-delay` prints on `stop`. */
interface ServerLoopReport {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  count: number;
  percentiles: Array<[number, number]>;
  startLate: number;
  stopLate: number;
  stopBlocked: number;
  cpuSeconds: number;
  elapsed: number;
}

/** The server's loop-delay distribution with the blocks it could not see (see `loopDelay`) added to it. */
function loopDelayOf(r: ServerLoopReport): AttackResult['server']['loopDelay'] {
  // The block the server was in when it read `stop` (its histogram was disabled before the
  // tick that would have recorded it), and with a warmup the time `start` waited for the loop.
  const extras = [r.startLate, r.stopBlocked].filter((x) => x > 1);
  const n = r.count + extras.length;
  // The histogram's fraction of samples at or below v, from its percentile → value pairs.
  const cdf = (v: number): number => {
    let f = 0;
    for (const [p, x] of r.percentiles) if (x <= v) f = Math.max(f, p / 100);
    return f;
  };
  const candidates = [...r.percentiles.map(([, x]) => x), ...extras].sort((a, b) => a - b);
  const quantile = (q: number): number => {
    if (n === 0) return NaN;
    for (const v of candidates) if ((r.count * cdf(v) + extras.filter((e) => e <= v).length) / n >= q) return v;
    return candidates[candidates.length - 1]!;
  };
  return { p50: quantile(0.5), p99: quantile(0.99), p999: quantile(0.999), max: Math.max(r.count > 0 ? r.max : 0, ...extras), mean: r.mean, count: r.count, startLate: r.startLate, stopLate: r.stopLate, stopBlocked: r.stopBlocked };
}

/** CPU seconds (utime + stime, every thread) of a process, from /proc; NaN where there is none. */
function processCpu(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}
/** Linux USER_HZ. */
const CLK_TCK = 100;

/** ms the victims send before the window opens. */
const VICTIMS_LEAD = 500;

const HERE = fileURLToPath(import.meta.url);
const SERVERS = join(dirname(HERE), 'servers.js');

/** Start one server impl, run one workload against it, return the figures. Bounded: about warmup + seconds + 3 s, 60 s more at worst. */
export async function runAttack(options: AttackOptions): Promise<AttackResult> {
  const workload: Workload = WORKLOADS[options.workload];
  if (workload === undefined) throw new RangeError(`unknown workload ${options.workload}; one of ${Object.keys(WORKLOADS).join(', ')}`);
  const seconds = options.seconds ?? 10;
  const warmup = options.warmup ?? 0;
  const pin = options.taskset ?? hasTaskset();
  const onCpu = (cpu: number, argv: string[]): [string, string[]] => (pin ? ['taskset', ['-c', String(cpu), ...argv]] : [argv[0]!, argv.slice(1)]);
  const serverArgs = [process.execPath, ...(options.nodeFlags ?? []), SERVERS, '--mode', 'echo', '--deflate', '--loop-delay', '--max-message-size', String(workload.maxMessageSize)];
  if (options.impl === 'baseline') {
    const baseline = options.baseline ?? process.env.BASELINE;
    if (baseline === undefined) throw new Error('impl baseline needs BASELINE=<another checkout>/dist/bench/servers.js');
    // The same server code (this servers.js) on the other build's engine.
    serverArgs.push('--impl', 'duplex', '--lib', join(dirname(baseline), '..', 'src', 'index.js'));
  } else {
    serverArgs.push('--impl', options.impl);
  }
  const roles: Role[] = [];
  try {
    const server = new Role(`${options.impl} server`, ...onCpu(0, serverArgs));
    roles.push(server);
    const port = Number(await server.waitFor('ready', 10_000));
    const self = [process.execPath, HERE];
    const victims = new Role('victims', ...onCpu(1, [...self, 'victims', '--port', String(port), '--count', String(options.victims ?? 20), '--interval', String(options.victimInterval ?? 10)]));
    roles.push(victims);
    let attacker: Role | undefined;
    if (workload.kind !== 'none') {
      attacker = new Role('attacker', ...onCpu(1, [...self, 'attacker', '--port', String(port), '--kind', workload.kind, '--size', String(workload.size), '--window', String(options.attackWindow ?? 3)]));
      roles.push(attacker);
    }
    await Promise.all(roles.slice(1).map((r) => r.waitFor('ready', 20_000)));
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    // The victims run a moment before anything is measured (connections and code paths warm).
    victims.send('start');
    await sleep(VICTIMS_LEAD);
    if (warmup > 0) {
      attacker?.send('start');
      await sleep(warmup * 1000);
    }
    const host0 = cpuTimes();
    // The server's CPU is read here, by the clock of the window, not by the server: a server
    // blocked across the window's start reads its `start` line late (or with `stop`).
    const serverCpu0 = processCpu(server.proc.pid);
    const window0 = performance.now();
    const clock = (): string => (performance.timeOrigin + performance.now()).toFixed(3);
    server.send(`start ${clock()}`);
    // Without warmup the server is not attacked yet, so its histogram runs before the first
    // attack byte arrives and sees every block.
    if (warmup === 0) await server.waitFor('started', 5000);
    victims.send('measure');
    if (warmup === 0) attacker?.send('start');
    attacker?.send('measure');
    await sleep(seconds * 1000);
    for (const r of roles) r.send(r === server ? `stop ${clock()}` : 'stop');
    const serverCpu = processCpu(server.proc.pid) - serverCpu0;
    const windowSeconds = (performance.now() - window0) / 1000;
    const busyByCpu = hostBusy(host0, cpuTimes()).map((cpu) => cpu.busy);
    // The server answers `stop` when its loop is free again: after the work it is stuck in.
    const [loop, v, a] = await Promise.all([
      server.waitFor('loop-delay', 30_000),
      victims.waitFor('result', 15_000),
      attacker ? attacker.waitFor('result', 15_000) : Promise.resolve(undefined),
    ]);
    const loopDelay = JSON.parse(loop) as ServerLoopReport;
    const result: AttackResult = {
      impl: options.impl,
      workload: options.workload,
      seconds,
      victims: JSON.parse(v) as AttackResult['victims'],
      server: {
        loopDelay: loopDelayOf(loopDelay),
        cpuPct: (100 * (Number.isNaN(serverCpu) ? loopDelay.cpuSeconds : serverCpu)) / (Number.isNaN(serverCpu) ? loopDelay.elapsed : windowSeconds),
      },
      hostBusy: busyByCpu,
    };
    if (a !== undefined) result.attacker = JSON.parse(a) as NonNullable<AttackResult['attacker']>;
    return result;
  } finally {
    // Load first (so the server is not left writing to it), then the server.
    for (const r of roles.slice(1)) await r.stop();
    if (roles[0]) await roles[0].stop();
  }
}

// ————————————————————————————————————————————— run as a load role

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      count: { type: 'string', default: '20' },
      interval: { type: 'string', default: '10' },
      kind: { type: 'string', default: 'inflate' },
      size: { type: 'string', default: String(16 * MiB) },
      window: { type: 'string', default: '3' },
    },
  });
  const port = Number(values.port);
  process.on('SIGTERM', () => process.exit(0));
  if (positionals[0] === 'victims') await victimsRole(port, Number(values.count), Number(values.interval));
  else if (positionals[0] === 'attacker') await attackerRole(port, values.kind === 'text' ? 'text' : 'inflate', Number(values.size), Number(values.window));
  else {
    process.stderr.write('usage: attack-core.js victims|attacker --port P [...] (started by runAttack; see bench/attack.ts)\n');
    process.exit(2);
  }
}
