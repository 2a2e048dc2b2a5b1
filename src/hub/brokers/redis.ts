/**
 * The Redis broker: hub nodes in several processes or machines share topics, history and presence
 * through one Redis server (≥ 6.2), using the official `redis` client (node-redis).
 *
 * - **Fan-out**: Redis pub/sub, one channel per topic, on a dedicated subscriber connection
 *   (a connection in subscribe mode cannot run other commands). Each node subscribes only to the
 *   topics it has local subscribers for, so Redis does the filtering (Socket.IO's adapter
 *   "one Redis subscription per topic, not per client").
 * - **Offsets and history**: one Lua script per publication (EVALSHA) that increments the topic's
 *   offset counter, XADDs the publication to the topic's Redis Stream with the offset as the entry
 *   id, and PUBLISHes it — a script runs atomically, so offsets are +1 per topic across all nodes
 *   and every subscriber receives publications in offset order.
 * - **Epoch**: stored in the topic's meta hash next to the counter, created by whichever script
 *   first finds it absent (like SET NX); meta and stream expire together (PEXPIRE), so a counter
 *   that expired comes back with a new epoch, never with reused offsets under an old one.
 * - **Idempotency keys**: the publish script first looks for the key's record
 *   (`<prefix>{topic}:idem:<key>`, under the topic's hash tag like its other keys) and answers
 *   with the first publication if it is there; otherwise it publishes and writes the record with
 *   PX = `idempotencyWindow`. One script, so the check and the write are atomic across nodes.
 * - **Presence**: a hash per topic (connId → member JSON) plus a sorted set of live nodes scored
 *   with their liveness deadline (Redis server clock). Each node refreshes its deadline every
 *   `presenceRefresh` ms (default 3 s) to now + `presenceTtl` (default 10 s); `presence()` leaves
 *   out members of nodes past their deadline, and every node sweeps dead nodes on the same timer,
 *   removing their members and announcing the leaves. So a node that dies without `close()` has
 *   its presence gone from `presence()` within `presenceTtl` and its leaves announced within
 *   `presenceTtl + presenceRefresh` (13 s by default).
 * - **Connection loss**: commands are not queued while disconnected (publish rejects at once
 *   rather than hang); node-redis reconnects with backoff and resubscribes the channels, and
 *   once the subscriber connection is ready again the broker calls `onReconnect` so the hub
 *   catches up from history.
 * @module duplex-ws/hub/redis
 */

import { requirePeer } from '../../node/peer.js';

// node-redis is an optional peer dependency: loaded here, by `duplex-ws/hub/redis` only.
const { createClient } = requirePeer<typeof import('redis')>('redis', 'duplex-ws/hub/redis');

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
import { RedisBrokerError, asArray, asNumber, asString, scripts } from './redis-scripts.js';

export { RedisBrokerError };

