/**
 * A client that stays connected: `connect()` in a loop with exponential backoff and full jitter,
 * a hook before each attempt (refresh a token), and a bounded queue for messages sent while
 * the connection is down, flushed in order once it is back.
 *
 * Delivery is at most once: a message handed to a socket that then drops is not resent (there
 * are no acknowledgements at this layer). What is queued while disconnected is sent exactly once.
 */
import { CloseCode, State, isValidCloseCode } from '../protocol/constants.js';
import { backoffDelay } from '../protocol/backoff.js';
import { DEFAULTS } from '../protocol/defaults.js';
import { HandshakeError, InvalidStateError, toError } from '../protocol/errors.js';
import { connect, type ConnectOptions } from './client.js';
import { silentLogger, type Logger } from './logger.js';
import type { MessageData, WebSocketHandlers } from './handlers.js';
import type { SendOptions, WebSocket } from './websocket.js';

const R = DEFAULTS.reconnect;

/**
 * Defaults: a view of `DEFAULTS.reconnect`, where each one's unit and reason are (the backoff is
 * "full jitter": a uniformly random delay between 0 and an exponentially growing ceiling).
 */
export const RECONNECT_DEFAULTS = {
  /** 1 s: the ceiling of the first retry's delay. */
  minDelay: R.minDelay,
  /** 30 s: the largest ceiling, reached at the 6th attempt in a row. */
  maxDelay: R.maxDelay,
  /** The ceiling doubles per attempt. */
  factor: R.factor,
  /** Full jitter: a uniformly random delay up to the ceiling. */
  jitter: R.jitter,
  /** Never give up. */
  maxAttempts: R.maxAttempts,
  /** A connection must stay open this long before the backoff starts again from `minDelay`. */
  resetAfter: R.resetAfter,
  /** Messages queued while disconnected, at most. */
  maxQueuedMessages: R.maxQueuedMessages,
  /** Bytes queued while disconnected, at most (1 MiB). */
  maxQueuedBytes: R.maxQueuedBytes,
  /** A full queue refuses the new message (`send()` returns `'rejected'`). */
  queueOverflow: R.queueOverflow,
} as const;

/** Why a connection ended or an attempt failed. */
export type Disconnect =
  /** An open connection closed (`code` 1006 if no close frame came). */
  | {
      /** An open connection closed. */
      type: 'close';
      /** The peer's close code; 1005 if its close frame had none, 1006 if no close frame came. */
      code: number;
      /** The peer's close reason ('' if none). */
      reason: string;
    }
  /** An attempt failed: `connect()` rejected (e.g. a `HandshakeError`, ECONNREFUSED) or `beforeConnect` threw. */
  | {
      /** An attempt failed before a connection opened. */
      type: 'error';
      /** Why: a `HandshakeError` (with the server's status and headers), a socket error, or what `beforeConnect` threw. */
      error: Error;
    };

/** A message waiting in the queue while disconnected. */
export interface OutgoingMessage {
  /** The message as given to `send()` (binary data is a copy, so the caller may reuse its buffer). */
  data: string | Uint8Array;
  /** The options given to `send()`, applied when it is finally sent. */
  options: SendOptions | undefined;
  /** Its size in bytes (UTF-8 for text). */
  size: number;
}

/** What `send()` did: written to the open connection, queued until the next one, or refused (queue full). */
export type SendStatus = 'sent' | 'queued' | 'rejected';

/** Why a `ReconnectingWebSocket` stopped for good. */
export type ClosedReason =
  /** `close()` was called. */
  | 'closed'
  /** `maxAttempts` attempts in a row failed. */
  | 'gave-up'
  /** `shouldReconnect` said no (by default: close code 1003 or 1008, handshake refused with a 4xx other than 408/429). */
  | 'not-retryable';

/** Reported once, when the client stops for good. */
export interface ClosedInfo {
  /** Why it stopped: `close()`, too many failed attempts, or a cause `shouldReconnect` refused. */
  reason: ClosedReason;
  /** The last disconnection or failure, if any. */
  cause: Disconnect | undefined;
  /** Attempts made in the last series (since the last connection that stayed up). */
  attempts: number;
  /** Queued messages that were never sent, oldest first (e.g. to persist them). */
  unsent: readonly OutgoingMessage[];
}

