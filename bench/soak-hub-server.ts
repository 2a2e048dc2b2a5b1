// The hub soak's server under test: a `Hub` (in-memory broker, anonymous connections, presence and
// history at their defaults) mounted the documented way, `hub.routeOptions` (slow consumers closed
// with 4008, "come back and recover"), with the run's `maxBufferedAmount` and policy. What the
// slow-consumer policy does is read from the server's own log lines (each carries the bytes
// buffered at that moment), so the soak sees exactly what an operator would.
import { WebSocketServer } from '../src/index.js';
import { Hub } from '../src/hub/index.js';
import type { LogFields, Logger } from '../src/node/logger.js';
import type { WebSocket } from '../src/node/websocket.js';
import { Histogram } from '../src/cli/bench/histogram.js';
import { config, type FromServer, type HubServerSample, type PolicySample, type Spread } from './soak-hub-config.js';
import { ProcessProbe } from './soak-probe.js';

function send(message: FromServer): void {
  process.send!(message);
}

/** Byte counts, kept as a histogram of KiB (it counts integers): min, median and max to within 1 KiB. */
class Bytes {
  readonly #kib = new Histogram();
  record(bytes: number): void {
    this.#kib.record(bytes / 1024);
  }
  spread(): Spread {
    const h = this.#kib;
    return h.count === 0 ? [0, 0, 0] : [h.min * 1024, h.percentile(50) * 1024, h.max * 1024];
  }
}

/**
 * What the server did to its connections: a Logger counting its lines by message, noting for each
 * line about a connection (its `conn` field) the bytes buffered for it at that moment — the
 * slow-consumer line, and the keepalive's "no pong" line just before it destroys the socket.
 */
class PolicyLog implements Logger {
  /** Open connections by id, to look up what a log line's connection has buffered. */
  readonly sockets = new Map<string, WebSocket<unknown>>();
  readonly #logs = new Map<string, { count: number; buffered: Bytes }>();
  #slowConsumer = 0;
  #keepalive = 0;

  debug(): void {}
  info(fields: LogFields, message: string): void {
    let entry = this.#logs.get(message);
    if (!entry) this.#logs.set(message, (entry = { count: 0, buffered: new Bytes() }));
    entry.count++;
    const ws = typeof fields.conn === 'string' ? this.sockets.get(fields.conn) : undefined;
    if (ws) entry.buffered.record(ws.bufferedAmount);
    // "slow consumer: closing with 4008", "slow consumer (pongs not read): closing with 4008"
    if (message.startsWith('slow consumer')) this.#slowConsumer++;
    else if (message.startsWith('no pong within')) this.#keepalive++;
  }
  warn(fields: LogFields, message: string): void {
    this.info(fields, message);
  }
  error(fields: LogFields, message: string): void {
    this.info(fields, message);
  }

  sample(closeCodes: Record<number, number>): PolicySample {
    const logs: PolicySample['logs'] = {};
    for (const [message, entry] of this.#logs) logs[message] = { count: entry.count, buffered: entry.buffered.spread() };
    return { logs, slowConsumerCloses: this.#slowConsumer, keepaliveCloses: this.#keepalive, closeCodes };
  }
}

export async function hubServerRole(): Promise<void> {
  const probe = new ProcessProbe(config.forceGc);
  const policyLog = new PolicyLog();
  const hub = new Hub({ anonymous: true, presence: config.presence, logger: policyLog });
  await hub.start();
  const { open: hubOpen, close: hubClose } = hub.handlers;
  const server = new WebSocketServer({
    ...hub.routeOptions,
    handlers: {
      ...hub.handlers,
      open: (ws) => {
        policyLog.sockets.set(ws.id, ws as WebSocket<unknown>);
        return hubOpen?.(ws);
      },
      close: (ws, code, reason) => {
        policyLog.sockets.delete(ws.id);
        return hubClose?.(ws, code, reason);
      },
    },
    maxBufferedAmount: config.maxBuffered,
    slowConsumer: config.slowPolicy,
    logger: policyLog,
  });
  const address = await server.listen(0, '127.0.0.1');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: { type: string }) => {
    if (message.type === 'sample') {
      const own = probe.sample();
      let bufferedTotal = 0;
      let bufferedMax = 0;
      let bufferedOverHalf = 0;
      for (const ws of server.clients) {
        const b = ws.bufferedAmount;
        bufferedTotal += b;
        if (b > bufferedMax) bufferedMax = b;
        if (b > config.maxBuffered / 2) bufferedOverHalf++;
      }
      const stats = server.stats();
      const hubStats = hub.stats();
      const sample: HubServerSample = {
        ...own,
        ...policyLog.sample(stats.closes),
        connections: stats.connections,
        connectionsTotal: stats.connectionsTotal,
        messagesIn: stats.messagesIn,
        messagesOut: stats.messagesOut,
        bytesOut: stats.bytesOut,
        dropped: stats.dropped,
        publications: hubStats.publications,
        deliveries: hubStats.deliveries,
        gaps: hubStats.gaps,
        serverErrors: stats.errors,
        bufferedTotal,
        bufferedMax,
        bufferedOverHalf,
      };
      send({ type: 'sample', sample });
    } else if (message.type === 'stop') {
      void (async () => {
        await hub.close();
        await server.close(1001, 'soak over', 2000);
        process.exit(0);
      })();
    }
  });
  send({ type: 'listening', port: address.port });
}
