// The checker of the partition test: it reads every client's log (history.ts) and judges the run
// by the hub's delivery guarantee (docs/protocol.md, "Delivery guarantees"), with the vocabulary
// of the broker-restart accounting (test/hub/broker-restart-suite.ts). For every subscriber and
// every acknowledged publication of a topic it subscribed to (after its subscription began),
// exactly one of:
//
//   delivered      it arrived live;
//   recovered      it arrived from history (the subscribe reply after a reconnection);
//   gap-notified   it did not arrive, and a `gap` event (or `recovered: false`) said that
//                  publications up to it (or the rest of its epoch) are lost: the client was told
//                  (counted apart, not a violation: how many of those were still in history when
//                  the gap came — recoveries the hub missed);
//   silently lost  it did not arrive and the subscriber moved past it without being told;
//   undelivered    it did not arrive and the subscriber never got that far (it did not catch up
//                  before the end of the run: a liveness failure, counted apart from losses).
//
// The position is mirrored from the log as the client keeps it (client-core.ts): a message moves
// it to its offset, a gap to the gap's offset. And on every subscriber's stream, whatever was
// acknowledged or not:
//
//   duplicates     the same publication (its key) delivered twice;
//   out of order   an offset at or below the previous one in the same epoch;
//   holes          offsets skipped without a notice (publications that were stored, acknowledged
//                  or not, and never reached the subscriber, nor a gap about them);
//   misplaced      a publication delivered at another offset or epoch than its acknowledgement said;
//   gap back       a gap that moved the position below what was already delivered (the client
//                  would then take those offsets again);
//   subscriptions lost   the client dropped a subscription it never gave up (its final position is null);
//
// and across clients: the same (topic, epoch, offset) acknowledged twice or delivered with two
// different payloads (divergent), and a publisher's acknowledged publications out of the order it
// sent them (the hub handles one connection's requests in order). Any of these is a violation.
import type { ClientLog, LogEvent } from './history.js';

type Msg = Extract<LogEvent, { ev: 'msg' }>;
type Ack = Extract<LogEvent, { ev: 'ack' }>;

/** How each acknowledged publication reached one subscriber, and what was wrong with its stream. */
export interface SubscriberAccount {
  readonly name: string;
  readonly via: string;
  acked: number;
  delivered: number;
  recovered: number;
  gapNotified: number;
  /** Of those, how many were still in history when the gap came (a needless gap: not a violation, a missed recovery). */
  gapNeedless: number;
  silentlyLost: number;
  undelivered: number;
  duplicates: number;
  outOfOrder: number;
  holes: number;
  misplaced: number;
  /** Gaps that moved the position back below what was already delivered. */
  gapBack: number;
  subscriptionsLost: number;
  /** Gap events received (each may cover many publications). */
  gaps: number;
  /** Connections after the first (reconnections). */
  reconnects: number;
  /** The longest time from an acknowledgement to its delivery (live or recovered), ms: how long the subscriber was behind. */
  maxDelay: number;
  /**
   * The longest time from an acknowledgement (of any of its topics) to the next thing the
   * subscriber heard (a message or a gap), ms: how long it was deaf, whatever it later learnt.
   */
  maxSilence: number;
  /** Details of the first problems found, for the report. */
  readonly problems: string[];
}

export type Counts = Omit<SubscriberAccount, 'name' | 'via' | 'problems'>;

export interface CheckResult {
  /** Acknowledged publications (each once, whoever subscribed). */
  readonly acked: number;
  /** Publishes that failed, by error code (not acknowledged: the hub promised nothing). */
  readonly publishFailures: Readonly<Record<string, number>>;
  /** Publications delivered to someone although their publish failed (stored, acknowledgement lost: at most once). */
  readonly deliveredUnacked: number;
  readonly subscribers: readonly SubscriberAccount[];
  /** Sums over subscribers (each row counts subscriber × acknowledged publication); `maxDelay` and `maxSilence` are the largest. */
  readonly totals: Counts;
  readonly offsetReused: number;
  readonly divergent: number;
  readonly publisherOrder: number;
  /** Every violation, described (the first few of each kind). */
  readonly violations: readonly string[];
  readonly ok: boolean;
}

