/**
 * ws 8's `WebSocketServer` on duplex's handshake functions: `port` (it listens itself and answers
 * plain requests with 426), `server` (an http(s) server's `upgrade` events) or `noServer`
 * (`handleUpgrade` by hand); `path`, `verifyClient`, `handleProtocols`, `perMessageDeflate`
 * (off by default, as in ws), client tracking, and ws's events: `connection`, `headers`,
 * `listening`, `error`, `wsClientError`, `close`. `close()` stops accepting and does not close
 * the clients (ws 8).
 */
import { TypedEmitter } from './typed-emitter.js';
import { createServer, STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { buildAcceptResponse } from '../protocol/handshake-server.js';
import type { PerMessageDeflateOptions as EngineDeflateOptions } from '../protocol/permessage-deflate.js';
import { createDeflateCodec } from '../node/deflate.js';
import { nodeSha1 } from '../node/sha1.js';
import type { SocketBinding } from './binding.js';
import { CLOSE_TIMEOUT, MAX_BUFFERED_CHUNKS, MAX_FRAGMENTS, MAX_PAYLOAD, MAX_PENDING_AUTO_PONGS } from './constants.js';
import { toDeflateOptions } from './deflate-options.js';
import type { ServerOptions, VerifyClientCallback, VerifyClientInfo } from './options.js';
import { checkRequest, isRefusal, negotiateDeflate, readProtocols, writeRefusal, type DeflateAgreement, type Refusal } from './upgrade.js';
import { WebSocket } from './websocket.js';

/** The options with ws's defaults applied (`wss.options`, as in ws). */
export type ResolvedServerOptions = Required<Pick<ServerOptions,
  'allowSynchronousEvents' | 'autoPong' | 'maxPayload' | 'maxBufferedChunks' | 'maxFragments' | 'maxPendingAutoPongs' |
  'skipUTF8Validation' | 'clientTracking' | 'closeTimeout' | 'noServer'
>> & ServerOptions & { WebSocket: typeof WebSocket };

/** The events of a `WebSocketServer`, with their listeners' arguments (the types @types/ws gives). */
export interface WebSocketServerEvents {
  /** A client connected (after `handleUpgrade`, in `port` and `server` modes). */
  connection: [ws: WebSocket, request: IncomingMessage];
  /** The http(s) server failed (e.g. EADDRINUSE). */
  error: [error: Error];
  /** The 101's lines, before they are written: change them in place. */
  headers: [headers: string[], request: IncomingMessage];
  /** The server closed. */
  close: [];
  /** The http server listens. */
  listening: [];
  /** A refusal a listener takes over (it answers the socket itself). */
  wsClientError: [error: Error, socket: Duplex, request: IncomingMessage];
}


/** `handleUpgrade`'s callback: the new connection and its request. */
export type UpgradeCallback = (ws: WebSocket, request: IncomingMessage) => void;

const RUNNING = 0;
const CLOSING = 1;
const CLOSED = 2;

/** Set on a socket once it is upgraded: a second `handleUpgrade` with it is a misconfiguration. */
const kUpgraded = Symbol('duplex.ws.upgraded');
/** The server tracking a client, for the shared `close` listener. */
const kServer = Symbol('duplex.ws.server');

type UpgradedSocket = Duplex & { [kUpgraded]?: boolean };
type TrackedClient = WebSocket & { [kServer]?: WebSocketServer };

/** ws's answer to a plain HTTP request on the server it listens with: 426 Upgrade Required. */
function answerPlainRequest(_req: IncomingMessage, res: ServerResponse): void {
  const body = STATUS_CODES[426]!;
  res.writeHead(426, { 'Content-Length': body.length, 'Content-Type': 'text/plain' });
  res.end(body);
}

/** The callback a synchronous `verifyClient` is given, and ignores. */
function ignoreVerdict(): void {}

/** Until upgraded, a socket error just destroys the socket (ws logs nothing). */
function socketOnError(this: Duplex): void {
  this.destroy();
}

function emitClose(server: WebSocketServer): void {
  server.markClosed();
  server.emit('close');
}

/** The `close` listener of every tracked client (shared: `this` is the client). */
function onClientClose(this: TrackedClient): void {
  const server = this[kServer];
  if (server !== undefined) server.untrack(this);
}

/**
 * A WebSocket server with ws 8's API (`import { WebSocketServer } from 'duplex-ws/ws'`).
 * Events: `connection` (ws, req), `headers` (lines, req: change the 101's lines before they are
 * written), `listening`, `error` (error), `wsClientError` (error, socket, req: a listener takes over
 * the refusal), `close`.
 */
export class WebSocketServer extends TypedEmitter<WebSocketServerEvents> {
  /** The options with ws's defaults. */
  readonly options: ResolvedServerOptions;
  /** The open connections, with `clientTracking` (the default; without it, undefined as in ws). */
  readonly clients!: Set<WebSocket>;
  private _server: HttpServer | HttpsServer | null = null;
  private _removeListeners: (() => void) | null = null;
  private _state = RUNNING;
  private _shouldEmitClose = false;
  private readonly deflate: EngineDeflateOptions | undefined;

  /**
   * @param callback With `port`: a `listening` listener.
   * @throws TypeError unless exactly one of `port`, `server` and `noServer` is given (ws's message).
   */
  constructor(options: ServerOptions, callback?: () => void) {
    super();
    const resolved: ResolvedServerOptions = {
      allowSynchronousEvents: true,
      autoPong: true,
      maxPayload: MAX_PAYLOAD,
      maxBufferedChunks: MAX_BUFFERED_CHUNKS,
      maxFragments: MAX_FRAGMENTS,
      maxPendingAutoPongs: MAX_PENDING_AUTO_PONGS,
      skipUTF8Validation: false,
      perMessageDeflate: false,
      clientTracking: true,
      closeTimeout: CLOSE_TIMEOUT,
      noServer: false,
      WebSocket,
      ...options,
    };
    if (
      (resolved.port == null && !resolved.server && !resolved.noServer) ||
      (resolved.port != null && (resolved.server || resolved.noServer)) ||
      (resolved.server && resolved.noServer)
    ) {
      throw new TypeError('One and only one of the "port", "server", or "noServer" options must be specified');
    }
    if (resolved.port != null) {
      const server = createServer(answerPlainRequest);
      this._server = server;
      server.listen(resolved.port, resolved.host, resolved.backlog, callback);
    } else if (resolved.server) {
      this._server = resolved.server;
    }
    if (this._server !== null) {
      const server = this._server;
      const onListening = (): boolean => this.emit('listening');
      const onError = (error: Error): boolean => this.emit('error', error);
      const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void =>
        this.handleUpgrade(req, socket, head, (ws, request) => this.emit('connection', ws, request));
      server.on('listening', onListening);
      server.on('error', onError);
      server.on('upgrade', onUpgrade);
      this._removeListeners = () => {
        server.removeListener('listening', onListening);
        server.removeListener('error', onError);
        server.removeListener('upgrade', onUpgrade);
      };
    }
    if (resolved.perMessageDeflate === true) resolved.perMessageDeflate = {};
    this.deflate = toDeflateOptions(resolved.perMessageDeflate, true);
    if (resolved.clientTracking) this.clients = new Set();
    this.options = resolved;
  }

  /**
   * Where the server listens (`server.address()`), null before it does.
   * @throws Error in noServer mode: 'The server is operating in "noServer" mode'.
   */
  address(): AddressInfo | string | null {
    if (this.options.noServer) throw new Error('The server is operating in "noServer" mode');
    if (this._server === null) return null;
    return this._server.address();
  }

  /**
   * Stop accepting connections. The http server is closed if this server created it (`port`);
   * open connections are not closed (ws 8). `close` is emitted once the server is closed and, with
   * client tracking in `server`/`noServer` mode, the clients are gone. `cb` gets an error if the
   * server was already closed.
   */
  close(cb?: (error?: Error) => void): void {
    if (this._state === CLOSED) {
      if (cb) this.once('close', () => cb(new Error('The server is not running')));
      process.nextTick(emitClose, this);
      return;
    }
    if (cb) this.once('close', cb);
    if (this._state === CLOSING) return;
    this._state = CLOSING;
    if (this.options.noServer || this.options.server) {
      if (this._server !== null) {
        this._removeListeners!();
        this._removeListeners = this._server = null;
      }
      if (this.clients !== undefined && this.clients.size > 0) this._shouldEmitClose = true;
      else process.nextTick(emitClose, this);
    } else {
      const server = this._server!;
      this._removeListeners!();
      this._removeListeners = this._server = null;
      server.close(() => emitClose(this));
    }
  }

  /** Whether this server takes `req`: with `path`, the request's path must be it (the query aside). */
  shouldHandle(req: IncomingMessage): boolean {
    const path = this.options.path;
    if (path) {
      const url = req.url ?? '';
      const index = url.indexOf('?');
      if ((index === -1 ? url : url.slice(0, index)) !== path) return false;
    }
    return true;
  }

  /**
   * Complete (or refuse) the opening handshake of `req` on `socket` and call `cb` with the new
   * connection. Refusals are answered on the socket (or handed to `wsClientError` listeners).
   * @throws Error when called a second time with the same socket (ws's message).
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: UpgradeCallback): void {
    socket.on('error', socketOnError);
    const first = checkRequest(req);
    if (isRefusal(first)) {
      this.refuse(req, socket, first);
      return;
    }
    if (!this.shouldHandle(req)) {
      writeRefusal(socket, 400);
      return;
    }
    const protocols = readProtocols(req);
    if (isRefusal(protocols)) {
      this.refuse(req, socket, protocols);
      return;
    }
    let deflate: DeflateAgreement | undefined;
    if (this.deflate !== undefined) {
      const agreed = negotiateDeflate(req, this.deflate);
      if (agreed !== undefined && isRefusal(agreed)) {
        this.refuse(req, socket, agreed);
        return;
      }
      deflate = agreed;
    }
    const verifyClient = this.options.verifyClient;
    if (verifyClient) {
      const version = Number(req.headers['sec-websocket-version']);
      const info: VerifyClientInfo = {
        origin: req.headers[version === 8 ? 'sec-websocket-origin' : 'origin'] as string | undefined,
        secure: Boolean((req.socket as { authorized?: boolean }).authorized || (req.socket as { encrypted?: boolean }).encrypted),
        req,
      };
      if (verifyClient.length === 2) {
        const done: VerifyClientCallback = (verified, code, message, headers) => {
          if (!verified) {
            writeRefusal(socket, code || 401, message, headers);
            return;
          }
          this.completeUpgrade(deflate, first.key, protocols, req, socket, head, cb);
        };
        verifyClient(info, done);
        return;
      }
      if (!verifyClient(info, ignoreVerdict)) {
        writeRefusal(socket, 401);
        return;
      }
    }
    this.completeUpgrade(deflate, first.key, protocols, req, socket, head, cb);
  }

  /** @internal The server is closed (its `close` is being emitted). */
  markClosed(): void {
    this._state = CLOSED;
  }

  /** @internal A tracked client closed. */
  untrack(ws: WebSocket): void {
    this.clients?.delete(ws);
    if (this._shouldEmitClose && !this.clients?.size) process.nextTick(emitClose, this);
  }

  /** Refuse, or hand the refusal to `wsClientError` listeners (ws: they answer the socket themselves). */
  private refuse(req: IncomingMessage, socket: Duplex, refusal: Refusal): void {
    if (this.listenerCount('wsClientError') > 0) {
      this.emit('wsClientError', new Error(refusal.message), socket, req);
      return;
    }
    writeRefusal(socket, refusal.status, refusal.message, refusal.headers as OutgoingHttpHeaders | undefined);
  }

  private completeUpgrade(
    deflate: DeflateAgreement | undefined,
    key: string,
    protocols: Set<string>,
    req: IncomingMessage,
    socket: UpgradedSocket,
    head: Buffer,
    cb: UpgradeCallback,
  ): void {
    // The client already sent its FIN (or the socket failed): nothing to answer.
    if (!socket.readable || !socket.writable) {
      socket.destroy();
      return;
    }
    if (socket[kUpgraded]) {
      throw new Error('server.handleUpgrade() was called more than once with the same socket, possibly due to a misconfiguration');
    }
    if (this._state > RUNNING) {
      writeRefusal(socket, 503);
      return;
    }
    const options = this.options;
    const ws = new options.WebSocket(null, undefined, options);
    let protocol: string | undefined;
    if (protocols.size > 0) {
      const chosen = options.handleProtocols ? options.handleProtocols(protocols, req) : protocols.values().next().value;
      if (chosen) protocol = chosen;
    }
    const response = buildAcceptResponse({ key, protocol, extensions: deflate?.header, sha1: nodeSha1 });
    // The lines without the blank line that ends them, for 'headers' listeners to change.
    const lines = response.split('\r\n').slice(0, -2);
    this.emit('headers', lines, req);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    socket.removeListener('error', socketOnError);
    socket[kUpgraded] = true;
    const binding: SocketBinding = {
      side: 'server',
      protocol: protocol ?? '',
      extensions: deflate === undefined ? '' : 'permessage-deflate',
      codec: deflate === undefined ? undefined : createDeflateCodec('server', deflate.params, this.deflate),
      maxPayload: options.maxPayload,
      skipUTF8Validation: options.skipUTF8Validation,
      allowSynchronousEvents: options.allowSynchronousEvents,
      autoPong: options.autoPong,
      maxBufferedChunks: options.maxBufferedChunks,
      maxFragments: options.maxFragments,
    };
    ws.setSocket(socket, head, binding);
    if (this.clients !== undefined) {
      this.clients.add(ws);
      (ws as TrackedClient)[kServer] = this;
      ws.on('close', onClientClose);
    }
    cb(ws, req);
  }
}
