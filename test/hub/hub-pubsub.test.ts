// Hub publish/subscribe over real sockets: two clients, excludeSelf, messages to a connection, a
// user and everyone, authorisation hooks, and the frame-once fan-out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Json } from '../../src/hub/index.js';
import { HubClientError } from '../../src/hub/index.js';
import { hubClient, rawClient, startHub, until } from './hub-helpers.js';

test('hub: a publication reaches every subscriber in order, with offset and epoch', { timeout: 10_000 }, async () => {
  const { hub, url, close } = await startHub();
  const a = hubClient(url);
  const b = hubClient(url);
  try {
    const gotA: Array<[Json, number]> = [];
    const gotB: Json[] = [];
    const subA = await a.subscribe('chat', (data, meta) => gotA.push([data, meta.offset]));
    await b.subscribe('chat', (data) => gotB.push(data));
    assert.equal(subA.offset, 0);
    const first = await a.publish('chat', { text: 'hello' });
    assert.equal(first.offset, 1);
    assert.equal(first.epoch, subA.epoch);
    await b.publish('chat', 'from b');
    await hub.publish('chat', [1, 2, 3]);
    await until(() => gotA.length === 3 && gotB.length === 3, 3000, 'three deliveries each');
    assert.deepEqual(gotA, [[{ text: 'hello' }, 1], ['from b', 2], [[1, 2, 3], 3]]);
    assert.deepEqual(gotB, [{ text: 'hello' }, 'from b', [1, 2, 3]]);
    // Unsubscribed: no more deliveries.
    await b.unsubscribe('chat');
    await a.publish('chat', 'after');
    await until(() => gotA.length === 4);
    assert.equal(gotB.length, 3);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await close();
  }
});

test('hub: excludeSelf keeps a publication from its publisher only', { timeout: 10_000 }, async () => {
  const { hub, url, close } = await startHub();
  const a = hubClient(url);
  const b = hubClient(url);
  try {
    const gotA: Json[] = [];
    const gotB: Json[] = [];
    await a.subscribe('t', (data) => gotA.push(data));
    await b.subscribe('t', (data) => gotB.push(data));
    await a.publish('t', 'not to a', { excludeSelf: true });
    await a.publish('t', 'to all');
    // Server side, excluding a connection by id.
    await hub.publish('t', 'not to b', { excludeConnId: b.connId! });
    await until(() => gotA.length === 2 && gotB.length === 2, 3000, 'deliveries');
    assert.deepEqual(gotA, ['to all', 'not to b']);
    assert.deepEqual(gotB, ['not to a', 'to all']);
  } finally {
    await Promise.all([a.close(), b.close()]);
    await close();
  }
});

test('hub: sendToConnection, sendToUser and broadcast arrive as push messages', { timeout: 10_000 }, async () => {
  const { hub, url, close } = await startHub({ auth: { verify: (token) => ({ id: token }) } });
  const ann1 = hubClient(url, { token: 'ann' });
  const ann2 = hubClient(url, { token: 'ann' });
  const bob = hubClient(url, { token: 'bob' });
  try {
    await Promise.all([ann1.connected(), ann2.connected(), bob.connected()]);
    assert.equal(ann1.userId, 'ann');
    const pushes = new Map<string, Json[]>([['ann1', []], ['ann2', []], ['bob', []]]);
    ann1.on('push', (d) => pushes.get('ann1')!.push(d));
    ann2.on('push', (d) => pushes.get('ann2')!.push(d));
    bob.on('push', (d) => pushes.get('bob')!.push(d));
    await hub.sendToConnection(ann2.connId!, 'just ann2');
    await hub.sendToUser('ann', 'all of ann');
    await hub.broadcast('everyone');
    await until(() => pushes.get('ann1')!.length === 2 && pushes.get('ann2')!.length === 3 && pushes.get('bob')!.length === 1, 3000, 'pushes');
    assert.deepEqual(pushes.get('ann1'), ['all of ann', 'everyone']);
    assert.deepEqual(pushes.get('ann2'), ['just ann2', 'all of ann', 'everyone']);
    assert.deepEqual(pushes.get('bob'), ['everyone']);
  } finally {
    await Promise.all([ann1.close(), ann2.close(), bob.close()]);
    await close();
  }
});

