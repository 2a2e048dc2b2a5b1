/**
 * The WebSocket server: answers HTTP upgrade requests (RFC 6455 §4.2) on a server of its own
 * (`listen`, plain or TLS) or on any existing `http.Server`/`https.Server` (`attach`, or
 * `handleUpgrade` from your own `upgrade` listener); routes them by path; runs the route's
 * handshake hook (authentication, origin, subprotocol, response headers); enforces the limits;
 * keeps the set of live connections for broadcast, statistics and graceful shutdown.
 *
 * The order of checks on an upgrade request, each answered before any WebSocket byte:
 * route (404) → server shutting down (503) → per-IP limits (429) → RFC 6455 request rules (400/405/426) → header
 * bytes (431) → max connections (503) → origin (403) → the route's `upgrade` hook (its status,
 * 500 if it throws, 503 if it outlasts `handshakeTimeout`) → 101.
 */
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { Router, type RouteParams } from '../app/router.js';
import { CloseCode } from '../protocol/constants.js';
import { HandshakeError } from '../protocol/errors.js';
import type { ExtensionOffer, MessageCodec } from '../protocol/extension.js';
import { buildAcceptResponse, buildRejectResponse, selectSubprotocol, validateRequest, type ValidatedRequest } from '../protocol/handshake.js';
import { formatExtensions, isToken } from '../protocol/headers.js';
import { negotiateServer, type NegotiatedDeflate, type PerMessageDeflateOptions } from '../protocol/permessage-deflate.js';
import { createDeflateCodec } from './deflate.js';
import { silentLogger, type Logger } from './logger.js';
import {
  WebSocket,
  createTrafficCounters,
  fromClass,
  type ConnectionSettings,
  type MessageData,
  type TrafficCounters,
  type WebSocketHandlerClass,
  type WebSocketHandlers,
} from './websocket.js';

export type { RouteParams } from '../app/router.js';

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

/** What a connection keeps of its upgrade request, from `requestInfo(ws)`. */
export interface RequestInfo<Pattern extends string = string> {
  /** The request URL. */
  readonly url: URL;
  /** The route pattern that matched. */
  readonly route: string;
  /** Path parameters, percent-decoded. */
  readonly params: RouteParams<Pattern>;
  /** The query string, parsed. */
  readonly query: URLSearchParams;
  /** The `Origin` header. */
  readonly origin: string | undefined;
}

const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;
const DEFAULT_HEADERS_TIMEOUT = 10_000;
/** Node's own default for `maxHeaderSize`. */
const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;
/** Seconds a client refused with 503 is asked to wait (`Retry-After`). */
const RETRY_AFTER_SECONDS = '5';
/** A client must not send frames before the 101; this much early data is tolerated, then it is cut off. */
const MAX_EARLY_DATA = 64 * 1024;

/** The route as the server keeps it: handlers wrapped for bookkeeping, options resolved once. */
interface ResolvedRoute {
  readonly pattern: string;
  readonly handlers: WebSocketHandlers<unknown>;
  readonly upgrade: UpgradeHook<unknown> | undefined;
  readonly protocols: readonly string[] | undefined;
  readonly deflate: PerMessageDeflateOptions | undefined;
  readonly origins: OriginCheck | undefined;
  readonly settings: ConnectionSettings;
}

/** An origin allow-list, prepared for matching. */
interface OriginCheck {
  readonly exact: ReadonlySet<string>;
  readonly patterns: readonly RegExp[];
  readonly allowMissing: boolean;
}

/**
 * The request info kept per connection: strings only, the URL parsed again on first use. An
 * idle connection should not hold a URL, its context and a URLSearchParams (≈ 450 B) it will
 * most likely never read.
 */
class StoredRequest implements RequestInfo {
  private parsed: URL | undefined;
  constructor(
    private readonly href: string,
    readonly route: string,
    readonly params: Record<string, string>,
    readonly origin: string | undefined,
  ) {}
  get url(): URL {
    return (this.parsed ??= new URL(this.href));
  }
  get query(): URLSearchParams {
    return this.url.searchParams;
  }
}

const requestInfos = new WeakMap<WebSocket<unknown>, RequestInfo>();

/**
 * What a server connection keeps of its upgrade request: URL, route, path params, query,
 * origin. `undefined` for a connection that this module did not accept (a client).
 */