const MAX_DETAILS = 5;

/** A stretch of a topic's offsets, (from, to], in one epoch. */
interface Range {
  readonly epoch: string;
  readonly from: number;
  readonly to: number;
  /** When the gap that gave it up arrived. */
  readonly t: number;
}

function covering(ranges: readonly Range[], epoch: string, offset: number): Range | undefined {
  return ranges.find((r) => r.epoch === epoch && offset > r.from && offset <= r.to);
}

/** How many publishes of a topic had been sent by a time: an upper bound of its latest offset then. */
type SentBefore = (topic: string, t: number) => number;

function emptyCounts(): Counts {
  return {
    acked: 0,
    delivered: 0,
    recovered: 0,
    gapNotified: 0,
    gapNeedless: 0,
    silentlyLost: 0,
    undelivered: 0,
    duplicates: 0,
    outOfOrder: 0,
    holes: 0,
    misplaced: 0,
    gapBack: 0,
    subscriptionsLost: 0,
    gaps: 0,
    reconnects: 0,
    maxDelay: 0,
    maxSilence: 0,
  };
}

/** Judge one subscriber's stream of one topic against the acknowledged publications of that topic. */
function accountTopic(
  account: SubscriberAccount,
  events: readonly LogEvent[],
  topic: string,
  acks: readonly Ack[],
  sentBefore: SentBefore,
  historySize: number,
): void {
  const note = (text: string): void => {
    if (account.problems.length < MAX_DETAILS * 4) account.problems.push(`${topic}: ${text}`);
  };
  const start = events.find((e): e is Extract<LogEvent, { ev: 'subscribed' }> => e.ev === 'subscribed' && e.topic === topic);
  if (start === undefined) {
    account.subscriptionsLost++;
    note('never subscribed');
    return;
  }
  // The client's position, as client-core.ts keeps it: a message moves it to its offset, a gap to the gap's.
  let pos = { epoch: start.epoch, offset: start.offset };
  // Per epoch: the highest offset delivered, and the highest delivered or given up by a gap.
  const lastDelivered = new Map<string, number>([[start.epoch, start.offset]]);
  const high = new Map<string, number>([[start.epoch, start.offset]]);
  // What gaps gave up: offsets up to `to` of `epoch` (and, on a new epoch, the rest of the old one).
  const covered: Range[] = [];
  const got = new Map<string, Msg>();
  for (const e of events) {
    if (e.ev === 'msg' && e.topic === topic) {
      if (got.has(e.key)) {
        account.duplicates++;
        note(`duplicate ${e.key} at ${e.offset} (first at ${got.get(e.key)!.offset})`);
      } else {
        got.set(e.key, e);
      }
      if (e.offset <= (lastDelivered.get(e.epoch) ?? 0)) {
        account.outOfOrder++;
        note(`offset ${e.offset} after ${lastDelivered.get(e.epoch)!}`);
      }
      if (!high.has(e.epoch)) {
        // A new epoch without a gap about the old one: whatever the old one still had is skipped unannounced.
        account.holes += 1;
        note(`epoch ${pos.epoch} → ${e.epoch} without a gap`);
      }
      const top = high.get(e.epoch) ?? 0;
      if (e.offset > top + 1) {
        account.holes += e.offset - top - 1;
        note(`hole: offsets ${top + 1}..${e.offset - 1} skipped without a gap`);
      }
      lastDelivered.set(e.epoch, Math.max(lastDelivered.get(e.epoch) ?? 0, e.offset));
      high.set(e.epoch, Math.max(top, e.offset));
      pos = { epoch: e.epoch, offset: e.offset };
    } else if (e.ev === 'gap' && e.topic === topic) {
      account.gaps++;
      if (e.epoch === pos.epoch && e.offset < pos.offset) {
        // The client would take offsets it already had again: a duplicate waiting to happen.
        account.gapBack++;
        note(`gap moved the position back from ${pos.offset} to ${e.offset} (${e.reason})`);
      }
      covered.push({ epoch: e.epoch, from: 0, to: e.offset, t: e.t });
      if (e.epoch !== pos.epoch) covered.push({ epoch: pos.epoch, from: pos.offset, to: Infinity, t: e.t });
      high.set(e.epoch, Math.max(high.get(e.epoch) ?? 0, e.offset));
      pos = { epoch: e.epoch, offset: e.offset };
    }
  }
  const final = [...events].reverse().find((e): e is Extract<LogEvent, { ev: 'final' }> => e.ev === 'final');
  const finalPosition = final?.positions[topic];
  if (final !== undefined && finalPosition === null) {
    account.subscriptionsLost++;
    note('the client dropped the subscription');
  }
  let gap: Range | undefined;
  for (const ack of acks) {
    if (ack.epoch === start.epoch && ack.offset <= start.offset) continue; // before this subscription
    account.acked++;
    const msg = got.get(ack.key);
    if (msg !== undefined) {
      if (msg.epoch !== ack.epoch || msg.offset !== ack.offset) {
        account.misplaced++;
        note(`${ack.key} acknowledged at ${ack.epoch}/${ack.offset}, delivered at ${msg.epoch}/${msg.offset}`);
      }
      if (msg.recovered) account.recovered++;
      else account.delivered++;
      account.maxDelay = Math.max(account.maxDelay, msg.t - ack.t);
    } else if ((gap = covering(covered, ack.epoch, ack.offset)) !== undefined) {
      account.gapNotified++;
      // Still among the newest `historySize` when the gap came (even counting every publish sent
      // by then as stored): recovery could have had it.
      if (ack.epoch === start.epoch && sentBefore(topic, gap.t) - ack.offset < historySize) account.gapNeedless++;
    } else if (ack.epoch === pos.epoch && ack.offset > pos.offset) {
      account.undelivered++;
      if (account.undelivered <= MAX_DETAILS) note(`${ack.key} (${ack.offset}) undelivered: the subscriber ended at ${pos.offset}`);
    } else {
      account.silentlyLost++;
      if (account.silentlyLost <= MAX_DETAILS) note(`${ack.key} (${ack.epoch}/${ack.offset}) silently lost`);
    }
  }
}

