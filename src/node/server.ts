/**
 * The WebSocket server binding: answers HTTP upgrade requests (RFC 6455 §4.2) on a server of
 * its own (`listen`) or on any existing `http.Server`/`https.Server` (`attach`, or
 * `handleUpgrade` from your own `upgrade` listener), and keeps the set of live connections for
 * broadcast and graceful shutdown.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode } from '../protocol/constants.js';
import { HandshakeError } from '../protocol/errors.js';
import type { MessageCodec } from '../protocol/extension.js';
import { buildAcceptResponse, buildRejectResponse, selectSubprotocol, validateRequest } from '../protocol/handshake.js';
import { formatExtensions } from '../protocol/headers.js';
import { negotiateServer, type PerMessageDeflateOptions } from '../protocol/permessage-deflate.js';
import { createDeflateCodec } from './deflate.js';
import { silentLogger, type Logger } from './logger.js';
import { WebSocket, type MessageData, type WebSocketHandlers } from './websocket.js';

/** Options of a `WebSocketServer`. */
export interface WebSocketServerOptions<Data = undefined> {
  /** Callbacks shared by every connection. */
  handlers: WebSocketHandlers<Data>;
  /**
   * Accept permessage-deflate when a client offers it (RFC 7692). Off by default, as in ws
   * and uWebSockets: compression costs CPU and memory per connection; turn it on for text-heavy
   * traffic. `true` uses the defaults of `PerMessageDeflateOptions`.
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Subprotocols this server speaks, preferred first; the first one the client offers is chosen. */
  protocols?: readonly string[];
  /** Largest message accepted, in bytes, after decompression (default 100 MiB, as ws); more → 1009. */
  maxMessageSize?: number;
  /** Deliver text messages as Buffers of validated UTF-8 rather than strings (saves a decode). */
  textAsBuffer?: boolean;
  /** How long to wait for the peer's close frame or TCP close, in ms (default 10 s). */
  closeTimeout?: number;
  /** Where log lines go (default: nowhere). */
  logger?: Logger;
  /** Per-connection context, computed from the upgrade request (default: undefined). */
  data?: (req: IncomingMessage) => Data;
}

/** A WebSocket server. */
export class WebSocketServer<Data = undefined> {
  /** Live connections. */
  readonly clients = new Set<WebSocket<Data>>();
  private readonly options: WebSocketServerOptions<Data>;
  private readonly deflate: PerMessageDeflateOptions | undefined;
  private readonly logger: Logger;
  private readonly handlers: WebSocketHandlers<Data>;
  private httpServer: HttpServer | undefined;
  private readonly attached: HttpServer[] = [];
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void =>
    this.handleUpgrade(req, socket, head);

  constructor(options: WebSocketServerOptions<Data>) {
    this.options = options;
    this.deflate = options.perMessageDeflate === true ? {} : options.perMessageDeflate || undefined;
    this.logger = options.logger ?? silentLogger;
    const user = options.handlers;
    const clients = this.clients;
    // One handler object per server: it keeps `clients` current and forwards to the user's.
    this.handlers = {
      open: (ws) => {
        clients.add(ws);
        user.open?.(ws);
      },
      close: (ws, code, reason) => {
        clients.delete(ws);
        notifyClosed(ws as WebSocket<unknown>);
        user.close?.(ws, code, reason);
      },
      message: user.message ? (ws: WebSocket<Data>, data: MessageData, isBinary: boolean) => user.message!(ws, data, isBinary) : undefined,
      ping: user.ping,
      pong: user.pong,
      drain: user.drain,
      error: user.error,
    };
  }

