// The broker contract (src/hub/broker.ts), checked with two nodes: every broker runs this suite
// (memory, Redis, NATS), so they all behave like the in-memory reference.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';

import type {
  Broker,
  BrokerNode,
  BrokerState,
  HistoryOptions,
  PresenceEvent,
  PresenceMember,
  Publication,
} from '../../src/hub/broker.js';

/** Two unstarted brokers that share one cluster (same backing store), and a way to tear it down. */
export interface BrokerCluster {
  readonly brokers: [Broker, Broker];
  cleanup(): Promise<void>;
}

/** What a case asks of the cluster's brokers, to be passed on to each broker's constructor. */
export interface BrokerClusterOptions {
  /** The brokers' `idempotencyWindow` (ms); absent: the broker's default. */
  readonly idempotencyWindow?: number;
}

/** Makes a fresh cluster whose brokers were constructed with `options` (on top of the suite's own). */
export type MakeBrokerCluster = (options: BrokerClusterOptions) => Promise<BrokerCluster>;

/** A BrokerNode that records everything it is told, with a way to wait for a condition. */
export class RecordingNode implements BrokerNode {
  readonly publications: Publication[] = [];
  readonly presenceEvents: PresenceEvent[] = [];
  readonly states: BrokerState[] = [];
  reconnects = 0;
  readonly #waiters = new Set<() => void>();

  constructor(readonly id: string) {}

  onPublication(publication: Publication): void {
    this.publications.push(publication);
    this.#notify();
  }

  onPresence(event: PresenceEvent): void {
    this.presenceEvents.push(event);
    this.#notify();
  }

  onReconnect(): void {
    this.reconnects++;
    this.#notify();
  }

  onState(state: BrokerState): void {
    this.states.push(state);
    this.#notify();
  }

  /** Publications received on `topic`. */
  on(topic: string): Publication[] {
    return this.publications.filter((p) => p.topic === topic);
  }

