/**
 * `duplex bench URL`: a load generator for any WebSocket server (duplex, `ws`, or anything
 * else that echoes or broadcasts). Each connection is a raw socket driven by the sans-I/O
 * engine (`Connection`, side 'client'), not a `WebSocket` object, so one process pushes as hard
 * as it can: one shared payload buffer, small frames written into the engine's arena, one write
 * per connection per event-loop pass.
 *
 * Every message carries its send time and a sequence number, in ASCII so text mode works too:
 *   bytes 0–11: send time, µs since this process started, 12 hex digits
 *   bytes 12–19: sequence number (per connection in echo mode, of the sender in broadcast), 8 hex digits
 *   the rest: filler up to --size.
 * A message is measured when it was sent inside the measurement window (after the warm-up,
 * before the end), wherever its answer arrives; answers still in flight at the end are awaited
 * for a moment so that sent and received match.
 *
 * echo: every connection keeps --window messages in flight; latency is the round trip.
 * broadcast: connection 0 sends, keeping --window messages in flight until every other
 * connection has received them; every connection (the sender too, if the server sends it a
 * copy) counts deliveries and their latency from the embedded send time.
 */
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { Connection, type ConnectionHandler } from '../protocol/connection.js';
import { CloseCode, State } from '../protocol/constants.js';
import { HandshakeError, type ProtocolError } from '../protocol/errors.js';
import { openWebSocket, parseTarget, type Target } from './bench-handshake.js';
import { Histogram } from './histogram.js';
import { UsageError, type Parsed } from './main.js';

/** What to run. */
export interface BenchOptions {
  url: string;
  mode: 'echo' | 'broadcast';
  connections: number;
  /** Payload bytes per message (at least `HEADER_SIZE`). */
  size: number;
  /** Messages in flight per connection (echo) or from the sender (broadcast). */
  window: number;
  /** Seconds measured, after the warm-up. */
  duration: number;
  /** Seconds of load before measuring. */
  warmup: number;
  text: boolean;
  /** Print a progress line to stderr once a second. */
  progress: boolean;
}

/** The limits of the flags. */
export const LIMITS = {
  connections: 20_000,
  size: 16 * 1024 * 1024,
  window: 10_000,
  duration: 3600,
  warmup: 600,
} as const;

/** Bytes of send time and sequence number at the start of every payload. */
export const HEADER_SIZE = 20;
const TS_DIGITS = 12;
const SEQ_DIGITS = 8;

/** Handshakes in progress at once. */
const CONNECT_CONCURRENCY = 256;
const HANDSHAKE_TIMEOUT = 10_000;
/** No new connection is started after this long: the run goes on with those open. */
const CONNECT_DEADLINE = 60_000;
/** How long to wait for answers still in flight when the time is up. */
const DRAIN_TIMEOUT = 2000;
/** How long to wait for the closing handshakes before dropping the sockets. */
const CLOSE_TIMEOUT = 2000;
/** Distinct error messages kept for the report. */
const MAX_EXAMPLES = 8;

