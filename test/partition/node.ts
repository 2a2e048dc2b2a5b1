// A duplex hub node of the partition bed, run inside its host's namespace by the test:
//
//   ip netns exec dxp-<pid>-a node dist/test/partition/node.js --broker redis://10.77.1.2:6379 --node a
//
// A Hub (anonymous) on a WebSocketServer at /ws on 0.0.0.0:<port>, with the Redis or NATS broker
// at --broker. Keepalive pings every --ping-interval ms, so a client behind a cut link is dropped
// within interval + timeout (the server's side of what the clients do). The hub's log lines from
// `info` up (broker state, catch-ups, gaps, failures) go to stderr (the test keeps them). Prints `ready <port> <nodeId>`;
// on SIGTERM (or when its stdin closes: the test died) prints `stats <json>` (the hub's
// counters) and exits after closing.
import { parseArgs } from 'node:util';

import { WebSocketServer } from '../../src/index.js';
import { createConsoleLogger } from '../../src/node/logger.js';
import { Hub } from '../../src/hub/index.js';
import type { Broker } from '../../src/hub/broker.js';
import { NatsBroker } from '../../src/hub/brokers/nats.js';
import { RedisBroker } from '../../src/hub/brokers/redis.js';

const { values } = parseArgs({
  options: {
    broker: { type: 'string' },
    prefix: { type: 'string', default: 'dxp' },
    node: { type: 'string' },
    port: { type: 'string', default: '8080' },
    'history-size': { type: 'string', default: '300' },
    'ping-interval': { type: 'string', default: '1000' },
    'ping-timeout': { type: 'string', default: '3000' },
  },
  strict: true,
});

function makeBroker(url: string, prefix: string): Broker {
  const parsed = new URL(url);
  // Liveness as in the defaults' spirit but quicker, so presence churn happens within a run.
  const liveness = { presenceRefresh: 1000, presenceTtl: 5000 };
  if (parsed.protocol === 'redis:') return new RedisBroker({ url, prefix: `${prefix}:`, connectTimeout: 2000, ...liveness });
  if (parsed.protocol === 'nats:') return new NatsBroker({ servers: parsed.host, prefix, timeout: 2000, ...liveness });
  throw new TypeError(`--broker must be redis://HOST:PORT or nats://HOST:PORT, not ${url}`);
}

async function main(): Promise<void> {
  // `node --test dist/test/` runs every .js under a test/ folder: without --broker this is that run, not a node.
  if (values.broker === undefined && process.env.NODE_TEST_CONTEXT !== undefined) return;
  if (values.broker === undefined) throw new TypeError('--broker redis://HOST:PORT or nats://HOST:PORT is required');
  const logger = createConsoleLogger('info', process.stderr);
  const hub = new Hub({
    broker: makeBroker(values.broker, values.prefix!),
    history: { size: Number(values['history-size']), ttl: 5 * 60_000 },
    anonymous: true,
    logger,
    ...(values.node !== undefined ? { nodeId: values.node } : {}),
  });
  await hub.start();
  const server = new WebSocketServer({ pingInterval: Number(values['ping-interval']), pingTimeout: Number(values['ping-timeout']) });
  server.route('/ws', hub.routeOptions);
  const address = await server.listen(Number(values.port), '0.0.0.0');

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`stats ${JSON.stringify(hub.stats())}\n`);
    void (async () => {
      await hub.close();
      await server.close(1001, 'node stopping', 1000);
    })()
      .catch((error: unknown) => process.stderr.write(`partition node: close failed: ${String(error)}\n`))
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The test holds our stdin: if it dies without stopping us, the pipe closes and we go too.
  process.stdin.on('end', stop).resume();
  process.stdout.write(`ready ${address.port} ${hub.nodeId}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`partition node: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
