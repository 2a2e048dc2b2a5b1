// Two hubs on a NATS cluster of our own (three routed nats-servers, JetStream replicas 3, see
// nats-cluster-helpers.ts), hub A connected to server n0 and hub B to n1, each behind its own
// WebSocketServer: cross-node delivery, presence and recovery cross the cluster's routes; then
// n0 (the server of hub A, and the history stream's leader) is killed with SIGKILL while both
// hubs publish and deliver, one subscriber cut off for the outage, and restarted. Every
// acknowledged publish must be delivered to each subscriber, recovered after its reconnect, or
// covered by a gap: silently lost must be 0 (the accounting of broker-restart-suite.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { NatsBroker } from '../../src/hub/brokers/nats.js';
import type { HubClient, Json, PresenceMember } from '../../src/hub/index.js';
import { Balancer, delay, killAll } from './cluster-helpers.js';
import { hubClient, startHub, until, type HubServer } from './hub-helpers.js';
import { account, natsServerBinary, startNatsCluster, type Ack, type NatsCluster, type Received } from './nats-cluster-helpers.js';

const binary = natsServerBinary();
const skip = 'skip' in binary ? binary.skip : undefined;

/** Liveness bounds of the hubs' brokers: short, so a false "dead node" would show within the test. */
const PRESENCE_REFRESH = 200;
const PRESENCE_TTL = 1000;

