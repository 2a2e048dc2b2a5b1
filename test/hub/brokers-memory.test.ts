// The in-memory broker against the broker contract: two nodes in one process sharing one state.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MemoryBroker } from '../../src/hub/brokers/memory.js';
import { brokerContract, RecordingNode } from './broker-contract.js';

brokerContract('memory', async (options) => {
  const a = new MemoryBroker(options);
  const b = a.forNode();
  return {
    brokers: [a, b],
    async cleanup() {
      await a.close();
      await b.close();
    },
  };
});

test('memory broker: start twice is refused, forNode() is the way to add a node', async () => {
  const a = new MemoryBroker();
  await a.start(new RecordingNode('A'));
  await assert.rejects(a.start(new RecordingNode('B')), { name: 'BrokerStateError' });
  await assert.rejects(new MemoryBroker().publish('t', '1', { size: 1, ttl: 1000 }), { name: 'BrokerStateError' });
  await a.close();
});

test('memory broker: delivery is asynchronous (never inside publish) and reports connected state', async () => {
  const a = new MemoryBroker();
  const node = new RecordingNode('A');
  await a.start(node);
  assert.deepEqual(node.states, ['connected']);
  await a.subscribe('t');
  const pending = a.publish('t', '1', { size: 1, ttl: 1000 });
  assert.equal(node.publications.length, 0);
  await pending;
  await node.waitFor('delivery', () => node.publications.length === 1);
  await a.close();
  assert.deepEqual(node.states, ['connected', 'disconnected']);
  assert.equal(node.reconnects, 0);
});