export function requestInfo<Pattern extends string = string>(ws: WebSocket<unknown>): RequestInfo<Pattern> | undefined {
  return requestInfos.get(ws) as RequestInfo<Pattern> | undefined;
}

/** A WebSocket server. */
export class WebSocketServer<Data = undefined> {
  /** Live connections, every route's. */
  readonly clients: ReadonlySet<WebSocket<unknown>> = new Set<WebSocket<unknown>>();
  private readonly options: WebSocketServerOptions<Data>;
  private readonly logger: Logger;
  private readonly router = new Router<ResolvedRoute>();
  private readonly fallback: ResolvedRoute | undefined;
  private readonly serverDeflate: PerMessageDeflateOptions | undefined;
  private readonly serverOrigins: OriginCheck | undefined;
  private readonly maxConnections: number;
  private readonly perIp: PerIpLimits | undefined;
  private readonly maxHeaderSize: number;
  private readonly handshakeTimeout: number;
  private readonly pending = new Set<Handshake>();
  private readonly counters = createTrafficCounters();
  private readonly counts = { connectionsTotal: 0, handshakesAborted: 0, errors: 0 };
  private readonly rejections: Record<number, number> = {};
  private readonly closes: Record<number, number> = {};
  private httpServer: HttpServer | HttpsServer | undefined;
  private readonly attached = new Map<HttpServer | HttpsServer, (req: IncomingMessage, socket: Duplex, head: Buffer) => void>();
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closing: Promise<void> | undefined;

