// The NATS broker against the broker contract, with two brokers ("nodes") on one real NATS
// server with JetStream at 127.0.0.1:4222, plus presence of dead nodes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { connect } from 'nats';

import { NatsBroker, type NatsBrokerOptions } from '../../src/hub/brokers/nats.js';
import { brokerContract, RecordingNode, serviceCheck, uniqueTopic } from './broker-contract.js';

const skip = await serviceCheck('NATS', '127.0.0.1', 4222, '.ci/run starts it (nats-server -js -p 4222) when installed');

// Own prefix (stream DUPLEXTEST_HIST, buckets duplextest-*), short liveness bounds and a short
// max age so tests are quick and their messages age out within a minute.
const OPTIONS: NatsBrokerOptions = { prefix: 'duplextest', presenceRefresh: 200, presenceTtl: 1000, metaTtl: 60_000 };

if (skip !== undefined) {
  test('nats broker', { skip }, () => {});
} else {
  brokerContract('nats', async (options) => {
    const a = new NatsBroker({ ...OPTIONS, ...options });
    const b = new NatsBroker({ ...OPTIONS, ...options });
    return {
      brokers: [a, b],
      async cleanup() {
        await Promise.all([a.close(), b.close()]);
      },
    };
  });

  describe('nats broker', () => {
    test('start() rejects when NATS cannot be reached', { timeout: 5000 }, async () => {
      const broker = new NatsBroker({ servers: '127.0.0.1:1', timeout: 500 });
      await assert.rejects(broker.start(new RecordingNode('nowhere')), { name: 'NatsBrokerError', message: /cannot reach NATS/ });
      await broker.close();
    });

    test('members of a dead node are left out of presence() and their leaves announced within the bound', { timeout: 8000 }, async () => {
      const b = new NatsBroker(OPTIONS);
      const nodeB = new RecordingNode(`sweeper-${Date.now()}`);
      const ghostBroker = new NatsBroker({ ...OPTIONS, presenceRefresh: 60_000, presenceTtl: 120_000 });
      const ghost = new RecordingNode(`ghost-${Date.now()}`);
      const topic = uniqueTopic('dead');
      const nc = await connect({ servers: '127.0.0.1:4222' });
      try {
        await b.start(nodeB);
        await ghostBroker.start(ghost);
        await b.subscribe(topic);
        await b.join(topic, { connId: 'b1', node: nodeB.id });
        await ghostBroker.join(topic, { connId: 'g1', node: ghost.id, userId: 'ghost' });
        assert.equal((await b.presence(topic)).length, 2);
        // The ghost node "crashes": its heartbeat (written once at start) ages past presenceTtl of
        // B's view (1 s) and nobody closes it. B's sweep announces the leave without being asked.
        await nodeB.waitFor('leave of the dead node member', () =>
          nodeB.presenceEvents.some((e) => e.kind === 'leave' && e.member.connId === 'g1'),
        4000);
        assert.deepEqual((await b.presence(topic)).map((m) => m.connId), ['b1']);
        assert.equal(nodeB.presenceEvents.filter((e) => e.kind === 'leave').length, 1, 'the leave is announced once');
      } finally {
        await b.close();
        await ghostBroker.close();
        await nc.close();
      }
    });
  });
}
