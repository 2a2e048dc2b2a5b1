/**
 * One WebSocket connection in Node: a transport (today a `net.Socket` or `tls.TLSSocket`, see
 * `./transport/`) driven by the sans-I/O `Connection`. Shared by server peers and clients.
 * Callbacks come from a handler object shared by every connection of a route (`./handlers.ts`),
 * so a connection costs no closures; the engine and the transport report to this class's own
 * methods.
 */
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import { CloseCode, State, type Side } from '../protocol/constants.js';
import { Connection, type MaskingKeySource } from '../protocol/connection.js';
import { InvalidStateError, type ProtocolError } from '../protocol/errors.js';
import type { MessageCodec } from '../protocol/extension.js';
import type { TrafficCounters } from './counters.js';
import { invokeHandler, reportHandlerFailure, type HandlerName, type MessageData, type WebSocketHandlers } from './handlers.js';
import { heartbeat } from './heartbeat.js';
import { silentLogger, type Logger } from './logger.js';
import type { PreparedMessage } from './prepared-message.js';
import { resolveSettings, type ConnectionSettings, type ResolvedSettings } from './settings.js';
import { scheduleSlices } from './slices.js';
import { attachNetSocket } from './transport/net.js';
import type { AttachTransport, Transport, WriteCallback } from './transport/transport.js';
import { beginBatch, deferWrite, endBatch, inBatch, writeChunks } from './write-batch.js';

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
  /** @internal A client's own masking-key source (ws's `generateMask`); default: the engine's CSPRNG pool. */
  maskingKeys?: MaskingKeySource;
}

/** Options of one `send`. */
export interface SendOptions {
  /** Send a string as a binary message (its UTF-8 bytes). */
  binary?: boolean;
  /** Compress if permessage-deflate was negotiated and the message reaches its threshold (default true). */
  compress?: boolean;
}

