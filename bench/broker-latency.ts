// Cross-node publish → delivery latency through the Redis and NATS brokers: two broker
// instances ("node A" publishes, "node B" is subscribed), 1000 publications one at a time
// (each waits for its delivery, so this is unloaded latency, not throughput), 64-byte payloads.
// Run: npm run build && node dist/bench/broker-latency.js [count]
import { performance } from 'node:perf_hooks';

import type { Broker, BrokerNode, Publication } from '../src/hub/broker.js';
import { MemoryBroker } from '../src/hub/brokers/memory.js';
import { NatsBroker } from '../src/hub/brokers/nats.js';
import { RedisBroker } from '../src/hub/brokers/redis.js';

const COUNT = Number(process.argv[2] ?? 1000);
const WARMUP = 50;
const DATA = JSON.stringify('x'.repeat(62)); // 64 bytes of JSON text

function node(id: string, onPublication: (p: Publication) => void = () => {}): BrokerNode {
  return { id, onPublication, onPresence() {}, onReconnect() {} };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function measure(name: string, a: Broker, b: Broker): Promise<void> {
  const topic = `bench.latency.${process.pid}.${Date.now()}`;
  let waiting: ((at: number) => void) | undefined;
  await a.start(node(`bench-A-${name}`));
  await b.start(node(`bench-B-${name}`, () => waiting?.(performance.now())));
  await b.subscribe(topic);
  const delivery: number[] = [];
  const ack: number[] = [];
  for (let i = 0; i < WARMUP + COUNT; i++) {
    const delivered = new Promise<number>((resolve) => (waiting = resolve));
    const start = performance.now();
    await a.publish(topic, DATA, { size: 100, ttl: 60_000 });
    const acked = performance.now();
    const at = await delivered;
    if (i >= WARMUP) {
      delivery.push(at - start);
      ack.push(acked - start);
    }
  }
  await Promise.all([a.close(), b.close()]);
  delivery.sort((x, y) => x - y);
  ack.sort((x, y) => x - y);
  const ms = (v: number): string => `${v.toFixed(3)} ms`;
  console.log(
    `${name.padEnd(7)} publish→delivery on the other node: p50 ${ms(percentile(delivery, 50))}  p99 ${ms(percentile(delivery, 99))}  max ${ms(delivery.at(-1)!)}` +
      `   | publish acknowledged: p50 ${ms(percentile(ack, 50))}  p99 ${ms(percentile(ack, 99))}   (${COUNT} publications)`,
  );
}

async function attempt(name: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    console.log(`${name.padEnd(7)} skipped: ${error instanceof Error ? error.message : String(error)}`);
  }
}

const memory = new MemoryBroker();
await attempt('memory', () => measure('memory', memory, memory.forNode()));
await attempt('redis', () => measure('redis', new RedisBroker({ prefix: 'duplex-bench:', metaTtl: 60_000 }), new RedisBroker({ prefix: 'duplex-bench:', metaTtl: 60_000 })));
await attempt('nats', () => measure('nats', new NatsBroker({ prefix: 'duplexbench', metaTtl: 60_000 }), new NatsBroker({ prefix: 'duplexbench', metaTtl: 60_000 })));
