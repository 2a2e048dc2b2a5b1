/**
 * The Node binding of one connection: a `net.Socket` (or `tls.TLSSocket`) driven by the
 * sans-I/O `Connection`. Shared by server peers and clients. Callbacks come from a handler
 * object shared by every connection of a route (uWebSockets' "behaviour"), so a connection
 * costs no closures; the engine reports to this class's own methods.
 */
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import { CloseCode, State, type Side } from '../protocol/constants.js';
import type { ConnectionHandler } from '../protocol/connection.js';
import { Connection } from '../protocol/connection.js';
import type { ProtocolError } from '../protocol/errors.js';
import type { MessageCodec } from '../protocol/extension.js';
import { silentLogger, type Logger } from './logger.js';

/** A received message: a string for text (unless `textAsBuffer`), a Buffer for binary. */
export type MessageData = string | Buffer;

/** Callbacks for a connection's life. `this`-free: each gets the connection first. */
export interface WebSocketHandlers<Data = unknown> {
  /** The connection is open (handshake done). */
  open?(ws: WebSocket<Data>): void;
  /** A complete message arrived. */
  message?(ws: WebSocket<Data>, data: MessageData, isBinary: boolean): void;
  /** A ping arrived (the pong is sent automatically). */
  ping?(ws: WebSocket<Data>, data: Buffer): void;
  /** A pong arrived. */
  pong?(ws: WebSocket<Data>, data: Buffer): void;
  /** The send buffer fell below the low watermark after `send()` returned false. */
  drain?(ws: WebSocket<Data>): void;
  /** Something went wrong (protocol violation by the peer, socket error, a handler threw). */
  error?(ws: WebSocket<Data>, error: Error): void;
  /** The connection is closed; `code` is the peer's close code, 1005 if none, 1006 if no close frame came. */
  close?(ws: WebSocket<Data>, code: number, reason: string): void;
}

/**
 * Per-connection tunables. A server takes them at the server level and a route may override
 * them; a client takes them in `connect()`'s options. Every one has a default.
 */
export interface ConnectionSettings {
  /** Largest message accepted, in bytes, after decompression (default 100 MiB, as ws); more → 1009. */
  maxMessageSize?: number;
  /** Deliver text messages as Buffers of validated UTF-8 instead of strings (saves a decode). */
  textAsBuffer?: boolean;
  /** How long to wait for the peer's side of the closing handshake, in ms (default 10 s). */
  closeTimeout?: number;
  /** Send a ping after this many ms without traffic from the peer; 0 turns keepalive off (default 25 s). */
  pingInterval?: number;
  /** Close with 1006 (terminate) when no pong or other data came this many ms after a ping (default 20 s). */
  pingTimeout?: number;
  /** Close with 1001 after this many ms without any message either way; 0 = never (default 0). */
  idleTimeout?: number;
  /** `send()` returns false once `bufferedAmount` reaches this many bytes (default 64 KiB). */
  highWaterMark?: number;
  /** `drain` fires when `bufferedAmount` falls back to this many bytes (default 16 KiB). */
  lowWaterMark?: number;
  /**
   * Ceiling for `bufferedAmount`: a send that finds this much already buffered applies the
   * slow-consumer policy (default 4 MiB).
   */
  maxBufferedAmount?: number;
  /** Over the ceiling: close with 1008 (`'close'`, the default) or drop the message (`'drop'`). */
  slowConsumer?: 'close' | 'drop';
  /**
   * Async iteration only: stop reading from the socket while this many messages wait to be
   * consumed (default 16), so a fast sender cannot grow memory without bound.
   */
  maxQueuedMessages?: number;
}

/** Everything a connection is created with (the server and `connect()` fill this in). */
export interface WebSocketOptions<Data = unknown> extends ConnectionSettings {
  side: Side;
  handlers: WebSocketHandlers<Data>;
  data: Data;
  protocol?: string;
  extensions?: string;
  codec?: MessageCodec | undefined;
  logger?: Logger;
  /** Identifies the connection in log lines. */
  id?: string;
}

/** Options of one `send`. */
export interface SendOptions {
  /** Send as binary even if `data` is a string. */
  binary?: boolean;
  /** Compress if permessage-deflate was negotiated and the message reaches its threshold (default true). */
  compress?: boolean;
}

const DEFAULT_CLOSE_TIMEOUT = 10_000;
/** `send()` returns false once this much is buffered (the socket's default high watermark). */
const HIGH_WATERMARK = 16 * 1024;

