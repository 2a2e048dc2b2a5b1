/**
 * How the NATS broker lays its data out (`nats.ts` has the design): topics as subject and KV-key
 * tokens, the headers a publication is stored with and how it is read back, the records of its
 * KV buckets, and the JetStream API errors it handles.
 */
import { createHash } from 'node:crypto';

import type { MsgHdrs, StoredMsg } from 'nats';
import { requirePeer } from '../../node/peer.js';
import type { PresenceMember, Publication } from '../broker.js';
import { BrokerError } from './shared.js';

// nats.js is an optional peer dependency, loaded by `duplex-ws/hub/nats` only (see nats.ts).
const { headers: natsHeaders, NatsError } = requirePeer<typeof import('nats')>('nats', 'duplex-ws/hub/nats');

/** The headers of a stored publication (and of presence events on the same subjects). */
export const H = {
  offset: 'Duplex-Offset',
  epoch: 'Duplex-Epoch',
  time: 'Duplex-Time',
  publisher: 'Duplex-Publisher',
  size: 'Duplex-Size',
  ttl: 'Duplex-Ttl',
  prev: 'Duplex-Prev',
  kind: 'Duplex-Kind',
  topic: 'Duplex-Topic',
  // The idempotency id of a keyed publish on a replicated stream (nats-idempotency.ts).
  key: 'Duplex-Key',
  // Added by JetStream's RePublish: the message's stream sequence.
  sequence: 'Nats-Sequence',
} as const;

