/**
 * The hub's wire protocol (documented in `docs/protocol.md`): JSON text messages, one per
 * WebSocket message: its limits, the shapes of the messages both ways, and the server's encoders,
 * which build its messages by string concatenation around data that was serialised once.
 * Reading them is next door: `parse-request.ts` validates what a client sends (server side),
 * `parse-server-message.ts` reads what a server sends (client side). No I/O and no Node-only
 * API, so the browser client shares these files.
 */
import type { Json, PresenceMember } from './broker.js';

/** The protocol version spoken; sent in the `connect` reply. */
export const PROTOCOL_VERSION = 1;

/** Limits of the wire protocol, with their defaults. */
export const WIRE_LIMITS = {
  /** Longest topic name, in UTF-16 code units. */
  maxTopicLength: 256,
  /** Deepest nesting of arrays/objects in a publication's `data`. */
  maxDataDepth: 32,
  /** Longest string request id. */
  maxIdLength: 64,
  /** Longest token. */
  maxTokenLength: 8192,
  /** Longest epoch string in a recovery position. */
  maxEpochLength: 64,
  /** Longest RPC method name, in UTF-16 code units. */
  maxMethodLength: 128,
} as const;

/**
 * The close code of a hub connection cut off for reading too slowly (an application code,
 * RFC 6455 §7.4.2): clients reconnect and recover, where 1008 tells them to stop.
 */
export const SLOW_CONSUMER_CLOSE_CODE = 4008;

/**
 * The close code of a connection whose authentication expired (the expiry the connect hook
 * answered): its client reconnects and authenticates afresh.
 */
export const AUTH_EXPIRED_CLOSE_CODE = 4001;

/** Prefix of the topics the hub reserves for itself (`$all`, `$user:<id>`, `$node:<id>`); clients may not use it. */
export const RESERVED_PREFIX = '$';

/** Stable error codes sent in `error` messages (and carried by `HubError` on the client). */
export type HubErrorCode =
  /** A field is missing, of the wrong type, or out of range (including invalid JSON). */
  | 'E_BAD_REQUEST'
  /** The message's `type` is not one the server knows. */
  | 'E_UNKNOWN_TYPE'
  /** The message is larger than the hub's `maxMessageSize`. */
  | 'E_TOO_LARGE'
  /** The connection has not authenticated (send `connect` with a token first). */
  | 'E_UNAUTHORIZED'
  /** Authenticated, but not allowed to do this (authorisation hook, reserved topic, client publish off). */
  | 'E_FORBIDDEN'
  /** `unsubscribe` of a topic the connection is not subscribed to. */
  | 'E_NOT_SUBSCRIBED'
  /** `subscribe` of a topic the connection is already subscribed to. */
  | 'E_ALREADY_SUBSCRIBED'
  /** `rpc` of a method the server does not have (nor its backend); or a server-API path that does not exist. */
  | 'E_NOT_FOUND'
  /** Too many requests waiting for an answer on this connection. */
  | 'E_BUSY'
  /** The broker could not do it (down, or it failed); retry later. */
  | 'E_UNAVAILABLE'
  /** Something failed on the server (a hook threw); logged there. */
  | 'E_INTERNAL'
  /** Client-side only: no answer within the request timeout. */
  | 'E_TIMEOUT'
  /** Client-side only: the connection dropped before the answer came; the request may or may not have been done. */
  | 'E_CONNECTION_LOST'
  /** Client-side only: the client is closed (or stopped reconnecting). */
  | 'E_CLOSED'
  /** Client-side only: too many requests wait for the next connection (`maxQueuedRequests`). */
  | 'E_QUEUE_FULL';

/** A request id: a non-negative safe integer or a short string, echoed in the answer. */
export type RequestId = number | string;

/** A position in a topic's history: the last offset seen in an epoch. */
export interface StreamPosition {
  /** The offset of the last publication seen: 1, 2, 3… within the epoch; 0 before the first. */
  readonly offset: number;
  /** The lifetime of the topic's history the offset belongs to; a new epoch means offsets started over. */
  readonly epoch: string;
}

