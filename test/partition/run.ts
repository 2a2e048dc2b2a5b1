// One run of the partition test, for the tests and the bench script alike: build the bed, start
// the broker (a new redis-server or nats-server -js inside the broker's namespace), the two hub
// nodes and the client workload, publish while the nemesis runs its schedule, heal, let the
// clients settle, stop everything, and hand the clients' logs to the checker.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { HubStats } from '../../src/hub/index.js';
import { findBinary } from '../hub/cluster-helpers.js';
import { Bed, addressOn, linkNamed, missingCapabilities, type Host } from './bed.js';
import { check, type CheckResult } from './checker.js';
import type { EmulatorStats } from './emulator.js';
import { readLogs } from './history.js';
import { runNemesis, schedule, type AppliedFault, type Fault } from './nemesis.js';
import type { Proc } from './processes.js';
import type { WorkloadConfig } from './workload.js';

export type BrokerKind = 'redis' | 'nats';

const NODE_SCRIPT = fileURLToPath(new URL('./node.js', import.meta.url));
const WORKLOAD_SCRIPT = fileURLToPath(new URL('./workload.js', import.meta.url));
const HUB_PORT = 8080;
const BROKER_PORT: Record<BrokerKind, number> = { redis: 6379, nats: 4222 };
/** History per topic: at 20 publications a second per topic, about 10 s of it (cuts last 1–20 s: some recover, some get gaps). */
const HISTORY_SIZE = 200;

export const BROKER_BINARY: Record<BrokerKind, { name: string; install: string }> = {
  redis: { name: 'redis-server', install: 'apt-get install redis-server' },
  nats: { name: 'nats-server', install: 'apt-get install nats-server' },
};

/**
 * Whether the partition test can run here: undefined if it can; otherwise a message naming what
 * is missing — thrown in CI (`CI=true`: a partition test must never pass by skipping), returned
 * as the skip reason elsewhere.
 */
export function partitionSkip(kind: BrokerKind): string | undefined {
  const missing = missingCapabilities(BROKER_BINARY[kind]);
  if (missing.length === 0) return undefined;
  const reason = `the partition test bed needs ${missing.join(', ')}`;
  if (process.env.CI === 'true') throw new Error(`CI: ${reason}`);
  return reason;
}

/** `PARTITION_SEED` if set (to replay a run), else a fresh one. */
export function seedFromEnv(): number {
  const text = process.env.PARTITION_SEED;
  if (text !== undefined && text !== '') {
    const seed = Number(text);
    if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`PARTITION_SEED must be a non-negative integer, not ${text}`);
    return seed;
  }
  return Math.floor(Math.random() * 2 ** 31);
}

/** `PARTITION_SECONDS` if set, else `fallback`: how long the nemesis runs. */
export function secondsFromEnv(fallback: number): number {
  const text = process.env.PARTITION_SECONDS;
  if (text === undefined || text === '') return fallback;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 5) throw new RangeError(`PARTITION_SECONDS must be a number ≥ 5, not ${text}`);
  return seconds;
}

export interface RunOptions {
  readonly broker: BrokerKind;
  /** How long the nemesis runs (publishing runs throughout), s. */
  readonly seconds: number;
  readonly seed: number;
  /** Progress lines (faults as they start, the workload's counters). */
  readonly log?: (line: string) => void;
  /** Keep the run's directory (logs, process output) even when the check passes. */
  readonly keep?: boolean;
  /** A schedule of one's own instead of the seed's (to reproduce one fault on purpose). */
  readonly faults?: readonly Fault[];
}

export interface RunResult {
  readonly broker: BrokerKind;
  readonly seed: number;
  readonly seconds: number;
  readonly faults: readonly AppliedFault[];
  readonly check: CheckResult;
  /** The workload's own summary of its end: final markers acknowledged, whether everyone caught up. */
  readonly workload: {
    readonly markers: number;
    readonly markersWanted: number;
    readonly settled: boolean;
    /** ms from the last final marker's acknowledgement until every subscriber had caught up. */
    readonly settleMs: number;
    readonly laggards: readonly string[];
  };
  readonly nodeStats: Partial<Record<'a' | 'b', HubStats>>;
  readonly links: EmulatorStats;
  /** Where the logs are (removed after a passing run unless `keep`). */
  readonly runDir: string;
  readonly elapsed: number;
}