  /**
   * Nothing listens yet: call `listen()` for a server of its own, or `attach()` to share an
   * existing HTTP(S) server. Add routes with `route()`.
   * @throws RangeError for an invalid limit (`maxConnectionsPerIp` < 1, `connectionRatePerIp`
   * without connections ≥ 1 and interval > 0) or invalid permessage-deflate options.
   */
  constructor(options: WebSocketServerOptions<Data> = {}) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.serverDeflate = deflateOptions(options.perMessageDeflate);
    this.serverOrigins = options.origins ? prepareOrigins(options.origins) : undefined;
    this.maxConnections = options.maxConnections ?? Infinity;
    this.perIp = options.maxConnectionsPerIp !== undefined || options.connectionRatePerIp !== undefined ? new PerIpLimits(options.maxConnectionsPerIp, options.connectionRatePerIp) : undefined;
    this.maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
    this.handshakeTimeout = options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
    if (options.handlers) {
      const legacy = options.data;
      const upgrade: UpgradeHook<Data> | undefined = options.upgrade ?? (legacy ? (ctx) => legacy(ctx.req) : undefined);
      const route = { ...options, handlers: options.handlers, upgrade, origins: undefined } as unknown as RouteOptions<unknown>;
      this.fallback = this.resolve('/*', route);
    }
  }

  /**
   * Add a route. Patterns: exact paths (`/live`), `:name` parameters (`/chat/:room`), a final
   * `*` for the rest of the path (`/feeds/*` → `params['*']`). Routes are tried in the order
   * they were added, before the catch-all `handlers` of the server options.
   *
   * ```ts
   * server.route('/chat/:room', {
   *   upgrade: async ({ params, query, reject }) => {
   *     const user = await users.byToken(query.get('token'));
   *     if (!user) reject(401, 'invalid token');
   *     return { user, room: params.room };
   *   },
   *   handlers: { message(ws, text) { … ws.data.user … } },
   * });
   * ```
   * @throws TypeError for an invalid pattern.
   * @throws RangeError for invalid permessage-deflate options.
   */
  route<RouteData = undefined, Pattern extends string = string>(pattern: Pattern, options: RouteOptions<RouteData, Pattern>): this {
    this.router.add(pattern, this.resolve(pattern, options as unknown as RouteOptions<unknown>));
    return this;
  }

  /**
   * Listen on a server of its own: HTTP, or HTTPS (`wss://`) when the `tls` option is set.
   * Plain HTTP requests get 426 Upgrade Required. Resolves with the bound address (port 0 for
   * an ephemeral port; `host` may be an IPv6 address such as `::1`).
   */
  async listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    const headersTimeout = this.options.headersTimeout ?? DEFAULT_HEADERS_TIMEOUT;
    // Node checks the timeouts every connectionsCheckingInterval (30 s by default): check often
    // enough that a stalled handshake is released close to headersTimeout.
    const parser = {
      maxHeaderSize: this.maxHeaderSize,
      headersTimeout,
      requestTimeout: Math.max(headersTimeout, 30_000),
      connectionsCheckingInterval: Math.max(100, Math.min(1000, headersTimeout / 4)),
    };
    const server = this.options.tls
      ? // TLS 1.2 or later, whatever tls.DEFAULT_MIN_VERSION (or --tls-min-v1.0) says; `tls` may still lower it explicitly.
        createHttpsServer({ minVersion: 'TLSv1.2', ...this.options.tls, ...parser }, answerPlainRequest)
      : createHttpServer(parser, answerPlainRequest);
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => this.clientError(error, socket));
    this.httpServer = server;
    this.attach(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  /**
   * Answer WebSocket upgrades of an existing HTTP(S) server (e.g. the one behind an Express
   * app); its plain HTTP requests are left to it. See `AttachOptions.exclusive` for paths
   * that match no route.
   */
  attach(server: HttpServer | HttpsServer, options: AttachOptions = {}): this {
    const exclusive = options.exclusive ?? true;
    const listener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (!this.handleUpgrade(req, socket, head) && exclusive) {
        this.refuse(socket, req, 404, `no WebSocket endpoint at ${pathOf(req)}`);
      }
    };
    server.on('upgrade', listener);
    this.attached.set(server, listener);
    return this;
  }

  /** The address of the server started by `listen`. */
  address(): AddressInfo | undefined {
    return (this.httpServer?.address() as AddressInfo | null) ?? undefined;
  }

  /**
   * Handle an upgrade request from your own `upgrade` listener. Returns false, without
   * touching the socket, when no route matches the path (answer it, or pass it on); true
   * when the request was taken: then it is answered (101, or an HTTP error) by this server.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = requestUrl(req);
    if (!url) return false;
    const match = this.router.match(url.pathname);
    let route: ResolvedRoute;
    let params: Record<string, string>;
    if (match) {
      route = match.value;
      params = match.params;
    } else if (this.fallback) {
      route = this.fallback;
      params = { '*': safeDecode(url.pathname.slice(1)) };
    } else {
      return false;
    }
    this.upgrade(req, socket, head, url, route, params);
    return true;
  }

  /** Answer an upgrade request with an HTTP error (logged and counted) and close the socket. */
  reject(socket: Duplex, req: IncomingMessage, status: number, message: string, headers: Readonly<Record<string, string>> = {}): void {
    this.refuse(socket, req, status, message, headers);
  }

  /** A snapshot of the server's counters (cheap: plain numbers, copied). */
  stats(): ServerStats {
    return {
      connections: this.clients.size,
      connectionsTotal: this.counts.connectionsTotal,
      handshakesPending: this.pending.size,
      handshakesAborted: this.counts.handshakesAborted,
      ...this.counters,
      rejections: { ...this.rejections },
      closes: { ...this.closes },
      errors: this.counts.errors,
    };
  }

  /**
   * Graceful shutdown: stop accepting (new handshakes, and those waiting for an `upgrade`
   * hook, get 503), close every connection with `code` (1001 Going Away by default) and
   * `reason`, wait for the closing handshakes for at most `timeout` ms, then terminate the
   * rest; resolves when every connection is closed and the server of `listen` has stopped.
   * An attached server keeps running: only its upgrade listener is removed. Calling it again
   * returns the same promise.
   */
  close(code: number = CloseCode.GoingAway, reason = 'server shutting down', timeout = 5000): Promise<void> {
    this.closing ??= this.shutdown(code, reason, timeout);
    return this.closing;
  }

  // ---- the handshake --------------------------------------------------------------------------

  /** A route's options merged with the server's, computed once per route. */
  private resolve(pattern: string, options: RouteOptions<unknown>): ResolvedRoute {
    const deflate = options.perMessageDeflate === undefined ? this.serverDeflate : deflateOptions(options.perMessageDeflate);
    if (deflate) negotiateServer([], deflate); // validates the options now, not at the first handshake
    const origins = options.origins === false ? undefined : options.origins ? prepareOrigins(options.origins) : this.serverOrigins;
    const user = typeof options.handlers === 'function' ? fromClass(options.handlers) : options.handlers;
    return {
      pattern,
      handlers: this.wrapHandlers(user),
      upgrade: options.upgrade,
      protocols: options.protocols ?? this.options.protocols,
      deflate,
      origins,
      settings: { ...definedSettings(this.options), ...definedSettings(options) },
    };
  }

  /** The route's handlers plus the server's bookkeeping (one object per route, not per connection). */
  private wrapHandlers(user: WebSocketHandlers<unknown>): WebSocketHandlers<unknown> {
    const handlers: WebSocketHandlers<unknown> = {
      open: (ws) => user.open?.(ws),
      close: (ws, code, reason) => {
        this.connectionClosed(ws, code);
        return user.close?.(ws, code, reason);
      },
      error: (ws, error) => {
        this.counts.errors++;
        return user.error?.(ws, error);
      },
    };
    // Only forward what the user has: no `message` callback means async iteration.
    if (user.message) handlers.message = (ws: WebSocket<unknown>, data: MessageData, isBinary: boolean) => user.message!(ws, data, isBinary);
    if (user.ping) handlers.ping = (ws, data) => user.ping!(ws, data);
    if (user.pong) handlers.pong = (ws, data) => user.pong!(ws, data);
    if (user.drain) handlers.drain = (ws) => user.drain!(ws);
    if (!user.open) delete handlers.open;
    return handlers;
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, route: ResolvedRoute, params: Record<string, string>): void {
    socket.on('error', destroySocket);
    if (this.state !== 'open') {
      this.refuse(socket, req, 503, 'server shutting down', { 'Retry-After': RETRY_AFTER_SECONDS });
      return;
    }
    if (this.perIp) {
      const refusal = this.perIp.admit(socket, req.socket.remoteAddress ?? '');
      if (refusal) {
        this.refuse(socket, req, 429, refusal.message, { 'Retry-After': String(refusal.retryAfter) });
        return;
      }
    }
    let request: ValidatedRequest;
    let negotiated: { params: NegotiatedDeflate; response: ExtensionOffer } | undefined;
    try {
      request = validateRequest({ method: req.method ?? '', httpVersion: req.httpVersion, url: req.url ?? '/', headers: req.headers });
      negotiated = route.deflate ? negotiateServer(request.extensions, route.deflate) : undefined;
    } catch (error) {
      if (!(error instanceof HandshakeError)) throw error;
      this.refuse(socket, req, error.status, error.message, error.headers);
      return;
    }
    const headerBytes = headerSize(req);
    if (headerBytes > this.maxHeaderSize) {
      this.refuse(socket, req, 431, `request headers are ${headerBytes} bytes, more than the ${this.maxHeaderSize} allowed`);
      return;
    }
    if (this.clients.size + this.pending.size >= this.maxConnections) {
      this.refuse(socket, req, 503, `too many connections (limit ${this.maxConnections})`, { 'Retry-After': RETRY_AFTER_SECONDS });
      return;
    }
    if (route.origins && !originAllowed(route.origins, request.origin)) {
      this.refuse(socket, req, 403, request.origin === undefined ? 'an Origin header is required' : `origin ${request.origin} is not allowed`);
      return;
    }
    const protocol = route.protocols ? selectSubprotocol(request.protocols, route.protocols) : undefined;
    const handshake = new Handshake(this, req, socket, head, url, route, params, request, negotiated, protocol);
    const hook = route.upgrade;
    if (!hook) {
      this.complete(handshake, undefined);
      return;
    }
    let result: unknown;
    try {
      result = hook(handshake);
    } catch (error) {
      this.hookFailed(handshake, error);
      return;
    }
    if (!isPromiseLike(result)) {
      this.complete(handshake, result);
      return;
    }
    // Asynchronous hook: watch the socket and the clock while it runs.
    this.pending.add(handshake);
    handshake.watch(this.handshakeTimeout);
    result.then(
      (data) => {
        if (handshake.settle()) this.complete(handshake, data);
      },
      (error: unknown) => {
        if (handshake.settle()) this.hookFailed(handshake, error);
      },
    );
  }

  /** @internal Called by a Handshake when it stops being pending. */
  forget(handshake: Handshake): void {
    this.pending.delete(handshake);
  }

  /** @internal The client went away while the hook ran. */
  aborted(handshake: Handshake): void {
    this.counts.handshakesAborted++;
    this.logger.info({ remote: handshake.remoteAddress, path: handshake.url.pathname }, 'handshake abandoned: the client went away while the upgrade hook ran');
  }

  /** The hook accepted: answer 101 and start the connection. */
  private complete(handshake: Handshake, data: unknown): void {
    const { socket, head, resolved: route, request } = handshake;
    const early = handshake.release();
    if (socket.destroyed) return;
    const protocol = handshake.protocol;
    if (protocol !== undefined && !request.protocols.includes(protocol)) {
      this.hookFailed(handshake, new TypeError(`the upgrade hook chose subprotocol ${JSON.stringify(protocol)}, which the client did not offer`));
      return;
    }
    let codec: MessageCodec | undefined;
    let extensions: string | undefined;
    let response: string;
    try {
      response = acceptResponse(request.key, protocol, handshake.negotiated ? (extensions = formatExtensions([handshake.negotiated.response])) : undefined, handshake.responseHeaders);
      if (handshake.negotiated) codec = createDeflateCodec('server', handshake.negotiated.params, route.deflate);
    } catch (error) {
      this.hookFailed(handshake, error);
      return;
    }
    socket.off('error', destroySocket);
    socket.write(response);
    const ws = new WebSocket<unknown>(socket as Socket, {
      settings: route.settings,
      side: 'server',
      handlers: route.handlers,
      data,
      protocol,
      extensions,
      codec,
      logger: this.logger,
      counters: this.counters,
    });
    requestInfos.set(ws, new StoredRequest(handshake.url.href, route.pattern, handshake.params, request.origin));
    (this.clients as Set<WebSocket<unknown>>).add(ws);
    this.counts.connectionsTotal++;
    ws.start(early ? Buffer.concat([head, ...early]) : head);
  }

  /** The hook refused (HandshakeError: its status) or failed (anything else: 500). */
  private hookFailed(handshake: Handshake, error: unknown): void {
    handshake.release();
    const { socket, req } = handshake;
    if (error instanceof HandshakeError && error.status >= 200 && error.status <= 599) {
      this.refuse(socket, req, error.status, error.message, error.headers);
      return;
    }
    const err = error instanceof Error ? error : new Error(String(error));
    this.logger.error({ remote: req.socket.remoteAddress, path: pathOf(req), err: err.message, stack: err.stack }, 'upgrade hook failed');
    // The body does not repeat the error: it may hold details meant for the server's eyes only.
    this.refuse(socket, req, 500, 'internal server error');
  }

  /** @internal Answer with an HTTP error, log it, count it, close the socket. */
  refuse(socket: Duplex, req: IncomingMessage, status: number, message: string, headers: Readonly<Record<string, string>> = {}): void {
    this.rejections[status] = (this.rejections[status] ?? 0) + 1;
    this.logger.warn(
      { status, remote: req.socket.remoteAddress, path: pathOf(req), origin: req.headers.origin },
      `handshake rejected: ${message}`,
    );
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    let response: string;
    try {
      response = buildRejectResponse(status, message, headers);
    } catch (error) {
      // Bad headers from a hook's HandshakeError: still refuse, without them.
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'invalid rejection headers');
      response = buildRejectResponse(status, message);
    }
    socket.end(response, () => socket.destroy());
  }

  /** Errors of the HTTP parser on the server of `listen`: 431 for big headers, 408, 400. */
  private clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    const remote = (socket as Socket).remoteAddress;
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'HPE_REQUEST_TIMEOUT' || error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const message =
      status === 431 ? `request headers are larger than ${this.maxHeaderSize} bytes` : status === 408 ? 'request headers took too long' : 'malformed HTTP request';
    this.rejections[status] = (this.rejections[status] ?? 0) + 1;
    this.logger.warn({ status, remote, code: error.code }, `request rejected: ${message}`);
    socket.end(buildRejectResponse(status, message), () => socket.destroy());
  }

  private connectionClosed(ws: WebSocket<unknown>, code: number): void {
    (this.clients as Set<WebSocket<unknown>>).delete(ws);
    this.closes[code] = (this.closes[code] ?? 0) + 1;
    const done = closeWaiters.get(ws);
    if (done) {
      closeWaiters.delete(ws);
      done();
    }
  }

  private async shutdown(code: number, reason: string, timeout: number): Promise<void> {
    this.state = 'closing';
    this.logger.info({ connections: this.clients.size, pending: this.pending.size }, 'shutting down');
    for (const handshake of [...this.pending]) {
      if (!handshake.settle()) continue;
      handshake.abort('server shutting down');
      this.hookFailed(handshake, new HandshakeError('server shutting down', 503, { 'Retry-After': RETRY_AFTER_SECONDS }));
    }
    const own = this.httpServer;
    const stopped = own ? new Promise<void>((resolve) => own.close(() => resolve())) : Promise.resolve();
    const pending = [...this.clients].map(
      (ws) =>
        new Promise<void>((resolve) => {
          closeWaiters.set(ws, resolve);
          ws.close(code, reason);
        }),
    );
    const timer = setTimeout(() => {
      for (const ws of this.clients) ws.terminate();
    }, timeout);
    await Promise.all(pending);
    clearTimeout(timer);
    own?.closeAllConnections();
    await stopped;
    for (const [server, listener] of this.attached) server.off('upgrade', listener);
    this.attached.clear();
    this.state = 'closed';
  }
}

