/**
 * `duplex serve`: the hub at `/ws`, the browser client at `/duplex/client.js`, the demo apps,
 * `/healthz` and `/metrics` (Prometheus), on one port — what `npm start` runs, and what an
 * operator runs in production (with auth configured). Everything here is the public library
 * plus `node:http`; `startServe` is exported so tests (and embedders) can run it in-process.
 */
// First: evaluated before metrics.js and the pino import below can fail one package at a time.
import './serve-peers.js';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { DestinationStream } from 'pino';
import { requirePeer } from '../node/peer.js';
import { WebSocketServer } from '../node/server/server.js';
import { requestInfo } from '../node/server/request.js';
import type { Logger } from '../node/logger.js';
import { Hub, type HubContext, type HubOptions } from '../hub/hub.js';
import { HubError } from '../hub/errors.js';
import { createBackendHooks, type BackendHookConfig } from '../hub/backend-hooks.js';
import { createServerApi } from '../hub/server-api.js';
import { ControlPlane } from '../hub/control.js';
import { MemoryBroker } from '../hub/brokers/memory.js';
import { IpcBroker } from '../hub/brokers/ipc.js';
import type { WorkerContext } from '../hub/workers.js';
import { topicProblem } from '../hub/parse-request.js';
import { RESERVED_PREFIX } from '../hub/wire.js';
import type { Broker, BrokerNode, HistoryOptions, Json } from '../hub/broker.js';
import type { HubIdentity } from '../hub/auth.js';
import { ConfigError, HOOK_KINDS, loadConfig, type HookKind, type ServeConfig } from './serve-config.js';
import { createMetrics } from './metrics.js';
import { SECURITY_HEADERS, sendText, serveStatic } from './static.js';
import type { Parsed } from './args.js';

// pino is an optional peer dependency of duplex-ws: only `duplex serve` needs it.
const { pino } = requirePeer<typeof import('pino')>('pino', 'duplex serve');

/** The package's folders, found from this compiled file (dist/src/cli/serve.js). */
const DIST_SRC = fileURLToPath(new URL('../', import.meta.url));
const APPS = fileURLToPath(new URL('../../../apps/', import.meta.url));
/** The compiled modules a browser may load from `/duplex/` (the client and its imports). */
const CLIENT_FILES = new Set(['browser/client.js', 'hub/client-core.js', 'hub/client-errors.js', 'hub/client-reconnect.js', 'hub/client-requests.js', 'hub/parse-server-message.js', 'hub/wire.js', 'protocol/backoff.js', 'protocol/constants.js', 'protocol/defaults.js', 'protocol/errors.js', 'protocol/url.js']);
/** `/duplex/client.js`: a stable URL for pages; it re-exports the compiled client next to it. */
const CLIENT_ENTRY = "// duplex browser client: see /duplex/browser/client.js\nexport * from './browser/client.js';\n";
/** The dashboard demo's feed. */
export const TICKER_TOPIC = 'ticker';
const TICKER_INTERVAL = 200;

/** A broker wrapper that remembers the connection state the broker reports (for health and metrics). */
class ObservedBroker implements Broker {
  connected = false;
  /** Publications the broker accepted / refused (every publish of this node goes through here). */
  published = 0;
  publishFailures = 0;
  constructor(readonly inner: Broker) {}
  get name(): string {
    return this.inner.name;
  }
  start(node: BrokerNode): Promise<void> {
    const observed: BrokerNode = {
      id: node.id,
      onPublication: (publication) => node.onPublication(publication),
      onPresence: (event) => node.onPresence(event),
      onReconnect: () => node.onReconnect(),
      onState: (state) => {
        reported = true;
        this.connected = state === 'connected';
        node.onState?.(state);
      },
    };
    let reported = false;
    return this.inner.start(observed).then(() => {
      // A broker that reported no state yet is connected once start() resolved.
      if (!reported) this.connected = true;
    });
  }
  subscribe(topic: string): Promise<void> {
    return this.inner.subscribe(topic);
  }
  unsubscribe(topic: string): Promise<void> {
    return this.inner.unsubscribe(topic);
  }
  publish(topic: string, data: string, history: HistoryOptions, publisher?: string, idempotencyKey?: string) {
    const counted = !ControlPlane.isControlTopic(topic);
    return this.inner.publish(topic, data, history, publisher, idempotencyKey).then(
      (publication) => {
        if (counted) this.published++;
        return publication;
      },
      (error: unknown) => {
        if (counted) this.publishFailures++;
        throw error;
      },
    );
  }
  history(topic: string, offset: number, epoch: string | undefined) {
    return this.inner.history(topic, offset, epoch);
  }
  join(...args: Parameters<Broker['join']>): Promise<void> {
    return this.inner.join(...args);
  }
  leave(...args: Parameters<Broker['leave']>): Promise<void> {
    return this.inner.leave(...args);
  }
  presence(topic: string) {
    return this.inner.presence(topic);
  }
  close(): Promise<void> {
    this.connected = false;
    return this.inner.close();
  }
}

