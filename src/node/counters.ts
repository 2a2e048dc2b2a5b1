/**
 * Traffic counters: what connections add their messages and bytes to (a server's statistics,
 * or a set of the caller's own). Plain fields on one object, bumped in place on the hot path.
 */

/** Message and byte counts (payload bytes, after decompression). */
export interface TrafficCounters {
  /** Data messages received (pings and pongs not counted). */
  messagesIn: number;
  /** Payload bytes of the messages received, after decompression. */
  bytesIn: number;
  /** Data messages sent (a prepared message counts once per connection). */
  messagesOut: number;
  /** Payload bytes of the messages sent, before compression and framing. */
  bytesOut: number;
  /** Messages not sent because the slow-consumer policy dropped them. */
  dropped: number;
  /** Received messages (and pings) over a connection's `messageRate` (dropped, or the connection closed). */
  rateLimited: number;
}

/** A fresh set of zeroed counters. */
export function createTrafficCounters(): TrafficCounters {
  return { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0, dropped: 0, rateLimited: 0 };
}
