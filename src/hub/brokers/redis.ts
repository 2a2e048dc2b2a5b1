/**
 * The Redis broker: hub nodes in several processes or machines share topics, history and presence
 * through Redis (≥ 6.2) — one server, a Redis Cluster, or a master watched by Redis Sentinel —
 * using the official `redis` client (node-redis).
 *
 * - **Fan-out**: Redis pub/sub, one channel per topic, on connections that only listen (a
 *   connection in subscribe mode is kept apart from commands). Each node subscribes only to the
 *   topics it has local subscribers for, so Redis does the filtering (Socket.IO's adapter "one
 *   Redis subscription per topic, not per client"). On a cluster with Redis ≥ 7.0 it is sharded
 *   pub/sub (SSUBSCRIBE/SPUBLISH): a topic's channel lives in its hash slot, and each node
 *   listens on the masters of the slots it needs (redis-subscriber.ts).
 * - **Offsets and history**: one Lua script per publication (EVALSHA) that increments the topic's
 *   offset counter, XADDs the publication to the topic's Redis Stream with the offset as the entry
 *   id, and publishes it — a script runs atomically, so offsets are +1 per topic across all nodes
 *   and every subscriber receives publications in offset order.
 * - **One slot per operation**: a topic's keys and channel all carry its hash tag,
 *   `<prefix>{topic}:meta`, `…:stream`, `…:presence`, `…:idem:<key>`, so every script that
 *   touches them runs in one slot — what Redis Cluster requires.
 * - **Epoch**: stored in the topic's meta hash next to the counter, created by whichever script
 *   first finds it absent (like SET NX); meta and stream expire together (PEXPIRE), so a counter
 *   that expired comes back with a new epoch, never with reused offsets under an old one.
 * - **Idempotency keys**: the publish script first looks for the key's record
 *   (`<prefix>{topic}:idem:<key>`) and answers with the first publication if it is there;
 *   otherwise it publishes and writes the record with PX = `idempotencyWindow`. One script, so
 *   the check and the write are atomic across nodes.
 * - **Presence**: a hash per topic plus node liveness (a sorted set of nodes scored with their
 *   deadline on the Redis clock, and their incarnations): redis-presence.ts. Each node refreshes
 *   its deadline every `presenceRefresh` ms (default 3 s) to now + `presenceTtl` (default 10 s);
 *   `presence()` leaves out (and removes) members of nodes past their deadline, and every node
 *   sweeps dead nodes on the same timer, removing their members and announcing the leaves. So a
 *   node that dies without `close()` has its presence gone from `presence()` within
 *   `presenceTtl` and its leaves announced within `presenceTtl + presenceRefresh` (13 s by default).
 * - **Connection loss and failover**: commands are not queued while disconnected (publish rejects
 *   at once rather than hang). Subscriptions that were lost — a dropped connection, a master
 *   replaced by its replica — are placed again where their channels live now, and then the
 *   broker calls `onReconnect` so the hub catches up from history.
 * @module duplex-ws/hub/redis
 */

import type { Broker, BrokerNode, HistoryOptions, HistorySlice, PresenceEvent, PresenceMember, Publication } from '../broker.js';
import {
  BROKER_DEFAULTS,
  ConnectionState,
  PresenceLiveness,
  assertStartable,
  assertStarted,
  historySlice,
  idempotencyWindowOf,
  newEpoch,
  throwLater,
  type IdempotencyOptions,
  type LivenessOptions,
} from './shared.js';
import { RedisBrokerError, asArray, asNumber, asString, scripts, type ScriptClient } from './redis-scripts.js';
import { createDeployment, type RedisDeployment } from './redis-deployment.js';
import { RedisPresence, parseMember, type PresenceNames } from './redis-presence.js';
import { RedisSubscriber } from './redis-subscriber.js';
import { topicHashTag } from './redis-slots.js';
import { deploymentOf, type RedisClusterOptions, type RedisDeploymentSpec, type RedisSentinelOptions } from './redis-url.js';

export { RedisBrokerError };
export type { RedisClusterOptions, RedisSentinelOptions, RedisServerAddress } from './redis-url.js';