/** Latency figures, in milliseconds. */
export interface LatencyReport {
  samples: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Everything that went wrong, by kind. */
export interface ErrorReport {
  total: number;
  /** Refused or invalid handshakes by HTTP status ("0": no valid HTTP answer, e.g. a timeout). */
  handshake: Record<string, number>;
  /** Connections that could not be made, by error code (ECONNREFUSED, EMFILE, …). */
  connect: Record<string, number>;
  /** Protocol errors detected in what the server sent (the engine failed the connection). */
  protocol: number;
  /** Connections closed by the server or the network before the end of the run. */
  unexpectedClose: number;
  /** Messages that bench did not send, or that came back out of order or altered. */
  unexpectedMessage: number;
  /** Up to 8 distinct messages, with how often each happened. */
  examples: Array<{ message: string; count: number }>;
}

/** The outcome of a run, as printed by `--json`. */
export interface BenchReport {
  url: string;
  mode: 'echo' | 'broadcast';
  type: 'text' | 'binary';
  size: number;
  window: number;
  connections: { requested: number; opened: number; failed: number };
  warmupSeconds: number;
  /** Seconds actually measured (shorter than asked if the run was interrupted). */
  seconds: number;
  /** Messages sent inside the measurement window. */
  sent: number;
  /** Their answers (echo) or deliveries (broadcast) received. */
  received: number;
  /** What `received` would be with nothing lost: `sent` (echo), `sent × opened connections` (broadcast). */
  expected: number;
  messagesPerSecond: number;
  /** Payload megabytes (10^6 bytes) received per second. */
  megabytesPerSecond: number;
  /** Messages sent per second (the sender's rate in broadcast mode). */
  sentPerSecond: number;
  latencyMs: LatencyReport;
  errors: ErrorReport;
  /** Whether the run was cut short (Ctrl-C, or every connection or the sender was lost). */
  interrupted: boolean;
}

// ---- the clock and the payload -------------------------------------------------------------

/** The time in whole µs, read once per event-loop callback (messages in one chunk arrived together). */
let clock = 0;
function tick(): number {
  clock = Math.round(performance.now() * 1000);
  return clock;
}

const HEX = new Uint8Array(16);
for (let i = 0; i < 16; i++) HEX[i] = '0123456789abcdef'.charCodeAt(i);

function writeHex(target: Uint8Array, at: number, value: number, digits: number): void {
  for (let i = digits - 1; i >= 0; i--) {
    target[at + i] = HEX[value % 16];
    value = Math.floor(value / 16);
  }
}

/** The hex number at `at`, or -1 when a byte is not a lower-case hex digit. */
function readHex(source: Uint8Array, at: number, digits: number): number {
  let value = 0;
  for (let i = 0; i < digits; i++) {
    const c = source[at + i];
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    value = value * 16 + d;
  }
  return value;
}

/** The number congruent to `seq32` modulo 2^32 nearest to `near` (sequence numbers travel as 32 bits). */
function unwrap(seq32: number, near: number): number {
  let delta = (seq32 - near) % 2 ** 32;
  if (delta < -(2 ** 31)) delta += 2 ** 32;
  else if (delta >= 2 ** 31) delta -= 2 ** 32;
  return near + delta;
}

function makePayload(size: number): Uint8Array {
  const payload = new Uint8Array(size);
  const filler = ' duplex bench ';
  for (let i = HEADER_SIZE; i < size; i++) payload[i] = filler.charCodeAt((i - HEADER_SIZE) % filler.length);
  return payload;
}

// ---- connections ---------------------------------------------------------------------------

/** Connections with bytes queued, written once the current callback is done. */
const dirty: Peer[] = [];
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  for (let i = 0; i < dirty.length; i++) dirty[i].flush();
  dirty.length = 0;
}

/** One benchmark connection: a socket, the engine, and the sequence bookkeeping. */
class Peer implements ConnectionHandler {
  readonly conn: Connection;
  /** Next sequence number to send (echo). */
  seq = 0;
  /** Next sequence number expected back (echo) or delivered (broadcast). */
  expect = 0;
  /** Messages sent and not answered yet (echo). */
  inFlight = 0;
  isDirty = false;
  closed = false;
  /** The engine failed the connection (already counted as a protocol error). */
  failed = false;
  /** The close frame the server sent, or the socket error, for the report. */
  closeDetail = '';

  constructor(
    readonly run: Run,
    readonly socket: Socket,
  ) {
    this.conn = new Connection({ side: 'client', maxMessageSize: Math.max(run.options.size * 2, 1 << 20) }, this);
  }