/** Options of {@link RedisBroker}. */
export interface RedisBrokerOptions extends LivenessOptions, IdempotencyOptions {
  /** Redis URL (`redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS). Default `redis://127.0.0.1:6379`. */
  readonly url?: string;
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

/**
 * A node-redis client configured the way this broker needs it. `probe` > 0: a PING every `probe`
 * ms and TCP keepalive after `probe` ms of silence (0: node-redis's defaults, no PING, keepalive
 * after 30 s).
 */
function redisClient(url: string, name: string, connectTimeout: number, probe: number, reconnectDelay: (retries: number, cause: Error) => number | Error) {
  return createClient({
    url,
    name,
    // Fail fast while disconnected: a publish must reject, not wait for Redis to come back.
    disableOfflineQueue: true,
    ...(probe > 0 ? { pingInterval: probe } : {}),
    socket: { connectTimeout, reconnectStrategy: reconnectDelay, ...(probe > 0 ? { keepAlive: true, keepAliveInitialDelay: probe } : {}) },
  });
}

type RedisClient = ReturnType<typeof redisClient>;
/** Client names may not contain spaces or newlines (CLIENT SETNAME). */
function clientName(kind: string, nodeId: string): string {
  return `duplex:${kind}:${nodeId.replace(/[^\w:.-]/g, '_')}`;
}

function parseMember(json: string): PresenceMember {
  return JSON.parse(json) as PresenceMember;
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

/** The Redis {@link Broker}: one instance per hub node. */
export class RedisBroker implements Broker {
  readonly name = 'redis';
  readonly #url: string;
  readonly #prefix: string;
  readonly #metaTtl: number;
  readonly #connectTimeout: number;
  readonly #idempotencyWindow: number;
  /** Liveness in a sorted set of nodes scored with their deadline; this node's members, for close() and rejoining. */
  readonly #liveness: PresenceLiveness;
  readonly #state = new ConnectionState();
  #node: BrokerNode | undefined;
  #client: RedisClient | undefined;
  #subscriber: RedisClient | undefined;
  #closed = false;
  #subscriberReadyOnce = false;
  /** Subscribed channels → topic. */
  readonly #channels = new Map<string, string>();
  readonly #listener = (message: string, channel: string): void => this.#onMessage(message, channel);

  /**
   * Configures the broker; nothing connects until the hub calls `start()`.
   * @throws RangeError when `presenceRefresh` is not shorter than `presenceTtl`, or
   * `idempotencyWindow` is not a positive number.
   */
  constructor(options: RedisBrokerOptions = {}) {
    this.#url = options.url ?? 'redis://127.0.0.1:6379';
    this.#prefix = options.prefix ?? 'duplex:';
    this.#metaTtl = options.metaTtl ?? BROKER_DEFAULTS.metaTtl;
    this.#connectTimeout = options.connectTimeout ?? 5_000;
    this.#idempotencyWindow = idempotencyWindowOf(this.name, options);
    this.#liveness = new PresenceLiveness(this.name, options, {
      reachable: () => this.#client !== undefined && this.#client.isReady,
      refresh: () => this.#refresh(),
      rejoin: (topic, member) => this.#announceJoin(this.#client!, topic, member),
      sweep: () => this.#sweep(),
      leave: async (topic, member) => {
        await scripts.leave.run(this.#client!, [this.#key(topic, 'presence')], [member.connId, this.#channel(topic)]);
      },
      forget: async () => {
        await this.#client!.sendCommand(['ZREM', this.#nodesKey(), this.#node!.id]);
        await this.#client!.sendCommand(['DEL', this.#nodeTopicsKey(this.#node!.id)]);
      },
    });
  }

  /** The client name of this node's subscriber connection (as CLIENT LIST shows it). */
  get subscriberName(): string | undefined {
    return this.#node === undefined ? undefined : clientName('sub', this.#node.id);
  }

  async start(node: BrokerNode): Promise<void> {
    assertStartable(this.name, this.#node !== undefined, this.#closed);
    this.#node = node;
    const client = this.#makeClient(clientName('cmd', node.id), 0);
    // The subscriber connection only listens: if Redis dropped it while the network was cut (it
    // gave up retransmitting, or the pub/sub output buffer limit), nothing tells this node — it
    // sat deaf, delivering nothing, until TCP keepalive (node-redis: after 30 s idle) noticed.
    // So it is probed every liveness period, twice over: TCP keepalive after that much silence
    // (the peer resets a connection it forgot), and a PING (which also reaches through a TCP
    // proxy in front of Redis, where keepalive tests only the hop to the proxy; but node-redis
    // sends the next PING only once the last was answered, so a PONG lost in the cut stops the
    // PINGs — keepalive covers that). Then the reconnection's catch-up follows. The command
    // connection needs neither: the liveness refresh writes on it that often anyway. Found by
    // the partition test (docs/partitions.md).
    const subscriber = this.#makeClient(clientName('sub', node.id), this.#liveness.refresh);
    this.#client = client;
    this.#subscriber = subscriber;
    subscriber.on('ready', () => {
      // node-redis has resubscribed every channel before 'ready' (it is part of the connection
      // handshake), so anything published from now on is delivered and history covers the rest.
      if (this.#subscriberReadyOnce && !this.#closed) node.onReconnect();
      this.#subscriberReadyOnce = true;
    });
    try {
      await Promise.all([client.connect(), subscriber.connect()]);
      await this.#liveness.refreshNow();
    } catch (error) {
      this.#node = undefined;
      this.#closed = true;
      await Promise.allSettled([client.destroy(), subscriber.destroy()]);
      throw new RedisBrokerError(`redis broker: cannot reach Redis at ${this.#url} (is redis-server running?)`, { cause: error });
    }
    this.#updateState();
    this.#liveness.start();
  }

  async subscribe(topic: string): Promise<void> {
    const subscriber = this.#started().subscriber;
    const channel = this.#channel(topic);
    if (this.#channels.has(channel)) return;
    this.#channels.set(channel, topic);
    try {
      await subscriber.subscribe(channel, this.#listener);
    } catch (error) {
      this.#channels.delete(channel);
      throw new RedisBrokerError(`redis broker: could not subscribe to ${topic}`, { cause: error });
    }
  }

  async unsubscribe(topic: string): Promise<void> {
    const channel = this.#channel(topic);
    if (!this.#channels.delete(channel) || this.#subscriber === undefined || this.#closed) return;
    await this.#subscriber.unsubscribe(channel, this.#listener);
  }

  async publish(topic: string, data: string, history: HistoryOptions, publisher?: string, idempotencyKey?: string): Promise<Publication> {
    const { client } = this.#started();
    // JSON-encode the publisher so a connection id can never break the line-based message format.
    const publisherField = publisher === undefined ? '' : JSON.stringify(publisher);
    const keys = [this.#key(topic, 'meta'), this.#key(topic, 'stream')];
    if (idempotencyKey !== undefined) keys.push(this.#idempotencyKey(topic, idempotencyKey));
    const reply = asArray(
      'publish',
      await scripts.publish.run(client, keys, [
        this.#channel(topic),
        data,
        publisherField,
        String(Math.max(0, Math.floor(history.size))),
        String(Math.max(0, Math.floor(history.ttl))),
        String(this.#metaTtl),
        newEpoch(),
        String(this.#idempotencyWindow),
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
    const { client } = this.#started();
    const reply = asArray(
      'history',
      await scripts.history.run(client, [this.#key(topic, 'meta'), this.#key(topic, 'stream')], [
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
    const { client } = this.#started();
    this.#liveness.members.add(topic, member);
    await this.#announceJoin(client, topic, member);
  }

  async leave(topic: string, member: PresenceMember): Promise<void> {
    const { client } = this.#started();
    const left = this.#liveness.members.remove(topic, member.connId);
    await scripts.leave.run(client, [this.#key(topic, 'presence')], [member.connId, this.#channel(topic)]);
    if (left?.size === 0) {
      this.#liveness.members.drop(topic);
      await client.sendCommand(['SREM', this.#nodeTopicsKey(this.#node!.id), topic]);
    }
  }

  async presence(topic: string): Promise<PresenceMember[]> {
    const { client } = this.#started();
    const reply = await scripts.presence.run(client, [this.#key(topic, 'presence'), this.#nodesKey()], [this.#channel(topic)]);
    return asArray('presence', reply).map((json) => parseMember(asString('presence', json)));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#liveness.stop();
    const client = this.#client;
    const subscriber = this.#subscriber;
    if (this.#node === undefined || client === undefined || subscriber === undefined) return;
    this.#channels.clear();
    // Announce this node's leaves before going; if Redis is unreachable, the other nodes remove
    // them once this node's liveness deadline passes.
    await this.#liveness.leave();
    await Promise.allSettled([subscriber.close(), client.close()]);
    this.#state.set('disconnected', this.#node);
  }

  #makeClient(name: string, probe: number): RedisClient {
    let readyOnce = false;
    // The first connection must succeed (start() rejects otherwise); later losses are retried
    // with capped exponential backoff plus jitter.
    const client = redisClient(this.#url, name, this.#connectTimeout, probe, (retries, cause) =>
      !readyOnce || this.#closed ? cause : Math.min(50 * 2 ** retries, 2000) + Math.floor(Math.random() * 100),
    );
    client.on('ready', () => {
      readyOnce = true;
      this.#updateState();
    });
    client.on('end', () => this.#updateState());
    client.on('reconnecting', () => this.#updateState());
    // node-redis emits 'error' on every connection failure; without a listener it would throw.
    client.on('error', () => this.#updateState());
    return client;
  }

  #updateState(): void {
    const up = this.#client?.isReady === true && this.#subscriber?.isReady === true;
    this.#state.set(up && !this.#closed ? 'connected' : 'disconnected', this.#node);
  }

  #onMessage(message: string, channel: string): void {
    const topic = this.#channels.get(channel);
    const node = this.#node;
    if (topic === undefined || node === undefined || this.#closed) return;
    try {
      if (message.startsWith('P\n')) {
        node.onPublication(parseRecord(topic, message, 2));
      } else if (message.startsWith('J\n') || message.startsWith('L\n')) {
        const event: PresenceEvent = { topic, kind: message[0] === 'J' ? 'join' : 'leave', member: parseMember(message.slice(2)) };
        node.onPresence(event);
      }
    } catch (error) {
      // A throwing hub callback must not kill the subscriber connection's parser.
      throwLater(error);
    }
  }

  async #announceJoin(client: RedisClient, topic: string, member: PresenceMember): Promise<void> {
    const json = JSON.stringify(member);
    // One MULTI: the member, the node's topic index (for sweeping it if this node dies), the join.
    await client
      .multi()
      .hSet(this.#key(topic, 'presence'), member.connId, json)
      .sAdd(this.#nodeTopicsKey(member.node), topic)
      .publish(this.#channel(topic), `J\n${json}`)
      .exec();
  }

  /** Set this node's deadline to now + ttl (Redis clock); true if the node was absent from the set. */
  async #refresh(): Promise<boolean> {
    const added = asNumber('refresh', await scripts.refresh.run(this.#client!, [this.#nodesKey()], [this.#node!.id, String(this.#liveness.ttl)]));
    return added === 1;
  }

  /** Take the nodes past their deadline out of the set (each to one sweeper) and remove their members. */
  async #sweep(): Promise<void> {
    const client = this.#client!;
    const dead = asArray('sweep', await scripts.sweep.run(client, [this.#nodesKey()], []));
    for (const id of dead.map((d) => asString('sweep', d))) {
      // The presence script removes the dead node's members and announces their leaves.
      const topics = asArray('smembers', await client.sendCommand(['SMEMBERS', this.#nodeTopicsKey(id)]));
      for (const topic of topics.map((t) => asString('smembers', t))) {
        await scripts.presence.run(client, [this.#key(topic, 'presence'), this.#nodesKey()], [this.#channel(topic)]);
      }
      await client.sendCommand(['DEL', this.#nodeTopicsKey(id)]);
    }
  }

  #started(): { client: RedisClient; subscriber: RedisClient } {
    assertStarted(this.name, this.#node !== undefined && this.#client !== undefined && this.#subscriber !== undefined, this.#closed);
    return { client: this.#client!, subscriber: this.#subscriber! };
  }

  // Keys of one topic share the hash tag {topic}, so they live in one slot should Redis Cluster
  // be used (a script may only touch keys of one slot).
  #key(topic: string, kind: 'meta' | 'stream' | 'presence'): string {
    return `${this.#prefix}{${topic}}:${kind}`;
  }

  /** The record of an idempotency key: the topic's hash tag first, so it lives in the topic's slot. */
  #idempotencyKey(topic: string, key: string): string {
    return `${this.#prefix}{${topic}}:idem:${key}`;
  }

  #channel(topic: string): string {
    return `${this.#prefix}pub:${topic}`;
  }

  #nodesKey(): string {
    return `${this.#prefix}nodes`;
  }

  #nodeTopicsKey(nodeId: string): string {
    return `${this.#prefix}node:${nodeId}:topics`;
  }
}