/**
 * Per-IP connection limits: concurrent sockets (counted from admission until the socket
 * closes) and new connections per fixed window. Entries of idle addresses are swept, so the
 * map holds at most the addresses seen in the last window plus those with open sockets.
 */
class PerIpLimits {
  private readonly open = new Map<string, number>();
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private lastSweep = 0;

  constructor(
    private readonly maxOpen: number | undefined,
    private readonly rate: { connections: number; interval: number } | undefined,
  ) {
    if (maxOpen !== undefined && !(maxOpen >= 1)) throw new RangeError(`maxConnectionsPerIp must be ≥ 1, got ${maxOpen}`);
    if (rate && !(rate.connections >= 1 && rate.interval > 0)) {
      throw new RangeError('connectionRatePerIp needs connections ≥ 1 and interval > 0 (ms)');
    }
  }

  /** Count a new connection from `ip`, or say why it is refused (429). */
  admit(socket: Duplex, ip: string): { message: string; retryAfter: number } | undefined {
    const now = Date.now();
    if (this.rate) {
      if (now - this.lastSweep > this.rate.interval && this.windows.size > 1024) {
        this.lastSweep = now;
        for (const [key, w] of this.windows) if (w.resetAt <= now) this.windows.delete(key);
      }
      let w = this.windows.get(ip);
      if (!w || w.resetAt <= now) {
        w = { count: 0, resetAt: now + this.rate.interval };
        this.windows.set(ip, w);
      }
      if (w.count >= this.rate.connections) {
        return {
          message: `too many new connections from ${ip} (limit ${this.rate.connections} per ${this.rate.interval} ms)`,
          retryAfter: Math.max(1, Math.ceil((w.resetAt - now) / 1000)),
        };
      }
      w.count++;
    }
    if (this.maxOpen !== undefined) {
      const open = this.open.get(ip) ?? 0;
      if (open >= this.maxOpen) {
        return { message: `too many connections from ${ip} (limit ${this.maxOpen})`, retryAfter: Number(RETRY_AFTER_SECONDS) };
      }
      this.open.set(ip, open + 1);
      socket.once('close', () => {
        const left = (this.open.get(ip) ?? 1) - 1;
        if (left <= 0) this.open.delete(ip);
        else this.open.set(ip, left);
      });
    }
    return undefined;
  }
}

