/**
 * The NATS broker: hub nodes share topics, history and presence through a NATS server (≥ 2.9)
 * with JetStream enabled (`nats-server -js`), using the official `nats` client (v2).
 *
 * - **History and offsets**: one JetStream stream (`<prefix>.hist.>`, one subject per topic).
 *   A publication is stored with `expect.lastSubjectSequence` set to the stream sequence of the
 *   topic's previous message, carrying offset = previous offset + 1 in a header. JetStream rejects
 *   the write if another node stored one in between ("wrong last sequence"), and the publisher
 *   retries from the new last message: an optimistic lock per subject, so offsets are +1 per
 *   topic across nodes and the stream's storage order is the offset order. Publications of one
 *   node to one topic are also queued locally, so contention exists only between nodes. On a
 *   replicated stream the lock does not hold against publishes in flight (see `#append`), so
 *   each message there also carries the id of its slot (`Nats-Msg-Id` = "successor of sequence
 *   n"), which JetStream's dedupe lets through once.
 * - **Fan-out**: the stream's RePublish rule (server 2.9) republishes every stored message onto
 *   core NATS `<prefix>.pub.<topic>` in storage order, so every node receives a topic's
 *   publications in offset order, and only after they are stored. Nodes subscribe to the core
 *   subjects of their topics; presence events travel on the same subjects.
 * - **Retention**: JetStream's limits are per stream, not per topic, so a topic's `size` and
 *   `ttl` travel in headers and are applied when reading (exactly like the memory broker);
 *   storage is bounded by purging the subject down to `size` messages (`purge` with `keep`) every
 *   `size/2` publications, and by the stream's `max_age` (`metaTtl`). The newest message of a
 *   subject is always kept, because it holds the topic's last offset and epoch.
 * - **Epoch**: the epoch of a topic's messages; when a topic has none (never published, or all
 *   aged out), a JetStream KV bucket holds the epoch to use next, created if absent
 *   (`kv.create`, one creator wins) and replaced by deleting its revision and creating anew.
 * - **Idempotency keys**: JetStream's own dedupe makes the publish atomic: the message carries
 *   `Nats-Msg-Id` = topic token + key hash, and the stream's `duplicate_window` is the
 *   `idempotencyWindow` (at most the stream's max age, `metaTtl`; 20 s on a replicated stream,
 *   whose ids are the slots'). nats-server checks the id
 *   before the `expect.lastSubjectSequence` lock, so a duplicate is acknowledged as `duplicate`
 *   with the first message's `seq` even when its lock is stale, and concurrent publishes with
 *   one key from any node store one message. That message answers the duplicate, read by its
 *   `seq` — unless the subject's purge took it already. So the first publisher also writes the
 *   publication to a KV bucket (`<prefix>-idem`, entries live for the window), which answers
 *   then, and which every keyed publish reads first: it also holds what the dedupe table loses
 *   when nats-server restarts (the table is rebuilt from stored messages only, and a purged
 *   one is not there). On a replicated stream the message id is the slot's, so the key is
 *   claimed in that bucket first (`IdempotencyRecords.publishOnce`).
 * - **Presence**: a KV bucket (`<node>.<topic>.<conn>` → member) and a KV bucket of node
 *   heartbeats, written every `presenceRefresh` ms (default 3 s). A node whose heartbeat is older
 *   than `presenceTtl` (default 10 s, judged by the server's timestamp of the KV entry against
 *   this machine's clock) is dead: `presence()` leaves its members out, and every node sweeps
 *   dead nodes on its timer, deleting their members by revision (so each leave is announced
 *   once; `nats-presence.ts`). Leaves of a crashed node are announced within `presenceTtl + presenceRefresh`.
 *   Liveness is judged only once this node's own heartbeats have been written for a whole
 *   `presenceTtl`: while the bucket cannot be written (no server, or no leader) every heartbeat
 *   ages alike, and right after, live nodes would look dead.
 * - **Connection loss**: the client reconnects forever (to any server listed or learnt from the
 *   cluster); once it has reconnected, the server has its subscriptions back (a flush) and the
 *   history stream has a leader again, the broker calls `onReconnect` so the hub catches up.
 * - **Clusters** (`nats-streams.ts`): the stream and the buckets have `replicas` copies
 *   (JetStream's RAFT: a publish is acknowledged once a majority stored it). When a server
 *   dies, the streams it led have no leader until another is elected (seconds): a publish that
 *   finds none is sent again for up to `timeout` ms (nothing received it, so nothing was stored).
 * @module duplex-ws/hub/nats
 */