function startBroker(bed: Bed, kind: BrokerKind, runDir: string): Proc {
  const binary = findBinary(BROKER_BINARY[kind].name)!;
  const port = String(BROKER_PORT[kind]);
  if (kind === 'redis') {
    return bed.spawn('broker', 'redis-server', binary, ['--port', port, '--bind', '0.0.0.0', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--dir', runDir]);
  }
  const store = join(runDir, 'jetstream');
  mkdirSync(store);
  return bed.spawn('broker', 'nats-server', binary, ['-js', '-a', '0.0.0.0', '-p', port, '-sd', store]);
}

function brokerUrl(kind: BrokerKind, node: 'a' | 'b'): string {
  return `${kind}://${addressOn(linkNamed(`${node}-broker`), 'broker')}:${BROKER_PORT[kind]}`;
}

function nodeUrl(node: 'a' | 'b'): string {
  return `ws://${addressOn(linkNamed(`clients-${node}`), node)}:${HUB_PORT}/ws`;
}

/** Run the whole test once; throws only if the bed or a process could not be set up. */
export async function runPartition(options: RunOptions): Promise<RunResult> {
  const { broker: kind, seconds, seed } = options;
  const log = options.log ?? (() => {});
  const started = Date.now();
  const runDir = mkdtempSync(join(tmpdir(), `dxp-${process.pid}-${kind}-`));
  const logDir = join(runDir, 'logs');
  mkdirSync(logDir);
  const procs = new Map<string, Proc>();
  const bed = await Bed.create(seed);
  let faults: AppliedFault[] = [];
  let summary: RunResult['workload'] = { markers: 0, markersWanted: 0, settled: false, settleMs: 0, laggards: [] };
  const nodeStats: Partial<Record<'a' | 'b', HubStats>> = {};
  let links: EmulatorStats = {};
  try {
    const broker = startBroker(bed, kind, runDir);
    procs.set('broker', broker);
    await broker.waitFor(kind === 'redis' ? /Ready to accept connections/ : /Server is ready/, 15_000);
    const nodes = {} as Record<'a' | 'b', Proc>;
    for (const node of ['a', 'b'] as const) {
      const args = [NODE_SCRIPT, '--broker', brokerUrl(kind, node), '--node', node, '--port', String(HUB_PORT), '--history-size', String(HISTORY_SIZE)];
      nodes[node] = bed.spawn(node as Host, `node ${node}`, process.execPath, args);
      procs.set(`node-${node}`, nodes[node]);
    }
    await Promise.all([nodes.a.waitFor(/^ready \d+/m, 20_000), nodes.b.waitFor(/^ready \d+/m, 20_000)]);
    const config: WorkloadConfig = {
      logDir,
      nodes: { a: nodeUrl('a'), b: nodeUrl('b') },
      topics: ['t0', 't1'],
      publishersPerNode: 2,
      rate: 10,
      maxInFlight: 8,
      subscribersPerNode: 2,
      roamers: 2,
      requestTimeout: 5000,
      settleTimeout: 20_000,
    };
    const workload = bed.spawn('clients', 'workload', process.execPath, [WORKLOAD_SCRIPT, '--config', JSON.stringify(config)]);
    procs.set('workload', workload);
    workload.child.stdout?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.startsWith('progress ')) log(`  ${line}`);
    });
    await workload.waitFor(/^ready$/m, 30_000);

    const plan = options.faults ?? schedule(seed, seconds);
    log(`[${kind}] seed ${seed}, ${seconds} s, ${plan.length} faults`);
    workload.send('start');
    faults = await runNemesis(bed.emulator, plan, (f) => log(`  +${(f.at / 1000).toFixed(1)} s ${f.description} for ${(f.duration / 1000).toFixed(1)} s`));
    // Healed: a moment for the links' queues to drain, then the workload winds down.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    workload.send('finish');
    const done = await workload.waitFor(/^done (.*)$/m, 4 * config.settleTimeout + 10_000);
    summary = JSON.parse(done[1]!) as RunResult['workload'];
    links = await bed.emulator.stats();
    for (const node of ['a', 'b'] as const) {
      nodes[node].child.kill('SIGTERM');
      const stats = await nodes[node].waitFor(/^stats (.*)$/m, 5000).catch(() => undefined);
      if (stats) nodeStats[node] = JSON.parse(stats[1]!) as HubStats;
    }
    await Promise.allSettled([nodes.a.stop('SIGTERM', 3000), nodes.b.stop('SIGTERM', 3000), broker.stop('SIGTERM', 3000)]);
  } finally {
    for (const [name, proc] of procs) writeFileSync(join(runDir, `${name}.out`), proc.output());
    writeFileSync(join(runDir, 'faults.json'), JSON.stringify(faults, null, 1));
    await bed.destroy();
  }
  const result = check(readLogs(logDir), { historySize: HISTORY_SIZE });
  if (result.ok && !options.keep) rmSync(runDir, { recursive: true, force: true });
  return { broker: kind, seed, seconds, faults, check: result, workload: summary, nodeStats, links, runDir, elapsed: Date.now() - started };
}
