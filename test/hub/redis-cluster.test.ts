// The Redis broker on a Redis Cluster of our own (3 masters, no replicas; started here on free
// ports, stopped by PID at the end): the broker contract suite over sharded pub/sub, the slot
// layout (every key and channel of a topic in one slot, reserved topics included, the channel
// SSUBSCRIBEd on its slot's master), classic pub/sub as the fallback, a dead node's presence
// removed within the bound (a real process, SIGKILLed), and two hubs on the cluster: cross-node
// delivery, presence, recovery, and the reserved topics ($user:…, $node:…, $all, $ctl).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import type { HubClient, HubIdentity, HubMessageMeta, Json, PresenceMember } from '../../src/hub/index.js';
import { RedisBroker, type RedisBrokerOptions } from '../../src/hub/brokers/redis.js';
import { keySlot, topicHashTag } from '../../src/hub/brokers/redis-slots.js';
import { parseRedisUrl, redact } from '../../src/hub/brokers/redis-url.js';
import { brokerContract, RecordingNode, uniqueTopic } from './broker-contract.js';
import { Balancer, killAll, startChild } from './cluster-helpers.js';
import { hubClient, startHub, until, type HubServer } from './hub-helpers.js';
import { redisBinaries, redisCommand, startRedisCluster, type RedisClusterHandle, type RedisProcess } from './redis-cluster-helpers.js';

const binaries = redisBinaries();
const skip = 'skip' in binaries ? binaries.skip : undefined;

/** Liveness bounds: short, so the dead-node case is quick. */
const PRESENCE_REFRESH = 200;
const PRESENCE_TTL = 1000;

describe('redis URLs and slots (no server needed)', () => {
  test('the three URL forms', () => {
    assert.deepEqual(parseRedisUrl('redis://127.0.0.1:6379/2'), { kind: 'single', url: 'redis://127.0.0.1:6379/2' });
    assert.deepEqual(parseRedisUrl('redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002'), {
      kind: 'cluster',
      cluster: { rootNodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 6379 }, { host: '::1', port: 7002 }] },
    });
    assert.deepEqual(parseRedisUrl('rediss+cluster://app:s%40cret@h:7000'), {
      kind: 'cluster',
      cluster: { rootNodes: [{ host: 'h', port: 7000 }], username: 'app', password: 's@cret', tls: true },
    });
    assert.deepEqual(parseRedisUrl('redis+sentinel://:pw@s1:26380,s2/my%20master'), {
      kind: 'sentinel',
      sentinel: { name: 'my master', sentinelRootNodes: [{ host: 's1', port: 26380 }, { host: 's2', port: 26379 }], password: 'pw' },
    });
    assert.throws(() => parseRedisUrl('redis+sentinel://s1:26379'), /ends with the master's name/);
    assert.throws(() => parseRedisUrl('redis+cluster://h:7000/3'), /has no path/);
    assert.throws(() => parseRedisUrl('redis+cluster://h:notaport'), /not host:port/);
    assert.throws(() => parseRedisUrl('memcached://h'), /must start with redis:\/\//);
    assert.equal(redact('redis+cluster://u:secret@h:1,h:2'), 'redis+cluster://u:***@h:1,h:2');
    assert.throws(() => new RedisBroker({ url: 'redis://x', cluster: { rootNodes: ['h:1'] } }), /one of url, cluster and sentinel/);
  });

  test('keySlot: the cluster specification\'s CRC16 and hash tags', () => {
    // The specification's check value: CRC16/XMODEM("123456789") = 0x31C3 = 12739.
    assert.equal(keySlot('123456789'), 12739);
    assert.equal(keySlot('foo{bar}baz'), keySlot('bar'));
    assert.equal(keySlot('foo{}{bar}'), keySlot('foo{}{bar}'), 'an empty tag hashes the whole key');
    assert.notEqual(keySlot('a{}b'), keySlot(''), 'empty tag: the whole key');
    assert.equal(topicHashTag('chat'), '{chat}');
    assert.equal(topicHashTag('}odd'), '{\u0001}}odd', 'never an empty tag');
    assert.equal(keySlot(`x${topicHashTag('}odd')}:meta`), keySlot(`y${topicHashTag('}odd')}:stream`));
  });
});