const kWebSocket = Symbol('duplex.websocket');
type BoundSocket = Socket & { [kWebSocket]?: WebSocket<unknown> };

let nextId = 1;

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** A WebSocket connection over a Node socket. */
export class WebSocket<Data = unknown> implements ConnectionHandler {
  /** Per-connection context set at the handshake (e.g. the authenticated user). */
  data: Data;
  /** The negotiated subprotocol ('' if none). */
  readonly protocol: string;
  /** The negotiated `Sec-WebSocket-Extensions` value ('' if none). */
  readonly extensions: string;
  /** An id for log lines. */
  readonly id: string;
  /** The sans-I/O engine driving this connection. */
  readonly connection: Connection;

  private readonly socket: Socket;
  private readonly handlers: WebSocketHandlers<Data>;
  private readonly textAsBuffer: boolean;
  private readonly closeTimeout: number;
  private readonly logger: Logger;
  private receiving = false;
  private needDrain = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private closedEmitted = false;

  constructor(socket: Socket, options: WebSocketOptions<Data>) {
    this.socket = socket;
    this.handlers = options.handlers;
    this.data = options.data;
    this.protocol = options.protocol ?? '';
    this.extensions = options.extensions ?? '';
    this.textAsBuffer = options.textAsBuffer ?? false;
    this.closeTimeout = options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT;
    this.logger = options.logger ?? silentLogger;
    this.id = options.id ?? String(nextId++);
    this.connection = new Connection(
      { side: options.side, codec: options.codec, maxMessageSize: options.maxMessageSize, validateUtf8: isUtf8 },
      this,
    );
    (socket as BoundSocket)[kWebSocket] = this as unknown as WebSocket<unknown>;
    socket.setNoDelay(true);
    socket.setTimeout(0);
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
    socket.on('close', onSocketClose);
    socket.on('error', onSocketError);
    socket.on('drain', onSocketDrain);
  }

  /** Start delivering events: call `open`, then feed bytes that arrived with the handshake. */
  start(head?: Uint8Array): void {
    this.invoke('open', () => this.handlers.open?.(this));
    if (head && head.length > 0) this.receive(head);
  }

  /** CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3), as in the browser API. */
  get readyState(): State {
    return this.connection.state;
  }

  /** Bytes written to the socket but not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  /** The peer's address. */
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  /**
   * Send a message: a string as text, a Buffer/Uint8Array as binary (or as text with
   * `binary: false`... see `sendText`). Returns false when the send buffer is over its high
   * watermark: wait for the `drain` callback before sending more.
   * Throws `InvalidStateError` once the connection is closing.
   */
  send(data: string | Uint8Array, options?: SendOptions): boolean {
    const compress = options?.compress;
    if (typeof data === 'string') {
      const bytes = Buffer.from(data, 'utf8');
      if (options?.binary) this.connection.sendBinary(bytes, { compress });
      else this.connection.sendText(bytes, { compress });
    } else {
      this.connection.sendBinary(data, { compress });
    }
    return this.afterSend();
  }

  /** Send UTF-8 bytes as a text message (they must be valid UTF-8: e.g. a received text message). */
  sendText(data: Uint8Array, options?: { compress?: boolean }): boolean {
    this.connection.sendText(data, options);
    return this.afterSend();
  }

  /** Send a ping with up to 125 bytes of data. */
  ping(data: string | Uint8Array = ''): void {
    this.connection.sendPing(typeof data === 'string' ? Buffer.from(data) : data);
    this.flush();
  }

  /**
   * Start the closing handshake (RFC 6455 §7.1.2). The `close` callback runs once the peer
   * answered and the socket closed, or after `closeTimeout` at the latest.
   */
  close(code: number = CloseCode.NormalClosure, reason = ''): void {
    const state = this.connection.state;
    if (state === State.Closed || this.connection.closing) return;
    this.connection.sendClose(code, reason);
    this.flush();
    this.armCloseTimer();
  }

  /** Close the socket at once, without a closing handshake. */
  terminate(): void {
    this.socket.destroy();
  }

  /** Stop reading from the socket (the peer's writes back up: TCP flow control). */
  pause(): void {
    this.socket.pause();
  }

  /** Resume reading after `pause()`. */
  resume(): void {
    this.socket.resume();
  }

  // ---- engine callbacks (ConnectionHandler) ------------------------------------------------

  /** @internal */
  onMessage(data: Uint8Array, binary: boolean): void {
    const handler = this.handlers.message;
    if (!handler) return;
    const buffer = asBuffer(data);
    const message = binary || this.textAsBuffer ? buffer : buffer.toString('utf8');
    try {
      handler(this, message, binary);
    } catch (error) {
      this.handlerFailed('message', error);
    }
  }

