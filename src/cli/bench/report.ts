/** The outcome of a `duplex bench` run: the `--json` report, and its human-readable form. */
import type { Histogram } from './histogram.js';
import type { BenchOptions } from './options.js';

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

/** What a run counted over its measurement window. */
export interface Totals {
  /** Seconds measured. */
  seconds: number;
  sent: number;
  received: number;
  receivedBytes: number;
  /** Latencies of the messages received, µs. */
  latency: Histogram;
  opened: number;
  failed: number;
  errors: ErrorReport;
  interrupted: boolean;
}

/** The report of a run of `options` that counted `totals`. */
export function buildReport(options: BenchOptions, totals: Totals): BenchReport {
  const { seconds } = totals;
  const per = (n: number): number => (seconds > 0 ? n / seconds : 0);
  const ms = (us: number): number => Math.round(us) / 1000;
  const h = totals.latency;
  return {
    url: options.url,
    mode: options.mode,
    type: options.text ? 'text' : 'binary',
    size: options.size,
    window: options.window,
    connections: { requested: options.connections, opened: totals.opened, failed: totals.failed },
    warmupSeconds: options.warmup,
    seconds: Math.round(seconds * 1000) / 1000,
    sent: totals.sent,
    received: totals.received,
    expected: options.mode === 'echo' ? totals.sent : totals.sent * totals.opened,
    messagesPerSecond: Math.round(per(totals.received)),
    megabytesPerSecond: Math.round(per(totals.receivedBytes) / 1e4) / 100,
    sentPerSecond: Math.round(per(totals.sent)),
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
    errors: totals.errors,
    interrupted: totals.interrupted,
  };
}

/** A count with thousands separators. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** µs as milliseconds with 3 significant-ish digits. */
export function formatMs(us: number): string {
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