/** The broker `config.broker` names; in a worker, `memory` is the primary's state, over IPC. */
async function createBroker(url: string, prefix: string | undefined, replicas: number | undefined, worker: WorkerContext | undefined): Promise<Broker> {
  if (url === 'memory') return worker === undefined ? new MemoryBroker() : new IpcBroker();
  // Imported on demand: `redis` and `nats` are optional peer dependencies.
  try {
    if (url.startsWith('nats://')) {
      const { NatsBroker } = await import('../hub/brokers/nats.js');
      // The whole list (`nats://a:4222,b:4222`): the broker splits it.
      return new NatsBroker({ servers: url, ...(prefix !== undefined ? { prefix } : {}), ...(replicas !== undefined ? { replicas } : {}) });
    }
    const { RedisBroker } = await import('../hub/brokers/redis.js');
    // Redis keys read `<prefix>:{topic}:…`, as the broker's default `duplex:`.
    return new RedisBroker({ url, ...(prefix !== undefined ? { prefix: `${prefix}:` } : {}) });
  } catch (error) {
    // A URL the broker cannot use (e.g. a cluster URL without hosts) is the configuration's fault, not a missing package.
    if (error instanceof TypeError || error instanceof RangeError) throw new ConfigError(`broker ${url}: ${error.message}`);
    const pkg = url.startsWith('nats://') ? 'nats' : 'redis';
    throw new ConfigError(`broker ${url} needs the "${pkg}" package: npm install ${pkg} (${(error as Error).message})`);
  }
}