  /** @internal */
  onPing(data: Uint8Array): void {
    if (this.handlers.ping) this.invoke('ping', () => this.handlers.ping!(this, asBuffer(data)));
  }

  /** @internal */
  onPong(data: Uint8Array): void {
    if (this.handlers.pong) this.invoke('pong', () => this.handlers.pong!(this, asBuffer(data)));
  }

  /** @internal */
  onClose(code: number, reason: string): void {
    this.logger.debug({ conn: this.id, code, reason }, 'close frame received');
    // A client waits for the server to close TCP (RFC 6455 §7.1.1), but not forever.
    this.armCloseTimer();
  }

  /** @internal */
  onProtocolError(error: ProtocolError): void {
    this.logger.warn({ conn: this.id, code: error.code, closeCode: error.closeCode, remote: this.remoteAddress }, error.message);
    this.armCloseTimer();
    if (this.handlers.error) this.invoke('error', () => this.handlers.error!(this, error));
  }

  // ---- socket plumbing ---------------------------------------------------------------------

  /** @internal Bytes from the socket. */
  receive(chunk: Uint8Array): void {
    this.receiving = true;
    try {
      this.connection.receiveData(chunk);
    } finally {
      this.receiving = false;
    }
    this.flush();
  }

  private afterSend(): boolean {
    if (!this.receiving) this.flush();
    const below = this.socket.writableLength < HIGH_WATERMARK;
    if (!below) this.needDrain = true;
    return below;
  }

  /** Write what the engine queued: one write, or one corked batch (a single writev). */
  private flush(): void {
    const chunks = this.connection.dataToSend();
    const socket = this.socket;
    if (chunks.length > 0 && socket.writable) {
      if (chunks.length === 1) {
        socket.write(chunks[0]);
      } else {
        socket.cork();
        for (const chunk of chunks) socket.write(chunk);
        socket.uncork();
      }
    }
    if (this.connection.shouldCloseTransport && socket.writable) socket.end();
  }

  private armCloseTimer(): void {
    if (this.closeTimer) return;
    this.closeTimer = setTimeout(destroyOnTimeout, this.closeTimeout, this.socket);
    this.closeTimer.unref();
  }

  /** @internal The socket ended or closed. */
  finish(): void {
    if (this.closedEmitted) return;
    this.closedEmitted = true;
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.connection.receiveEof();
    const code = this.connection.closeCode;
    const reason = this.connection.closeReason;
    if (this.handlers.close) this.invoke('close', () => this.handlers.close!(this, code, reason));
  }

  /** @internal */
  drained(): void {
    if (!this.needDrain) return;
    this.needDrain = false;
    if (this.handlers.drain) this.invoke('drain', () => this.handlers.drain!(this));
  }

  /** @internal */
  socketError(error: Error): void {
    this.logger.debug({ conn: this.id, err: error.message }, 'socket error');
    if (this.handlers.error) this.invoke('error', () => this.handlers.error!(this, error));
  }

  private invoke(name: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      this.handlerFailed(name, error);
    }
  }

  /** A user handler threw: log it, report it, and close with 1011 rather than crash the process. */
  private handlerFailed(name: string, error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    this.logger.error({ conn: this.id, handler: name, err: err.message }, 'handler threw');
    if (name !== 'error' && this.handlers.error) {
      try {
        this.handlers.error(this, err);
      } catch {
        // An error handler that throws is not called again.
      }
    }
    if (this.connection.state === State.Open && !this.connection.closing) {
      this.connection.fail(CloseCode.InternalError, 'internal error');
      if (!this.receiving) this.flush();
      this.armCloseTimer();
    }
  }
}

// Module-level socket listeners: `this` is the socket, the WebSocket hangs off it.
function onSocketData(this: BoundSocket, chunk: Buffer): void {
  this[kWebSocket]?.receive(chunk);
}
function onSocketEnd(this: BoundSocket): void {
  // The peer closed its side; close ours (http sockets allow half-open connections).
  if (this.writable) this.end();
  this[kWebSocket]?.finish();
}
function onSocketClose(this: BoundSocket): void {
  this[kWebSocket]?.finish();
}
function onSocketError(this: BoundSocket, error: Error): void {
  this[kWebSocket]?.socketError(error);
  this.destroy();
}
function onSocketDrain(this: BoundSocket): void {
  this[kWebSocket]?.drained();
}
function destroyOnTimeout(socket: Socket): void {
  socket.destroy();
}
