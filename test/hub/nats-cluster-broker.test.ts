// The NATS broker on a NATS cluster of our own (three nats-servers routed together, JetStream
// replicas 3, see nats-cluster-helpers.ts): the broker contract with its two nodes connected to
// different servers; the stream and buckets placed on three servers (created so, or brought to
// it); clear errors where the servers cannot hold the replicas asked for; and a broker whose
// server (also the history stream's leader) is killed: it reconnects to another server and tells
// its hub to catch up only once history can be read again, and nothing it acknowledged is lost.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { connect } from 'nats';

import type { HistoryOptions, Publication } from '../../src/hub/broker.js';
import { NatsBroker, type NatsBrokerOptions } from '../../src/hub/brokers/nats.js';
import { brokerContract, RecordingNode, sleep, uniqueTopic } from './broker-contract.js';
import { freePort, killAll, startNatsServer } from './cluster-helpers.js';
import { natsServerBinary, startNatsCluster, type NatsCluster } from './nats-cluster-helpers.js';

const binary = natsServerBinary();
const skip = 'skip' in binary ? binary.skip : undefined;

const KEEP: HistoryOptions = { size: 1000, ttl: 60_000 };
/** Short liveness bounds and max age, as brokers-nats.test.ts has them. */
const BASE: NatsBrokerOptions = { presenceRefresh: 200, presenceTtl: 1000, metaTtl: 60_000, timeout: 3000 };

/** A prefix of its own per broker pair: the stream and the buckets are created (with replicas 3) by each. */
function prefix(label: string): string {
  return `dxcl${label}${randomBytes(3).toString('hex')}`;
}

/** The longest time between two consecutive moments (ms): how long publishing stopped. */
function longestPause(times: readonly number[]): number {
  let longest = 0;
  for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!);
  return longest;
}

/** The stream and KV bucket names a broker with `prefix` uses (as nats.ts names them). */
function streamsOf(p: string): string[] {
  return [`${p.toUpperCase()}_HIST`, ...['epochs', 'presence', 'nodes', 'idem'].map((b) => `KV_${p}-${b}`)];
}

