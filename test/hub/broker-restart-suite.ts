// Broker failure is survivable (issue 4) and broker faults are counted (issue 6): a broker of our
// own (redis-server without persistence, or nats-server with JetStream on a store dir of our
// own), two hub node processes on it, publishers on both nodes publishing continuously with
// acknowledgements, subscribers on both nodes, and one subscriber cut off (behind a balancer)
// for the duration of the outage. Mid-stream the broker is killed with SIGKILL and restarted on
// the same port (Redis: everything lost, so the epoch changes; NATS: the same store dir, so
// JetStream's history survives). Afterwards every acknowledged publish must have been
//   delivered to each subscriber (live), or recovered from history after its reconnect, or
//   covered by a `gap` event (the client was told) — silently lost must be 0.
// The counts are printed for the closing note.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import type { GapInfo, HubClient, HubMessageMeta, Json } from '../../src/hub/index.js';
import {
  Balancer,
  delay,
  freePort,
  killAll,
  requireBinary,
  startNatsServer,
  startNode,
  startRedisServer,
  token,
  type Child,
  type HubNode,
} from './cluster-helpers.js';
import { hubClient, until } from './hub-helpers.js';
import { account, received, type Ack } from './loss-accounting.js';

interface Subscriber {
  readonly name: string;
  readonly client: HubClient;
  readonly got: Array<{ key: string; meta: HubMessageMeta }>;
  /** Gap events, each with the number of acknowledged publishes at the moment it arrived. */
  readonly gaps: Array<GapInfo & { acksSoFar: number }>;
}

export interface FaultCounts {
  acked: number;
  delivered: number;
  recovered: number;
  gapNotified: number;
  silentlyLost: number;
}


