/**
 * The Node binding of one connection: a `net.Socket` (or `tls.TLSSocket`) driven by the
 * sans-I/O `Connection`. Shared by server peers and clients. Callbacks come from a handler
 * object shared by every connection of a route (uWebSockets' "behaviour"), so a connection
 * costs no closures; the engine reports to this class's own methods.
 */
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import { CloseCode, Opcode, State, type Side } from '../protocol/constants.js';
import { encodeFrame } from '../protocol/frame.js';
import { Connection } from '../protocol/connection.js';
import { InvalidStateError, type ProtocolError } from '../protocol/errors.js';
import type { MessageCodec } from '../protocol/extension.js';
import { heartbeat } from './heartbeat.js';
import { silentLogger, type Logger } from './logger.js';

/** A received message: a string for text (unless `textAsBuffer`), a Buffer for binary. */
export type MessageData = string | Buffer;

/** What a handler may return: nothing, or a promise whose rejection is handled like a throw. */
export type HandlerResult = void | Promise<void>;

/**
 * Callbacks for a connection's life, shared by every connection of a route: each gets the
 * connection first. A callback that throws, or returns a promise that rejects, is logged,
 * reported to `error`, and the connection is closed with 1011; the process keeps running.
 */
export interface WebSocketHandlers<Data = unknown> {
  /** The connection is open (handshake done). */
  open?(ws: WebSocket<Data>): HandlerResult;
  /**
   * A complete message arrived. Without this callback, messages wait to be read by async
   * iteration (`for await (const message of ws)`).
   */
  message?(ws: WebSocket<Data>, data: MessageData, isBinary: boolean): HandlerResult;
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
  /**
   * Per-connection rate limit on what the peer sends: a token bucket of `burst` messages
   * (default: `perSecond`) refilled at `perSecond`; every data message and every ping takes a
   * token. Over it: close with 1008 "rate limit" (`onExceed: 'close'`, the default) or drop the
   * message unseen (`'drop'`; pings are still answered). Default: no limit.
   */
  messageRate?: MessageRateLimit;
}

/** A token-bucket rate limit on received messages (see `ConnectionSettings.messageRate`). */
export interface MessageRateLimit {
  /** Sustained messages per second. */
  perSecond: number;
  /** Messages allowed in a burst (the bucket size; default `perSecond`, at least 1). */
  burst?: number;
  /** What to do with a message over the limit (default `'close'`: 1008 "rate limit"). */
  onExceed?: 'close' | 'drop';
}

/** Everything a connection is created with (the server and `connect()` fill this in). */
export interface WebSocketOptions<Data = unknown> extends ConnectionSettings {
  /** Which end this is: a server unmasks what it receives, a client masks what it sends. */
  side: Side;
  /** The callbacks; usually one object shared by every connection of a route. */
  handlers: WebSocketHandlers<Data>;
  /** The initial `ws.data`. */
  data: Data;
  /** The negotiated subprotocol, for `ws.protocol` (default ''). */
  protocol?: string;
  /** The negotiated `Sec-WebSocket-Extensions` value, for `ws.extensions` (default ''). */
  extensions?: string;
  /** The permessage-deflate codec the handshake agreed on (see `createDeflateCodec`); none: no compression. */
  codec?: MessageCodec | undefined;
  /** Where the connection's log lines go (default: nowhere). */
  logger?: Logger;
  /** Identifies the connection in log lines. */
  id?: string;
  /**
   * Settings shared by many connections (a route's): read from this object instead of the
   * options' own fields, and resolved once for all of them.
   */
  settings?: ConnectionSettings;
  /** Counters to add this connection's traffic to (e.g. a server's statistics). */
  counters?: TrafficCounters;
}

/** Message and byte counts (payload bytes, after decompression). */
export interface TrafficCounters {
  /** Data messages received (pings and pongs not counted). */
  messagesIn: number;
  /** Payload bytes of the messages received, after decompression. */
  bytesIn: number;
  /** Data messages sent (a prepared message counts once per connection). */
  messagesOut: number;
  /** Payload bytes of the messages sent, before compression and framing. */
  bytesOut: number;
  /** Messages not sent because the slow-consumer policy dropped them. */
  dropped: number;
  /** Received messages (and pings) over a connection's `messageRate` (dropped, or the connection closed). */
  rateLimited: number;
}

