/**
 * The progress line of `duplex bench`, once a second on stderr: rewritten in place on a
 * terminal, one line each otherwise. Counts everything since the last line, warm-up included.
 */
import { performance } from 'node:perf_hooks';
import { Histogram } from './histogram.js';
import { Phase } from './mode.js';
import { formatCount, formatMs } from './report.js';

/** What the line shows of the run. */
export interface ProgressSource {
  readonly phase: Phase;
  /** Connections open, asked for, and failed to open. */
  readonly live: number;
  readonly options: { readonly connections: number };
  readonly failedConnections: number;
  readonly errorCount: number;
}

export class Progress {
  private received = 0;
  private bytes = 0;
  private readonly latency = new Histogram();
  private startedAt = 0;
  private last = 0;
  private timer: NodeJS.Timeout | undefined;
  private shown = false;

  constructor(private readonly run: ProgressSource) {}

  /** The run starts: lines from now on, once a second, if `enabled`. */
  start(enabled: boolean): void {
    this.startedAt = performance.now();
    this.last = this.startedAt;
    if (enabled) this.timer = setInterval(() => this.line(), 1000);
  }

  /** A message of `bytes` arrived, `latency` µs after it was sent. */
  record(bytes: number, latency: number): void {
    this.received++;
    this.bytes += bytes;
    this.latency.record(latency);
  }

  /** The run is over: no more lines; the last one stays on screen. */
  stop(): void {
    clearInterval(this.timer);
    if (this.shown && process.stderr.isTTY) process.stderr.write('\n');
  }

  private line(): void {
    const run = this.run;
    const now = performance.now();
    const seconds = (now - this.last) / 1000;
    this.last = now;
    let line: string;
    if (run.phase === Phase.Connecting) {
      line = `connecting: ${run.live}/${run.options.connections} open, ${run.failedConnections} failed`;
    } else {
      const elapsed = Math.round((now - this.startedAt) / 1000);
      const label = run.phase === Phase.Warmup ? 'warm-up' : run.phase === Phase.Measuring ? 'measuring' : 'finishing';
      line =
        `${String(elapsed).padStart(4)}s ${label}: ${formatCount(this.received / seconds)} msg/s, ${(this.bytes / seconds / 1e6).toFixed(2)} MB/s, ` +
        `p50 ${formatMs(this.latency.percentile(50))}, p99 ${formatMs(this.latency.percentile(99))}; ${run.live} open, ${run.errorCount} errors`;
    }
    this.latency.reset();
    this.received = 0;
    this.bytes = 0;
    this.shown = true;
    process.stderr.write(process.stderr.isTTY ? `\r${line}\x1b[K` : `${line}\n`);
  }
}
