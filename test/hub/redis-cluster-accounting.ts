// The 0-silent-loss accounting of test/hub/broker-restart-suite.ts, for a fault inside a Redis
// deployment (a cluster master or a Sentinel master killed, its replica promoted): two hub
// nodes, publishers on both publishing continuously with acknowledgements, subscribers on both
// nodes, one of them cut off (behind a balancer) for the duration of the outage. Afterwards every
// acknowledged publish must have been delivered to each subscriber (live), or recovered from
// history after its reconnect, or covered by a `gap` event (the client was told) — silently lost
// must be 0, and nothing may arrive twice or out of offset order within an epoch.
import type { GapInfo, HubClient, HubMessageMeta, Json } from '../../src/hub/index.js';
import { Balancer, delay } from './cluster-helpers.js';
import { hubClient, until } from './hub-helpers.js';
import { account, received, type Ack } from './loss-accounting.js';

interface Subscriber {
  readonly name: string;
  readonly got: Array<{ key: string; meta: HubMessageMeta }>;
  /** Gap events, each with the number of acknowledged publishes at the moment it arrived. */
  readonly gaps: Array<GapInfo & { acksSoFar: number }>;
}

/** How each acknowledged publish reached one subscriber (or was reported missing to it). */
export interface Accounting {
  acked: number;
  delivered: number;
  recovered: number;
  gapNotified: number;
  silentlyLost: number;
  duplicates: number;
  disorder: number;
}

/** What a run measured. */
export interface LossRun {
  /** Summed over the subscribers. */
  readonly total: Accounting;
  /** Per subscriber, as printed. */
  readonly lines: readonly string[];
  /** The first acknowledged publishes that were silently lost, per subscriber (empty when none). */
  readonly lost: ReadonlyMap<string, readonly Ack[]>;
  readonly subscribers: number;
  readonly epochs: number;
  /** Publish failures by error code (not acknowledged, so not counted). */
  readonly failures: Readonly<Record<string, number>>;
  /** ms from the fault until both publishers were acknowledged again. */
  readonly outage: number;
  readonly summary: string;
}


/**
 * Publish on hub nodes A and B with subscribers on both, run `fault` mid-stream, and account
 * for every acknowledged publish. `fault` returns once the fault happened (a process killed).
 */
export async function lossRun(label: string, nodes: { a: string; b: string; bPort: number }, topic: string, fault: () => Promise<void>): Promise<LossRun> {
  const clients: HubClient[] = [];
  const lb = await new Balancer([nodes.bPort]).listen();
  try {
    const connect = async (url: string): Promise<HubClient> => {
      const c = hubClient(url, { requestTimeout: 5000 });
      clients.push(c);
      await c.connected();
      return c;
    };
    const acks: Ack[] = [];
    const subscribe = async (name: string, url: string): Promise<Subscriber> => {
      const client = await connect(url);
      const sub: Subscriber = { name, got: [], gaps: [] };
      client.on('gap', (g) => g.topic === topic && sub.gaps.push({ ...g, acksSoFar: acks.length }));
      await client.subscribe(topic, (data: Json, meta) => sub.got.push({ key: String(data), meta }));
      return sub;
    };
    const subscribers = [await subscribe('stays-on-A', nodes.a), await subscribe('stays-on-B', nodes.b), await subscribe('cut-on-B', lb.url)];

    const failures: Record<string, number> = {};
    let publishing = true;
    const publisher = async (name: string, url: string): Promise<void> => {
      const client = await connect(url);
      for (let n = 0; publishing; n++) {
        const key = `${name}:${n}`;
        try {
          const { offset, epoch } = await client.publish(topic, key);
          acks.push({ key, offset, epoch });
        } catch (error) {
          const code = (error as { code?: string }).code ?? 'other';
          failures[code] = (failures[code] ?? 0) + 1;
          await delay(20);
        }
        await delay(3);
      }
    };
    const publishers = Promise.all([publisher('pub-A', nodes.a), publisher('pub-B', nodes.b)]);
    await until(() => acks.length >= 100, 10_000, '100 acknowledged publishes before the fault');

    // The fault; one subscriber is cut off for the whole outage.
    lb.paused = true;
    lb.cut();
    const ackedBefore = acks.length;
    const faultAt = performance.now();
    await fault();
    const afterFault = acks.length;
    await until(
      () => acks.slice(afterFault).some((a) => a.key.startsWith('pub-A')) && acks.slice(afterFault).some((a) => a.key.startsWith('pub-B')),
      20_000,
      'publishes acknowledged again after the fault',
    );
    const outage = performance.now() - faultAt;
    const ackedAtRecovery = acks.length;
    lb.paused = false;
    await until(() => acks.length >= ackedAtRecovery + 100, 10_000, '100 more acknowledged publishes');
    publishing = false;
    await publishers;

    // Settle: every subscriber has the last acknowledged publish of each publisher (or a gap past it).
    const lastOf = (p: string): Ack => acks.filter((a) => a.key.startsWith(p)).at(-1)!;
    const finals = [lastOf('pub-A'), lastOf('pub-B')];
    await until(
      () => subscribers.every((s) => finals.every((f) => s.got.some((g) => g.key === f.key) || s.gaps.some((g) => g.epoch === f.epoch && g.offset >= f.offset))),
      10_000,
      'every subscriber caught up',
    ).catch(() => undefined); // the accounting says what is missing
    await delay(300);

    const total: Accounting = { acked: acks.length, delivered: 0, recovered: 0, gapNotified: 0, silentlyLost: 0, duplicates: 0, disorder: 0 };
    const lines: string[] = [];
    const lost = new Map<string, Ack[]>();
    for (const sub of subscribers) {
      const c = account(received(sub.got, sub.gaps), acks);
      total.delivered += c.delivered;
      total.recovered += c.recovered;
      total.gapNotified += c.gapNotified;
      total.silentlyLost += c.silentlyLost;
      total.duplicates += c.duplicates;
      total.disorder += c.disorder;
      lost.set(sub.name, c.lost.slice(0, 10));
      lines.push(
        `  ${sub.name}: acked ${c.acked}, delivered ${c.delivered}, recovered ${c.recovered}, gap-notified ${c.gapNotified}, ` +
          `silently lost ${c.silentlyLost}, duplicates ${c.duplicates}, out of order ${c.disorder}, gaps ${JSON.stringify(sub.gaps.map((g) => `${g.reason}@${g.offset}`))}`,
      );
    }
    const epochs = new Set(acks.map((a) => a.epoch)).size;
    const summary =
      `[${label}] acked ${total.acked} (${ackedBefore} before the fault, ${ackedAtRecovery - afterFault} while recovering), ` +
      `outage ${outage.toFixed(0)} ms, publish failures ${JSON.stringify(failures)}, epochs ${epochs}; ` +
      `per subscriber × acked publish: delivered ${total.delivered}, recovered ${total.recovered}, gap-notified ${total.gapNotified}, ` +
      `silently lost ${total.silentlyLost}\n${lines.join('\n')}`;
    return { total, lines, lost, subscribers: subscribers.length, epochs, failures, outage, summary };
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await lb.close();
  }
}
