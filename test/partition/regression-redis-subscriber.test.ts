// Regression of the second bug the partition test found (docs/partitions.md, bug 2): Redis drops
// a node's subscriber connection while the network between them is cut (it gave up
// retransmitting; in production also the pub/sub output-buffer limit), the FIN is lost with the
// rest, and after the network heals the node holds a half-open connection that only listens: it
// delivered nothing for ~30 s (node-redis's TCP keepalive idle time) although Redis and the
// network were fine. Now the subscriber connection PINGs every liveness period; the peer answers
// a half-open connection with a reset, the broker reconnects and the hub catches up.
//
// Here the half-open connection is made by a proxy between the broker and a redis-server of our
// own: it closes the Redis side of the subscriber connection and keeps the node's side open and
// silent, resetting it only when the node writes — as the peer's kernel does.
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, test } from 'node:test';

import { RedisBroker } from '../../src/hub/brokers/redis.js';
import { RecordingNode } from '../hub/broker-contract.js';
import { freePort, killAll, requireBinary, startRedisServer } from '../hub/cluster-helpers.js';
import { until } from '../hub/hub-helpers.js';

const binary = requireBinary('redis-server', 'apt-get install redis-server');
const skip = 'skip' in binary ? binary.skip : undefined;

/** A TCP proxy that can turn the connection whose handshake names `marker` half-open. */
class HalfOpenProxy {
  readonly #server: Server;
  readonly #pairs: Array<{ client: Socket; upstream: Socket; seen: string; silenced: boolean }> = [];

  constructor(redisPort: number) {
    this.#server = createServer((client) => {
      const upstream = netConnect({ host: '127.0.0.1', port: redisPort });
      const pair = { client, upstream, seen: '', silenced: false };
      this.#pairs.push(pair);
      client.on('error', () => {});
      upstream.on('error', () => {});
      client.on('data', (chunk: Buffer) => {
        // Once silenced, the far end has forgotten this connection: whatever the node writes is answered with a reset.
        if (pair.silenced) return void client.resetAndDestroy();
        if (pair.seen.length < 4096) pair.seen += chunk.toString('latin1');
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => pair.silenced || client.write(chunk));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => pair.silenced || client.destroy());
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return (this.#server.address() as AddressInfo).port;
  }

  /** Close the Redis side of the connection whose handshake contains `marker`; keep the node's side open, silent. */
  silence(marker: string): boolean {
    const pair = this.#pairs.find((p) => !p.silenced && !p.client.destroyed && p.seen.includes(marker));
    if (!pair) return false;
    pair.silenced = true;
    pair.upstream.destroy();
    return true;
  }

  close(): void {
    for (const p of this.#pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.#server.close();
  }
}

after(async () => {
  await killAll();
});

test('redis broker: a half-open subscriber connection is noticed within a liveness period, and delivery resumes', { skip, timeout: 20_000 }, async () => {
  const port = await freePort();
  await startRedisServer((binary as { path: string }).path, port);
  const proxy = new HalfOpenProxy(port);
  const proxyPort = await proxy.listen();
  const liveness = { presenceRefresh: 300, presenceTtl: 2000 };
  const listener = new RedisBroker({ url: `redis://127.0.0.1:${proxyPort}`, prefix: 'half-open:', ...liveness });
  const publisher = new RedisBroker({ url: `redis://127.0.0.1:${port}`, prefix: 'half-open:', ...liveness });
  const node = new RecordingNode('listener');
  try {
    await listener.start(node);
    await publisher.start(new RecordingNode('publisher'));
    await listener.subscribe('feed');
    const history = { size: 100, ttl: 60_000 };
    await publisher.publish('feed', '1', history);
    await until(() => node.on('feed').length === 1, 3000, 'the first publication');

    assert.ok(proxy.silence(listener.subscriberName!), 'the subscriber connection was found');
    const silencedAt = Date.now();
    await publisher.publish('feed', '2', history);
    // The node must notice by itself (not 30 s later) and reconnect; the hub's catch-up then reads history.
    await until(() => node.reconnects >= 1, 5000, 'onReconnect after the half-open subscriber connection');
    const noticedAfter = Date.now() - silencedAt;
    await publisher.publish('feed', '3', history);
    await until(() => node.on('feed').some((p) => p.data === '3'), 3000, 'live delivery again');
    // A PING goes out every 300 ms; the margin is for a loaded machine (before the fix: never).
    assert.ok(noticedAfter < 4000, `noticed after ${noticedAfter} ms`);
  } finally {
    await Promise.allSettled([listener.close(), publisher.close()]);
    proxy.close();
  }
});
