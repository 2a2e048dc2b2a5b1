// The hub's control plane and the server-side calls built on it (src/hub/control.ts, hub.ts):
// nodes learn of each other, topics are gathered from every node, disconnect and server-side
// subscriptions reach connections on every node; and the hooks' seams in the session: the
// connect hook (headers, data, expiry, refusals and their close codes), authorize hooks that
// answer with their own codes or rewrite a publication, RPC handlers and their errors.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { WebSocketServer } from '../../src/index.js';
import { Hub, HubError, MemoryBroker, type HubIdentity, type HubOptions } from '../../src/hub/index.js';
import { delay, rawClient, until, type RawClient } from './hub-helpers.js';

interface Node {
  hub: Hub<HubIdentity>;
  url: string;
  close(): Promise<void>;
}

const open: Node[] = [];
after(async () => {
  for (const node of open.splice(0)) await node.close();
});

async function startNode(options: HubOptions<HubIdentity>): Promise<Node> {
  const hub = new Hub<HubIdentity>(options);
  await hub.start();
  const server = new WebSocketServer<unknown>({ ...hub.routeOptions, pingInterval: 0 });
  const address = await server.listen(0);
  const node: Node = {
    hub,
    url: `ws://127.0.0.1:${address.port}/hub`,
    async close() {
      await server.close(1001, 'test over', 500);
      await hub.close();
    },
  };
  open.push(node);
  return node;
}

/** Two nodes on one in-memory broker, authenticating `?user=<id>` through a connect hook. */
async function twoNodes(extra: Partial<HubOptions<HubIdentity>> = {}): Promise<[Node, Node]> {
  const broker = new MemoryBroker();
  const connect = { authenticate: ({ data }: { data: unknown }) => ({ user: { id: String((data as { user?: string } | undefined)?.user ?? 'anon') } }) };
  const a = await startNode({ broker, nodeId: 'node-a', connect, ...extra });
  const b = await startNode({ broker: broker.forNode(), nodeId: 'node-b', connect, ...extra });
  return [a, b];
}

async function login(url: string, user: string): Promise<RawClient> {
  const client = await rawClient(url);
  const reply = await client.request({ type: 'connect', data: { user } });
  assert.equal(reply.type, 'reply', JSON.stringify(reply));
  return client;
}

