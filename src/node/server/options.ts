/**
 * What a `WebSocketServer` is configured with, and that configuration resolved: the public
 * option, route, hook-context, attach and stats types; the defaults of the server's own limits;
 * and, once per route, the route's options merged with the server's (`resolveRoute`).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import { DEFAULTS } from '../../protocol/defaults.js';
import { negotiateServer, type PerMessageDeflateOptions } from '../../protocol/permessage-deflate.js';
import type { TrafficCounters } from '../counters.js';
import { fromClass, type WebSocketHandlerClass, type WebSocketHandlers } from '../handlers.js';
import type { Logger } from '../logger.js';
import type { ConnectionSettings } from '../settings.js';
import type { RouteParams } from './router.js';

/**
 * One entry of an origin allow-list: an exact origin (`'https://example.com'`, compared
 * case-insensitively), a RegExp tested against the `Origin` header (`/^https:\/\/[a-z]+\.example\.com$/`),
 * or `null` to admit requests that carry no `Origin` header (non-browser clients).
 */
export type OriginRule = string | RegExp | null;

/** Handlers as an object of callbacks, or a `WebSocketHandler` subclass (one instance per connection). */
export type RouteHandlers<Data> = WebSocketHandlers<Data> | WebSocketHandlerClass<Data>;

/**
 * What an `upgrade` hook sees of the request, and how it shapes the answer. The hook returns
 * the connection's `data` (e.g. the authenticated user), or refuses with `reject()` (or by
 * throwing a `HandshakeError`), which answers with that HTTP status instead of 101.
 */
export interface UpgradeContext<Pattern extends string = string> {
  /** The upgrade request. */
  readonly req: IncomingMessage;
  /** The full request URL (`ws:`/`wss:` scheme, the `Host` header as its host). */
  readonly url: URL;
  /** The route pattern that matched, e.g. `/chat/:room`. */
  readonly route: string;
  /** Path parameters of the route, percent-decoded (`params.room`, `params['*']`). */
  readonly params: RouteParams<Pattern>;
  /** The query string, parsed. */
  readonly query: URLSearchParams;
  /** The request headers (lower-case names). */
  readonly headers: IncomingHttpHeaders;
  /** The `Cookie` header, parsed (first value of a repeated name wins, values percent-decoded). */
  readonly cookies: Readonly<Record<string, string>>;
  /** The peer's IP address. */
  readonly remoteAddress: string | undefined;
  /** The `Origin` header (browsers send it), already checked against `origins` if set. */
  readonly origin: string | undefined;
  /** The subprotocols the client offered, in its order of preference. */
  readonly protocols: readonly string[];
  /**
   * The subprotocol to answer with: preset to the first offered one that the route's
   * `protocols` lists; set it to another offered one, or to `undefined` for none.
   */
  protocol: string | undefined;
  /** Aborted when the client goes away, the handshake times out or the server shuts down. */
  readonly signal: AbortSignal;
  /** Add a header to the 101 response (e.g. `Set-Cookie`); an array writes one line per value. */
  setHeader(name: string, value: string | readonly string[]): void;
  /** Refuse the handshake with an HTTP status, a plain-text body and optional headers. */
  reject(status: number, message: string, headers?: Readonly<Record<string, string>>): never;
}

/** The handshake hook of a route. Its result (or the promise's) becomes `ws.data`. */
export type UpgradeHook<Data, Pattern extends string = string> = (context: UpgradeContext<Pattern>) => Data | Promise<Data>;

