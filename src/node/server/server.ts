/**
 * The WebSocket server: answers HTTP upgrade requests (RFC 6455 §4.2) on a server of its own
 * (`listen`, plain or TLS) or on any existing `http.Server`/`https.Server` (`attach`, or
 * `handleUpgrade` from your own `upgrade` listener); routes them by path (no route: 404) and
 * hands them to the opening handshake (`handshake.ts`, where the order of the other checks is);
 * keeps the set of live connections for broadcast, statistics and graceful shutdown.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode } from '../../protocol/constants.js';
import { createTrafficCounters } from '../counters.js';
import type { MessageData, WebSocketHandlers } from '../handlers.js';
import { silentLogger, type Logger } from '../logger.js';
import type { WebSocket } from '../websocket.js';
import { Admission, type Refusal } from './admission.js';
import { OpeningHandshakes, type HandshakeHost } from './handshake.js';
import {
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_HEADERS_TIMEOUT,
  DEFAULT_MAX_HEADER_SIZE,
  deflateOptions,
  prepareOrigins,
  resolveRoute,
  type AttachOptions,
  type ResolvedRoute,
  type RouteOptions,
  type ServerDefaults,
  type ServerStats,
  type UpgradeHook,
  type WebSocketServerOptions,
} from './options.js';
import { pathOf, requestUrl, safeDecode } from './request.js';
import { answerPlainRequest, endWithError, parserErrorResponse } from './responses.js';
import { Router } from './router.js';

/** A WebSocket server. */
export class WebSocketServer<Data = undefined> {
  /** Live connections, every route's. */
  readonly clients: ReadonlySet<WebSocket<unknown>> = new Set<WebSocket<unknown>>();
  private readonly options: WebSocketServerOptions<Data>;
  private readonly logger: Logger;
  private readonly router = new Router<ResolvedRoute>();
  private readonly fallback: ResolvedRoute | undefined;
  private readonly defaults: ServerDefaults;
  private readonly maxHeaderSize: number;
  private readonly handshakes: OpeningHandshakes;
  private readonly counters = createTrafficCounters();
  private readonly counts = { connectionsTotal: 0, errors: 0 };
  private readonly rejections: Record<number, number> = {};
  private readonly closes: Record<number, number> = {};
  private httpServer: HttpServer | HttpsServer | undefined;
  private readonly attached = new Map<HttpServer | HttpsServer, (req: IncomingMessage, socket: Duplex, head: Buffer) => void>();
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
    this.defaults = { options, deflate: deflateOptions(options.perMessageDeflate), origins: options.origins ? prepareOrigins(options.origins) : undefined };
    const admission = new Admission(options);
    this.maxHeaderSize = options.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
    const clients = this.clients as Set<WebSocket<unknown>>;
    const host: HandshakeHost = {
      logger: this.logger,
      counters: this.counters,
      connections: () => clients.size,
      refuse: (socket, req, refusal) => this.refuse(socket, req, refusal),
      opened: (ws) => {
        clients.add(ws);
        this.counts.connectionsTotal++;
      },
    };
    this.handshakes = new OpeningHandshakes(host, admission, this.maxHeaderSize, options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT);
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
        this.refuse(socket, req, { status: 404, message: `no WebSocket endpoint at ${pathOf(req)}` });
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
   * A request target that is neither a path nor an absolute URL is answered with 400.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = requestUrl(req);
    if (!url) {
      // Neither a path nor an absolute URL (e.g. `GET abc`): a malformed request, not a missing route.
      this.refuse(socket, req, { status: 400, message: `invalid request target ${JSON.stringify(pathOf(req).slice(0, 64))}` });
      return true;
    }
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
    this.handshakes.start(req, socket, head, url, route, params);
    return true;
  }

  /** A snapshot of the server's counters (cheap: plain numbers, copied). */
  stats(): ServerStats {
    return {
      connections: this.clients.size,
      connectionsTotal: this.counts.connectionsTotal,
      handshakesPending: this.handshakes.pending,
      handshakesAborted: this.handshakes.abandoned,
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

  /** A route's options merged with the server's, computed once per route. */
  private resolve(pattern: string, options: RouteOptions<unknown>): ResolvedRoute {
    return resolveRoute(pattern, options, this.defaults, (user) => this.wrapHandlers(user));
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

  /** Answer an upgrade request with an HTTP error, log it, count it, close the socket. */
  private refuse(socket: Duplex, req: IncomingMessage, { status, message, headers }: Refusal): void {
    count(this.rejections, status);
    this.logger.warn({ status, remote: req.socket.remoteAddress, path: pathOf(req), origin: req.headers.origin }, `handshake rejected: ${message}`);
    endWithError(socket, status, message, headers, this.logger);
  }

  /** Errors of the HTTP parser on the server of `listen`: 431 for big headers, 408, 400. */
  private clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const { status, message } = parserErrorResponse(error.code, this.maxHeaderSize);
    count(this.rejections, status);
    this.logger.warn({ status, remote: (socket as Socket).remoteAddress, code: error.code }, `request rejected: ${message}`);
    endWithError(socket, status, message, undefined, this.logger);
  }

  private connectionClosed(ws: WebSocket<unknown>, code: number): void {
    (this.clients as Set<WebSocket<unknown>>).delete(ws);
    count(this.closes, code);
    const done = closeWaiters.get(ws);
    if (done) {
      closeWaiters.delete(ws);
      done();
    }
  }

  private async shutdown(code: number, reason: string, timeout: number): Promise<void> {
    this.logger.info({ connections: this.clients.size, pending: this.handshakes.pending }, 'shutting down');
    this.handshakes.stop();
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
  }
}

/** Resolvers waiting for a connection to close during `close()`. */
const closeWaiters = new WeakMap<WebSocket<unknown>, () => void>();

function count(counts: Record<number, number>, key: number): void {
  counts[key] = (counts[key] ?? 0) + 1;
}