/** Resolvers waiting for a connection to close during `close()`. */
const closeWaiters = new WeakMap<WebSocket<unknown>, () => void>();

/** What a Handshake reports to its server. */
interface HandshakeOwner {
  forget(handshake: Handshake): void;
  aborted(handshake: Handshake): void;
  refuse(socket: Duplex, req: IncomingMessage, status: number, message: string, headers?: Readonly<Record<string, string>>): void;
}

/**
 * One handshake between the request and the 101: the `UpgradeContext` given to the hook, and
 * while an asynchronous hook runs, the watch on the socket (client gone) and on the clock.
 */
class Handshake implements UpgradeContext {
  protocol: string | undefined;
  responseHeaders: Array<[string, string | readonly string[]]> | undefined;
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private early: Buffer[] | undefined;
  private earlyBytes = 0;
  private watching = false;
  private settled = false;
  private parsedCookies: Record<string, string> | undefined;

  constructor(
    private readonly server: HandshakeOwner,
    readonly req: IncomingMessage,
    readonly socket: Duplex,
    readonly head: Buffer,
    readonly url: URL,
    readonly resolved: ResolvedRoute,
    readonly params: Record<string, string>,
    readonly request: ValidatedRequest,
    readonly negotiated: { params: NegotiatedDeflate; response: ExtensionOffer } | undefined,
    protocol: string | undefined,
  ) {
    this.protocol = protocol;
  }

