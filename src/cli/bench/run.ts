/**
 * One run of `duplex bench`: open the connections, warm up, measure, drain, close. A message is
 * measured when it was sent inside the measurement window (after the warm-up, before the end),
 * wherever its answer arrives; answers still in flight at the end are awaited for a moment so
 * that sent and received match. How messages are sent is the mode's (echo.ts, broadcast.ts).
 */
import { performance } from 'node:perf_hooks';
import { CloseCode, State } from '../../protocol/constants.js';
import { BroadcastMode } from './broadcast.js';
import { EchoMode } from './echo.js';
import { ErrorTally } from './errors.js';
import { openWebSocket, parseTarget, type Target } from './handshake.js';
import { Histogram } from './histogram.js';
import { Phase, type Mode, type RunState } from './mode.js';
import type { BenchOptions } from './options.js';
import { makePayload, now, sentAt, sequenceOf, tick, unwrap } from './payload.js';
import { Peer, type PeerOwner } from './peer.js';
import { Progress, type ProgressSource } from './progress.js';
import { buildReport, type BenchReport } from './report.js';

/** Handshakes in progress at once. */
const CONNECT_CONCURRENCY = 256;
const HANDSHAKE_TIMEOUT = 10_000;
/** No new connection is started after this long: the run goes on with those open. */
const CONNECT_DEADLINE = 60_000;
/** How long to wait for answers still in flight when the time is up. */
const DRAIN_TIMEOUT = 2000;
/** How long to wait for the closing handshakes before dropping the sockets. */
const CLOSE_TIMEOUT = 2000;

class Run implements RunState, PeerOwner, ProgressSource {
  readonly target: Target;
  readonly payload: Uint8Array;
  readonly peers: Peer[] = [];
  live = 0;
  phase = Phase.Connecting;
  interrupted = false;
  private readonly mode: Mode;

  // The measurement window, in µs of the clock: a message counts when its send time is inside.
  private measureFrom = Infinity;
  private measureTo = Infinity;

  // Counters over the measurement window.
  private sent = 0;
  private received = 0;
  private receivedBytes = 0;
  private readonly latency = new Histogram();

  private readonly errors = new ErrorTally();
  failedConnections = 0;
  private readonly progress = new Progress(this);

  private stopRequested = false;
  private phaseDone: (() => void) | undefined;

  constructor(readonly options: BenchOptions) {
    this.target = parseTarget(options.url);
    this.payload = makePayload(options.size);
    this.mode = options.mode === 'echo' ? new EchoMode(this) : new BroadcastMode(this);
  }

  get errorCount(): number {
    return this.errors.report.total;
  }

  error(kind: 'protocol' | 'unexpectedClose' | 'unexpectedMessage', message: string): void {
    this.errors.count(kind, message);
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
      this.failedConnections++;
      this.errors.connectFailed(error as Error);
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
    this.progress.start(this.options.progress);
    try {
      await this.connectAll();
      if (this.live > 0 && !this.interrupted) {
        await this.load();
        await this.drain();
      }
      await this.closeAll();
    } finally {
      process.off('SIGINT', onSigint);
      this.progress.stop();
      this.phase = Phase.Done;
    }
  }

  /** Ctrl-C: stop sending now and report what was measured; a second one quits at once. */
  private interrupt(): void {
    if (this.stopRequested) process.exit(130);
    this.stopRequested = true;
    this.abort();
  }

  abort(): void {
    this.interrupted = true;
    this.endPhase();
  }

  endPhase(): void {
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
    if (options.warmup > 0) {
      this.phase = Phase.Warmup;
      this.mode.start();
      await this.wait(options.warmup * 1000);
      if (this.interrupted) return;
      this.measureFrom = tick() + 1; // messages stamped before now belong to the warm-up
      this.phase = Phase.Measuring;
    } else {
      this.measureFrom = now();
      this.phase = Phase.Measuring;
      this.mode.start();
    }
    await this.wait(options.duration * 1000);
    this.measureTo = tick();
    this.phase = Phase.Draining;
  }

  get sending(): boolean {
    return this.phase === Phase.Warmup || this.phase === Phase.Measuring;
  }

  private measured(stamp: number): boolean {
    return stamp >= this.measureFrom && stamp <= this.measureTo;
  }

  countSent(): void {
    if (this.measured(now())) this.sent++;
  }

  /** A message arrived: check that bench sent it, in order, and count it; the mode does the rest. */
  message(peer: Peer, data: Uint8Array, binary: boolean): void {
    if (this.phase >= Phase.Closing) return;
    const stamp = data.length === this.options.size && binary !== this.options.text ? sentAt(data) : -1;
    const seq = stamp < 0 ? -1 : sequenceOf(data);
    if (seq < 0) {
      this.error('unexpectedMessage', `a ${binary ? 'binary' : 'text'} message of ${data.length} bytes that bench did not send (expected ${this.options.text ? 'text' : 'binary'} of ${this.options.size})`);
      return;
    }
    const full = unwrap(seq, peer.expect);
    if (full !== peer.expect) {
      this.error('unexpectedMessage', `message ${full} arrived where ${peer.expect} was expected (lost or reordered)`);
    }
    peer.expect = full + 1;

    const latency = now() - stamp;
    this.progress.record(data.length, latency);
    if (this.measured(stamp)) {
      this.received++;
      this.receivedBytes += data.length;
      this.latency.record(latency);
    }
    this.mode.received(peer, full);
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
      this.mode.lost(peer);
      if (this.live === 0) this.abort();
    } else if (this.phase === Phase.Closing && this.live === 0) {
      this.endPhase();
    }
  }

  /** Wait (a little) for the answers to messages already sent. */
  private async drain(): Promise<void> {
    this.phase = Phase.Draining;
    if (this.measureTo === Infinity) this.measureTo = tick();
    if (this.mode.pending && this.live > 0) await this.wait(DRAIN_TIMEOUT);
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

  report(): BenchReport {
    const seconds = this.measureFrom === Infinity || this.measureTo === Infinity ? 0 : Math.max(0, this.measureTo - this.measureFrom) / 1e6;
    return buildReport(this.options, {
      seconds,
      sent: this.sent,
      received: this.received,
      receivedBytes: this.receivedBytes,
      latency: this.latency,
      opened: this.peers.length,
      failed: this.failedConnections,
      errors: this.errors.report,
      interrupted: this.interrupted,
    });
  }
}

/** Run a benchmark and return its report (the library-level entry point of the command). */
export async function bench(options: BenchOptions): Promise<BenchReport> {
  const run = new Run(options);
  await run.execute();
  return run.report();
}