  start(head: Buffer): void {
    const socket = this.socket;
    socket.on('data', (chunk: Buffer) => {
      tick();
      this.conn.receiveData(chunk);
      if (this.conn.hasDataToSend) this.markDirty();
    });
    socket.on('end', () => this.conn.receiveEof());
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!this.closeDetail) this.closeDetail = error.code ?? error.message;
    });
    socket.on('close', () => this.run.peerClosed(this));
    if (head.length > 0) {
      tick();
      this.conn.receiveData(head);
      if (this.conn.hasDataToSend) this.markDirty();
    }
  }

  markDirty(): void {
    if (this.isDirty) return;
    this.isDirty = true;
    dirty.push(this);
    if (!flushScheduled) {
      flushScheduled = true;
      queueMicrotask(flushAll);
    }
  }

  flush(): void {
    this.isDirty = false;
    const chunks = this.conn.dataToSend();
    if (this.socket.destroyed) return;
    for (let i = 0; i < chunks.length; i++) this.socket.write(chunks[i]);
    if (this.conn.shouldCloseTransport) this.socket.end();
  }

  /** Send the shared payload stamped with the time and `seq`. */
  send(payload: Uint8Array, seq: number, text: boolean): void {
    writeHex(payload, 0, clock, TS_DIGITS);
    writeHex(payload, TS_DIGITS, seq, SEQ_DIGITS);
    // The engine copies (and masks) the payload into its own buffer, so it can be reused at once.
    if (text) this.conn.sendText(payload);
    else this.conn.sendBinary(payload);
    this.markDirty();
  }

  onMessage(data: Uint8Array, binary: boolean): void {
    this.run.message(this, data, binary);
  }
  onPing(): void {
    this.markDirty(); // the engine queued the pong
  }
  onPong(): void {}
  onClose(code: number, reason: string): void {
    if (!this.closeDetail) this.closeDetail = `server sent close ${code}${reason ? ` ${reason}` : ''}`;
    this.markDirty(); // the engine queued the answering close frame
  }
  onProtocolError(error: ProtocolError): void {
    this.run.error('protocol', `protocol error from the server: ${error.message} (${error.code})`);
    this.failed = true;
    this.markDirty();
  }
}

// ---- the run ---------------------------------------------------------------------------------

const enum Phase {
  Connecting,
  Warmup,
  Measuring,
  Draining,
  Closing,
  Done,
}

class Run {
  readonly target: Target;
  readonly payload: Uint8Array;
  readonly peers: Peer[] = [];
  live = 0;
  phase = Phase.Connecting;
  interrupted = false;

  // The measurement window, in µs of `clock`: a message counts when its send time is inside.
  private measureFrom = Infinity;
  private measureTo = Infinity;
  private startedAt = 0;

  // Counters over the measurement window.
  sent = 0;
  received = 0;
  receivedBytes = 0;
  readonly latency = new Histogram();

  // Counters since the last progress line (everything, warm-up included).
  private tickReceived = 0;
  private tickBytes = 0;
  private readonly tickLatency = new Histogram();
  private lastTick = 0;

  // Echo: answers outstanding over all connections.
  private inFlight = 0;

  // Broadcast: the sender's sequence numbers; a ring of deliveries still awaited per message.
  private sender: Peer | undefined;
  private nextSeq = 0;
  private doneSeq = 0;
  private remaining: Int32Array;
  private receivers = 0;

  readonly errors: ErrorReport = { total: 0, handshake: {}, connect: {}, protocol: 0, unexpectedClose: 0, unexpectedMessage: 0, examples: [] };
  failedConnections = 0;

  private progressTimer: NodeJS.Timeout | undefined;
  private progressShown = false;
  private stopRequested = false;
  private phaseDone: (() => void) | undefined;

  constructor(readonly options: BenchOptions) {
    this.target = parseTarget(options.url);
    this.payload = makePayload(options.size);
    this.remaining = new Int32Array(options.window);
  }

  error(kind: 'protocol' | 'unexpectedClose' | 'unexpectedMessage', message: string): void {
    this.errors[kind]++;
    this.noteError(message);
  }

  private noteError(message: string): void {
    this.errors.total++;
    const known = this.errors.examples.find((e) => e.message === message);
    if (known) known.count++;
    else if (this.errors.examples.length < MAX_EXAMPLES) this.errors.examples.push({ message, count: 1 });
  }

  private connectFailed(error: Error): void {
    this.failedConnections++;
    if (error instanceof HandshakeError) {
      const status = String(error.status);
      this.errors.handshake[status] = (this.errors.handshake[status] ?? 0) + 1;
      this.noteError(`handshake failed: ${error.message}`);
    } else {
      const code = (error as NodeJS.ErrnoException).code ?? 'ERROR';
      this.errors.connect[code] = (this.errors.connect[code] ?? 0) + 1;
      const hint = code === 'EMFILE' ? ' (raise the open-file limit: ulimit -n)' : '';
      this.noteError(`${error.message}${hint}`);
    }
  }