/** A retry was scheduled. */
export interface ReconnectingInfo {
  /** The number of the coming attempt in this series (1 = first attempt after a drop). */
  attempt: number;
  /** Milliseconds until it starts. */
  delay: number;
  /** What ended the last connection or attempt. */
  cause: Disconnect;
}

/** Callbacks of a `ReconnectingWebSocket`; like `WebSocketHandlers`, each gets the client first. */
export interface ReconnectingHandlers<Data = undefined> {
  /**
   * A connection opened (the first one and every reconnection). Messages sent here go out
   * before the queued ones: the place for an authentication or subscribe message.
   */
  open?(client: ReconnectingWebSocket<Data>, ws: WebSocket<Data>): void;
  /** A message arrived. */
  message?(client: ReconnectingWebSocket<Data>, data: MessageData, isBinary: boolean): void;
  /** A connection closed (each one; a reconnection may follow). */
  close?(client: ReconnectingWebSocket<Data>, code: number, reason: string): void;
  /** A connection error, or an attempt that failed. */
  error?(client: ReconnectingWebSocket<Data>, error: Error): void;
  /** A retry was scheduled. */
  reconnecting?(client: ReconnectingWebSocket<Data>, info: ReconnectingInfo): void;
  /** A connection opened again after a drop, and the queue was flushed. `downtime` in ms. */
  reconnected?(client: ReconnectingWebSocket<Data>, info: { attempt: number; downtime: number }): void;
  /** With `queueOverflow: 'drop-oldest'`: these queued messages were evicted to make room. */
  dropped?(client: ReconnectingWebSocket<Data>, messages: readonly OutgoingMessage[]): void;
  /** The client stopped for good; no callback follows. */
  closed?(client: ReconnectingWebSocket<Data>, info: ClosedInfo): void;
}

/** What `beforeConnect` may change for one attempt. Headers are merged over the base headers. */
export type ConnectOverrides<Data = undefined> = Partial<Omit<ConnectOptions<Data>, 'handlers'>> & {
  /** Connect to another URL this time (e.g. a token in the query string, or a fallback host). */
  url?: string | URL;
};

/** Options of a `ReconnectingWebSocket`: those of `connect()` plus the reconnection policy. */
export interface ReconnectingOptions<Data = undefined> extends Omit<ConnectOptions<Data>, 'handlers'> {
  /** Callbacks of the client (its connections' `WebSocketHandlers` are its own). */
  handlers?: ReconnectingHandlers<Data>;
  /** Ceiling of the delay before attempt 1 after a drop, in ms (default 1000). */
  minDelay?: number;
  /** Largest ceiling, in ms (default 30 000). */
  maxDelay?: number;
  /** Growth of the ceiling per attempt (default 2): attempt n waits up to min(maxDelay, minDelay·factor^(n−1)). */
  factor?: number;
  /** Full jitter (default true): wait a uniformly random time up to the ceiling; false waits the ceiling itself. */
  jitter?: boolean;
  /** Give up after this many attempts in a row without a connection that stayed up (default Infinity). */
  maxAttempts?: number;
  /** A connection that stayed open this long (ms) resets the attempt count and backoff (default 5000). */
  resetAfter?: number;
  /**
   * Called before every attempt (including the first) with the attempt's number; may return
   * (or resolve to) overrides, e.g. fresh `headers: { Authorization }`. If it throws, the
   * attempt counts as failed and is retried per `shouldReconnect`.
   */
  beforeConnect?(attempt: number, client: ReconnectingWebSocket<Data>): ConnectOverrides<Data> | void | Promise<ConnectOverrides<Data> | void>;
  /** Whether to try again after this disconnection or failure (default: `defaultShouldReconnect`). */
  shouldReconnect?(cause: Disconnect): boolean;
  /** Queue at most this many messages while disconnected (default 1000). */
  maxQueuedMessages?: number;
  /** Queue at most this many bytes while disconnected (default 1 MiB). */
  maxQueuedBytes?: number;
  /**
   * When the queue is full: `'reject'` (default) — `send()` returns `'rejected'` and the new
   * message is not kept; `'drop-oldest'` — evict the oldest (reported by `dropped`) and keep the new one.
   */
  queueOverflow?: 'reject' | 'drop-oldest';
}

/** Close codes after which the default policy does not reconnect: the server refuses what we are or send. */
const NO_RETRY_CODES: ReadonlySet<number> = new Set<number>([CloseCode.UnsupportedData, CloseCode.PolicyViolation]);