/** A fresh set of zeroed counters. */
export function createTrafficCounters(): TrafficCounters {
  return { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0, dropped: 0, rateLimited: 0 };
}

/** Options of one `send`. */
export interface SendOptions {
  /** Send a string as a binary message (its UTF-8 bytes). */
  binary?: boolean;
  /** Compress if permessage-deflate was negotiated and the message reaches its threshold (default true). */
  compress?: boolean;
}

/**
 * A message framed once for many connections (hub fan-out, broadcast): the same bytes are
 * written to every receiver. Build with `prepareMessage`, send with `ws.sendPrepared`.
 */
export class PreparedMessage {
  /** The complete unmasked frame, uncompressed. */
  readonly frame: Uint8Array;
  /** The payload, for connections that must compress it. */
  readonly payload: Uint8Array;
  /** Whether it goes out as a binary message (else text). */
  readonly binary: boolean;
  /** Compressed frames by codec `shareKey`, made on first use and reused for every receiver. */
  private compressed: Map<string, Uint8Array> | undefined;

  /**
   * Frames `payload` at once; compressed variants are made on first use. Prefer `prepareMessage`.
   * @param payload The message; must be valid UTF-8 when `binary` is false. Not copied: do not change it afterwards.
   */
  constructor(payload: Uint8Array, binary: boolean) {
    this.payload = payload;
    this.binary = binary;
    this.frame = encodeFrame(binary ? Opcode.Binary : Opcode.Text, payload);
  }

  /** The frame to send on a connection with `codec` (compressed once per codec kind). */
  frameFor(codec: MessageCodec | undefined): Uint8Array {
    if (!codec || codec.outboundContextTakeover || this.payload.length < codec.threshold) return this.frame;
    this.compressed ??= new Map();
    let frame = this.compressed.get(codec.shareKey);
    if (!frame) {
      frame = encodeFrame(this.binary ? Opcode.Binary : Opcode.Text, codec.compress(this.payload), { rsv1: true });
      this.compressed.set(codec.shareKey, frame);
    }
    return frame;
  }
}

/** Frame `data` once for sending to many connections (a string is sent as text). */
export function prepareMessage(data: string | Uint8Array, binary = typeof data !== 'string'): PreparedMessage {
  return new PreparedMessage(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, binary);
}

/** Defaults of `ConnectionSettings` (documented there). */
export const DEFAULT_SETTINGS = {
  /** 10 s for the peer's side of the closing handshake. */
  closeTimeout: 10_000,
  /** A ping after 25 s without traffic (as Socket.IO): well inside the 60 s idle timeout of nginx and AWS ALB. */
  pingInterval: 25_000,
  /** 20 s for the pong (or any data) before the connection is deemed dead. */
  pingTimeout: 20_000,
  /** No idle timeout. */
  idleTimeout: 0,
  /** `send()` returns false from 64 KiB buffered. */
  highWaterMark: 64 * 1024,
  /** `drain` at 16 KiB buffered. */
  lowWaterMark: 16 * 1024,
  /** The slow-consumer policy applies from 4 MiB buffered. */
  maxBufferedAmount: 4 * 1024 * 1024,
  /** Async iteration pauses the socket with 16 unread messages. */
  maxQueuedMessages: 16,
} as const;

/** `ConnectionSettings` with every default applied. */
interface ResolvedSettings {
  readonly maxMessageSize: number | undefined;
  readonly textAsBuffer: boolean;
  readonly closeTimeout: number;
  readonly pingInterval: number;
  readonly pingTimeout: number;
  readonly idleTimeout: number;
  readonly highWaterMark: number;
  readonly lowWaterMark: number;
  readonly maxBufferedAmount: number;
  readonly dropSlow: boolean;
  readonly maxQueuedMessages: number;
  /** Token bucket of `messageRate`, in messages per ms (0: no limit). */
  readonly rate: number;
  readonly burst: number;
  readonly dropOverRate: boolean;
}

/** Resolved settings by settings object: a route's connections share one (no per-connection copies). */
const resolvedSettings = new WeakMap<ConnectionSettings, ResolvedSettings>();

