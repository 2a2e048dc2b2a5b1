/**
 * The per-connection tunables: what a server (per route) or `connect()` may set, their defaults,
 * and the resolved form a connection reads them in.
 */
import { DEFAULTS } from '../protocol/defaults.js';
import { CloseCode } from '../protocol/constants.js';

/**
 * Per-connection tunables. A server takes them at the server level and a route may override
 * them; a client takes them in `connect()`'s options. Every one has a default.
 */
export interface ConnectionSettings {
  /**
   * Largest message accepted, in bytes, after decompression (default 1 MiB, as python-websockets);
   * more → 1009. What it costs: a peer can make its connection hold this much memory.
   */
  maxMessageSize?: number;
  /**
   * Bytes of large-message work (inflating, compressing, joining a message's pieces) one
   * connection does before the others get their turn (default 256 KiB; 0 = no slicing): see
   * `Connection`'s `sliceSize`. Smaller is fairer and a little slower for the large messages.
   */
  sliceSize?: number;
  /** Deliver text messages as Buffers of validated UTF-8 instead of strings (saves a decode). */
  textAsBuffer?: boolean;
  /** How long to wait for the peer's side of the closing handshake, in ms (default 10 s). */
  closeTimeout?: number;
  /** Send a ping after this many ms without traffic from the peer; 0 turns keepalive off (default 25 s). */
  pingInterval?: number;
  /** Close with 1006 (terminate) when no pong or other data came this many ms after a ping (default 20 s). */
  pingTimeout?: number;
  /** Close with 1001 after this many ms without any message either way; 0 = never (default 0). */
  idleTimeout?: number;
  /** `send()` returns false once `bufferedAmount` reaches this many bytes (default 64 KiB). */
  highWaterMark?: number;
  /** `drain` fires when `bufferedAmount` falls back to this many bytes (default 16 KiB). */
  lowWaterMark?: number;
  /**
   * Ceiling for `bufferedAmount`: a send that finds this much already buffered applies the
   * slow-consumer policy (default 4 MiB).
   */
  maxBufferedAmount?: number;
  /** Over the ceiling: close with 1008 (`'close'`, the default) or drop the message (`'drop'`). */
  slowConsumer?: 'close' | 'drop';
  /**
   * The close code of a slow-consumer close (default 1008, Policy Violation, as for any policy).
   * An application whose clients should come back and catch up gives one of its own (4000–4999,
   * RFC 6455 §7.4.2), so that no client reads the reason text: the hub uses 4008.
   */
  slowConsumerCloseCode?: number;
  /**
   * Async iteration only: stop reading from the socket while this many messages wait to be
   * consumed (default 16), so a fast sender cannot grow memory without bound.
   */
  maxQueuedMessages?: number;
  /**
   * Per-connection rate limit on what the peer sends: a token bucket of `burst` messages
   * (default: `perSecond`) refilled at `perSecond`; every data message and every ping takes a
   * token. Over it: close with 1008 "rate limit" (`onExceed: 'close'`, the default) or drop the
   * message unseen (`'drop'`; pings are still answered). Default: no limit.
   */
  messageRate?: MessageRateLimit;
}

/**
 * @internal Settings only the ws-compatible module (`src/ws/`) sets, next to `ConnectionSettings` in
 * the same settings object; not options of the server or `connect()`.
 */
export interface EngineSettings {
  /** The engine answers pings itself (default true): ws's `autoPong`. */
  autoPong?: boolean;
  /** Skip UTF-8 validation of text messages and close reasons: ws's `skipUTF8Validation`. */
  skipUtf8Validation?: boolean;
  /**
   * A throwing handler propagates (to the socket's event, as in ws) instead of closing the
   * connection with 1011: the ws-compatible module's listeners are the user's, with ws's semantics.
   */
  rethrowHandlerErrors?: boolean;
  /** The most frames a message may have (default: no limit; more: 1008): ws's `maxFragments`. */
  maxFragments?: number;
  /** The most chunks a frame's payload may arrive in (default: no limit; more: 1008): ws's `maxBufferedChunks`. */
  maxFrameChunks?: number;
  /** A failure's close frame carries the error's message (default true); ws sends the code alone. */
  failureReasons?: boolean;
}

/** A token-bucket rate limit on received messages (see `ConnectionSettings.messageRate`). */
export interface MessageRateLimit {
  /** Sustained messages per second. */
  perSecond: number;
  /** Messages allowed in a burst (the bucket size; default `perSecond`, at least 1). */
  burst?: number;
  /** What to do with a message over the limit (default `'close'`: 1008 "rate limit"). */
  onExceed?: 'close' | 'drop';
}

const C = DEFAULTS.connection;