  private async openOne(): Promise<boolean> {
    try {
      const { socket, head } = await openWebSocket(this.target, HANDSHAKE_TIMEOUT);
      if (this.interrupted) {
        socket.destroy();
        return false;
      }
      const peer = new Peer(this, socket);
      this.peers.push(peer);
      this.live++;
      peer.start(head);
      return true;
    } catch (error) {
      this.connectFailed(error as Error);
      return false;
    }
  }

  /** Open the connections: one first (a failure there ends the run), then the rest, 256 at a time. */
  private async connectAll(): Promise<void> {
    if (!(await this.openOne())) return;
    let next = 1;
    const deadline = performance.now() + CONNECT_DEADLINE;
    const worker = async (): Promise<void> => {
      while (next < this.options.connections && !this.interrupted && performance.now() < deadline) {
        next++;
        await this.openOne();
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, this.options.connections - 1) }, worker));
  }

  /** Run to the end; resolves once every socket is closed. */
  async execute(): Promise<void> {
    const onSigint = (): void => this.interrupt();
    process.on('SIGINT', onSigint);
    this.startedAt = performance.now();
    this.lastTick = this.startedAt;
    if (this.options.progress) this.progressTimer = setInterval(() => this.progress(), 1000);
    try {
      await this.connectAll();
      if (this.live > 0 && !this.interrupted) {
        await this.load();
        await this.drain();
      }
      await this.closeAll();
    } finally {
      process.off('SIGINT', onSigint);
      clearInterval(this.progressTimer);
      this.phase = Phase.Done;
      if (this.progressShown && process.stderr.isTTY) process.stderr.write('\n'); // keep the last progress line
    }
  }

  /** Ctrl-C: stop sending now and report what was measured; a second one quits at once. */
  private interrupt(): void {
    if (this.stopRequested) process.exit(130);
    this.stopRequested = true;
    this.interrupted = true;
    this.endPhase();
  }

  private endPhase(): void {
    const done = this.phaseDone;
    this.phaseDone = undefined;
    done?.();
  }

  /** Wait `ms`, or less if `endPhase` is called first. */
  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.endPhase(), ms);
      this.phaseDone = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Warm up, then measure, with every connection sending. */
  private async load(): Promise<void> {
    const { options } = this;
    tick();
    if (options.mode === 'broadcast') {
      this.sender = this.peers.find((peer) => !peer.closed);
      this.receivers = this.live - 1;
    }
    if (options.warmup > 0) {
      this.phase = Phase.Warmup;
      this.startSending();
      await this.wait(options.warmup * 1000);
      if (this.interrupted) return;
      this.measureFrom = tick() + 1; // messages stamped before now belong to the warm-up
      this.phase = Phase.Measuring;
    } else {
      this.measureFrom = clock;
      this.phase = Phase.Measuring;
      this.startSending();
    }
    await this.wait(options.duration * 1000);
    this.measureTo = tick();
    this.phase = Phase.Draining;
  }

  private startSending(): void {
    if (this.options.mode === 'echo') {
      for (const peer of this.peers) {
        if (peer.closed) continue;
        for (let i = 0; i < this.options.window; i++) this.sendEcho(peer);
      }
    } else {
      this.pumpBroadcast();
    }
  }

  private get sending(): boolean {
    return this.phase === Phase.Warmup || this.phase === Phase.Measuring;
  }

  private measured(stamp: number): boolean {
    return stamp >= this.measureFrom && stamp <= this.measureTo;
  }

  private sendEcho(peer: Peer): void {
    if (peer.conn.state !== State.Open || peer.conn.closing) return;
    peer.send(this.payload, peer.seq, this.options.text);
    peer.seq++;
    peer.inFlight++;
    this.inFlight++;
    if (this.measured(clock)) this.sent++;
  }

  private pumpBroadcast(): void {
    const sender = this.sender!;
    const window = this.options.window;
    while (this.sending && this.nextSeq - this.doneSeq < window && sender.conn.state === State.Open && !sender.conn.closing) {
      // Done when every other connection has it; alone, when the sender gets its own copy.
      this.remaining[this.nextSeq % window] = this.receivers || 1;
      sender.send(this.payload, this.nextSeq, this.options.text);
      this.nextSeq++;
      if (this.measured(clock)) this.sent++;
    }
  }

  /** Broadcast message `seq` reached one more receiver (or lost one): advance the window. */
  private delivered(seq: number): void {
    const window = this.options.window;
    if (seq < this.doneSeq || seq >= this.nextSeq) return;
    this.remaining[seq % window]--;
    while (this.doneSeq < this.nextSeq && this.remaining[this.doneSeq % window] <= 0) this.doneSeq++;
    if (this.sending) this.pumpBroadcast();
    else if (this.phase === Phase.Draining && this.doneSeq === this.nextSeq) this.endPhase();
  }

  message(peer: Peer, data: Uint8Array, binary: boolean): void {
    if (this.phase >= Phase.Closing) return;
    const stamp = data.length === this.options.size && binary !== this.options.text ? readHex(data, 0, TS_DIGITS) : -1;
    const seq = stamp < 0 ? -1 : readHex(data, TS_DIGITS, SEQ_DIGITS);
    if (seq < 0) {
      this.error('unexpectedMessage', `a ${binary ? 'binary' : 'text'} message of ${data.length} bytes that bench did not send (expected ${this.options.text ? 'text' : 'binary'} of ${this.options.size})`);
      return;
    }
    const broadcast = this.options.mode === 'broadcast';
    const full = unwrap(seq, peer.expect);
    if (full !== peer.expect) {
      this.error('unexpectedMessage', `message ${full} arrived where ${peer.expect} was expected (lost or reordered)`);
    }
    peer.expect = full + 1;

    const latency = clock - stamp;
    this.tickReceived++;
    this.tickBytes += data.length;
    this.tickLatency.record(latency);
    if (this.measured(stamp)) {
      this.received++;
      this.receivedBytes += data.length;
      this.latency.record(latency);
    }

    if (broadcast) {
      if (peer !== this.sender || this.receivers === 0) this.delivered(full);
      return;
    }
    if (peer.inFlight > 0) {
      peer.inFlight--;
      this.inFlight--;
    }
    if (this.sending) this.sendEcho(peer);
    else if (this.phase === Phase.Draining && this.inFlight === 0) this.endPhase();
  }

  /** A socket closed: before the closing phase that is an error; keep the bookkeeping whole. */
  peerClosed(peer: Peer): void {
    if (peer.closed) return;
    peer.closed = true;
    this.live--;
    if (this.phase < Phase.Closing) {
      tick();
      const detail = peer.closeDetail || (peer.conn.closeCode !== CloseCode.AbnormalClosure ? `close ${peer.conn.closeCode}` : 'connection reset');
      if (!peer.failed) this.error('unexpectedClose', `the server closed a connection during the run: ${detail}`);
      this.inFlight -= peer.inFlight;
      peer.inFlight = 0;
      if (this.options.mode === 'broadcast' && this.phase > Phase.Connecting) {
        if (peer === this.sender) {
          this.interrupted = true;
          this.endPhase();
        } else {
          // It will never get the messages it has not received yet: stop waiting for it.
          this.receivers--;
          const end = this.nextSeq;
          for (let seq = Math.max(peer.expect, this.doneSeq); seq < end; seq++) this.delivered(seq);
        }
      }
      if (this.live === 0) {
        this.interrupted = true;
        this.endPhase();
      } else if (this.phase === Phase.Draining && this.options.mode === 'echo' && this.inFlight === 0) {
        this.endPhase();
      }
    } else if (this.phase === Phase.Closing && this.live === 0) {
      this.endPhase();
    }
  }

  /** Wait (a little) for the answers to messages already sent. */
  private async drain(): Promise<void> {
    this.phase = Phase.Draining;
    if (this.measureTo === Infinity) this.measureTo = tick();
    const pending = this.options.mode === 'echo' ? this.inFlight > 0 : this.nextSeq > this.doneSeq;
    if (pending && this.live > 0) await this.wait(DRAIN_TIMEOUT);
  }

  /** Close every connection with 1000 and wait for the server's answer, then drop what is left. */
  private async closeAll(): Promise<void> {
    this.phase = Phase.Closing;
    for (const peer of this.peers) {
      if (peer.closed) continue;
      if (peer.conn.state === State.Open && !peer.conn.closing) {
        peer.conn.sendClose(CloseCode.NormalClosure, 'bench done');
        peer.markDirty();
      }
    }
    if (this.live > 0) await this.wait(CLOSE_TIMEOUT);
    for (const peer of this.peers) if (!peer.closed) peer.socket.destroy();
  }

  private progress(): void {
    const now = performance.now();
    const seconds = (now - this.lastTick) / 1000;
    this.lastTick = now;
    let line: string;
    if (this.phase === Phase.Connecting) {
      line = `connecting: ${this.live}/${this.options.connections} open, ${this.failedConnections} failed`;
    } else {
      const elapsed = Math.round((now - this.startedAt) / 1000);
      const label = this.phase === Phase.Warmup ? 'warm-up' : this.phase === Phase.Measuring ? 'measuring' : 'finishing';
      line =
        `${String(elapsed).padStart(4)}s ${label}: ${formatCount(this.tickReceived / seconds)} msg/s, ${(this.tickBytes / seconds / 1e6).toFixed(2)} MB/s, ` +
        `p50 ${formatMs(this.tickLatency.percentile(50))}, p99 ${formatMs(this.tickLatency.percentile(99))}; ${this.live} open, ${this.errors.total} errors`;
    }
    this.tickLatency.reset();
    this.tickReceived = 0;
    this.tickBytes = 0;
    this.progressShown = true;
    process.stderr.write(process.stderr.isTTY ? `\r${line}\x1b[K` : `${line}\n`);
  }

  report(): BenchReport {
    const { options } = this;
    const seconds = this.measureFrom === Infinity || this.measureTo === Infinity ? 0 : Math.max(0, this.measureTo - this.measureFrom) / 1e6;
    const per = (n: number): number => (seconds > 0 ? n / seconds : 0);
    const ms = (us: number): number => Math.round(us) / 1000;
    const h = this.latency;
    return {
      url: options.url,
      mode: options.mode,
      type: options.text ? 'text' : 'binary',
      size: options.size,
      window: options.window,
      connections: { requested: options.connections, opened: this.peers.length, failed: this.failedConnections },
      warmupSeconds: options.warmup,
      seconds: Math.round(seconds * 1000) / 1000,
      sent: this.sent,
      received: this.received,
      expected: options.mode === 'echo' ? this.sent : this.sent * this.peers.length,
      messagesPerSecond: Math.round(per(this.received)),
      megabytesPerSecond: Math.round(per(this.receivedBytes) / 1e4) / 100,
      sentPerSecond: Math.round(per(this.sent)),
      latencyMs: {
        samples: h.count,
        min: ms(h.count ? h.min : 0),
        mean: ms(h.mean),
        p50: ms(h.percentile(50)),
        p90: ms(h.percentile(90)),
        p99: ms(h.percentile(99)),
        p999: ms(h.percentile(99.9)),
        max: ms(h.max),
      },
      errors: this.errors,
      interrupted: this.interrupted,
    };
  }
}