export function brokerRestartSuite(kind: 'redis' | 'nats'): void {
  const binary = kind === 'redis' ? requireBinary('redis-server', 'apt-get install redis-server') : requireBinary('nats-server', 'apt-get install nats-server, or the release binary');
  const skip = 'skip' in binary ? binary.skip : undefined;

  describe(`broker restart mid-stream (${kind}): nothing acknowledged is silently lost`, { skip, timeout: 60_000 }, () => {
    const clients: HubClient[] = [];
    const balancers: Balancer[] = [];
    let storeDir: string | undefined;

    after(async () => {
      await Promise.allSettled(clients.map((c) => c.close()));
      await Promise.allSettled(balancers.map((b) => b.close()));
      await killAll();
      if (storeDir !== undefined) rmSync(storeDir, { recursive: true, force: true });
    });

    test(`kill -9 the ${kind} server while two nodes publish and deliver, restart it on the same port`, async (t) => {
      const path = (binary as { path: string }).path;
      const port = await freePort();
      const prefix = `fault-${kind}`;
      storeDir = mkdtempSync(join(tmpdir(), `duplex-${kind}-`));
      const startBroker = (): Promise<Child> => (kind === 'redis' ? startRedisServer(path, port) : startNatsServer(path, port, storeDir!));
      let broker = await startBroker();
      const brokerUrl = `${kind}://127.0.0.1:${port}`;
      const common = { broker: brokerUrl, prefix, presenceRefresh: 200, presenceTtl: 1000, historySize: 2000 };
      const [nodeA, nodeB]: HubNode[] = await Promise.all([startNode({ ...common, nodeId: 'A' }), startNode({ ...common, nodeId: 'B' })]);

      const connect = async (url: string, user: string): Promise<HubClient> => {
        const c = hubClient(url, { token: await token(user), requestTimeout: 5000 });
        clients.push(c);
        await c.connected();
        return c;
      };
      const topic = 'stream';
      const acks: Ack[] = [];
      const subscribe = async (name: string, url: string): Promise<Subscriber> => {
        const client = await connect(url, name);
        const sub: Subscriber = { name, client, got: [], gaps: [] };
        client.on('gap', (g) => g.topic === topic && sub.gaps.push({ ...g, acksSoFar: acks.length }));
        await client.subscribe(topic, (data: Json, meta) => sub.got.push({ key: String(data), meta }));
        return sub;
      };
      const lb = await new Balancer([nodeB.port]).listen();
      balancers.push(lb);
      const subscribers = [await subscribe('stays-on-A', nodeA.url), await subscribe('stays-on-B', nodeB.url), await subscribe('cut-on-B', lb.url)];

      // Publishers on both nodes, one publish in flight each, counting acknowledgements.
      const failures = new Map<string, number>();
      let publishing = true;
      const publisher = async (name: string, url: string): Promise<void> => {
        const client = await connect(url, name);
        for (let n = 0; publishing; n++) {
          const key = `${name}:${n}`;
          try {
            const { offset, epoch } = await client.publish(topic, key);
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
      await until(() => acks.length >= 100, 10_000, '100 acknowledged publishes before the fault');

      // The fault: the broker dies mid-stream; one subscriber is cut off for the whole outage.
      lb.paused = true;
      lb.cut();
      const ackedBefore = acks.length;
      broker.process.kill('SIGKILL');
      await broker.exited;
      await delay(800);
      broker = await startBroker();
      const restartedAt = acks.length;
      // Service resumes: both publishers are acknowledged again.
      await until(
        () => acks.slice(restartedAt).some((a) => a.key.startsWith('pub-A')) && acks.slice(restartedAt).some((a) => a.key.startsWith('pub-B')),
        15_000,
        'publishes acknowledged again after the restart',
      );
      const ackedAtRecovery = acks.length;
      lb.paused = false;
      await until(() => acks.length >= ackedAtRecovery + 100, 10_000, '100 more acknowledged publishes');
      publishing = false;
      await publishers;

      // Settle: every subscriber has seen the last acknowledged publish of each publisher (or a
      // gap past it), then nothing more arrives.
      const lastOf = (p: string): Ack => acks.filter((a) => a.key.startsWith(p)).at(-1)!;
      const finals = [lastOf('pub-A'), lastOf('pub-B')];
      await until(
        () => subscribers.every((s) => finals.every((f) => s.got.some((g) => g.key === f.key) || s.gaps.some((g) => g.epoch === f.epoch && g.offset >= f.offset))),
        10_000,
        'every subscriber caught up',
      ).catch(() => undefined); // the accounting below says what is missing
      await delay(300);

      const total: FaultCounts = { acked: acks.length, delivered: 0, recovered: 0, gapNotified: 0, silentlyLost: 0 };
      const lines: string[] = [];
      for (const sub of subscribers) {
        const c = account(received(sub.got, sub.gaps), acks);
        total.delivered += c.delivered;
        total.recovered += c.recovered;
        total.gapNotified += c.gapNotified;
        total.silentlyLost += c.silentlyLost;
        lines.push(
          `  ${sub.name}: acked ${c.acked}, delivered ${c.delivered}, recovered ${c.recovered}, gap-notified ${c.gapNotified}, ` +
            `silently lost ${c.silentlyLost}, duplicates ${c.duplicates}, out of order ${c.disorder}, gaps ${JSON.stringify(sub.gaps.map((g) => `${g.reason}@${g.offset}`))}`,
        );
        assert.equal(c.duplicates, 0, `${sub.name}: no duplicates`);
        assert.equal(c.disorder, 0, `${sub.name}: offset order within an epoch`);
        assert.deepEqual(c.lost.slice(0, 10), [], `${sub.name}: silently lost`);
      }
      const epochs = new Set(acks.map((a) => a.epoch)).size;
      const summary =
        `[${kind} restart] acked ${total.acked} (${ackedBefore} before the kill, ${ackedAtRecovery - restartedAt} while recovering), ` +
        `publish failures ${JSON.stringify(Object.fromEntries(failures))}, epochs ${epochs}; ` +
        `per subscriber × acked publish: delivered ${total.delivered}, recovered ${total.recovered}, gap-notified ${total.gapNotified}, ` +
        `silently lost ${total.silentlyLost}\n${lines.join('\n')}`;
      console.log(summary);
      t.diagnostic(summary.split('\n')[0]!);
      assert.equal(total.silentlyLost, 0);
      assert.equal(total.acked * subscribers.length, total.delivered + total.recovered + total.gapNotified);
      if (kind === 'redis') assert.ok(epochs >= 2, 'Redis lost its data: a new epoch');
      if (kind === 'nats') assert.equal(epochs, 1, 'JetStream kept its history: same epoch');
      await Promise.allSettled([nodeA.stop('SIGTERM'), nodeB.stop('SIGTERM')]);
      await broker.stop('SIGTERM');
    });
  });
}