/**
 * What every client message carries: its `type`, and an optional `id` echoed in the answer. One
 * shape for all six requests, so the id's rules (and its docs) are stated once.
 */
interface RequestEnvelope<Type extends string> {
  /** The message type: always the one its interface is named after (`'connect'` for `ConnectRequest` …). */
  readonly type: Type;
  /** Echoed in the reply or error; without it only errors are sent back. */
  readonly id?: RequestId | undefined;
}

/** `connect`: authenticate (if the handshake did not) and learn the connection id. */
export interface ConnectRequest extends RequestEnvelope<'connect'> {
  /** The bearer token (a JWT by default); omit it when the handshake already authenticated. */
  readonly token?: string | undefined;
  /** Application data for the server's connect hook (e.g. a backend deciding who this is); any JSON, 32 levels deep at most. */
  readonly data?: Json | undefined;
}
/** `subscribe`: receive a topic's publications, optionally recovering those missed since `recover`. */
export interface SubscribeRequest extends RequestEnvelope<'subscribe'> {
  /** The topic: 1–256 characters, no control characters; `$…` is reserved (E_FORBIDDEN). */
  readonly topic: string;
  /** The last position seen: the reply then carries what was published after it. Needs an `id`. */
  readonly recover?: StreamPosition | undefined;
}
/** `unsubscribe`: stop receiving a topic. */
export interface UnsubscribeRequest extends RequestEnvelope<'unsubscribe'> {
  /** A topic this connection is subscribed to (else E_NOT_SUBSCRIBED). */
  readonly topic: string;
}
/** `publish`: publish `data` to a topic; `excludeSelf` keeps it from this connection. */
export interface PublishRequest extends RequestEnvelope<'publish'> {
  /** The topic: 1–256 characters, no control characters; `$…` is reserved (E_FORBIDDEN). */
  readonly topic: string;
  /** Any JSON value, nested at most 32 levels deep. */
  readonly data: Json;
  /** Keep the publication from this connection, even if it is subscribed (default false). */
  readonly excludeSelf?: boolean | undefined;
}
/** `presence`: who is in a topic, across all nodes. */
export interface PresenceRequest extends RequestEnvelope<'presence'> {
  /** The topic whose members to list. */
  readonly topic: string;
}
/** `rpc`: call `method` on the server (a handler of the hub, or its backend) and get one answer. */
export interface RpcRequest extends RequestEnvelope<'rpc'> {
  /** The method: 1–128 characters, no control characters. */
  readonly method: string;
  /** Its parameters: any JSON, 32 levels deep at most (absent: the handler gets `null`). */
  readonly params?: Json | undefined;
}
/** `ping`: an application-level round trip (answered with an empty reply). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- a ping is the envelope alone; an interface, like its siblings
export interface PingRequest extends RequestEnvelope<'ping'> {}

/** Every message a client may send. */
export type ClientRequest = ConnectRequest | SubscribeRequest | UnsubscribeRequest | PublishRequest | PresenceRequest | RpcRequest | PingRequest;

/** The client message types, for validation and docs. */
export const CLIENT_TYPES = ['connect', 'subscribe', 'unsubscribe', 'publish', 'presence', 'rpc', 'ping'] as const;

// ---- server → client ------------------------------------------------------------------------

/** A publication as a client sees it in a recovery reply. */
export interface WirePublication {
  /** Its offset in the topic's current epoch. */
  readonly offset: number;
  /** What was published. */
  readonly data: Json;
}

/** Result of `connect`. */
export interface ConnectResult {
  /** This connection's id, unique across nodes; presence members carry it, `sendToConnection` takes it. */
  readonly connId: string;
  /** The authenticated user (the token's `sub`); absent for an anonymous connection. */
  readonly userId?: string;
  /** The id of the hub node the connection landed on. */
  readonly node: string;
  /** The protocol version the server speaks ({@link PROTOCOL_VERSION}). */
  readonly version: number;
}