let nextId = 1;

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/** A WebSocket connection over a Node socket. */
// It is the engine's ConnectionHandler, a HeartbeatMember, its transport's TransportSink and a
// DeferredWriter of the write batch, checked where it is handed to them (`new Connection(…, this)`,
// `heartbeat.add(this)`, `attach(transport, this)`, `deferWrite(this)`): not in an `implements`
// clause, because those members are internal, stripped from the published types, which would then
// not compile.
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

  private readonly transport: Transport;
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
  private onWritten: WriteCallback | undefined;
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
  /** `pause()` is in effect. */
  private userPaused = false;
  /** Reading stopped while the engine's suspended input waits for its slices. */
  private workPaused = false;
  /** Queued for slices (`./slices.ts`). */
  private sliced = false;
  /** Write callbacks of sends that wait in the engine behind a large message being compressed. */
  private slicedCallbacks: WriteCallback[] | undefined;

  /**
   * Binds an upgraded socket to a new engine. The server and `connect()` do this; call it
   * yourself only for a socket whose handshake you completed, then call `start()`.
   * @param socket The socket after the 101 response; the WebSocket owns it from now on.
   * @throws RangeError when `messageRate.perSecond` is not > 0.
   */
  constructor(socket: Socket, options: WebSocketOptions<Data>);
  /** @internal Over another kind of transport (native, HTTP/2 streams), whose events `attach` wires to this. */
  constructor(transport: Transport, options: WebSocketOptions<Data>, attach: AttachTransport);
  constructor(transport: Transport, options: WebSocketOptions<Data>, attach?: AttachTransport) {
    this.transport = transport;
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
      {
        side: options.side,
        codec: options.codec,
        maxMessageSize: this.cfg.maxMessageSize,
        validateUtf8: isUtf8,
        autoPong: this.cfg.autoPong,
        skipUtf8Validation: this.cfg.skipUtf8Validation,
        maxFragments: this.cfg.maxFragments,
        maxFrameChunks: this.cfg.maxFrameChunks,
        failureReasons: this.cfg.failureReasons,
        maskingKeys: options.maskingKeys,
        sliceSize: this.cfg.sliceSize,
      },
      this,
    );
    // Without `attach`, the public signature holds: a net.Socket, a Transport as it is.
    if (attach) attach(transport, this);
    else attachNetSocket(transport as Socket, this);
    const timers = [this.cfg.pingInterval, this.cfg.pingTimeout, this.cfg.idleTimeout].filter((t) => t > 0);
    if (this.cfg.pingInterval > 0 || this.cfg.idleTimeout > 0) heartbeat.add(this, Math.min(...timers) / 4);
  }

  /** Start delivering events: call `open`, then feed bytes that arrived with the handshake. */
  start(head?: Uint8Array): void {
    invokeHandler(this, 'open', this.handlers.open, undefined, undefined);
    if (head && head.length > 0 && !this.closedEmitted) this.onTransportData(head);
  }

  /** CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3), as in the browser API. */
  get readyState(): State {
    return this.connection.state;
  }

  /**
   * Bytes handed to the socket but not yet to the kernel (framing included), plus messages
   * accepted but not framed yet (behind a large message being compressed in slices).
   */
  get bufferedAmount(): number {
    return this.transport.writableLength + this.connection.pendingSendBytes;
  }

  /**
   * Whether the peer is behind: what it has not read yet reached `maxBufferedAmount`, so the
   * slow-consumer policy would act on the next send (refuse it with `'drop'`, close the
   * connection with `'close'`). With `'drop'`, a `drain` event follows once the peer caught up.
   */
  get slow(): boolean {
    return this.isOpen() && this.transport.writableLength >= this.cfg.maxBufferedAmount;
  }

  /** The peer's address. */
  get remoteAddress(): string | undefined {
    return this.transport.remoteAddress;
  }

  /** The underlying socket (for TLS details, addresses; do not read or write it). */
  get rawSocket(): Socket {
    // The net transport is the socket itself. A transport kind without one (native) or over a
    // shared one (HTTP/2) will have to say what this is when it arrives.
    return this.transport as Socket;
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
    const pendingBefore = this.connection.pendingSendBytes;
    this.receiving = true; // queue only: the write below carries the callback
    let sent: boolean;
    let waiting: boolean;
    try {
      sent = this.send(data, options) || this.connection.hasDataToSend;
      // Queued behind a large message being compressed (the callback then waits for it too).
      waiting = this.connection.pendingSendBytes > pendingBefore;
    } finally {
      this.receiving = wasReceiving;
    }
    if (!this.connection.hasDataToSend && !waiting) {
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

  /**
   * @internal ws's `send`: one data frame, or the next fragment of a message begun with
   * `fin: false` (its type is the first fragment's). `callback` runs once the bytes reached the
   * kernel, or with the error if they cannot; without one the write joins the loop pass's batch.
   * The caller has checked that the connection is open.
   */
  sendFrame(data: Uint8Array, binary: boolean, fin: boolean, compress: boolean, callback: WriteCallback | undefined): void {
    const connection = this.connection;
    if (connection.sendingFragment) connection.sendContinuation(data, fin);
    else if (binary) connection.sendBinary(data, frameOptions(fin, compress));
    else connection.sendText(data, frameOptions(fin, compress));
    this.countOut(data.length);
    if (callback) this.flush(callback);
    else this.afterSend();
  }

  /**
   * @internal ws's `ping`/`pong`: a control frame (at most 125 bytes, checked by the caller) with
   * a write callback as `sendFrame`. The caller has checked that the connection is open.
   */
  sendControl(ping: boolean, data: Uint8Array, callback: WriteCallback | undefined): void {
    if (ping) this.connection.sendPing(data);
    else this.connection.sendPong(data);
    if (callback) this.flush(callback);
    else this.afterSend();
  }

  /**
   * @internal ws's `close`: without a code the close frame is empty (the peer sees 1005), where
   * `close()` sends 1000. Same close timer. Does nothing once closing.
   */
  closeFrame(code: number | undefined, reason: string): void {
    if (!this.isOpen()) return;
    this.connection.sendClose(code, reason);
    this.flush();
    this.armCloseTimer();
  }

  /**
   * @internal ws's `close()` once closing: end our side of the transport after what the engine
   * has queued (e.g. the close frame of a failure still being handled) is written.
   */
  endTransport(): void {
    this.flush();
    if (this.transport.writable) this.transport.end();
  }

  /** Close the socket at once, without a closing handshake (the peer sees 1006). */
  terminate(): void {
    this.transport.destroy();
  }

  /** Stop reading from the socket: the peer's writes back up (TCP flow control). */
  pause(): void {
    this.userPaused = true;
    this.transport.pause();
  }

  /** Resume reading after `pause()`. */
  resume(): void {
    this.userPaused = false;
    if (!this.readPaused && !this.workPaused) this.transport.resume();
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
    if (this.handlers.message) invokeHandler(this, 'message', this.handlers.message, message, binary);
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
      this.transport.pause();
    }
  }

  /** @internal */
  onPing(data: Uint8Array): void {
    // The engine queued a pong: a peer that pings without reading would grow our send buffer,
    // so pongs count against the same ceiling as sends (slow-consumer close, 1008).
    if (this.transport.writableLength >= this.cfg.maxBufferedAmount && !this.connection.closing) {
      if (this.counters) this.counters.dropped++;
      this.logger.warn({ conn: this.id, remote: this.remoteAddress, buffered: this.bufferedAmount }, `slow consumer (pongs not read): closing with ${this.cfg.slowConsumerCloseCode}`);
      this.connection.fail(this.cfg.slowConsumerCloseCode, 'slow consumer');
      this.armCloseTimer();
      return;
    }
    if (this.cfg.rate !== 0 && !this.takeToken()) return;
    if (this.handlers.ping) invokeHandler(this, 'ping', this.handlers.ping, asBuffer(data), undefined);
  }

  /** @internal */
  onPong(data: Uint8Array): void {
    if (this.handlers.pong) invokeHandler(this, 'pong', this.handlers.pong, asBuffer(data), undefined);
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
    if (this.handlers.error) invokeHandler(this, 'error', this.handlers.error, error, undefined);
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

  // ---- transport plumbing (TransportSink) ---------------------------------------------------

  /** @internal Bytes from the transport. */
  onTransportData(chunk: Uint8Array): void {
    this.lastReceived = heartbeat.now;
    this.pingSentAt = 0; // any traffic proves the peer is alive
    this.receiving = true;
    beginBatch();
    try {
      this.connection.receiveData(chunk);
    } finally {
      this.receiving = false;
      this.flush();
      endBatch();
    }
  }

  /** @internal The transport's send buffer emptied. */
  onTransportDrain(): void {
    this.drained();
  }

  /** @internal The peer closed its side. */
  onTransportEnd(): void {
    this.finish();
  }

  /** @internal The transport failed (it is destroyed next). */
  onTransportError(error: Error): void {
    this.logger.debug({ conn: this.id, err: error.message }, 'socket error');
    if (this.handlers.error) invokeHandler(this, 'error', this.handlers.error, error, undefined);
  }

  /** @internal The transport closed. */
  onTransportClose(): void {
    this.finish();
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
    // What the peer has not taken yet, not what waits for compression: a peer that reads is
    // not slow because we send large messages (those are our own memory, not its doing).
    if (this.transport.writableLength < this.cfg.maxBufferedAmount) return true;
    if (this.counters) this.counters.dropped++;
    if (this.cfg.dropSlow) {
      // Tell the sender when the peer has caught up (the socket's own drain comes then), so
      // what was refused can be made good (the hub fills it from history).
      this.needDrain = true;
      return false;
    }
    this.logger.warn({ conn: this.id, remote: this.remoteAddress, buffered: this.bufferedAmount }, `slow consumer: closing with ${this.cfg.slowConsumerCloseCode}`);
    this.connection.fail(this.cfg.slowConsumerCloseCode, 'slow consumer');
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
    } else if (inBatch()) {
      // Another connection's input (or a `batch`) is being processed: write once it is done.
      if (!this.deferred) {
        this.deferred = true;
        deferWrite(this);
      }
    } else {
      this.flush();
    }
    if (this.bufferedAmount < this.cfg.highWaterMark) return true;
    this.needDrain = true;
    return false;
  }

  /**
   * Write what the engine queued, as one write (see `writeChunks`). While a drain is awaited,
   * writes report back so `drain` fires at the low watermark. `callback` runs after the write; when
   * there is nothing to write or the transport no longer takes writes, on the next tick (never
   * synchronously, as a stream's write callback), with the error in the second case.
   */
  private flush(callback?: WriteCallback): void {
    const connection = this.connection;
    if (connection.suspended || this.slicedCallbacks !== undefined) callback = this.slicedFlush(callback);
    const chunks = connection.dataToSend();
    const transport = this.transport;
    if (chunks.length > 0 && transport.writable) {
      writeChunks(transport, chunks, callback ?? (this.needDrain ? (this.onWritten ??= this.written.bind(this)) : undefined));
    } else if (callback) {
      process.nextTick(callback, transport.writable ? null : new InvalidStateError('the socket is closed'));
    }
    if (this.connection.shouldCloseTransport && transport.writable) transport.end();
  }

  /**
   * `flush` while the engine has suspended work: queue for slices, and hold back the write
   * callback of a message that is not framed yet (it waits behind a large message being
   * compressed) until the write that carries it. Returns the callback for this write.
   */
  private slicedFlush(callback: WriteCallback | undefined): WriteCallback | undefined {
    if (this.connection.suspended && !this.sliced && !this.closedEmitted) this.startSlices();
    if (this.connection.pendingSendBytes > 0) {
      if (callback) (this.slicedCallbacks ??= []).push(callback);
      return undefined;
    }
    if (this.slicedCallbacks === undefined) return callback;
    const all = callAll(this.slicedCallbacks, callback);
    this.slicedCallbacks = undefined;
    return all;
  }

  /** A write completed while a drain was awaited. */
  private written(): void {
    if (this.bufferedAmount <= this.cfg.lowWaterMark) this.drained();
  }

  private armCloseTimer(): void {
    if (this.closeTimer) return;
    this.closeTimer = setTimeout(destroyOnTimeout, this.cfg.closeTimeout, this.transport);
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
    if (!this.workPaused && !this.userPaused) this.transport.resume();
  }

  /**
   * The engine suspended (a large message, see `./slices.ts`): queue for slices, and stop
   * reading while received input waits, so the peer's TCP window closes instead of our memory
   * growing.
   */
  private startSlices(): void {
    this.pauseForWork();
    this.sliced = true;
    scheduleSlices(this);
  }

  /** Stop reading while received input waits for its slices (backpressure to the peer). */
  private pauseForWork(): void {
    if (this.connection.receiveSuspended && !this.workPaused) {
      this.workPaused = true;
      this.transport.pause();
    }
  }

  /** @internal One slice of the engine's suspended work; true while more remains. */
  runSlice(): boolean {
    if (this.closedEmitted) return false;
    if (this.connection.receiveSuspended) {
      // Input from the peer is still being processed: it was alive when it sent it.
      this.lastReceived = heartbeat.now;
      this.pingSentAt = 0;
    }
    this.receiving = true;
    beginBatch();
    try {
      this.connection.resume();
    } finally {
      this.receiving = false;
      this.flush();
      endBatch();
    }
    if (this.closedEmitted) {
      this.sliced = false;
      return false;
    }
    // A send-only suspension may have started receiving-side work: reading stops now.
    this.pauseForWork();
    if (this.connection.suspended) return true;
    this.sliced = false;
    if (this.workPaused && !this.connection.receiveSuspended) {
      this.workPaused = false;
      if (!this.readPaused && !this.userPaused) this.transport.resume();
    }
    return false;
  }

  /** The transport ended or closed: the connection is over (once, whichever came first). */
  private finish(): void {
    if (this.closedEmitted) return;
    this.closedEmitted = true;
    heartbeat.delete(this);
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.connection.receiveEof();
    if (this.slicedCallbacks !== undefined) {
      // Their messages were never framed.
      for (const callback of this.slicedCallbacks) process.nextTick(callback, new InvalidStateError('the socket is closed'));
      this.slicedCallbacks = undefined;
    }
    // Nothing is compressed or inflated once CLOSED (sends are refused, input is ignored): free
    // the codec's own zlib contexts now rather than at garbage collection (ws does the same).
    // Contexts shared by connections without context takeover are not the codec's to free.
    this.connection.messageCodec?.close();
    if (this.reader) {
      const reader = this.reader;
      this.reader = undefined;
      reader(DONE);
    }
    const code = this.connection.closeCode;
    const reason = this.connection.closeReason;
    if (this.handlers.close) invokeHandler(this, 'close', this.handlers.close, code, reason);
  }

  private drained(): void {
    if (!this.needDrain) return;
    this.needDrain = false;
    if (this.handlers.drain) invokeHandler(this, 'drain', this.handlers.drain, undefined, undefined);
  }

  /** @internal A user handler failed (see `invokeHandler`): report it, and close with 1011 rather than crash the process. */
  handlerFailed(name: HandlerName, error: unknown): void {
    // The ws-compatible module: a listener's exception is the caller's, as in ws.
    if (this.cfg.rethrowHandlerErrors) throw error;
    reportHandlerFailure(this, this.handlers, this.logger, name, error);
    if (this.isOpen()) {
      this.connection.fail(CloseCode.InternalError, 'internal error');
      if (!this.receiving) this.flush();
      this.armCloseTimer();
    }
  }
}

/** The engine's frame options for `sendFrame`, one shared object per combination (no allocation per send). */
const FRAME_OPTIONS = [
  { fin: false, compress: false },
  { fin: false, compress: true },
  { fin: true, compress: false },
  { fin: true, compress: true },
] as const;
function frameOptions(fin: boolean, compress: boolean): { fin: boolean; compress: boolean } {
  return FRAME_OPTIONS[(fin ? 2 : 0) + (compress ? 1 : 0)];
}

/** One write callback for several (the write that carries the last of their messages). */
function callAll(callbacks: WriteCallback[], last: WriteCallback | undefined): WriteCallback {
  if (last) callbacks.push(last);
  return (error) => {
    for (const callback of callbacks) callback(error);
  };
}

function destroyOnTimeout(transport: Transport): void {
  transport.destroy();
}