// ---- logs ----------------------------------------------------------------------------------------

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLOURS: Readonly<Record<number, string>> = { 20: '\x1b[90m', 30: '\x1b[36m', 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[31m' };

/** pino's JSON lines, rewritten as one readable line each: `12:00:01.234 INFO  message key=value`. */
function readableLines(out: { write(text: string): unknown; isTTY?: boolean }): DestinationStream {
  const colour = out.isTTY === true && process.env.NO_COLOR === undefined;
  return {
    write(line: string): void {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const { level, time, msg, ...fields } = record;
      const n = typeof level === 'number' ? level : 30;
      const clock = new Date(typeof time === 'number' ? time : Date.now()).toISOString().slice(11, 23);
      const name = (LEVEL_NAMES[n] ?? String(level)).padEnd(5);
      const extra = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
        .join(' ');
      const head = colour ? `\x1b[2m${clock}\x1b[0m ${LEVEL_COLOURS[n] ?? ''}${name}\x1b[0m` : `${clock} ${name}`;
      out.write(`${head} ${String(msg ?? '')}${extra ? (colour ? ` \x1b[2m${extra}\x1b[0m` : ` ${extra}`) : ''}\n`);
    },
  };
}

/**
 * The server's logger: pino, as JSON lines (`jsonLogs`) or readable lines, on stderr; `fields`
 * go on every line (a worker's `worker` slot).
 */
export function createServeLogger(
  config: Pick<ServeConfig, 'logLevel' | 'jsonLogs'>,
  out: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
  fields?: Record<string, string | number>,
): Logger {
  const logger = config.jsonLogs
    ? pino({ level: config.logLevel, timestamp: pino.stdTimeFunctions.isoTime }, out === process.stderr ? pino.destination({ dest: 2, sync: true }) : out)
    : pino({ level: config.logLevel, base: undefined }, readableLines(out));
  return fields === undefined ? logger : logger.child(fields);
}

// ---- the server ------------------------------------------------------------------------------------

/** A running `duplex serve`. */
export interface ServeHandle {
  readonly config: ServeConfig;
  readonly hub: Hub<HubIdentity>;
  readonly server: WebSocketServer;
  readonly http: HttpServer | HttpsServer;
  /** The bound address (the real port when `port` was 0). */
  readonly address: AddressInfo;
  /** Where to point a browser, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
  /** The hub's WebSocket URL, e.g. `ws://127.0.0.1:8080/ws`. */
  readonly wsUrl: string;
  /** Graceful shutdown: clients get 1001, the hub and broker stop, the port is released. */
  close(): Promise<void>;
}

/** A display name from the `name` query parameter of an anonymous connection (for presence). */
function anonymousName(value: string | null): string | undefined {
  if (value === null) return undefined;
  // Control characters stripped, length capped.
  const name = [...value].filter((c) => c >= ' ' && c !== '\x7f').join('').trim().slice(0, 40);
  return name === '' ? undefined : name;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/**
 * Start the server described by `config`. Rejects if the port is taken or the broker cannot be
 * reached. In a worker of `duplex serve --workers N` (`worker`), the `memory` broker is the
 * primary's, over IPC, and only the worker in slot 1 runs the demo feed.
 */
export async function startServe(config: ServeConfig, logger: Logger, worker?: WorkerContext): Promise<ServeHandle> {
  const started = Date.now();
  const broker = new ObservedBroker(await createBroker(config.broker, config.brokerPrefix, config.brokerReplicas, worker));
  const ephemeral = config.history.ephemeralPrefixes;
  const history: HistoryOptions = { size: config.history.size, ttl: config.history.ttl };
  const none: HistoryOptions = { size: 0, ttl: 0 };
  const auth = config.auth;
  const hubOptions: HubOptions<HubIdentity> = {
    broker,
    logger,
    anonymous: auth.anonymous,
    history: (topic) => (ephemeral.some((prefix) => topic.startsWith(prefix)) ? none : history),
    maxMessageSize: config.limits.maxHubMessageSize,
    maxSubscriptions: config.limits.maxSubscriptions,
    presenceInfo: (ctx) => {
      if (ctx.user?.info !== undefined) return ctx.user.info;
      const name = ctx.user === undefined ? anonymousName(requestInfo(ctx.ws)?.query.get('name') ?? null) : undefined;
      return name === undefined ? undefined : { name };
    },
  };
  if (auth.secret !== undefined || auth.publicKey !== undefined) {
    hubOptions.auth = {
      jwt: {
        ...(auth.secret !== undefined ? { secret: auth.secret } : { publicKey: readFileSync(auth.publicKey!, 'utf8') }),
        ...(auth.issuer !== undefined ? { issuer: auth.issuer } : {}),
        ...(auth.audience !== undefined ? { audience: auth.audience } : {}),
      },
    };
  }
  const hooks = backendHooks(config, logger);
  Object.assign(hubOptions, hooks);
  const hub = new Hub<HubIdentity>(hubOptions);
  hub.rpc(HISTORY_RPC, (ctx, params) => historyRpc(hub, hubOptions, ctx, params));
  try {
    await hub.start();
  } catch (error) {
    await broker.close().catch(() => {});
    throw new Error(`the broker ${config.broker} could not be reached: ${(error as Error).message}`, { cause: error });
  }

  const server = new WebSocketServer({
    logger,
    perMessageDeflate: true,
    maxMessageSize: config.limits.maxMessageSize,
    maxBufferedAmount: config.limits.maxBufferedAmount,
    slowConsumer: config.limits.slowConsumer,
    ...(config.limits.maxConnections !== undefined ? { maxConnections: config.limits.maxConnections } : {}),
    ...(config.limits.idleTimeout > 0 ? { idleTimeout: config.limits.idleTimeout } : {}),
    ...(config.allowedOrigins !== undefined ? { origins: config.allowedOrigins } : {}),
  });
  server.route('/ws', hub.routeOptions);

  const metrics = createMetrics({
    server: () => server.stats(),
    hub: () => hub.stats(),
    broker: () => ({ name: broker.name, connected: broker.connected, published: broker.published, publishFailures: broker.publishFailures }),
    slowConsumer: config.limits.slowConsumer,
  });

  // The server API (docs/server-api.md): off (404 for every /api/ path) without keys.
  const api = createServerApi(hub, { keys: config.api.keys, maxBodySize: config.api.maxBodySize, logger });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = req.url ?? '/';
    const path = raw.split('?')[0]!;
    if (!path.startsWith('/')) return sendText(res, 400, 'bad request\n');
    if (await api(req, res)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    if (path === '/healthz') {
      const stats = server.stats();
      const ok = broker.connected;
      return json(res, ok ? 200 : 503, {
        status: ok ? 'ok' : 'unavailable',
        uptime: Math.round((Date.now() - started) / 1000),
        connections: stats.connections,
        hub: { connections: hub.stats().connections, topics: hub.stats().topics },
        broker: { name: broker.name, state: ok ? 'connected' : 'disconnected' },
        // With --workers: which worker answered (each one counts its own connections).
        ...(worker !== undefined ? { worker: { slot: worker.slot, workers: worker.workers, pid: process.pid } } : {}),
      });
    }
    if (path === '/metrics') {
      const text = await metrics.metrics();
      res.writeHead(200, { 'Content-Type': metrics.contentType, 'Content-Length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
      return;
    }
    if (path === '/ws') return sendText(res, 426, 'This is the hub\'s WebSocket endpoint: connect with a WebSocket client (see docs/protocol.md).\n', { Upgrade: 'websocket' });
    if (!config.apps) return sendText(res, 404, 'not found\n');
    if (path === '/duplex/client.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Content-Length': Buffer.byteLength(CLIENT_ENTRY), 'Cache-Control': 'no-cache', ...SECURITY_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : CLIENT_ENTRY);
      return;
    }
    if (path.startsWith('/duplex/')) {
      const file = path.slice('/duplex/'.length);
      if (CLIENT_FILES.has(file) && (await serveStatic(req, res, DIST_SRC, '/' + file))) return;
      return sendText(res, 404, 'not found\n');
    }
    if (await serveStatic(req, res, APPS, path)) return;
    sendText(res, 404, 'not found\n');
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((error: unknown) => {
      logger.error({ url: req.url, err: (error as Error).message }, 'request failed');
      if (!res.headersSent) sendText(res, 500, 'internal server error\n');
      else res.destroy();
    });
  };
  const http: HttpServer | HttpsServer = config.tls
    ? createHttpsServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) }, onRequest)
    : createHttpServer(onRequest);
  http.on('clientError', (_error: Error, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.attach(http);
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(config.port, config.host, () => {
        http.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await hub.close().catch(() => {});
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? `port ${config.port} is in use (choose another with --port)` : code === 'EACCES' ? `no permission to listen on port ${config.port}` : (error as Error).message;
    throw new Error(`cannot listen on ${config.host}:${config.port}: ${why}`, { cause: error });
  }
  const address = http.address() as AddressInfo;
  const scheme = config.tls ? 'https' : 'http';
  const shownHost = address.address === '0.0.0.0' || address.address === '::' ? 'localhost' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${scheme}://${shownHost}:${address.port}/`;
  const wsUrl = `${config.tls ? 'wss' : 'ws'}://${shownHost}:${address.port}/ws`;

  // One feed for the whole hub, not one per worker.
  const stopTicker = config.demoFeed && (worker === undefined || worker.slot === 1) ? startTicker(hub, logger) : () => {};

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      stopTicker();
      await server.close(1001, 'server shutting down', 5000);
      await hub.close().catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'hub close failed'));
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
      logger.info({}, 'stopped');
    })();
    return closing;
  };
  return { config, hub, server, http, address, url, wsUrl, close };
}

/** The built-in RPC method that serves a topic's recent history (the demos call it before subscribing). */
export const HISTORY_RPC = 'duplex.history';
/** The most publications one `duplex.history` call returns. */
const HISTORY_RPC_MAX = 1000;

/**
 * `duplex.history {topic, limit?}` → `{publications: [{offset, data, time}], epoch, offset}`: the
 * newest `limit` (default 100) publications of `topic`, oldest first, and its position, for a
 * connection allowed to read the topic (the subscribe check decides, hook included).
 */
async function historyRpc(hub: Hub<HubIdentity>, options: HubOptions<HubIdentity>, ctx: HubContext<HubIdentity>, params: Json): Promise<Json> {
  const { topic, limit = 100 } = (typeof params === 'object' && params !== null && !Array.isArray(params) ? params : {}) as { topic?: unknown; limit?: unknown };
  const problem = topicProblem(topic);
  if (problem !== undefined) throw new HubError('E_BAD_REQUEST', problem);
  if ((topic as string).startsWith(RESERVED_PREFIX)) throw new HubError('E_FORBIDDEN', `topics starting with ${RESERVED_PREFIX} are reserved`);
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > HISTORY_RPC_MAX) throw new HubError('E_BAD_REQUEST', `limit must be an integer from 1 to ${HISTORY_RPC_MAX}`);
  const check = options.authorize?.subscribe;
  if (check && (await check(ctx, topic as string)) !== true) throw new HubError('E_FORBIDDEN', `not allowed to read ${topic as string}`);
  let history;
  try {
    history = await hub.history(topic as string, { reverse: true, limit });
  } catch (error) {
    if (error instanceof HubError) throw error;
    throw new HubError('E_UNAVAILABLE', 'history is not available; retry');
  }
  const publications = history.publications.map(({ offset, data, time }) => ({ offset, data, time })).reverse();
  return { publications, epoch: history.epoch, offset: history.offset };
}