/** A NATS/JetStream operation failed, or the server lacks what the broker needs. */
export class NatsBrokerError extends BrokerError {
  /** Always `'NatsBrokerError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'NatsBrokerError';
}

/** JetStream API error codes the broker handles. */
const WRONG_LAST_SEQUENCE = 10071;
const NO_MESSAGE_FOUND = 10037;
/** A delete by sequence of a message that is not there ("no message found"). */
const MESSAGE_DELETE_FAILED = 10057;
/** "replicas > 1 not supported in non-clustered mode". */
export const REPLICAS_NOT_CLUSTERED = 10074;
/** "no suitable peers for placement": fewer JetStream servers than replicas. */
export const NO_SUITABLE_PEERS = 10005;

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

/** A topic as one subject/KV-key token: base64url never contains `.`, `*`, `>` or spaces. */
export function token(text: string): string {
  return `t${Buffer.from(text, 'utf8').toString('base64url')}`;
}

export function apiCode(error: unknown): number | undefined {
  return error instanceof NatsError ? error.api_error?.err_code : undefined;
}

export function isNotFound(error: unknown): boolean {
  return apiCode(error) === NO_MESSAGE_FOUND || (error instanceof NatsError && error.code === '404');
}

/**
 * A request nobody answered at once (NATS status 503, "no responders"): for a JetStream publish,
 * no stream leader holds the subject's interest (one is being elected after a server of the
 * cluster died), so nothing was stored and the publish may be sent again.
 */
export function isNoResponders(error: unknown): boolean {
  return error instanceof NatsError && error.code === '503';
}

/** A message deleted by its sequence was not there (deleted by another, or replaced by a newer revision). */
export function isAlreadyDeleted(error: unknown): boolean {
  return apiCode(error) === MESSAGE_DELETE_FAILED || isNotFound(error);
}

export function isCasConflict(error: unknown): boolean {
  return apiCode(error) === WRONG_LAST_SEQUENCE || (error instanceof Error && /wrong last sequence/i.test(error.message));
}

/** ms → ns (JetStream's durations). */
export const nanos = (ms: number): number => ms * 1_000_000;
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The last stored message of a topic: where the next publication goes. */
export interface Last {
  readonly seq: number;
  readonly offset: number;
  readonly epoch: string;
}

/** The KV record of a topic's next epoch. */
export interface EpochRecord {
  readonly epoch: string;
  /** Whether a publication already started this epoch (then an empty topic needs a new one). */
  readonly used: boolean;
}

/** A presence entry, as stored in the KV bucket and sent with join/leave events. */
export interface PresenceRecord {
  readonly topic: string;
  readonly member: PresenceMember;
}

/**
 * The id of a publish with an idempotency key: its `Nats-Msg-Id` and the key of its record in
 * the idempotency bucket. JetStream dedupes by message id across the whole stream, so the topic
 * is part of it (the same key on another topic is another publication). The key is hashed
 * (SHA-256, base64url) so that any key, of any length, is one safe KV-key token.
 */
export function idempotencyId(topic: string, key: string): string {
  return `${token(topic)}.${createHash('sha256').update(key, 'utf8').digest('base64url')}`;
}

/**
 * The message id that claims a topic's next slot on a replicated stream: "the successor of
 * stream sequence `prevSeq` on this topic" (0: the topic's first message). JetStream lets one
 * message per id through, in flight included, so one publication takes each slot.
 */
export function slotId(topic: string, prevSeq: number): string {
  // A colon: never in an idempotency id (token, dot, base64url), so the two cannot collide.
  return `${token(topic)}:${prevSeq}`;
}

/** What an idempotency record holds besides the data (the first line of the record, as JSON). */
interface IdempotencyHead {
  readonly offset: number;
  readonly epoch: string;
  readonly time: number;
  readonly publisher?: string | undefined;
}

/** The record of a publication made with an idempotency key: its position as one JSON line, then its data as is. */
export function idempotencyRecord(publication: Publication): string {
  const { offset, epoch, time, publisher } = publication;
  return `${JSON.stringify({ offset, epoch, time, publisher } satisfies IdempotencyHead)}\n${publication.data}`;
}

/** The publication an idempotency record holds (JSON text has no raw newline, so the first one ends the head). */
export function parseIdempotencyRecord(topic: string, text: string): Publication {
  const end = text.indexOf('\n');
  const head = JSON.parse(text.slice(0, end)) as IdempotencyHead;
  return { topic, offset: head.offset, epoch: head.epoch, time: head.time, publisher: head.publisher, data: text.slice(end + 1) };
}

/** The last position of a stored message, from its headers. */
export function lastOf(msg: StoredMsg): Last {
  return { seq: msg.seq, offset: Number(msg.header.get(H.offset)), epoch: msg.header.get(H.epoch) };
}

/** A publication from a message's headers and data. */
export function publicationOf(topic: string, h: MsgHdrs, data: string): Publication {
  const publisher = h.get(H.publisher);
  return {
    topic,
    offset: Number(h.get(H.offset)),
    epoch: h.get(H.epoch),
    time: Number(h.get(H.time)),
    data,
    publisher: publisher === '' ? undefined : decodeURIComponent(publisher),
  };
}

/** A publication read back from the stream. */
export function parseStored(topic: string, msg: StoredMsg): Publication {
  return publicationOf(topic, msg.header, decoder.decode(msg.data));
}

/**
 * The headers a publication is stored with: its position, retention, the previous sequence it
 * was written after, and the idempotency id `key` of a keyed publish on a replicated stream.
 */
export function publicationHeaders(
  topic: string,
  offset: number,
  last: Last,
  time: number,
  size: number,
  ttl: number,
  publisher: string | undefined,
  key?: string,
): MsgHdrs {
  const h = natsHeaders();
  h.set(H.offset, String(offset));
  h.set(H.epoch, last.epoch);
  h.set(H.time, String(time));
  h.set(H.size, String(size));
  h.set(H.ttl, String(ttl));
  h.set(H.prev, String(last.seq));
  h.set(H.topic, encodeURIComponent(topic));
  if (publisher !== undefined) h.set(H.publisher, encodeURIComponent(publisher));
  if (key !== undefined) h.set(H.key, key);
  return h;
}

/** The headers of a presence event. */
export function presenceHeaders(kind: 'join' | 'leave'): MsgHdrs {
  const h = natsHeaders();
  h.set(H.kind, kind);
  return h;
}
