/**
 * The NATS broker's JetStream storage (`nats.ts` has the design): the history stream and the KV
 * buckets, created with `replicas` copies, or brought to that many when they exist with another
 * count (JetStream scales a stream's replicas in place), and a clear `NatsBrokerError` when the
 * servers cannot hold that many: a single server in non-clustered mode, or a cluster with fewer
 * JetStream servers up than `replicas`.
 *
 * With replicas 3 on a 3-server cluster a publish is acknowledged once 2 of the 3 servers stored
 * it (JetStream's RAFT quorum), so losing any one server loses nothing acknowledged; the streams
 * it led elect a new leader among the other two, and until then their requests find no leader.
 */
import type { JetStreamClient, JetStreamManager, KV, StreamConfig, StreamInfo } from 'nats';
import { requirePeer } from '../../node/peer.js';

import { NO_SUITABLE_PEERS, NatsBrokerError, REPLICAS_NOT_CLUSTERED, apiCode, sleep } from './nats-format.js';

// nats.js is an optional peer dependency, loaded by `duplex-ws/hub/nats` only (see nats.ts).
const { NatsError } = requirePeer<typeof import('nats')>('nats', 'duplex-ws/hub/nats');

/** JetStream's largest replica count. */
export const MAX_REPLICAS = 5;

/**
 * The `replicas` option, checked.
 * @throws RangeError unless it is a whole number from 1 to 5.
 */
export function replicasOf(replicas: number | undefined): number {
  const value = replicas ?? 1;
  if (!Number.isInteger(value) || value < 1 || value > MAX_REPLICAS) {
    throw new RangeError(`nats broker: replicas must be a whole number from 1 to ${MAX_REPLICAS} (JetStream's limit), not ${String(replicas)}`);
  }
  return value;
}

/** The NATS broker's error for a stream the servers cannot give `replicas` copies, naming what to change. */
function replicasError(stream: string, replicas: number, error: unknown): NatsBrokerError | undefined {
  const code = apiCode(error);
  if (code === REPLICAS_NOT_CLUSTERED) return notClustered(stream, replicas, error);
  if (code === NO_SUITABLE_PEERS) {
    return new NatsBrokerError(
      `nats broker: stream ${stream} needs replicas ${replicas}, but fewer than ${replicas} JetStream servers of the cluster are up: ` +
        `start them, or set replicas to at most the number of servers`,
      { cause: error },
    );
  }
  return undefined;
}

function notClustered(stream: string, replicas: number, cause?: unknown): NatsBrokerError {
  return new NatsBrokerError(
    `nats broker: stream ${stream} needs replicas ${replicas}, but the NATS server is not clustered ` +
      `(replicas > 1 needs nats-server with cluster routes and JetStream on at least ${replicas} servers); use replicas 1 with a single server`,
    cause === undefined ? {} : { cause },
  );
}

function isStreamNotFound(error: unknown): boolean {
  return error instanceof NatsError && /stream not found/i.test(error.message);
}

/**
 * Make sure stream `config.name` exists with `config` and `replicas` copies: created if absent
 * (a node starting at the same moment may create it first), updated if present (merged into its
 * config: what `config` does not name is kept), then waited for until it has a leader and its
 * `replicas` peers (bounded by `timeout` ms).
 * @throws NatsBrokerError when the servers cannot hold `replicas` copies, or the stream has no
 * leader in time.
 */
export async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }, replicas: number, timeout: number): Promise<void> {
  const wanted = { ...config, num_replicas: replicas };
  let info: StreamInfo | undefined;
  try {
    info = await jsm.streams.info(config.name);
  } catch (error) {
    if (!isStreamNotFound(error)) throw error;
  }
  try {
    if (info === undefined) {
      try {
        await jsm.streams.add(wanted);
      } catch (error) {
        // Another node created it at the same moment: bring it to our config like an existing one.
        if (!(error instanceof NatsError) || !/already in use/i.test(error.message)) throw error;
        await jsm.streams.update(config.name, wanted);
      }
    } else {
      // A single server accepts an update to replicas > 1 and records it without replicating:
      // refuse before asking. (Only a clustered stream's info has `cluster`.)
      if (replicas > 1 && info.cluster === undefined) throw notClustered(config.name, replicas);
      await jsm.streams.update(config.name, wanted);
    }
  } catch (error) {
    throw replicasError(config.name, replicas, error) ?? error;
  }
  await waitForPlacement(jsm, config.name, replicas, timeout);
}

/**
 * Open KV bucket `bucket` (created with `replicas` copies if absent), and bring its stream to
 * `replicas` copies and to `reconcile` (stream settings the bucket must have, e.g. its max age)
 * when it exists with others: `js.views.kv` keeps an existing bucket's settings.
 * @throws NatsBrokerError when the servers cannot hold `replicas` copies.
 */
export async function openBucket(
  js: JetStreamClient,
  jsm: JetStreamManager,
  bucket: string,
  options: { readonly ttl?: number; readonly replicas: number; readonly timeout: number; readonly reconcile?: Partial<StreamConfig> },
): Promise<KV> {
  const stream = `KV_${bucket}`;
  let kv: KV;
  try {
    kv = await js.views.kv(bucket, { history: 1, replicas: options.replicas, timeout: options.timeout, ...(options.ttl === undefined ? {} : { ttl: options.ttl }) });
  } catch (error) {
    throw replicasError(stream, options.replicas, error) ?? error;
  }
  const { config, cluster } = await jsm.streams.info(stream);
  const changes: Partial<StreamConfig> = {};
  for (const [key, value] of Object.entries(options.reconcile ?? {}) as Array<[keyof StreamConfig, unknown]>) {
    if (config[key] !== value) Object.assign(changes, { [key]: value });
  }
  if (config.num_replicas !== options.replicas) {
    if (options.replicas > 1 && cluster === undefined) throw notClustered(stream, options.replicas);
    changes.num_replicas = options.replicas;
  }
  if (Object.keys(changes).length > 0) {
    try {
      await jsm.streams.update(stream, changes);
    } catch (error) {
      throw replicasError(stream, options.replicas, error) ?? error;
    }
  }
  await waitForPlacement(jsm, stream, options.replicas, options.timeout);
  return kv;
}

/**
 * Wait until `stream` has a leader and `replicas - 1` other peers (a stream just created or
 * rescaled has neither for a moment, and its requests fail until it does). A non-clustered
 * stream (one copy on a single server) is ready at once.
 */
async function waitForPlacement(jsm: JetStreamManager, stream: string, replicas: number, timeout: number): Promise<void> {
  const deadline = Date.now() + timeout;
  let seen = 'no answer';
  for (;;) {
    try {
      const { cluster } = await jsm.streams.info(stream);
      if (cluster === undefined) return;
      const peers = cluster.replicas?.length ?? 0;
      if (cluster.leader !== undefined && cluster.leader !== '' && peers === replicas - 1) return;
      seen = `leader ${cluster.leader ?? 'none'}, ${peers} other peers`;
    } catch (error) {
      seen = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) {
      throw new NatsBrokerError(`nats broker: stream ${stream} has no leader with ${replicas - 1} other peers after ${timeout} ms (${seen})`);
    }
    await sleep(50);
  }
}