/** The backend hooks of the config, as hub options (none configured: none). */
function backendHooks(config: ServeConfig, logger: Logger): Partial<HubOptions<HubIdentity>> {
  const chosen: Partial<Record<HookKind, BackendHookConfig>> = {};
  for (const kind of HOOK_KINDS) {
    const hook = config.hooks[kind];
    if (hook === undefined) continue;
    chosen[kind] = {
      url: hook.url,
      ...(hook.timeout !== undefined ? { timeout: hook.timeout } : {}),
      ...(hook.headers !== undefined ? { headers: hook.headers } : {}),
      ...(hook.retries !== undefined ? { retries: hook.retries } : {}),
    };
  }
  if (Object.keys(chosen).length === 0) return {};
  try {
    return createBackendHooks({ ...chosen, logger });
  } catch (error) {
    throw new ConfigError(`hooks: ${(error as Error).message}`);
  }
}

/** The dashboard demo's feed: four simulated price series, a random walk, five times a second. */
function startTicker(hub: Hub<HubIdentity>, logger: Logger): () => void {
  const start: Record<string, number> = { DPLX: 120, WSKT: 64, FRAM: 210, PONG: 38 };
  const series: Record<string, number> = { ...start };
  let failing = false;
  const timer = setInterval(() => {
    const values: Record<string, Json> = {};
    for (const name of Object.keys(series)) {
      const price = series[name]!;
      // A random walk with a slight pull back to where it started, so it stays on the chart.
      const pull = ((start[name]! - price) / start[name]!) * 0.02;
      const next = Math.max(1, price * (1 + (Math.random() - 0.5) * 0.006 + pull));
      series[name] = Math.round(next * 100) / 100;
      values[name] = series[name]!;
    }
    hub.publish(TICKER_TOPIC, { t: Date.now(), values }).then(
      () => {
        failing = false;
      },
      (error: unknown) => {
        if (!failing) logger.warn({ topic: TICKER_TOPIC, err: (error as Error).message }, 'ticker publish failed');
        failing = true;
      },
    );
  }, TICKER_INTERVAL);
  return () => clearInterval(timer);
}

