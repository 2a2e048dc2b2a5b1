/**
 * The three Redis deployments the broker runs on, behind one face: commands routed to the
 * server that holds a key, readiness, and where subscriptions go (`SubscriberPlacement`).
 *
 * - **One server** (`redis://`): a command connection, and subscriber connections to the same URL.
 * - **Redis Cluster** (node-redis `createCluster`): commands go to the master of the key's hash
 *   slot (node-redis follows MOVED and refreshes the slot map while a master is unreachable);
 *   subscriptions go to the master of the channel's slot (sharded pub/sub, Redis ≥ 7.0), or all
 *   to the master of slot 0 with classic pub/sub, which a cluster copies to every node. The
 *   subscriber learns the slot map itself (CLUSTER SLOTS) whenever it has lost something, so it
 *   follows a failover as soon as the cluster has promoted a replica.
 * - **Sentinel** (node-redis `createSentinel`): commands go to the master the sentinels name,
 *   and node-redis moves to the new one on `+switch-master`; subscriptions go to that master.
 *   node-redis retries a command through a topology change by default; here it must not
 *   (`maxCommandRediscovers: 0`): a publish script whose answer was lost with the old master may
 *   have run, and a retry would publish it twice. The publish fails instead (not acknowledged).
 */
import { requirePeer } from '../../node/peer.js';

// node-redis is an optional peer dependency: loaded here, by `duplex-ws/hub/redis` only.
const { createClient, createCluster, createSentinel } = requirePeer<typeof import('redis')>('redis', 'duplex-ws/hub/redis');

import { SLOT_COUNT, keySlot } from './redis-slots.js';
import type { SubscriberClient, SubscriberPlacement } from './redis-subscriber.js';
import { asArray, asNumber, asString } from './redis-scripts.js';
import { redact, type RedisClusterOptions, type RedisDeploymentSpec, type RedisSentinelOptions, type RedisServerAddress } from './redis-url.js';

/** What a deployment needs of its broker. */
export interface DeploymentSettings {
  /** CLIENT SETNAME of the command connections, and of the subscriber connections. */
  readonly names: { readonly command: string; readonly subscriber: string };
  /** Connection timeout of each connection attempt (ms). */
  readonly connectTimeout: number;
  /** PING interval and TCP keepalive delay of the subscriber connections (ms, > 0). */
  readonly probe: number;
  /** The broker was closed: connections stop retrying. */
  readonly closed: () => boolean;
  /** The command side's readiness may have changed. */
  readonly change: () => void;
}

/** One deployment, connected by `connect()`. */
export interface RedisDeployment {
  /** What it is and where, for error messages (no password). */
  readonly description: string;
  /** Sharded pub/sub (SPUBLISH in the scripts, SSUBSCRIBE); known after `connect()`. */
  readonly sharded: boolean;
  /** A cluster: a topic's keys and channel must share a hash tag that is never empty. */
  readonly clustered: boolean;
  /** Commands can be sent now. */
  readonly ready: boolean;
  /** Where subscriptions go. */
  readonly placement: SubscriberPlacement;
  /** Connect; rejects (after at most `connectTimeout` × 2) when the deployment cannot be reached. */
  connect(): Promise<void>;
  /** Send a command to the server holding `key` (any server when `key` is undefined). */
  call(key: string | undefined, args: string[]): Promise<unknown>;
  /** Close the command connections. */
  close(): Promise<void>;
}

/** Capped exponential backoff with jitter, for every connection that was up once. */
function backoff(retries: number): number {
  return Math.min(50 * 2 ** retries, 2000) + Math.floor(Math.random() * 100);
}

/** Reject `promise` after `ms` (then `onTimeout` cleans up what it started). */
async function withDeadline<T>(promise: Promise<T>, ms: number, what: string, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what}: no answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Socket options of a subscriber connection: probed (PING and TCP keepalive) every `probe` ms. */
function subscriberOptions(settings: DeploymentSettings, reconnectStrategy: (retries: number, cause: Error) => number | Error) {
  return {
    name: settings.names.subscriber,
    // A subscription must fail at once while disconnected, not wait for the connection to return.
    disableOfflineQueue: true,
    pingInterval: settings.probe,
    socket: { connectTimeout: settings.connectTimeout, keepAlive: true, keepAliveInitialDelay: settings.probe, reconnectStrategy },
  } as const;
}

/**
 * A subscriber client whose first connection fails rather than retries (the subscribe that
 * needed it rejects), and whose later losses are retried with backoff until the broker closes.
 */
function subscriberClient(settings: DeploymentSettings, make: (strategy: (retries: number, cause: Error) => number | Error) => SubscriberClient): SubscriberClient {
  let readyOnce = false;
  const client = make((retries, cause) => (!readyOnce || settings.closed() ? cause : backoff(retries)));
  client.on('ready', () => {
    readyOnce = true;
  });
  // node-redis emits 'error' on every connection failure; without a listener it would throw.
  client.on('error', () => undefined);
  return client;
}

// ---- one server ----------------------------------------------------------------------------

