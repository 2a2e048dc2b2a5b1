// A bare Redis broker (no hub) inside a namespace of the partition bed, for the regression test of
// the broker's dead-connection detection (regression-redis-keepalive.test.ts):
//
//   ip netns exec dxp-<pid>-a node dist/test/partition/broker-probe.js --broker redis://10.77.1.2:6379 --role listen
//   ip netns exec dxp-<pid>-b node dist/test/partition/broker-probe.js --broker redis://10.77.2.2:6379 --role publish
//
// `listen` subscribes to the topic and prints `pub <offset> <ms>` per publication and
// `reconnect <ms>` per onReconnect; `publish` publishes to it every 100 ms. Both print `ready`,
// and run until killed or their stdin closes.
import { parseArgs } from 'node:util';

import type { BrokerNode } from '../../src/hub/broker.js';
import { RedisBroker } from '../../src/hub/brokers/redis.js';

const { values } = parseArgs({
  options: { broker: { type: 'string' }, role: { type: 'string' }, topic: { type: 'string', default: 'probe' } },
  strict: true,
});

async function main(): Promise<void> {
  if (values.broker === undefined && process.env.NODE_TEST_CONTEXT !== undefined) return; // run as a "test file" by node --test
  if (values.broker === undefined || (values.role !== 'listen' && values.role !== 'publish')) {
    throw new TypeError('--broker redis://HOST:PORT and --role listen|publish are required');
  }
  const topic = values.topic!;
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  const node: BrokerNode = {
    id: values.role,
    onPublication: (p) => p.topic === topic && out(`pub ${p.offset} ${Date.now()}`),
    onPresence: () => {},
    onReconnect: () => out(`reconnect ${Date.now()}`),
  };
  const broker = new RedisBroker({ url: values.broker, prefix: 'probe:', connectTimeout: 2000, presenceRefresh: 1000, presenceTtl: 5000 });
  await broker.start(node);
  if (values.role === 'listen') {
    await broker.subscribe(topic);
  } else {
    setInterval(() => void broker.publish(topic, '"x"', { size: 100, ttl: 60_000 }).catch(() => undefined), 100);
  }
  out('ready');
  // The test holds our stdin: when it closes (the test is done, or died), so do we.
  process.stdin.on('end', () => process.exit(0)).resume();
}

main().catch((error: unknown) => {
  process.stderr.write(`broker-probe: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
