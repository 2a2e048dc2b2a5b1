// Idempotent publish, per broker, beyond the contract cases (test/hub/broker-contract.ts): the
// window option is checked, the memory broker forgets expired keys, Redis keeps a key's record
// under the topic's hash tag for the window, and NATS answers a retry whose first message is no
// longer in the stream, and gives its stream and bucket the configured window.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { createClient } from 'redis';

import type { HistoryOptions, Publication } from '../../src/hub/broker.js';
import { MemoryBroker } from '../../src/hub/brokers/memory.js';
import { NatsBroker, type NatsBrokerOptions } from '../../src/hub/brokers/nats.js';
import { idempotencyId, token } from '../../src/hub/brokers/nats-format.js';
import { RedisBroker } from '../../src/hub/brokers/redis.js';
import { BROKER_DEFAULTS } from '../../src/hub/brokers/shared.js';
import { RecordingNode, serviceCheck, sleep, uniqueTopic } from './broker-contract.js';

const KEEP: HistoryOptions = { size: 100, ttl: 60_000 };
const NO_HISTORY: HistoryOptions = { size: 0, ttl: 0 };

describe('idempotency window option', () => {
  test('every broker refuses a window that is not a positive number of ms', () => {
    for (const idempotencyWindow of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => new MemoryBroker({ idempotencyWindow }), RangeError, `memory, ${idempotencyWindow}`);
      assert.throws(() => new RedisBroker({ idempotencyWindow }), RangeError, `redis, ${idempotencyWindow}`);
      assert.throws(() => new NatsBroker({ idempotencyWindow }), RangeError, `nats, ${idempotencyWindow}`);
    }
    assert.doesNotThrow(() => new MemoryBroker({ idempotencyWindow: 1 }));
    assert.equal(BROKER_DEFAULTS.idempotencyWindow, 120_000);
  });
});

describe('memory broker idempotency', () => {
  test('expired keys are swept, so memory stays bounded by one window of keys', { timeout: 5000 }, async () => {
    const a = new MemoryBroker({ idempotencyWindow: 50 });
    const b = a.forNode();
    await a.start(new RecordingNode('A'));
    await b.start(new RecordingNode('B'));
    try {
      for (let i = 0; i < 100; i++) await a.publish(`t${i % 3}`, String(i), KEEP, undefined, `key-${i}`);
      assert.equal(a.idempotencyKeys, 100);
      assert.equal(b.idempotencyKeys, 100, 'nodes derived with forNode share the keys');
      await sleep(80);
      const fresh = await b.publish('t0', '"fresh"', KEEP, undefined, 'key-0');
      assert.equal(fresh.data, '"fresh"', 'the expired key published again');
      assert.equal(a.idempotencyKeys, 1, 'the 100 expired keys are gone, the new one is kept');
    } finally {
      await a.close();
      await b.close();
    }
  });
});

const redisSkip = await serviceCheck('Redis', '127.0.0.1', 6379, '.ci/run starts it (redis-server --daemonize yes --port 6379) when installed');

describe('redis broker idempotency', { skip: redisSkip }, () => {
  test("a key's record lives under the topic's hash tag for the window", { timeout: 5000 }, async () => {
    const prefix = 'duplex-test:';
    const window = 30_000;
    const broker = new RedisBroker({ url: 'redis://127.0.0.1:6379', prefix, metaTtl: 60_000, idempotencyWindow: window });
    const admin = createClient({ url: 'redis://127.0.0.1:6379' });
    await admin.connect();
    const topic = uniqueTopic('idem-layout');
    try {
      await broker.start(new RecordingNode('layout'));
      const first = await broker.publish(topic, '[1,\n2]', KEEP, 'conn\n1', 'key with spaces {and braces}');
      // One slot for every key of the publish (Redis Cluster): the {topic} hash tag comes first.
      const record = `${prefix}{${topic}}:idem:key with spaces {and braces}`;
      const ttl = await admin.pTTL(record);
      assert.ok(ttl > 0 && ttl <= window, `PTTL ${ttl} is within the ${window} ms window`);
      assert.deepEqual(await broker.publish(topic, '"other"', KEEP, undefined, 'key with spaces {and braces}'), first, 'newlines in data and publisher survive the record');
      assert.equal((await admin.keys(`${prefix}{${topic}}:idem:*`)).length, 1);
    } finally {
      await broker.close();
      const left = await admin.keys(`${prefix}{${topic}}:*`);
      if (left.length > 0) await admin.del(left);
      await admin.close();
    }
  });
});

const natsSkip = await serviceCheck('NATS', '127.0.0.1', 4222, '.ci/run starts it (nats-server -js -p 4222) when installed');

// A prefix of this file's own: its tests change the stream's and bucket's windows, which the
// contract suite (prefix duplextest) running in parallel must not see.
const NATS_PREFIX = 'duplextest-idem';
const HIST = 'DUPLEXTEST-IDEM_HIST';
const IDEM_BUCKET = `KV_${NATS_PREFIX}-idem`;
const NATS_OPTIONS: NatsBrokerOptions = { prefix: NATS_PREFIX, presenceRefresh: 200, presenceTtl: 1000, metaTtl: 60_000, timeout: 1000 };

async function withNats(body: (nc: NatsConnection, jsm: JetStreamManager) => Promise<void>): Promise<void> {
  const nc = await connect({ servers: '127.0.0.1:4222' });
  try {
    await body(nc, await nc.jetstreamManager());
  } finally {
    await nc.close();
  }
}

