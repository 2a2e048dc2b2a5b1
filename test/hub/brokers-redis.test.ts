// The Redis broker against the broker contract, with two brokers ("nodes") on one real Redis at
// 127.0.0.1:6379, plus what only a remote broker has: reconnecting, and presence of dead nodes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createClient } from 'redis';

import { RedisBroker, type RedisBrokerOptions } from '../../src/hub/brokers/redis.js';
import { brokerContract, RecordingNode, serviceCheck, uniqueTopic } from './broker-contract.js';

const URL = 'redis://127.0.0.1:6379';
const skip = await serviceCheck('Redis', '127.0.0.1', 6379, '.ci/run starts it (redis-server --daemonize yes --port 6379) when installed');

// Short liveness bounds and meta ttl so tests are quick and leave nothing behind for long.
const OPTIONS: RedisBrokerOptions = { url: URL, prefix: 'duplex-test:', presenceRefresh: 200, presenceTtl: 1000, metaTtl: 60_000 };

if (skip !== undefined) {
  test('redis broker', { skip }, () => {});
} else {
  brokerContract('redis', async (options) => {
    const a = new RedisBroker({ ...OPTIONS, ...options });
    const b = new RedisBroker({ ...OPTIONS, ...options });
    return {
      brokers: [a, b],
      async cleanup() {
        await Promise.all([a.close(), b.close()]);
      },
    };
  });

  describe('redis broker', () => {
    test('start() rejects when Redis cannot be reached', { timeout: 5000 }, async () => {
      const broker = new RedisBroker({ url: 'redis://127.0.0.1:1', connectTimeout: 500 });
      await assert.rejects(broker.start(new RecordingNode('nowhere')), { name: 'RedisBrokerError', message: /cannot reach Redis/ });
      await broker.close();
    });

    test('onReconnect fires after the subscriber connection is killed, and delivery resumes', { timeout: 8000 }, async () => {
      const admin = createClient({ url: URL });
      await admin.connect();
      const a = new RedisBroker(OPTIONS);
      const b = new RedisBroker(OPTIONS);
      const nodeA = new RecordingNode('reconnect-A');
      const nodeB = new RecordingNode('reconnect-B');
      try {
        await a.start(nodeA);
        await b.start(nodeB);
        assert.deepEqual(nodeB.states, ['connected']);
        const topic = uniqueTopic('reconnect');
        await b.subscribe(topic);
        await a.publish(topic, '1', { size: 10, ttl: 60_000 });
        await nodeB.waitFor('publication 1', () => nodeB.on(topic).length === 1);
        // Find B's subscriber connection by its client name and kill it (CLIENT KILL ID).
        const list = await admin.sendCommand(['CLIENT', 'LIST']);
        const line = String(list).split('\n').find((l) => l.includes(` name=${b.subscriberName} `));
        assert.ok(line, `CLIENT LIST shows ${b.subscriberName}`);
        const id = /\bid=(\d+)/.exec(line)![1]!;
        assert.equal(await admin.sendCommand(['CLIENT', 'KILL', 'ID', id]), 1);
        await nodeB.waitFor('onReconnect', () => nodeB.reconnects === 1);
        assert.deepEqual(nodeB.states, ['connected', 'disconnected', 'connected']);
        assert.equal(nodeA.reconnects, 0);
        await a.publish(topic, '2', { size: 10, ttl: 60_000 });
        await nodeB.waitFor('publication 2 after reconnect', () => nodeB.on(topic).length === 2);
        assert.deepEqual(nodeB.on(topic).map((p) => p.offset), [1, 2]);
      } finally {
        await Promise.all([a.close(), b.close()]);
        await admin.close();
      }
    });

    test('members of a dead node are left out of presence() and their leaves announced within the bound', { timeout: 8000 }, async () => {
      const admin = createClient({ url: URL });
      await admin.connect();
      const b = new RedisBroker(OPTIONS);
      const nodeB = new RecordingNode('sweeper-B');
      const topic = uniqueTopic('dead');
      const prefix = OPTIONS.prefix!;
      const ghost = `ghost-${topic}`;
      const silent = `silent-${topic}`;
      try {
        await b.start(nodeB);
        await b.subscribe(topic);
        await b.join(topic, { connId: 'b1', node: nodeB.id });
        // A node that crashed: its deadline has passed but nobody swept it yet ...
        const ghostMember = { connId: 'g1', node: ghost, userId: 'ghost' };
        await admin.hSet(`${prefix}{${topic}}:presence`, 'g1', JSON.stringify(ghostMember));
        await admin.sAdd(`${prefix}node:${ghost}:topics`, topic);
        await admin.zAdd(`${prefix}nodes`, { score: Date.now() - 60_000, value: ghost });
        // ... and one that was never registered at all.
        await admin.hSet(`${prefix}{${topic}}:presence`, 's1', JSON.stringify({ connId: 's1', node: silent }));
        // The sweep (every presenceRefresh) announces the ghost's leave without anyone asking.
        await nodeB.waitFor('leave of the dead node member', () =>
          nodeB.presenceEvents.some((e) => e.kind === 'leave' && e.member.connId === 'g1'),
        );
        assert.deepEqual(nodeB.presenceEvents.find((e) => e.member.connId === 'g1')!.member, ghostMember);
        assert.deepEqual((await b.presence(topic)).map((m) => m.connId), ['b1']);
        await nodeB.waitFor('leave of s1', () => nodeB.presenceEvents.some((e) => e.kind === 'leave' && e.member.connId === 's1'));
        assert.equal(nodeB.presenceEvents.filter((e) => e.kind === 'leave').length, 2, 'each leave announced once');
        assert.equal(await admin.exists(`${prefix}node:${ghost}:topics`), 0, 'the sweeper removed the dead node index');
      } finally {
        await b.close();
        await admin.del(`${prefix}{${topic}}:presence`);
        await admin.close();
      }
    });
  });
}
