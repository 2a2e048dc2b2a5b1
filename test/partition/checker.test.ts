// The partition checker on histories written by hand: it must pass a clean one and catch each
// kind of violation (a checker that cannot fail proves nothing). Runs without the bed.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { check } from './checker.js';
import type { ClientLog, LogEvent } from './history.js';

type Line = LogEvent extends infer E ? (E extends { t: number } ? Omit<E, 't'> : never) : never;

const E = 'e1';

function log(name: string, role: ClientLog['role'], lines: readonly Line[]): ClientLog {
  const events = [{ ev: 'client', name, role, via: 'a' } as Line, ...lines].map((l, i) => ({ t: 1000 + i, ...l }) as LogEvent);
  return { name, role, via: 'a', events };
}

/** A publisher whose publications k1…kn were acknowledged at offsets 1…n (or `offsets`). */
function publisher(count: number, offsets?: readonly number[]): ClientLog {
  const lines: Line[] = [];
  for (let i = 1; i <= count; i++) lines.push({ ev: 'send', topic: 't', key: `k${i}` });
  for (let i = 1; i <= count; i++) lines.push({ ev: 'ack', topic: 't', key: `k${i}`, epoch: E, offset: offsets?.[i - 1] ?? i });
  return log('pub', 'publisher', lines);
}

const subscribed: Line = { ev: 'subscribed', topic: 't', epoch: E, offset: 0 };
const msg = (key: string, offset: number, recovered = false, epoch = E): Line => ({ ev: 'msg', topic: 't', key, epoch, offset, recovered });
const gap = (offset: number, epoch = E): Line => ({ ev: 'gap', topic: 't', epoch, offset, reason: 'too old' });
const final = (offset: number | null, epoch = E): Line => ({ ev: 'final', positions: { t: offset === null ? null : { epoch, offset } } });

test('checker: a clean history passes, live and recovered deliveries counted apart', () => {
  const r = check([publisher(3), log('sub', 'subscriber', [subscribed, msg('k1', 1), msg('k2', 2, true), msg('k3', 3, true), final(3)])]);
  assert.deepEqual(r.violations, []);
  assert.equal(r.ok, true);
  assert.equal(r.acked, 3);
  assert.equal(r.totals.delivered, 1);
  assert.equal(r.totals.recovered, 2);
});

test('checker: a publication skipped without a gap is silently lost (and a hole)', () => {
  const r = check([publisher(3), log('sub', 'subscriber', [subscribed, msg('k1', 1), msg('k3', 3), final(3)])]);
  assert.equal(r.ok, false);
  assert.equal(r.totals.silentlyLost, 1);
  assert.equal(r.totals.holes, 1);
});

test('checker: a gap past a missing publication makes it gap-notified, not lost', () => {
  const r = check([publisher(3), log('sub', 'subscriber', [subscribed, msg('k1', 1), gap(2), msg('k3', 3), final(3)])]);
  assert.deepEqual(r.violations, []);
  assert.equal(r.totals.gapNotified, 1);
  assert.equal(r.totals.holes, 0);
});

test('checker: a gap into a new epoch covers the rest of the old one', () => {
  const r = check([
    publisher(3),
    log('sub', 'subscriber', [subscribed, msg('k1', 1), gap(0, 'e2'), { ev: 'final', positions: { t: { epoch: 'e2', offset: 0 } } }]),
  ]);
  assert.deepEqual(r.violations, []);
  assert.equal(r.totals.gapNotified, 2);
});

