/**
 * Prometheus metrics of `duplex serve`, with `prom-client`: a Registry per server (never the
 * global one, so two servers in one process do not share counters), filled at scrape time from
 * `server.stats()`, `hub.stats()` and the broker's state — nothing is counted on a hot path.
 */
import type { Registry as RegistryType } from 'prom-client';
import { requirePeer } from '../node/peer.js';

// prom-client is an optional peer dependency of duplex-ws: only `duplex serve` needs it.
const { Counter, Gauge, Registry, collectDefaultMetrics } = requirePeer<typeof import('prom-client')>('prom-client', 'duplex serve');
import type { ServerStats } from '../node/server/options.js';
import type { HubStats } from '../hub/hub.js';

/** Where the numbers come from. */
export interface MetricSources {
  server(): ServerStats;
  hub(): HubStats;
  broker(): { name: string; connected: boolean; published: number; publishFailures: number };
  /** The slow-consumer policy ('close' or 'drop'): labels the slow-consumer counter. */
  slowConsumer: 'close' | 'drop';
}

/** Every metric name (for docs and tests). */
export const METRIC_NAMES = [
  'duplex_connections',
  'duplex_connections_opened_total',
  'duplex_handshakes_pending',
  'duplex_messages_received_total',
  'duplex_messages_sent_total',
  'duplex_bytes_received_total',
  'duplex_bytes_sent_total',
  'duplex_slow_consumer_total',
  'duplex_closes_total',
  'duplex_connection_errors_total',
  'duplex_handshake_rejections_total',
  'duplex_hub_connections',
  'duplex_hub_topics',
  'duplex_publishes_total',
  'duplex_hub_publications_total',
  'duplex_hub_deliveries_total',
  'duplex_hub_recoveries_total',
  'duplex_hub_gaps_total',
  'duplex_hub_invalid_messages_total',
  'duplex_broker_up',
] as const;

/** A counter set from a total read at scrape time. */
function counter(registry: RegistryType, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A counter with one label, set from a record of totals. */
function labelled(registry: RegistryType, name: string, help: string, label: string, read: () => Record<string, number>): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, count] of Object.entries(read())) this.inc({ [label]: value }, count);
    },
  });
}

function gauge(registry: RegistryType, name: string, help: string, read: () => number, labels?: () => Record<string, string>): void {
  new Gauge({
    name,
    help,
    labelNames: labels ? Object.keys(labels()) : [],
    registers: [registry],
    collect() {
      if (labels) {
        this.reset();
        this.set(labels(), read());
      } else {
        this.set(read());
      }
    },
  });
}

/** A Registry with duplex's metrics (and Node's process metrics, prefixed `duplex_process_`/`duplex_nodejs_`). */
export function createMetrics(sources: MetricSources): RegistryType {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'duplex_' });
  const s = sources.server;
  const h = sources.hub;
  gauge(registry, 'duplex_connections', 'WebSocket connections open now.', () => s().connections);
  counter(registry, 'duplex_connections_opened_total', 'WebSocket connections opened since start.', () => s().connectionsTotal);
  gauge(registry, 'duplex_handshakes_pending', 'Handshakes waiting for authentication now.', () => s().handshakesPending);
  counter(registry, 'duplex_messages_received_total', 'WebSocket messages received.', () => s().messagesIn);
  counter(registry, 'duplex_messages_sent_total', 'WebSocket messages sent.', () => s().messagesOut);
  counter(registry, 'duplex_bytes_received_total', 'Payload bytes received (after decompression).', () => s().bytesIn);
  counter(registry, 'duplex_bytes_sent_total', 'Payload bytes sent (before compression).', () => s().bytesOut);
  labelled(registry, 'duplex_slow_consumer_total', 'Sends that found a connection over maxBufferedAmount, by what was done (close: 1008; drop: message dropped).', 'action', () => ({
    [sources.slowConsumer]: s().dropped,
  }));
  labelled(registry, 'duplex_closes_total', 'Closed connections by close code (1006: dropped without a close frame).', 'code', () => s().closes);
  counter(registry, 'duplex_connection_errors_total', 'Errors on connections (protocol violations, socket errors, handler failures).', () => s().errors);
  labelled(registry, 'duplex_handshake_rejections_total', 'Refused WebSocket handshakes by HTTP status.', 'status', () => s().rejections);
  gauge(registry, 'duplex_hub_connections', 'Hub connections on this node.', () => h().connections);
  gauge(registry, 'duplex_hub_topics', 'Topics with subscribers on this node.', () => h().topics);
  labelled(registry, 'duplex_publishes_total', 'Publishes of this node (clients and server code) by outcome: accepted by the broker, or failed.', 'outcome', () => ({
    accepted: sources.broker().published,
    failed: sources.broker().publishFailures,
  }));
  counter(registry, 'duplex_hub_publications_total', 'Publications received from the broker (every topic, reserved ones included).', () => h().publications);
  counter(registry, 'duplex_hub_deliveries_total', 'Messages delivered to subscribers.', () => h().deliveries);
  labelled(registry, 'duplex_hub_recoveries_total', 'Resubscriptions with recovery, by outcome.', 'outcome', () => ({
    recovered: h().recovered,
    not_recovered: h().notRecovered,
  }));
  counter(registry, 'duplex_hub_gaps_total', 'Gap notices sent (publications lost for subscribers).', () => h().gaps);
  counter(registry, 'duplex_hub_invalid_messages_total', 'Invalid hub requests received.', () => h().invalidMessages);
  gauge(
    registry,
    'duplex_broker_up',
    'Whether the broker is connected (1) or not (0).',
    () => (sources.broker().connected ? 1 : 0),
    () => ({ broker: sources.broker().name }),
  );
  return registry;
}