/**
 * The default reconnection policy: retry after any close except 1003 (Unsupported Data) and
 * 1008 (Policy Violation); after any failed attempt except a handshake refused with a 4xx status
 * other than 408 (Request Timeout) and 429 (Too Many Requests) — a 401/403/404 will not go away
 * by itself — and a `TypeError` (an invalid URL or option).
 */
export function defaultShouldReconnect(cause: Disconnect): boolean {
  if (cause.type === 'close') return !NO_RETRY_CODES.has(cause.code);
  const { error } = cause;
  if (error instanceof HandshakeError) {
    const status = error.status;
    return status < 400 || status >= 500 || status === 408 || status === 429;
  }
  return !(error instanceof TypeError);
}

/** The `Retry-After` of a refused handshake, in ms (0 if none): delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfter(cause: Disconnect): number {
  if (cause.type !== 'error' || !(cause.error instanceof HandshakeError)) return 0;
  const value = cause.error.headers['retry-after']?.trim();
  if (!value) return 0;
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_RETRY_AFTER) : 0;
}

/** A `Retry-After` longer than this (1 h) is taken as this: a bound on a misconfigured server's say. */
const MAX_RETRY_AFTER = 3_600_000;

/** Where a `ReconnectingWebSocket` is in its life. */
export type ReconnectingState = 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed';

/**
 * A WebSocket client that reconnects. Connecting starts right after construction (in a
 * microtask, so `beforeConnect` may refer to the client). `send()` writes to the open
 * connection or queues while there is none; `close()` stops for good.
 */
export class ReconnectingWebSocket<Data = undefined> {
  /** The URL given to the constructor. */
  readonly url: string | URL;
  /** Resolves once the client stopped for good (after the `closed` callback). */
  readonly finished: Promise<ClosedInfo>;

  private readonly options: ReconnectingOptions<Data>;
  private readonly handlers: ReconnectingHandlers<Data>;
  private readonly wsHandlers: WebSocketHandlers<Data>;
  private readonly logger: Logger;
  private readonly maxAttempts: number;
  private readonly resetAfter: number;
  private readonly maxQueuedMessages: number;
  private readonly maxQueuedBytes: number;
  private current: WebSocket<Data> | undefined;
  private _state: ReconnectingState = 'connecting';
  private attempt = 0;
  private connections = 0;
  private openedAt = 0;
  private downSince = 0;
  private timer: NodeJS.Timeout | undefined;
  private queue: OutgoingMessage[] = [];
  private _queuedBytes = 0;
  private userClose: { code: number; reason: string } | undefined;
  private lastCause: Disconnect | undefined;
  private resolveFinished!: (info: ClosedInfo) => void;

  /**
   * The first attempt starts in a microtask, so handlers and `beforeConnect` can use the client.
   * @param url The `ws:` or `wss:` URL to connect to (`beforeConnect` may override it per attempt).
   * @throws RangeError for an inconsistent policy: `minDelay` < 0, `maxDelay` < `minDelay`, `factor` < 1, `maxAttempts` < 1.
   */
  constructor(url: string | URL, options: ReconnectingOptions<Data> = {}) {
    this.url = url;
    this.options = options;
    this.handlers = options.handlers ?? {};
    this.logger = options.logger ?? silentLogger;
    this.maxAttempts = options.maxAttempts ?? RECONNECT_DEFAULTS.maxAttempts;
    this.resetAfter = options.resetAfter ?? RECONNECT_DEFAULTS.resetAfter;
    this.maxQueuedMessages = options.maxQueuedMessages ?? RECONNECT_DEFAULTS.maxQueuedMessages;
    this.maxQueuedBytes = options.maxQueuedBytes ?? RECONNECT_DEFAULTS.maxQueuedBytes;
    const minDelay = options.minDelay ?? RECONNECT_DEFAULTS.minDelay;
    const maxDelay = options.maxDelay ?? RECONNECT_DEFAULTS.maxDelay;
    if (!(minDelay >= 0) || !(maxDelay >= minDelay)) throw new RangeError('need 0 <= minDelay <= maxDelay');
    if (!((options.factor ?? RECONNECT_DEFAULTS.factor) >= 1)) throw new RangeError('factor must be >= 1');
    if (!(this.maxAttempts >= 1)) throw new RangeError('maxAttempts must be >= 1');
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    // One handler object per client; the connection it reports on is always `current`.
    this.wsHandlers = {
      open: (ws) => this.onOpen(ws),
      message: (_ws, data, isBinary) => this.handlers.message?.(this, data, isBinary),
      error: (_ws, error) => this.emit('error', () => this.handlers.error?.(this, error)),
      close: (ws, code, reason) => this.onClose(ws, code, reason),
    };
    queueMicrotask(() => void this.attemptConnect());
  }