test('checker: duplicates, reorderings and misplaced deliveries are violations', () => {
  const duplicate = check([publisher(2), log('sub', 'subscriber', [subscribed, msg('k1', 1), msg('k2', 2), msg('k2', 3), final(3)])]);
  assert.equal(duplicate.totals.duplicates, 1);
  assert.equal(duplicate.totals.misplaced, 0);
  assert.equal(duplicate.ok, false);
  const reordered = check([publisher(3), log('sub', 'subscriber', [subscribed, msg('k1', 1), msg('k3', 3), msg('k2', 2), final(2)])]);
  assert.equal(reordered.totals.outOfOrder, 1);
  assert.equal(reordered.ok, false);
  const misplaced = check([publisher(2), log('sub', 'subscriber', [subscribed, msg('k2', 1), msg('k1', 2), final(2)])]);
  assert.equal(misplaced.totals.misplaced, 2);
  assert.equal(misplaced.divergent, 2);
  assert.equal(misplaced.ok, false);
});

test('checker: a subscriber that never caught up has undelivered publications; a dropped subscription is a violation', () => {
  const behind = check([publisher(3), log('sub', 'subscriber', [subscribed, msg('k1', 1), final(1)])]);
  assert.equal(behind.totals.undelivered, 2);
  assert.equal(behind.totals.silentlyLost, 0);
  assert.equal(behind.ok, false);
  const dropped = check([publisher(1), log('sub', 'subscriber', [subscribed, msg('k1', 1), final(null)])]);
  assert.equal(dropped.totals.subscriptionsLost, 1);
  assert.equal(dropped.ok, false);
});

test('checker: a gap that moves the position back is a violation', () => {
  const r = check([publisher(3), log('sub', 'subscriber', [subscribed, msg('k1', 1), msg('k2', 2), msg('k3', 3), gap(1), final(1)])]);
  assert.equal(r.totals.gapBack, 1);
  assert.equal(r.ok, false);
});

test('checker: an offset acknowledged twice, and a publisher acknowledged out of its order, are violations', () => {
  const reused = check([publisher(2, [1, 1]), log('sub', 'subscriber', [subscribed, msg('k1', 1), final(1)])]);
  assert.equal(reused.offsetReused, 1);
  assert.equal(reused.ok, false);
  const order = check([publisher(2, [2, 1]), log('sub', 'subscriber', [subscribed, msg('k2', 1), msg('k1', 2), final(2)])]);
  assert.equal(order.publisherOrder, 1);
  assert.equal(order.ok, false);
});

test('checker: publications acknowledged before a subscription began are not counted for it', () => {
  const r = check([publisher(3), log('sub', 'subscriber', [{ ev: 'subscribed', topic: 't', epoch: E, offset: 2 }, msg('k3', 3), final(3)])]);
  assert.deepEqual(r.violations, []);
  assert.equal(r.totals.acked, 1);
});

test('checker: the longest silence is from an acknowledgement to the next message or gap heard', () => {
  const at = (t: number, line: Line): LogEvent => ({ t, ...line }) as LogEvent;
  const pub: ClientLog = {
    name: 'pub',
    role: 'publisher',
    via: 'a',
    events: [
      at(0, { ev: 'client', name: 'pub', role: 'publisher', via: 'a' }),
      at(1, { ev: 'send', topic: 't', key: 'k1' }),
      at(2, { ev: 'send', topic: 't', key: 'k2' }),
      at(10, { ev: 'ack', topic: 't', key: 'k1', epoch: E, offset: 1 }),
      at(20, { ev: 'ack', topic: 't', key: 'k2', epoch: E, offset: 2 }),
    ],
  };
  const sub: ClientLog = {
    name: 'sub',
    role: 'subscriber',
    via: 'a',
    events: [at(0, { ev: 'client', name: 'sub', role: 'subscriber', via: 'a' }), at(1, subscribed), at(12, msg('k1', 1)), at(5020, gap(2)), at(5030, final(2))],
  };
  const r = check([pub, sub], { historySize: 100 });
  assert.equal(r.totals.maxSilence, 5000);
  assert.equal(r.totals.maxDelay, 2);
  assert.equal(r.totals.gapNotified, 1);
  assert.equal(r.totals.gapNeedless, 1, 'offset 2 was among the newest 100 when the gap came');
});