/** Options of {@link RedisBroker}. Give at most one of `url`, `cluster` and `sentinel`. */
export interface RedisBrokerOptions extends LivenessOptions, IdempotencyOptions {
  /**
   * Where Redis is, as a URL: `redis://[[user]:password@]host[:port][/db]` (`rediss://` for
   * TLS) for one server, `redis+cluster://host:port,host:port,…` for a Redis Cluster (by some of
   * its nodes), `redis+sentinel://host:port,host:port,…/<master name>` for a master watched by
   * Sentinel (by some of its sentinels; `rediss+cluster://`, `rediss+sentinel://` for TLS to the
   * data nodes). Default `redis://127.0.0.1:6379`.
   */
  readonly url?: string;
  /** A Redis Cluster, instead of `url`. */
  readonly cluster?: RedisClusterOptions;
  /** A master watched by Redis Sentinel, instead of `url`. */
  readonly sentinel?: RedisSentinelOptions;
  /** Prefix of every key and channel, so several apps can share one Redis. Default `duplex:`. */
  readonly prefix?: string;
  /**
   * How long a topic's offset counter and epoch outlive its last publication (ms), at least the
   * history ttl. Default 30 days (Centrifugo's `history_meta_ttl` default).
   */
  readonly metaTtl?: number;
  /** Connection timeout of each connection attempt (ms). Default 5 000. */
  readonly connectTimeout?: number;
}

/** Client names may not contain spaces or newlines (CLIENT SETNAME). */
function clientName(kind: string, nodeId: string): string {
  return `duplex:${kind}:${nodeId.replace(/[^\w:.-]/g, '_')}`;
}

/**
 * A publication from the line format the publish script writes (the pub/sub message after its
 * `P\n`, and an idempotency record): offset \n epoch \n time \n publisher JSON or '' \n data.
 * Data comes last: it may hold newlines.
 */
function parseRecord(topic: string, text: string, start: number): Publication {
  const b = text.indexOf('\n', start);
  const c = text.indexOf('\n', b + 1);
  const d = text.indexOf('\n', c + 1);
  const e = text.indexOf('\n', d + 1);
  const publisher = text.slice(d + 1, e);
  return {
    topic,
    offset: Number(text.slice(start, b)),
    epoch: text.slice(b + 1, c),
    time: Number(text.slice(c + 1, d)),
    publisher: publisher === '' ? undefined : (JSON.parse(publisher) as string),
    data: text.slice(e + 1),
  };
}

/** Same-slot twin of `key` in a cluster: `key` itself as hash tag, unless it already has one. */
function sameSlotKey(key: string, suffix: string): string {
  const open = key.indexOf('{');
  const hasTag = open !== -1 && key.indexOf('}', open + 1) > open + 1;
  return hasTag ? `${key}${suffix}` : `{${key}}${suffix}`;
}

/** What a started broker holds. */
interface Started {
  readonly node: BrokerNode;
  readonly deployment: RedisDeployment;
  readonly client: ScriptClient;
  readonly subscriber: RedisSubscriber;
  readonly presence: RedisPresence;
}

/** The Redis {@link Broker}: one instance per hub node. */
export class RedisBroker implements Broker {
  readonly name = 'redis';
  readonly #spec: RedisDeploymentSpec;
  readonly #prefix: string;
  readonly #metaTtl: number;
  readonly #connectTimeout: number;
  readonly #idempotencyWindow: number;
  /** Liveness in a sorted set of nodes scored with their deadline; this node's members, for close() and rejoining. */
  readonly #liveness: PresenceLiveness;
  readonly #state = new ConnectionState();
  #started: Started | undefined;
  #closed = false;
  /** Subscribed channels → topic. */
  readonly #channels = new Map<string, string>();