  /** Where the client is: connecting, open, waiting to reconnect, closing, or closed for good. */
  get state(): ReconnectingState {
    return this._state;
  }

  /** The open connection, if there is one. */
  get ws(): WebSocket<Data> | undefined {
    return this.current;
  }

  /** Attempts made in the current series (reset once a connection stayed up `resetAfter` ms). */
  get attempts(): number {
    return this.attempt;
  }

  /** Messages waiting for the next connection. */
  get queuedMessages(): number {
    return this.queue.length;
  }

  /** Bytes waiting for the next connection. */
  get queuedBytes(): number {
    return this._queuedBytes;
  }

  /**
   * Send a message now if connected (`'sent'`; then `ws.bufferedAmount` tells about
   * backpressure), else queue it (`'queued'`; binary data is copied), or refuse it when the
   * queue is full under `queueOverflow: 'reject'` or the message alone exceeds `maxQueuedBytes`
   * (`'rejected'`). Throws `InvalidStateError` after `close()` or once the client stopped.
   */
  send(data: string | Uint8Array, options?: SendOptions): SendStatus {
    if (this.userClose || this._state === 'closed') throw new InvalidStateError('cannot send: the client was closed');
    const ws = this.current;
    if (ws && ws.readyState === State.Open && !ws.connection.closing) {
      ws.send(data, options);
      return 'sent';
    }
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    if (size > this.maxQueuedBytes || this.maxQueuedMessages < 1) return 'rejected';
    let dropped: OutgoingMessage[] | undefined;
    while (this.queue.length + 1 > this.maxQueuedMessages || this._queuedBytes + size > this.maxQueuedBytes) {
      if ((this.options.queueOverflow ?? RECONNECT_DEFAULTS.queueOverflow) === 'reject') return 'rejected';
      const oldest = this.queue.shift()!;
      this._queuedBytes -= oldest.size;
      (dropped ??= []).push(oldest);
    }
    this.queue.push({ data: typeof data === 'string' ? data : Buffer.from(data), options, size });
    this._queuedBytes += size;
    if (dropped) {
      const evicted = dropped;
      this.emit('dropped', () => this.handlers.dropped?.(this, evicted));
    }
    return 'queued';
  }

