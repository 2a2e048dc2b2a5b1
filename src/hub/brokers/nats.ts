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
 *   node to one topic are also queued locally, so contention exists only between nodes.
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
 *   (`kv.create`) and rotated with compare-and-set (`kv.update(key, value, revision)`).
 * - **Idempotency keys**: JetStream's own dedupe makes the publish atomic: the message carries
 *   `Nats-Msg-Id` = topic token + key hash, and the stream's `duplicate_window` is the
 *   `idempotencyWindow` (at most the stream's max age, `metaTtl`). nats-server checks the id
 *   before the `expect.lastSubjectSequence` lock, so a duplicate is acknowledged as `duplicate`
 *   with the first message's `seq` even when its lock is stale, and concurrent publishes with
 *   one key from any node store one message. That message answers the duplicate, read by its
 *   `seq` — unless the subject's purge took it already. So the first publisher also writes the
 *   publication to a KV bucket (`<prefix>-idem`, entries live for the window), which answers
 *   then, and which every keyed publish reads first: it also holds what the dedupe table loses
 *   when nats-server restarts (the table is rebuilt from stored messages only, and a purged
 *   one is not there).
 * - **Presence**: a KV bucket (`<node>.<topic>.<conn>` → member) and a KV bucket of node
 *   heartbeats, written every `presenceRefresh` ms (default 3 s). A node whose heartbeat is older
 *   than `presenceTtl` (default 10 s, judged by the server's timestamp of the KV entry against
 *   this machine's clock) is dead: `presence()` leaves its members out, and every node sweeps
 *   dead nodes on its timer, deleting their members with compare-and-delete (so each leave is
 *   announced once). Leaves of a crashed node are announced within `presenceTtl + presenceRefresh`.
 * - **Connection loss**: the client reconnects forever; after it has reconnected and the server
 *   has its subscriptions back (a flush), the broker calls `onReconnect` so the hub catches up.
 * @module duplex-ws/hub/nats
 */

import type {
  JetStreamClient,
  JetStreamManager,
  KV,
  KvEntry,
  NatsConnection,
  Msg,
  MsgHdrs,
  PubAck,
  Subscription,
  StoredMsg,
  StreamConfig,
} from 'nats';
import { requirePeer } from '../../node/peer.js';

// nats.js is an optional peer dependency: loaded here, by `duplex-ws/hub/nats` only.
const { connect, NatsError } = requirePeer<typeof import('nats')>('nats', 'duplex-ws/hub/nats');

import type { Broker, BrokerNode, BrokerState, HistoryOptions, HistorySlice, PresenceMember, Publication } from '../broker.js';
import {
  H,
  decoder,
  encoder,
  idempotencyId,
  isCasConflict,
  isNotFound,
  lastOf,
  nanos,
  parseStored,
  presenceHeaders,
  publicationHeaders,
  publicationOf,
  sleep,
  token,
  type EpochRecord,
  type Last,
  type PresenceRecord,
} from './nats-format.js';
import { IdempotencyRecords } from './nats-idempotency.js';
import {
  BROKER_DEFAULTS,
  BrokerError,
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

/** Options of {@link NatsBroker}. */
export interface NatsBrokerOptions extends LivenessOptions, IdempotencyOptions {
  /** NATS server(s). Default `127.0.0.1:4222`. */
  readonly servers?: string | string[];
  /** First token of every subject, and prefix of the stream and bucket names. Default `duplex`. */
  readonly prefix?: string;
  /** How long a topic's last offset and epoch outlive its last publication (ms): the stream's max age. Default 30 days. */
  readonly metaTtl?: number;
  /** Connection and JetStream request timeout (ms). Default 5 000. */
  readonly timeout?: number;
}

/** A NATS/JetStream operation failed, or the server lacks what the broker needs. */
export class NatsBrokerError extends BrokerError {
  /** Always `'NatsBrokerError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'NatsBrokerError';
}

/** The NATS {@link Broker}: one instance per hub node. */
export class NatsBroker implements Broker {
  readonly name = 'nats';
  readonly #servers: string | string[];
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
  #epochs: KV | undefined;
  /** Publications made with an idempotency key, each for the window. */
  #idempotent: IdempotencyRecords | undefined;
  #presenceKv: KV | undefined;
  #nodes: KV | undefined;
  #closed = false;
  readonly #subs = new Map<string, Subscription>();
  /** Last stored message per topic, from our acks and deliveries: saves a lookup per publish. */
  readonly #last = new Map<string, Last>();
  /** Per-topic publish queue: one in flight per topic per node. */
  readonly #queues = new Map<string, Promise<unknown>>();

  /**
   * Configures the broker; nothing connects until the hub calls `start()`, which also creates the
   * stream and KV buckets if they are missing.
   * @throws RangeError when `presenceRefresh` is not shorter than `presenceTtl`, or
   * `idempotencyWindow` is not a positive number.
   */
  constructor(options: NatsBrokerOptions = {}) {
    this.#servers = options.servers ?? '127.0.0.1:4222';
    this.#prefix = options.prefix ?? 'duplex';
    this.#metaTtl = options.metaTtl ?? BROKER_DEFAULTS.metaTtl;
    this.#timeout = options.timeout ?? 5_000;
    this.#idempotencyWindow = idempotencyWindowOf(this.name, options);
    this.#stream = `${this.#prefix.replace(/[^\w-]/g, '_').toUpperCase()}_HIST`;
    this.#liveness = new PresenceLiveness(this.name, options, {
      reachable: () => this.#nc !== undefined && !this.#nc.isClosed() && this.#nodes !== undefined && this.#presenceKv !== undefined && this.#node !== undefined,
      refresh: () => this.#heartbeat(),
      rejoin: (topic, member) => this.#announceJoin(this.#nc!, this.#presenceKv!, topic, member),
      sweep: () => this.#sweep(),
      leave: (topic, member) => this.#remove(this.#presenceKv!, this.#presenceKey(this.#node!.id, topic, member.connId)),
      forget: () => this.#nodes!.delete(token(this.#node!.id)),
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
      throw new NatsBrokerError(`nats broker: cannot reach NATS at ${String(this.#servers)} (is nats-server running?)`, { cause: error });
    }
    this.#nc = nc;
    try {
      const jsm = await nc.jetstreamManager({ timeout: this.#timeout });
      await this.#ensureStream(jsm);
      const js = nc.jetstream({ timeout: this.#timeout });
      const kvName = (what: string): string => `${this.#prefix.replace(/[^\w-]/g, '_')}-${what}`;
      this.#epochs = await js.views.kv(kvName('epochs'), { history: 1, ttl: this.#metaTtl, timeout: this.#timeout });
      this.#presenceKv = await js.views.kv(kvName('presence'), { history: 1, timeout: this.#timeout });
      this.#nodes = await js.views.kv(kvName('nodes'), { history: 1, timeout: this.#timeout });
      this.#idempotent = await IdempotencyRecords.open(js, jsm, kvName('idem'), this.#idempotencyWindow, this.#timeout);
      this.#jsm = jsm;
      this.#js = js;
      await this.#nodes.put(token(node.id), encoder.encode(JSON.stringify({ id: node.id })));
    } catch (error) {
      this.#closed = true;
      await nc.close().catch(() => undefined);
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
    this.#started();
    const last = await this.#lastMessage(topic);
    if (last === undefined) return historySlice(await this.#epochForEmpty(topic, false), 0, [], offset, epoch);
    const newest = parseStored(topic, last);
    const size = Number(last.header.get(H.size));
    const ttl = Number(last.header.get(H.ttl));
    const sameEpoch = epoch === undefined || epoch === newest.epoch;
    const now = Date.now();
    const retained: Publication[] = [];
    // Walk back from the newest message through each message's predecessor (its Duplex-Prev
    // header), stopping at the requested offset or where size/ttl retention ends.
    let msg: StoredMsg | undefined = last;
    let pub = newest;
    while (msg !== undefined) {
      if ((sameEpoch && pub.offset <= offset) || newest.offset - pub.offset >= size || !(now - pub.time < ttl)) break;
      retained.push(pub);
      const prev: number = Number(msg.header.get(H.prev));
      msg = prev > 0 ? await this.#messageAt(prev) : undefined;
      if (msg !== undefined) pub = parseStored(topic, msg);
    }
    retained.reverse();
    return historySlice(newest.epoch, newest.offset, retained, offset, epoch);
  }

  async join(topic: string, member: PresenceMember): Promise<void> {
    const { nc, presence } = this.#started();
    this.#liveness.members.add(topic, member);
    await this.#announceJoin(nc, presence, topic, member);
  }

  async leave(topic: string, member: PresenceMember): Promise<void> {
    const { presence } = this.#started();
    if (this.#liveness.members.remove(topic, member.connId)?.size === 0) this.#liveness.members.drop(topic);
    await this.#remove(presence, this.#presenceKey(member.node, topic, member.connId));
  }

  async presence(topic: string): Promise<PresenceMember[]> {
    const { presence } = this.#started();
    const keys = await this.#keys(presence, `*.${token(topic)}.*`);
    const alive = new Map<string, boolean>();
    const members: PresenceMember[] = [];
    for (const key of keys) {
      const entry = await presence.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      const record = JSON.parse(entry.string()) as PresenceRecord;
      const node = record.member.node;
      let isAlive = alive.get(node);
      if (isAlive === undefined) {
        isAlive = await this.#isAlive(node);
        alive.set(node, isAlive);
      }
      if (isAlive) members.push(record.member);
      else await this.#remove(presence, key, entry);
    }
    return members;
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
    const { js, jsm } = this.#started();
    const subject = this.#histSubject(topic);
    const size = Math.max(0, Math.floor(history.size));
    const ttl = Math.max(0, Math.floor(history.ttl));
    const id = idempotencyKey === undefined ? undefined : idempotencyId(topic, idempotencyKey);
    if (id !== undefined) {
      const first = await this.#idempotentPublication(topic, id);
      if (first !== undefined) return first;
    }
    for (let attempt = 0; ; attempt++) {
      let last = this.#last.get(topic);
      if (last === undefined) {
        const stored = await this.#lastMessage(topic);
        last = stored === undefined ? { seq: 0, offset: 0, epoch: await this.#epochForEmpty(topic, true) } : lastOf(stored);
      }
      const offset = last.offset + 1;
      const time = Date.now();
      const h = publicationHeaders(topic, offset, last, time, size, ttl, publisher);
      const ack = await this.#store(js, topic, subject, data, h, last.seq, id);
      if (ack === undefined) {
        // Another node stored one first: read the topic's last message again and retry.
        this.#last.delete(topic);
        if (attempt >= 200) throw new NatsBrokerError(`nats broker: too much contention publishing to ${topic}`);
        if (attempt >= 3) await sleep(Math.random() * Math.min(20, attempt));
        continue;
      }
      // The id was seen within the window: nothing was stored, the first publication answers.
      if (ack.duplicate && id !== undefined) return await this.#duplicateOf(topic, subject, id, ack.seq);
      this.#remember(topic, { seq: ack.seq, offset, epoch: last.epoch });
      const keep = Math.max(1, size);
      if (offset % Math.max(1, Math.ceil(size / 2)) === 0 && offset > keep) {
        // Bound storage; the newest `keep` messages stay (reads apply the exact size anyway).
        void jsm.streams.purge(this.#stream, { filter: subject, keep }).catch(() => undefined);
      }
      const publication: Publication = { topic, offset, epoch: last.epoch, data, time, publisher };
      if (id !== undefined) {
        // It is published either way, so a record that could not be written does not fail the
        // publish. It costs what only the record gives: the answer to a retry that comes after
        // the message was purged (that retry rejects; JetStream still refuses to store it), and
        // the dedupe of a retry after nats-server restarted.
        await this.#idempotent!.put(id, publication).catch(() => undefined);
      }
      return publication;
    }
  }

  /**
   * Store a publication if the topic's last message is still `lastSeq` (optimistic lock); with a
   * message id, JetStream drops a duplicate within its window before checking the lock (its ack
   * says `duplicate`, with the first message's sequence). Undefined when the lock failed.
   */
  async #store(js: JetStreamClient, topic: string, subject: string, data: string, h: MsgHdrs, lastSeq: number, id: string | undefined): Promise<PubAck | undefined> {
    try {
      return await js.publish(subject, encoder.encode(data), {
        headers: h,
        expect: { lastSubjectSequence: lastSeq },
        ...(id === undefined ? {} : { msgID: id }),
      });
    } catch (error) {
      if (isCasConflict(error)) return undefined;
      throw new NatsBrokerError(`nats broker: could not publish to ${topic}`, { cause: error });
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
    const stored = await this.#messageAt(seq);
    if (stored !== undefined && stored.subject === subject) return parseStored(topic, stored);
    const first = await this.#idempotentPublication(topic, id, this.#timeout);
    if (first !== undefined) return first;
    throw new NatsBrokerError(`nats broker: a publication to ${topic} with this idempotency key exists (stream sequence ${seq}) but can no longer be read`);
  }

  /** The epoch for a topic that has no stored message; `forPublish` claims it for a first publication. */
  async #epochForEmpty(topic: string, forPublish: boolean): Promise<string> {
    const kv = this.#epochs!;
    const key = token(topic);
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        const entry = await kv.get(key);
        if (entry === null || entry.operation !== 'PUT') {
          const epoch = newEpoch();
          await kv.create(key, encoder.encode(JSON.stringify({ epoch, used: forPublish } satisfies EpochRecord)));
          return epoch;
        }
        const record = JSON.parse(entry.string()) as EpochRecord;
        if (!record.used) {
          if (!forPublish) return record.epoch;
          await kv.update(key, encoder.encode(JSON.stringify({ epoch: record.epoch, used: true } satisfies EpochRecord)), entry.revision);
          return record.epoch;
        }
        // The epoch was used and its messages are gone: offsets restart, so the epoch changes.
        const epoch = newEpoch();
        await kv.update(key, encoder.encode(JSON.stringify({ epoch, used: forPublish } satisfies EpochRecord)), entry.revision);
        return epoch;
      } catch (error) {
        if (!(error instanceof NatsError)) throw error;
        // Another node created or rotated it first: read again.
      }
    }
    throw new NatsBrokerError(`nats broker: could not settle the epoch of ${topic}`);
  }

  async #lastMessage(topic: string): Promise<StoredMsg | undefined> {
    try {
      return await this.#jsm!.streams.getMessage(this.#stream, { last_by_subj: this.#histSubject(topic) });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new NatsBrokerError(`nats broker: could not read the history of ${topic}`, { cause: error });
    }
  }

  async #messageAt(seq: number): Promise<StoredMsg | undefined> {
    try {
      return await this.#jsm!.streams.getMessage(this.#stream, { seq });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new NatsBrokerError('nats broker: could not read history', { cause: error });
    }
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

  async #announceJoin(nc: NatsConnection, presence: KV, topic: string, member: PresenceMember): Promise<void> {
    const record = encoder.encode(JSON.stringify({ topic, member } satisfies PresenceRecord));
    await presence.put(this.#presenceKey(member.node, topic, member.connId), record);
    const h = presenceHeaders('join');
    nc.publish(this.#pubSubject(topic), record, { headers: h });
  }

  /** Delete a presence entry (compare-and-delete, so only one remover) and announce the leave. */
  async #remove(presence: KV, key: string, known?: KvEntry): Promise<void> {
    const entry = known ?? (await presence.get(key));
    if (entry === null || entry.operation !== 'PUT') return;
    try {
      await presence.delete(key, { previousSeq: entry.revision });
    } catch (error) {
      if (error instanceof NatsError) return; // someone else removed (and announced) it
      throw error;
    }
    const record = JSON.parse(entry.string()) as PresenceRecord;
    const h = presenceHeaders('leave');
    this.#nc?.publish(this.#pubSubject(record.topic), entry.value, { headers: h });
  }

  async #isAlive(nodeId: string): Promise<boolean> {
    const entry = await this.#nodes!.get(token(nodeId));
    return entry !== null && entry.operation === 'PUT' && Date.now() - entry.created.getTime() < this.#liveness.ttl;
  }

  async #keys(kv: KV, filter: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const key of await kv.keys(filter)) keys.push(key);
    return keys;
  }

  /** Write this node's heartbeat; true if it had none (others declared this node dead while it stalled). */
  async #heartbeat(): Promise<boolean> {
    const nodes = this.#nodes!;
    const self = this.#node!;
    const mine = await nodes.get(token(self.id));
    await nodes.put(token(self.id), encoder.encode(JSON.stringify({ id: self.id })));
    return mine === null || mine.operation !== 'PUT';
  }

  /** Delete the heartbeats older than the ttl (compare-and-delete: one sweeper each) and their nodes' members. */
  async #sweep(): Promise<void> {
    const nodes = this.#nodes!;
    const presence = this.#presenceKv!;
    for (const key of await this.#keys(nodes, '>')) {
      const entry = await nodes.get(key);
      if (entry === null || entry.operation !== 'PUT' || Date.now() - entry.created.getTime() < this.#liveness.ttl) continue;
      try {
        await nodes.delete(key, { previousSeq: entry.revision });
      } catch {
        continue; // another node is sweeping it
      }
      for (const memberKey of await this.#keys(presence, `${key}.>`)) await this.#remove(presence, memberKey);
    }
  }

  async #watchStatus(nc: NatsConnection, node: BrokerNode): Promise<void> {
    for await (const status of nc.status()) {
      if (this.#closed) return;
      if (status.type === 'disconnect') {
        this.#setState('disconnected');
      } else if (status.type === 'reconnect') {
        this.#last.clear();
        try {
          // The client re-sent its subscriptions on reconnect; a flush makes sure the server has them.
          await nc.flush();
        } catch {
          continue;
        }
        this.#setState('connected');
        if (!this.#closed) node.onReconnect();
      }
    }
  }

  async #ensureStream(jsm: JetStreamManager): Promise<void> {
    const config: Partial<StreamConfig> & { name: string } = {
      name: this.#stream,
      subjects: [`${this.#prefix}.hist.>`],
      max_age: nanos(this.#metaTtl),
      // JetStream refuses a duplicate window longer than the max age; past the max age, the
      // idempotency bucket still answers for the rest of the window.
      duplicate_window: nanos(Math.min(this.#idempotencyWindow, this.#metaTtl)),
      republish: { src: `${this.#prefix}.hist.>`, dest: `${this.#prefix}.pub.>` },
    };
    try {
      await jsm.streams.info(this.#stream);
      await jsm.streams.update(this.#stream, config);
    } catch (error) {
      if (!(error instanceof NatsError) || !isNotFound(error)) {
        // info() failing with "stream not found" is the normal first start.
        if (!(error instanceof NatsError) || !/not found/i.test(error.message)) throw error;
      }
      try {
        await jsm.streams.add(config);
      } catch (addError) {
        // Another node created it at the same moment.
        if (!(addError instanceof NatsError) || !/already in use/i.test(addError.message)) throw addError;
      }
    }
  }

  #setState(state: BrokerState): void {
    this.#state.set(state, this.#node);
  }

  #started(): { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager; presence: KV } {
    const started = this.#node !== undefined && this.#nc !== undefined && this.#js !== undefined && this.#jsm !== undefined && this.#presenceKv !== undefined;
    assertStarted(this.name, started, this.#closed);
    return { nc: this.#nc!, js: this.#js!, jsm: this.#jsm!, presence: this.#presenceKv! };
  }

  #histSubject(topic: string): string {
    return `${this.#prefix}.hist.${token(topic)}`;
  }

  #pubSubject(topic: string): string {
    return `${this.#prefix}.pub.${token(topic)}`;
  }

  #presenceKey(nodeId: string, topic: string, connId: string): string {
    return `${token(nodeId)}.${token(topic)}.${token(connId)}`;
  }
}