describe('control plane', () => {
  test('nodes learn of each other at once, and forget a node that leaves', async () => {
    const [a, b] = await twoNodes();
    await until(() => a.hub.nodes().length === 2 && b.hub.nodes().length === 2, 2000, 'both nodes known');
    const [self, other] = a.hub.nodes();
    assert.equal(self!.id, 'node-a');
    assert.equal(other!.id, 'node-b');
    assert.equal(other!.broker, 'memory');
    assert.match(self!.version, /^\d+\.\d+\.\d+/);
    await login(b.url, 'u1');
    assert.equal(b.hub.nodes()[0]!.connections, 1);
    await b.close();
    open.splice(open.indexOf(b), 1);
    await until(() => a.hub.nodes().length === 1, 2000, 'node-b forgotten');
    // Announcements are not the application's publications.
    assert.equal(a.hub.stats().publications, 0);
  });

  test('topics are gathered from every node, with counts, and filtered by a glob', async () => {
    const [a, b] = await twoNodes();
    await until(() => a.hub.nodes().length === 2, 2000, 'both nodes known');
    const c1 = await login(a.url, 'u1');
    const c2 = await login(b.url, 'u2');
    for (const [client, topic] of [[c1, 'room:1'], [c2, 'room:1'], [c2, 'room:2'], [c1, 'other']] as const) {
      assert.equal((await client.request({ type: 'subscribe', topic })).type, 'reply');
    }
    const all = await a.hub.topics();
    assert.deepEqual(all.topics, [
      { topic: 'other', subscribers: 1 },
      { topic: 'room:1', subscribers: 2 },
      { topic: 'room:2', subscribers: 1 },
    ]);
    assert.equal(all.nodes, 2);
    assert.equal(all.partial, false);
    const rooms = await b.hub.topics('room:*');
    assert.deepEqual(rooms.topics.map((t) => t.topic), ['room:1', 'room:2']);
    assert.deepEqual((await b.hub.topics('room:?')).topics.length, 2);
    assert.deepEqual((await b.hub.topics('room.1')).topics, []);
  });

  test('disconnect of a user closes its connections on every node with the code given', async () => {
    const [a, b] = await twoNodes();
    const onA = await login(a.url, 'ada');
    const onB = await login(b.url, 'ada');
    const other = await login(b.url, 'bob');
    await b.hub.disconnect({ user: 'ada' }, 4403, 'banned');
    assert.deepEqual(await onA.closed, [4403, 'banned']);
    assert.deepEqual(await onB.closed, [4403, 'banned']);
    assert.equal((await other.request({ type: 'ping' })).type, 'reply', 'another user stays');
    // One connection, by id, with the default code (1008: the hub's clients stop).
    const connId = String(((await other.request({ type: 'connect' })).result as { connId: string }).connId);
    await a.hub.disconnect({ connId });
    assert.equal((await other.closed)[0], 1008);
    await assert.rejects(a.hub.disconnect({ user: 'x' }, 1006), (error: unknown) => error instanceof HubError && error.code === 'E_BAD_REQUEST');
  });

  test('server-side subscribe and unsubscribe reach a user on every node', async () => {
    const [a, b] = await twoNodes();
    const onA = await login(a.url, 'ada');
    const onB = await login(b.url, 'ada');
    await a.hub.subscribeConnections({ user: 'ada' }, 'news');
    // The command resolves once carried; each node then subscribes (presence shows when it did).
    for (let i = 0; (await a.hub.presenceStats('news')).connections < 2; i++) {
      assert.ok(i < 200, 'subscribed on both nodes');
      await delay(10);
    }
    await a.hub.publish('news', { n: 1 });
    for (const client of [onA, onB]) {
      const message = await client.next((m) => m.type === 'message');
      assert.equal(message['topic'], 'news');
      assert.deepEqual(message['data'], { n: 1 });
    }
    await b.hub.unsubscribeConnections({ user: 'ada' }, 'news');
    await until(() => a.hub.stats().topics === 0 && b.hub.stats().topics === 0, 2000, 'unsubscribed on both nodes');
  });

  test('presence stats count connections and distinct users', async () => {
    const [a, b] = await twoNodes();
    for (const [url, user] of [[a.url, 'ada'], [b.url, 'ada'], [b.url, 'bob']] as const) {
      const client = await login(url, user);
      await client.request({ type: 'subscribe', topic: 'lobby' });
    }
    await until(() => true);
    assert.deepEqual(await a.hub.presenceStats('lobby'), { connections: 3, users: 2 });
  });

  test('history: since, limit, reverse', async () => {
    const [a] = await twoNodes();
    for (let n = 1; n <= 5; n++) await a.hub.publish('log', { n });
    const all = await a.hub.history('log');
    assert.deepEqual(all.publications.map((p) => p.data), [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }]);
    assert.equal(all.offset, 5);
    const latest = await a.hub.history('log', { reverse: true, limit: 2 });
    assert.deepEqual(latest.publications.map((p) => p.offset), [5, 4]);
    const since = await a.hub.history('log', { since: { offset: 3, epoch: all.epoch } });
    assert.deepEqual(since.publications.map((p) => p.offset), [4, 5]);
    assert.equal(since.complete, true);
    const otherEpoch = await a.hub.history('log', { since: { offset: 3, epoch: 'gone' } });
    assert.equal(otherEpoch.complete, false);
  });

  test('an idempotency key publishes once', async () => {
    const [a, b] = await twoNodes();
    const sub = await login(b.url, 'ada');
    await sub.request({ type: 'subscribe', topic: 'orders' });
    const first = await a.hub.publish('orders', { id: 7 }, { idempotencyKey: 'order-7' });
    const again = await b.hub.publish('orders', { id: 7 }, { idempotencyKey: 'order-7' });
    assert.equal(again.offset, first.offset);
    await sub.next((m) => m.type === 'message');
    await delay(50);
    assert.equal(sub.messages.filter((m) => m.type === 'message').length, 1);
  });
});