/** The startup banner: where to point a browser, and what is (un)safe. */
function banner(config: ServeConfig, url: string, wsUrl: string): string {
  const auth = config.auth;
  const workers = config.workers > 1 ? `${config.workers} worker processes on this port, one hub across them` : undefined;
  const broker = workers !== undefined && config.broker === 'memory' ? 'ipc (the primary process holds the in-memory state)' : config.broker;
  const lines = [
    `listening on ${url}`,
    '',
    '  duplex serve: a real-time hub',
    '',
    `  Open ${url} in a browser for the demos:`,
    `    chat       ${url}chat/`,
    `    dashboard  ${url}dashboard/`,
    '',
    `  hub (WebSocket)   ${wsUrl}`,
    `  browser client    ${url}duplex/client.js`,
    `  health, metrics   ${url}healthz  ${url}metrics`,
    `  server API        ${config.api.keys.length > 0 ? `${url}api/ (${config.api.keys.length} key${config.api.keys.length === 1 ? '' : 's'}; spec at ${url}api/openapi.json)` : 'off (set api.keys / DUPLEX_API_KEYS)'}`,
    ...(workers !== undefined ? [`  workers           ${workers}`] : []),
    `  broker            ${broker}; history ${config.history.size} messages / ${config.history.ttl / 1000} s per topic`,
  ];
  if (auth.secret !== undefined || auth.publicKey !== undefined) {
    lines.push(`  auth              JWT (${auth.secret !== undefined ? 'HS256 secret' : 'public key'})${auth.anonymous ? ' + anonymous connections' : ''}`);
  }
  const hooks = HOOK_KINDS.filter((kind) => config.hooks[kind] !== undefined);
  if (hooks.length > 0) lines.push(`  backend hooks     ${hooks.map((kind) => `${kind} → ${config.hooks[kind]!.url}`).join(', ')}`);
  if (auth.anonymous) {
    lines.push('', '  WARNING: anonymous mode. Anyone who can reach this port can connect, subscribe and publish.', '  It is meant for the demos and is UNSAFE FOR PRODUCTION: configure auth.secret or auth.publicKey.');
  }
  if (!config.allowedOrigins && config.host !== '127.0.0.1' && config.host !== '::1' && config.host !== 'localhost') {
    lines.push('  note: no allowedOrigins: any web page can open a WebSocket to this server.');
  }
  lines.push('', '  Ctrl+C to stop.', '', '');
  return lines.join('\n');
}

