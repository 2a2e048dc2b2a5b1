/**
 * The reconnection delay, shared by the engine's `ReconnectingWebSocket` and the hub clients
 * (Node and browser): exponential backoff with "full jitter" (a uniformly random delay between
 * 0 and a ceiling that grows by `factor` per attempt, capped at `maxDelay`), which spreads a
 * crowd of clients that lost the same server over the whole window instead of a thundering herd.
 *
 * No imports but the defaults and no Node API: `duplex serve` hands this file to browsers.
 */
import { DEFAULTS } from './defaults.js';

/** The knobs of the backoff; each one missing takes its value from `DEFAULTS.reconnect`. */
export interface BackoffPolicy {
  /** Ceiling of the first retry's delay, in ms. */
  minDelay?: number;
  /** Largest ceiling, in ms. */
  maxDelay?: number;
  /** Multiplier of the ceiling per attempt. */
  factor?: number;
  /** Wait a uniformly random time up to the ceiling (true) or the ceiling itself (false). */
  jitter?: boolean;
}

/**
 * The delay before attempt `attempt` (≥ 1): full jitter over
 * min(maxDelay, minDelay·factor^(attempt−1)), rounded to the millisecond. Pure, so tests pass `random`.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy = {}, random: () => number = Math.random): number {
  const defaults = DEFAULTS.reconnect;
  const minDelay = policy.minDelay ?? defaults.minDelay;
  const maxDelay = policy.maxDelay ?? defaults.maxDelay;
  const factor = policy.factor ?? defaults.factor;
  const ceiling = Math.min(maxDelay, minDelay * factor ** Math.max(0, attempt - 1));
  return Math.round((policy.jitter ?? defaults.jitter) ? random() * ceiling : ceiling);
}
