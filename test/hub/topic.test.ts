// The topic sequencer without sockets: fake publications in, a fake history behind it, and a
// recording output — what each subscriber would be sent, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import type { HistorySlice, Publication } from '../../src/hub/broker.js';
import { historySlice } from '../../src/hub/brokers/shared.js';
import { silentLogger } from '../../src/node/logger.js';
import { POSITION_ONLY, TopicSequencer, type TopicOutput } from '../../src/hub/topic.js';
import type { GapReason } from '../../src/hub/wire.js';

type Event = ['deliver', number, string] | ['gap', number, string, GapReason] | ['epoch', string];

/** A topic's history as a broker keeps it: an epoch, the latest offset, what is still retained. */
class FakeHistory {
  epoch = 'e1';
  latest = 0;
  retained: Publication[] = [];
  /** Fetches made: [offset, epoch]. */
  readonly fetches: Array<[number, string | undefined]> = [];
  /** Fail this many fetches before answering. */
  failures = 0;
  /** While set, fetches wait for it. */
  gate: Promise<void> | undefined;

  /** Publish one (kept in history), returned for delivering live. */
  publish(data = ''): Publication {
    const publication = { topic: 't', offset: ++this.latest, epoch: this.epoch, data: data || String(this.latest), time: Date.now() };
    this.retained.push(publication);
    return publication;
  }

  /** History lost (e.g. the broker restarted empty): a new epoch, offsets from 1 again. */
  newEpoch(epoch: string): void {
    this.epoch = epoch;
    this.latest = 0;
    this.retained = [];
  }

  readonly read = async (_topic: string, offset: number, epoch: string | undefined): Promise<HistorySlice> => {
    this.fetches.push([offset, epoch]);
    if (this.gate) await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('broker down');
    }
    return historySlice(this.epoch, this.latest, this.retained, offset, epoch);
  };
}

function setup(history = new FakeHistory()) {
  const events: Event[] = [];
  const output: TopicOutput = {
    epochChanged: (epoch) => events.push(['epoch', epoch]),
    deliver: (p) => events.push(['deliver', p.offset, p.epoch]),
    gap: (epoch, offset, reason) => events.push(['gap', offset, epoch, reason]),
  };
  const counters = { refetched: 0, gaps: 0 };
  const sequencer = new TopicSequencer('t', { history: history.read, output, counters, logger: silentLogger, retry: { attempts: 2, delay: 1 } });
  const delivered = (): number[] => events.flatMap((e) => (e[0] === 'deliver' ? [e[1]] : []));
  return { history, events, counters, sequencer, delivered };
}

