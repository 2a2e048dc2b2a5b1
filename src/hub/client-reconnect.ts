/**
 * When and how soon a hub client reconnects — one policy, one backoff and one set of defaults for
 * the Node `HubClient` and the browser `DuplexClient` (`docs/protocol.md`, "Close codes" and
 * "Client defaults").
 *
 * Web-standard APIs only (timers, `queueMicrotask`, `Math.random`), `protocol/constants.ts` and
 * `protocol/defaults.ts` (Node-free), so browsers load it as a plain ES module and bundlers find
 * nothing of Node in it.
 */
import { backoffDelay } from '../protocol/backoff.js';
import { CloseCode } from '../protocol/constants.js';
import { DEFAULTS } from '../protocol/defaults.js';
import { AUTH_EXPIRED_CLOSE_CODE, SLOW_CONSUMER_CLOSE_CODE } from './wire.js';

/** The defaults of both hub clients: `DEFAULTS.hubClient`, where each one's unit and reason are. */
export const HUB_CLIENT_DEFAULTS = DEFAULTS.hubClient;

/** The close codes the hub uses and what a client does after each (`docs/protocol.md`). */
export const HubCloseCode = {
  /** 1000: a normal closure (the client's own `close()`); from a server: reconnect. */
  NormalClosure: CloseCode.NormalClosure,
  /** 1001: the server is going away (shutdown, restart, `hub.close()`): reconnect and recover. */
  GoingAway: CloseCode.GoingAway,
  /** 1003: data the server cannot accept: stop (sending it again will not help). */
  UnsupportedData: CloseCode.UnsupportedData,
  /**
   * 1008: refused by policy (authentication failed or missing, too many invalid messages, rate
   * limit, or disconnected by the server API): stop.
   */
  PolicyViolation: CloseCode.PolicyViolation,
  /**
   * 1013: try again later: the connect hook's backend is unavailable (down, or too slow):
   * reconnect with backoff, the attempts in a row growing the delay.
   */
  TryAgainLater: CloseCode.TryAgainLater,
  /**
   * 4001: authentication expired (the expiry the connect hook answered passed): reconnect,
   * authenticating afresh (a `token` or `connectData` function is asked again).
   */
  AuthenticationExpired: AUTH_EXPIRED_CLOSE_CODE,
  /** 4008: a slow consumer (it did not read fast enough and was cut off): reconnect and recover. */
  SlowConsumer: SLOW_CONSUMER_CLOSE_CODE,
} as const;

/** Close codes after which a hub client stops: the server refused what it is or what it sent. */
const STOP_CODES: ReadonlySet<number> = new Set<number>([HubCloseCode.UnsupportedData, HubCloseCode.PolicyViolation]);

/**
 * Whether a hub client reconnects after the server closed with `code`: yes (and recovers), except
 * after 1003 and 1008 — 1013 (try again later), 4001 (authentication expired) and 4008 (slow
 * consumer) included. Decided by the code alone, never by the reason text (which is for people:
 * 4008, not 1008 "slow consumer", says "come back").
 */
export function reconnectsAfterClose(code: number): boolean {
  return !STOP_CODES.has(code);
}

/** How a connection ended: the server closed it, or an attempt failed before it opened. */
export type ConnectionEnd =
  | {
      /** An open connection closed. */
      readonly type: 'close';
      /** The close code (1006: the connection dropped without a close frame). */
      readonly code: number;
      /** The close reason ('' if none). */
      readonly reason: string;
    }
  | {
      /** An attempt failed before a connection opened (or the token could not be had). */
      readonly type: 'error';
      /** Why. */
      readonly error: Error;
    };

/**
 * The policy both clients start from: after a close, `reconnectsAfterClose`; after a failed
 * attempt, retry — except a `TypeError` or a `SyntaxError` (an invalid URL or option will not
 * fix itself). The Node client also stops on a handshake refused with a 4xx status other than
 * 408 and 429 (browsers cannot see the status).
 */
export function hubShouldReconnect(cause: ConnectionEnd): boolean {
  if (cause.type === 'close') return reconnectsAfterClose(cause.code);
  return !(cause.error instanceof TypeError || cause.error.name === 'SyntaxError');
}

/** The backoff and give-up settings of a reconnecting client. */
export interface ReconnectPolicy {
  /** Ceiling of the delay before the first retry, ms. */
  readonly minDelay: number;
  /** Largest ceiling, ms. */
  readonly maxDelay: number;
  /** Growth of the ceiling per attempt. */
  readonly factor: number;
  /** Full jitter (a random delay up to the ceiling); false waits the ceiling itself. */
  readonly jitter: boolean;
  /** Attempts in a row (without a connection that stayed up) before giving up. */
  readonly maxAttempts: number;
  /** A connection that stayed open this long (ms) resets the attempt count. */
  readonly resetAfter: number;
}

/** The delay before attempt `attempt` (≥ 1): the package's one backoff (`protocol/backoff.ts`), on the hub clients' defaults. */
export { backoffDelay };