function resolveSettings(settings: ConnectionSettings): ResolvedSettings {
  let resolved = resolvedSettings.get(settings);
  if (resolved) return resolved;
  const limit = settings.messageRate;
  if (limit !== undefined && !(limit.perSecond > 0)) throw new RangeError(`messageRate.perSecond must be > 0, got ${limit.perSecond}`);
  const highWaterMark = settings.highWaterMark ?? DEFAULT_SETTINGS.highWaterMark;
  resolved = {
    maxMessageSize: settings.maxMessageSize,
    textAsBuffer: settings.textAsBuffer ?? false,
    closeTimeout: settings.closeTimeout ?? DEFAULT_SETTINGS.closeTimeout,
    pingInterval: settings.pingInterval ?? DEFAULT_SETTINGS.pingInterval,
    pingTimeout: settings.pingTimeout ?? DEFAULT_SETTINGS.pingTimeout,
    idleTimeout: settings.idleTimeout ?? DEFAULT_SETTINGS.idleTimeout,
    highWaterMark,
    lowWaterMark: Math.min(settings.lowWaterMark ?? DEFAULT_SETTINGS.lowWaterMark, highWaterMark),
    maxBufferedAmount: settings.maxBufferedAmount ?? DEFAULT_SETTINGS.maxBufferedAmount,
    dropSlow: settings.slowConsumer === 'drop',
    maxQueuedMessages: Math.max(1, settings.maxQueuedMessages ?? DEFAULT_SETTINGS.maxQueuedMessages),
    rate: limit ? limit.perSecond / 1000 : 0,
    burst: limit ? Math.max(1, limit.burst ?? limit.perSecond) : 0,
    dropOverRate: limit?.onExceed === 'drop',
  };
  resolvedSettings.set(settings, resolved);
  return resolved;
}

const kWebSocket = Symbol('duplex.websocket');
type BoundSocket = Socket & { [kWebSocket]?: WebSocket<unknown> };

let nextId = 1;

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as Promise<unknown> | undefined)?.then === 'function';
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/**
 * Small frames of one flush are copied into one buffer and written at once (cheaper than a
 * stream write each); a large payload is never copied for that.
 */
const MAX_COALESCED_CHUNKS = 256;
const MAX_COALESCED_BYTES = 64 * 1024;
const MAX_COALESCED_CHUNK = 2048;

/** Whether every chunk is small and all together fit one coalesced write. */
function isCoalescable(chunks: readonly Uint8Array[]): boolean {
  let n = 0;
  for (const chunk of chunks) {
    if (chunk.length > MAX_COALESCED_CHUNK) return false;
    n += chunk.length;
  }
  return n <= MAX_COALESCED_BYTES;
}

/**
 * Write batching across connections (uWebSockets corks every socket for a loop pass): while
 * any connection processes its input, or inside `batch()`, sends to other connections are
 * queued and each socket gets one write when the batch ends — a broadcast triggered by a
 * message costs one write per receiver however many messages the read carried.
 */
let batchDepth = 0;
let deferred: WebSocket<unknown>[] = [];

function flushDeferred(): void {
  while (deferred.length > 0) {
    const list = deferred;
    deferred = [];
    for (const ws of list) ws.flushDeferred();
  }
}

let corked = false;

/**
 * Batch every write until the end of this event-loop pass (uWebSockets' cork): sends made from
 * now until the loop's check phase — from broker callbacks, timers, other sockets' reads — are
 * written once per connection then. For fan-out that is driven by something other than a read.
 */
export function corkLoopPass(): void {
  if (corked) return;
  corked = true;
  batchDepth++;
  setImmediate(uncorkLoopPass);
}

function uncorkLoopPass(): void {
  corked = false;
  if (--batchDepth === 0) flushDeferred();
}

/**
 * Run `fn` with writes batched: every connection sent to inside gets one write at the end.
 * Use it around a loop that sends many messages from a timer or a broker callback.
 */
export function batch<T>(fn: () => T): T {
  batchDepth++;
  try {
    return fn();
  } finally {
    if (--batchDepth === 0) flushDeferred();
  }
}

/** A WebSocket connection over a Node socket. */
// It is the engine's ConnectionHandler and a HeartbeatMember, checked where it is handed to them
// (`new Connection(…, this)`, `heartbeat.add(this)`): not in an `implements` clause, because those
// members are internal, stripped from the published types, which would then not compile.
export class WebSocket<Data = unknown> implements AsyncIterable<MessageData> {
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
  private readonly logger: Logger;
  private readonly counters: TrafficCounters | undefined;
  /** The connection's settings, resolved once per settings object (shared by a route's connections). */
  private readonly cfg: ResolvedSettings;
  private tokens = 0;
  private tokensAt = 0;

