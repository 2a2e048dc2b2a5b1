// The hub soak's options (every role parses the same command line) and the messages its three
// processes exchange over IPC.
import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, numberArg } from './soak-args.js';
import type { ProcessSample } from './soak-probe.js';

const { values } = parseArgs({
  options: {
    ...COMMON_OPTIONS,
    topics: { type: 'string', default: '100' },
    rate: { type: 'string', default: '1000' },
    publishers: { type: 'string', default: '10' },
    payload: { type: 'string', default: '1000' },
    'slow-pct': { type: 'string', default: '5' },
    'slow-read': { type: 'string', default: '2048' },
    'slow-reconnect-ms': { type: 'string', default: '1000' },
    'max-buffered-kib': { type: 'string', default: '128' },
    'slow-policy': { type: 'string', default: 'close' },
    'tcp-buffer-kib': { type: 'string', default: '64' },
    'drain-seconds': { type: 'string', default: '30' },
    'no-netns': { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
  strict: true,
});

const num = (name: keyof typeof values, min: number): number => numberArg(name, values[name], min);

function policy(): 'close' | 'drop' {
  const raw = values['slow-policy'];
  if (raw === 'close' || raw === 'drop') return raw;
  process.stderr.write(`--slow-policy must be close or drop (got ${String(raw)})\n`);
  process.exit(2);
}

/** The workload and the run, as every role reads them. */
export const config = {
  role: values.role ?? 'main',
  port: num('port', 0),
  connections: num('connections', 1),
  topics: num('topics', 1),
  /** Publishes per second, all topics together. */
  rate: num('rate', 1),
  /** Publisher connections (each publishes to the topics `t ≡ its index (mod publishers)`). */
  publishers: num('publishers', 1),
  /** Bytes of `data` per publication: a JSON string holding the send time and the topic's sequence number, then filler. */
  payload: Math.max(num('payload', 20), 20),
  minutes: num('minutes', 0.05),
  sampleSeconds: num('sample-seconds', 1),
  /** Share of the subscribers that read slowly, %. */
  slowPct: num('slow-pct', 0),
  /** Bytes per second a slow subscriber reads. */
  slowRead: num('slow-read', 1),
  /** ms a slow subscriber waits after its connection ended before it connects again (negative: never). */
  slowReconnectMs: Number(values['slow-reconnect-ms']),
  /** The server's `maxBufferedAmount`, bytes. */
  maxBuffered: num('max-buffered-kib', 1) * 1024,
  slowPolicy: policy(),
  /** The namespace's TCP buffer ceiling (tcp_wmem and tcp_rmem max), bytes. */
  tcpBuffer: num('tcp-buffer-kib', 4) * 1024,
  drainSeconds: num('drain-seconds', 1),
  openRate: num('open-rate', 1),
  openConcurrency: num('open-concurrency', 1),
  forceGc: !values['no-gc'],
  presence: !values['no-presence'],
  pin: !values['no-pin'],
  netns: !values['no-netns'],
  json: values.json ?? false,
  out: values.out,
  svg: values.svg,
  /** Write V8 CPU profiles of the server and the load into this directory (`--cpu-prof`). */
  profile: values.profile,
  help: values.help ?? false,
} as const;

export type Config = typeof config;

/**
 * Whether subscriber `index` (on topic index mod T, the rank-th there) is one of the slow ones:
 * every (100 / slowPct)-th subscriber counted topic by topic, so the share is right overall and
 * spread over the topics (5 in each of 100 topics at 10,000; one in every other topic at 1,000).
 */
export function isSlow(index: number): boolean {
  if (config.slowPct <= 0) return false;
  const perTopic = Math.ceil(config.connections / config.topics);
  const j = (index % config.topics) * perTopic + Math.floor(index / config.topics);
  return j % Math.max(1, Math.round(100 / config.slowPct)) === 0;
}

// ---- server → orchestrator ------------------------------------------------------------------------

/** Min, median and max of some byte counts ([0, 0, 0] when there were none). */
export type Spread = [min: number, median: number, max: number];

/** What the server did to its connections, from its own log lines. */
export interface PolicySample {
  /**
   * Log lines so far (info and up, the server's and the hub's), by message, with the bytes that
   * were buffered for the line's connection when it was logged (before a close released them).
   */
  logs: Record<string, { count: number; buffered: Spread }>;
  /** Slow-consumer closes so far (the policy's warn lines). */
  slowConsumerCloses: number;
  /** Keepalive closes so far ("no pong within … ms: closing"). */
  keepaliveCloses: number;
  /** Every close so far, by code (the server's counters). */
  closeCodes: Record<number, number>;
}

export interface HubServerSample extends ProcessSample, PolicySample {
  connections: number;
  connectionsTotal: number;
  messagesIn: number;
  messagesOut: number;
  bytesOut: number;
  /** Sends refused by the slow-consumer policy (one per close, or every dropped message with 'drop'). */
  dropped: number;
  publications: number;
  deliveries: number;
  gaps: number;
  serverErrors: number;
  /** Bytes waiting in the process (not yet in the kernel), all connections; the largest; connections above half the ceiling. */
  bufferedTotal: number;
  bufferedMax: number;
  bufferedOverHalf: number;
}

// ---- load → orchestrator --------------------------------------------------------------------------

/** Delivery latency of one sample interval (or of the whole run), ms. */
export interface Latency {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export interface HubLoadSample {
  /** Subscribers subscribed (their reply arrived), healthy and slow. */
  healthyOpen: number;
  slowOpen: number;
  publishing: boolean;
  /** Publishes sent and acknowledged so far; errors answered to publishes. */
  published: number;
  acked: number;
  publishErrors: number;
  /** Publishes behind the schedule (the load could not send them in time). */
  publishBacklog: number;
  /** Healthy subscribers: messages in order so far, and the faults of the sequence check. */
  delivered: number;
  missing: number;
  duplicates: number;
  /** Healthy subscribers closed by anyone but us: must stay 0. */
  healthyClosed: number;
  /** Healthy subscribers' delivery latency in this interval. */
  latency: Latency;
  /** Slow subscribers: messages and bytes read, their lag (now − publish time of what they read), how their connections ended. */
  slowMessages: number;
  slowBytes: number;
  slowLagMax: number;
  slowLagP50: number;
  slowMissing: number;
  slowEnded: Record<string, number>;
  slowReconnects: number;
  presence: number;
  hubErrors: number;
  gaps: number;
  openFailed: number;
  firstErrors: string[];
  rss: number;
  eldP99: number;
  /** CPU of the load process in this interval, % of one core. */
  cpuPct: number;
}

/** The load's last word, after the publishers stopped and the deliveries drained. */
export interface HubLoadFinal extends HubLoadSample {
  /** Over the healthy subscribers: Σ acknowledged publications of their topic, and Σ delivered in order. */
  expected: number;
  /** Healthy subscribers with exactly every acknowledged publication, in order, once. */
  complete: number;
  healthy: number;
  /** Seconds the drain took (until every healthy subscriber had everything, or the limit). */
  drainSeconds: number;
  /** Latency over the whole publishing phase. */
  latencyAll: Latency;
  /** A few incomplete subscribers, for the report. */
  incomplete: string[];
}

export type ToLoad = { type: 'sample' } | { type: 'finish' } | { type: 'stop' };
export type FromLoad = { type: 'ready'; subscribed: number } | { type: 'sample'; sample: HubLoadSample } | { type: 'final'; sample: HubLoadFinal };
export type FromServer = { type: 'listening'; port: number } | { type: 'sample'; sample: HubServerSample };