  get route(): string {
    return this.resolved.pattern;
  }
  get query(): URLSearchParams {
    return this.url.searchParams;
  }
  get headers(): IncomingHttpHeaders {
    return this.req.headers;
  }
  get cookies(): Readonly<Record<string, string>> {
    return (this.parsedCookies ??= parseCookies(this.req.headers.cookie));
  }
  get remoteAddress(): string | undefined {
    return this.req.socket.remoteAddress;
  }
  get origin(): string | undefined {
    return this.request.origin;
  }
  get protocols(): readonly string[] {
    return this.request.protocols;
  }
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  /** Add a response header (bound on first use, so `({ setHeader }) => …` works). */
  get setHeader(): (name: string, value: string | readonly string[]) => void {
    const bound = (name: string, value: string | readonly string[]): void => {
      (this.responseHeaders ??= []).push([name, value]);
    };
    Object.defineProperty(this, 'setHeader', { value: bound });
    return bound;
  }

  /** Refuse the upgrade; needs no `this`, so `({ reject }) => …` works without binding. */
  readonly reject = rejectUpgrade;

  /** Watch the socket (client gone, early data) and the clock while an async hook runs. */
  watch(timeout: number): void {
    this.watching = true;
    const socket = this.socket;
    this.onData = (chunk) => this.earlyData(chunk);
    this.onGone = () => this.gone();
    socket.on('data', this.onData);
    socket.on('end', this.onGone);
    socket.on('close', this.onGone);
    this.timer = setTimeout(() => this.timedOut(), timeout);
  }