test('hub: authorisation hooks refuse subscribe and publish with E_FORBIDDEN, and no data flows', { timeout: 10_000 }, async () => {
  const { hub, url, close } = await startHub({
    anonymous: true,
    authorize: {
      subscribe: async (_ctx, topic) => !topic.startsWith('secret'),
      publish: (_ctx, topic) => topic !== 'readonly',
    },
  });
  const client = hubClient(url);
  const raw = await rawClient(url);
  try {
    const got: Json[] = [];
    client.on('message', (data) => got.push(data));
    await assert.rejects(client.subscribe('secret:plans', (d) => got.push(d)), (e: unknown) => e instanceof HubClientError && e.code === 'E_FORBIDDEN');
    await client.subscribe('readonly');
    await assert.rejects(client.publish('readonly', 'nope'), (e: unknown) => e instanceof HubClientError && e.code === 'E_FORBIDDEN');
    // Reserved topics are refused to clients whatever the hooks say.
    const reserved = await raw.request({ type: 'subscribe', topic: '$all' });
    assert.equal(reserved['code'], 'E_FORBIDDEN');
    await hub.publish('secret:plans', 'classified');
    await hub.publish('readonly', 'ok');
    await until(() => got.length === 1);
    assert.deepEqual(got, ['ok']);
    const presence = await raw.request({ type: 'presence', topic: 'secret:plans' });
    assert.equal(presence['code'], 'E_FORBIDDEN');
  } finally {
    await client.close();
    raw.ws.close();
    await close();
  }
});

test('hub: allowClientPublish false refuses client publishes', { timeout: 10_000 }, async () => {
  const { url, close } = await startHub({ anonymous: true, allowClientPublish: false });
  const raw = await rawClient(url);
  try {
    const answer = await raw.request({ type: 'publish', topic: 'x', data: 1 });
    assert.equal(answer.type, 'error');
    assert.equal(answer['code'], 'E_FORBIDDEN');
  } finally {
    raw.ws.close();
    await close();
  }
});

test('hub: fan-out builds the message JSON once per publication; every subscriber gets identical bytes', { timeout: 10_000 }, async () => {
  const { hub, url, close } = await startHub();
  const clients = await Promise.all(Array.from({ length: 8 }, () => rawClient(url)));
  try {
    for (const c of clients) assert.equal((await c.request({ type: 'subscribe', topic: 'fan' })).type, 'reply');
    const before = hub.stats();
    await hub.publish('fan', { n: 1, text: 'x'.repeat(64) });
    await hub.publish('fan', { n: 2 });
    await Promise.all(clients.map((c) => c.next((m) => m.type === 'message' && (m['data'] as { n: number }).n === 2)));
    const after = hub.stats();
    assert.equal(after.messagesBuilt - before.messagesBuilt, 2, 'one JSON text per publication');
    assert.equal(after.deliveries - before.deliveries, 16);
    const texts = clients.map((c) => c.texts.filter((t) => t.startsWith('{"type":"message"')));
    for (const t of texts) assert.deepEqual(t, texts[0]);
    assert.equal(texts[0]![0], `{"type":"message","topic":"fan","offset":1,"epoch":${JSON.stringify((clients[0]!.messages.find((m) => m.type === 'message')!)['epoch'])},"data":{"n":1,"text":"${'x'.repeat(64)}"}}`);
  } finally {
    for (const c of clients) c.ws.close();
    await close();
  }
});

test('hub: publishes made while disconnected are queued and sent after reconnecting', { timeout: 10_000 }, async () => {
  const { hub, server, url, close } = await startHub();
  const watcher = hubClient(url);
  const client = hubClient(url, { reconnect: { minDelay: 150, maxDelay: 150, jitter: false } });
  try {
    const got: Json[] = [];
    await watcher.subscribe('q', (d) => got.push(d));
    await client.connected();
    const connId = client.connId;
    for (const ws of server.clients) if (hub.connectionId(ws) === connId) ws.terminate();
    await until(() => client.state === 'reconnecting', 2000, 'reconnecting');
    const publishes = [client.publish('q', 1), client.publish('q', 2), client.publish('q', 3)];
    const acks = await Promise.all(publishes);
    assert.deepEqual(acks.map((a) => a.offset), [1, 2, 3]);
    await until(() => got.length === 3);
    assert.deepEqual(got, [1, 2, 3]);
  } finally {
    await Promise.all([watcher.close(), client.close()]);
    await close();
  }
});
