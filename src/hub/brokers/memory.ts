/**
 * The in-memory broker: the default (zero setup, one process) and the reference behaviour the
 * Redis and NATS brokers are tested against (`test/hub/broker-contract.ts`).
 *
 * One `MemoryBroker` serves one hub node. Several hub nodes in one process share state by
 * deriving their brokers from one another with {@link MemoryBroker.forNode}:
 *
 * ```ts
 * const a = new MemoryBroker();
 * const b = a.forNode(); // same topics, history and presence as `a`
 * await hubA.start(a); await hubB.start(b);
 * ```
 *
 * Delivery is asynchronous and ordered: a publication or presence event is appended to each
 * subscribed node's queue and the queue is drained in a microtask (`queueMicrotask`), never
 * synchronously inside `publish`/`join`/`leave`. So a hub may publish from inside
 * `onPublication` without re-entering itself, and every node sees a topic's publications in
 * offset order (a publish made during a delivery is queued behind the ones already queued).
 *
 * Idempotency keys are remembered per topic for the window of the first broker of the state
 * (`idempotencyWindow`, shared by the brokers `forNode` derives from it).
 */

import type { Broker, BrokerNode, HistoryOptions, HistorySlice, PresenceEvent, PresenceMember, Publication } from '../broker.js';
import { assertStartable, assertStarted, historySlice, idempotencyWindowOf, newEpoch, throwLater, type IdempotencyOptions } from './shared.js';

/** One topic's history: its epoch, last offset, retained publications and retention. */
interface TopicHistory {
  readonly epoch: string;
  offset: number;
  /** Retained publications, oldest first, offsets consecutive. */
  publications: Publication[];
  retention: HistoryOptions;
}

/**
 * The publications made with an idempotency key, by topic and key, each remembered for `window`
 * ms after it was made. Insertion order is expiry order (one window for all of them, on the
 * monotonic clock), so a sweep drops expired entries from the front and stops at the first live
 * one: memory stays bounded by what was published within one window.
 */
class IdempotentPublications {
  readonly #entries = new Map<string, { readonly publication: Publication; readonly expires: number }>();

  constructor(
    /** How long a key is remembered (ms). */
    readonly window: number,
  ) {}

  /** The publication made with `key` on `topic` within the window, if any. */
  get(topic: string, key: string): Publication | undefined {
    return this.#entries.get(IdempotentPublications.#id(topic, key))?.publication;
  }

  /** Remember `publication` as the one made with `key` on its topic. */
  set(key: string, publication: Publication, now: number): void {
    this.#entries.set(IdempotentPublications.#id(publication.topic, key), { publication, expires: now + this.window });
  }

  /** Forget the keys whose window has passed. */
  sweep(now: number): void {
    for (const [id, entry] of this.#entries) {
      if (entry.expires > now) return;
      this.#entries.delete(id);
    }
  }

  /** The number of keys remembered (for tests of the sweep). */
  get size(): number {
    return this.#entries.size;
  }

  // The topic's length first, so no topic/key pair can be read as another ("a"+"bc" vs "ab"+"c").
  static #id(topic: string, key: string): string {
    return `${topic.length}:${topic}${key}`;
  }
}

/** The state several nodes' `MemoryBroker`s share. */
class MemoryState {
  readonly histories = new Map<string, TopicHistory>();
  readonly presence = new Map<string, Map<string, PresenceMember>>();
  readonly brokers = new Set<MemoryBroker>();
  readonly idempotent: IdempotentPublications;

  constructor(idempotencyWindow: number) {
    this.idempotent = new IdempotentPublications(idempotencyWindow);
  }

  /** The topic's history, created (with a fresh epoch) if it does not exist yet. */
  historyOf(topic: string): TopicHistory {
    let history = this.histories.get(topic);
    if (history === undefined) {
      history = { epoch: newEpoch(), offset: 0, publications: [], retention: { size: 0, ttl: 0 } };
      this.histories.set(topic, history);
    }
    return history;
  }

  /** Queue an event on every started broker subscribed to `topic`. */
  fanOut(topic: string, event: QueuedEvent): void {
    for (const broker of this.brokers) broker.enqueue(topic, event);
  }
}

type QueuedEvent =
  | { readonly kind: 'publication'; readonly publication: Publication }
  | { readonly kind: 'presence'; readonly event: PresenceEvent };

/** Drop publications beyond `size` or older than `ttl` ms (0 in either keeps none). */
function trim(history: TopicHistory, now: number): void {
  const { size, ttl } = history.retention;
  const pubs = history.publications;
  if (size <= 0 || ttl <= 0) {
    if (pubs.length > 0) history.publications = [];
    return;
  }
  let start = Math.max(0, pubs.length - size);
  while (start < pubs.length && now - pubs[start]!.time >= ttl) start++;
  if (start > 0) history.publications = pubs.slice(start);
}

/** The in-memory {@link Broker}: one node per instance, shared state via {@link MemoryBroker.forNode}. */
export class MemoryBroker implements Broker {
  readonly name = 'memory';
  readonly #state: MemoryState;
  #node: BrokerNode | undefined;
  #closed = false;
  readonly #topics = new Set<string>();
  readonly #queue: { topic: string; event: QueuedEvent }[] = [];
  #draining = false;