  /**
   * Stop for good: close the open connection with `code` and `reason` (or cancel the pending
   * attempt) and never reconnect. Resolves once closed, like `finished`.
   */
  close(code: number = CloseCode.NormalClosure, reason = ''): Promise<ClosedInfo> {
    if (this._state === 'closed' || this.userClose) return this.finished;
    if (!isValidCloseCode(code)) throw new RangeError(`invalid close code ${code}`);
    this.userClose = { code, reason };
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.finish('closed', this.lastCause);
    } else {
      this._state = 'closing';
      const ws = this.current;
      // Open: start the closing handshake; connecting: `onOpen` or the failure finishes the job.
      if (ws) ws.close(code, reason);
    }
    return this.finished;
  }

  // ---- the loop ----------------------------------------------------------------------------

  private async attemptConnect(): Promise<void> {
    if (this.userClose) {
      this.finish('closed', this.lastCause);
      return;
    }
    this.attempt += 1;
    this._state = 'connecting';
    const {
      handlers: _handlers, beforeConnect, shouldReconnect: _should, minDelay: _min, maxDelay: _max, factor: _factor, jitter: _jitter,
      maxAttempts: _attempts, resetAfter: _reset, maxQueuedMessages: _messages, maxQueuedBytes: _bytes, queueOverflow: _overflow,
      ...base
    } = this.options;
    try {
      const overrides = (await beforeConnect?.(this.attempt, this)) ?? {};
      if (this.userClose) {
        this.finish('closed', this.lastCause);
        return;
      }
      const { url = this.url, ...connectOverrides } = overrides;
      this.logger.debug({ url: String(url), attempt: this.attempt }, 'connecting');
      // `open` (our onOpen) runs inside connect(), before this await resumes.
      await connect<Data>(url, {
        ...base,
        ...connectOverrides,
        headers: { ...base.headers, ...connectOverrides.headers },
        handlers: this.wsHandlers,
      });
    } catch (error) {
      const err = toError(error);
      this.logger.debug({ attempt: this.attempt, err: err.message }, 'connection attempt failed');
      this.emit('error', () => this.handlers.error?.(this, err));
      this.afterDisconnect({ type: 'error', error: err });
    }
  }

  private onOpen(ws: WebSocket<Data>): void {
    this.current = ws;
    this.openedAt = performance.now();
    if (this.userClose) {
      ws.close(this.userClose.code, this.userClose.reason);
      return;
    }
    this._state = 'open';
    const reconnected = this.connections > 0;
    this.connections += 1;
    // If `open` throws, the connection closes with 1011 (WebSocket's rule) and the queue waits.
    this.handlers.open?.(this, ws);
    this.flush(ws);
    if (reconnected) {
      const info = { attempt: this.attempt, downtime: Math.round(performance.now() - this.downSince) };
      this.emit('reconnected', () => this.handlers.reconnected?.(this, info));
    }
  }

  /** Send the queue, oldest first, while the connection stays open. */
  private flush(ws: WebSocket<Data>): void {
    let sent = 0;
    for (const message of this.queue) {
      if (ws.readyState !== State.Open || ws.connection.closing) break;
      ws.send(message.data, message.options);
      this._queuedBytes -= message.size;
      sent += 1;
    }
    if (sent > 0) this.queue = sent === this.queue.length ? [] : this.queue.slice(sent);
  }

  private onClose(ws: WebSocket<Data>, code: number, reason: string): void {
    if (ws !== this.current) return;
    this.current = undefined;
    this.downSince = performance.now();
    if (this.downSince - this.openedAt >= this.resetAfter) this.attempt = 0;
    this.emit('close', () => this.handlers.close?.(this, code, reason));
    this.afterDisconnect({ type: 'close', code, reason });
  }

  private afterDisconnect(cause: Disconnect): void {
    if (this._state === 'closed') return;
    this.lastCause = cause;
    if (this.userClose) {
      this.finish('closed', cause);
      return;
    }
    let retry: boolean;
    try {
      retry = (this.options.shouldReconnect ?? defaultShouldReconnect)(cause);
    } catch (error) {
      this.emit('error', () => this.handlers.error?.(this, toError(error)));
      retry = false;
    }
    if (!retry) {
      this.finish('not-retryable', cause);
      return;
    }
    if (this.attempt >= this.maxAttempts) {
      this.finish('gave-up', cause);
      return;
    }
    const attempt = this.attempt + 1;
    // A refused handshake's `Retry-After` (429, 503) is a floor: the server said when to come back.
    const delay = Math.max(backoffDelay(attempt, this.options), retryAfter(cause));
    this._state = 'reconnecting';
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.attemptConnect();
    }, delay);
    this.logger.debug({ attempt, delay }, 'reconnecting');
    this.emit('reconnecting', () => this.handlers.reconnecting?.(this, { attempt, delay, cause }));
  }

  private finish(reason: ClosedReason, cause: Disconnect | undefined): void {
    if (this._state === 'closed') return;
    this._state = 'closed';
    const info: ClosedInfo = { reason, cause, attempts: this.attempt, unsent: this.queue };
    this.queue = [];
    this._queuedBytes = 0;
    this.emit('closed', () => this.handlers.closed?.(this, info));
    this.resolveFinished(info);
  }

  /** Call a user callback; one that throws is reported to `error` (or logged) and the loop goes on. */
  private emit(name: keyof ReconnectingHandlers<Data>, call: () => void): void {
    try {
      call();
    } catch (error) {
      const err = toError(error);
      this.logger.error({ handler: name, err: err.message }, 'handler threw');
      if (name !== 'error' && this.handlers.error) {
        try {
          this.handlers.error(this, err);
        } catch {
          // An error handler that throws is not called again.
        }
      }
    }
  }
}

/** Create a `ReconnectingWebSocket` (it starts connecting at once). */
export function reconnecting<Data = undefined>(url: string | URL, options: ReconnectingOptions<Data> = {}): ReconnectingWebSocket<Data> {
  return new ReconnectingWebSocket<Data>(url, options);
}
