/**
 * The node's subscriptions: a topic is subscribed at the broker for its first local subscriber
 * and unsubscribed after its last (broker calls for one topic kept in order), and each local
 * topic pairs its sequencer (`topic.ts`) with its fan-out (`fanout.ts`).
 *
 * A connection's subscribe, with or without recovery, is the seam between history and live
 * delivery: the subscription is registered (buffering) before history is read, so a publication
 * is either in the history read, or buffered, or both — never neither; the reply goes out first,
 * then buffered publications newer than what the reply carried. Nothing lost, nothing twice.
 */
import type { Logger } from '../node/logger.js';
import type { Broker, HistorySlice, Json, PresenceEvent, PresenceMember, Publication } from './broker.js';
import type { HubIdentity } from './auth.js';
import { errorMessage, type Refusal } from './errors.js';
import { TopicFanout, type FanoutSubscription } from './fanout.js';
import type { HubContext, HubStats } from './hub.js';
import type { Session } from './session.js';
import { TopicSequencer } from './topic.js';
import {
  encodeGap,
  encodeNotRecoveredResult,
  encodeRecoveredResult,
  encodeSubscribeResult,
  encodeWirePublication,
  type GapReason,
  type RequestId,
  type StreamPosition,
} from './wire.js';

/** The counters of `HubStats` that the hub's parts add to. */
export type HubCounters = Omit<HubStats, 'connections' | 'topics'>;

/** Broker subscribe/unsubscribe calls per topic, in order: an unsubscribe never overtakes a later subscribe. */
export class BrokerCalls {
  readonly #broker: Broker;
  readonly #queued = new Map<string, Promise<void>>();

  constructor(broker: Broker) {
    this.#broker = broker;
  }