/** Defaults of `ConnectionSettings` (documented there): a view of `DEFAULTS.connection`, where each one's unit and reason are. */
export const DEFAULT_SETTINGS = {
  /** 10 s for the peer's side of the closing handshake. */
  closeTimeout: C.closeTimeout,
  /** A ping after 25 s without traffic. */
  pingInterval: C.pingInterval,
  /** 20 s for the pong (or any data) before the connection is deemed dead. */
  pingTimeout: C.pingTimeout,
  /** No idle timeout. */
  idleTimeout: C.idleTimeout,
  /** `send()` returns false from 64 KiB buffered. */
  highWaterMark: C.highWaterMark,
  /** `drain` at 16 KiB buffered. */
  lowWaterMark: C.lowWaterMark,
  /** The slow-consumer policy applies from 4 MiB buffered. */
  maxBufferedAmount: C.maxBufferedAmount,
  /** Async iteration pauses the socket with 16 unread messages. */
  maxQueuedMessages: C.maxQueuedMessages,
  /** 256 KiB of large-message work per turn. */
  sliceSize: C.sliceSize,
} as const;

/** @internal `ConnectionSettings` with every default applied. */
export interface ResolvedSettings {
  readonly maxMessageSize: number | undefined;
  readonly textAsBuffer: boolean;
  readonly closeTimeout: number;
  readonly pingInterval: number;
  readonly pingTimeout: number;
  readonly idleTimeout: number;
  readonly highWaterMark: number;
  readonly lowWaterMark: number;
  readonly maxBufferedAmount: number;
  readonly dropSlow: boolean;
  readonly slowConsumerCloseCode: number;
  readonly maxQueuedMessages: number;
  /** Token bucket of `messageRate`, in messages per ms (0: no limit). */
  readonly rate: number;
  readonly burst: number;
  readonly dropOverRate: boolean;
  readonly autoPong: boolean;
  readonly skipUtf8Validation: boolean;
  readonly rethrowHandlerErrors: boolean;
  /** 0: no limit. */
  readonly maxFragments: number;
  /** 0: no limit. */
  readonly maxFrameChunks: number;
  readonly failureReasons: boolean;
  /** 0: no slicing. */
  readonly sliceSize: number;
}

/** Resolved settings by settings object: a route's connections share one (no per-connection copies). */
const resolvedSettings = new WeakMap<ConnectionSettings, ResolvedSettings>();

/** A close code a server may send for a slow consumer: 1008, or an application code (RFC 6455 §7.4.2). */
function slowConsumerCloseCode(code: number | undefined): number {
  if (code === undefined) return CloseCode.PolicyViolation;
  if (code !== CloseCode.PolicyViolation && !(Number.isInteger(code) && code >= 3000 && code <= 4999)) {
    throw new RangeError(`slowConsumerCloseCode must be 1008 or 3000–4999, got ${code}`);
  }
  return code;
}

/**
 * @internal The settings with defaults applied, computed once per settings object.
 * @throws RangeError when `messageRate.perSecond` is not > 0, or `slowConsumerCloseCode` is not 1008 or 3000–4999.
 */
export function resolveSettings(settings: ConnectionSettings & EngineSettings): ResolvedSettings {
  let resolved = resolvedSettings.get(settings);
  if (resolved) return resolved;
  const limit = settings.messageRate;
  if (limit !== undefined && !(limit.perSecond > 0)) throw new RangeError(`messageRate.perSecond must be > 0, got ${limit.perSecond}`);
  const highWaterMark = settings.highWaterMark ?? DEFAULT_SETTINGS.highWaterMark;
  resolved = {
    maxMessageSize: settings.maxMessageSize,
    textAsBuffer: settings.textAsBuffer ?? false,
    closeTimeout: settings.closeTimeout ?? DEFAULT_SETTINGS.closeTimeout,
    pingInterval: settings.pingInterval ?? DEFAULT_SETTINGS.pingInterval,
    pingTimeout: settings.pingTimeout ?? DEFAULT_SETTINGS.pingTimeout,
    idleTimeout: settings.idleTimeout ?? DEFAULT_SETTINGS.idleTimeout,
    highWaterMark,
    lowWaterMark: Math.min(settings.lowWaterMark ?? DEFAULT_SETTINGS.lowWaterMark, highWaterMark),
    maxBufferedAmount: settings.maxBufferedAmount ?? DEFAULT_SETTINGS.maxBufferedAmount,
    dropSlow: settings.slowConsumer === 'drop',
    slowConsumerCloseCode: slowConsumerCloseCode(settings.slowConsumerCloseCode),
    maxQueuedMessages: Math.max(1, settings.maxQueuedMessages ?? DEFAULT_SETTINGS.maxQueuedMessages),
    rate: limit ? limit.perSecond / 1000 : 0,
    burst: limit ? Math.max(1, limit.burst ?? limit.perSecond) : 0,
    dropOverRate: limit?.onExceed === 'drop',
    autoPong: settings.autoPong ?? true,
    skipUtf8Validation: settings.skipUtf8Validation ?? false,
    rethrowHandlerErrors: settings.rethrowHandlerErrors ?? false,
    maxFragments: settings.maxFragments ?? 0,
    maxFrameChunks: settings.maxFrameChunks ?? 0,
    failureReasons: settings.failureReasons ?? true,
    sliceSize: settings.sliceSize ?? DEFAULT_SETTINGS.sliceSize,
  };
  resolvedSettings.set(settings, resolved);
  return resolved;
}