  /** Resolve once `predicate` holds; reject after `timeoutMs` naming `what`. */
  waitFor(what: string, predicate: () => boolean, timeoutMs = 3000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`node ${this.id}: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** A topic name no earlier run used (remote brokers keep state between runs). */
export function uniqueTopic(label: string): string {
  return `test.${label}.${randomBytes(6).toString('hex')}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const KEEP: HistoryOptions = { size: 100, ttl: 60_000 };
const TEST_TIMEOUT = 8000;

/** Two started nodes of a fresh cluster. */
interface Started {
  readonly a: Broker;
  readonly b: Broker;
  readonly nodeA: RecordingNode;
  readonly nodeB: RecordingNode;
}

async function withCluster(
  makeCluster: MakeBrokerCluster,
  body: (cluster: Started) => Promise<void>,
  options: BrokerClusterOptions = {},
): Promise<void> {
  const cluster = await makeCluster(options);
  const [a, b] = cluster.brokers;
  const suffix = randomBytes(4).toString('hex');
  const nodeA = new RecordingNode(`A-${suffix}`);
  const nodeB = new RecordingNode(`B-${suffix}`);
  try {
    await a.start(nodeA);
    await b.start(nodeB);
    await body({ a, b, nodeA, nodeB });
  } finally {
    await cluster.cleanup();
  }
}

function member(connId: string, node: string, userId?: string): PresenceMember {
  // No `userId: undefined` key: remote brokers carry members as JSON, where absent and undefined are one.
  return userId === undefined ? { connId, node, info: { name: `user ${connId}` } } : { connId, node, userId, info: { name: `user ${connId}` } };
}

function offsets(publications: readonly Publication[]): number[] {
  return publications.map((p) => p.offset);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** The idempotency window of the case that waits for it to pass (ms): short, yet well above a publish's round trip. */
const SHORT_WINDOW = 600;

/**
 * Register the contract suite for one broker. `makeCluster` returns two unstarted brokers
 * (two "nodes") sharing one backing store, constructed with the options it is given; the suite
 * starts them and calls `cleanup` after each test.
 */
export function brokerContract(name: string, makeCluster: MakeBrokerCluster): void {
  describe(`broker contract: ${name}`, () => {
    test('publish on A reaches subscribers on A and B in order, offsets 1,2,3… in one epoch', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b, nodeA, nodeB }) => {
        const topic = uniqueTopic('fanout');
        await a.subscribe(topic);
        await a.subscribe(topic); // idempotent: still one delivery each
        await b.subscribe(topic);
        const sent: Publication[] = [];
        for (let i = 1; i <= 10; i++) {
          sent.push(await a.publish(topic, JSON.stringify({ i, text: 'héllo ✓' }), KEEP, i % 2 === 0 ? `conn-${i}` : undefined));
        }
        assert.deepEqual(offsets(sent), range(1, 10));
        const epoch = sent[0]!.epoch;
        assert.ok(epoch.length > 0, 'epoch is a non-empty string');
        for (const node of [nodeA, nodeB]) {
          await node.waitFor('10 publications', () => node.on(topic).length >= 10);
          await sleep(50); // no duplicates arriving late
          const got = node.on(topic);
          assert.deepEqual(offsets(got), range(1, 10), `node ${node.id} offsets`);
          for (const [i, p] of got.entries()) {
            assert.equal(p.epoch, epoch);
            assert.equal(p.topic, topic);
            assert.deepEqual(JSON.parse(p.data), { i: i + 1, text: 'héllo ✓' });
            assert.equal(p.publisher, (i + 1) % 2 === 0 ? `conn-${i + 1}` : undefined);
            assert.equal(typeof p.time, 'number');
          }
        }
      });
    });

    test('a node only receives topics it subscribed to; unsubscribe stops delivery', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b, nodeA, nodeB }) => {
        const topic = uniqueTopic('unsub');
        const other = uniqueTopic('other');
        await a.subscribe(topic);
        await b.subscribe(topic);
        await a.publish(other, '"nobody listens"', KEEP);
        await a.publish(topic, '1', KEEP);
        await nodeB.waitFor('first publication', () => nodeB.on(topic).length === 1);
        await b.unsubscribe(topic);
        await b.unsubscribe(topic); // idempotent
        await a.publish(topic, '2', KEEP);
        await a.publish(topic, '3', KEEP);
        await nodeA.waitFor('three publications on A', () => nodeA.on(topic).length === 3);
        await sleep(150);
        assert.deepEqual(offsets(nodeB.on(topic)), [1], 'B stopped receiving after unsubscribe');
        assert.equal(nodeA.on(other).length + nodeB.on(other).length, 0, 'no node subscribed to the other topic');
        // Subscribing again resumes delivery.
        await b.subscribe(topic);
        await a.publish(topic, '4', KEEP);
        await nodeB.waitFor('publication 4 after resubscribe', () => nodeB.on(topic).length === 2);
        assert.deepEqual(offsets(nodeB.on(topic)), [1, 4]);
      });
    });

    test('history: epoch exists before the first publication; after an offset returns the rest, complete', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b }) => {
        const topic = uniqueTopic('history');
        const empty = await b.history(topic, 0, undefined);
        assert.deepEqual(empty.publications, []);
        assert.equal(empty.offset, 0);
        assert.equal(empty.complete, true);
        assert.ok(empty.epoch.length > 0);
        for (let i = 1; i <= 5; i++) await a.publish(topic, String(i), KEEP, 'pub');
        const all = await b.history(topic, 0, empty.epoch);
        assert.equal(all.epoch, empty.epoch, 'the epoch seen before publishing is the one publications carry');
        assert.equal(all.offset, 5);
        assert.equal(all.complete, true);
        assert.deepEqual(offsets(all.publications), range(1, 5));
        assert.deepEqual(all.publications.map((p) => p.data), ['1', '2', '3', '4', '5']);
        assert.equal(all.publications[0]!.publisher, 'pub');
        assert.equal(all.publications[0]!.topic, topic);
        const rest = await a.history(topic, 3, empty.epoch);
        assert.deepEqual(offsets(rest.publications), [4, 5]);
        assert.equal(rest.complete, true);
        const upToDate = await a.history(topic, 5, empty.epoch);
        assert.deepEqual(upToDate.publications, []);
        assert.equal(upToDate.complete, true);
        const anyEpoch = await a.history(topic, 2, undefined);
        assert.deepEqual(offsets(anyEpoch.publications), [3, 4, 5]);
        assert.equal(anyEpoch.complete, true);
      });
    });

    test('history with a wrong epoch is incomplete', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b }) => {
        const topic = uniqueTopic('epoch');
        const first = await a.publish(topic, '1', KEEP);
        await a.publish(topic, '2', KEEP);
        const slice = await b.history(topic, 1, 'not-the-epoch');
        assert.equal(slice.complete, false);
        assert.equal(slice.epoch, first.epoch);
        assert.equal(slice.offset, 2);
      });
    });

    test('history trimmed by size: offsets that fell out are reported incomplete', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b }) => {
        const topic = uniqueTopic('size');
        const size: HistoryOptions = { size: 3, ttl: 60_000 };
        let epoch = '';
        for (let i = 1; i <= 8; i++) epoch = (await a.publish(topic, String(i), size)).epoch;
        const fromStart = await b.history(topic, 0, epoch);
        assert.equal(fromStart.complete, false, 'offsets 1..5 were trimmed');
        assert.deepEqual(offsets(fromStart.publications), [6, 7, 8]);
        assert.equal(fromStart.offset, 8);
        assert.equal((await b.history(topic, 4, epoch)).complete, false);
        const edge = await b.history(topic, 5, epoch);
        assert.equal(edge.complete, true, 'offset 5 needs 6..8, all retained');
        assert.deepEqual(offsets(edge.publications), [6, 7, 8]);
        // No history kept at all: offsets still advance, nothing retained.
        const none = uniqueTopic('nohistory');
        await a.publish(none, '1', { size: 0, ttl: 0 });
        const p2 = await a.publish(none, '2', { size: 0, ttl: 0 });
        assert.equal(p2.offset, 2);
        const slice = await b.history(none, 1, p2.epoch);
        assert.deepEqual(slice.publications, []);
        assert.equal(slice.complete, false);
        assert.equal((await b.history(none, 2, p2.epoch)).complete, true);
      });
    });

    test('history expires by ttl', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b }) => {
        const topic = uniqueTopic('ttl');
        const ttl: HistoryOptions = { size: 100, ttl: 1000 };
        const p1 = await a.publish(topic, '1', ttl);
        await a.publish(topic, '2', ttl);
        assert.deepEqual(offsets((await b.history(topic, 0, p1.epoch)).publications), [1, 2]);
        await sleep(1300);
        const p3 = await a.publish(topic, '3', ttl);
        assert.equal(p3.offset, 3, 'offsets survive the expiry of publications');
        assert.equal(p3.epoch, p1.epoch);
        const slice = await b.history(topic, 0, p1.epoch);
        assert.deepEqual(offsets(slice.publications), [3], 'publications older than ttl are gone');
        assert.equal(slice.complete, false);
        assert.equal((await b.history(topic, 2, p1.epoch)).complete, true);
      });
    });

    test('presence: a join on A is visible from B; join and leave events reach both nodes', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b, nodeA, nodeB }) => {
        const topic = uniqueTopic('presence');
        await a.subscribe(topic);
        await b.subscribe(topic);
        const m1 = member('c1', nodeA.id, 'alice');
        const m2 = member('c2', nodeB.id);
        await a.join(topic, m1);
        await b.join(topic, m2);
        const sorted = (ms: PresenceMember[]): PresenceMember[] => [...ms].sort((x, y) => x.connId.localeCompare(y.connId));
        assert.deepEqual(sorted(await b.presence(topic)), [m1, m2]);
        assert.deepEqual(sorted(await a.presence(topic)), [m1, m2]);
        for (const node of [nodeA, nodeB]) {
          await node.waitFor('two joins', () => node.presenceEvents.filter((e) => e.kind === 'join').length === 2);
          const joins = node.presenceEvents.filter((e) => e.kind === 'join');
          assert.deepEqual(joins.map((e) => e.member.connId).sort(), ['c1', 'c2']);
          assert.ok(joins.every((e) => e.topic === topic));
          assert.deepEqual(joins.find((e) => e.member.connId === 'c1')!.member, m1);
        }
        await a.leave(topic, m1);
        assert.deepEqual(await b.presence(topic), [m2]);
        for (const node of [nodeA, nodeB]) {
          await node.waitFor('a leave of c1', () => node.presenceEvents.some((e) => e.kind === 'leave' && e.member.connId === 'c1'));
        }
        assert.deepEqual(await a.presence(uniqueTopic('empty')), []);
      });
    });

    test('close() of node A removes its presence; B sees the leaves', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b, nodeA, nodeB }) => {
        const topic = uniqueTopic('close');
        await b.subscribe(topic);
        await a.subscribe(topic);
        await a.join(topic, member('a1', nodeA.id, 'alice'));
        await a.join(topic, member('a2', nodeA.id, 'bob'));
        await b.join(topic, member('b1', nodeB.id, 'carol'));
        assert.equal((await b.presence(topic)).length, 3);
        await a.close();
        await a.close(); // idempotent
        await nodeB.waitFor('leaves of a1 and a2', () => {
          const left = nodeB.presenceEvents.filter((e) => e.kind === 'leave').map((e) => e.member.connId);
          return left.includes('a1') && left.includes('a2');
        });
        assert.deepEqual((await b.presence(topic)).map((m) => m.connId), ['b1']);
        await assert.rejects(a.publish(topic, '"after close"', KEEP), 'publish after close rejects');
      });
    });

    test('publish resolves only after acceptance: history on B already has it', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b }) => {
        const topic = uniqueTopic('accept');
        for (let i = 1; i <= 5; i++) {
          const p = await a.publish(topic, String(i), KEEP);
          const slice = await b.history(topic, i - 1, p.epoch);
          assert.deepEqual(offsets(slice.publications), [i]);
          assert.equal(slice.offset, i);
        }
      });
    });

    test('concurrent publishes from A and B: distinct consecutive offsets, every node sees offset order', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b, nodeA, nodeB }) => {
        const topic = uniqueTopic('concurrent');
        await a.subscribe(topic);
        await b.subscribe(topic);
        const n = 40;
        const results = await Promise.all(
          range(1, n).flatMap((i) => [a.publish(topic, `"a${i}"`, KEEP), b.publish(topic, `"b${i}"`, KEEP)]),
        );
        const assigned = offsets(results).sort((x, y) => x - y);
        assert.deepEqual(assigned, range(1, 2 * n), 'no duplicates, no holes');
        assert.equal(new Set(results.map((p) => p.epoch)).size, 1, 'one epoch');
        for (const node of [nodeA, nodeB]) {
          await node.waitFor(`${2 * n} publications`, () => node.on(topic).length >= 2 * n);
          assert.deepEqual(offsets(node.on(topic)), range(1, 2 * n), `node ${node.id} sees offset order`);
        }
        const byOffset = new Map(results.map((p) => [p.offset, p.data]));
        for (const p of nodeB.on(topic)) assert.equal(p.data, byOffset.get(p.offset), 'data travels with its offset');
        const slice = await a.history(topic, 0, results[0]!.epoch);
        assert.deepEqual(offsets(slice.publications), range(1, 2 * n));
        assert.equal(slice.complete, true);
      });
    });

    test('idempotency key: a retry is not stored or delivered again and resolves with the first publication', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b, nodeA, nodeB }) => {
        const topic = uniqueTopic('idem');
        await a.subscribe(topic);
        await b.subscribe(topic);
        const first = await a.publish(topic, '{"n":1}', KEEP, 'conn-1', 'key-1');
        // A retry carries the same request; other data and publisher show which one is answered.
        const retry = await a.publish(topic, '{"n":"retry"}', KEEP, 'conn-2', 'key-1');
        assert.deepEqual(retry, first, 'the retry resolves with the first publication, data and time included');
        const next = await a.publish(topic, '{"n":2}', KEEP);
        assert.equal(next.offset, first.offset + 1, 'the retry took no offset');
        assert.equal(next.epoch, first.epoch);
        for (const node of [nodeA, nodeB]) {
          await node.waitFor('two publications', () => node.on(topic).length >= 2);
          await sleep(100); // a duplicate delivery would arrive by now
          assert.deepEqual(node.on(topic).map((p) => p.data), ['{"n":1}', '{"n":2}'], `node ${node.id} got the keyed publication once`);
        }
        const slice = await b.history(topic, 0, first.epoch);
        assert.deepEqual(offsets(slice.publications), [1, 2]);
        assert.deepEqual(slice.publications[0], first, 'history holds the first publication once');
      });
    });

    test('idempotency key: a retry through the other node is deduplicated too', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b, nodeA, nodeB }) => {
        const topic = uniqueTopic('idem-node');
        await a.subscribe(topic);
        await b.subscribe(topic);
        const first = await a.publish(topic, '"once"', KEEP, undefined, 'post-7');
        const retry = await b.publish(topic, '"twice"', KEEP, undefined, 'post-7');
        assert.deepEqual(retry, first);
        const retryAgain = await a.publish(topic, '"thrice"', KEEP, undefined, 'post-7');
        assert.deepEqual(retryAgain, first);
        await b.publish(topic, '"marker"', KEEP);
        for (const node of [nodeA, nodeB]) {
          await node.waitFor('the marker', () => node.on(topic).some((p) => p.data === '"marker"'));
          assert.deepEqual(node.on(topic).map((p) => p.data), ['"once"', '"marker"'], `node ${node.id}`);
        }
        assert.deepEqual((await a.history(topic, 0, first.epoch)).publications.map((p) => p.data), ['"once"', '"marker"']);
      });
    });

    test('idempotency key: the same key on another topic is another publication', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b, nodeB }) => {
        const one = uniqueTopic('idem-one');
        const two = uniqueTopic('idem-two');
        await b.subscribe(one);
        await b.subscribe(two);
        await a.publish(one, '"filler"', KEEP);
        const onOne = await a.publish(one, '"on one"', KEEP, undefined, 'shared-key');
        const onTwo = await b.publish(two, '"on two"', KEEP, undefined, 'shared-key');
        assert.equal(onOne.offset, 2);
        assert.equal(onTwo.topic, two);
        assert.equal(onTwo.offset, 1, 'a first publication on the other topic');
        assert.equal(onTwo.data, '"on two"');
        assert.deepEqual(await a.publish(two, '"again"', KEEP, undefined, 'shared-key'), onTwo, 'each topic dedupes its own');
        assert.deepEqual(await b.publish(one, '"again"', KEEP, undefined, 'shared-key'), onOne);
        await nodeB.waitFor('both topics', () => nodeB.on(one).length >= 2 && nodeB.on(two).length >= 1);
        await sleep(100);
        assert.deepEqual(nodeB.on(one).map((p) => p.data), ['"filler"', '"on one"']);
        assert.deepEqual(nodeB.on(two).map((p) => p.data), ['"on two"']);
      });
    });

    test('idempotency key: once the window has passed, the key publishes again', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(
        makeCluster,
        async ({ a, b, nodeB }) => {
          const topic = uniqueTopic('idem-window');
          await b.subscribe(topic);
          const first = await a.publish(topic, '"first"', KEEP, undefined, 'k');
          assert.deepEqual(await b.publish(topic, '"retry"', KEEP, undefined, 'k'), first, 'within the window: deduplicated');
          await sleep(SHORT_WINDOW + 400);
          const later = await b.publish(topic, '"later"', KEEP, undefined, 'k');
          assert.equal(
            later.offset,
            first.offset + 1,
            `a publish after the ${SHORT_WINDOW} ms window is a new publication (does the suite's makeCluster pass idempotencyWindow to its brokers?)`,
          );
          assert.equal(later.data, '"later"');
          // The new publication starts a window of its own.
          assert.deepEqual(await a.publish(topic, '"retry of later"', KEEP, undefined, 'k'), later);
          await nodeB.waitFor('two publications', () => nodeB.on(topic).length >= 2);
          await sleep(100);
          assert.deepEqual(nodeB.on(topic).map((p) => p.data), ['"first"', '"later"']);
        },
        { idempotencyWindow: SHORT_WINDOW },
      );
    });

    test('without an idempotency key, equal publishes are each published', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b, nodeB }) => {
        const topic = uniqueTopic('idem-none');
        await b.subscribe(topic);
        const results = [
          await a.publish(topic, '"same"', KEEP, 'conn'),
          await a.publish(topic, '"same"', KEEP, 'conn'),
          await b.publish(topic, '"same"', KEEP, 'conn'),
          // A key on one publish does not touch the unkeyed ones around it.
          await a.publish(topic, '"same"', KEEP, 'conn', 'lone-key'),
          await b.publish(topic, '"same"', KEEP, 'conn'),
        ];
        assert.deepEqual(offsets(results), range(1, 5));
        await nodeB.waitFor('five publications', () => nodeB.on(topic).length >= 5);
        assert.deepEqual(offsets(nodeB.on(topic)), range(1, 5));
      });
    });

    test('idempotency key: concurrent publishes with one key from both nodes make one publication', { timeout: TEST_TIMEOUT }, async () => {
      await withCluster(makeCluster, async ({ a, b, nodeA, nodeB }) => {
        const topic = uniqueTopic('idem-race');
        await a.subscribe(topic);
        await b.subscribe(topic);
        const results = await Promise.all([
          a.publish(topic, '"a1"', KEEP, undefined, 'race'),
          b.publish(topic, '"b1"', KEEP, undefined, 'race'),
          a.publish(topic, '"a2"', KEEP, undefined, 'race'),
          b.publish(topic, '"b2"', KEEP, undefined, 'race'),
          a.publish(topic, '"a3"', KEEP, undefined, 'race'),
        ]);
        const winner = results[0]!;
        assert.equal(winner.offset, 1);
        for (const result of results) assert.deepEqual(result, winner, 'every publish resolves with the one publication');
        await a.publish(topic, '"marker"', KEEP);
        for (const node of [nodeA, nodeB]) {
          await node.waitFor('the marker', () => node.on(topic).some((p) => p.data === '"marker"'));
          assert.deepEqual(node.on(topic).map((p) => p.data), [winner.data, '"marker"'], `node ${node.id} got one of the five`);
        }
        const slice = await b.history(topic, 0, winner.epoch);
        assert.deepEqual(offsets(slice.publications), [1, 2]);
      });
    });

    test('a publication may be made from inside a delivery, and order is kept', { timeout: TEST_TIMEOUT }, async () => {
      const cluster = await makeCluster({});
      const [a, b] = cluster.brokers;
      const topic = uniqueTopic('reentrant');
      const nodeB = new RecordingNode('B-reentrant');
      const published: Promise<Publication>[] = [];
      const nodeA: BrokerNode = {
        id: 'A-reentrant',
        onPublication(p) {
          // The hub may publish from inside a delivery (e.g. an echo bot).
          if (p.data === '"ping"') published.push(a.publish(topic, '"pong"', KEEP));
        },
        onPresence() {},
        onReconnect() {},
      };
      try {
        await a.start(nodeA);
        await b.start(nodeB);
        await a.subscribe(topic);
        await b.subscribe(topic);
        await b.publish(topic, '"ping"', KEEP);
        await b.publish(topic, '"after"', KEEP);
        await nodeB.waitFor('three publications', () => nodeB.on(topic).length >= 3);
        await Promise.all(published);
        assert.deepEqual(offsets(nodeB.on(topic)), [1, 2, 3]);
        assert.deepEqual(nodeB.on(topic).map((p) => p.data).sort(), ['"after"', '"ping"', '"pong"']);
      } finally {
        await cluster.cleanup();
      }
    });
  });
}

/**
 * Whether a TCP service answers at host:port. A broker test calls it first: in CI
 * (`CI=true`) a missing service is a failure, elsewhere the tests are skipped with the reason.
 */
export async function serviceCheck(service: string, host: string, port: number, howToStart: string): Promise<string | undefined> {
  const { connect } = await import('node:net');
  const up = await new Promise<boolean>((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
  if (up) return undefined;
  const reason = `${service} is not reachable at ${host}:${port}; ${howToStart}`;
  if (process.env.CI === 'true') throw new Error(`CI: ${reason}`);
  return reason;
}