  private receiving = false;
  private needDrain = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private closedEmitted = false;
  private onWritten: ((error?: Error | null) => void) | undefined;
  /** Queued in `deferred`, to be written when the current batch ends. */
  private deferred = false;
  /** Coarse times (heartbeat clock) of the last bytes received, and of the last message either way. */
  private lastReceived = heartbeat.now;
  private lastActivity = heartbeat.now;
  private pingSentAt = 0;
  // Async iteration: messages waiting for a reader, and a reader waiting for a message.
  private queue: MessageData[] | undefined;
  private reader: ((result: IteratorResult<MessageData, undefined>) => void) | undefined;
  private readPaused = false;

  /**
   * Binds an upgraded socket to a new engine. The server and `connect()` do this; call it
   * yourself only for a socket whose handshake you completed, then call `start()`.
   * @param socket The socket after the 101 response; the WebSocket owns it from now on.
   * @throws RangeError when `messageRate.perSecond` is not > 0.
   */
  constructor(socket: Socket, options: WebSocketOptions<Data>) {
    this.socket = socket;
    this.handlers = options.handlers;
    this.data = options.data;
    this.protocol = options.protocol ?? '';
    this.extensions = options.extensions ?? '';
    this.logger = options.logger ?? silentLogger;
    this.counters = options.counters;
    this.id = options.id ?? String(nextId++);
    this.cfg = resolveSettings(options.settings ?? options);
    if (!this.handlers.message) this.queue = [];
    this.tokens = this.cfg.burst;
    this.tokensAt = performance.now();
    this.connection = new Connection(
      { side: options.side, codec: options.codec, maxMessageSize: this.cfg.maxMessageSize, validateUtf8: isUtf8 },
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
    const timers = [this.cfg.pingInterval, this.cfg.pingTimeout, this.cfg.idleTimeout].filter((t) => t > 0);
    if (this.cfg.pingInterval > 0 || this.cfg.idleTimeout > 0) heartbeat.add(this, Math.min(...timers) / 4);
  }

  /** Start delivering events: call `open`, then feed bytes that arrived with the handshake. */
  start(head?: Uint8Array): void {
    this.invoke('open', this.handlers.open, undefined, undefined);
    if (head && head.length > 0 && !this.closedEmitted) this.receive(head);
  }

  /** CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3), as in the browser API. */
  get readyState(): State {
    return this.connection.state;
  }

  /** Bytes handed to the socket but not yet to the kernel (framing included). */
  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  /** The peer's address. */
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  /** The underlying socket (for TLS details, addresses; do not read or write it). */
  get rawSocket(): Socket {
    return this.socket;
  }

  /**
   * Send a message: a string as text (or binary with `binary: true`), bytes as binary.
   * Returns true while `bufferedAmount` is under the high watermark; false means "wait for
   * `drain`", or that the message was not sent (the connection is closing, or the slow-consumer
   * policy dropped or closed it). Never throws for a closed connection: sending to a peer that
   * just left is normal in a server.
   */
  send(data: string | Uint8Array, options?: SendOptions): boolean {
    if (!this.admit()) return false;
    const compress = options?.compress;
    if (typeof data === 'string') {
      const bytes = Buffer.from(data, 'utf8');
      if (options?.binary) this.connection.sendBinary(bytes, { compress });
      else this.connection.sendText(bytes, { compress });
      this.countOut(bytes.length);
    } else {
      this.connection.sendBinary(data, { compress });
      this.countOut(data.length);
    }
    return this.afterSend();
  }

  /** Send UTF-8 bytes as a text message (they must be valid UTF-8, e.g. a received text message). */
  sendText(data: Uint8Array, options?: { compress?: boolean }): boolean {
    if (!this.admit()) return false;
    this.connection.sendText(data, options);
    this.countOut(data.length);
    return this.afterSend();
  }

  /**
   * Send a message framed once for many connections (see `prepareMessage`). With
   * permessage-deflate and no server context takeover the compressed frame is shared too; with
   * context takeover the message is compressed for this connection alone. Same return value
   * and slow-consumer policy as `send`.
   */
  sendPrepared(message: PreparedMessage): boolean {
    if (!this.admit()) return false;
    const codec = this.connection.messageCodec;
    if (codec && codec.outboundContextTakeover) {
      // The peer's inflater holds our context: this connection needs its own compression.
      if (message.binary) this.connection.sendBinary(message.payload);
      else this.connection.sendText(message.payload);
    } else {
      this.connection.sendRaw(message.frameFor(codec));
    }
    this.countOut(message.payload.length);
    return this.afterSend();
  }

  /**
   * Send a message and resolve once it has been handed to the kernel (flushed from this
   * process). Rejects with `InvalidStateError` when the connection is not open or the
   * slow-consumer policy refused it, and with the socket's error if the write fails.
   */
  sendAsync(data: string | Uint8Array, options?: SendOptions): Promise<void> {
    if (this.connection.state !== State.Open || this.connection.closing) {
      return Promise.reject(new InvalidStateError('cannot send: the connection is closing or closed'));
    }
    const wasReceiving = this.receiving;
    this.receiving = true; // queue only: the write below carries the callback
    let sent: boolean;
    try {
      sent = this.send(data, options) || this.connection.hasDataToSend;
    } finally {
      this.receiving = wasReceiving;
    }
    if (!this.connection.hasDataToSend) {
      return sent ? Promise.resolve() : Promise.reject(new InvalidStateError('message refused by the slow-consumer policy'));
    }
    return new Promise((resolve, reject) => this.flush((error) => (error ? reject(error) : resolve())));
  }

  /** Send a ping with up to 125 bytes of data (ignored once the connection is closing). */
  ping(data: string | Uint8Array = ''): void {
    if (!this.isOpen()) return;
    this.connection.sendPing(typeof data === 'string' ? Buffer.from(data) : data);
    this.flush();
  }

  /**
   * Start the closing handshake (RFC 6455 §7.1.2). The `close` callback runs once the peer
   * answered and the socket closed, or after `closeTimeout` at the latest. Does nothing if
   * the connection is already closing.
   */
  close(code: number = CloseCode.NormalClosure, reason = ''): void {
    if (!this.isOpen()) return;
    this.connection.sendClose(code, reason);
    this.flush();
    this.armCloseTimer();
  }

  /** Close the socket at once, without a closing handshake (the peer sees 1006). */
  terminate(): void {
    this.socket.destroy();
  }

  /** Stop reading from the socket: the peer's writes back up (TCP flow control). */
  pause(): void {
    this.socket.pause();
  }

  /** Resume reading after `pause()`. */
  resume(): void {
    if (!this.readPaused) this.socket.resume();
  }

  /**
   * Read messages with `for await (const message of ws)`: text as strings (unless
   * `textAsBuffer`), binary as Buffers. Reading pauses the socket while `maxQueuedMessages`
   * wait unread, so a fast sender cannot grow memory. The loop ends when the connection closes.
   */
  [Symbol.asyncIterator](): AsyncIterator<MessageData, undefined> {
    this.queue ??= [];
    return {
      next: () => this.nextMessage(),
      return: () => {
        this.queue = this.handlers.message ? undefined : [];
        this.resumeReading();
        return Promise.resolve(DONE);
      },
    };
  }

  // ---- engine callbacks (ConnectionHandler) ------------------------------------------------

  /** @internal */
  onMessage(data: Uint8Array, binary: boolean): void {
    if (this.cfg.rate !== 0 && !this.takeToken()) return;
    this.lastActivity = heartbeat.now;
    if (this.counters) {
      this.counters.messagesIn++;
      this.counters.bytesIn += data.length;
    }
    const buffer = asBuffer(data);
    const message = binary || this.cfg.textAsBuffer ? buffer : buffer.toString('utf8');
    if (this.handlers.message) this.invoke('message', this.handlers.message, message, binary);
    const queue = this.queue;
    if (!queue) return;
    if (this.reader) {
      const reader = this.reader;
      this.reader = undefined;
      reader({ done: false, value: message });
      return;
    }
    queue.push(message);
    if (queue.length >= this.cfg.maxQueuedMessages && !this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    }
  }

  /** @internal */
  onPing(data: Uint8Array): void {
    // The engine queued a pong: a peer that pings without reading would grow our send buffer,
    // so pongs count against the same ceiling as sends (slow-consumer close, 1008).
    if (this.socket.writableLength >= this.cfg.maxBufferedAmount && !this.connection.closing) {
      if (this.counters) this.counters.dropped++;
      this.logger.warn({ conn: this.id, remote: this.remoteAddress, buffered: this.socket.writableLength }, 'slow consumer (pongs not read): closing with 1008');
      this.connection.fail(CloseCode.PolicyViolation, 'slow consumer');
      this.armCloseTimer();
      return;
    }
    if (this.cfg.rate !== 0 && !this.takeToken()) return;
    if (this.handlers.ping) this.invoke('ping', this.handlers.ping, asBuffer(data), undefined);
  }

  /** @internal */
  onPong(data: Uint8Array): void {
    if (this.handlers.pong) this.invoke('pong', this.handlers.pong, asBuffer(data), undefined);
  }

  /** @internal */
  onClose(code: number, reason: string): void {
    this.logger.debug({ conn: this.id, code, reason }, 'close frame received');
    // A client waits for the server to close TCP (RFC 6455 §7.1.1), but not forever.
    this.armCloseTimer();
  }

  /** @internal */
  onProtocolError(error: ProtocolError): void {
    this.logger.warn({ conn: this.id, code: error.code, closeCode: error.closeCode, remote: this.remoteAddress }, `closing: ${error.message}`);
    this.armCloseTimer();
    if (this.handlers.error) this.invoke('error', this.handlers.error, error, undefined);
  }

  /** @internal Keepalive and idle checks, on the shared heartbeat. */
  beat(now: number): void {
    if (this.pingSentAt !== 0 && this.cfg.pingTimeout > 0 && now - this.pingSentAt >= this.cfg.pingTimeout) {
      // A dead peer (or a dead network path): release it now rather than at TCP's timeout.
      this.logger.info({ conn: this.id, remote: this.remoteAddress }, `no pong within ${this.cfg.pingTimeout} ms: closing`);
      this.terminate();
      return;
    }
    if (this.cfg.pingInterval > 0 && this.pingSentAt === 0 && now - this.lastReceived >= this.cfg.pingInterval) {
      this.pingSentAt = now;
      this.ping();
    }
    if (this.cfg.idleTimeout > 0 && now - this.lastActivity >= this.cfg.idleTimeout) {
      this.logger.info({ conn: this.id }, `idle for ${this.cfg.idleTimeout} ms: closing`);
      this.close(CloseCode.GoingAway, 'idle timeout');
    }
  }

  /** One token of the `messageRate` bucket; false (and the policy applied) when there is none. */
  private takeToken(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.cfg.burst, this.tokens + (now - this.tokensAt) * this.cfg.rate);
    this.tokensAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    if (this.counters) this.counters.rateLimited++;
    if (!this.cfg.dropOverRate && !this.connection.closing) {
      this.logger.warn({ conn: this.id, remote: this.remoteAddress }, 'over the message rate limit: closing with 1008');
      this.connection.fail(CloseCode.PolicyViolation, 'rate limit');
      this.armCloseTimer();
    }
    return false;
  }