  /** Marks the handshake decided; false if it already was (client gone, timed out, shut down). */
  settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    return true;
  }

  /** Stop watching; returns data the client sent early (before our 101), if any. */
  release(): Buffer[] | undefined {
    if (this.watching) {
      this.watching = false;
      clearTimeout(this.timer);
      this.socket.off('data', this.onData!);
      this.socket.off('end', this.onGone!);
      this.socket.off('close', this.onGone!);
      this.server.forget(this);
    }
    return this.early;
  }

  /** Abort `signal` (the hook's work is no longer wanted). */
  abort(reason: string): void {
    this.controller?.abort(new Error(reason));
  }

  // The watchers exist only while an asynchronous hook runs (most handshakes never need them).
  private onData: ((chunk: Buffer) => void) | undefined;
  private onGone: (() => void) | undefined;

  private earlyData(chunk: Buffer): void {
    this.earlyBytes += chunk.length;
    if (this.earlyBytes > MAX_EARLY_DATA) {
      this.socket.destroy(); // → onGone
      return;
    }
    (this.early ??= []).push(chunk);
  }

  private gone(): void {
    this.release();
    this.abort('the client went away');
    this.socket.destroy();
    if (this.settle()) this.server.aborted(this);
  }

  private timedOut(): void {
    if (!this.settle()) return;
    this.release();
    this.abort('handshake timed out');
    this.server.refuse(this.socket, this.req, 503, 'the server took too long to accept the connection', { 'Retry-After': RETRY_AFTER_SECONDS });
  }
}

function rejectUpgrade(status: number, message: string, headers?: Readonly<Record<string, string>>): never {
  throw new HandshakeError(message, status, headers);
}

// ---- helpers ------------------------------------------------------------------------------------

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
  'maxQueuedMessages',
  'messageRate',
] as const satisfies ReadonlyArray<keyof ConnectionSettings>;
type MissingSettingsKey = Exclude<keyof ConnectionSettings, (typeof SETTINGS_KEYS)[number]>;
// A compile error here means ConnectionSettings grew a field: add it to SETTINGS_KEYS.
const settingsKeysComplete: [MissingSettingsKey] extends [never] ? true : MissingSettingsKey = true;
void settingsKeysComplete;

