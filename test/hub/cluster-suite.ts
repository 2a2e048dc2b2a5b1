// The multi-process cluster suite, run against real Redis (cluster-redis.test.ts) and real NATS
// (cluster-nats.test.ts): hub nodes in separate processes (node-process.ts) on one broker.
//
// - cross-node delivery: publishers on both nodes, subscribers on both; every message exactly
//   once, in offset order, in each publisher's order;
// - presence across nodes: lists and join/leave events cross;
// - recovery after a client reconnect: a client on B is cut while 50 messages are published on
//   A, reconnects (to A) and gets exactly those 50, in order;
// - a malformed-message barrage against one node does not disturb deliveries on either;
// - a node killed with SIGKILL: its connections' presence is gone from the other node within the
//   documented bound (measured and asserted), and its clients fail over and recover.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { HubClient, HubMessageMeta, Json, PresenceMember } from '../../src/hub/index.js';
import { Balancer, cleanupBroker, killAll, runPrefix, startNode, token, type HubNode } from './cluster-helpers.js';
import { hubClient, rawClient, until } from './hub-helpers.js';

/** Liveness bounds of the node processes: short, so the dead-node test is quick. */
export const PRESENCE_REFRESH = 200;
export const PRESENCE_TTL = 1000;

interface Got {
  data: Json;
  meta: HubMessageMeta;
}