describe('hubs on a 3-server NATS cluster (replicas 3), on different servers', { skip, timeout: 80_000 }, () => {
  const prefix = `dxhub${randomBytes(3).toString('hex')}`;
  const stream = `${prefix.toUpperCase()}_HIST`;
  let cluster!: NatsCluster;
  let nodeA!: HubServer<{ id: string }>;
  let nodeB!: HubServer<{ id: string }>;
  const clients: HubClient[] = [];
  const balancers: Balancer[] = [];

  const hubOn = (server: number, nodeId: string): Promise<HubServer<{ id: string }>> =>
    startHub({
      broker: new NatsBroker({
        servers: cluster.servers[server]!.url,
        prefix,
        replicas: 3,
        metaTtl: 10 * 60_000,
        timeout: 3000,
        presenceRefresh: PRESENCE_REFRESH,
        presenceTtl: PRESENCE_TTL,
      }),
      nodeId,
      history: { size: 5000, ttl: 5 * 60_000 },
      auth: { verify: (token: string) => ({ id: token }) },
    });

  async function client(url: string, user: string): Promise<HubClient> {
    const c = hubClient(url, { token: user, requestTimeout: 8000 });
    clients.push(c);
    await c.connected();
    return c;
  }

  async function balancer(url: string): Promise<Balancer> {
    const b = await new Balancer([Number(new URL(url).port)]).listen();
    balancers.push(b);
    return b;
  }

  /** The balancer's URL with the hub's path (Balancer serves /ws; the test hubs are mounted on /hub). */
  const via = (b: Balancer): string => b.url.replace(/\/ws$/, '/hub');

  before(async () => {
    cluster = await startNatsCluster((binary as { path: string }).path, 3, 'hubs');
    nodeA = await hubOn(0, 'A');
    nodeB = await hubOn(1, 'B');
  });

  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(balancers.map((b) => b.close()));
    await Promise.allSettled([nodeA?.close(), nodeB?.close()]);
    await cluster?.stop();
    await killAll();
  });

  test('cross-node delivery: publishers on A and B at once, subscribers on both; each message once, in offset order', async () => {
    const topic = 'cross';
    const subs = [await client(nodeA.url, 'sa'), await client(nodeB.url, 'sb')];
    const got: Array<Array<{ data: Json; offset: number }>> = subs.map(() => []);
    await Promise.all(subs.map((s, i) => s.subscribe(topic, (data, meta) => got[i]!.push({ data, offset: meta.offset }))));
    const pubA = await client(nodeA.url, 'pa');
    const pubB = await client(nodeB.url, 'pb');
    const N = 100;
    const acks = await Promise.all([
      Promise.all(Array.from({ length: N }, (_, n) => pubA.publish(topic, { from: 'A', n }))),
      Promise.all(Array.from({ length: N }, (_, n) => pubB.publish(topic, { from: 'B', n }))),
    ]);
    assert.deepEqual(acks.flat().map((a) => a.offset).sort((x, y) => x - y), Array.from({ length: 2 * N }, (_, i) => i + 1), 'offsets 1..2N, each once');
    await until(() => got.every((g) => g.length >= 2 * N), 10_000, 'every message on both nodes');
    await delay(100);
    for (const [i, g] of got.entries()) {
      assert.deepEqual(g.map((m) => m.offset), Array.from({ length: 2 * N }, (_, k) => k + 1), `subscriber ${i}: each once, in offset order`);
    }
  });

  test('presence across nodes: lists from either node, join and leave events cross', async () => {
    const topic = 'room';
    const ann = await client(nodeA.url, 'ann');
    const events: string[] = [];
    ann.on('join', (t, m) => t === topic && events.push(`join ${m.userId}@${m.node}`));
    await ann.subscribe(topic);
    const bob = await client(nodeB.url, 'bob');
    const bobEvents: string[] = [];
    bob.on('leave', (t, m) => t === topic && bobEvents.push(`leave ${m.userId}@${m.node}`));
    await bob.subscribe(topic);
    const names = (members: PresenceMember[]): string[] => members.map((m) => `${m.userId}@${m.node}`).sort();
    assert.deepEqual(names(await bob.presence(topic)), ['ann@A', 'bob@B']);
    assert.deepEqual(names(await ann.presence(topic)), ['ann@A', 'bob@B']);
    await until(() => events.includes('join bob@B'), 3000, 'the join from B on A');
    await ann.close();
    await until(() => bobEvents.includes('leave ann@A'), 3000, 'the leave from A on B');
    assert.deepEqual(names(await bob.presence(topic)), ['bob@B']);
  });

  test('recovery: a client on B is cut while 50 messages are published on A; it reconnects to A and gets exactly those 50', async () => {
    const topic = 'feed';
    const lb = await balancer(nodeB.url);
    const sub = await client(via(lb), 'reader');
    const got: Array<{ data: Json; recovered: boolean; offset: number }> = [];
    const gaps: unknown[] = [];
    sub.on('gap', (g) => gaps.push(g));
    await sub.subscribe(topic, (data, meta) => got.push({ data, recovered: meta.recovered, offset: meta.offset }));
    const pub = await client(nodeA.url, 'writer');
    for (let n = 0; n < 5; n++) await pub.publish(topic, `before ${n}`);
    await until(() => got.length === 5, 3000, 'the first 5');
    lb.paused = true;
    lb.cut();
    await until(() => sub.state !== 'connected', 3000, 'the client notices the cut');
    const acks = [];
    for (let n = 0; n < 50; n++) acks.push(await pub.publish(topic, `missed ${n}`));
    lb.backends = [Number(new URL(nodeA.url).port)];
    lb.paused = false;
    await until(() => got.length === 55, 5000, 'the 50 recovered');
    await delay(200);
    assert.equal(sub.connId!.split('.')[0], 'A', 'reconnected to the other node');
    assert.equal(got.length, 55, 'nothing twice');
    assert.deepEqual(got.slice(5).map((m) => m.data), Array.from({ length: 50 }, (_, n) => `missed ${n}`));
    assert.deepEqual(got.slice(5).map((m) => m.offset), acks.map((a) => a.offset));
    assert.ok(got.slice(5).every((m) => m.recovered), 'from history');
    assert.deepEqual(gaps, []);
  });

  test('SIGKILL of the server under hub A (the history stream\'s leader) while both hubs publish: nothing acknowledged silently lost; restarted, it serves again', async (t) => {
    const topic = 'stream';
    // The hardest case: the killed server is hub A's, and it leads the history stream and the
    // presence and heartbeat buckets (each elects a new leader after the kill).
    const moving = performance.now();
    for (const s of [stream, `KV_${prefix}-presence`, `KV_${prefix}-nodes`]) await cluster.moveLeader(s, cluster.servers[0]!.name);
    t.diagnostic(`leaders moved to n0 in ${(performance.now() - moving).toFixed(0)} ms`);
    const acks: Ack[] = [];
    type Sub = Received & { name: string; client: HubClient; got: Array<Received['got'][number]>; gaps: Array<Received['gaps'][number]> };
    const subscribe = async (name: string, url: string): Promise<Sub> => {
      const c = await client(url, name);
      const sub: Sub = { name, client: c, got: [], gaps: [] };
      c.on('gap', (g) => g.topic === topic && sub.gaps.push({ epoch: g.epoch, offset: g.offset, acksSoFar: acks.length }));
      await c.subscribe(topic, (data, meta) => sub.got.push({ key: String(data), offset: meta.offset, epoch: meta.epoch, recovered: meta.recovered }));
      return sub;
    };
    const lb = await balancer(nodeB.url);
    const subscribers = [await subscribe('stays-on-A', nodeA.url), await subscribe('stays-on-B', nodeB.url), await subscribe('cut-on-B', via(lb))];
    // A watcher on B records the leaves of the subscribers that stay connected: an outage of the
    // heartbeat bucket must not make a live hub look dead.
    const watcher = await client(nodeB.url, 'watcher');
    const falseLeaves: string[] = [];
    watcher.on('leave', (tp, m) => tp === topic && m.userId?.startsWith('stays-') === true && falseLeaves.push(`${m.userId}@${m.node}`));
    await watcher.subscribe(topic, () => {});

    const failures = new Map<string, number>();
    let publishing = true;
    const publisher = async (name: string, url: string): Promise<void> => {
      const c = await client(url, name);
      for (let n = 0; publishing; n++) {
        const key = `${name}:${n}`;
        try {
          const { offset, epoch } = await c.publish(topic, key);
          acks.push({ key, offset, epoch });
        } catch (error) {
          const code = (error as { code?: string }).code ?? 'other';
          failures.set(code, (failures.get(code) ?? 0) + 1);
          await delay(20);
        }
        await delay(3);
      }
    };
    const publishers = Promise.all([publisher('pub-A', nodeA.url), publisher('pub-B', nodeB.url)]);
    await until(() => acks.length >= 100, 10_000, '100 acknowledged publishes before the kill');

    lb.paused = true;
    lb.cut();
    const ackedBefore = acks.length;
    const killedAt = performance.now();
    await cluster.kill(0);
    const killedAtAck = acks.length;
    await until(
      () => ['pub-A', 'pub-B'].every((p) => acks.slice(killedAtAck).some((a) => a.key.startsWith(p))),
      20_000,
      'both publishers acknowledged again',
    );
    const resumedAfter = performance.now() - killedAt;
    const ackedAtRecovery = acks.length;
    lb.paused = false;
    await until(() => acks.length >= ackedAtRecovery + 100, 10_000, '100 more acknowledged publishes');
    // The killed server comes back on its ports and store, catches up, and the cluster goes on.
    await cluster.restart(0);
    await cluster.ready(3);
    const ackedAtRestart = acks.length;
    await until(() => acks.length >= ackedAtRestart + 50, 10_000, '50 acknowledged publishes after the restart');
    publishing = false;
    await publishers;

    const finals = ['pub-A', 'pub-B'].map((p) => acks.filter((a) => a.key.startsWith(p)).at(-1)!);
    await until(
      () => subscribers.every((s) => finals.every((f) => s.got.some((g) => g.key === f.key) || s.gaps.some((g) => g.epoch === f.epoch && g.offset >= f.offset))),
      10_000,
      'every subscriber caught up',
    ).catch(() => undefined); // the accounting below names what is missing
    await delay(300);

    const total = { delivered: 0, recovered: 0, gapNotified: 0, silentlyLost: 0 };
    const lines: string[] = [];
    for (const sub of subscribers) {
      const c = account(sub, acks);
      total.delivered += c.delivered;
      total.recovered += c.recovered;
      total.gapNotified += c.gapNotified;
      total.silentlyLost += c.silentlyLost;
      lines.push(
        `  ${sub.name}: delivered ${c.delivered}, recovered ${c.recovered}, gap-notified ${c.gapNotified}, silently lost ${c.silentlyLost}, ` +
          `duplicates ${c.duplicates}, out of order ${c.disorder}, gaps ${sub.gaps.length}`,
      );
      assert.equal(c.duplicates, 0, `${sub.name}: no duplicates`);
      assert.equal(c.disorder, 0, `${sub.name}: offset order within an epoch`);
      assert.deepEqual(c.lost, [], `${sub.name}: silently lost`);
    }
    const epochs = new Set(acks.map((a) => a.epoch)).size;
    const summary =
      `[nats cluster kill] acked ${acks.length} (${ackedBefore} before the kill, ${ackedAtRecovery - killedAtAck} while recovering), ` +
      `both publishers acknowledged again ${resumedAfter.toFixed(0)} ms after the kill; publish failures ${JSON.stringify(Object.fromEntries(failures))}, ` +
      `epochs ${epochs}; per subscriber × acked publish: delivered ${total.delivered}, recovered ${total.recovered}, ` +
      `gap-notified ${total.gapNotified}, silently lost ${total.silentlyLost}; false leaves ${falseLeaves.length}\n${lines.join('\n')}`;
    console.log(summary);
    t.diagnostic(summary.split('\n')[0]!);
    assert.equal(total.silentlyLost, 0);
    assert.equal(acks.length * subscribers.length, total.delivered + total.recovered + total.gapNotified);
    assert.equal(epochs, 1, 'replicated history survived: one epoch');
    assert.deepEqual(falseLeaves, [], 'no live member was declared gone');
    const names = (await watcher.presence(topic)).map((m) => m.userId).sort();
    assert.ok(['stays-on-A', 'stays-on-B', 'cut-on-B'].every((n) => names.includes(n)), `presence after the outage: ${JSON.stringify(names)}`);
  });
});