/**
 * Result of `subscribe`: the topic's position now. With `recover` in the request, `recovered`
 * says whether every missed publication is in `publications` (in order); if not, `reason`
 * says why ('epoch changed' or 'too old') and the client has missed messages for good.
 */
export interface SubscribeResult {
  /** The topic subscribed to. */
  readonly topic: string;
  /** The topic's current epoch. */
  readonly epoch: string;
  /** The topic's latest offset: live messages continue after it, with no hole and no duplicate. */
  readonly offset: number;
  /** Only with `recover`: true if `publications` holds everything missed, false if some is lost. */
  readonly recovered?: boolean;
  /** Only with `recover`: the publications after the requested offset, oldest first. */
  readonly publications?: readonly WirePublication[];
  /** Only when `recovered` is false: why the missed publications are gone. */
  readonly reason?: GapReason;
}

/** Why missed publications could not be delivered. */
export type GapReason = 'epoch changed' | 'too old';

/** Result of `publish`. */
export interface PublishResult {
  /** The offset the broker gave the publication (one more than the topic's previous one). */
  readonly offset: number;
  /** The epoch the offset belongs to. */
  readonly epoch: string;
}

/** Result of `rpc`: what the method answered. */
export interface RpcResult {
  /** The method's answer (any JSON; `null` when it returned nothing). */
  readonly data: Json;
}

/** Every message a server may send. */
export type ServerMessage =
  | {
      /** A request succeeded. */
      readonly type: 'reply';
      /** The id of the request answered. */
      readonly id: RequestId;
      /** The request's result: a `ConnectResult`, `SubscribeResult`, `PublishResult`, `RpcResult`, `{members}` or `{}`. */
      readonly result: JsonObject;
    }
  | {
      /** A request failed, or a message could not be read. */
      readonly type: 'error';
      /** The id of the request that failed; absent when there was none or it was unreadable. */
      readonly id?: RequestId | undefined;
      /** Stable, for programs; a string outside `HubErrorCode` may come from a newer server. */
      readonly code: HubErrorCode | string;
      /** What went wrong, for people (may change between versions). */
      readonly message: string;
    }
  | {
      /** A publication of a subscribed topic, in offset order. */
      readonly type: 'message';
      /** The topic it was published to. */
      readonly topic: string;
      /** Its offset in `epoch`. */
      readonly offset: number;
      /** The epoch of the topic's history it belongs to. */
      readonly epoch: string;
      /** What was published. */
      readonly data: Json;
    }
  | {
      /** Someone joined or left a subscribed topic (never sent for the connection's own join or leave). */
      readonly type: 'join' | 'leave';
      /** The topic whose presence changed. */
      readonly topic: string;
      /** Who joined or left. */
      readonly member: PresenceMember;
    }
  | {
      /** Publications up to `offset` could not be delivered and are lost for this subscriber. */
      readonly type: 'gap';
      /** The topic with the hole. */
      readonly topic: string;
      /** The subscriber's new epoch. */
      readonly epoch: string;
      /** The subscriber's new position: live messages continue after it. */
      readonly offset: number;
      /** Why they are lost. */
      readonly reason: GapReason;
    }
  | {
      /** A message to this connection, its user or everyone (`sendToConnection`, `sendToUser`, `broadcast`). */
      readonly type: 'push';
      /** What was sent. */
      readonly data: Json;
    };


// ---- reading JSON from the network (both parsers) -------------------------------------------

/** A parsed JSON object, its members still unknown. */
export type JsonObject = { [key: string]: unknown };

/** @internal */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * @internal An own property of a parsed object. JSON.parse makes `__proto__` an ordinary own property
 * (it never sets the prototype), and reading only own, known keys keeps an inherited or
 * polluted `Object.prototype` from supplying a field the client did not send.
 */
export function own(object: JsonObject, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined;
}

// ---- building server messages (server side) ----------------------------------------------------
// Each takes JSON fragments that are already serialised and concatenates: the data of a
// publication is never parsed or re-serialised on its way to subscribers.