export function clusterSuite(kind: 'redis' | 'nats', brokerUrl: string, skip: string | undefined): void {
  describe(`hub cluster over ${kind}: separate node processes`, { skip, timeout: 60_000 }, () => {
    const prefix = runPrefix(kind);
    let nodeA!: HubNode;
    let nodeB!: HubNode;
    const clients: HubClient[] = [];
    const balancers: Balancer[] = [];

    async function client(url: string, user: string): Promise<HubClient> {
      const c = hubClient(url, { token: await token(user), requestTimeout: 5000 });
      clients.push(c);
      await c.connected();
      return c;
    }

    async function balancer(backends: number[]): Promise<Balancer> {
      const b = await new Balancer(backends).listen();
      balancers.push(b);
      return b;
    }

    before(async () => {
      const common = { broker: brokerUrl, prefix, presenceRefresh: PRESENCE_REFRESH, presenceTtl: PRESENCE_TTL };
      [nodeA, nodeB] = await Promise.all([startNode({ ...common, nodeId: `A-${prefix}` }), startNode({ ...common, nodeId: `B-${prefix}` })]);
    });

    after(async () => {
      await Promise.allSettled(clients.map((c) => c.close()));
      await Promise.allSettled(balancers.map((b) => b.close()));
      // Graceful stop for the nodes still alive (they remove their presence), then make sure.
      await Promise.allSettled([nodeA?.stop('SIGTERM'), nodeB?.stop('SIGTERM')]);
      await killAll();
      await cleanupBroker(brokerUrl, prefix).catch((error: unknown) => console.log(`cleanup of ${prefix} failed: ${String(error)}`));
    });

    test('cross-node delivery: publishers on A and B, subscribers on both; each message exactly once, in order', async () => {
      const topic = 'cross';
      const subscribers = [await client(nodeA.url, 'sa'), await client(nodeB.url, 'sb1'), await client(nodeB.url, 'sb2')];
      const got: Got[][] = subscribers.map(() => []);
      await Promise.all(subscribers.map((s, i) => s.subscribe(topic, (data, meta) => got[i]!.push({ data, meta }))));
      const pubA = await client(nodeA.url, 'pa');
      const pubB = await client(nodeB.url, 'pb');
      const N = 150;
      // Both publishers at once, each with all its publishes in flight: contention across nodes.
      const acks = await Promise.all([
        Promise.all(Array.from({ length: N }, (_, n) => pubA.publish(topic, { from: 'A', n }))),
        Promise.all(Array.from({ length: N }, (_, n) => pubB.publish(topic, { from: 'B', n }))),
      ]);
      const acked = acks.flat();
      const epoch = acked[0]!.epoch;
      assert.ok(acked.every((a) => a.epoch === epoch), 'one epoch');
      assert.deepEqual(acked.map((a) => a.offset).sort((x, y) => x - y), Array.from({ length: 2 * N }, (_, i) => i + 1), 'offsets 1..2N, each once');
      await until(() => got.every((g) => g.length >= 2 * N), 10_000, 'every subscriber gets every message');
      await new Promise((resolve) => setTimeout(resolve, 200)); // nothing more (no duplicates) arrives
      for (const [i, g] of got.entries()) {
        assert.equal(g.length, 2 * N, `subscriber ${i}: exactly 2N messages`);
        assert.deepEqual(g.map((m) => m.meta.offset), Array.from({ length: 2 * N }, (_, k) => k + 1), `subscriber ${i}: offsets in order`);
        for (const from of ['A', 'B']) {
          const ns = g.map((m) => m.data as { from: string; n: number }).filter((d) => d.from === from).map((d) => d.n);
          assert.deepEqual(ns, Array.from({ length: N }, (_, k) => k), `subscriber ${i}: publisher ${from}'s order kept`);
        }
      }
      // The acknowledged offset of each message is the one it was delivered with.
      const byData = new Map(got[0]!.map((m) => [JSON.stringify(m.data), m.meta.offset]));
      for (const [p, list] of [['A', acks[0]], ['B', acks[1]]] as const) {
        list.forEach((ack, n) => assert.equal(byData.get(JSON.stringify({ from: p, n })), ack.offset));
      }
    });

    test('presence across nodes: members listed from either node; join and leave events cross', async () => {
      const topic = 'room';
      const ann = await client(nodeA.url, 'ann');
      const events: string[] = [];
      ann.on('join', (t, m) => t === topic && events.push(`join ${m.userId}@${m.node}`));
      ann.on('leave', (t, m) => t === topic && events.push(`leave ${m.userId}@${m.node}`));
      await ann.subscribe(topic);
      const bob = await client(nodeB.url, 'bob');
      await bob.subscribe(topic);
      const names = (members: PresenceMember[]): string[] => members.map((m) => `${m.userId}@${m.node}`).sort();
      assert.deepEqual(names(await bob.presence(topic)), [`ann@${nodeA.nodeId}`, `bob@${nodeB.nodeId}`]);
      assert.deepEqual(names(await ann.presence(topic)), [`ann@${nodeA.nodeId}`, `bob@${nodeB.nodeId}`]);
      await until(() => events.length === 1, 3000, 'join from B');
      assert.deepEqual(events, [`join bob@${nodeB.nodeId}`]);
      // Bob's side sees Ann leave when her connection on A closes.
      const bobEvents: string[] = [];
      bob.on('leave', (t, m) => t === topic && bobEvents.push(`leave ${m.userId}@${m.node}`));
      await ann.close();
      await until(() => bobEvents.length === 1, 3000, 'leave from A');
      assert.deepEqual(bobEvents, [`leave ann@${nodeA.nodeId}`]);
      assert.deepEqual(names(await bob.presence(topic)), [`bob@${nodeB.nodeId}`]);
    });

    test('recovery: a client on B is cut while 50 messages are published on A; it reconnects to A and gets exactly those 50, in order', async () => {
      const topic = 'feed';
      const lb = await balancer([nodeB.port]);
      const sub = await client(lb.url, 'reader');
      const got: Got[] = [];
      const gaps: unknown[] = [];
      sub.on('gap', (g) => gaps.push(g));
      await sub.subscribe(topic, (data, meta) => got.push({ data, meta }));
      assert.equal((await sub.ping()) >= 0, true);
      const pub = await client(nodeA.url, 'writer');
      for (let n = 0; n < 5; n++) await pub.publish(topic, `before ${n}`);
      await until(() => got.length === 5, 3000, 'the first 5');
      const firstNode = sub.connId!.split('.')[0];
      assert.equal(firstNode, nodeB.nodeId);
      // Cut (no close frame), hold reconnections off while the 50 are published and acknowledged.
      lb.paused = true;
      lb.cut();
      await until(() => sub.state !== 'connected', 3000, 'the client notices the cut');
      const acks = [];
      for (let n = 0; n < 50; n++) acks.push(await pub.publish(topic, `missed ${n}`));
      lb.backends = [nodeA.port];
      lb.paused = false;
      await until(() => got.length === 55, 5000, 'the 50 recovered');
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(sub.connId!.split('.')[0], nodeA.nodeId, 'reconnected to the other node');
      const missed = got.slice(5);
      assert.equal(got.length, 55, 'exactly 55: nothing twice');
      assert.deepEqual(missed.map((m) => m.data), Array.from({ length: 50 }, (_, n) => `missed ${n}`));
      assert.deepEqual(missed.map((m) => m.meta.offset), acks.map((a) => a.offset));
      assert.ok(missed.every((m) => m.meta.recovered), 'all 50 came from history (recovered)');
      assert.deepEqual(gaps, []);
      // Live delivery continues after the seam.
      await pub.publish(topic, 'after');
      await until(() => got.length === 56, 3000, 'live after recovery');
      assert.equal(got[55]!.meta.recovered, false);
    });

    test('a malformed-message barrage against node A does not disturb deliveries on A or B', async () => {
      const topic = 'calm';
      const onA = await client(nodeA.url, 'calm-a');
      const onB = await client(nodeB.url, 'calm-b');
      const got: Json[][] = [[], []];
      await onA.subscribe(topic, (d) => got[0]!.push(d));
      await onB.subscribe(topic, (d) => got[1]!.push(d));
      const pub = await client(nodeB.url, 'calm-pub');
      const attackers = await Promise.all(
        Array.from({ length: 3 }, async (_, i) => rawClient(`${nodeA.url}?token=${await token(`attacker${i}`)}`)),
      );
      const bad = [
        '{not json',
        '[]',
        'null',
        '{"type":"explode","id":1}',
        '{"type":"subscribe","id":2,"topic":""}',
        `{"type":"subscribe","id":3,"topic":"${'x'.repeat(5000)}"}`,
        '{"type":"publish","id":4,"topic":"calm"}',
        `{"type":"publish","id":5,"topic":"t","data":${'['.repeat(5000)}${']'.repeat(5000)}}`,
        '{"__proto__":{"type":"ping"},"id":6}',
        '{"type":"subscribe","id":7,"topic":"$all"}',
        '{"type":"publish","id":8,"topic":"calm","data":1,"excludeSelf":"yes"}',
      ];
      const N = 100;
      const publishing = (async () => {
        for (let n = 0; n < N; n++) await pub.publish(topic, n);
      })();
      // 3 × 120 bad messages: each attacker passes the 100-invalid threshold and is closed with 1008.
      for (let round = 0; round < 120; round++) {
        for (const attacker of attackers) attacker.sendText(bad[round % bad.length]!);
        if (round % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      for (const attacker of attackers) attacker.ws.send(new Uint8Array(1000));
      await publishing;
      const closes = await Promise.all(attackers.map((a) => a.closed));
      assert.ok(closes.every(([code]) => code === 1008), `attackers closed with 1008: ${JSON.stringify(closes)}`);
      assert.ok(attackers.every((a) => a.messages.filter((m) => m.type === 'error').length >= 100), 'each bad message got an error reply');
      await until(() => got[0]!.length === N && got[1]!.length === N, 5000, 'deliveries on both nodes');
      assert.deepEqual(got[0], Array.from({ length: N }, (_, n) => n));
      assert.deepEqual(got[1], Array.from({ length: N }, (_, n) => n));
      assert.equal(onA.state, 'connected');
      assert.equal(onB.state, 'connected');
      assert.ok((await onA.ping()) < 2000, 'node A still answers');
    });

    test('a node stopped with SIGTERM exits 0 and announces its members\' leaves at once', async () => {
      const room = 'termroom';
      const nodeC = await startNode({ broker: brokerUrl, prefix, presenceRefresh: PRESENCE_REFRESH, presenceTtl: PRESENCE_TTL, nodeId: `C-${prefix}` });
      const watcher = await client(nodeA.url, 'term-watcher');
      const events: Array<{ kind: string; member: PresenceMember; at: number }> = [];
      watcher.on('join', (t, member) => t === room && events.push({ kind: 'join', member, at: performance.now() }));
      watcher.on('leave', (t, member) => t === room && events.push({ kind: 'leave', member, at: performance.now() }));
      await watcher.subscribe(room);
      const onC = await client(nodeC.url, 'on-c');
      await onC.subscribe(room);
      await until(() => events.some((e) => e.kind === 'join' && e.member.node === nodeC.nodeId), 3000, 'join from C');
      const stoppedAt = performance.now();
      nodeC.process.kill('SIGTERM');
      assert.equal(await nodeC.exited, 0, `exit code 0; output:\n${nodeC.output()}`);
      await until(() => events.some((e) => e.kind === 'leave' && e.member.node === nodeC.nodeId), 3000, 'leave from C');
      const leaveAfter = events.find((e) => e.kind === 'leave')!.at - stoppedAt;
      assert.ok(leaveAfter < PRESENCE_TTL, `leave announced by the stopping node (${leaveAfter.toFixed(0)} ms), not by liveness expiry`);
      assert.deepEqual((await watcher.presence(room)).map((m) => m.node), [nodeA.nodeId]);
      await onC.close();
    });

    test('a node killed with SIGKILL: its presence leaves the other node within the bound; its clients fail over and recover', async () => {
      const room = 'killroom';
      const feed = 'killfeed';
      const watcher = await client(nodeA.url, 'watcher');
      const leaves: Array<{ member: PresenceMember; at: number }> = [];
      watcher.on('leave', (t, member) => t === room && leaves.push({ member, at: performance.now() }));
      await watcher.subscribe(room);
      // Two clients behind a balancer that prefers B and falls back to A.
      const lb = await balancer([nodeB.port, nodeA.port]);
      const victims = [await client(lb.url, 'victim1'), await client(lb.url, 'victim2')];
      const got: Got[][] = victims.map(() => []);
      const gaps: unknown[] = [];
      for (const [i, v] of victims.entries()) {
        assert.equal(v.connId!.split('.')[0], nodeB.nodeId);
        v.on('gap', (g) => gaps.push(g));
        await v.subscribe(room);
        await v.subscribe(feed, (data, meta) => got[i]!.push({ data, meta }));
      }
      assert.equal((await watcher.presence(room)).filter((m) => m.node === nodeB.nodeId).length, 2);
      // Publishers on A and on B (the one on B fails over with the victims) publish all along;
      // acknowledged publishes are counted. The watcher on A subscribes the feed as well.
      const watched: Got[] = [];
      await watcher.subscribe(feed, (data, meta) => watched.push({ data, meta }));
      const pubLb = await balancer([nodeB.port, nodeA.port]);
      const publishers = [await client(nodeA.url, 'killpub-a'), await client(pubLb.url, 'killpub-b')];
      const acked: string[] = [];
      const failed: string[] = [];
      let publishing = true;
      const publishing$ = Promise.all(
        publishers.map(async (pub, p) => {
          for (let n = 0; publishing; n++) {
            const key = `${p === 0 ? 'A' : 'B'}:${n}`;
            try {
              await pub.publish(feed, key);
              acked.push(key);
            } catch (error) {
              failed.push(`${key} ${(error as { code?: string }).code}`); // not acknowledged: may or may not be delivered
            }
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
        }),
      );
      await until(() => acked.length >= 20 && got.every((g) => g.length >= 5), 5000, 'traffic before the kill');

      const killedAt = performance.now();
      nodeB.process.kill('SIGKILL');
      await nodeB.exited;
      // Poll the surviving node's presence until B's members are gone.
      let listGoneAfter = Infinity;
      for (;;) {
        const members = await watcher.presence(room);
        if (!members.some((m) => m.node === nodeB.nodeId)) {
          listGoneAfter = performance.now() - killedAt;
          break;
        }
        if (performance.now() - killedAt > 4 * PRESENCE_TTL) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await until(() => leaves.filter((l) => l.member.node === nodeB.nodeId).length === 2, 4 * PRESENCE_TTL, 'leaves of B\'s members');
      const leaveAfter = Math.max(...leaves.filter((l) => l.member.node === nodeB.nodeId).map((l) => l.at - killedAt));
      console.log(
        `[${kind}] SIGKILLed node: presence list without it after ${listGoneAfter.toFixed(0)} ms, ` +
          `leaves announced after ${leaveAfter.toFixed(0)} ms (presenceTtl ${PRESENCE_TTL} ms, presenceRefresh ${PRESENCE_REFRESH} ms; ` +
          `bound: list ≤ ttl, leaves ≤ ttl + refresh)`,
      );
      // The documented bounds, plus scheduling slack for a shared 2-core machine.
      const slack = 400;
      assert.ok(listGoneAfter <= PRESENCE_TTL + slack, `presence list cleared after ${listGoneAfter} ms (bound ${PRESENCE_TTL} ms)`);
      assert.ok(leaveAfter <= PRESENCE_TTL + PRESENCE_REFRESH + slack, `leaves announced after ${leaveAfter} ms (bound ${PRESENCE_TTL + PRESENCE_REFRESH} ms)`);

      // The victims fail over to A (through the balancer) and recover the feed.
      await until(() => victims.every((v) => v.state === 'connected' && v.connId?.startsWith(`${nodeA.nodeId}.`)), 5000, 'failover to A');
      await new Promise((resolve) => setTimeout(resolve, 300));
      publishing = false;
      await publishing$;
      const lastKeys = ['A:', 'B:'].map((p) => acked.filter((k) => k.startsWith(p)).at(-1)!);
      const receivers = [...got, watched];
      await until(() => receivers.every((g) => lastKeys.every((k) => g.some((m) => m.data === k))), 5000, 'the last acknowledged publishes');
      await new Promise((resolve) => setTimeout(resolve, 200));
      let delivered = 0;
      let recovered = 0;
      for (const [i, g] of receivers.entries()) {
        const name = i < got.length ? `victim ${i}` : 'watcher on A';
        const keys = g.map((m) => m.data as string);
        assert.equal(new Set(keys).size, keys.length, `${name}: nothing twice`);
        const offsets = g.map((m) => m.meta.offset);
        assert.ok(offsets.every((o, k) => k === 0 || o > offsets[k - 1]!), `${name}: offset order`);
        // Every publish acknowledged after the receiver's first message arrived.
        const from = acked.indexOf(keys[0]!);
        const missing = acked.slice(from).filter((k) => !keys.includes(k));
        assert.deepEqual(missing, [], `${name}: acknowledged publishes silently lost`);
        recovered += g.filter((m) => m.meta.recovered).length;
        delivered += g.filter((m) => !m.meta.recovered).length;
      }
      assert.deepEqual(gaps, [], 'no gap: history covered the failover');
      assert.ok(got.every((g) => g.some((m) => m.meta.recovered)), 'the victims recovered what they missed from history');
      console.log(
        `[${kind}] SIGKILLed node with publishers on both nodes: acked ${acked.length}, not acknowledged ${failed.length} ` +
          `(${[...new Set(failed.map((f) => f.split(' ')[1]))].join(', ')}); ${receivers.length} subscribers: delivered ${delivered}, recovered ${recovered}, gaps ${gaps.length}, silently lost 0`,
      );
      const rejoined = (await watcher.presence(room)).filter((m) => m.userId?.startsWith('victim'));
      assert.deepEqual(rejoined.map((m) => m.node), [nodeA.nodeId, nodeA.nodeId], 'the victims are present again, on A');
    });
  });
}