import type {
  JetStreamClient,
  JetStreamManager,
  NatsConnection,
  Msg,
  MsgHdrs,
  PubAck,
  Subscription,
} from 'nats';
import { requirePeer } from '../../node/peer.js';

// nats.js is an optional peer dependency: loaded here, by `duplex-ws/hub/nats` only.
const { connect } = requirePeer<typeof import('nats')>('nats', 'duplex-ws/hub/nats');

import type { Broker, BrokerNode, BrokerState, HistoryOptions, HistorySlice, PresenceMember, Publication } from '../broker.js';
import {
  H,
  decoder,
  encoder,
  idempotencyId,
  NatsBrokerError,
  isCasConflict,
  isNoResponders,
  lastOf,
  slotId,
  nanos,
  parseStored,
  publicationHeaders,
  publicationOf,
  sleep,
  token,
  type Last,
  type PresenceRecord,
} from './nats-format.js';
import { HistoryStream } from './nats-history.js';
import { IdempotencyRecords } from './nats-idempotency.js';
import { NatsPresence } from './nats-presence.js';
import { ensureStream, openBucket, replicasOf } from './nats-streams.js';
import {
  BROKER_DEFAULTS,
  ConnectionState,
  PresenceLiveness,
  assertStartable,
  assertStarted,
  idempotencyWindowOf,
  throwLater,
  type IdempotencyOptions,
  type LivenessOptions,
} from './shared.js';

export { NatsBrokerError };

/** Options of {@link NatsBroker}. */
export interface NatsBrokerOptions extends LivenessOptions, IdempotencyOptions {
  /**
   * NATS server(s): `host:port` or `nats://host:port`, an array of them, or one string of them
   * separated by commas (`nats://a:4222,nats://b:4222`). For a cluster, list several: the client
   * connects to one (in random order) and, when it dies, reconnects to another (it also learns
   * the cluster's other servers from the one it is connected to). Default `127.0.0.1:4222`.
   */
  readonly servers?: string | string[];
  /**
   * How many servers keep a copy of the history stream and of every KV bucket (JetStream's
   * `num_replicas`, 1 to 5). 1 (the default) for a single server; 3 on a cluster of 3 or more
   * JetStream servers, so that losing one loses nothing acknowledged. A stream or bucket that
   * exists with another count is brought to this one at `start()` (the node that starts last
   * decides, so give every node the same); `start()` rejects with a `NatsBrokerError` when the
   * servers cannot hold that many copies.
   */
  readonly replicas?: number;
  /** First token of every subject, and prefix of the stream and bucket names. Default `duplex`. */
  readonly prefix?: string;
  /** How long a topic's last offset and epoch outlive its last publication (ms): the stream's max age. Default 30 days. */
  readonly metaTtl?: number;
  /** Connection and JetStream request timeout (ms). Default 5 000. */
  readonly timeout?: number;
}

/** ms between two sends of a publish that found no stream leader (one is being elected). */
const LEADERLESS_RETRY = 100;
/**
 * ms the replicated history stream remembers a slot id (its duplicate window). Two publishes
 * racing for a slot are stored, or dropped as duplicates, within moments of each other (at most
 * seconds around a leader change); a later one fails the per-subject lock against what is
 * stored. nats-server keeps every id of the window in memory, and there is one per publication.
 */
const SLOT_DEDUPE_WINDOW = 20_000;
/** ms a reconnected broker waits for each answer while it asks whether the history stream has a leader. */
const LEADER_PROBE_TIMEOUT = 500;

