// The Redis broker with Sentinel for failover (one master, one replica, three sentinels of our
// own, started here on free ports and stopped by PID at the end): the broker contract suite on
// it, then the master killed mid-stream while two hubs publish and deliver — the sentinels
// promote the replica, the brokers follow it (commands through node-redis' createSentinel, the
// subscriptions moved by the broker), `onReconnect` makes the hubs re-check history, and every
// acknowledged publish is delivered, recovered or reported as a gap (redis-cluster-accounting.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { RedisBroker, type RedisBrokerOptions } from '../../src/hub/brokers/redis.js';
import { brokerContract, RecordingNode } from './broker-contract.js';
import { killAll } from './cluster-helpers.js';
import { startHub, until, type HubServer } from './hub-helpers.js';
import { lossRun } from './redis-cluster-accounting.js';
import { redisBinaries, startRedisSentinel, type SentinelHandle } from './redis-cluster-helpers.js';

const binaries = redisBinaries();
const skip = 'skip' in binaries ? binaries.skip : undefined;

describe('redis broker with Sentinel: master + replica + 3 sentinels', { skip, timeout: 90_000 }, () => {
  let sentinel: SentinelHandle;
  let hubA: HubServer | undefined;
  let hubB: HubServer | undefined;
  let watcher: RedisBroker | undefined;
  const options = (): RedisBrokerOptions => ({
    sentinel: { name: sentinel.name, sentinelRootNodes: sentinel.sentinelRootNodes },
    prefix: 'duplex-sentinel:',
    presenceRefresh: 500,
    presenceTtl: 5000,
    metaTtl: 60_000,
    connectTimeout: 2000,
  });

  before(async () => {
    sentinel = await startRedisSentinel(binaries as { server: string }, { downAfter: 1000 });
  });

  after(async () => {
    await Promise.allSettled([hubA?.close(), hubB?.close(), watcher?.close()]);
    await sentinel?.stop();
    await killAll();
  });

  brokerContract('redis sentinel', async (extra) => {
    const a = new RedisBroker({ ...options(), ...extra });
    const b = new RedisBroker({ ...options(), ...extra });
    return {
      brokers: [a, b],
      async cleanup() {
        await Promise.all([a.close(), b.close()]);
      },
    };
  });

  test('kill -9 the master while two hubs publish and deliver: the replica is promoted, the brokers carry on', async (t) => {
    const topic = 'stream';
    const url = `redis+sentinel://${sentinel.sentinelRootNodes.join(',')}/${sentinel.name}`;
    const hubOptions = (nodeId: string, broker: RedisBroker) => ({ nodeId, anonymous: true, broker, history: { size: 2000, ttl: 5 * 60_000 } });
    [hubA, hubB] = await Promise.all([
      startHub(hubOptions('A', new RedisBroker(options()))),
      startHub(hubOptions('B', new RedisBroker({ ...options(), sentinel: undefined, url }))),
    ]);
    watcher = new RedisBroker(options());
    const watched = new RecordingNode('watcher');
    await watcher.start(watched);
    await watcher.subscribe(topic);
    assert.deepEqual([...watcher.subscriptions.keys()], [`127.0.0.1:${sentinel.master.port}`]);

    const run = await lossRun('redis sentinel failover', { a: hubA.url, b: hubB.url, bPort: Number(new URL(hubB.url).port) }, topic, async () => {
      sentinel.master.child.process.kill('SIGKILL');
      await sentinel.master.child.exited;
    });
    console.log(run.summary);
    t.diagnostic(run.summary.split('\n')[0]!);

    assert.equal(await sentinel.currentMaster(), sentinel.replica.port, 'the sentinels promoted the replica');
    await until(() => watched.reconnects >= 1, 5000, 'onReconnect after the failover');
    assert.deepEqual([...watcher.subscriptions.keys()], [`127.0.0.1:${sentinel.replica.port}`], 'the subscription followed the master');
    assert.deepEqual(watched.states.slice(0, 3), ['connected', 'disconnected', 'connected']);
    assert.equal(watched.states.at(-1), 'connected');

    for (const [name, lost] of run.lost) assert.deepEqual(lost, [], `${name}: silently lost`);
    assert.equal(run.total.silentlyLost, 0);
    assert.equal(run.total.duplicates, 0, 'nothing twice');
    assert.equal(run.total.disorder, 0, 'offset order within an epoch');
    assert.equal(run.total.acked * run.subscribers, run.total.delivered + run.total.recovered + run.total.gapNotified);

    const p = await watcher.publish(topic, '"after"', { size: 10, ttl: 60_000 });
    await watched.waitFor('the publication after the failover', () => watched.on(topic).some((x) => x.offset === p.offset));
  });
});