  /**
   * Configures the broker; nothing connects until the hub calls `start()`.
   * @throws RangeError when `presenceRefresh` is not shorter than `presenceTtl`, or
   * `idempotencyWindow` is not a positive number.
   * @throws TypeError when more than one of `url`, `cluster` and `sentinel` is given, or the URL
   * or an address cannot be read.
   */
  constructor(options: RedisBrokerOptions = {}) {
    this.#spec = deploymentOf(options);
    this.#prefix = options.prefix ?? 'duplex:';
    this.#metaTtl = options.metaTtl ?? BROKER_DEFAULTS.metaTtl;
    this.#connectTimeout = options.connectTimeout ?? 5_000;
    this.#idempotencyWindow = idempotencyWindowOf(this.name, options);
    this.#liveness = new PresenceLiveness(this.name, options, {
      reachable: () => this.#started?.deployment.ready === true,
      refresh: () => this.#started!.presence.refresh(),
      rejoin: (topic, member) => this.#started!.presence.rejoin(topic, member),
      sweep: () => this.#started!.presence.sweep(),
      leave: (topic, member) => this.#started!.presence.announceLeave(topic, member),
      forget: () => this.#started!.presence.forget(),
    });
  }

  /** The client name of this node's subscriber connections (as CLIENT LIST shows it). */
  get subscriberName(): string | undefined {
    return this.#started === undefined ? undefined : clientName('sub', this.#started.node.id);
  }

  /** Where this node's subscriptions are: server address → channels (for tests and diagnostics). */
  get subscriptions(): ReadonlyMap<string, readonly string[]> {
    return this.#started?.subscriber.placements ?? new Map();
  }

  async start(node: BrokerNode): Promise<void> {
    assertStartable(this.name, this.#started !== undefined, this.#closed);
    const deployment = createDeployment(this.#spec, {
      names: { command: clientName('cmd', node.id), subscriber: clientName('sub', node.id) },
      connectTimeout: this.#connectTimeout,
      // The subscriber connections only listen: if Redis dropped one while the network was cut
      // (it gave up retransmitting, or the pub/sub output buffer limit), nothing tells this
      // node — it sat deaf, delivering nothing, until TCP keepalive (node-redis: after 30 s
      // idle) noticed. So each is probed every liveness period, twice over: TCP keepalive after
      // that much silence (the peer resets a connection it forgot), and a PING (which also
      // reaches through a TCP proxy in front of Redis, where keepalive tests only the hop to the
      // proxy; but node-redis sends the next PING only once the last was answered, so a PONG
      // lost in the cut stops the PINGs — keepalive covers that). Then the subscriber heals and
      // the catch-up follows. The command connections need neither: the liveness refresh writes
      // often, and a command without an answer fails. Found by the partition test (docs/partitions.md).
      probe: this.#liveness.refresh,
      closed: () => this.#closed,
      change: () => this.#updateState(),
    });
    try {
      await deployment.connect();
    } catch (error) {
      this.#closed = true;
      await deployment.close().catch(() => undefined);
      throw new RedisBrokerError(`redis broker: cannot reach ${deployment.description} (is redis-server running?)`, { cause: error });
    }
    const client: ScriptClient = { call: (key, args) => deployment.call(key, args) };
    const subscriber = new RedisSubscriber(deployment.placement, {
      message: (message, channel) => this.#onMessage(message, channel),
      change: () => this.#updateState(),
      // Every channel is subscribed again, so anything published from now on is delivered and
      // history covers the rest.
      healed: () => {
        if (!this.#closed) node.onReconnect();
      },
    });
    const nodes = `${this.#prefix}nodes`;
    const names: PresenceNames = {
      presence: (topic) => this.#key(topic, 'presence', deployment),
      channel: (topic) => this.#channel(topic, deployment),
      nodes,
      incarnations: sameSlotKey(nodes, ':incarnations'),
      nodeTopics: (id, incarnation) => (incarnation === '' ? `${this.#prefix}node:${id}:topics` : `${this.#prefix}node:${id}:${incarnation}:topics`),
    };
    const presence = new RedisPresence({
      client,
      names,
      publishCommand: deployment.sharded ? 'SPUBLISH' : 'PUBLISH',
      nodeId: node.id,
      ttl: this.#liveness.ttl,
      members: this.#liveness.members,
    });
    this.#started = { node, deployment, client, subscriber, presence };
    try {
      await this.#liveness.refreshNow();
    } catch (error) {
      this.#closed = true;
      await Promise.allSettled([subscriber.close(), deployment.close()]);
      throw new RedisBrokerError(`redis broker: ${deployment.description} does not answer`, { cause: error });
    }
    this.#updateState();
    this.#liveness.start();
  }

  async subscribe(topic: string): Promise<void> {
    const { subscriber, deployment } = this.#use();
    const channel = this.#channel(topic, deployment);
    if (this.#channels.has(channel)) return;
    this.#channels.set(channel, topic);
    try {
      await subscriber.subscribe(channel);
    } catch (error) {
      this.#channels.delete(channel);
      throw new RedisBrokerError(`redis broker: could not subscribe to ${topic}`, { cause: error });
    }
  }

  async unsubscribe(topic: string): Promise<void> {
    const started = this.#started;
    if (started === undefined || this.#closed) return;
    const channel = this.#channel(topic, started.deployment);
    if (!this.#channels.delete(channel)) return;
    await started.subscriber.unsubscribe(channel);
  }

  async publish(topic: string, data: string, history: HistoryOptions, publisher?: string, idempotencyKey?: string): Promise<Publication> {
    const { client, deployment } = this.#use();
    // JSON-encode the publisher so a connection id can never break the line-based message format.
    const publisherField = publisher === undefined ? '' : JSON.stringify(publisher);
    const keys = [this.#key(topic, 'meta', deployment), this.#key(topic, 'stream', deployment)];
    if (idempotencyKey !== undefined) keys.push(this.#key(topic, `idem:${idempotencyKey}`, deployment));
    const reply = asArray(
      'publish',
      await scripts.publish.run(client, keys, [
        this.#channel(topic, deployment),
        data,
        publisherField,
        String(Math.max(0, Math.floor(history.size))),
        String(Math.max(0, Math.floor(history.ttl))),
        String(this.#metaTtl),
        newEpoch(),
        String(this.#idempotencyWindow),
        deployment.sharded ? 'SPUBLISH' : 'PUBLISH',
      ]),
    );
    // The key was used within the window: the script published nothing and gave the first publication.
    if (reply[0] === 'dup') return parseRecord(topic, asString('publish', reply[1]), 0);
    return {
      topic,
      offset: asNumber('publish', reply[0]),
      epoch: asString('publish', reply[1]),
      time: asNumber('publish', reply[2]),
      data,
      publisher,
    };
  }

  async history(topic: string, offset: number, epoch: string | undefined): Promise<HistorySlice> {
    const { client, deployment } = this.#use();
    const reply = asArray(
      'history',
      await scripts.history.run(client, [this.#key(topic, 'meta', deployment), this.#key(topic, 'stream', deployment)], [
        String(Math.max(0, Math.floor(offset))),
        epoch ?? '',
        newEpoch(),
        String(this.#metaTtl),
      ]),
    );
    const currentEpoch = asString('history', reply[0]);
    const latest = asNumber('history', reply[1]);
    const ttl = asNumber('history', reply[2]);
    const now = asNumber('history', reply[3]);
    const retained: Publication[] = [];
    for (const entry of asArray('history', reply[4])) {
      const [id, fields] = asArray('history entry', entry);
      const values = new Map<string, string>();
      const flat = asArray('history entry', fields);
      for (let i = 0; i + 1 < flat.length; i += 2) values.set(asString('field', flat[i]), asString('value', flat[i + 1]));
      const time = Number(values.get('t'));
      // Redis expires whole keys, not stream entries: entries older than ttl are left out here.
      if (!(now - time < ttl)) continue;
      const publisher = values.get('p');
      retained.push({
        topic,
        offset: Number.parseInt(asString('entry id', id), 10),
        epoch: currentEpoch,
        data: values.get('d') ?? '',
        time,
        publisher: publisher === undefined || publisher === '' ? undefined : (JSON.parse(publisher) as string),
      });
    }
    return historySlice(currentEpoch, latest, retained, offset, epoch);
  }

  async join(topic: string, member: PresenceMember): Promise<void> {
    await this.#use().presence.join(topic, member);
  }

  async leave(topic: string, member: PresenceMember): Promise<void> {
    await this.#use().presence.leave(topic, member);
  }

  async presence(topic: string): Promise<PresenceMember[]> {
    return this.#use().presence.presence(topic);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#liveness.stop();
    const started = this.#started;
    if (started === undefined) return;
    this.#channels.clear();
    // Announce this node's leaves before going; if Redis is unreachable, the other nodes remove
    // them once this node's liveness deadline passes.
    await this.#liveness.leave();
    await Promise.allSettled([started.subscriber.close(), started.deployment.close()]);
    this.#state.set('disconnected', started.node);
  }

  #updateState(): void {
    const started = this.#started;
    const up = started !== undefined && started.deployment.ready && started.subscriber.healthy;
    this.#state.set(up && !this.#closed ? 'connected' : 'disconnected', started?.node);
  }

  #onMessage(message: string, channel: string): void {
    const topic = this.#channels.get(channel);
    const node = this.#started?.node;
    if (topic === undefined || node === undefined || this.#closed) return;
    try {
      if (message.startsWith('P\n')) {
        node.onPublication(parseRecord(topic, message, 2));
      } else if (message.startsWith('J\n') || message.startsWith('L\n')) {
        const parsed = parseMember(message.slice(2));
        if (parsed === undefined) return;
        const event: PresenceEvent = { topic, kind: message[0] === 'J' ? 'join' : 'leave', member: parsed.member };
        node.onPresence(event);
      }
    } catch (error) {
      // A throwing hub callback must not kill the subscriber connection's parser.
      throwLater(error);
    }
  }

  #use(): Started {
    assertStarted(this.name, this.#started !== undefined, this.#closed);
    return this.#started!;
  }

  // Keys of one topic share its hash tag, so they live in one slot in a cluster (a script may
  // only touch keys of one slot). In a cluster the tag is never empty (topicHashTag); elsewhere
  // it stays `{topic}`, the names this broker always used.
  #key(topic: string, kind: string, deployment: RedisDeployment): string {
    return `${this.#prefix}${deployment.clustered ? topicHashTag(topic) : `{${topic}}`}:${kind}`;
  }

  // A sharded channel must live in the topic's slot too (SPUBLISH from the topic's scripts);
  // a classic channel keeps the name it always had.
  #channel(topic: string, deployment: RedisDeployment): string {
    return deployment.sharded ? `${this.#prefix}${topicHashTag(topic)}:pub` : `${this.#prefix}pub:${topic}`;
  }
}