/** Wait until the stream no longer holds the first publication's message (the subject's purge ran). */
async function untilPurged(jsm: JetStreamManager, seqBefore: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const gone = await jsm.streams.getMessage(HIST, { seq: seqBefore }).then(
      () => false,
      () => true,
    );
    if (gone) return;
    await sleep(20);
  }
  assert.fail(`message ${seqBefore} was never purged`);
}

describe('nats broker idempotency', { skip: natsSkip }, () => {
  test('the stream dedupes over the window (at most the max age) and the bucket keeps records for it, updated on start', { timeout: 8000 }, async () => {
    await withNats(async (_nc, jsm) => {
      const first = new NatsBroker({ ...NATS_OPTIONS, idempotencyWindow: 5000 });
      await first.start(new RecordingNode('window-1'));
      await first.close();
      assert.equal((await jsm.streams.info(HIST)).config.duplicate_window, 5000 * 1e6);
      assert.equal((await jsm.streams.info(IDEM_BUCKET)).config.max_age, 5000 * 1e6);
      // An existing stream and bucket take the window of the node that starts on them.
      const second = new NatsBroker({ ...NATS_OPTIONS, idempotencyWindow: 120_000 });
      await second.start(new RecordingNode('window-2'));
      await second.close();
      assert.equal((await jsm.streams.info(HIST)).config.duplicate_window, 60_000 * 1e6, 'capped at the max age (metaTtl)');
      assert.equal((await jsm.streams.info(IDEM_BUCKET)).config.max_age, 120_000 * 1e6);
    });
  });

  test("a retry after the first message was purged is answered from the bucket's record", { timeout: 8000 }, async () => {
    await withNats(async (_nc, jsm) => {
      const a = new NatsBroker(NATS_OPTIONS);
      const b = new NatsBroker(NATS_OPTIONS);
      const nodeB = new RecordingNode('purged-B');
      await a.start(new RecordingNode('purged-A'));
      await b.start(nodeB);
      try {
        const topic = uniqueTopic('idem-purged');
        await b.subscribe(topic);
        const first = await a.publish(topic, '"first"', NO_HISTORY, 'conn-1', 'k');
        const seq = (await jsm.streams.getMessage(HIST, { last_by_subj: `${NATS_PREFIX}.hist.${token(topic)}` })).seq;
        // With no history kept, each publication purges the topic's subject down to its newest message.
        await a.publish(topic, '"second"', NO_HISTORY);
        await a.publish(topic, '"third"', NO_HISTORY);
        await untilPurged(jsm, seq);
        assert.deepEqual(await b.publish(topic, '"retry"', NO_HISTORY, undefined, 'k'), first);
        const next = await b.publish(topic, '"fourth"', NO_HISTORY);
        assert.equal(next.offset, 4, 'the retry took no offset');
        await nodeB.waitFor('four publications', () => nodeB.on(topic).length >= 4);
        assert.deepEqual(nodeB.on(topic).map((p) => p.data), ['"first"', '"second"', '"third"', '"fourth"']);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  });

  test('without the record, the stream dedupe still holds: the stored message answers, or the retry rejects', { timeout: 8000 }, async () => {
    await withNats(async (nc, jsm) => {
      const a = new NatsBroker(NATS_OPTIONS);
      const b = new NatsBroker(NATS_OPTIONS);
      await a.start(new RecordingNode('norecord-A'));
      await b.start(new RecordingNode('norecord-B'));
      const kv = await nc.jetstream().views.kv(`${NATS_PREFIX}-idem`);
      try {
        // The record not written yet (its publisher is between the ack and the write): the
        // duplicate acknowledgement's sequence leads to the message itself.
        const kept = uniqueTopic('idem-kept');
        const first: Publication = await a.publish(kept, '"first"', KEEP, 'conn-1', 'k');
        await kv.purge(idempotencyId(kept, 'k'));
        assert.deepEqual(await b.publish(kept, '"retry"', KEEP, undefined, 'k'), first);
        assert.equal((await b.history(kept, 0, first.epoch)).offset, 1, 'nothing was stored again');
        // Neither the record nor the message: JetStream still refuses the duplicate, and the
        // broker says it cannot give the first publication back rather than publish it twice.
        const gone = uniqueTopic('idem-gone');
        const lost = await a.publish(gone, '"first"', NO_HISTORY, undefined, 'k');
        const seq = (await jsm.streams.getMessage(HIST, { last_by_subj: `${NATS_PREFIX}.hist.${token(gone)}` })).seq;
        await a.publish(gone, '"second"', NO_HISTORY);
        await a.publish(gone, '"third"', NO_HISTORY);
        await untilPurged(jsm, seq);
        await kv.purge(idempotencyId(gone, 'k'));
        await assert.rejects(b.publish(gone, '"retry"', NO_HISTORY, undefined, 'k'), { name: 'NatsBrokerError', message: /idempotency key exists/ });
        const after = await b.publish(gone, '"fourth"', NO_HISTORY);
        assert.equal(after.offset, lost.offset + 3, 'the refused retry took no offset');
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });
  });

  // Remove this file's stream and buckets (the next run creates them again).
  after(async () => {
    if (natsSkip !== undefined) return;
    await withNats(async (_nc, jsm) => {
      for (const stream of [HIST, `KV_${NATS_PREFIX}-epochs`, `KV_${NATS_PREFIX}-presence`, `KV_${NATS_PREFIX}-nodes`, IDEM_BUCKET]) {
        await jsm.streams.delete(stream).catch(() => false);
      }
    });
  });
});
