// A hub node as a process of its own, for the multi-process cluster and fault tests: a
// WebSocketServer with a Hub mounted on /ws, on a broker named by --broker (or DUPLEX_BROKER):
//
//   node dist/test/hub/node-process.js --broker redis://127.0.0.1:6379 --prefix run42 --node A
//   node dist/test/hub/node-process.js --broker nats://127.0.0.1:4222 --prefix run42
//
// Options (each also read from the environment as DUPLEX_<NAME>, e.g. DUPLEX_PRESENCE_TTL):
//   --broker URL            redis://HOST:PORT or nats://HOST:PORT (memory is meaningless across processes)
//   --prefix NAME           key prefix (Redis) / subject prefix, stream and bucket names (NATS), per test run
//   --node ID               node id (default: random)
//   --presence-refresh MS   broker liveness refresh (default: the broker's)
//   --presence-ttl MS       broker liveness ttl (default: the broker's)
//   --history-size N        history size per topic (default 100)
//   --jwt-secret SECRET     authenticate with HS256 JWTs instead of admitting anonymous connections
//   --port N                port on 127.0.0.1 (default 0: ephemeral)
//
// Prints `ready <port>` on stdout once serving; SIGTERM (or SIGINT) closes the server and the hub
// (announcing its connections' leaves) and exits 0.
import { parseArgs } from 'node:util';

import { WebSocketServer } from '../../src/index.js';
import { Hub, type HubOptions } from '../../src/hub/index.js';
import type { Broker } from '../../src/hub/broker.js';
import { NatsBroker } from '../../src/hub/brokers/nats.js';
import { RedisBroker } from '../../src/hub/brokers/redis.js';

const { values } = parseArgs({
  options: {
    broker: { type: 'string' },
    prefix: { type: 'string' },
    node: { type: 'string' },
    'presence-refresh': { type: 'string' },
    'presence-ttl': { type: 'string' },
    'history-size': { type: 'string' },
    'jwt-secret': { type: 'string' },
    port: { type: 'string' },
  },
  strict: true,
});

function option(name: keyof typeof values): string | undefined {
  return values[name] ?? process.env[`DUPLEX_${name.toUpperCase().replace(/-/g, '_')}`];
}

function numberOption(name: keyof typeof values): number | undefined {
  const text = option(name);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`--${name} must be a non-negative number, not ${text}`);
  return n;
}

function makeBroker(url: string, prefix: string): Broker {
  const presenceRefresh = numberOption('presence-refresh');
  const presenceTtl = numberOption('presence-ttl');
  const liveness = { ...(presenceRefresh !== undefined ? { presenceRefresh } : {}), ...(presenceTtl !== undefined ? { presenceTtl } : {}) };
  const parsed = new URL(url);
  if (parsed.protocol === 'redis:' || parsed.protocol === 'rediss:') {
    return new RedisBroker({ url, prefix: `${prefix}:`, metaTtl: 10 * 60_000, connectTimeout: 2000, ...liveness });
  }
  if (parsed.protocol === 'nats:') {
    return new NatsBroker({ servers: parsed.host, prefix, metaTtl: 10 * 60_000, timeout: 2000, ...liveness });
  }
  throw new TypeError(`--broker must be redis://HOST:PORT or nats://HOST:PORT, not ${url}`);
}

async function main(): Promise<void> {
  const brokerUrl = option('broker');
  // `node --test dist/test/` runs every .js under a test/ folder, this one included: without a
  // broker it is not a node being started but a test file with no tests.
  if (brokerUrl === undefined && process.env.NODE_TEST_CONTEXT !== undefined) return;
  if (brokerUrl === undefined) throw new TypeError('--broker redis://HOST:PORT or nats://HOST:PORT is required');
  const prefix = option('prefix') ?? `duplex-node-${process.pid}`;
  const secret = option('jwt-secret');
  const historySize = numberOption('history-size') ?? 100;
  const nodeId = option('node');
  const options: HubOptions = {
    broker: makeBroker(brokerUrl, prefix),
    history: { size: historySize, ttl: 5 * 60_000 },
    ...(nodeId !== undefined ? { nodeId } : {}),
    ...(secret !== undefined ? { auth: { jwt: { secret } } } : { anonymous: true }),
  };
  const hub = new Hub(options);
  await hub.start();
  const server = new WebSocketServer({ pingInterval: 0 });
  server.route('/ws', hub.routeOptions);
  const address = await server.listen(numberOption('port') ?? 0, '127.0.0.1');

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    // Hub first: it announces the leaves of its connections while the broker is still there.
    void (async () => {
      await hub.close();
      await server.close(1001, 'node stopping', 1000);
    })()
      .catch((error: unknown) => process.stderr.write(`node-process: close failed: ${String(error)}\n`))
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`ready ${address.port} ${hub.nodeId}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`node-process: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  if (error instanceof Error && error.cause !== undefined) process.stderr.write(`cause: ${String(error.cause)}\n`);
  process.exit(1);
});