  // ---- socket plumbing ---------------------------------------------------------------------

  /** @internal Bytes from the socket. */
  receive(chunk: Uint8Array): void {
    this.lastReceived = heartbeat.now;
    this.pingSentAt = 0; // any traffic proves the peer is alive
    this.receiving = true;
    batchDepth++;
    try {
      this.connection.receiveData(chunk);
    } finally {
      this.receiving = false;
      this.flush();
      if (--batchDepth === 0) flushDeferred();
    }
  }

  /** @internal Write what was queued during a batch. */
  flushDeferred(): void {
    this.deferred = false;
    this.flush();
  }

  private isOpen(): boolean {
    return this.connection.state === State.Open && !this.connection.closing;
  }

  /** Whether a message may be queued now: the connection is open and the peer keeps up. */
  private admit(): boolean {
    if (!this.isOpen()) return false;
    if (this.socket.writableLength < this.cfg.maxBufferedAmount) return true;
    if (this.counters) this.counters.dropped++;
    if (this.cfg.dropSlow) return false;
    this.logger.warn({ conn: this.id, remote: this.remoteAddress, buffered: this.socket.writableLength }, 'slow consumer: closing with 1008');
    this.connection.fail(CloseCode.PolicyViolation, 'slow consumer');
    this.flush();
    this.armCloseTimer();
    return false;
  }