class SingleRedis implements RedisDeployment {
  readonly description: string;
  readonly sharded = false;
  readonly clustered = false;
  readonly placement: SubscriberPlacement;
  readonly #client;

  constructor(url: string, settings: DeploymentSettings) {
    this.description = `Redis at ${redact(url)}`;
    let readyOnce = false;
    this.#client = createClient({
      url,
      name: settings.names.command,
      // Fail fast while disconnected: a publish must reject, not wait for Redis to come back.
      disableOfflineQueue: true,
      socket: { connectTimeout: settings.connectTimeout, reconnectStrategy: (retries, cause) => (!readyOnce || settings.closed() ? cause : backoff(retries)) },
    });
    this.#client.on('ready', () => {
      readyOnce = true;
      settings.change();
    });
    this.#client.on('end', settings.change);
    this.#client.on('reconnecting', settings.change);
    this.#client.on('error', settings.change);
    this.placement = {
      sharded: false,
      where: () => url,
      refresh: async () => undefined,
      client: () => subscriberClient(settings, (reconnectStrategy) => createClient({ url, ...subscriberOptions(settings, reconnectStrategy) }) as unknown as SubscriberClient),
    };
  }

  get ready(): boolean {
    return this.#client.isReady;
  }

  async connect(): Promise<void> {
    await this.#client.connect();
  }

  call(_key: string | undefined, args: string[]): Promise<unknown> {
    return this.#client.sendCommand(args);
  }

  async close(): Promise<void> {
    if (this.#client.isOpen) await this.#client.close();
    else this.#client.destroy();
  }
}

// ---- Redis Cluster -------------------------------------------------------------------------

/** Node client options shared by every data-node connection of a cluster or a sentinel setup. */
function nodeAuth(options: { username?: string; password?: string }) {
  return {
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
  };
}

function addressText(address: RedisServerAddress): string {
  return `${address.host}:${address.port}`;
}

/** `host:port` (or `[v6]:port`) → address. */
function splitAddress(text: string): RedisServerAddress {
  const colon = text.lastIndexOf(':');
  return { host: text.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(text.slice(colon + 1)) };
}

class ClusterRedis implements RedisDeployment {
  readonly description: string;
  readonly clustered = true;
  #placement: SubscriberPlacement | undefined;
  readonly #tls: { readonly tls?: true };
  #sharded: boolean;
  readonly #cluster;
  readonly #options: RedisClusterOptions;
  readonly #settings: DeploymentSettings;
  /** The master of each slot, as `host:port` (learnt from CLUSTER SLOTS). */
  #slots: (string | undefined)[] = new Array<string | undefined>(SLOT_COUNT);
  /** Nodes whose command connection is down. */
  readonly #down = new Set<string>();

