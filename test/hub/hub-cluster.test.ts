// Two hub nodes in one process sharing one MemoryBroker, each behind its own WebSocketServer:
// cross-node delivery, presence across nodes, messages to users and connections on the other node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBroker, type Json, type PresenceMember } from '../../src/hub/index.js';
import { hubClient, startHub, until } from './hub-helpers.js';

test('hub cluster: two nodes share topics, presence, users and connections through one broker', { timeout: 10_000 }, async () => {
  const broker = new MemoryBroker();
  const verify = (token: string): { id: string } => ({ id: token });
  const nodeA = await startHub({ broker, nodeId: 'A', auth: { verify } });
  const nodeB = await startHub({ broker: broker.forNode(), nodeId: 'B', auth: { verify } });
  const ann = hubClient(nodeA.url, { token: 'ann' });
  const bob = hubClient(nodeB.url, { token: 'bob' });
  const bob2 = hubClient(nodeA.url, { token: 'bob' });
  try {
    const gotAnn: Json[] = [];
    const gotBob: Json[] = [];
    const joins: PresenceMember[] = [];
    const leaves: PresenceMember[] = [];
    ann.on('join', (_t, m) => joins.push(m));
    ann.on('leave', (_t, m) => leaves.push(m));
    await ann.subscribe('room', (d) => gotAnn.push(d));
    await bob.subscribe('room', (d) => gotBob.push(d));
    await bob.publish('room', 'from B');
    await nodeA.hub.publish('room', 'from A');
    await until(() => gotAnn.length === 2 && gotBob.length === 2, 3000, 'cross-node delivery');
    assert.deepEqual(gotAnn, ['from B', 'from A']);
    assert.deepEqual(gotBob, ['from B', 'from A']);
    // Presence spans nodes.
    const members = await ann.presence('room');
    assert.deepEqual(members.map((m) => `${m.userId}@${m.node}`).sort(), ['ann@A', 'bob@B']);
    await until(() => joins.length === 1);
    assert.equal(joins[0]!.node, 'B');
    // A user with connections on both nodes; a connection on the other node; everyone.
    const pushes: string[] = [];
    ann.on('push', (d) => pushes.push(`ann:${String(d)}`));
    bob.on('push', (d) => pushes.push(`bob@B:${String(d)}`));
    bob2.on('push', (d) => pushes.push(`bob@A:${String(d)}`));
    await bob2.connected();
    await nodeA.hub.sendToUser('bob', 'u');
    await nodeA.hub.sendToConnection(bob.connId!, 'c');
    await nodeB.hub.broadcast('all');
    await until(() => pushes.length === 6, 3000, 'pushes');
    assert.deepEqual(pushes.sort(), ['ann:all', 'bob@A:all', 'bob@A:u', 'bob@B:all', 'bob@B:c', 'bob@B:u']);
    // A node that goes away takes its presence with it.
    await bob.close();
    await until(() => leaves.length === 1, 3000, 'leave from node B');
    assert.deepEqual((await nodeB.hub.presence('room')).map((m) => m.userId), ['ann']);
  } finally {
    await Promise.all([ann.close(), bob.close(), bob2.close()]);
    await nodeA.close();
    await nodeB.close();
  }
});

test('hub cluster: history recovery works against the other node', { timeout: 10_000 }, async () => {
  const broker = new MemoryBroker();
  const nodeA = await startHub({ broker, nodeId: 'A', anonymous: true });
  const nodeB = await startHub({ broker: broker.forNode(), nodeId: 'B', anonymous: true });
  const first = hubClient(nodeA.url);
  try {
    const got: number[] = [];
    await first.subscribe('feed', (d) => got.push(d as number));
    await nodeB.hub.publish('feed', 1);
    await until(() => got.length === 1);
    const position = first.position('feed')!;
    await first.close();
    for (let n = 2; n <= 10; n++) await nodeB.hub.publish('feed', n);
    // A fresh client on node B picking up from the position seen on node A.
    const { rawClient } = await import('./hub-helpers.js');
    const raw = await rawClient(nodeB.url);
    const reply = await raw.request({ type: 'subscribe', topic: 'feed', recover: position });
    const result = reply['result'] as { recovered: boolean; publications: Array<{ data: number }> };
    assert.equal(result.recovered, true);
    assert.deepEqual(result.publications.map((p) => p.data), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
    raw.ws.close();
  } finally {
    await first.close();
    await nodeA.close();
    await nodeB.close();
  }
});