  private countOut(bytes: number): void {
    this.lastActivity = heartbeat.now;
    if (this.counters) {
      this.counters.messagesOut++;
      this.counters.bytesOut += bytes;
    }
  }

  private afterSend(): boolean {
    if (this.receiving) {
      // Written once this connection's input is processed.
    } else if (batchDepth > 0) {
      // Another connection's input (or a `batch`) is being processed: write once it is done.
      if (!this.deferred) {
        this.deferred = true;
        deferred.push(this as unknown as WebSocket<unknown>);
      }
    } else {
      this.flush();
    }
    if (this.socket.writableLength < this.cfg.highWaterMark) return true;
    this.needDrain = true;
    return false;
  }

  /**
   * Write what the engine queued: one write, or one corked batch (a single writev). While a
   * drain is awaited, writes report back so `drain` fires at the low watermark.
   */
  private flush(callback?: (error?: Error | null) => void): void {
    const chunks = this.connection.dataToSend();
    const socket = this.socket;
    if (chunks.length > 0 && socket.writable) {
      const last = chunks.length - 1;
      const done = callback ?? (this.needDrain ? (this.onWritten ??= this.written.bind(this)) : undefined);
      if (last === 0) {
        socket.write(chunks[0], done);
      } else if (chunks.length <= MAX_COALESCED_CHUNKS && isCoalescable(chunks)) {
        // Many small frames (a burst of echoes, several broadcasts): one copy, one write.
        socket.write(Buffer.concat(chunks), done);
      } else {
        socket.cork();
        for (let i = 0; i < last; i++) socket.write(chunks[i]);
        socket.write(chunks[last], done);
        socket.uncork();
      }
    } else if (callback) {
      callback(socket.writable ? null : new InvalidStateError('the socket is closed'));
    }
    if (this.connection.shouldCloseTransport && socket.writable) socket.end();
  }