  /**
   * Listen on a server of its own. Plain HTTP requests get 426 Upgrade Required.
   * Resolves with the bound address (use port 0 for an ephemeral port).
   */
  async listen(port: number, host = '127.0.0.1'): Promise<AddressInfo> {
    const server = createServer(answerPlainRequest);
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

  /** Answer WebSocket upgrades of an existing HTTP(S) server (e.g. the one behind an Express app). */
  attach(server: HttpServer): this {
    server.on('upgrade', this.onUpgrade);
    this.attached.push(server);
    return this;
  }

  /** The address of the server started by `listen`. */
  address(): AddressInfo | undefined {
    return (this.httpServer?.address() as AddressInfo | null) ?? undefined;
  }

  /**
   * Perform the opening handshake on an upgrade request (for use in your own `upgrade`
   * listener). Invalid requests are answered with the status RFC 6455 asks for and closed.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroySocket);
    let response: string;
    let codec: MessageCodec | undefined;
    let protocol: string | undefined;
    let extensions: string | undefined;
    try {
      const request = validateRequest({ method: req.method ?? '', httpVersion: req.httpVersion, url: req.url ?? '/', headers: req.headers });
      protocol = this.options.protocols ? selectSubprotocol(request.protocols, this.options.protocols) : undefined;
      if (this.deflate) {
        const accepted = negotiateServer(request.extensions, this.deflate);
        if (accepted) {
          codec = createDeflateCodec('server', accepted.params, this.deflate);
          extensions = formatExtensions([accepted.response]);
        }
      }
      response = buildAcceptResponse({ key: request.key, protocol, extensions });
    } catch (error) {
      if (!(error instanceof HandshakeError)) throw error;
      this.reject(socket, req, error.status, error.message, error.headers);
      return;
    }
    socket.off('error', destroySocket);
    socket.write(response);
    const ws = new WebSocket<Data>(socket as Socket, {
      side: 'server',
      handlers: this.handlers,
      data: this.options.data ? this.options.data(req) : (undefined as Data),
      protocol,
      extensions,
      codec,
      maxMessageSize: this.options.maxMessageSize,
      textAsBuffer: this.options.textAsBuffer,
      closeTimeout: this.options.closeTimeout,
      logger: this.logger,
    });
    ws.start(head);
  }

  /** Answer an upgrade request with an HTTP error and close the socket. */
  reject(socket: Duplex, req: IncomingMessage, status: number, message: string, headers: Readonly<Record<string, string>> = {}): void {
    this.logger.warn({ status, remote: req.socket.remoteAddress, url: req.url }, `handshake rejected: ${message}`);
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(buildRejectResponse(status, message, { ...headers }), () => socket.destroy());
  }

  /**
   * Graceful shutdown: stop accepting, close every connection with `code` (1001 Going Away by
   * default), wait for the closing handshakes (at most `timeout` ms, then terminate), resolve
   * when all are closed.
   */
  async close(code: number = CloseCode.GoingAway, reason = 'server shutting down', timeout = 5000): Promise<void> {
    for (const server of this.attached) server.off('upgrade', this.onUpgrade);
    const stopped = this.httpServer
      ? new Promise<void>((resolve) => this.httpServer!.close(() => resolve()))
      : Promise.resolve();
    const pending = [...this.clients].map(
      (ws) =>
        new Promise<void>((resolve) => {
          const done = (): void => resolve();
          closeWaiters.set(ws as WebSocket<unknown>, done);
          ws.close(code, reason);
        }),
    );
    const timer = setTimeout(() => {
      for (const ws of this.clients) ws.terminate();
    }, timeout);
    await Promise.all(pending);
    clearTimeout(timer);
    this.httpServer?.closeAllConnections();
    await stopped;
  }
}

/** Resolvers waiting for a connection to close during `close()`. */
const closeWaiters = new WeakMap<WebSocket<unknown>, () => void>();

/** Called when a connection closed: resolves `close()`'s wait for it. */
function notifyClosed(ws: WebSocket<unknown>): void {
  const done = closeWaiters.get(ws);
  if (done) {
    closeWaiters.delete(ws);
    done();
  }
}

function answerPlainRequest(_req: IncomingMessage, res: ServerResponse): void {
  const body = 'This is a WebSocket endpoint: connect with a WebSocket client.\n';
  res.writeHead(426, { Upgrade: 'websocket', Connection: 'Upgrade', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function destroySocket(this: Duplex): void {
  this.destroy();
}