/** A retry was scheduled. */
export interface RetryInfo {
  /** The number of the coming attempt in this series: 1, 2, 3…; a connection that stayed up `resetAfter` starts a new series. */
  readonly attempt: number;
  /** Milliseconds until it starts. */
  readonly delay: number;
  /** What ended the last connection or attempt. */
  readonly cause: ConnectionEnd;
}

/** Why a client stopped reconnecting by itself. */
export type GiveUpReason = 'not-retryable' | 'gave-up';

/** What a `Reconnector` drives: the client's connection and its events. */
export interface ReconnectHooks {
  /** Start attempt `attempt` (1 for the first of a series); report its end with `ended()`. */
  connect(attempt: number): void;
  /** A retry is scheduled. */
  retrying(info: RetryInfo): void;
  /** The policy said no (`not-retryable`) or `maxAttempts` attempts failed (`gave-up`): no attempt follows. */
  stopped(reason: GiveUpReason, cause: ConnectionEnd): void;
  /** Whether an attempt may start now (false: wait another delay; a browser that is offline). */
  canConnect?(): boolean;
}

/** Policy options as the clients take them; unset fields have the defaults. */
export interface ReconnectSettings extends Partial<ReconnectPolicy> {
  /** Whether to try again after this end (default `hubShouldReconnect`). */
  readonly shouldReconnect?: (cause: ConnectionEnd) => boolean;
  /** The least delay before the next attempt, ms (e.g. a refused handshake's `Retry-After`). */
  readonly minimumDelay?: (cause: ConnectionEnd) => number;
}

/**
 * The reconnection loop of a hub client: counts attempts, waits the backoff, asks the policy.
 * It holds no connection: `connect(attempt)` opens one, the client reports back `opened()` and
 * `ended(cause)`.
 */
export class Reconnector {
  private readonly policy: ReconnectPolicy;
  private readonly settings: ReconnectSettings;
  private readonly hooks: ReconnectHooks;
  private attempt = 0;
  private openedAt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  /** @throws RangeError for an inconsistent policy: `minDelay` < 0, `maxDelay` < `minDelay`, `factor` < 1, `maxAttempts` < 1. */
  constructor(settings: ReconnectSettings, hooks: ReconnectHooks) {
    const d = HUB_CLIENT_DEFAULTS;
    this.policy = {
      minDelay: settings.minDelay ?? d.minDelay,
      maxDelay: settings.maxDelay ?? d.maxDelay,
      factor: settings.factor ?? d.factor,
      jitter: settings.jitter ?? d.jitter,
      maxAttempts: settings.maxAttempts ?? d.maxAttempts,
      resetAfter: settings.resetAfter ?? d.resetAfter,
    };
    const p = this.policy;
    if (!(p.minDelay >= 0) || !(p.maxDelay >= p.minDelay)) throw new RangeError('need 0 <= minDelay <= maxDelay');
    if (!(p.factor >= 1)) throw new RangeError('factor must be >= 1');
    if (!(p.maxAttempts >= 1)) throw new RangeError('maxAttempts must be >= 1');
    this.settings = settings;
    this.hooks = hooks;
  }

  /** Start the first attempt, in a microtask (the client's constructor finishes first). */
  start(): void {
    queueMicrotask(() => this.next());
  }

  /** The connection of the current attempt opened. */
  opened(): void {
    this.openedAt = Date.now();
  }

  /** The current connection or attempt ended: schedule the next attempt, or stop. */
  ended(cause: ConnectionEnd): void {
    if (this.stopped) return;
    if (this.openedAt > 0 && Date.now() - this.openedAt >= this.policy.resetAfter) this.attempt = 0;
    this.openedAt = 0;
    let retry: boolean;
    try {
      retry = (this.settings.shouldReconnect ?? hubShouldReconnect)(cause);
    } catch {
      retry = false; // a policy that throws cannot say yes
    }
    if (!retry || this.attempt >= this.policy.maxAttempts) {
      this.stopped = true;
      this.hooks.stopped(retry ? 'gave-up' : 'not-retryable', cause);
      return;
    }
    this.schedule(cause);
  }

  /** Cut a pending wait short and attempt now (a browser's `online` event). False if no retry was waiting. */
  retryNow(): boolean {
    if (this.stopped || this.timer === undefined) return false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.next();
    return true;
  }

  /** Never attempt again (the client was closed). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(cause: ConnectionEnd): void {
    const attempt = this.attempt + 1;
    const delay = Math.max(backoffDelay(attempt, this.policy), this.settings.minimumDelay?.(cause) ?? 0);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Not now (offline): the same attempt waits another delay, it does not count as failed.
      if (this.hooks.canConnect && !this.hooks.canConnect()) this.schedule(cause);
      else this.next();
    }, delay);
    this.hooks.retrying({ attempt, delay, cause });
  }

  private next(): void {
    if (this.stopped) return;
    this.attempt += 1;
    this.hooks.connect(this.attempt);
  }
}