/** The `ConnectionSettings` fields of an options object that are set (so they can override). */
function definedSettings(options: ConnectionSettings): ConnectionSettings {
  const out: Record<string, unknown> = {};
  for (const key of SETTINGS_KEYS) if (options[key] !== undefined) out[key] = options[key];
  return out as ConnectionSettings;
}

function deflateOptions(option: boolean | PerMessageDeflateOptions | undefined): PerMessageDeflateOptions | undefined {
  return option === true ? {} : option || undefined;
}

function prepareOrigins(rules: readonly OriginRule[]): OriginCheck {
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

/** RFC 6455 §10.2: the server decides on `Origin`; browsers always send it, so its absence means a non-browser client. */
function originAllowed(check: OriginCheck, origin: string | undefined): boolean {
  if (origin === undefined) return check.allowMissing;
  if (check.exact.has(origin.toLowerCase())) return true;
  for (const pattern of check.patterns) {
    pattern.lastIndex = 0; // a /g or /y RegExp keeps state between tests
    if (pattern.test(origin)) return true;
  }
  return false;
}

/** The request URL, or undefined when the request-target is not one (answered 400 or left alone). */
function requestUrl(req: IncomingMessage): URL | undefined {
  const target = req.url ?? '/';
  const scheme = (req.socket as TLSSocket).encrypted ? 'wss' : 'ws';
  try {
    // Origin-form (`/path?q`), the usual case. Prefixing keeps `//host/x` a path, not an authority.
    if (target.startsWith('/')) {
      try {
        return new URL(`${scheme}://${req.headers.host ?? 'localhost'}${target}`);
      } catch {
        return new URL(`${scheme}://localhost${target}`); // a bad Host is validateRequest's to refuse
      }
    }
    return new URL(target); // absolute-form (RFC 7230 §5.3.2)
  } catch {
    return undefined;
  }
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Bytes of the request line and headers, as they came (the request line approximated). */
function headerSize(req: IncomingMessage): number {
  let size = (req.method?.length ?? 0) + (req.url?.length ?? 0) + 12;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i++) size += raw[i]!.length + 2; // `: ` and CRLF
  return size;
}

/** RFC 6265 §5.4 `Cookie: a=1; b=2`, the first of a repeated name kept (it is the most specific). */
export function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!header) return cookies;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    const name = pair.slice(0, eq).trim();
    if (name === '' || name in cookies) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    cookies[name] = value.includes('%') ? safeDecode(value) : value;
  }
  return cookies;
}

/** The 101 response, with the hook's headers (one line per value of a repeated header). */
function acceptResponse(
  key: string,
  protocol: string | undefined,
  extensions: string | undefined,
  extra: ReadonlyArray<[string, string | readonly string[]]> | undefined,
): string {
  if (!extra) return buildAcceptResponse({ key, protocol, extensions });
  const single: Record<string, string> = {};
  let more = '';
  for (const [name, value] of extra) {
    const values = typeof value === 'string' ? [value] : value;
    for (const v of values) {
      if (!(name in single)) {
        single[name] = v; // validated (and refused if reserved) by buildAcceptResponse
        continue;
      }
      if (!isToken(name) || /[\r\n\0]/.test(v)) throw new TypeError(`Invalid response header ${JSON.stringify(name)}`);
      more += `${name}: ${v}\r\n`;
    }
  }
  const response = buildAcceptResponse({ key, protocol, extensions, headers: single });
  return more ? response.slice(0, -2) + more + '\r\n' : response;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}

function answerPlainRequest(req: IncomingMessage, res: ServerResponse): void {
  const body = 'This is a WebSocket endpoint: connect with a WebSocket client.\n';
  // RFC 7230 §6.7: a 426 names the protocol in Upgrade, listed in Connection; a request that asked
  // for `close` still gets it (setting Connection ourselves stops Node from adding it).
  const close = req.httpVersion === '1.0' || /(^|[\s,])close($|[\s,])/i.test(req.headers.connection ?? '');
  res.writeHead(426, { Upgrade: 'websocket', Connection: close ? 'Upgrade, close' : 'Upgrade', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function destroySocket(this: Duplex): void {
  this.destroy();
}