/** What the checker knows of the hub's configuration. */
export interface CheckOptions {
  /** Publications kept per topic: a gap about one of the newest this many was needless. */
  readonly historySize?: number;
}

/** The longest wait from one of `acks` to the next message or gap in `events` (to the log's end if none came). */
function longestSilence(events: readonly LogEvent[], acks: readonly Ack[]): number {
  const heard = events.filter((e) => e.ev === 'msg' || e.ev === 'gap').map((e) => e.t);
  heard.sort((x, y) => x - y);
  const end = events.at(-1)?.t ?? 0;
  let longest = 0;
  for (const ack of acks) {
    let lo = 0;
    let hi = heard.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (heard[mid]! < ack.t) lo = mid + 1;
      else hi = mid;
    }
    longest = Math.max(longest, (heard[lo] ?? end) - ack.t);
  }
  return longest;
}

/** Judge a run from its clients' logs. */
export function check(logs: readonly ClientLog[], options: CheckOptions = {}): CheckResult {
  const violations: string[] = [];
  const acksByTopic = new Map<string, Ack[]>();
  const ackedKeys = new Set<string>();
  const failedKeys = new Set<string>();
  const publishFailures: Record<string, number> = {};
  const byPosition = new Map<string, string>();
  let offsetReused = 0;
  let publisherOrder = 0;

  for (const log of logs.filter((l) => l.role === 'publisher')) {
    const sendOrder = new Map<string, number>();
    for (const e of log.events) if (e.ev === 'send') sendOrder.set(e.key, sendOrder.size);
    const lastByTopic = new Map<string, Ack>();
    const acks = log.events.filter((e): e is Ack => e.ev === 'ack').sort((x, y) => sendOrder.get(x.key)! - sendOrder.get(y.key)!);
    for (const ack of acks) {
      ackedKeys.add(ack.key);
      let list = acksByTopic.get(ack.topic);
      if (!list) acksByTopic.set(ack.topic, (list = []));
      list.push(ack);
      const where = `${ack.topic}/${ack.epoch}/${ack.offset}`;
      const other = byPosition.get(where);
      if (other !== undefined) {
        offsetReused++;
        if (offsetReused <= MAX_DETAILS) violations.push(`offset reused: ${where} acknowledged for ${other} and ${ack.key}`);
      } else {
        byPosition.set(where, ack.key);
      }
      const previous = lastByTopic.get(ack.topic);
      if (previous !== undefined && previous.epoch === ack.epoch && previous.offset >= ack.offset) {
        publisherOrder++;
        if (publisherOrder <= MAX_DETAILS) violations.push(`${log.name}: ${ack.key} sent after ${previous.key} but acknowledged at ${ack.offset} ≤ ${previous.offset}`);
      }
      lastByTopic.set(ack.topic, ack);
    }
    for (const e of log.events) {
      if (e.ev !== 'fail') continue;
      failedKeys.add(e.key);
      publishFailures[e.code] = (publishFailures[e.code] ?? 0) + 1;
    }
  }

  const sendTimes = new Map<string, number[]>();
  for (const log of logs.filter((l) => l.role === 'publisher')) {
    for (const e of log.events) {
      if (e.ev !== 'send') continue;
      let times = sendTimes.get(e.topic);
      if (!times) sendTimes.set(e.topic, (times = []));
      times.push(e.t);
    }
  }
  for (const times of sendTimes.values()) times.sort((x, y) => x - y);
  const sentBefore: SentBefore = (topic, t) => {
    const times = sendTimes.get(topic) ?? [];
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid]! <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const historySize = options.historySize ?? 0;

  const delivered = new Map<string, string>();
  const deliveredUnacked = new Set<string>();
  let divergent = 0;
  const subscribers: SubscriberAccount[] = [];
  const totals = emptyCounts();
  for (const log of logs.filter((l) => l.role !== 'publisher')) {
    const account: SubscriberAccount = { name: log.name, via: log.via, ...emptyCounts(), problems: [] };
    account.reconnects = Math.max(0, log.events.filter((e) => e.ev === 'connected').length - 1);
    for (const e of log.events) {
      if (e.ev !== 'msg') continue;
      const where = `${e.topic}/${e.epoch}/${e.offset}`;
      const seen = delivered.get(where) ?? byPosition.get(where);
      if (seen !== undefined && seen !== e.key) {
        divergent++;
        if (divergent <= MAX_DETAILS) violations.push(`divergent: ${where} is ${seen} elsewhere, ${e.key} for ${log.name}`);
      }
      delivered.set(where, e.key);
      if (!ackedKeys.has(e.key) && failedKeys.has(e.key)) deliveredUnacked.add(e.key);
    }
    const topics = new Set<string>();
    for (const e of log.events) if (e.ev === 'subscribed') topics.add(e.topic);
    for (const topic of acksByTopic.keys()) topics.add(topic);
    for (const topic of topics) accountTopic(account, log.events, topic, acksByTopic.get(topic) ?? [], sentBefore, historySize);
    account.maxSilence = longestSilence(log.events, [...topics].flatMap((topic) => acksByTopic.get(topic) ?? []));
    for (const key of Object.keys(totals) as Array<keyof Counts>) {
      totals[key] = key === 'maxDelay' || key === 'maxSilence' ? Math.max(totals[key], account[key]) : totals[key] + account[key];
    }
    subscribers.push(account);
    const bad =
      account.silentlyLost +
      account.undelivered +
      account.duplicates +
      account.outOfOrder +
      account.holes +
      account.misplaced +
      account.gapBack +
      account.subscriptionsLost;
    if (bad > 0) violations.push(`${log.name}: ${account.problems.slice(0, MAX_DETAILS * 2).join('; ')}`);
    if (account.acked !== account.delivered + account.recovered + account.gapNotified + account.silentlyLost + account.undelivered) {
      violations.push(`${log.name}: the accounting does not add up`);
    }
  }

  return {
    acked: ackedKeys.size,
    publishFailures,
    deliveredUnacked: deliveredUnacked.size,
    subscribers,
    totals,
    offsetReused,
    divergent,
    publisherOrder,
    violations,
    ok: violations.length === 0,
  };
}
