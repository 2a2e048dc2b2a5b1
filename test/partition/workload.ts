// The clients of the partition bed, one process in the `clients` namespace, run by the test:
//
//   ip netns exec dxp-<pid>-clients node dist/test/partition/workload.js --config '<json>'
//
// Publishers on both nodes publish with acknowledgements (several in flight each); subscribers
// pinned to node a or node b, and roamers behind a local balancer that sends each new connection
// to the other node, subscribe to every topic with recovery. Each client writes its log
// (history.ts) to <logDir>/<name>.jsonl. Commands on stdin, one per line:
//   start    publishers begin
//   finish   publishers stop; once what was in flight is settled each publisher publishes a
//            final marker per topic (retried until acknowledged), then every subscriber is
//            waited for until its position reaches the last acknowledged offset of each topic
//            (bounded); final positions are logged, the logs closed, `done` printed, exit.
// Prints `ready` once every subscriber is subscribed, and `progress <json>` every 5 s.
import { createWriteStream, type WriteStream } from 'node:fs';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { HubClient, type HubClientOptions } from '../../src/hub/index.js';
import type { LogEvent, Role } from './history.js';

/** What the test tells the workload. */
export interface WorkloadConfig {
  readonly logDir: string;
  /** Node URLs as the clients host reaches them. */
  readonly nodes: { readonly a: string; readonly b: string };
  readonly topics: readonly string[];
  /** Publishers per node. */
  readonly publishersPerNode: number;
  /** Publishes a second per publisher. */
  readonly rate: number;
  /** Publishes in flight per publisher, at most. */
  readonly maxInFlight: number;
  /** Subscribers pinned to each node. */
  readonly subscribersPerNode: number;
  /** Subscribers behind the roaming balancer. */
  readonly roamers: number;
  /** The clients' request timeout, ms. */
  readonly requestTimeout: number;
  /** Bound of each phase of `finish`, ms. */
  readonly settleTimeout: number;
}

/** The clients' connection settings: quick to notice a dead link and to come back (the defaults wait up to 30 s). */
function clientOptions(config: WorkloadConfig): HubClientOptions {
  return {
    requestTimeout: config.requestTimeout,
    reconnect: { minDelay: 100, maxDelay: 2000, pingInterval: 1000, pingTimeout: 3000, handshakeTimeout: 3000 },
  };
}

type Entry = LogEvent extends infer E ? (E extends { t: number } ? Omit<E, 't'> : never) : never;

/** One client: its HubClient and its log. */
class LoggedClient {
  readonly client: HubClient;
  readonly #log: WriteStream;

  constructor(
    readonly name: string,
    readonly role: Role,
    via: string,
    url: string,
    config: WorkloadConfig,
  ) {
    this.#log = createWriteStream(join(config.logDir, `${name}.jsonl`));
    this.write({ ev: 'client', name, role, via });
    this.client = new HubClient(url, clientOptions(config));
    this.client.on('connected', (info) => this.write({ ev: 'connected', node: info.node, connId: info.connId }));
    this.client.on('state', (state) => state === 'reconnecting' && this.write({ ev: 'disconnected' }));
    this.client.on('gap', (g) => this.write({ ev: 'gap', topic: g.topic, epoch: g.epoch, offset: g.offset, reason: g.reason }));
    this.client.on('error', (error) => {
      const code = (error as { code?: unknown }).code;
      // Connection attempts failing while a link is cut are expected noise; the rest is history.
      if (typeof code === 'string' && code.startsWith('E_')) this.write({ ev: 'error', code, message: error.message });
    });
  }

