// Presence: the member list, join/leave events, and a leave when a connection dies without a
// close frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PresenceMember } from '../../src/hub/index.js';
import { hubClient, rawClient, startHub, until } from './hub-helpers.js';

test('hub presence: members listed with user id and info; join and leave announced to the others', { timeout: 10_000 }, async () => {
  const { hub, url, close } = await startHub({ auth: { verify: (token) => ({ id: token, info: { name: token.toUpperCase() } }) } });
  const ann = hubClient(url, { token: 'ann' });
  const bob = hubClient(url, { token: 'bob' });
  try {
    const events: string[] = [];
    ann.on('join', (topic, m) => events.push(`join ${topic} ${m.userId}`));
    ann.on('leave', (topic, m) => events.push(`leave ${topic} ${m.userId}`));
    await ann.subscribe('room');
    assert.deepEqual((await ann.presence('room')).map((m) => m.userId), ['ann']);
    await bob.subscribe('room');
    const members = await ann.presence('room');
    assert.deepEqual(members.map((m) => m.userId).sort(), ['ann', 'bob']);
    const bobMember = members.find((m) => m.userId === 'bob')!;
    assert.deepEqual(bobMember.info, { name: 'BOB' });
    assert.equal(bobMember.connId, bob.connId);
    assert.equal(bobMember.node, hub.nodeId);
    await until(() => events.length === 1, 3000, 'join');
    await bob.unsubscribe('room');
    await until(() => events.length === 2, 3000, 'leave');
    assert.deepEqual(events, ['join room bob', 'leave room bob']);
    assert.deepEqual((await hub.presence('room')).map((m) => m.userId), ['ann']);
  } finally {
    await Promise.all([ann.close(), bob.close()]);
    await close();
  }
});

test('hub presence: a client killed without a close frame leaves', { timeout: 10_000 }, async () => {
  const { hub, url, close } = await startHub();
  const watcher = hubClient(url);
  const victim = await rawClient(url);
  try {
    const leaves: PresenceMember[] = [];
    watcher.on('leave', (_topic, m) => leaves.push(m));
    await watcher.subscribe('room');
    const connect = await victim.request({ type: 'connect' });
    const victimId = (connect['result'] as { connId: string }).connId;
    await victim.request({ type: 'subscribe', topic: 'room' });
    assert.equal((await hub.presence('room')).length, 2);
    // Destroy the TCP connection: no close frame; the server sees 1006.
    victim.ws.rawSocket.destroy();
    await until(() => leaves.length === 1, 3000, 'leave after terminate');
    assert.equal(leaves[0]!.connId, victimId);
    assert.deepEqual((await hub.presence('room')).map((m) => m.connId), [watcher.connId]);
  } finally {
    await watcher.close();
    await close();
  }
});

test('hub presence: off means no join/leave and an empty list', { timeout: 10_000 }, async () => {
  const { hub, url, close } = await startHub({ anonymous: true, presence: false });
  const a = await rawClient(url);
  try {
    await a.request({ type: 'subscribe', topic: 'room' });
    const reply = await a.request({ type: 'presence', topic: 'room' });
    assert.deepEqual(reply['result'], { members: [] });
    assert.deepEqual(await hub.presence('room'), []);
  } finally {
    a.ws.close();
    await close();
  }
});