/** Let pending history fetches and catch-ups run to the end. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await tick();
  await new Promise((resolve) => setTimeout(resolve, 20));
  for (let i = 0; i < 20; i++) await tick();
}

test('topic sequencer: in order, each once; old ones dropped; nothing fetched', async () => {
  const { history, events, counters, sequencer } = setup();
  await sequencer.start();
  assert.deepEqual(history.fetches, [[POSITION_ONLY, undefined]], 'start reads the position only');
  const p1 = history.publish();
  const p2 = history.publish();
  const p3 = history.publish();
  for (const p of [p1, p2, p2, p3, p1]) sequencer.receive(p);
  assert.deepEqual(events, [
    ['deliver', 1, 'e1'],
    ['deliver', 2, 'e1'],
    ['deliver', 3, 'e1'],
  ]);
  assert.equal(sequencer.offset, 3);
  assert.deepEqual(counters, { refetched: 0, gaps: 0 });
  assert.equal(history.fetches.length, 1);
});

test('topic sequencer: what arrives before the position is known waits, then goes on from the position', async () => {
  const history = new FakeHistory();
  const p1 = history.publish();
  const p2 = history.publish();
  const { events, sequencer } = setup(history);
  // p2 was live before the position was read; the position read is 2, so both are history.
  sequencer.receive(p2);
  await sequencer.start();
  const p3 = history.publish();
  sequencer.receive(p3);
  sequencer.receive(p1);
  assert.deepEqual(events, [['deliver', 3, 'e1']]);
});

test('topic sequencer: duplicates at the seam between a catch-up and live delivery are delivered once', async () => {
  const { history, events, counters, sequencer, delivered } = setup();
  await sequencer.start();
  sequencer.receive(history.publish()); // 1, live
  const missed = [history.publish(), history.publish()]; // 2, 3: lost on the way
  let open!: () => void;
  history.gate = new Promise((resolve) => (open = resolve));
  const p4 = history.publish();
  sequencer.receive(p4); // a jump: fetch 2.. from history
  // While history is read, live ones come — 4 again, 5 — and 3, late.
  const p5 = history.publish();
  sequencer.receive(p4);
  sequencer.receive(p5);
  sequencer.receive(missed[1]!);
  history.gate = undefined;
  open();
  await settle();
  assert.deepEqual(delivered(), [1, 2, 3, 4, 5]);
  assert.equal(events.filter((e) => e[0] === 'gap').length, 0);
  assert.deepEqual(history.fetches.slice(1), [[1, 'e1']], 'one fetch, from the last offset delivered');
  assert.equal(counters.refetched, 4, 'the history read gave 2..5; later live copies were dropped');
  sequencer.receive(p5);
  assert.deepEqual(delivered(), [1, 2, 3, 4, 5]);
});

test('topic sequencer: a gap is filled from history, in order, before what came after it', async () => {
  const { history, events, counters, sequencer } = setup();
  await sequencer.start();
  sequencer.receive(history.publish());
  history.publish();
  history.publish();
  sequencer.receive(history.publish()); // 4: 2 and 3 are missing
  assert.deepEqual(events, [['deliver', 1, 'e1']], 'held back until the hole is filled');
  await settle();
  assert.deepEqual(events, [
    ['deliver', 1, 'e1'],
    ['deliver', 2, 'e1'],
    ['deliver', 3, 'e1'],
    ['deliver', 4, 'e1'],
  ]);
  assert.deepEqual(counters, { refetched: 3, gaps: 0 });
});

test('topic sequencer: a gap history cannot fill (trimmed) becomes a gap notice, then delivery goes on', async () => {
  const { history, events, counters, sequencer } = setup();
  await sequencer.start();
  sequencer.receive(history.publish()); // 1
  for (let i = 0; i < 3; i++) history.publish(); // 2, 3, 4
  history.retained = history.retained.filter((p) => p.offset >= 4); // 2 and 3 trimmed away
  const p5 = history.publish();
  sequencer.receive(p5);
  await settle();
  assert.deepEqual(events, [
    ['deliver', 1, 'e1'],
    ['gap', 3, 'e1', 'too old'],
    ['deliver', 4, 'e1'],
    ['deliver', 5, 'e1'],
  ]);
  assert.equal(counters.gaps, 1);
});

test('topic sequencer: history down for good → a gap notice up to what waits, after the retries', async () => {
  const { history, events, counters, sequencer } = setup();
  await sequencer.start();
  sequencer.receive(history.publish()); // 1
  history.publish(); // 2, missed
  history.failures = 3; // the first fetch and both retries fail
  const p3 = history.publish();
  sequencer.receive(p3);
  await settle();
  assert.equal(history.fetches.length, 1 + 3, 'asked three times');
  assert.deepEqual(events, [
    ['deliver', 1, 'e1'],
    ['gap', 2, 'e1', 'too old'],
    ['deliver', 3, 'e1'],
  ]);
  assert.deepEqual(counters, { refetched: 0, gaps: 1 });
});

test('topic sequencer: history that fails then answers fills the gap, no notice', async () => {
  const { history, events, sequencer, delivered } = setup();
  await sequencer.start();
  sequencer.receive(history.publish());
  history.publish();
  history.failures = 2; // the retries are enough
  sequencer.receive(history.publish());
  await settle();
  assert.deepEqual(delivered(), [1, 2, 3]);
  assert.equal(events.filter((e) => e[0] === 'gap').length, 0);
});

test('topic sequencer: a new epoch starting at offset 1 → epoch change, gap notice, then its publications', async () => {
  const { history, events, sequencer } = setup();
  await sequencer.start();
  sequencer.receive(history.publish()); // e1:1
  sequencer.receive(history.publish()); // e1:2
  history.newEpoch('e2');
  sequencer.receive(history.publish()); // e2:1
  sequencer.receive(history.publish()); // e2:2
  assert.deepEqual(events, [
    ['deliver', 1, 'e1'],
    ['deliver', 2, 'e1'],
    ['epoch', 'e2'],
    ['gap', 0, 'e2', 'epoch changed'],
    ['deliver', 1, 'e2'],
    ['deliver', 2, 'e2'],
  ]);
  assert.equal(sequencer.epoch, 'e2');
});

test('topic sequencer: a new epoch seen mid-way → its earlier publications fetched from history', async () => {
  const { history, events, sequencer } = setup();
  await sequencer.start();
  sequencer.receive(history.publish()); // e1:1
  history.newEpoch('e2');
  history.publish(); // e2:1, 2: missed while this node was cut off
  history.publish();
  sequencer.receive(history.publish()); // e2:3
  await settle();
  assert.deepEqual(events, [
    ['deliver', 1, 'e1'],
    ['epoch', 'e2'],
    ['gap', 0, 'e2', 'epoch changed'],
    ['deliver', 1, 'e2'],
    ['deliver', 2, 'e2'],
    ['deliver', 3, 'e2'],
  ]);
});

test('topic sequencer: after a broker reconnect, what was missed meanwhile comes from history', async () => {
  const { history, sequencer, delivered } = setup();
  await sequencer.start();
  sequencer.receive(history.publish());
  history.publish(); // 2, 3: published while this node's broker connection was down
  history.publish();
  sequencer.resync();
  await settle();
  assert.deepEqual(delivered(), [1, 2, 3]);
  assert.deepEqual(history.fetches.at(-1), [1, 'e1']);
});

test('topic sequencer: closed during a catch-up, it delivers nothing more', async () => {
  const { history, sequencer, delivered } = setup();
  await sequencer.start();
  sequencer.receive(history.publish());
  history.publish();
  let open!: () => void;
  history.gate = new Promise((resolve) => (open = resolve));
  sequencer.receive(history.publish());
  sequencer.close();
  history.gate = undefined;
  open();
  await settle();
  assert.deepEqual(delivered(), [1]);
});