/** The `servers` option as a list: a string may hold several, separated by commas. */
function serverList(servers: string | readonly string[]): string[] {
  const list = (typeof servers === 'string' ? [servers] : [...servers]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new RangeError('nats broker: servers must name at least one server');
  return list;
}

/** The NATS {@link Broker}: one instance per hub node. */
export class NatsBroker implements Broker {
  readonly name = 'nats';
  readonly #servers: string[];
  readonly #replicas: number;
  readonly #prefix: string;
  readonly #metaTtl: number;
  readonly #timeout: number;
  readonly #idempotencyWindow: number;
  readonly #stream: string;
  /** Liveness in a KV bucket of node heartbeats; this node's members, for close() and rejoining. */
  readonly #liveness: PresenceLiveness;
  readonly #state = new ConnectionState();
  #node: BrokerNode | undefined;
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;
  #jsm: JetStreamManager | undefined;
  /** Reads of the history stream and the epochs bucket. */
  #hist: HistoryStream | undefined;
  /** Publications made with an idempotency key, each for the window. */
  #idempotent: IdempotencyRecords | undefined;
  /** The presence members and node heartbeats buckets. */
  #presence: NatsPresence | undefined;
  #closed = false;
  /** Counts disconnects and reconnects: a resume started for an older one gives up. */
  #link = 0;
  readonly #subs = new Map<string, Subscription>();
  /**
   * Members whose join could not be stored (the bucket had no leader, or the connection was
   * down): the hub keeps their subscriptions, so each liveness tick tries again until it is.
   */
  readonly #unjoined = new Map<string, { readonly topic: string; readonly member: PresenceMember }>();
  /** Last stored message per topic, from our acks and deliveries: saves a lookup per publish. */
  readonly #last = new Map<string, Last>();
  /** Per-topic publish queue: one in flight per topic per node. */
  readonly #queues = new Map<string, Promise<unknown>>();

  /**
   * Configures the broker; nothing connects until the hub calls `start()`, which also creates the
   * stream and KV buckets if they are missing.
   * @throws RangeError when `presenceRefresh` is not shorter than `presenceTtl`,
   * `idempotencyWindow` is not a positive number, or `replicas` is not a whole number from 1 to 5.
   */
  constructor(options: NatsBrokerOptions = {}) {
    this.#servers = serverList(options.servers ?? '127.0.0.1:4222');
    this.#replicas = replicasOf(options.replicas);
    this.#prefix = options.prefix ?? 'duplex';
    this.#metaTtl = options.metaTtl ?? BROKER_DEFAULTS.metaTtl;
    this.#timeout = options.timeout ?? 5_000;
    this.#idempotencyWindow = idempotencyWindowOf(this.name, options);
    this.#stream = `${this.#prefix.replace(/[^\w-]/g, '_').toUpperCase()}_HIST`;
    this.#liveness = new PresenceLiveness(this.name, options, {
      reachable: () => this.#nc !== undefined && !this.#nc.isClosed() && this.#presence !== undefined && this.#node !== undefined,
      refresh: async () => {
        const absent = await this.#presence!.heartbeat(this.#node!.id);
        await this.#retryJoins();
        return absent;
      },
      rejoin: (topic, member) => this.#presence!.join(topic, member),
      sweep: () => this.#presence!.sweep(),
      leave: (topic, member) => this.#presence!.leave(topic, member),
      forget: () => this.#presence!.forget(this.#node!.id),
    });
  }

  async start(node: BrokerNode): Promise<void> {
    assertStartable(this.name, this.#node !== undefined, this.#closed);
    this.#node = node;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: this.#servers,
        name: `duplex:${node.id}`,
        timeout: this.#timeout,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
      });
    } catch (error) {
      this.#closed = true;
      throw new NatsBrokerError(`nats broker: cannot reach NATS at ${this.#servers.join(', ')} (is nats-server running?)`, { cause: error });
    }
    this.#nc = nc;
    try {
      const jsm = await nc.jetstreamManager({ timeout: this.#timeout });
      await ensureStream(jsm, this.#streamConfig(), this.#replicas, this.#timeout);
      const js = nc.jetstream({ timeout: this.#timeout });
      const kvName = (what: string): string => `${this.#prefix.replace(/[^\w-]/g, '_')}-${what}`;
      const bucket = { replicas: this.#replicas, timeout: this.#timeout };
      this.#hist = new HistoryStream({
        jsm,
        stream: this.#stream,
        subject: (topic) => this.#histSubject(topic),
        epochs: { kv: await openBucket(js, jsm, kvName('epochs'), { ...bucket, ttl: this.#metaTtl }), bucket: kvName('epochs') },
      });
      this.#presence = new NatsPresence({
        nc,
        jsm,
        members: { kv: await openBucket(js, jsm, kvName('presence'), bucket), bucket: kvName('presence') },
        nodes: { kv: await openBucket(js, jsm, kvName('nodes'), bucket), bucket: kvName('nodes') },
        ttl: this.#liveness.ttl,
        subject: (topic) => this.#pubSubject(topic),
      });
      this.#idempotent = await IdempotencyRecords.open(js, jsm, kvName('idem'), this.#idempotencyWindow, this.#replicas, this.#timeout);
      this.#jsm = jsm;
      this.#js = js;
      await this.#presence.heartbeat(node.id);
    } catch (error) {
      this.#closed = true;
      await nc.close().catch(() => undefined);
      // Ours name what to change (replicas the servers cannot hold); the client's mean no JetStream.
      if (error instanceof NatsBrokerError) throw error;
      throw new NatsBrokerError('nats broker: JetStream is not usable (start nats-server with -js)', { cause: error });
    }
    void this.#watchStatus(nc, node);
    this.#setState('connected');
    this.#liveness.start();
  }

  async subscribe(topic: string): Promise<void> {
    const { nc } = this.#started();
    if (this.#subs.has(topic)) return;
    const sub = nc.subscribe(this.#pubSubject(topic), { callback: (error, msg) => error === null && this.#onMessage(topic, msg) });
    this.#subs.set(topic, sub);
    // The server has the subscription once a round trip after it completes.
    await nc.flush();
  }

  async unsubscribe(topic: string): Promise<void> {
    const sub = this.#subs.get(topic);
    if (sub === undefined) return;
    this.#subs.delete(topic);
    sub.unsubscribe();
    if (!this.#closed) await this.#nc?.flush();
  }

  publish(topic: string, data: string, history: HistoryOptions, publisher?: string, idempotencyKey?: string): Promise<Publication> {
    try {
      this.#started();
    } catch (error) {
      return Promise.reject(error);
    }
    // One publication in flight per topic per node: retries then only race other nodes (and a
    // retried key on this node finds the first one's record written).
    const previous = this.#queues.get(topic) ?? Promise.resolve();
    const next = previous.then(
      () => this.#publish(topic, data, history, publisher, idempotencyKey),
      () => this.#publish(topic, data, history, publisher, idempotencyKey),
    );
    this.#queues.set(topic, next);
    void next.finally(() => {
      if (this.#queues.get(topic) === next) this.#queues.delete(topic);
    }).catch(() => undefined);
    return next;
  }

  async history(topic: string, offset: number, epoch: string | undefined): Promise<HistorySlice> {
    return this.#started().hist.slice(topic, offset, epoch);
  }

  async join(topic: string, member: PresenceMember): Promise<void> {
    const { presence } = this.#started();
    this.#liveness.members.add(topic, member);
    const key = `${topic}\n${member.connId}`;
    try {
      await presence.join(topic, member);
      this.#unjoined.delete(key);
    } catch (error) {
      // The hub logs it and keeps the subscription: the liveness loop stores the member later.
      this.#unjoined.set(key, { topic, member });
      throw error;
    }
  }

  async leave(topic: string, member: PresenceMember): Promise<void> {
    const { presence } = this.#started();
    if (this.#liveness.members.remove(topic, member.connId)?.size === 0) this.#liveness.members.drop(topic);
    this.#unjoined.delete(`${topic}\n${member.connId}`);
    await presence.leave(topic, member);
  }

  async presence(topic: string): Promise<PresenceMember[]> {
    return this.#started().presence.members(topic);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#liveness.stop();
    const nc = this.#nc;
    if (nc === undefined || this.#node === undefined) return;
    for (const sub of this.#subs.values()) sub.unsubscribe();
    this.#subs.clear();
    // Remove this node's members and heartbeat; if NATS is unreachable, the heartbeat ageing out covers it.
    await this.#liveness.leave();
    await Promise.allSettled([...this.#queues.values()]);
    await nc.drain().catch(() => nc.close());
    this.#setState('disconnected');
  }

  async #publish(topic: string, data: string, history: HistoryOptions, publisher: string | undefined, idempotencyKey: string | undefined): Promise<Publication> {
    if (idempotencyKey === undefined) return this.#append(topic, data, history, publisher, {});
    const id = idempotencyId(topic, idempotencyKey);
    const first = await this.#idempotentPublication(topic, id);
    if (first !== undefined) return first;
    // One server: the message id is the key's, and JetStream's dedupe makes the publish atomic.
    if (this.#replicas === 1) return this.#append(topic, data, history, publisher, { msgId: id });
    // Replicated: the message id must claim the topic's slot (see #append), so the key is
    // claimed first, in its own bucket, and the publication then carries it in a header.
    try {
      return await this.#idempotent!.publishOnce(topic, id, this.#timeout, {
        publish: (deadline) => this.#append(topic, data, history, publisher, { key: id, deadline }),
        find: (since) => this.#hist!.findKeyed(topic, id, since),
      });
    } catch (error) {
      if (error instanceof NatsBrokerError) throw error;
      throw new NatsBrokerError(`nats broker: could not publish to ${topic} with an idempotency key`, { cause: error });
    }
  }

  /**
   * Store a publication as the topic's next one and return it. `msgId`: the message id of a
   * keyed publish on one server (a duplicate is answered with the first publication); `key`: the
   * idempotency id a replicated keyed publish carries in a header; `deadline`: no send after it.
   */
  async #append(
    topic: string,
    data: string,
    history: HistoryOptions,
    publisher: string | undefined,
    options: { readonly msgId?: string; readonly key?: string; readonly deadline?: number },
  ): Promise<Publication> {
    const { js, jsm, hist } = this.#started();
    const subject = this.#histSubject(topic);
    const size = Math.max(0, Math.floor(history.size));
    const ttl = Math.max(0, Math.floor(history.ttl));
    for (let attempt = 0; ; attempt++) {
      let last = this.#last.get(topic);
      if (last === undefined) {
        const stored = await hist.last(topic);
        last = stored === undefined ? { seq: 0, offset: 0, epoch: await hist.epochForEmpty(topic, true) } : lastOf(stored);
      }
      const offset = last.offset + 1;
      const time = Date.now();
      const h = publicationHeaders(topic, offset, last, time, size, ttl, publisher, options.key);
      // On a replicated stream the lock alone does not serialise publishes: the stream leader
      // checks it before the RAFT proposal, against what is stored and not what is in flight, so
      // two nodes' concurrent publishes after one message can both be stored with one offset
      // (nats-server#4320, fixed in 2.9.21; leader changes still reset that check). Its message
      // id dedupe is checked against what is in flight: an id per slot, "the successor of
      // sequence n", lets one publication through per slot.
      const msgId = options.msgId ?? (this.#replicas > 1 ? slotId(topic, last.seq) : undefined);
      const ack = await this.#store(js, topic, subject, data, h, last.seq, msgId, options.deadline);
      const slotTaken = ack !== undefined && ack.duplicate && options.msgId === undefined;
      if (ack === undefined || slotTaken) {
        // Another node stored one first: read the topic's last message again and retry.
        this.#last.delete(topic);
        if (attempt >= 200) throw new NatsBrokerError(`nats broker: too much contention publishing to ${topic}`);
        if (attempt >= 3) await sleep(Math.random() * Math.min(20, attempt));
        continue;
      }
      // The key's id was seen within the window: nothing was stored, the first publication answers.
      if (ack.duplicate && options.msgId !== undefined) return await this.#duplicateOf(topic, subject, options.msgId, ack.seq);
      this.#remember(topic, { seq: ack.seq, offset, epoch: last.epoch });
      const keep = Math.max(1, size);
      if (offset % Math.max(1, Math.ceil(size / 2)) === 0 && offset > keep) {
        // Bound storage; the newest `keep` messages stay (reads apply the exact size anyway).
        void jsm.streams.purge(this.#stream, { filter: subject, keep }).catch(() => undefined);
      }
      const publication: Publication = { topic, offset, epoch: last.epoch, data, time, publisher };
      if (options.msgId !== undefined) {
        // It is published either way, so a record that could not be written does not fail the
        // publish. It costs what only the record gives: the answer to a retry that comes after
        // the message was purged (that retry rejects; JetStream still refuses to store it), and
        // the dedupe of a retry after nats-server restarted.
        await this.#idempotent!.put(options.msgId, publication).catch(() => undefined);
      }
      return publication;
    }
  }

  /** Store the members whose join failed (see `#unjoined`); the first failure ends the attempt until the next tick. */
  async #retryJoins(): Promise<void> {
    for (const [key, { topic, member }] of this.#unjoined) {
      await this.#presence!.join(topic, member);
      this.#unjoined.delete(key);
    }
  }

  /**
   * Store a publication if the topic's last message is still `lastSeq` (optimistic lock); with a
   * message id, JetStream drops a duplicate within its window before checking the lock (its ack
   * says `duplicate`, with the first message's sequence). Undefined when the lock failed. No
   * send after `until` (ms), the deadline of a claimed keyed publish.
   * While the stream has no leader (a cluster electing one after a server died), the publish is
   * sent again for up to the request timeout: nobody received it, so nothing was stored.
   */
  async #store(js: JetStreamClient, topic: string, subject: string, data: string, h: MsgHdrs, lastSeq: number, id: string | undefined, until?: number): Promise<PubAck | undefined> {
    const deadline = Math.min(Date.now() + this.#timeout, until ?? Number.POSITIVE_INFINITY);
    if (Date.now() > deadline) throw new NatsBrokerError(`nats broker: could not publish to ${topic} in time`);
    const payload = encoder.encode(data);
    for (;;) {
      try {
        return await js.publish(subject, payload, {
          headers: h,
          expect: { lastSubjectSequence: lastSeq },
          ...(id === undefined ? {} : { msgID: id }),
        });
      } catch (error) {
        if (isCasConflict(error)) return undefined;
        // Not a timeout: that one may have been stored, and only the lock (or the id) can tell.
        if (isNoResponders(error) && !this.#closed && Date.now() + LEADERLESS_RETRY < deadline) {
          await sleep(LEADERLESS_RETRY);
          continue;
        }
        throw new NatsBrokerError(`nats broker: could not publish to ${topic}`, { cause: error });
      }
    }
  }

  /** The publication recorded under idempotency id `id` within this node's window, if any, waited for up to `wait` ms. */
  async #idempotentPublication(topic: string, id: string, wait = 0): Promise<Publication | undefined> {
    try {
      return await this.#idempotent!.waitFor(topic, id, wait);
    } catch (error) {
      throw new NatsBrokerError(`nats broker: could not read the idempotency record of a publish to ${topic}`, { cause: error });
    }
  }

  /**
   * The first publication of a publish JetStream acknowledged as a duplicate of message `seq`:
   * that message, or, if the subject's purge took it, the record its publisher writes right
   * after its acknowledgement (waited for up to the request timeout).
   */
  async #duplicateOf(topic: string, subject: string, id: string, seq: number): Promise<Publication> {
    const stored = await this.#hist!.at(seq);
    if (stored !== undefined && stored.subject === subject) return parseStored(topic, stored);
    const first = await this.#idempotentPublication(topic, id, this.#timeout);
    if (first !== undefined) return first;
    throw new NatsBrokerError(`nats broker: a publication to ${topic} with this idempotency key exists (stream sequence ${seq}) but can no longer be read`);
  }

  #remember(topic: string, last: Last): void {
    const known = this.#last.get(topic);
    if (known === undefined || known.seq < last.seq) this.#last.set(topic, last);
  }

  #onMessage(topic: string, msg: Msg): void {
    const node = this.#node;
    if (node === undefined || this.#closed || !this.#subs.has(topic) || msg.headers === undefined) return;
    const h = msg.headers;
    try {
      const kind = h.get(H.kind);
      if (kind === 'join' || kind === 'leave') {
        const record = JSON.parse(decoder.decode(msg.data)) as PresenceRecord;
        node.onPresence({ topic, kind, member: record.member });
        return;
      }
      const publication = publicationOf(topic, h, decoder.decode(msg.data));
      const seq = Number(h.get(H.sequence));
      if (seq > 0) this.#remember(topic, { seq, offset: publication.offset, epoch: publication.epoch });
      node.onPublication(publication);
    } catch (error) {
      // A throwing hub callback must not break the subscription.
      throwLater(error);
    }
  }

  async #watchStatus(nc: NatsConnection, node: BrokerNode): Promise<void> {
    for await (const status of nc.status()) {
      if (this.#closed) return;
      if (status.type === 'disconnect') {
        this.#link++;
        this.#presence?.disconnected();
        this.#setState('disconnected');
      } else if (status.type === 'reconnect') {
        this.#last.clear();
        void this.#resume(nc, node, ++this.#link);
      }
    }
  }

  /**
   * After a reconnect: once the server has the subscriptions back (the client re-sent them; a
   * flush makes sure) and the history stream answers with a leader, report connected and let
   * the hub catch up. On a cluster the server that died may have led the stream: until another
   * is elected (seconds), history cannot be read, and a catch-up started at once would give up
   * and report gaps for publications that are safe in the stream.
   */
  async #resume(nc: NatsConnection, node: BrokerNode, link: number): Promise<void> {
    const current = (): boolean => !this.#closed && this.#link === link;
    try {
      await nc.flush();
    } catch {
      return; // disconnected again: the next reconnect resumes
    }
    // Asked often, with a short timeout: a stream without a leader does not answer at all.
    const probe = await nc.jetstreamManager({ timeout: Math.min(this.#timeout, LEADER_PROBE_TIMEOUT), checkAPI: false });
    while (current()) {
      try {
        const { cluster } = await probe.streams.info(this.#stream);
        if (cluster === undefined || (cluster.leader ?? '') !== '') break;
      } catch {
        // No leader yet (the request found none, or timed out): ask again.
      }
      await sleep(LEADERLESS_RETRY);
    }
    if (!current()) return;
    this.#setState('connected');
    node.onReconnect();
  }

  /** The history stream's settings (its replicas are `ensureStream`'s). */
  #streamConfig(): { name: string; subjects: string[]; max_age: number; duplicate_window: number; republish: { src: string; dest: string } } {
    return {
      name: this.#stream,
      subjects: [`${this.#prefix}.hist.>`],
      max_age: nanos(this.#metaTtl),
      // JetStream refuses a duplicate window longer than the max age; past the max age, the
      // idempotency bucket still answers for the rest of the window. Replicated, the ids are
      // the slots' (keys are claimed in their bucket): see SLOT_DEDUPE_WINDOW.
      duplicate_window: nanos(Math.min(this.#replicas > 1 ? SLOT_DEDUPE_WINDOW : this.#idempotencyWindow, this.#metaTtl)),
      republish: { src: `${this.#prefix}.hist.>`, dest: `${this.#prefix}.pub.>` },
    };
  }

  #setState(state: BrokerState): void {
    this.#state.set(state, this.#node);
  }

  #started(): { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager; presence: NatsPresence; hist: HistoryStream } {
    const started = this.#node !== undefined && this.#nc !== undefined && this.#js !== undefined && this.#jsm !== undefined && this.#presence !== undefined && this.#hist !== undefined;
    assertStarted(this.name, started, this.#closed);
    return { nc: this.#nc!, js: this.#js!, jsm: this.#jsm!, presence: this.#presence!, hist: this.#hist! };
  }

  #histSubject(topic: string): string {
    return `${this.#prefix}.hist.${token(topic)}`;
  }

  #pubSubject(topic: string): string {
    return `${this.#prefix}.pub.${token(topic)}`;
  }
}