describe('hook seams', () => {
  test('the connect hook sees the kept headers, the remote address and the connect data', async () => {
    const seen: unknown[] = [];
    const node = await startNode({
      handshakeHeaders: ['cookie', 'x-team'],
      connect: {
        authenticate: (request) => {
          seen.push(request);
          return { user: { id: 'ada', info: { name: 'Ada' } } };
        },
      },
    });
    const client = await rawClient(node.url, { cookie: 'session=s1', 'x-team': 'blue', 'x-other': 'no' });
    const reply = await client.request({ type: 'connect', data: { room: 'r1' } });
    assert.equal((reply.result as { userId: string }).userId, 'ada');
    const request = seen[0] as { headers: Record<string, string>; data: unknown; remoteAddress: string; token: unknown };
    assert.deepEqual(request.headers, { cookie: 'session=s1', 'x-team': 'blue' });
    assert.deepEqual(request.data, { room: 'r1' });
    assert.equal(request.remoteAddress, '127.0.0.1');
    assert.equal(request.token, undefined);
  });

  test('a connection must connect before anything else when there is a connect hook', async () => {
    const node = await startNode({ connect: { authenticate: () => ({ user: { id: 'u' } }) }, connectTimeout: 200 });
    const client = await rawClient(node.url);
    assert.equal((await client.request({ type: 'subscribe', topic: 't' }))['code'], 'E_UNAUTHORIZED');
    assert.equal((await client.closed)[0], 1008);
  });

  for (const [code, closeCode] of [['E_UNAUTHORIZED', 1008], ['E_FORBIDDEN', 1008], ['E_UNAVAILABLE', 1013]] as const) {
    test(`a connect hook refusing with ${code} closes with ${closeCode}`, async () => {
      const node = await startNode({ connect: { authenticate: () => { throw new HubError(code, 'no'); } } });
      const client = await rawClient(node.url);
      const reply = await client.request({ type: 'connect' });
      assert.equal(reply['code'], code);
      assert.equal((await client.closed)[0], closeCode);
    });
  }

  test('a connect hook that throws something else: E_INTERNAL and 1011', async () => {
    const node = await startNode({ connect: { authenticate: () => { throw new Error('bug'); } } });
    const client = await rawClient(node.url);
    assert.equal((await client.request({ type: 'connect' }))['code'], 'E_INTERNAL');
    assert.equal((await client.closed)[0], 1011);
  });

  test('expireAt closes the connection with 4001 when it passes', async () => {
    const node = await startNode({ connect: { authenticate: () => ({ user: { id: 'u' }, expireAt: Date.now() + 150 }) } });
    const client = await rawClient(node.url);
    assert.equal((await client.request({ type: 'connect' })).type, 'reply');
    const started = Date.now();
    assert.deepEqual(await client.closed, [4001, 'authentication expired']);
    assert.ok(Date.now() - started >= 100);
  });

  test('authorize hooks answer with the code of a HubError they throw, and publish may rewrite', async () => {
    const node = await startNode({
      anonymous: true,
      authorize: {
        subscribe: (_ctx, topic) => {
          if (topic === 'down') throw new HubError('E_UNAVAILABLE', 'backend down');
          return topic !== 'secret';
        },
        publish: (_ctx, topic, data) => (topic === 'stamped' ? { data: { original: data, stamped: true } } : topic !== 'ro'),
      },
    });
    const client = await rawClient(node.url);
    assert.equal((await client.request({ type: 'subscribe', topic: 'secret' }))['code'], 'E_FORBIDDEN');
    const down = await client.request({ type: 'subscribe', topic: 'down' });
    assert.deepEqual([down['code'], down['message']], ['E_UNAVAILABLE', 'backend down']);
    assert.equal((await client.request({ type: 'subscribe', topic: 'stamped' })).type, 'reply');
    assert.equal((await client.request({ type: 'publish', topic: 'stamped', data: 1 })).type, 'reply');
    const message = await client.next((m) => m.type === 'message');
    assert.deepEqual(message['data'], { original: 1, stamped: true });
    assert.equal((await client.request({ type: 'publish', topic: 'ro', data: 1 }))['code'], 'E_FORBIDDEN');
  });

  test('RPC: handlers, the fallback, errors, timeouts, and answers out of order', async () => {
    const node = await startNode({
      anonymous: true,
      rpcTimeout: 100,
      rpcFallback: (_ctx, method) => {
        if (method === 'backend.echo') return 'from fallback';
        throw new HubError('E_NOT_FOUND', `no ${method}`);
      },
    });
    node.hub
      .rpc('sum', (_ctx, params) => (params as number[]).reduce((a, b) => a + b, 0))
      .rpc('slow', () => delay(50).then(() => 'slow'))
      .rpc('never', () => new Promise(() => {}))
      .rpc('refuse', () => {
        throw new HubError('E_FORBIDDEN', 'not you');
      })
      .rpc('bug', () => {
        throw new Error('boom');
      })
      .rpc('nothing', () => undefined);
    const client = await rawClient(node.url);
    assert.deepEqual((await client.request({ type: 'rpc', method: 'sum', params: [1, 2, 3] })).result, { data: 6 });
    assert.deepEqual((await client.request({ type: 'rpc', method: 'backend.echo' })).result, { data: 'from fallback' });
    assert.deepEqual((await client.request({ type: 'rpc', method: 'nothing' })).result, { data: null });
    assert.equal((await client.request({ type: 'rpc', method: 'missing' }))['code'], 'E_NOT_FOUND');
    assert.equal((await client.request({ type: 'rpc', method: 'refuse' }))['code'], 'E_FORBIDDEN');
    assert.equal((await client.request({ type: 'rpc', method: 'bug' }))['code'], 'E_INTERNAL');
    assert.equal((await client.request({ type: 'rpc', method: 'never' }))['code'], 'E_UNAVAILABLE');
    assert.equal((await client.request({ type: 'rpc', method: 'sum', params: 1, id: undefined })).type, 'error');
    // A slow RPC does not hold up the requests after it.
    client.send({ type: 'rpc', id: 'slow-1', method: 'slow' });
    client.send({ type: 'ping', id: 'ping-1' });
    await client.next((m) => m['id'] === 'slow-1');
    const order = client.messages.filter((m) => m['id'] === 'slow-1' || m['id'] === 'ping-1').map((m) => m['id']);
    assert.deepEqual(order, ['ping-1', 'slow-1']);
    // An rpc without an id is refused (its answer would have nowhere to go).
    client.send({ type: 'rpc', method: 'sum' });
    assert.equal((await client.next((m) => m.type === 'error' && m['id'] === undefined))['code'], 'E_BAD_REQUEST');
  });
});