  /** A write completed while a drain was awaited. */
  private written(): void {
    if (this.socket.writableLength <= this.cfg.lowWaterMark) this.drained();
  }

  private armCloseTimer(): void {
    if (this.closeTimer) return;
    this.closeTimer = setTimeout(destroyOnTimeout, this.cfg.closeTimeout, this.socket);
    this.closeTimer.unref();
  }

  private nextMessage(): Promise<IteratorResult<MessageData, undefined>> {
    const queue = this.queue;
    if (queue && queue.length > 0) {
      const value = queue.shift()!;
      if (this.readPaused && queue.length <= this.cfg.maxQueuedMessages >> 1) this.resumeReading();
      return Promise.resolve({ done: false, value });
    }
    if (this.closedEmitted || !queue) return Promise.resolve(DONE);
    if (this.reader) return Promise.reject(new InvalidStateError('another reader is already waiting for a message'));
    return new Promise((resolve) => (this.reader = resolve));
  }

  private resumeReading(): void {
    if (!this.readPaused) return;
    this.readPaused = false;
    this.socket.resume();
  }

  /** @internal The socket ended or closed. */
  finish(): void {
    if (this.closedEmitted) return;
    this.closedEmitted = true;
    heartbeat.delete(this);
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.connection.receiveEof();
    if (this.reader) {
      const reader = this.reader;
      this.reader = undefined;
      reader(DONE);
    }
    const code = this.connection.closeCode;
    const reason = this.connection.closeReason;
    if (this.handlers.close) this.invoke('close', this.handlers.close, code, reason);
  }

  /** @internal */
  drained(): void {
    if (!this.needDrain) return;
    this.needDrain = false;
    if (this.handlers.drain) this.invoke('drain', this.handlers.drain, undefined, undefined);
  }

  /** @internal */
  socketError(error: Error): void {
    this.logger.debug({ conn: this.id, err: error.message }, 'socket error');
    if (this.handlers.error) this.invoke('error', this.handlers.error, error, undefined);
  }