  constructor(options: RedisClusterOptions, settings: DeploymentSettings) {
    this.#options = options;
    this.#settings = settings;
    this.description = `Redis Cluster at ${options.rootNodes.map((n) => (typeof n === 'string' ? n : addressText(n))).join(',')}`;
    this.#sharded = options.sharded ?? true;
    const tls = options.tls === true ? ({ tls: true } as const) : {};
    this.#cluster = createCluster({
      rootNodes: options.rootNodes.map((n) => ({ socket: { ...(typeof n === 'string' ? splitAddress(n) : n), ...tls } })),
      defaults: {
        ...nodeAuth(options),
        name: settings.names.command,
        disableOfflineQueue: true,
        socket: { connectTimeout: settings.connectTimeout, ...tls, reconnectStrategy: (retries, cause) => (settings.closed() ? cause : backoff(retries)) },
      },
      // While a master is unreachable, ask the others for the slot map after 1 s (node-redis'
      // default, 5 s, would leave its slots failing that much longer after a failover).
      topologyRefreshOnReconnectionAttemptStrategy: 1000,
    });
    const up = (node: RedisServerAddress): void => {
      this.#down.delete(addressText(node));
      settings.change();
    };
    this.#cluster.on('node-ready', up);
    this.#cluster.on('node-disconnect', up);
    this.#cluster.on('node-reconnecting', (node: RedisServerAddress) => {
      this.#down.add(addressText(node));
      settings.change();
    });
    this.#cluster.on('node-error', () => undefined);
    this.#cluster.on('error', () => undefined);
    this.#tls = tls;
  }

  /** Built on first use, after `connect()` learnt whether the cluster has sharded pub/sub. */
  get placement(): SubscriberPlacement {
    this.#placement ??= {
      sharded: this.#sharded,
      where: (channel) => this.#slots[this.#sharded ? keySlot(channel) : 0],
      refresh: () => this.#refreshSlots(),
      checkEvery: this.#settings.probe,
      client: (address) =>
        subscriberClient(this.#settings, (reconnectStrategy) => {
          const base = subscriberOptions(this.#settings, reconnectStrategy);
          return createClient({ ...nodeAuth(this.#options), ...base, socket: { ...base.socket, ...splitAddress(address), ...this.#tls } }) as unknown as SubscriberClient;
        }),
    };
    return this.#placement;
  }

  get sharded(): boolean {
    return this.#sharded;
  }

  get ready(): boolean {
    return this.#cluster.isReady && this.#down.size === 0;
  }

  async connect(): Promise<void> {
    const timeout = this.#settings.connectTimeout * 2;
    await withDeadline(this.#cluster.connect(), timeout, this.description, () => this.#cluster.destroy());
    await this.#refreshSlots();
    if (this.#options.sharded === undefined) this.#sharded = await this.#hasShardedPubSub();
  }

  call(key: string | undefined, args: string[]): Promise<unknown> {
    return this.#cluster.sendCommand(key, false, args);
  }

  async close(): Promise<void> {
    await this.#cluster.close();
  }

  /** Sharded pub/sub came with Redis 7.0: every master must have it. */
  async #hasShardedPubSub(): Promise<boolean> {
    for (const master of this.#cluster.masters) {
      const client = await this.#cluster.nodeClient(master);
      const info = asString('info', await client.sendCommand(['INFO', 'server']));
      if (Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0) < 7) return false;
    }
    return true;
  }

  async #refreshSlots(): Promise<void> {
    const reply = asArray('cluster slots', await this.#cluster.sendCommand(undefined, true, ['CLUSTER', 'SLOTS']));
    const slots = new Array<string | undefined>(SLOT_COUNT);
    for (const range of reply) {
      const [from, to, master] = asArray('cluster slots', range);
      const [host, port] = asArray('cluster slots', master);
      const address = addressText({ host: asString('cluster slots', host), port: asNumber('cluster slots', port) });
      for (let slot = asNumber('cluster slots', from); slot <= asNumber('cluster slots', to); slot++) slots[slot] = address;
    }
    this.#slots = slots;
  }
}

// ---- Sentinel ------------------------------------------------------------------------------

class SentinelRedis implements RedisDeployment {
  readonly description: string;
  readonly sharded = false;
  readonly clustered = false;
  readonly placement: SubscriberPlacement;
  readonly #sentinel;
  readonly #settings: DeploymentSettings;

  constructor(options: RedisSentinelOptions, settings: DeploymentSettings) {
    this.#settings = settings;
    const sentinels = options.sentinelRootNodes.map((n) => (typeof n === 'string' ? splitAddress(n) : n));
    this.description = `Redis Sentinel master "${options.name}" at ${sentinels.map(addressText).join(',')}`;
    const tls = options.tls === true ? ({ tls: true } as const) : {};
    this.#sentinel = createSentinel({
      name: options.name,
      sentinelRootNodes: sentinels.map((s) => ({ ...s })),
      nodeClientOptions: {
        ...nodeAuth(options),
        name: settings.names.command,
        disableOfflineQueue: true,
        socket: { connectTimeout: settings.connectTimeout, ...tls, reconnectStrategy: (retries, cause) => (settings.closed() ? cause : backoff(retries)) },
      },
      sentinelClientOptions: {
        ...nodeAuth({ username: options.sentinelUsername, password: options.sentinelPassword }),
        socket: { connectTimeout: settings.connectTimeout },
      },
      masterPoolSize: 1,
      // No retry of a command across a topology change: see the module comment.
      maxCommandRediscovers: 0,
    });
    this.#sentinel.on('ready', settings.change);
    this.#sentinel.on('reconnecting', settings.change);
    this.#sentinel.on('end', settings.change);
    this.#sentinel.on('error', () => settings.change());
    this.#sentinel.on('client-error', () => settings.change());
    this.placement = {
      sharded: false,
      where: () => {
        const master = this.#sentinel.getMasterNode();
        return master === undefined ? undefined : addressText(master);
      },
      // A command makes node-redis ask the sentinels again when its master connection is down.
      refresh: async () => {
        await this.#sentinel.sendCommand(false, ['PING']);
      },
      // The sentinels may name another master while the old one still answers (a manual failover).
      checkEvery: settings.probe,
      client: (address) =>
        subscriberClient(settings, (reconnectStrategy) => {
          const base = subscriberOptions(settings, reconnectStrategy);
          return createClient({ ...nodeAuth(options), ...base, socket: { ...base.socket, ...splitAddress(address), ...tls } }) as unknown as SubscriberClient;
        }),
    };
  }

  get ready(): boolean {
    return this.#sentinel.isReady;
  }

  async connect(): Promise<void> {
    const timeout = this.#settings.connectTimeout * 2;
    await withDeadline(this.#sentinel.connect(), timeout, this.description, () => void this.#sentinel.destroy());
  }

  call(_key: string | undefined, args: string[]): Promise<unknown> {
    return this.#sentinel.sendCommand(false, args);
  }

  async close(): Promise<void> {
    await this.#sentinel.close();
  }
}

/** The deployment `spec` names, not connected yet. */
export function createDeployment(spec: RedisDeploymentSpec, settings: DeploymentSettings): RedisDeployment {
  switch (spec.kind) {
    case 'single':
      return new SingleRedis(spec.url, settings);
    case 'cluster':
      return new ClusterRedis(spec.cluster, settings);
    case 'sentinel':
      return new SentinelRedis(spec.sentinel, settings);
  }
}