// ---- formatting ----------------------------------------------------------------------------

function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** µs as milliseconds with 3 significant-ish digits. */
function formatMs(us: number): string {
  const ms = us / 1000;
  return `${ms < 10 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
}

/** The human-readable report. */
export function formatReport(r: BenchReport): string {
  const l = r.latencyMs;
  const ms = (v: number): string => formatMs(v * 1000);
  const lines = [
    `duplex bench ${r.url}: ${r.mode}, ${r.connections.opened} connections, ${r.size} B ${r.type} messages, window ${r.window}, ` +
      `${r.seconds} s measured${r.warmupSeconds ? ` after ${r.warmupSeconds} s warm-up` : ''}${r.interrupted ? ' (interrupted)' : ''}`,
    `  connections  ${r.connections.opened} opened, ${r.connections.failed} failed (of ${r.connections.requested})`,
    r.mode === 'echo'
      ? `  messages     ${formatCount(r.sent)} sent, ${formatCount(r.received)} echoed`
      : `  messages     ${formatCount(r.sent)} sent, ${formatCount(r.received)} delivered (of ${formatCount(r.expected)} expected), ${formatCount(r.sentPerSecond)} sent/s`,
    `  throughput   ${formatCount(r.messagesPerSecond)} msg/s, ${r.megabytesPerSecond.toFixed(2)} MB/s received`,
    `  latency      p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p999)}  max ${ms(l.max)}  (mean ${ms(l.mean)}, ${formatCount(l.samples)} samples)`,
    `  errors       ${r.errors.total}${errorSummary(r.errors)}`,
  ];
  for (const e of r.errors.examples) lines.push(`    ${e.count} × ${e.message}`);
  return lines.join('\n') + '\n';
}

function errorSummary(e: ErrorReport): string {
  const parts: string[] = [];
  for (const [status, n] of Object.entries(e.handshake)) parts.push(`${n} handshake ${status === '0' ? 'failures' : `refused with ${status}`}`);
  for (const [code, n] of Object.entries(e.connect)) parts.push(`${n} ${code}`);
  if (e.protocol) parts.push(`${e.protocol} protocol errors`);
  if (e.unexpectedClose) parts.push(`${e.unexpectedClose} unexpected closes`);
  if (e.unexpectedMessage) parts.push(`${e.unexpectedMessage} unexpected messages`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

// ---- the command ---------------------------------------------------------------------------

function numberFlag(value: unknown, name: string, fallback: number, min: number, max: number, integer: boolean): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got "${String(value)}"`);
  }
  return n;
}