  /** Call a user callback; a throw or a rejected promise is contained (see `handlerFailed`). */
  private invoke<A, B>(name: string, fn: ((ws: WebSocket<Data>, a: A, b: B) => HandlerResult) | undefined, a: A, b: B): void {
    if (!fn) return;
    try {
      const result = fn(this, a, b);
      if (isPromise(result)) result.catch((error: unknown) => this.handlerFailed(name, error));
    } catch (error) {
      this.handlerFailed(name, error);
    }
  }

  /** A user handler failed: log it, report it, and close with 1011 rather than crash the process. */
  private handlerFailed(name: string, error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    this.logger.error({ conn: this.id, handler: name, err: err.message }, 'handler failed');
    if (name !== 'error' && this.handlers.error) {
      try {
        const result = this.handlers.error(this, err);
        if (isPromise(result)) result.catch(() => {});
      } catch {
        // An error handler that throws is not called again.
      }
    }
    if (this.isOpen()) {
      this.connection.fail(CloseCode.InternalError, 'internal error');
      if (!this.receiving) this.flush();
      this.armCloseTimer();
    }
  }
}

/**
 * The class style of handler (as Tornado's `WebSocketHandler` or Autobahn's protocol
 * classes): one instance per connection, with the connection as `this.ws`. Turn a subclass
 * into a handlers object with `fromClass(MyHandler)`.
 */
export abstract class WebSocketHandler<Data = unknown> {
  /** Created by `fromClass` when the connection opens, just before `open()`. */
  constructor(
    /** The connection this instance handles. */
    readonly ws: WebSocket<Data>,
  ) {}
  /** Shorthand for `this.ws.send`. */
  send(data: string | Uint8Array, options?: SendOptions): boolean {
    return this.ws.send(data, options);
  }
}

/**
 * The methods a `WebSocketHandler` subclass may define (all optional; they are not declared
 * on the base class, so subclasses need no `override`). Without `message`, read with
 * `for await (const message of this.ws)`.
 */
export interface WebSocketHandlerMethods {
  /** The connection is open; `this.ws` is ready to send. */
  open?(): HandlerResult;
  /** A complete message arrived: a string for text (unless `textAsBuffer`), a Buffer for binary. */
  message?(data: MessageData, isBinary: boolean): HandlerResult;
  /** A ping arrived (the pong is sent automatically). */
  ping?(data: Buffer): HandlerResult;
  /** A pong arrived. */
  pong?(data: Buffer): HandlerResult;
  /** The send buffer fell below the low watermark after `send()` returned false. */
  drain?(): HandlerResult;
  /** Something went wrong (protocol violation by the peer, socket error, a method threw). */
  error?(error: Error): HandlerResult;
  /** The connection is closed (1005: no code, 1006: no close frame); the instance is released afterwards. */
  close?(code: number, reason: string): HandlerResult;
}

type HandlerInstance<Data> = WebSocketHandler<Data> & WebSocketHandlerMethods;

/** A constructor of a `WebSocketHandler` subclass. */
export type WebSocketHandlerClass<Data> = new (ws: WebSocket<Data>) => WebSocketHandler<Data> & WebSocketHandlerMethods;

/** Handlers that create one `HandlerClass` instance per connection and forward to its methods. */
export function fromClass<Data = unknown>(HandlerClass: WebSocketHandlerClass<Data>): WebSocketHandlers<Data> {
  const instances = new WeakMap<WebSocket<Data>, HandlerInstance<Data>>();
  const of = (ws: WebSocket<Data>): HandlerInstance<Data> | undefined => instances.get(ws);
  const proto = HandlerClass.prototype as HandlerInstance<Data>;
  const handlers: WebSocketHandlers<Data> = {
    open(ws) {
      const instance = new HandlerClass(ws);
      instances.set(ws, instance);
      return instance.open?.();
    },
    close(ws, code, reason) {
      const result = of(ws)?.close?.(code, reason);
      instances.delete(ws);
      return result;
    },
    ping: (ws, data) => of(ws)?.ping?.(data),
    pong: (ws, data) => of(ws)?.pong?.(data),
    drain: (ws) => of(ws)?.drain?.(),
    error: (ws, error) => of(ws)?.error?.(error),
  };
  // Without a `message` method the class reads with async iteration (e.g. in `open`).
  if (typeof proto.message === 'function') handlers.message = (ws, data, isBinary) => of(ws)?.message?.(data, isBinary);
  return handlers;
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