/** `{"type":"reply","id":…,"result":…}` with `resultJson` already serialised. */
export function encodeReply(id: RequestId, resultJson: string): string {
  return `{"type":"reply","id":${JSON.stringify(id)},"result":${resultJson}}`;
}

/** `{"type":"error",…}`. */
export function encodeError(id: RequestId | undefined, code: HubErrorCode, message: string): string {
  const idPart = id === undefined ? '' : `"id":${JSON.stringify(id)},`;
  return `{"type":"error",${idPart}"code":"${code}","message":${JSON.stringify(message)}}`;
}

/** `{"type":"message",…}` for a publication; `topicJson` is `JSON.stringify(topic)`, cached per topic. */
export function encodeMessage(topicJson: string, offset: number, epoch: string, dataJson: string): string {
  return `{"type":"message","topic":${topicJson},"offset":${offset},"epoch":${JSON.stringify(epoch)},"data":${dataJson}}`;
}

/** `{"type":"join"|"leave",…}`. */
export function encodePresenceEvent(kind: 'join' | 'leave', topicJson: string, member: PresenceMember): string {
  return `{"type":"${kind}","topic":${topicJson},"member":${JSON.stringify(member)}}`;
}

/** `{"type":"gap",…}`: publications of `topic` up to `offset` were lost for this subscriber. */
export function encodeGap(topicJson: string, epoch: string, offset: number, reason: GapReason): string {
  return `{"type":"gap","topic":${topicJson},"epoch":${JSON.stringify(epoch)},"offset":${offset},"reason":"${reason}"}`;
}

/** `{"type":"push","data":…}`: a message to this connection, its user, or everyone. */
export function encodePush(dataJson: string): string {
  return `{"type":"push","data":${dataJson}}`;
}

/** One recovered publication inside a subscribe reply. */
export function encodeWirePublication(offset: number, dataJson: string): string {
  return `{"offset":${offset},"data":${dataJson}}`;
}

/** The result of `connect` ({@link ConnectResult}); `userId` is left out for an anonymous connection. */
export function encodeConnectResult(connId: string, userId: string | undefined, node: string): string {
  const userPart = userId === undefined ? '' : `"userId":${JSON.stringify(userId)},`;
  return `{"connId":${JSON.stringify(connId)},${userPart}"node":${JSON.stringify(node)},"version":${PROTOCOL_VERSION}}`;
}

/** The result of `subscribe` without `recover` ({@link SubscribeResult}): the topic's position. */
export function encodeSubscribeResult(topicJson: string, epoch: string, offset: number): string {
  return `{"topic":${topicJson},"epoch":${JSON.stringify(epoch)},"offset":${offset}}`;
}

/** The result of a `subscribe` that recovered everything missed: `publications` from {@link encodeWirePublication}. */
export function encodeRecoveredResult(topicJson: string, epoch: string, offset: number, publications: readonly string[]): string {
  return `{"topic":${topicJson},"epoch":${JSON.stringify(epoch)},"offset":${offset},"recovered":true,"publications":[${publications.join(',')}]}`;
}

/** The result of a `subscribe` that could not recover: the topic's position now, and why. */
export function encodeNotRecoveredResult(topicJson: string, epoch: string, offset: number, reason: GapReason): string {
  return `{"topic":${topicJson},"epoch":${JSON.stringify(epoch)},"offset":${offset},"recovered":false,"reason":"${reason}"}`;
}

/** The result of `publish` ({@link PublishResult}). */
export function encodePublishResult(offset: number, epoch: string): string {
  return `{"offset":${offset},"epoch":${JSON.stringify(epoch)}}`;
}

/** The result of `presence`: `{"members":[…]}`. */
export function encodePresenceResult(members: readonly PresenceMember[]): string {
  return `{"members":${JSON.stringify(members)}}`;
}

/** The result of `rpc` ({@link RpcResult}): `{"data":…}` with `dataJson` already serialised. */
export function encodeRpcResult(dataJson: string): string {
  return `{"data":${dataJson}}`;
}

/** The result of `ping` and `unsubscribe`: `{}`. */
export const EMPTY_RESULT = '{}';