/** Say the server is up: the `listening` log line, the anonymous-mode warning, the banner on stdout. */
export function announce(config: ServeConfig, logger: Logger, url: string, wsUrl: string): void {
  const broker = config.workers > 1 && config.broker === 'memory' ? 'ipc' : config.broker;
  logger.info({ url, ws: wsUrl, broker, anonymous: config.auth.anonymous, ...(config.workers > 1 ? { workers: config.workers } : {}) }, 'listening');
  if (config.auth.anonymous) logger.warn({}, 'anonymous mode: anyone can connect, subscribe and publish; unsafe for production (set auth.secret or auth.publicKey)');
  process.stdout.write(banner(config, url, wsUrl));
}

/** `duplex serve`. Resolves with the exit code: 0 after a clean shutdown, 1 if it could not start, 2 for bad configuration. */
export async function serveCommand({ values, positionals }: Parsed): Promise<number> {
  let config: ServeConfig;
  try {
    if (positionals.length > 0) throw new ConfigError(`unexpected argument ${JSON.stringify(positionals[0])} (flags start with --)`);
    config = loadConfig(values);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`duplex serve: configuration error: ${error.message}\n`);
    return 2;
  }
  // Several workers: this process becomes their primary (serve-workers.ts).
  if (config.workers > 1) return (await import('./serve-workers.js')).serveWorkers(config);
  const logger = createServeLogger(config);
  let handle: ServeHandle;
  try {
    handle = await startServe(config, logger);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`duplex serve: configuration error: ${error.message}\n`);
      return 2;
    }
    logger.error({}, (error as Error).message);
    return 1;
  }
  announce(config, logger, handle.url, handle.wsUrl);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (name: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(name);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  logger.info({ signal }, 'signal received: closing connections with 1001');
  // A second signal while closing stops at once.
  const force = (): void => process.exit(1);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  await handle.close();
  process.off('SIGINT', force);
  process.off('SIGTERM', force);
  return 0;
}