describe('redis broker on a Redis Cluster (3 masters)', { skip, timeout: 90_000 }, () => {
  let cluster: RedisClusterHandle;
  const brokers: RedisBroker[] = [];
  const options = (extra: Partial<RedisBrokerOptions> = {}): RedisBrokerOptions => ({
    cluster: { rootNodes: cluster.rootNodes },
    prefix: 'duplex-test:',
    presenceRefresh: PRESENCE_REFRESH,
    presenceTtl: PRESENCE_TTL,
    metaTtl: 60_000,
    connectTimeout: 2000,
    ...extra,
  });
  const broker = (extra: Partial<RedisBrokerOptions> = {}): RedisBroker => {
    const b = new RedisBroker(options(extra));
    brokers.push(b);
    return b;
  };

  /** The resharding steps of the cluster tutorial, for one slot; the number of keys moved. */
  const migrateSlot = async (slot: number, source: RedisProcess, target: RedisProcess): Promise<number> => {
    const [sourceId, targetId] = [String(await redisCommand(source.port, ['CLUSTER', 'MYID'])), String(await redisCommand(target.port, ['CLUSTER', 'MYID']))];
    await redisCommand(target.port, ['CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', sourceId]);
    await redisCommand(source.port, ['CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', targetId]);
    const keys = (await redisCommand(source.port, ['CLUSTER', 'GETKEYSINSLOT', String(slot), '1000'])) as string[];
    if (keys.length > 0) await redisCommand(source.port, ['MIGRATE', '127.0.0.1', String(target.port), '', '0', '5000', 'KEYS', ...keys]);
    for (const n of [target, source, ...cluster.nodes.filter((x) => x !== source && x !== target)]) {
      await redisCommand(n.port, ['CLUSTER', 'SETSLOT', String(slot), 'NODE', targetId]);
    }
    return keys.length;
  };

  before(async () => {
    cluster = await startRedisCluster(binaries as { server: string; cli: string }, { masters: 3 });
  });

  after(async () => {
    await Promise.allSettled(brokers.map((b) => b.close()));
    await cluster?.stop();
    await killAll();
  });

  brokerContract('redis cluster, sharded pub/sub', async (extra) => {
    const a = new RedisBroker(options(extra));
    const b = new RedisBroker(options(extra));
    return {
      brokers: [a, b],
      async cleanup() {
        await Promise.all([a.close(), b.close()]);
      },
    };
  });

  test('keySlot agrees with CLUSTER KEYSLOT, for the keys of reserved and odd topics', async () => {
    const port = cluster.nodes[0]!.port;
    const topics = ['$all', '$ctl', '$ctl:abc', '$user:alice', '$node:n1', 'chat:{room}', '}odd', 'héllo ✓', 'a'.repeat(256)];
    for (const topic of topics) {
      for (const key of [`duplex:${topicHashTag(topic)}:meta`, `duplex:${topicHashTag(topic)}:pub`, `duplex:pub:${topic}`, topic]) {
        assert.equal(keySlot(key), Number(await redisCommand(port, ['CLUSTER', 'KEYSLOT', key])), key);
      }
    }
  });

  test('every key and channel of a topic in one slot: reserved topics publish, keep history and deliver; channels are SSUBSCRIBEd on their slot\'s master', async () => {
    const node = new RecordingNode(`layout-${uniqueTopic('n')}`);
    const b = broker();
    await b.start(node);
    const suffix = uniqueTopic('x').slice(7);
    const topics = ['$all', '$ctl', `$ctl:${suffix}`, `$user:${suffix}`, `$node:${suffix}`, `chat:{${suffix}}`, `}odd${suffix}`, `room-${suffix}`];
    for (const topic of topics) await b.subscribe(topic);
    for (const topic of topics) {
      const p = await b.publish(topic, JSON.stringify(topic), { size: 10, ttl: 60_000 }, 'conn-1', `idem-${topic}`);
      assert.deepEqual(await b.publish(topic, '"again"', { size: 10, ttl: 60_000 }, 'conn-1', `idem-${topic}`), p, 'the idempotency record is in the topic\'s slot too');
      const slice = await b.history(topic, p.offset - 1, p.epoch);
      assert.deepEqual(slice.publications.map((x) => x.data), [JSON.stringify(topic)]);
      await b.join(topic, { connId: `c-${topic}`, node: node.id });
    }
    await node.waitFor('a publication on every topic', () => topics.every((t) => node.on(t).length === 1));
    for (const topic of topics) assert.deepEqual((await b.presence(topic)).map((m) => m.connId), [`c-${topic}`]);
    // Each channel sits on its own slot's master, and Redis shows it there as a shard channel.
    const placed = new Map<string, string>();
    for (const [address, channels] of b.subscriptions) for (const channel of channels) placed.set(channel, address);
    assert.equal(placed.size, topics.length);
    const masters = new Set<string>();
    for (const [channel, address] of placed) {
      const master = await cluster.masterOf(keySlot(channel));
      assert.equal(address, `127.0.0.1:${master.port}`, `${channel} on its slot's master`);
      masters.add(address);
      const [, count] = (await redisCommand(master.port, ['PUBSUB', 'SHARDNUMSUB', channel])) as [string, number];
      assert.equal(count, 1, `${channel}: one shard subscriber`);
      assert.deepEqual(await redisCommand(master.port, ['PUBSUB', 'CHANNELS', 'duplex-test:*']), [], 'no classic channels');
    }
    assert.ok(masters.size >= 2, `topics spread over masters: ${[...masters].join(', ')}`);
    for (const topic of topics) await b.leave(topic, { connId: `c-${topic}`, node: node.id });
  });

  test('sharded: false uses classic PUBLISH/SUBSCRIBE, all on one node, and delivers across the cluster', async () => {
    const a = broker({ cluster: { rootNodes: cluster.rootNodes, sharded: false } });
    const b = broker({ cluster: { rootNodes: cluster.rootNodes.slice(1), sharded: false } });
    const nodeA = new RecordingNode(`classic-A-${uniqueTopic('n')}`);
    const nodeB = new RecordingNode(`classic-B-${uniqueTopic('n')}`);
    await a.start(nodeA);
    await b.start(nodeB);
    const topics = [uniqueTopic('classic1'), uniqueTopic('classic2'), uniqueTopic('classic3')];
    for (const topic of topics) await a.subscribe(topic);
    assert.equal(a.subscriptions.size, 1, 'one connection for every classic channel');
    const [address, channels] = [...a.subscriptions][0]!;
    assert.deepEqual([...channels].sort(), topics.map((t) => `duplex-test:pub:${t}`).sort());
    const port = Number(address.split(':')[1]);
    assert.equal(((await redisCommand(port, ['PUBSUB', 'CHANNELS', 'duplex-test:pub:*'])) as string[]).length, 3);
    // The topics' keys live on different masters; the cluster carries each PUBLISH to every node.
    for (const topic of topics) for (let i = 1; i <= 3; i++) await b.publish(topic, String(i), { size: 10, ttl: 60_000 });
    await nodeA.waitFor('3 × 3 publications', () => topics.every((t) => nodeA.on(t).length === 3));
    for (const topic of topics) assert.deepEqual(nodeA.on(topic).map((p) => p.offset), [1, 2, 3]);
    // Classic channels live on slot 0's master. When slot 0 moves, nobody says so (no
    // SUNSUBSCRIBE for a classic channel): the subscriber's own check of the slot map finds out.
    const target = cluster.nodes.find((n) => n.port !== port)!;
    await migrateSlot(0, cluster.nodes.find((n) => n.port === port)!, target);
    await nodeA.waitFor('onReconnect after slot 0 moved', () => nodeA.reconnects === 1, 5000);
    assert.deepEqual([...a.subscriptions.keys()], [`127.0.0.1:${target.port}`]);
    await b.publish(topics[0]!, '4', { size: 10, ttl: 60_000 });
    await nodeA.waitFor('publication 4', () => nodeA.on(topics[0]!).length === 4);
  });

  test('a sharded subscriber connection killed (CLIENT KILL): onReconnect, and delivery resumes on the same master', async () => {
    const a = broker();
    const b = broker();
    const nodeA = new RecordingNode(`kill-A-${uniqueTopic('n')}`);
    const nodeB = new RecordingNode(`kill-B-${uniqueTopic('n')}`);
    await a.start(nodeA);
    await b.start(nodeB);
    const topic = uniqueTopic('killed');
    await b.subscribe(topic);
    await a.publish(topic, '1', { size: 10, ttl: 60_000 });
    await nodeB.waitFor('publication 1', () => nodeB.on(topic).length === 1);
    const master = await cluster.masterOf(keySlot(`duplex-test:${topicHashTag(topic)}:pub`));
    const list = String(await redisCommand(master.port, ['CLIENT', 'LIST', 'TYPE', 'pubsub']));
    const line = list.split('\n').find((l) => l.includes(` name=${b.subscriberName} `));
    assert.ok(line, `CLIENT LIST on the slot's master shows ${b.subscriberName}`);
    assert.equal(await redisCommand(master.port, ['CLIENT', 'KILL', 'ID', /\bid=(\d+)/.exec(line)![1]!]), 1);
    await nodeB.waitFor('onReconnect', () => nodeB.reconnects === 1);
    assert.deepEqual(nodeB.states, ['connected', 'disconnected', 'connected']);
    await a.publish(topic, '2', { size: 10, ttl: 60_000 });
    await nodeB.waitFor('publication 2', () => nodeB.on(topic).length === 2);
    assert.deepEqual(nodeB.on(topic).map((p) => p.offset), [1, 2]);
  });

  test('the topic\'s slot migrated to another master (resharding): Redis SUNSUBSCRIBEs, the subscription follows, history moves with the keys', async () => {
    const a = broker();
    const b = broker();
    const nodeA = new RecordingNode(`move-A-${uniqueTopic('n')}`);
    const nodeB = new RecordingNode(`move-B-${uniqueTopic('n')}`);
    await a.start(nodeA);
    await b.start(nodeB);
    const topic = uniqueTopic('moved');
    await b.subscribe(topic);
    for (let i = 1; i <= 3; i++) await a.publish(topic, String(i), { size: 10, ttl: 60_000 });
    await nodeB.waitFor('3 publications', () => nodeB.on(topic).length === 3);
    const slot = keySlot(`duplex-test:${topicHashTag(topic)}:pub`);
    const source = await cluster.masterOf(slot);
    const target = cluster.nodes.find((n) => n !== source)!;
    const moved = await migrateSlot(slot, source, target);
    assert.ok(moved >= 2, 'the topic\'s meta and stream moved with the slot');
    await nodeB.waitFor('onReconnect after the slot moved', () => nodeB.reconnects === 1, 5000);
    assert.deepEqual(b.subscriptions.get(`127.0.0.1:${target.port}`), [`duplex-test:${topicHashTag(topic)}:pub`]);
    const p4 = await a.publish(topic, '4', { size: 10, ttl: 60_000 });
    assert.equal(p4.offset, 4, 'the offset counter moved with the slot');
    await nodeB.waitFor('publication 4 from the new master', () => nodeB.on(topic).length === 4);
    assert.deepEqual(nodeB.on(topic).map((p) => p.offset), [1, 2, 3, 4]);
    assert.deepEqual((await b.history(topic, 0, p4.epoch)).publications.map((p) => p.data), ['1', '2', '3', '4']);
    assert.equal(nodeB.states.at(-1), 'connected');
  });

  test('a node killed with SIGKILL: its members leave presence() within presenceTtl and their leaves are announced within ttl + refresh', async () => {
    const prefix = 'duplex-test:';
    const watcher = broker();
    const nodeW = new RecordingNode(`watcher-${uniqueTopic('n')}`);
    await watcher.start(nodeW);
    const topics = [uniqueTopic('dead1'), uniqueTopic('dead2'), uniqueTopic('dead3')];
    for (const topic of topics) {
      await watcher.subscribe(topic);
      await watcher.join(topic, { connId: `w-${topic}`, node: nodeW.id });
    }
    const doomedId = `doomed-${uniqueTopic('n')}`;
    const moduleUrl = pathToFileURL(new URL('../../src/hub/brokers/redis.js', import.meta.url).pathname).href;
    const code = `
      import { RedisBroker } from ${JSON.stringify(moduleUrl)};
      const broker = new RedisBroker(JSON.parse(process.env.DUPLEX_OPTIONS));
      const id = process.env.DUPLEX_NODE;
      await broker.start({ id, onPublication() {}, onPresence() {}, onReconnect() {} });
      for (const topic of JSON.parse(process.env.DUPLEX_TOPICS)) await broker.join(topic, { connId: id + '.1', node: id, userId: 'doomed' });
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);
    `;
    const child = startChild(`doomed broker ${doomedId}`, process.execPath, ['--input-type=module', '-e', code], {
      DUPLEX_OPTIONS: JSON.stringify({ cluster: { rootNodes: cluster.rootNodes }, prefix, presenceRefresh: PRESENCE_REFRESH, presenceTtl: PRESENCE_TTL }),
      DUPLEX_NODE: doomedId,
      DUPLEX_TOPICS: JSON.stringify(topics),
    });
    await until(() => child.output().includes('ready'), 10_000, `the doomed broker ready: ${child.output()}`);
    for (const topic of topics) {
      assert.deepEqual((await watcher.presence(topic)).map((m) => m.node).sort(), [doomedId, nodeW.id].sort());
    }
    const killedAt = performance.now();
    child.process.kill('SIGKILL');
    await child.exited;
    let listGone = Infinity;
    for (;;) {
      const lists = await Promise.all(topics.map((t) => watcher.presence(t)));
      if (lists.every((l) => l.every((m) => m.node !== doomedId))) {
        listGone = performance.now() - killedAt;
        break;
      }
      if (performance.now() - killedAt > 10 * PRESENCE_TTL) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const leavesOf = (): PresenceMember[] => nodeW.presenceEvents.filter((e) => e.kind === 'leave' && e.member.node === doomedId).map((e) => e.member);
    await nodeW.waitFor('the doomed node\'s leaves', () => leavesOf().length === topics.length, 10 * PRESENCE_TTL);
    const leavesAt = performance.now() - killedAt;
    console.log(
      `[redis cluster] SIGKILLed node: presence list without it after ${listGone.toFixed(0)} ms, leaves announced after ${leavesAt.toFixed(0)} ms ` +
        `(presenceTtl ${PRESENCE_TTL} ms, presenceRefresh ${PRESENCE_REFRESH} ms)`,
    );
    // Bounded, with room for a CI machine whose cores are busy (timers then fire late): on a
    // quiet machine the leaves come within a few ms of ttl + refresh (993–1013 ms measured).
    const slack = 2 * PRESENCE_TTL;
    assert.ok(listGone <= PRESENCE_TTL + slack, `list cleared after ${listGone} ms`);
    assert.ok(leavesAt <= PRESENCE_TTL + PRESENCE_REFRESH + slack, `leaves after ${leavesAt} ms`);
    assert.deepEqual(leavesOf()[0], { connId: `${doomedId}.1`, node: doomedId, userId: 'doomed' }, 'the member as it joined (no incarnation)');
    await new Promise((resolve) => setTimeout(resolve, 2 * PRESENCE_REFRESH));
    assert.equal(leavesOf().length, topics.length, 'each leave announced once');
    for (const topic of topics) assert.deepEqual((await watcher.presence(topic)).map((m) => m.node), [nodeW.id]);
    // Nothing of the dead node stays behind: its liveness record, incarnation and topic index.
    let leftovers = 0;
    for (const n of cluster.nodes) {
      const keys = (await redisCommand(n.port, ['KEYS', `${prefix}node:${doomedId}:*`])) as string[];
      leftovers += keys.length;
    }
    assert.equal(leftovers, 0, 'the dead node\'s topic index was removed');
    const nodesMaster = await cluster.masterOf(keySlot(`${prefix}nodes`));
    assert.equal(await redisCommand(nodesMaster.port, ['ZSCORE', `${prefix}nodes`, doomedId]), null);
    assert.equal(await redisCommand(nodesMaster.port, ['HGET', `{${prefix}nodes}:incarnations`, doomedId]), null);
  });

  describe('two hubs on the cluster', () => {
    let hubA: HubServer;
    let hubB: HubServer;
    const clients: HubClient[] = [];
    const balancers: Balancer[] = [];
    const client = async (url: string, user: string): Promise<HubClient> => {
      const c = hubClient(url, { token: user, requestTimeout: 5000 });
      clients.push(c);
      await c.connected();
      return c;
    };

    before(async () => {
      const hubOptions = (nodeId: string) => ({
        nodeId,
        broker: new RedisBroker({ url: `redis+cluster://${cluster.rootNodes.join(',')}`, prefix: 'duplex-hubs:', presenceRefresh: PRESENCE_REFRESH, presenceTtl: PRESENCE_TTL }),
        auth: { verify: (token: string): HubIdentity => ({ id: token, info: { name: token } }) },
        nodeAnnounceInterval: 200,
      });
      [hubA, hubB] = await Promise.all([startHub(hubOptions('hub-A')), startHub(hubOptions('hub-B'))]);
    });

    after(async () => {
      await Promise.allSettled(clients.map((c) => c.close()));
      await Promise.allSettled(balancers.map((b) => b.close()));
      await Promise.allSettled([hubA?.close(), hubB?.close()]);
    });

    test('cross-node delivery: publishers on A and B, subscribers on both; each message exactly once, in order', async () => {
      const topic = 'cross';
      const subscribers = [await client(hubA.url, 'sa'), await client(hubB.url, 'sb1'), await client(hubB.url, 'sb2')];
      const got: Array<Array<{ data: Json; meta: HubMessageMeta }>> = subscribers.map(() => []);
      await Promise.all(subscribers.map((s, i) => s.subscribe(topic, (data, meta) => got[i]!.push({ data, meta }))));
      const pubA = await client(hubA.url, 'pa');
      const pubB = await client(hubB.url, 'pb');
      const N = 100;
      const acks = await Promise.all([
        Promise.all(Array.from({ length: N }, (_, n) => pubA.publish(topic, { from: 'A', n }))),
        Promise.all(Array.from({ length: N }, (_, n) => pubB.publish(topic, { from: 'B', n }))),
      ]);
      assert.deepEqual(acks.flat().map((a) => a.offset).sort((x, y) => x - y), Array.from({ length: 2 * N }, (_, i) => i + 1));
      await until(() => got.every((g) => g.length >= 2 * N), 10_000, 'every subscriber gets every message');
      await new Promise((resolve) => setTimeout(resolve, 100));
      for (const [i, g] of got.entries()) {
        assert.deepEqual(g.map((m) => m.meta.offset), Array.from({ length: 2 * N }, (_, k) => k + 1), `subscriber ${i}: offsets in order, once`);
        for (const from of ['A', 'B']) {
          const ns = g.map((m) => m.data as { from: string; n: number }).filter((d) => d.from === from).map((d) => d.n);
          assert.deepEqual(ns, Array.from({ length: N }, (_, k) => k), `subscriber ${i}: publisher ${from}'s order`);
        }
      }
    });

    test('presence across nodes: lists from either node, join and leave events cross', async () => {
      const topic = 'room';
      const ann = await client(hubA.url, 'ann');
      const events: string[] = [];
      ann.on('join', (t, m) => t === topic && events.push(`join ${m.userId}@${m.node}`));
      await ann.subscribe(topic);
      const bob = await client(hubB.url, 'bob');
      const bobEvents: string[] = [];
      bob.on('leave', (t, m) => t === topic && bobEvents.push(`leave ${m.userId}@${m.node}`));
      await bob.subscribe(topic);
      const names = (members: PresenceMember[]): string[] => members.map((m) => `${m.userId}@${m.node}`).sort();
      assert.deepEqual(names(await bob.presence(topic)), ['ann@hub-A', 'bob@hub-B']);
      assert.deepEqual(names(await ann.presence(topic)), ['ann@hub-A', 'bob@hub-B']);
      await until(() => events.length === 1, 3000, 'join from B');
      assert.deepEqual(events, ['join bob@hub-B']);
      await ann.close();
      await until(() => bobEvents.length === 1, 3000, 'leave from A');
      assert.deepEqual(bobEvents, ['leave ann@hub-A']);
      assert.deepEqual(names(await bob.presence(topic)), ['bob@hub-B']);
    });

    test('recovery: a client on B is cut while 50 messages are published on A; it reconnects to A and gets exactly those 50', async () => {
      const topic = 'feed';
      const lb = await new Balancer([Number(new URL(hubB.url).port)]).listen();
      balancers.push(lb);
      const sub = await client(lb.url, 'reader');
      const got: Array<{ data: Json; meta: HubMessageMeta }> = [];
      const gaps: unknown[] = [];
      sub.on('gap', (g) => gaps.push(g));
      await sub.subscribe(topic, (data, meta) => got.push({ data, meta }));
      const pub = await client(hubA.url, 'writer');
      for (let n = 0; n < 5; n++) await pub.publish(topic, `before ${n}`);
      await until(() => got.length === 5, 3000, 'the first 5');
      lb.paused = true;
      lb.cut();
      await until(() => sub.state !== 'connected', 3000, 'the client notices the cut');
      const acks = [];
      for (let n = 0; n < 50; n++) acks.push(await pub.publish(topic, `missed ${n}`));
      lb.backends = [Number(new URL(hubA.url).port)];
      lb.paused = false;
      await until(() => got.length === 55, 5000, 'the 50 recovered');
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(sub.connId!.split('.')[0], 'hub-A', 'reconnected to the other node');
      assert.equal(got.length, 55, 'nothing twice');
      assert.deepEqual(got.slice(5).map((m) => m.data), Array.from({ length: 50 }, (_, n) => `missed ${n}`));
      assert.deepEqual(got.slice(5).map((m) => m.meta.offset), acks.map((a) => a.offset));
      assert.ok(got.slice(5).every((m) => m.meta.recovered), 'from history');
      assert.deepEqual(gaps, []);
    });

    test('reserved topics across nodes: sendToUser ($user:), sendToConnection ($node:), broadcast ($all), nodes() and disconnect ($ctl)', async () => {
      const carol = await client(hubB.url, 'carol');
      const dave = await client(hubA.url, 'dave');
      const pushes: Array<[string, Json]> = [];
      carol.on('push', (data) => pushes.push(['carol', data]));
      dave.on('push', (data) => pushes.push(['dave', data]));
      await hubA.hub.sendToUser('carol', { to: 'user' });
      await hubA.hub.sendToConnection(carol.connId!, { to: 'connection' });
      await hubB.hub.broadcast({ to: 'all' });
      await until(() => pushes.filter(([who]) => who === 'carol').length === 3 && pushes.some(([who]) => who === 'dave'), 3000, 'the pushes');
      assert.deepEqual(pushes.filter(([who]) => who === 'carol').map(([, d]) => d), [{ to: 'user' }, { to: 'connection' }, { to: 'all' }]);
      assert.deepEqual(pushes.filter(([who]) => who === 'dave').map(([, d]) => d), [{ to: 'all' }]);
      await until(() => hubA.hub.nodes().length === 2, 3000, 'both nodes announced over $ctl');
      assert.deepEqual(hubA.hub.nodes().map((n) => n.id), ['hub-A', 'hub-B']);
      const closed = new Promise<void>((resolve) => carol.on('state', (s) => s !== 'connected' && resolve()));
      await hubA.hub.disconnect({ user: 'carol' }, 4000, 'bye');
      await closed;
    });
  });
});
