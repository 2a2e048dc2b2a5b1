// The 0-silent-loss accounting shared by the fault tests (broker restarts, Redis Cluster and
// Sentinel failovers, NATS cluster servers killed): every acknowledged publish must have reached
// each subscriber live, or from history after a reconnection, or be covered by a `gap` event
// that told the client; anything else is silently lost. Nothing may arrive twice, or out of
// offset order within an epoch.

/** An acknowledged publish: its key (in the data) and the position the broker gave it. */
export interface Ack {
  readonly key: string;
  readonly offset: number;
  readonly epoch: string;
}

/** What one subscriber received: each message's key and position, and each gap with the acks counted when it came. */
export interface Received {
  readonly got: ReadonlyArray<{ readonly key: string; readonly offset: number; readonly epoch: string; readonly recovered: boolean }>;
  readonly gaps: ReadonlyArray<{ readonly epoch: string; readonly offset: number; readonly acksSoFar: number }>;
}

/** How every acknowledged publish reached one subscriber, or was reported missing to it. */
export interface Accounting {
  acked: number;
  delivered: number;
  recovered: number;
  gapNotified: number;
  silentlyLost: number;
  duplicates: number;
  /** Messages whose offset is not above the one before, within an epoch. */
  disorder: number;
  /** The first silently lost acks (at most 10, to name them in a failure). */
  lost: Ack[];
}

/** A subscriber's messages as `{ key, meta }` pairs (meta from the client's listener), in the shape `account` reads. */
export function received(got: ReadonlyArray<{ readonly key: string; readonly meta: { readonly offset: number; readonly epoch: string; readonly recovered: boolean } }>, gaps: Received['gaps']): Received {
  return { got: got.map(({ key, meta }) => ({ key, offset: meta.offset, epoch: meta.epoch, recovered: meta.recovered })), gaps };
}

/**
 * Each acknowledged publish was delivered live, recovered from history, or covered by a gap
 * (one that moved the subscriber past it in its epoch, or to a new epoch after it was
 * acknowledged); anything else is silently lost.
 */
export function account(sub: Received, acks: readonly Ack[]): Accounting {
  const seen = new Map<string, { recovered: boolean }>();
  let duplicates = 0;
  for (const g of sub.got) {
    if (seen.has(g.key)) duplicates++;
    else seen.set(g.key, g);
  }
  let disorder = 0;
  for (let i = 1; i < sub.got.length; i++) {
    const a = sub.got[i - 1]!;
    const b = sub.got[i]!;
    if (a.epoch === b.epoch && b.offset <= a.offset) disorder++;
  }
  const counts: Accounting = { acked: acks.length, delivered: 0, recovered: 0, gapNotified: 0, silentlyLost: 0, duplicates, disorder, lost: [] };
  acks.forEach((ack, index) => {
    const meta = seen.get(ack.key);
    if (meta !== undefined) {
      if (meta.recovered) counts.recovered++;
      else counts.delivered++;
      return;
    }
    const told = sub.gaps.some((g) => (g.epoch === ack.epoch ? g.offset >= ack.offset : g.acksSoFar > index));
    if (told) counts.gapNotified++;
    else {
      counts.silentlyLost++;
      if (counts.lost.length < 10) counts.lost.push(ack);
    }
  });
  return counts;
}