  /** Subscribe or unsubscribe `topic` at the broker, after the previous call for it. */
  run(topic: string, op: 'subscribe' | 'unsubscribe'): Promise<void> {
    const previous = this.#queued.get(topic) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => (op === 'subscribe' ? this.#broker.subscribe(topic) : this.#broker.unsubscribe(topic)));
    this.#queued.set(topic, next);
    const forget = (): void => {
      if (this.#queued.get(topic) === next) this.#queued.delete(topic);
    };
    next.then(forget, forget);
    return next;
  }

  /** Resolves once every call made so far has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#queued.values()]);
  }
}

/** One subscription of one connection. */
export interface Subscription<User extends HubIdentity> extends FanoutSubscription {
  readonly session: Session<User>;
  readonly topic: LocalTopic<User>;
  /** The presence member, once joined (and the join's promise, so a leave follows it). */
  member: PresenceMember | undefined;
  joined: Promise<void> | undefined;
  removed: boolean;
}

/** A topic this node is subscribed to at the broker. */
class LocalTopic<User extends HubIdentity> {
  readonly fanout: TopicFanout<Subscription<User>>;
  readonly sequencer: TopicSequencer;
  /** Resolves once the broker subscription is made and the position is known. */
  ready: Promise<void> = Promise.resolve();

  constructor(name: string, broker: Broker, counters: HubCounters, logger: Logger) {
    this.fanout = new TopicFanout(name, counters);
    this.sequencer = new TopicSequencer(name, {
      history: (topic, offset, epoch) => broker.history(topic, offset, epoch),
      output: this.fanout,
      counters,
      logger,
    });
  }

  get name(): string {
    return this.fanout.name;
  }
}

/** What the subscriptions need of their hub. */
export interface SubscriptionsHost<User extends HubIdentity> {
  readonly nodeId: string;
  readonly broker: Broker;
  readonly brokerCalls: BrokerCalls;
  readonly logger: Logger;
  readonly counters: HubCounters;
  /** The hub's options, read when used: `presence` and `presenceInfo`. */
  readonly options: {
    readonly presence?: boolean | undefined;
    presenceInfo?(ctx: HubContext<User>): Json | undefined;
  };
  /** Whether the hub is closed (then nothing is undone at the broker: it closes anyway). */
  isClosed(): boolean;
}

/** The node's topics and its connections' subscriptions to them. */
export class Subscriptions<User extends HubIdentity> {
  readonly #host: SubscriptionsHost<User>;
  readonly #presenceOn: boolean;
  readonly #topics = new Map<string, LocalTopic<User>>();

  constructor(host: SubscriptionsHost<User>) {
    this.#host = host;
    this.#presenceOn = host.options.presence ?? true;
  }

  /** Topics this node is subscribed to at the broker (reserved ones excluded). */
  get size(): number {
    return this.#topics.size;
  }

  /** Each topic with local subscribers, and how many. */
  *counts(): IterableIterator<{ topic: string; subscribers: number }> {
    for (const [topic, local] of this.#topics) if (local.fanout.subs.size > 0) yield { topic, subscribers: local.fanout.subs.size };
  }

  /**
   * Subscribe `session` to `name`, recovering from `recover` if given, and reply to `id` (see
   * the module comment for the seam). Resolves with the refusal to answer, if any.
   */
  async add(session: Session<User>, name: string, recover: StreamPosition | undefined, id: RequestId | undefined): Promise<Refusal | undefined> {
    const { broker, logger, counters } = this.#host;
    const topic = this.#acquire(name);
    const sub: Subscription<User> = { session, topic, after: 0, buffer: [], lost: false, member: undefined, joined: undefined, removed: false };
    session.subs.set(name, sub);
    topic.fanout.subs.add(sub);
    try {
      await topic.ready;
    } catch (error) {
      this.remove(sub);
      logger.error({ topic: name, err: errorMessage(error) }, 'broker subscribe failed');
      return { code: 'E_UNAVAILABLE', message: 'the broker could not subscribe; retry' };
    }
    if (sub.removed) return undefined;
    const { sequencer, fanout } = topic;
    let result: string;
    if (!recover) {
      sub.after = sequencer.offset;
      result = encodeSubscribeResult(fanout.json, sequencer.epoch, sequencer.offset);
    } else {
      let slice;
      try {
        slice = await broker.history(name, recover.offset, recover.epoch);
      } catch (error) {
        this.remove(sub);
        logger.error({ topic: name, err: errorMessage(error) }, 'broker history failed');
        return { code: 'E_UNAVAILABLE', message: 'history is not available; retry' };
      }
      if (sub.removed) return undefined;
      if (slice.epoch === recover.epoch && slice.complete) {
        let last = recover.offset;
        const parts: string[] = [];
        for (const p of slice.publications) {
          if (p.offset <= last) continue;
          parts.push(encodeWirePublication(p.offset, p.data));
          last = p.offset;
        }
        sub.after = last;
        counters.recovered++;
        result = encodeRecoveredResult(fanout.json, slice.epoch, last, parts);
      } else {
        const reason: GapReason = slice.epoch !== recover.epoch ? 'epoch changed' : 'too old';
        sub.after = sequencer.offset;
        counters.notRecovered++;
        result = encodeNotRecoveredResult(fanout.json, sequencer.epoch, sequencer.offset, reason);
      }
    }
    if (this.#presenceOn) {
      const options = this.#host.options;
      const info = options.presenceInfo ? options.presenceInfo(session) : session.user?.info;
      const member: PresenceMember = {
        connId: session.connId,
        node: this.#host.nodeId,
        ...(session.user?.id !== undefined ? { userId: session.user.id } : {}),
        ...(info !== undefined ? { info } : {}),
      };
      sub.member = member;
      sub.joined = broker.join(name, member).catch((error: unknown) => {
        logger.warn({ topic: name, conn: session.connId, err: errorMessage(error) }, 'presence join failed');
      });
      // Answer after the join, so a presence query right after the reply lists this connection.
      await sub.joined;
      if (sub.removed) return undefined;
    }
    session.reply(id, result);
    fanout.release(sub, sequencer.epoch);
    return undefined;
  }

  /**
   * Make good what a subscription lost to the slow-consumer policy 'drop' (its socket drained):
   * live publications are held meanwhile (the subscribe seam), the ones after its last delivered
   * offset are written from history, in order, then the held ones; if history no longer has
   * them all, a `gap` says where the subscriber continues. If the peer falls behind again
   * part-way, the subscription stays lost until the next drain.
   */
  async repair(sub: Subscription<User>): Promise<void> {
    if (!sub.lost || sub.removed || sub.buffer) return;
    const { topic } = sub;
    const { sequencer, fanout } = topic;
    const epoch = sequencer.epoch;
    sub.lost = false;
    sub.buffer = [];
    let slice: HistorySlice | undefined;
    try {
      slice = await this.#host.broker.history(topic.name, sub.after, epoch);
    } catch (error) {
      this.#host.logger.warn({ topic: topic.name, conn: sub.session.connId, err: errorMessage(error) }, 'history for a lagging subscriber failed');
    }
    if (sub.removed) return;
    if (slice && slice.epoch === epoch && slice.complete) {
      for (const p of slice.publications) {
        if (p.offset <= sub.after) continue;
        if (p.publisher !== undefined && p.publisher === sub.session.connId) {
          sub.after = p.offset;
          continue;
        }
        if (!fanout.write(sub, p.offset, epoch, p.data)) break;
      }
    } else {
      // What it missed is gone: say so, and continue from the topic's position now.
      this.#host.counters.gaps++;
      sub.session.ws.send(encodeGap(fanout.json, sequencer.epoch, sequencer.offset, 'too old'));
      sub.after = sequencer.offset;
    }
    fanout.release(sub, sequencer.epoch);
  }

  /** End a subscription (and its presence); the topic goes with its last local subscriber. */
  remove(sub: Subscription<User>): void {
    if (sub.removed) return;
    sub.removed = true;
    const { session, topic } = sub;
    if (session.subs.get(topic.name) === sub) session.subs.delete(topic.name);
    topic.fanout.subs.delete(sub);
    const member = sub.member;
    if (member && sub.joined && !this.#host.isClosed()) {
      // After the join has gone through, whatever its outcome.
      sub.joined
        .then(() => this.#host.broker.leave(topic.name, member))
        .catch((error: unknown) => this.#host.logger.warn({ topic: topic.name, conn: session.connId, err: errorMessage(error) }, 'presence leave failed'));
    }
    this.#release(topic);
  }

  /** A publication of a (non-reserved) topic, to its sequencer. */
  onPublication(publication: Publication): void {
    this.#topics.get(publication.topic)?.sequencer.receive(publication);
  }

  /** A presence change, to the topic's subscribers. */
  onPresence(event: PresenceEvent): void {
    this.#topics.get(event.topic)?.fanout.presence(event);
  }

  /** The broker lost its connection and is back: re-check every topic against history. */
  resync(): void {
    for (const topic of this.#topics.values()) topic.sequencer.resync();
  }

  /** The node's state for a topic, subscribing at the broker for the first local subscriber. */
  #acquire(name: string): LocalTopic<User> {
    const known = this.#topics.get(name);
    if (known) return known;
    const { broker, brokerCalls, counters, logger } = this.#host;
    const topic = new LocalTopic<User>(name, broker, counters, logger);
    this.#topics.set(name, topic);
    topic.ready = brokerCalls.run(name, 'subscribe').then(() => topic.sequencer.start());
    topic.ready.catch(() => {});
    return topic;
  }

  /** Unsubscribe the node at the broker once the last local subscriber is gone. */
  #release(topic: LocalTopic<User>): void {
    if (topic.fanout.subs.size > 0 || this.#topics.get(topic.name) !== topic) return;
    this.#topics.delete(topic.name);
    topic.sequencer.close();
    if (!this.#host.isClosed()) {
      this.#host.brokerCalls
        .run(topic.name, 'unsubscribe')
        .catch((error: unknown) => this.#host.logger.warn({ topic: topic.name, err: errorMessage(error) }, 'broker unsubscribe failed'));
    }
  }
}
