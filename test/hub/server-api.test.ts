// The server API (src/hub/server-api.ts) end to end: a real Hub behind a real WebSocketServer
// and an http.Server that mounts the API, real HubClient / raw subscribers on loopback, and
// fetch() as the backend; then two nodes on one Redis (127.0.0.1:6379) for what must work
// across nodes. The OpenAPI document is checked in server-api-openapi.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Hub, createServerApi, type HubOptions, type Json } from '../../src/hub/index.js';
import { RedisBroker } from '../../src/hub/brokers/redis.js';
import { globMatch } from '../../src/hub/glob.js';
import { serviceCheck } from './broker-contract.js';
import { cleanupBroker, runPrefix } from './cluster-helpers.js';
import { delay, hubClient, rawClient, until } from './hub-helpers.js';
import { KEY, VERSION, call, eventually, lastLog, ok, rawExchange, refused, startApiNode, verify, type ApiNode } from './server-api-helpers.js';

// ---- one node --------------------------------------------------------------------------------------

describe('server API on one node', () => {
  let node: ApiNode;
  before(async () => {
    node = await startApiNode();
  });
  after(async () => {
    await node.close();
  });

  test('publish reaches a HubClient subscriber with the offset and epoch it answered', { timeout: 10_000 }, async () => {
    const client = hubClient(node.url, { token: 'ann' });
    try {
      const got: Array<{ data: Json; offset: number; epoch: string }> = [];
      await client.subscribe('news', (data, meta) => got.push({ data, offset: meta.offset, epoch: meta.epoch }));
      const result = await ok(node.base, 'publish', { topic: 'news', data: { headline: 'duplex 1.0' } });
      assert.equal(result['offset'], 1);
      assert.equal(typeof result['epoch'], 'string');
      await until(() => got.length === 1, 3000, 'the publication');
      assert.deepEqual(got, [{ data: { headline: 'duplex 1.0' }, offset: 1, epoch: result['epoch'] }]);
      // null is data too.
      assert.equal((await ok(node.base, 'publish', { topic: 'news', data: null }))['offset'], 2);
      await refused(node.base, 'publish', { topic: 'news' }, 400, 'E_BAD_REQUEST');
    } finally {
      await client.close();
    }
  });

  test('idempotency_key: the same key twice publishes once and answers the same offset; another key publishes', { timeout: 10_000 }, async () => {
    const client = hubClient(node.url, { token: 'ann' });
    try {
      const got: Json[] = [];
      await client.subscribe('orders', (data) => got.push(data));
      const first = await ok(node.base, 'publish', { topic: 'orders', data: 'order 1', idempotency_key: 'order-1' });
      const retry = await ok(node.base, 'publish', { topic: 'orders', data: 'order 1', idempotency_key: 'order-1' });
      assert.deepEqual(retry, first);
      const other = await ok(node.base, 'publish', { topic: 'orders', data: 'order 2', idempotency_key: 'order-2' });
      assert.equal(other['offset'], (first['offset'] as number) + 1);
      await until(() => got.length === 2, 3000, 'two publications');
      await delay(50);
      assert.deepEqual(got, ['order 1', 'order 2']);
      await refused(node.base, 'publish', { topic: 'orders', data: 1, idempotency_key: '' }, 400, 'E_BAD_REQUEST');
      await refused(node.base, 'publish', { topic: 'orders', data: 1, idempotency_key: 'k'.repeat(257) }, 400, 'E_BAD_REQUEST');
    } finally {
      await client.close();
    }
  });

  test('broadcast publishes to every topic, in order of the results; one bad topic publishes nothing', { timeout: 10_000 }, async () => {
    const client = hubClient(node.url, { token: 'ann' });
    try {
      const got: string[] = [];
      await client.subscribe('b.one', (data) => got.push(`one:${String(data)}`));
      await client.subscribe('b.two', (data) => got.push(`two:${String(data)}`));
      const result = await ok(node.base, 'broadcast', { topics: ['b.one', 'b.two'], data: 'hi' });
      const results = result['results'] as Array<Record<string, unknown>>;
      assert.deepEqual(results.map((r) => [r['topic'], r['offset']]), [['b.one', 1], ['b.two', 1]]);
      await until(() => got.length === 2, 3000, 'both publications');
      assert.deepEqual(got.sort(), ['one:hi', 'two:hi']);
      // Checked before anything is published.
      assert.match(await refused(node.base, 'broadcast', { topics: ['b.one', '$all'], data: 'x' }, 400, 'E_BAD_REQUEST'), /topics\[1\].*reserved/);
      await refused(node.base, 'broadcast', { topics: ['b.one', 'b.one'], data: 'x' }, 400, 'E_BAD_REQUEST');
      await refused(node.base, 'broadcast', { topics: [], data: 'x' }, 400, 'E_BAD_REQUEST');
      await refused(node.base, 'broadcast', { topics: Array.from({ length: 1001 }, (_, i) => `t${i}`), data: 'x' }, 400, 'E_BAD_REQUEST');
      await refused(node.base, 'broadcast', { topics: 'b.one', data: 'x' }, 400, 'E_BAD_REQUEST');
      const history = await ok(node.base, 'history', { topic: 'b.one' });
      assert.equal(history['offset'], 1, 'the refused broadcasts published nothing');
      // With a key, a retried broadcast publishes nothing again.
      const keyed = await ok(node.base, 'broadcast', { topics: ['b.one', 'b.two'], data: 'again', idempotency_key: 'bc-1' });
      const retried = await ok(node.base, 'broadcast', { topics: ['b.one', 'b.two'], data: 'again', idempotency_key: 'bc-1' });
      assert.deepEqual(retried, keyed);
      await until(() => got.length === 4, 3000, 'the keyed broadcast');
      await delay(50);
      assert.equal(got.length, 4);
    } finally {
      await client.close();
    }
  });

  test('presence and presence_stats count connections and distinct users, across a user with two connections', { timeout: 10_000 }, async () => {
    const clients = [hubClient(node.url, { token: 'ann' }), hubClient(node.url, { token: 'ann' }), hubClient(node.url, { token: 'bob' })];
    try {
      for (const client of clients) await client.subscribe('room');
      const presence = await ok(node.base, 'presence', { topic: 'room' });
      const members = presence['members'] as Array<Record<string, unknown>>;
      assert.deepEqual(members.map((m) => m['user_id']).sort(), ['ann', 'ann', 'bob']);
      assert.deepEqual(members.map((m) => m['conn_id']).sort(), clients.map((c) => c.connId).sort());
      assert.ok(members.every((m) => m['node'] === node.hub.nodeId));
      assert.deepEqual(await ok(node.base, 'presence_stats', { topic: 'room' }), { connections: 3, users: 2 });
      assert.deepEqual(await ok(node.base, 'presence_stats', { topic: 'empty-room' }), { connections: 0, users: 0 });
      await refused(node.base, 'presence', { topic: '$user:ann' }, 400, 'E_BAD_REQUEST');
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  test('history: all, since a position, limit, reverse; another epoch is incomplete', { timeout: 10_000 }, async () => {
    for (let n = 1; n <= 5; n++) await ok(node.base, 'publish', { topic: 'log', data: n });
    const all = await ok(node.base, 'history', { topic: 'log' });
    const epoch = all['epoch'] as string;
    const publications = all['publications'] as Array<{ offset: number; data: number; time: number }>;
    assert.deepEqual(publications.map((p) => p.data), [1, 2, 3, 4, 5]);
    assert.ok(publications.every((p) => Number.isInteger(p.time) && Math.abs(Date.now() - p.time) < 60_000));
    assert.equal(all['offset'], 5);
    assert.equal(all['complete'], true);
    const since = await ok(node.base, 'history', { topic: 'log', since: { offset: 3, epoch } });
    assert.deepEqual((since['publications'] as Array<{ data: number }>).map((p) => p.data), [4, 5]);
    assert.equal(since['complete'], true);
    const newest = await ok(node.base, 'history', { topic: 'log', limit: 2, reverse: true });
    assert.deepEqual((newest['publications'] as Array<{ data: number }>).map((p) => p.data), [5, 4]);
    const nulls = await ok(node.base, 'history', { topic: 'log', since: null, limit: null, reverse: null });
    assert.equal((nulls['publications'] as unknown[]).length, 5);
    const otherEpoch = await ok(node.base, 'history', { topic: 'log', since: { offset: 3, epoch: 'not-this-one' } });
    assert.equal(otherEpoch['complete'], false);
    await refused(node.base, 'history', { topic: 'log', limit: -1 }, 400, 'E_BAD_REQUEST');
    await refused(node.base, 'history', { topic: 'log', since: { offset: 'x', epoch } }, 400, 'E_BAD_REQUEST');
    await refused(node.base, 'history', { topic: 'log', reverse: 'yes' }, 400, 'E_BAD_REQUEST');
  });

  test('disconnect a user with a code: each of its connections sees the code and reason; conn_id closes one', { timeout: 10_000 }, async () => {
    const before = node.hub.stats().connections;
    const ann1 = await rawClient(node.url, { authorization: 'Bearer ann' });
    const ann2 = await rawClient(node.url, { authorization: 'Bearer ann' });
    const bob = await rawClient(node.url, { authorization: 'Bearer bob' });
    await until(() => node.hub.stats().connections === before + 3, 3000, 'three connections');
    assert.deepEqual(await ok(node.base, 'disconnect', { user: 'ann', code: 4000, reason: 'bye ann' }), {});
    assert.deepEqual(await ann1.closed, [4000, 'bye ann']);
    assert.deepEqual(await ann2.closed, [4000, 'bye ann']);
    const { result } = (await bob.request({ type: 'connect' })) as { result?: { connId: string } };
    assert.ok(result?.connId, 'bob is still connected');
    await ok(node.base, 'disconnect', { conn_id: result.connId });
    // The hub's default code: its clients do not reconnect.
    assert.deepEqual((await bob.closed)[0], 1008);
    await refused(node.base, 'disconnect', { user: 'ann', code: 1006 }, 400, 'E_BAD_REQUEST');
    await refused(node.base, 'disconnect', { user: 'ann', reason: 'x'.repeat(124) }, 400, 'E_BAD_REQUEST');
    await refused(node.base, 'disconnect', { user: 'ann', conn_id: 'a.1' }, 400, 'E_BAD_REQUEST');
    await refused(node.base, 'disconnect', {}, 400, 'E_BAD_REQUEST');
  });

  test('server-side subscribe: the client then receives the topic; unsubscribe stops it', { timeout: 10_000 }, async () => {
    const client = hubClient(node.url, { token: 'cat' });
    try {
      const got: string[] = [];
      client.on('message', (data, meta) => got.push(`${meta.topic}:${String(data)}`));
      await client.subscribe('marker');
      assert.deepEqual(await ok(node.base, 'subscribe', { user: 'cat', topic: 'alerts' }), {});
      // The command reached the node; the subscription is made there: wait until the topic has its subscriber.
      await until(() => node.hub.stats().topics >= 2, 3000, 'the server-side subscription');
      await ok(node.base, 'publish', { topic: 'alerts', data: 'fire' });
      await until(() => got.includes('alerts:fire'), 3000, 'the alert');
      assert.deepEqual(await ok(node.base, 'unsubscribe', { conn_id: client.connId, topic: 'alerts' }), {});
      await eventually(async () => ((await ok(node.base, 'topics', { pattern: 'alerts' }))['topics'] as unknown[]).length === 0, 3000, 'the unsubscription');
      await ok(node.base, 'publish', { topic: 'alerts', data: 'second fire' });
      await ok(node.base, 'publish', { topic: 'marker', data: 'after' });
      await until(() => got.includes('marker:after'), 3000, 'the marker');
      assert.deepEqual(got, ['alerts:fire', 'marker:after']);
      await refused(node.base, 'subscribe', { user: 'cat', topic: '$all' }, 400, 'E_BAD_REQUEST');
      await refused(node.base, 'subscribe', { user: 'cat' }, 400, 'E_BAD_REQUEST');
    } finally {
      await client.close();
    }
  });

  test('topics lists topics with subscribers; a pattern filters them, in linear time', { timeout: 10_000 }, async () => {
    const long = 'a'.repeat(256);
    const clients = [hubClient(node.url, { token: 'x' }), hubClient(node.url, { token: 'y' })];
    try {
      await clients[0]!.subscribe('chat.1');
      await clients[1]!.subscribe('chat.1');
      await clients[0]!.subscribe('chat.22');
      await clients[0]!.subscribe('weather');
      await clients[0]!.subscribe(long);
      const all = await ok(node.base, 'topics', {});
      assert.equal(all['nodes'], 1);
      assert.equal(all['partial'], false);
      const counts = Object.fromEntries((all['topics'] as Array<{ topic: string; subscribers: number }>).map((t) => [t.topic, t.subscribers]));
      assert.equal(counts['chat.1'], 2);
      assert.equal(counts['weather'], 1);
      const chats = await ok(node.base, 'topics', { pattern: 'chat.*' });
      assert.deepEqual(chats['topics'], [{ topic: 'chat.1', subscribers: 2 }, { topic: 'chat.22', subscribers: 1 }]);
      const oneChar = await ok(node.base, 'topics', { pattern: 'chat.?' });
      assert.deepEqual((oneChar['topics'] as Array<{ topic: string }>).map((t) => t.topic), ['chat.1']);
      // A pattern that a backtracking regex would take minutes on.
      const started = Date.now();
      const none = await ok(node.base, 'topics', { pattern: '*a*a*a*a*a*a*a*a*b' });
      assert.deepEqual(none['topics'], []);
      assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
      await refused(node.base, 'topics', { pattern: 7 }, 400, 'E_BAD_REQUEST');
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  test('info: this node, the live nodes, the version', { timeout: 10_000 }, async () => {
    const info = await ok(node.base, 'info', {});
    assert.equal(info['node'], node.hub.nodeId);
    assert.equal(info['version'], VERSION);
    const nodes = info['nodes'] as Array<Record<string, unknown>>;
    assert.equal(nodes.length, 1);
    assert.equal(nodes[0]!['id'], node.hub.nodeId);
    assert.equal(nodes[0]!['broker'], 'memory');
  });

  test('the key: missing, wrong, another scheme → 401 with WWW-Authenticate; right (any case of the scheme) → 200; never logged', { timeout: 10_000 }, async () => {
    const body = { topic: 'k', data: 1 };
    for (const authorization of ['', 'apikey wrong-key', `Bearer ${KEY}`, `apikey ${KEY} extra`, `apikey ${KEY.slice(0, -1)}`]) {
      const answer = await call(node.base, 'publish', body, { authorization });
      assert.equal(answer.status, 401, authorization);
      assert.equal(answer.headers.get('www-authenticate'), 'apikey');
      assert.equal((answer.body['error'] as { code: string }).code, 'E_UNAUTHORIZED');
    }
    const line = lastLog(node, 401);
    assert.equal(line.level, 'warn');
    assert.equal(line.fields['method'], 'publish');
    assert.equal(line.fields['remote'], '127.0.0.1');
    assert.equal((await call(node.base, 'publish', body, { authorization: `ApiKey ${KEY}` })).status, 200);
    assert.ok(!JSON.stringify(node.logs).includes(KEY.slice(0, 10)), 'no log line holds the key');
  });

  test('HTTP refusals: 404 unknown method, 405 with Allow, 415, 413 (declared and sent), malformed JSON, not an object', { timeout: 10_000 }, async () => {
    await refused(node.base, 'nope', {}, 404, 'E_NOT_FOUND');
    const get = await fetch(`${node.base}/api/publish`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.equal(((await get.json()) as { error: { code: string } }).error.code, 'E_METHOD_NOT_ALLOWED');
    const postDoc = await fetch(`${node.base}/api/openapi.json`, { method: 'POST' });
    assert.equal(postDoc.status, 405);
    assert.equal(postDoc.headers.get('allow'), 'GET, HEAD');
    await refused(node.base, 'publish', { topic: 'a', data: 1 }, 415, 'E_UNSUPPORTED_MEDIA_TYPE', { 'content-type': 'text/plain' });
    await refused(node.base, 'publish', { topic: 'a', data: 1 }, 415, 'E_UNSUPPORTED_MEDIA_TYPE', { 'content-type': 'application/json; charset=latin1' });
    assert.equal((await call(node.base, 'publish', { topic: 'a', data: 1 }, { 'content-type': 'Application/JSON; charset="UTF-8"' })).status, 200);
    await refused(node.base, 'publish', '{"topic": "a", ', 400, 'E_BAD_REQUEST');
    await refused(node.base, 'publish', '[1, 2]', 400, 'E_BAD_REQUEST');
    await refused(node.base, 'publish', '', 400, 'E_BAD_REQUEST');
    // Paths outside the prefix are the server's own.
    const outside = await fetch(`${node.base}/apix/publish`, { method: 'POST' });
    assert.equal(await outside.text(), 'not the API');
    // 413: a declared length past the limit is refused before the body is read, and the rest never is.
    const head = (length: string): string =>
      `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: apikey ${KEY}\r\nContent-Type: application/json\r\n${length}\r\n\r\n`;
    const piece = Buffer.alloc(64 * 1024, 0x20);
    const declared = await rawExchange(node.port, head('Content-Length: 104857600'), [piece]);
    assert.deepEqual(declared, { status: 'HTTP/1.1 413 Payload Too Large', closed: true });
    // A chunked body is counted as it comes: 1.5 MiB sent of an endless one.
    const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
    const streamed = await rawExchange(node.port, head('Transfer-Encoding: chunked'), Array.from({ length: 24 }, () => chunk));
    assert.deepEqual(streamed, { status: 'HTTP/1.1 413 Payload Too Large', closed: true });
    const tooLarge = lastLog(node, 413);
    assert.equal(tooLarge.fields['code'], 'E_TOO_LARGE');
  });

  test('bodies: data 32 levels deep is accepted, 33 is not; reserved and invalid topics are refused', { timeout: 10_000 }, async () => {
    const nest = (depth: number): Json => (depth === 0 ? 1 : [nest(depth - 1)]);
    assert.equal((await call(node.base, 'publish', { topic: 'deep', data: nest(32) })).status, 200);
    assert.match(await refused(node.base, 'publish', { topic: 'deep', data: nest(33) }, 400, 'E_BAD_REQUEST'), /nested deeper/);
    // Deep text that JSON.parse reads without a stack overflow.
    await refused(node.base, 'publish', `{"topic":"deep","data":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, 400, 'E_BAD_REQUEST');
    for (const topic of ['$all', '$user:ann', '$ctl']) assert.match(await refused(node.base, 'publish', { topic, data: 1 }, 400, 'E_BAD_REQUEST'), /reserved/);
    for (const topic of ['', 'a\nb', 'x'.repeat(257), 5, null]) await refused(node.base, 'publish', { topic, data: 1 }, 400, 'E_BAD_REQUEST');
    for (const method of ['presence', 'presence_stats', 'history']) await refused(node.base, method, { topic: '$all' }, 400, 'E_BAD_REQUEST');
  });
});

// ---- configurations ----------------------------------------------------------------------------

describe('server API configurations and failures', () => {
  test('no keys: the API is off, every path under the prefix answers 404', { timeout: 10_000 }, async () => {
    const node = await startApiNode({ anonymous: true }, { keys: [] });
    try {
      assert.match(await refused(node.base, 'publish', { topic: 'a', data: 1 }, 404, 'E_NOT_FOUND'), /server API is off/);
      assert.equal((await fetch(`${node.base}/api/openapi.json`)).status, 404);
      assert.equal(node.hub.stats().publications, 0);
    } finally {
      await node.close();
    }
  });

  test('key rotation: every configured key is accepted, others are not; a custom prefix', { timeout: 10_000 }, async () => {
    const node = await startApiNode({ anonymous: true }, { keys: ['old-key', 'new-key'], prefix: '/v1/' });
    try {
      const post = (key: string): Promise<Response> =>
        fetch(`${node.base}/v1/publish`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `apikey ${key}` }, body: '{"topic":"r","data":1}' });
      assert.equal((await post('old-key')).status, 200);
      assert.equal((await post('new-key')).status, 200);
      assert.equal((await post('newer-key')).status, 401);
      assert.equal(await (await fetch(`${node.base}/api/publish`, { method: 'POST' })).text(), 'not the API');
      const doc = (await (await fetch(`${node.base}/v1/openapi.json`)).json()) as { servers: Array<{ url: string }> };
      assert.deepEqual(doc.servers, [{ url: '/v1' }]);
    } finally {
      await node.close();
    }
  });

  test('options are checked', { timeout: 10_000 }, () => {
    const hub = new Hub({ anonymous: true });
    assert.throws(() => createServerApi(hub, { keys: [''] }), TypeError);
    assert.throws(() => createServerApi(hub, { keys: ['a b'] }), TypeError);
    assert.throws(() => createServerApi(hub, { keys: ['clé-non-ascii'] }), TypeError);
    assert.throws(() => createServerApi(hub, { keys: ['k'], prefix: '/api' }), TypeError);
    assert.throws(() => createServerApi(hub, { keys: ['k'], maxBodySize: 0 }), RangeError);
  });

  test('a broker that is down: 503 E_UNAVAILABLE, logged as an error', { timeout: 10_000 }, async () => {
    const node = await startApiNode({ anonymous: true });
    try {
      await node.hub.broker.close();
      await refused(node.base, 'publish', { topic: 'a', data: 1 }, 503, 'E_UNAVAILABLE');
      const line = lastLog(node, 503);
      assert.equal(line.level, 'error');
      assert.match(String(line.fields['err']), /closed/);
      const broadcast = await ok(node.base, 'broadcast', { topics: ['a', 'b'], data: 1 });
      assert.deepEqual((broadcast['results'] as Array<{ error: { code: string } }>).map((r) => r.error.code), ['E_UNAVAILABLE', 'E_UNAVAILABLE']);
    } finally {
      await node.close();
    }
  });

  test('a bug behind a method: 500 E_INTERNAL, the detail logged, not answered', { timeout: 10_000 }, async () => {
    const node = await startApiNode({ anonymous: true }, {}, (hub) => ({
      nodeId: hub.nodeId,
      publish: (...args) => hub.publish(...args),
      presence: (...args) => hub.presence(...args),
      presenceStats: (...args) => hub.presenceStats(...args),
      history: (...args) => hub.history(...args),
      disconnect: (...args) => hub.disconnect(...args),
      subscribeConnections: (...args) => hub.subscribeConnections(...args),
      unsubscribeConnections: (...args) => hub.unsubscribeConnections(...args),
      topics: (...args) => hub.topics(...args),
      nodes: () => {
        throw new TypeError('secret detail');
      },
    }));
    try {
      const message = await refused(node.base, 'info', {}, 500, 'E_INTERNAL');
      assert.equal(message, 'internal error');
      const line = lastLog(node, 500);
      assert.equal(line.level, 'error');
      assert.equal(line.fields['err'], 'secret detail');
      assert.equal((await call(node.base, 'publish', { topic: 'a', data: 1 })).status, 200);
    } finally {
      await node.close();
    }
  });

  test('globMatch: stars, question marks, literals, code points', { timeout: 10_000 }, () => {
    const cases: Array<[string, string, boolean]> = [
      ['*', '', true],
      ['*', 'anything', true],
      ['a*', 'abc', true],
      ['*c', 'abc', true],
      ['a*c', 'ac', true],
      ['a*c', 'ab', false],
      ['a?c', 'abc', true],
      ['a?c', 'ac', false],
      ['a.b', 'aXb', false],
      ['chat.*.typing', 'chat.42.typing', true],
      ['chat.*.typing', 'chat.42.read', false],
      ['?', '😀', true],
      ['**a**', 'xxaxx', true],
      ['*a*b', 'aaaa', false],
      ['a*b*c', 'abxbxc', true],
    ];
    for (const [pattern, text, expected] of cases) assert.equal(globMatch(pattern, text), expected, `${pattern} ~ ${text}`);
  });
});

// ---- two nodes on one Redis ---------------------------------------------------------------------

const REDIS = 'redis://127.0.0.1:6379';
const skipRedis = await serviceCheck('Redis', '127.0.0.1', 6379, '.ci/run starts it (redis-server --daemonize yes --port 6379) when installed');

describe('server API across two nodes on one Redis', { skip: skipRedis }, () => {
  const prefix = runPrefix('api');
  let a: ApiNode;
  let b: ApiNode;
  const options = (nodeId: string): HubOptions => ({
    nodeId,
    auth: { verify },
    nodeAnnounceInterval: 200,
    broker: new RedisBroker({ url: REDIS, prefix: `${prefix}:`, presenceRefresh: 200, presenceTtl: 1000, metaTtl: 60_000 }),
  });
  before(async () => {
    a = await startApiNode(options(`${prefix}-A`));
    b = await startApiNode(options(`${prefix}-B`));
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await cleanupBroker(REDIS, prefix);
  });

  test('a publish through node A\'s API reaches a subscriber on node B; a retried key publishes once across nodes', { timeout: 10_000 }, async () => {
    const client = hubClient(b.url, { token: 'ann' });
    try {
      const got: Json[] = [];
      await client.subscribe('cross', (data) => got.push(data));
      const first = await ok(a.base, 'publish', { topic: 'cross', data: 'from A', idempotency_key: 'x-1' });
      await until(() => got.length === 1, 3000, 'delivery on B');
      // The retry lands on the other node: the broker remembers the key, not the node.
      assert.deepEqual(await ok(b.base, 'publish', { topic: 'cross', data: 'from A', idempotency_key: 'x-1' }), first);
      await ok(b.base, 'publish', { topic: 'cross', data: 'marker' });
      await until(() => got.length === 2, 3000, 'the marker');
      assert.deepEqual(got, ['from A', 'marker']);
    } finally {
      await client.close();
    }
  });

  test('info and topics through A see both nodes; disconnect through A closes a connection on B', { timeout: 10_000 }, async () => {
    await eventually(async () => ((await ok(a.base, 'info', {}))['nodes'] as unknown[]).length === 2, 5000, 'A knows B');
    const info = await ok(a.base, 'info', {});
    assert.deepEqual((info['nodes'] as Array<{ id: string; broker: string }>).map((n) => [n.id, n.broker]), [[a.hub.nodeId, 'redis'], [b.hub.nodeId, 'redis']]);
    const raw = await rawClient(b.url, { authorization: 'Bearer zoe' });
    await raw.request({ type: 'subscribe', topic: 'on-b' });
    const topics = await ok(a.base, 'topics', { pattern: 'on-*' });
    assert.deepEqual(topics, { topics: [{ topic: 'on-b', subscribers: 1 }], nodes: 2, partial: false });
    const presence = await ok(a.base, 'presence', { topic: 'on-b' });
    assert.deepEqual((presence['members'] as Array<{ user_id: string; node: string }>).map((m) => [m.user_id, m.node]), [['zoe', b.hub.nodeId]]);
    await ok(a.base, 'disconnect', { user: 'zoe', code: 4100, reason: 'moved' });
    assert.deepEqual(await raw.closed, [4100, 'moved']);
  });

  test('server-side subscribe through B subscribes a connection on A', { timeout: 10_000 }, async () => {
    const client = hubClient(a.url, { token: 'max' });
    try {
      const got: string[] = [];
      client.on('message', (data, meta) => got.push(`${meta.topic}:${String(data)}`));
      await client.connected();
      await ok(b.base, 'subscribe', { user: 'max', topic: 'pushed' });
      await eventually(async () => ((await ok(b.base, 'topics', { pattern: 'pushed' }))['topics'] as unknown[]).length === 1, 3000, 'the subscription on A');
      await ok(b.base, 'publish', { topic: 'pushed', data: 'hello' });
      await until(() => got.length === 1, 3000, 'the message');
      assert.deepEqual(got, ['pushed:hello']);
    } finally {
      await client.close();
    }
  });
});
