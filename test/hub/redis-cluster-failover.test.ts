// A Redis Cluster master killed mid-stream (3 masters + 3 replicas of our own, started here on
// free ports and stopped by PID at the end): its replica is promoted, the brokers follow — the
// sharded subscription moves to the new master, `onReconnect` makes the hubs re-check history —
// and with publishers and subscribers on two hubs, every acknowledged publish is delivered,
// recovered or reported as a gap: nothing silently lost (redis-cluster-accounting.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { RedisBroker } from '../../src/hub/brokers/redis.js';
import { keySlot, topicHashTag } from '../../src/hub/brokers/redis-slots.js';
import { RecordingNode } from './broker-contract.js';
import { killAll } from './cluster-helpers.js';
import { startHub, until, type HubServer } from './hub-helpers.js';
import { lossRun } from './redis-cluster-accounting.js';
import { redisBinaries, startRedisCluster, waitFor, type RedisClusterHandle } from './redis-cluster-helpers.js';

const binaries = redisBinaries();
const skip = 'skip' in binaries ? binaries.skip : undefined;

/** cluster-node-timeout: a master unreachable this long is failed over to its replica. */
const NODE_TIMEOUT = 1000;
const PREFIX = 'duplex-fo:';

describe('redis cluster: a master killed, its replica promoted, nothing acknowledged silently lost', { skip, timeout: 90_000 }, () => {
  let cluster: RedisClusterHandle;
  let hubA: HubServer | undefined;
  let hubB: HubServer | undefined;
  let watcher: RedisBroker | undefined;

  before(async () => {
    cluster = await startRedisCluster(binaries as { server: string; cli: string }, { masters: 3, replicas: 1, nodeTimeout: NODE_TIMEOUT });
  });

  after(async () => {
    await Promise.allSettled([hubA?.close(), hubB?.close(), watcher?.close()]);
    await cluster?.stop();
    await killAll();
  });

  test('kill -9 the master of the topic\'s slot while two hubs publish and deliver', async (t) => {
    // A topic whose slot is not on the master of the node-liveness set: the fault is the topic's
    // master alone (liveness outlives it; the other case only adds presence churn).
    const nodesMaster = await cluster.masterOf(keySlot(`${PREFIX}nodes`));
    let topic = '';
    for (let i = 0; ; i++) {
      topic = `stream-${i}`;
      if ((await cluster.masterOf(keySlot(`${PREFIX}${topicHashTag(topic)}:meta`))).port !== nodesMaster.port) break;
    }
    const slot = keySlot(`${PREFIX}${topicHashTag(topic)}:pub`);
    const before = await cluster.shard(slot);
    assert.equal(before.replicas.length, 1);

    const options = { cluster: { rootNodes: cluster.rootNodes }, prefix: PREFIX, presenceRefresh: 500, presenceTtl: 5000, connectTimeout: 2000 };
    const hubOptions = (nodeId: string) => ({ nodeId, anonymous: true, broker: new RedisBroker(options), history: { size: 2000, ttl: 5 * 60_000 } });
    [hubA, hubB] = await Promise.all([startHub(hubOptions('A')), startHub(hubOptions('B'))]);
    // A broker of our own on the same topic, to watch what the hubs' brokers go through.
    watcher = new RedisBroker(options);
    const watched = new RecordingNode('watcher');
    await watcher.start(watched);
    await watcher.subscribe(topic);
    const channel = `${PREFIX}${topicHashTag(topic)}:pub`;
    assert.deepEqual(watcher.subscriptions.get(`127.0.0.1:${before.master.port}`), [channel]);

    const run = await lossRun('redis cluster failover', { a: hubA.url, b: hubB.url, bPort: Number(new URL(hubB.url).port) }, topic, async () => {
      before.master.child.process.kill('SIGKILL');
      await before.master.child.exited;
    });
    console.log(run.summary);
    t.diagnostic(run.summary.split('\n')[0]!);

    // The replica took over the slot, and the subscription followed it there.
    const promoted = await cluster.masterOf(slot);
    assert.equal(promoted.port, before.replicas[0]!.port, 'the replica is the slot\'s master now');
    await until(() => watched.reconnects >= 1, 5000, 'onReconnect after the failover');
    assert.deepEqual(watcher.subscriptions.get(`127.0.0.1:${promoted.port}`), [channel]);
    assert.equal(watcher.subscriptions.has(`127.0.0.1:${before.master.port}`), false, 'the dead master\'s connection is gone');
    assert.deepEqual(watched.states.slice(0, 3), ['connected', 'disconnected', 'connected']);
    assert.equal(watched.states.at(-1), 'connected');

    for (const [name, lost] of run.lost) assert.deepEqual(lost, [], `${name}: silently lost`);
    assert.equal(run.total.silentlyLost, 0);
    assert.equal(run.total.duplicates, 0, 'nothing twice');
    assert.equal(run.total.disorder, 0, 'offset order within an epoch');
    assert.equal(run.total.acked * run.subscribers, run.total.delivered + run.total.recovered + run.total.gapNotified);
    assert.equal(run.epochs, 1, 'the replica had the topic\'s meta: same epoch');

    // Service goes on: the watcher gets a new publication through the promoted master.
    const p = await watcher.publish(topic, '"after"', { size: 10, ttl: 60_000 });
    await watched.waitFor('the publication after the failover', () => watched.on(topic).some((x) => x.offset === p.offset));
    await waitFor('the cluster ok again', async () => (await cluster.masterOf(slot)).port === promoted.port);
  });
});