  /**
   * A broker with fresh, unshared state.
   * @throws RangeError when `idempotencyWindow` is not a positive number.
   */
  // The options are spelled out (not `IdempotencyOptions`) so the API docs show them with the class.
  constructor(options?: {
    /**
     * How long an idempotency key of a publish is remembered (ms), for every node derived with
     * `forNode`. Default 120 000 (`DEFAULTS.broker.idempotencyWindow`).
     */
    readonly idempotencyWindow?: number;
  });
  /** @internal */
  constructor(state: MemoryState);
  constructor(stateOrOptions: MemoryState | IdempotencyOptions = {}) {
    this.#state = stateOrOptions instanceof MemoryState ? stateOrOptions : new MemoryState(idempotencyWindowOf('memory', stateOrOptions));
  }

  /** How many idempotency keys the shared state remembers now (expired ones are swept by the next publish). */
  get idempotencyKeys(): number {
    return this.#state.idempotent.size;
  }

  /** A broker for another hub node in this process, sharing this one's topics, history and presence. */
  forNode(): MemoryBroker {
    return new MemoryBroker(this.#state);
  }

  async start(node: BrokerNode): Promise<void> {
    assertStartable(this.name, this.#node !== undefined, this.#closed, '; use forNode() for another node');
    this.#node = node;
    this.#state.brokers.add(this);
    node.onState?.('connected');
  }

  async subscribe(topic: string): Promise<void> {
    this.#started();
    this.#topics.add(topic);
  }

  async unsubscribe(topic: string): Promise<void> {
    this.#topics.delete(topic);
  }

  async publish(topic: string, data: string, history: HistoryOptions, publisher?: string, idempotencyKey?: string): Promise<Publication> {
    this.#started();
    // The window runs on the monotonic clock: a wall clock stepped back must not stretch it.
    const tick = performance.now();
    const idempotent = this.#state.idempotent;
    idempotent.sweep(tick);
    if (idempotencyKey !== undefined) {
      // Seen within the window: the first publication is the answer, nothing is stored or delivered.
      const first = idempotent.get(topic, idempotencyKey);
      if (first !== undefined) return first;
    }
    const now = Date.now();
    const h = this.#state.historyOf(topic);
    h.offset += 1;
    const publication: Publication = { topic, offset: h.offset, epoch: h.epoch, data, time: now, publisher };
    h.retention = history;
    h.publications.push(publication);
    trim(h, now);
    if (idempotencyKey !== undefined) idempotent.set(idempotencyKey, publication, tick);
    this.#state.fanOut(topic, { kind: 'publication', publication });
    return publication;
  }

  async history(topic: string, offset: number, epoch: string | undefined): Promise<HistorySlice> {
    this.#started();
    // Creating the history here gives a subscriber an epoch to hold on to before the first publication.
    const h = this.#state.historyOf(topic);
    trim(h, Date.now());
    return historySlice(h.epoch, h.offset, h.publications, offset, epoch);
  }

  async join(topic: string, member: PresenceMember): Promise<void> {
    this.#started();
    let members = this.#state.presence.get(topic);
    if (members === undefined) {
      members = new Map();
      this.#state.presence.set(topic, members);
    }
    members.set(member.connId, member);
    this.#state.fanOut(topic, { kind: 'presence', event: { topic, kind: 'join', member } });
  }

  async leave(topic: string, member: PresenceMember): Promise<void> {
    this.#started();
    this.#remove(topic, member.connId);
  }

  async presence(topic: string): Promise<PresenceMember[]> {
    this.#started();
    return [...(this.#state.presence.get(topic)?.values() ?? [])];
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    const node = this.#node;
    this.#closed = true;
    if (node === undefined) return;
    // Announce the leaves of this node's members to the other nodes (this one stops delivering).
    this.#state.brokers.delete(this);
    for (const [topic, members] of this.#state.presence) {
      for (const member of [...members.values()]) if (member.node === node.id) this.#remove(topic, member.connId);
    }
    this.#topics.clear();
    this.#queue.length = 0;
    node.onState?.('disconnected');
  }

  /** @internal Queue an event for this node if it is subscribed to `topic`. */
  enqueue(topic: string, event: QueuedEvent): void {
    if (!this.#topics.has(topic)) return;
    this.#queue.push({ topic, event });
    if (!this.#draining) {
      this.#draining = true;
      queueMicrotask(() => this.#drain());
    }
  }

  #drain(): void {
    try {
      // Events queued while delivering (a hub publishing from a callback) are delivered in this
      // same pass, after the ones already queued, so order is kept.
      for (let i = 0; i < this.#queue.length; i++) {
        const { topic, event } = this.#queue[i]!;
        const node = this.#node;
        if (node === undefined || this.#closed || !this.#topics.has(topic)) continue;
        try {
          if (event.kind === 'publication') node.onPublication(event.publication);
          else node.onPresence(event.event);
        } catch (error) {
          // A throwing hub callback must not stop delivery to the rest.
          throwLater(error);
        }
      }
    } finally {
      this.#queue.length = 0;
      this.#draining = false;
    }
  }

  #remove(topic: string, connId: string): void {
    const members = this.#state.presence.get(topic);
    const member = members?.get(connId);
    if (members === undefined || member === undefined) return;
    members.delete(connId);
    if (members.size === 0) this.#state.presence.delete(topic);
    this.#state.fanOut(topic, { kind: 'presence', event: { topic, kind: 'leave', member } });
  }

  #started(): void {
    assertStarted(this.name, this.#node !== undefined, this.#closed);
  }
}