/** One route: handlers plus the options that override the server's for it. */
export interface RouteOptions<Data = undefined, Pattern extends string = string> extends ConnectionSettings {
  /** Callbacks (or a `WebSocketHandler` subclass) for the connections of this route. */
  handlers: RouteHandlers<Data>;
  /**
   * Runs before the 101: authenticate, authorize, pick a subprotocol, set response headers.
   * Returns the per-connection `data`. Without it, `ws.data` is `undefined`.
   */
  upgrade?: UpgradeHook<Data, Pattern>;
  /** Subprotocols this route speaks (default: the server's); the client's first offered match is chosen. */
  protocols?: readonly string[];
  /** permessage-deflate for this route (default: the server's setting). */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Origin allow-list for this route (default: the server's); `false` turns the check off here. */
  origins?: readonly OriginRule[] | false;
}

/** Options of a `WebSocketServer`. The `ConnectionSettings` fields are defaults for every route. */
export interface WebSocketServerOptions<Data = undefined> extends ConnectionSettings {
  /**
   * Handlers of the catch-all route: every path that no `route()` matches (they are tried
   * first). Omit it to serve only the routes added with `route()`; other paths then get 404.
   */
  handlers?: RouteHandlers<Data>;
  /** The handshake hook of the catch-all route (see `RouteOptions.upgrade`). */
  upgrade?: UpgradeHook<Data>;
  /** Per-connection context of the catch-all route from the request (older form of `upgrade`). */
  data?: (req: IncomingMessage) => Data;
  /**
   * Accept permessage-deflate when a client offers it (RFC 7692). Off by default, as in ws
   * and uWebSockets: compression costs CPU and memory per connection; turn it on for text-heavy
   * traffic. `true` uses the defaults of `PerMessageDeflateOptions`.
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Subprotocols the server speaks, preferred first; the first one the client offers is chosen. */
  protocols?: readonly string[];
  /**
   * Origin allow-list (against cross-site WebSocket hijacking). When set, a request whose
   * `Origin` matches no rule, or that has no `Origin` while the list has no `null`, gets 403.
   * Default: no check.
   */
  origins?: readonly OriginRule[];
  /** Most open connections (handshakes in progress included); more get 503 with `Retry-After`. Default: no limit. */
  maxConnections?: number;
  /**
   * Most connections at once from one IP address (from the moment its upgrade request passes
   * this check until its socket closes); more get 429 with `Retry-After` before the upgrade.
   * Default: no limit — behind a reverse proxy every client has the proxy's address, so any
   * default would silently cap the whole server. Set it when clients connect directly.
   */
  maxConnectionsPerIp?: number;
  /**
   * Most new connections (upgrade requests) per IP address per `interval` ms (a fixed window);
   * more get 429 with `Retry-After` (the seconds left in the window) before the upgrade.
   * Default: no limit (same reason as `maxConnectionsPerIp`).
   */
  connectionRatePerIp?: {
    /** Upgrade requests allowed per IP address in one window (≥ 1). */
    connections: number;
    /** The window's length, in ms. */
    interval: number;
  };
  /**
   * How long a client may take to send the request line and headers of its handshake, in ms,
   * before it gets 408 and its socket is closed (against slowloris). `listen` only; an
   * attached server keeps its own `headersTimeout`. Default 10 s (Node's own is 60 s).
   */
  headersTimeout?: number;
  /**
   * Most bytes of request line and headers of a handshake. `listen` passes it to Node's HTTP
   * parser (which answers 431); on an attached server it is checked per upgrade request (431),
   * while plain HTTP requests keep that server's own `maxHeaderSize`. Default 16 KiB (Node's).
   */
  maxHeaderSize?: number;
  /** How long an `upgrade` hook may take, in ms, before the client gets 503 (default 10 s). */
  handshakeTimeout?: number;
  /** Certificate and key (any `https.createServer` options): `listen` then serves `wss://`. */
  tls?: HttpsServerOptions;
  /** Where log lines go (default: nowhere). Every refused handshake logs a `warn` line. */
  logger?: Logger;
}

/** How `attach` treats upgrade requests for paths that match no route. */
export interface AttachOptions {
  /**
   * `true` (default): answer them with 404. `false`: leave them alone, for another `upgrade`
   * listener on the same server (another library's WebSocket endpoint) — which must then
   * answer or destroy them, or they hang.
   */
  exclusive?: boolean;
}

/** Counters of a server, from `server.stats()`. */
export interface ServerStats extends TrafficCounters {
  /** Connections open now. */
  connections: number;
  /** Connections opened since the server started. */
  connectionsTotal: number;
  /** Handshakes waiting for an `upgrade` hook now. */
  handshakesPending: number;
  /** Handshakes given up because the client went away while the hook ran. */
  handshakesAborted: number;
  /** Refused handshakes by HTTP status (e.g. `{ 401: 3, 404: 1 }`). */
  rejections: Record<number, number>;
  /** Closed connections by close code (1006 when no close frame came). */
  closes: Record<number, number>;
  /** Errors reported on connections (protocol violations, socket errors, handler failures). */
  errors: number;
}

// ---- defaults of the server's own limits (units and reasons: DEFAULTS.server) -----------------

/** ms an `upgrade` hook may take before the client gets 503 (`DEFAULTS.server.handshakeTimeout`). */
export const DEFAULT_HANDSHAKE_TIMEOUT = DEFAULTS.server.handshakeTimeout;
/** ms a client may take to send its request line and headers before it gets 408 (`DEFAULTS.server.headersTimeout`). */
export const DEFAULT_HEADERS_TIMEOUT = DEFAULTS.server.headersTimeout;
/** Most bytes of request line and headers (`DEFAULTS.server.maxHeaderSize`). */
export const DEFAULT_MAX_HEADER_SIZE = DEFAULTS.server.maxHeaderSize;
/** Seconds a refused client is asked to wait, `Retry-After` (`DEFAULTS.server.retryAfterSeconds`). */
export const RETRY_AFTER_SECONDS = DEFAULTS.server.retryAfterSeconds;
/** Bytes a client may send before our 101 while an asynchronous hook runs (`DEFAULTS.server.maxEarlyData`). */
export const MAX_EARLY_DATA = DEFAULTS.server.maxEarlyData;

// ---- options resolved -------------------------------------------------------------------------

/** An origin allow-list, prepared for matching. */
export interface OriginCheck {
  readonly exact: ReadonlySet<string>;
  readonly patterns: readonly RegExp[];
  readonly allowMissing: boolean;
}

/** The route as the server keeps it: handlers wrapped for bookkeeping, options resolved once. */
export interface ResolvedRoute {
  readonly pattern: string;
  readonly handlers: WebSocketHandlers<unknown>;
  readonly upgrade: UpgradeHook<unknown> | undefined;
  readonly protocols: readonly string[] | undefined;
  readonly deflate: PerMessageDeflateOptions | undefined;
  readonly origins: OriginCheck | undefined;
  readonly settings: ConnectionSettings;
}

/** What every route falls back on: the server's options, and the parts of them prepared once. */
export interface ServerDefaults {
  /** Read when a route is added, not copied: `protocols` and the `ConnectionSettings` fields. */
  readonly options: ConnectionSettings & { readonly protocols?: readonly string[] | undefined };
  readonly deflate: PerMessageDeflateOptions | undefined;
  readonly origins: OriginCheck | undefined;
}

/**
 * A route's options merged with the server's, computed once per route. `wrap` adds the
 * server's bookkeeping to the route's handlers (one object per route, not per connection).
 * @throws RangeError for invalid permessage-deflate options.
 */
export function resolveRoute(
  pattern: string,
  options: RouteOptions<unknown>,
  server: ServerDefaults,
  wrap: (user: WebSocketHandlers<unknown>) => WebSocketHandlers<unknown>,
): ResolvedRoute {
  const deflate = options.perMessageDeflate === undefined ? server.deflate : deflateOptions(options.perMessageDeflate);
  if (deflate) negotiateServer([], deflate); // validates the options now, not at the first handshake
  const origins = options.origins === false ? undefined : options.origins ? prepareOrigins(options.origins) : server.origins;
  const user = typeof options.handlers === 'function' ? fromClass(options.handlers) : options.handlers;
  return {
    pattern,
    handlers: wrap(user),
    upgrade: options.upgrade,
    protocols: options.protocols ?? server.options.protocols,
    deflate,
    origins,
    settings: { ...definedSettings(server.options), ...definedSettings(options) },
  };
}

/** The `ConnectionSettings` keys, checked by the compiler to be all of them. */
const SETTINGS_KEYS = [
  'maxMessageSize',
  'textAsBuffer',
  'closeTimeout',
  'pingInterval',
  'pingTimeout',
  'idleTimeout',
  'highWaterMark',
  'lowWaterMark',
  'maxBufferedAmount',
  'slowConsumer',
  'slowConsumerCloseCode',
  'maxQueuedMessages',
  'messageRate',
  'sliceSize',
] as const satisfies ReadonlyArray<keyof ConnectionSettings>;
type MissingSettingsKey = Exclude<keyof ConnectionSettings, (typeof SETTINGS_KEYS)[number]>;
// A compile error here means ConnectionSettings grew a field: add it to SETTINGS_KEYS.
const settingsKeysComplete: [MissingSettingsKey] extends [never] ? true : MissingSettingsKey = true;
void settingsKeysComplete;

/** The `ConnectionSettings` fields of an options object that are set (so they can override). */
export function definedSettings(options: ConnectionSettings): ConnectionSettings {
  const out: Record<string, unknown> = {};
  for (const key of SETTINGS_KEYS) if (options[key] !== undefined) out[key] = options[key];
  return out as ConnectionSettings;
}

/** The `perMessageDeflate` option as negotiation options: `true` → the defaults, off → undefined. */
export function deflateOptions(option: boolean | PerMessageDeflateOptions | undefined): PerMessageDeflateOptions | undefined {
  return option === true ? {} : option || undefined;
}

/** An `origins` option, split for matching: exact origins lower-cased, RegExps, and whether `null` is listed. */
export function prepareOrigins(rules: readonly OriginRule[]): OriginCheck {
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  let allowMissing = false;
  for (const rule of rules) {
    if (rule === null) allowMissing = true;
    else if (typeof rule === 'string') exact.add(rule.toLowerCase());
    else patterns.push(rule);
  }
  return { exact, patterns, allowMissing };
}
