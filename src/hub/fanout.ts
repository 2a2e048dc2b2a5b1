/**
 * Fan-out to this node's connections ("serialise and frame once, then write the same bytes to
 * everyone", as uWebSockets does): a message's JSON text is built once by concatenation around
 * the already-serialised data, framed once (`prepareMessage`), and the same frame is written to
 * each recipient with `sendPrepared`, which applies the slow-consumer policy per socket.
 */
import { prepareMessage } from '../node/prepared-message.js';
import type { WebSocket } from '../node/websocket.js';
import type { PresenceEvent, Publication } from './broker.js';
import type { TopicOutput } from './topic.js';
import { encodeGap, encodeMessage, encodePresenceEvent, encodePush, type GapReason } from './wire.js';

/** A local connection as fan-out sees it: where to write, and who it is (for `excludeSelf`). */
export interface Recipient {
  /** The connection's id (a publication's `publisher` names it). */
  readonly connId: string;
  /** Its socket. */
  readonly ws: WebSocket<unknown>;
}

/** A connection that gets pushes (`$all`, `$user:<id>`, `$node:<id>`) once authenticated. */
export interface PushRecipient extends Recipient {
  readonly authenticated: boolean;
}

/** One subscription as fan-out sees it. */
export interface FanoutSubscription {
  readonly session: Recipient;
  /** Deliveries at or below this offset were already sent (recovered from history, or in the subscribe reply). */
  after: number;
  /** While subscribing: live publications held until the reply has been sent. */
  buffer: Publication[] | undefined;
  /**
   * A delivery was refused (the slow-consumer policy 'drop'): nothing more is written to it
   * until it is repaired from history after `after` (on the socket's drain), so the subscriber
   * never sees a later publication without the ones before it.
   */
  lost: boolean;
}

/** Counters fan-out adds to (the hub's `stats()`). */
export interface FanoutCounters {
  /** Outgoing `message`/`push` JSON texts built. */
  messagesBuilt: number;
  /** Messages written to connections. */
  deliveries: number;
}

/**
 * A topic's local subscribers, and what the topic's sequencer emits written to them: each
 * publication, gap and presence event framed once for all.
 */
export class TopicFanout<S extends FanoutSubscription = FanoutSubscription> implements TopicOutput {
  /** `JSON.stringify(name)`, cached: every message of the topic starts with it. */
  readonly json: string;
  /** The subscriptions, in the order they were made. */
  readonly subs = new Set<S>();
  readonly #counters: FanoutCounters;

  constructor(
    /** The topic's name. */
    readonly name: string,
    counters: FanoutCounters,
  ) {
    this.json = JSON.stringify(name);
    this.#counters = counters;
  }

  epochChanged(): void {
    // Positions of the old epoch say nothing about the new one.
    for (const sub of this.subs) sub.after = 0;
  }

  deliver(publication: Publication): void {
    if (this.subs.size === 0) return;
    const text = encodeMessage(this.json, publication.offset, publication.epoch, publication.data);
    this.#counters.messagesBuilt++;
    const prepared = prepareMessage(text);
    const publisher = publication.publisher;
    let delivered = 0;
    for (const sub of this.subs) {
      if (sub.buffer) {
        sub.buffer.push(publication);
        continue;
      }
      if (sub.lost || publication.offset <= sub.after) continue;
      if (publisher !== undefined && publisher === sub.session.connId) continue;
      if (sub.session.ws.slow) {
        // Refused with 'drop' (or the connection closed with 'close'): repaired on drain.
        sub.lost = true;
        sub.session.ws.sendPrepared(prepared);
        continue;
      }
      sub.session.ws.sendPrepared(prepared);
      sub.after = publication.offset;
      delivered++;
    }
    this.#counters.deliveries += delivered;
  }

  gap(epoch: string, offset: number, reason: GapReason): void {
    if (this.subs.size === 0) return;
    const prepared = prepareMessage(encodeGap(this.json, epoch, offset, reason));
    // A subscription still subscribing learns its position from the reply instead; a lost one
    // from its repair.
    for (const sub of this.subs) if (!sub.buffer && !sub.lost) sub.session.ws.sendPrepared(prepared);
  }

  /** A join or leave in the topic: to every subscriber but the member itself. */
  presence(event: PresenceEvent): void {
    if (this.subs.size === 0) return;
    const prepared = prepareMessage(encodePresenceEvent(event.kind, this.json, event.member));
    for (const sub of this.subs) {
      if (sub.buffer || sub.session.connId === event.member.connId) continue;
      sub.session.ws.sendPrepared(prepared);
    }
  }

  /**
   * The subscribe reply of `sub` has gone out: write what was held back meanwhile — only what is
   * newer than the reply's position in `epoch` (the topic's epoch now) — then deliver it live.
   */
  release(sub: S, epoch: string): void {
    const held = sub.buffer ?? [];
    sub.buffer = undefined;
    for (const publication of held) {
      // Lost: what was held is in history, and the repair fetches it from there.
      if (sub.lost) return;
      if (publication.offset <= sub.after && publication.epoch === epoch) continue;
      if (publication.publisher !== undefined && publication.publisher === sub.session.connId) continue;
      this.write(sub, publication.offset, publication.epoch, publication.data);
    }
  }

  /** Write one publication to one subscriber, or mark it lost if its peer is behind. */
  write(sub: S, offset: number, epoch: string, data: string): boolean {
    if (sub.session.ws.slow) {
      sub.lost = true;
      return false;
    }
    this.#counters.messagesBuilt++;
    this.#counters.deliveries++;
    sub.session.ws.send(encodeMessage(this.json, offset, epoch, data));
    sub.after = offset;
    return true;
  }
}

/** A `push` of `data` (JSON text) to every authenticated target but the publisher, framed once. */
export function push(targets: Iterable<PushRecipient>, data: string, publisher: string | undefined, counters: FanoutCounters): void {
  const text = encodePush(data);
  counters.messagesBuilt++;
  const prepared = prepareMessage(text);
  for (const target of targets) {
    if (!target.authenticated || target.connId === publisher) continue;
    target.ws.sendPrepared(prepared);
    counters.deliveries++;
  }
}