  write(entry: Entry): void {
    this.#log.write(`${JSON.stringify({ t: Date.now(), ...entry })}\n`);
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
    await new Promise<void>((resolve) => this.#log.end(resolve));
  }
}

/** A TCP balancer on 127.0.0.1: each new connection goes to the next node in turn (the other one if that fails). */
async function roamingBalancer(urls: readonly string[]): Promise<{ url: string; close(): void }> {
  const backends = urls.map((u) => new URL(u));
  const sockets = new Set<Socket>();
  let turn = 0;
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    client.pause();
    const first = turn++ % backends.length;
    const attempt = (tries: number): void => {
      const target = backends[(first + tries) % backends.length]!;
      const upstream = netConnect({ host: target.hostname, port: Number(target.port), timeout: 2000 });
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      const fail = (): void => {
        upstream.destroy();
        if (tries + 1 < backends.length && !client.destroyed) attempt(tries + 1);
        else client.destroy();
      };
      upstream.once('error', fail);
      upstream.once('timeout', fail);
      upstream.once('connect', () => {
        upstream.removeListener('error', fail);
        upstream.removeListener('timeout', fail);
        upstream.setTimeout(0);
        upstream.on('error', () => {});
        if (client.destroyed) return void upstream.destroy();
        const end = (): void => {
          client.destroy();
          upstream.destroy();
        };
        client.on('close', end);
        upstream.on('close', end);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    attempt(0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(check: () => boolean, timeout: number): Promise<boolean> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** A publisher: `rate` publishes a second, at most `maxInFlight` unanswered. */
class Publisher {
  inFlight = 0;
  sent = 0;
  acked = 0;
  failed = 0;
  /** The last acknowledgement per topic: where the subscribers must get to. */
  readonly lastAck = new Map<string, { epoch: string; offset: number; t: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly logged: LoggedClient,
    readonly config: WorkloadConfig,
  ) {}

  start(): void {
    this.#timer = setInterval(() => {
      if (this.inFlight >= this.config.maxInFlight) return;
      const n = this.sent++;
      const topic = this.config.topics[n % this.config.topics.length]!;
      void this.publish(topic, `${this.logged.name}:${n}`);
    }, 1000 / this.config.rate);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Publish once; true if acknowledged. */
  async publish(topic: string, key: string): Promise<boolean> {
    this.inFlight++;
    this.logged.write({ ev: 'send', topic, key });
    try {
      const { offset, epoch } = await this.logged.client.publish(topic, key);
      this.acked++;
      this.logged.write({ ev: 'ack', topic, key, epoch, offset });
      const last = this.lastAck.get(topic);
      if (last === undefined || last.epoch !== epoch || last.offset < offset) this.lastAck.set(topic, { epoch, offset, t: Date.now() });
      return true;
    } catch (error) {
      this.failed++;
      const code = (error as { code?: unknown }).code;
      this.logged.write({ ev: 'fail', topic, key, code: typeof code === 'string' ? code : 'other' });
      return false;
    } finally {
      this.inFlight--;
    }
  }

  /** Publish a final marker to `topic`, a new key per attempt, until one is acknowledged or the deadline passes. */
  async final(topic: string, deadline: number): Promise<boolean> {
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      if (await this.publish(topic, `${this.logged.name}:final:${topic}:${attempt}`)) return true;
      await sleep(200);
    }
    return false;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' } }, strict: true });
  if (values.config === undefined && process.env.NODE_TEST_CONTEXT !== undefined) return; // run as a "test file" by node --test
  if (values.config === undefined) throw new TypeError('--config <json> is required');
  const config = JSON.parse(values.config) as WorkloadConfig;
  const balancer = await roamingBalancer([config.nodes.a, config.nodes.b]);
  const clients: LoggedClient[] = [];
  const publishers: Publisher[] = [];
  const subscribers: LoggedClient[] = [];
  let messages = 0;

  for (const node of ['a', 'b'] as const) {
    for (let i = 1; i <= config.publishersPerNode; i++) {
      const c = new LoggedClient(`pub-${node}${i}`, 'publisher', node, config.nodes[node], config);
      clients.push(c);
      publishers.push(new Publisher(c, config));
    }
    for (let i = 1; i <= config.subscribersPerNode; i++) {
      const c = new LoggedClient(`sub-${node}${i}`, 'subscriber', node, config.nodes[node], config);
      clients.push(c);
      subscribers.push(c);
    }
  }
  for (let i = 1; i <= config.roamers; i++) {
    const c = new LoggedClient(`roam-${i}`, 'roamer', 'roam', balancer.url, config);
    clients.push(c);
    subscribers.push(c);
  }

  // Subscribe everyone before anything is published (retried: the bed may still be settling).
  await Promise.all(
    subscribers.map(async (s) => {
      for (const topic of config.topics) {
        for (;;) {
          try {
            const result = await s.client.subscribe(topic, (data, meta) => {
              messages++;
              s.write({ ev: 'msg', topic, key: String(data), epoch: meta.epoch, offset: meta.offset, recovered: meta.recovered });
            });
            s.write({ ev: 'subscribed', topic, epoch: result.epoch, offset: result.offset });
            break;
          } catch {
            await sleep(200);
          }
        }
      }
    }),
  );
  await Promise.all(publishers.map((p) => p.logged.client.connected()));

  const progress = setInterval(() => {
    const sum = (f: (p: Publisher) => number): number => publishers.reduce((n, p) => n + f(p), 0);
    const connected = clients.filter((c) => c.client.state === 'connected').length;
    process.stdout.write(`progress ${JSON.stringify({ sent: sum((p) => p.sent), acked: sum((p) => p.acked), failed: sum((p) => p.failed), messages, connected })}\n`);
  }, 5000);
  process.stdout.write('ready\n');

  const finish = async (): Promise<void> => {
    for (const p of publishers) p.stop();
    await until(() => publishers.every((p) => p.inFlight === 0), config.settleTimeout);
    const markerDeadline = Date.now() + config.settleTimeout;
    const markers = await Promise.all(publishers.flatMap((p) => config.topics.map((topic) => p.final(topic, markerDeadline))));
    // Where each topic ended: the latest acknowledgement across publishers (its epoch, its offset).
    const targets = new Map<string, { epoch: string; offset: number; t: number }>();
    for (const p of publishers) {
      for (const [topic, last] of p.lastAck) {
        const known = targets.get(topic);
        if (known === undefined || (known.epoch === last.epoch ? known.offset < last.offset : known.t < last.t)) targets.set(topic, last);
      }
    }
    const caughtUp = (s: LoggedClient): boolean =>
      [...targets].every(([topic, target]) => {
        const position = s.client.position(topic);
        return position !== undefined && position.epoch === target.epoch && position.offset >= target.offset;
      });
    const settleStart = Date.now();
    const settled = await until(() => subscribers.every(caughtUp), config.settleTimeout);
    const settleMs = Date.now() - settleStart;
    for (const s of subscribers) {
      const positions: Record<string, { epoch: string; offset: number } | null> = {};
      for (const topic of config.topics) {
        const position = s.client.position(topic);
        positions[topic] = position === undefined ? null : { epoch: position.epoch, offset: position.offset };
      }
      s.write({ ev: 'final', positions });
    }
    clearInterval(progress);
    await Promise.all(clients.map((c) => c.close()));
    balancer.close();
    const summary = {
      markers: markers.filter(Boolean).length,
      markersWanted: markers.length,
      settled,
      settleMs,
      laggards: subscribers.filter((s) => !caughtUp(s)).map((s) => s.name),
      targets: Object.fromEntries(targets),
    };
    process.stdout.write(`done ${JSON.stringify(summary)}\n`);
    process.exit(0);
  };

  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = line.trim();
    if (command === 'start') for (const p of publishers) p.start();
    else if (command === 'finish') void finish();
  });
  // The test died: nothing more will come.
  lines.on('close', () => process.exit(1));
}

main().catch((error: unknown) => {
  process.stderr.write(`partition workload: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