describe('nats broker on a 3-server NATS cluster, replicas 3', { skip, timeout: 60_000 }, () => {
  let cluster!: NatsCluster;

  before(async () => {
    cluster = await startNatsCluster((binary as { path: string }).path, 3, 'broker');
  });

  after(async () => {
    await cluster?.stop();
    await killAll();
  });

  // The contract, node A on server n0 and node B on server n1: every delivery, history read and
  // presence change crosses a route. One prefix for the suite (the stream is placed once).
  const contractPrefix = prefix('contract');
  brokerContract('nats cluster (replicas 3, nodes on different servers)', async (options) => {
    const a = new NatsBroker({ ...BASE, ...options, prefix: contractPrefix, replicas: 3, servers: cluster.servers[0]!.url });
    const b = new NatsBroker({ ...BASE, ...options, prefix: contractPrefix, replicas: 3, servers: cluster.servers[1]!.url });
    return {
      brokers: [a, b],
      async cleanup() {
        await Promise.all([a.close(), b.close()]);
      },
    };
  });

  test('the history stream and every KV bucket have three replicas, on three servers', async () => {
    const p = prefix('placed');
    // A comma-separated list, as `duplex serve` passes a URL list on.
    const broker = new NatsBroker({ ...BASE, prefix: p, replicas: 3, servers: cluster.urls });
    await broker.start(new RecordingNode('placed'));
    const nc = await connect({ servers: cluster.servers.map((s) => s.url) });
    try {
      const jsm = await nc.jetstreamManager();
      for (const stream of streamsOf(p)) {
        const info = await jsm.streams.info(stream);
        assert.equal(info.config.num_replicas, 3, `${stream}: num_replicas`);
        const servers = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)].sort();
        assert.deepEqual(servers, ['n0', 'n1', 'n2'], `${stream}: a copy on each server`);
      }
      // The history stream's ids are the slots', remembered 20 s (not the 2-minute key window).
      assert.equal((await jsm.streams.info(`${p.toUpperCase()}_HIST`)).config.duplicate_window, 20_000 * 1e6);
    } finally {
      await broker.close();
      await nc.close();
    }
  });

  test('a stream and buckets made with replicas 1 are brought to 3 by a broker started with replicas 3, history kept', async () => {
    const p = prefix('scaled');
    const topic = uniqueTopic('scaled');
    const one = new NatsBroker({ ...BASE, prefix: p, servers: cluster.servers[2]!.url });
    await one.start(new RecordingNode('one'));
    const first = await one.publish(topic, '"before"', KEEP);
    await one.close();
    const nc = await connect({ servers: cluster.servers.map((s) => s.url) });
    try {
      const jsm = await nc.jetstreamManager();
      for (const stream of streamsOf(p)) assert.equal((await jsm.streams.info(stream)).config.num_replicas, 1, `${stream} starts with 1`);
      const three = new NatsBroker({ ...BASE, prefix: p, replicas: 3, servers: cluster.servers[0]!.url });
      await three.start(new RecordingNode('three'));
      try {
        for (const stream of streamsOf(p)) assert.equal((await jsm.streams.info(stream)).config.num_replicas, 3, `${stream} scaled to 3`);
        const next = await three.publish(topic, '"after"', KEEP);
        assert.equal(next.epoch, first.epoch, 'same epoch: the history moved with the stream');
        assert.equal(next.offset, 2);
        const slice = await three.history(topic, 0, first.epoch);
        assert.deepEqual(slice.publications.map((x) => x.data), ['"before"', '"after"']);
        assert.equal(slice.complete, true);
      } finally {
        await three.close();
      }
    } finally {
      await nc.close();
    }
  });

  test('replicas 5 on a 3-server cluster: start() rejects, naming the servers missing', async () => {
    const broker = new NatsBroker({ ...BASE, prefix: prefix('five'), replicas: 5, servers: cluster.servers[0]!.url });
    await assert.rejects(broker.start(new RecordingNode('five')), {
      name: 'NatsBrokerError',
      message: /needs replicas 5, but fewer than 5 JetStream servers of the cluster are up/,
    });
    await broker.close();
  });

  test('three nodes on three servers publish to one topic at once: one publication per offset, keyed or not', async () => {
    // JetStream checks the per-subject lock before the RAFT proposal, against what is stored:
    // without a slot id per message, concurrent publishes from several servers share offsets.
    const p = prefix('race');
    const brokers = cluster.servers.map((s) => new NatsBroker({ ...BASE, prefix: p, replicas: 3, servers: s.url }));
    const nodes = brokers.map((_, i) => new RecordingNode(`race-${i}`));
    for (const [i, broker] of brokers.entries()) await broker.start(nodes[i]!);
    try {
      const topic = uniqueTopic('race');
      await brokers[0]!.subscribe(topic);
      const N = 60;
      const results = await Promise.all(
        brokers.flatMap((broker, i) =>
          Array.from({ length: N }, (_, n) =>
            // Every fourth one keyed (a key of its own, and one key shared by all three nodes).
            n % 4 === 0 ? broker.publish(topic, `"${i}:${n}"`, KEEP, undefined, n === 0 ? 'shared' : `k-${i}-${n}`) : broker.publish(topic, `"${i}:${n}"`, KEEP),
          ),
        ),
      );
      const shared = results.filter((_, k) => k % N === 0);
      assert.equal(new Set(shared.map((x) => x.offset)).size, 1, 'the shared key made one publication, answered to all three');
      const distinct = [...new Map(results.map((x) => [x.offset, x])).values()];
      assert.equal(distinct.length, 3 * N - 2, 'every other publish has an offset of its own');
      assert.deepEqual(distinct.map((x) => x.offset).sort((x, y) => x - y), Array.from({ length: 3 * N - 2 }, (_, k) => k + 1), 'offsets 1…n, no hole');
      const slice = await brokers[1]!.history(topic, 0, results[0]!.epoch);
      assert.equal(slice.complete, true);
      assert.deepEqual(slice.publications.map((x) => x.offset), Array.from({ length: 3 * N - 2 }, (_, k) => k + 1));
      for (const x of distinct) assert.equal(slice.publications[x.offset - 1]!.data, x.data, `offset ${x.offset} holds the publication acknowledged with it`);
      await nodes[0]!.waitFor('every publication delivered', () => nodes[0]!.on(topic).length >= 3 * N - 2, 5000);
      assert.deepEqual(nodes[0]!.on(topic).map((x) => x.data), slice.publications.map((x) => x.data), 'delivered in offset order, each once');
    } finally {
      await Promise.all(brokers.map((b) => b.close()));
    }
  });

  test('replicas must be a whole number from 1 to 5', () => {
    for (const replicas of [0, 6, 1.5, Number.NaN]) {
      assert.throws(() => new NatsBroker({ replicas }), { name: 'RangeError', message: /replicas must be a whole number from 1 to 5/ });
    }
  });

  test('a majority of the servers down for longer than presenceTtl: no live member is declared gone afterwards', async () => {
    const p = prefix('quorum');
    const topic = uniqueTopic('quorum');
    // A refresh of half the ttl (the defaults' proportion is 3 s of 10 s): after the outage, a
    // node's first heartbeat can come a whole refresh after another node's first sweep.
    const liveness = { presenceRefresh: 1000, presenceTtl: 2000 };
    const a = new NatsBroker({ ...BASE, ...liveness, prefix: p, replicas: 3, servers: cluster.servers[0]!.url });
    const b = new NatsBroker({ ...BASE, ...liveness, prefix: p, replicas: 3, servers: cluster.servers[1]!.url });
    const nodeA = new RecordingNode('quorum-A');
    const nodeB = new RecordingNode('quorum-B');
    await a.start(nodeA);
    await b.start(nodeB);
    try {
      await a.subscribe(topic);
      await b.subscribe(topic);
      await a.join(topic, { connId: 'a1', node: nodeA.id });
      await b.join(topic, { connId: 'b1', node: nodeB.id });
      // No quorum: no bucket can be written, every heartbeat ages past the ttl.
      await Promise.all([cluster.kill(1), cluster.kill(2)]);
      await sleep(2 * liveness.presenceTtl);
      await Promise.all([cluster.restart(1), cluster.restart(2)]);
      await cluster.ready(3);
      const back = performance.now();
      for (;;) {
        const ok = await a.publish(topic, '"back"', KEEP).then(() => true, () => false);
        if (ok) break;
        assert.ok(performance.now() - back < 20_000, 'publishing works again within 20 s');
        await sleep(100);
      }
      // Long enough for each node to have swept a few times since the buckets came back.
      await sleep(liveness.presenceTtl + liveness.presenceRefresh);
      const leaves = [...nodeA.presenceEvents, ...nodeB.presenceEvents].filter((e) => e.kind === 'leave').map((e) => e.member.connId);
      assert.deepEqual(leaves, [], 'no leave announced for a live member');
      for (const broker of [a, b]) assert.deepEqual((await broker.presence(topic)).map((m) => m.connId).sort(), ['a1', 'b1']);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('server of a node (and leader of the history stream) killed: it reconnects to another, catches up once history answers, nothing acknowledged lost', async () => {
    const p = prefix('failover');
    const topic = uniqueTopic('failover');
    const stream = `${p.toUpperCase()}_HIST`;
    const setup = new NatsBroker({ ...BASE, prefix: p, replicas: 3, servers: cluster.servers[1]!.url });
    await setup.start(new RecordingNode('setup'));
    await setup.close();
    // The hardest case: the server the publishing node is connected to leads the stream.
    const leader = await cluster.leaderOf(stream);
    const victim = cluster.servers.findIndex((s) => s.name === leader);
    const other = (victim + 1) % cluster.servers.length;
    // Node A knows only the victim: it reconnects to a server the cluster told it about.
    const a = new NatsBroker({ ...BASE, prefix: p, replicas: 3, servers: cluster.servers[victim]!.url });
    const b = new NatsBroker({ ...BASE, prefix: p, replicas: 3, servers: cluster.servers[other]!.url });
    // What each catch-up read at onReconnect came to: 'ok', or its error.
    const historyOnReconnect: Array<Promise<unknown>> = [];
    const nodeA = new RecordingNode('A');
    const onReconnect = nodeA.onReconnect.bind(nodeA);
    nodeA.onReconnect = () => {
      onReconnect();
      // What the hub does at once: read each topic's history. It must not fail now.
      historyOnReconnect.push(a.history(topic, 0, undefined).then(() => 'ok', (error: unknown) => error));
    };
    const nodeB = new RecordingNode('B');
    await a.start(nodeA);
    await b.start(nodeB);
    try {
      await a.subscribe(topic);
      await b.subscribe(topic);
      const acked: Publication[] = [];
      const failed: Error[] = [];
      let publishing = true;
      let killedAt = 0;
      const ackTimes: number[] = [];
      const publisher = (async () => {
        for (let n = 0; publishing; n++) {
          try {
            acked.push(await a.publish(topic, JSON.stringify(n), KEEP));
            ackTimes.push(performance.now());
          } catch (error) {
            failed.push(error as Error);
            await sleep(20);
          }
          await sleep(2);
        }
      })();
      await nodeB.waitFor('100 publications before the kill', () => nodeB.on(topic).length >= 100, 10_000);
      killedAt = performance.now();
      await cluster.kill(victim);
      await nodeA.waitFor('the reconnect', () => nodeA.reconnects >= 1, 20_000);
      const reconnectAfter = performance.now() - killedAt;
      const resumedCount = acked.length;
      await nodeB.waitFor('100 more', () => acked.length >= resumedCount + 100, 20_000);
      publishing = false;
      await publisher;
      // The catch-up read ran after the stream had a leader again.
      const reads = await Promise.all(historyOnReconnect);
      assert.ok(reads.length >= 1 && reads.every((r) => r === 'ok'), `history read at onReconnect succeeded: ${String(reads.find((r) => r !== 'ok'))}`);
      assert.deepEqual(nodeA.states.slice(-2), ['disconnected', 'connected']);
      // Every acknowledged publication is in history, once, with offsets 1…n in one epoch.
      const epoch = acked[0]!.epoch;
      const slice = await b.history(topic, 0, epoch);
      assert.equal(slice.complete, true);
      const stored = new Map(slice.publications.map((x) => [x.offset, x.data]));
      for (const ack of acked) assert.equal(stored.get(ack.offset), ack.data, `acknowledged offset ${ack.offset} is in history with its data`);
      assert.deepEqual(slice.publications.map((x) => x.offset), Array.from({ length: slice.offset }, (_, i) => i + 1), 'offsets +1, no hole');
      assert.ok(acked.every((x) => x.epoch === epoch), 'one epoch');
      // Node B (on a surviving server) received every stored publication, in order; node A the
      // ones after its reconnect from live delivery (its hub recovers the rest from history).
      await nodeB.waitFor('the last publication on B', () => nodeB.on(topic).some((x) => x.offset === slice.offset), 5000);
      const onB = nodeB.on(topic).map((x) => x.offset);
      assert.deepEqual(onB, [...new Set(onB)].sort((x, y) => x - y), 'B: each once, in offset order');
      const missingOnB = slice.publications.filter((x) => !onB.includes(x.offset)).map((x) => x.offset);
      console.log(
        `[nats cluster] stream leader ${leader} killed under node A: reconnected + history leader after ${reconnectAfter.toFixed(0)} ms, ` +
          `longest pause between acknowledged publishes ${longestPause(ackTimes).toFixed(0)} ms; acked ${acked.length}, not acknowledged ${failed.length}, ` +
          `stored ${slice.offset} (failures: ${JSON.stringify([...new Set(failed.map((e) => e.message.replace(/ to \S+$/, '')))])}); new leader ${await cluster.leaderOf(stream)}; B missed live ${missingOnB.length} ${JSON.stringify(missingOnB.slice(0, 5))}`,
      );
      assert.deepEqual([...new Set(failed.map((e) => e.name))].filter((n) => n !== 'NatsBrokerError'), [], 'every failure is a NatsBrokerError');
    } finally {
      await Promise.all([a.close(), b.close()]);
      await cluster.restart(victim);
    }
    await cluster.ready(3);
  });
});

describe('nats broker on a single (non-clustered) nats-server with replicas 3', { skip, timeout: 20_000 }, () => {
  let server: Awaited<ReturnType<typeof startNatsServer>> | undefined;
  let store: string | undefined;
  let url = '';

  before(async () => {
    const port = await freePort();
    store = mkdtempSync(join(tmpdir(), 'duplex-nats-single-'));
    server = await startNatsServer((binary as { path: string }).path, port, store);
    url = `127.0.0.1:${port}`;
  });

  after(async () => {
    await server?.stop('SIGTERM', 1000);
    if (store !== undefined) rmSync(store, { recursive: true, force: true });
  });

  test('start() rejects with a clear error, for a new stream and for an existing one', async () => {
    const expected = { name: 'NatsBrokerError', message: /needs replicas 3, but the NATS server is not clustered/ };
    const fresh = new NatsBroker({ ...BASE, prefix: prefix('single'), replicas: 3, servers: url });
    await assert.rejects(fresh.start(new RecordingNode('fresh')), expected);
    await fresh.close();
    // The stream exists with one copy: a single server would record replicas 3 without
    // replicating anything, so the broker refuses before asking.
    const p = prefix('single');
    const one = new NatsBroker({ ...BASE, prefix: p, servers: url });
    await one.start(new RecordingNode('one'));
    await one.close();
    const three = new NatsBroker({ ...BASE, prefix: p, replicas: 3, servers: url });
    await assert.rejects(three.start(new RecordingNode('three')), expected);
    await three.close();
    const nc = await connect({ servers: url });
    try {
      const info = await (await nc.jetstreamManager()).streams.info(`${p.toUpperCase()}_HIST`);
      assert.equal(info.config.num_replicas, 1, 'the stream was left as it was');
    } finally {
      await nc.close();
    }
  });
});