/** Check the flags of `duplex bench`; throws a `UsageError` for anything wrong. */
export function benchOptions({ values, positionals }: Parsed): BenchOptions & { json: boolean } {
  const url = positionals[0];
  if (!url) throw new UsageError('bench needs a URL, e.g. duplex bench ws://127.0.0.1:8080/');
  if (positionals.length > 1) throw new UsageError(`bench takes one URL, got ${positionals.length} arguments`);
  try {
    parseTarget(url);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const mode = values.mode ?? 'echo';
  if (mode !== 'echo' && mode !== 'broadcast') throw new UsageError(`--mode must be echo or broadcast, got "${String(mode)}"`);
  if (values.text === true && values.binary === true) throw new UsageError('choose one of --text and --binary');
  return {
    url,
    mode,
    connections: numberFlag(values.connections, 'connections', 10, 1, LIMITS.connections, true),
    size: numberFlag(values.size, 'size', 64, HEADER_SIZE, LIMITS.size, true),
    window: numberFlag(values.window, 'window', 1, 1, LIMITS.window, true),
    duration: numberFlag(values.duration, 'duration', 10, 0.1, LIMITS.duration, false),
    warmup: numberFlag(values.warmup, 'warmup', 1, 0, LIMITS.warmup, false),
    text: values.text === true,
    json: values.json === true,
    progress: values.json !== true,
  };
}

/** Run a benchmark and return its report (the library-level entry point of the command). */
export async function bench(options: BenchOptions): Promise<BenchReport> {
  const run = new Run(options);
  await run.execute();
  return run.report();
}

export async function benchCommand(parsed: Parsed): Promise<number> {
  const { json, ...options } = benchOptions(parsed);
  const report = await bench(options);
  if (json) process.stdout.write(JSON.stringify(report) + '\n');
  else if (report.connections.opened > 0) process.stdout.write(formatReport(report));
  if (report.connections.opened === 0) {
    const reason = report.errors.examples[0]?.message ?? 'no connection was opened';
    process.stderr.write(`duplex bench: could not connect to ${options.url}: ${reason}\n`);
    return 1;
  }
  return 0;
}
