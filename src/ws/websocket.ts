/**
 * ws 8's `WebSocket` class on duplex's engine: the same constructor, properties, methods, events,
 * defaults and errors, built by composition over the Node binding's own `WebSocket`
 * (`src/node/websocket.ts`, here "the inner"), which keeps doing the framing, the write batching,
 * the close timer and the codec release. One handlers object serves every connection; it finds
 * this object as the inner's `data`, so a connection costs no closures.
 *
 * A server-side socket is created as `new WebSocket(null, undefined, serverOptions)` and bound by
 * `setSocket` (so a subclass given as the server's `WebSocket` option works, as in ws); a client
 * runs `initAsClient` (`./client.ts`), which reports its progress through the methods of
 * `ClientHandshakeSink` (`./binding.ts`).
 */
import { TypedEmitter } from './typed-emitter.js';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex, DuplexOptions } from 'node:stream';
import { isValidCloseCode } from '../protocol/constants.js';
import { ProtocolError } from '../protocol/errors.js';
import type { Transport, WriteCallback } from '../node/transport/transport.js';
import { WebSocket as Inner } from '../node/websocket.js';
import type { ClientHandshakeSink, SocketBinding, WsSocketOptions } from './binding.js';
import { initAsClient } from './client.js';
import {
  BINARY_TYPES,
  CLOSE_TIMEOUT,
  CLOSED,
  MAX_PENDING_AUTO_PONGS,
  CLOSING,
  CONNECTING,
  EMPTY_BUFFER,
  OPEN,
  READY_STATES,
  type BinaryType,
  type ReadyState,
} from './constants.js';
import { toWsError } from './errors.js';
import {
  addEventListener,
  defineEventAttributes,
  removeEventListener,
  type AddEventListenerOptions,
  type CloseEvent,
  type ErrorEvent,
  type Event,
  type EventListenerLike,
  type MessageEvent,
} from './event-target.js';
import type { ClientOptions, ServerOptions } from './options.js';
import type { WebSocketServer } from './server.js';
import { attachSocket } from './socket.js';

import { GeneratedMaskingKeys, HANDLERS, MESSAGE, PING, PONG, settingsFor, type Limits } from './inner.js';
import { isBlob, toBytes, type SendCallback, type SendData, type SendOptions } from './send-data.js';

export type { ClientOptions, PerMessageDeflateOptions, ServerOptions } from './options.js';
export type { SendCallback, SendData, SendOptions } from './send-data.js';

/** A received binary message, in the form `binaryType` says (text messages are always Buffers). */
export type RawData = Buffer | ArrayBuffer | Buffer[] | Blob;

/** An event held for a later loop pass (`allowSynchronousEvents: false` only). */
interface DeferredEvent {
  kind: number;
  data: Buffer | Error;
  isBinary: boolean;
}

/** A send held behind a Blob being read, so that the order of sends is kept (as ws). */
interface PendingSend {
  /** MESSAGE, PING, PONG, or CLOSE_FRAME (a `close()` made while a Blob was being read: it waits its turn, as in ws). */
  kind: number;
  data: Uint8Array | Blob;
  binary: boolean;
  fin: boolean;
  compress: boolean;
  cb: SendCallback | undefined;
  reading: boolean;
  /** CLOSE_FRAME only: the code and reason of the close frame. */
  code?: number | undefined;
  reason?: string;
}

/** The kind of a queued close frame (beside the event kinds of `./inner.ts`). */
const CLOSE_FRAME = 4;

/** The bytes a queued send holds (a Blob: its size), for `bufferedAmount` as ws counts its sender queue. */
function pendingBytes(pending: readonly PendingSend[] | undefined): number {
  let bytes = 0;
  if (pending) for (const item of pending) bytes += isBlob(item.data) ? item.data.size : item.data.byteLength;
  return bytes;
}

/** The defaults ws's constructor itself applies to a client's options (the handshake applies the rest). */
const CLIENT_DEFAULTS = {
  autoPong: true,
  /** ms: ws's closeTimeout. */
  closeTimeout: CLOSE_TIMEOUT,
  /** Unwritten pongs at which a peer pinging without reading is terminated (ws 8.23). */
  maxPendingAutoPongs: MAX_PENDING_AUTO_PONGS,
};

/** ws's `n | 0`: a number's integer part, 0 for anything else. */
function int32(value: unknown): number {
  return (value as number) | 0;
}

/** The events of a `WebSocket`, with their listeners' arguments (the types @types/ws gives). */
export interface WebSocketEvents {
  /** The connection is open. */
  open: [];
  /** A message: the data (text as a Buffer; binary as `binaryType` says) and whether it is binary. */
  message: [data: RawData, isBinary: boolean];
  /** A ping arrived (its pong was sent, with `autoPong`). */
  ping: [data: Buffer];
  /** A pong arrived. */
  pong: [data: Buffer];
  /** The connection failed (a protocol error, or the handshake). */
  error: [error: Error];
  /** The connection closed: the peer's code (1005 none, 1006 no close frame) and reason. */
  close: [code: number, reason: Buffer];
  /** Client: the server's 101. */
  upgrade: [response: IncomingMessage];
  /** Client: a redirect is followed (`followRedirects`). */
  redirect: [url: string, request: ClientRequest];
  /** Client: the server answered something else than a 101 (a listener takes charge of it). */
  'unexpected-response': [request: ClientRequest, response: IncomingMessage];
}


function notOpen(state: ReadyState): Error {
  return new Error(`WebSocket is not open: readyState ${state} (${READY_STATES[state]})`);
}

/**
 * A WebSocket connection with ws 8's API (`import WebSocket from 'duplex-ws/ws'`). Events: `open`,
 * `message` (data, isBinary), `ping` (data), `pong` (data), `error` (error), `close` (code, reason
 * as a Buffer), and on a client `upgrade` (response), `unexpected-response` (request, response),
 * `redirect` (url, request).
 */
export class WebSocket extends TypedEmitter<WebSocketEvents> {
  /** readyState 0: connecting. */
  declare static readonly CONNECTING: 0;
  /** readyState 1: open. */
  declare static readonly OPEN: 1;
  /** readyState 2: closing. */
  declare static readonly CLOSING: 2;
  /** readyState 3: closed. */
  declare static readonly CLOSED: 3;
  /** readyState 0: connecting. */
  declare readonly CONNECTING: 0;
  /** readyState 1: open. */
  declare readonly OPEN: 1;
  /** readyState 2: closing. */
  declare readonly CLOSING: 2;
  /** readyState 3: closed. */
  declare readonly CLOSED: 3;

  /** The server class (`WebSocket.WebSocketServer`, as ws's). */
  declare static WebSocketServer: typeof WebSocketServer;
  /** The server class under its older name (`WebSocket.Server`). */
  declare static Server: typeof WebSocketServer;
  /** The class itself (`WebSocket.WebSocket`), for `const { WebSocket } = require(…)`. */
  declare static WebSocket: typeof WebSocket;
  /** `createWebSocketStream(ws, options)`: a Duplex stream over a WebSocket. */
  declare static createWebSocketStream: (ws: WebSocket, options?: DuplexOptions) => Duplex;

  /** The `open` listener set through the property (null if none). */
  declare onopen: ((this: WebSocket, event: Event) => void) | null;
  /** The `message` listener set through the property (null if none). */
  declare onmessage: ((this: WebSocket, event: MessageEvent) => void) | null;
  /** The `close` listener set through the property (null if none). */
  declare onclose: ((this: WebSocket, event: CloseEvent) => void) | null;
  /** The `error` listener set through the property (null if none). */
  declare onerror: ((this: WebSocket, event: ErrorEvent) => void) | null;

  private _binaryType: BinaryType = 'nodebuffer';
  private _readyState: ReadyState = CONNECTING;
  private _inner: Inner<WebSocket> | undefined;
  private _url: string | undefined;
  private _req: ClientRequest | null = null;
  private _protocol = '';
  private _extensions = '';
  private _paused = false;
  private readonly _closeTimeout: number;
  /** Bytes "sent" after close, which ws adds to bufferedAmount. */
  private _afterCloseBytes = 0;
  private _closedCleanly = false;
  private _errorEmitted = false;
  private _sync = true;
  private _deferred: DeferredEvent[] | undefined;
  private _closePending = false;
  private _pending: PendingSend[] | undefined;
  /** ws's `autoPong` as the constructor's options say (the server's, or a client's with ws's defaults). */
  private readonly _autoPong: boolean;
  /** Pongs this layer sends for the engine (`autoPong` with a `maxPendingAutoPongs` limit; 0: none). */
  private _pongLimit = 0;
  private readonly _maxPendingAutoPongs: number;
  private _pendingPongs = 0;
  private _onPongWritten: (() => void) | undefined;

  /** @internal ws's own field: true for a server-side socket (address null); `setSocket` with ws's options reads it for the side. */
  _isServer: boolean;
  /** @internal ws's own field on a client: the redirects followed so far (ws's tests read it). */
  declare _redirects: number;

  /**
   * A client connecting to `address` (ws:, wss:, http:, https: or ws+unix:), offering `protocols`;
   * or, with `address` null, a server-side socket the server binds with `setSocket`.
   * @throws SyntaxError for an invalid URL or subprotocol, RangeError for an unsupported
   * `protocolVersion` (ws's messages).
   */
  constructor(address: null, protocols?: undefined, options?: ServerOptions | ClientOptions);
  constructor(address: string | URL, options?: ClientOptions);
  constructor(address: string | URL, protocols?: string | string[], options?: ClientOptions);
  constructor(address: string | URL | null, protocols?: string | string[] | ClientOptions, options?: ServerOptions | ClientOptions) {
    super();
    let list: string | string[] | undefined;
    if (protocols !== undefined && protocols !== null && typeof protocols === 'object' && !Array.isArray(protocols)) {
      // ws: an object as second argument is the options.
      options = protocols;
    } else if (protocols === null) {
      list = [protocols as unknown as string]; // refused by the subprotocol check, as in ws
    } else {
      list = protocols;
    }
    if (list === undefined && options !== undefined && 'protocols' in options) list = options.protocols;
    this._isServer = address === null;
    let resolved: ServerOptions | ClientOptions | undefined = options;
    if (address !== null) {
      this._redirects = 0;
      // ws spreads its defaults under the options (a key given as undefined stays undefined).
      resolved = { ...CLIENT_DEFAULTS, ...options };
      initAsClient(this, address, list, resolved as ClientOptions);
    }
    // A server-side socket takes the server's resolved options, as in ws (a hand-made one without
    // them gets no automatic pongs, as in ws).
    this._autoPong = !!resolved?.autoPong;
    this._maxPendingAutoPongs = int32(resolved?.maxPendingAutoPongs);
    const closeTimeout = resolved?.closeTimeout;
    this._closeTimeout = typeof closeTimeout === 'number' ? closeTimeout : CLOSE_TIMEOUT;
  }

  /** How binary messages are delivered: 'nodebuffer' (default), 'arraybuffer', 'fragments' or 'blob'; other values are ignored. */
  get binaryType(): BinaryType {
    return this._binaryType;
  }
  set binaryType(type: BinaryType) {
    if (BINARY_TYPES.includes(type)) this._binaryType = type;
  }

  /** Bytes queued but not yet handed to the kernel. */
  get bufferedAmount(): number {
    return (this._inner === undefined ? 0 : this._inner.bufferedAmount) + pendingBytes(this._pending) + this._afterCloseBytes;
  }

  /** The names of the negotiated extensions ('permessage-deflate' or ''). */
  get extensions(): string {
    return this._extensions;
  }

  /** Whether `pause()` is in effect. */
  get isPaused(): boolean {
    return this._paused;
  }

  /** The negotiated subprotocol ('' if none). */
  get protocol(): string {
    return this._protocol;
  }

  /** CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3). */
  get readyState(): ReadyState {
    const state = this._readyState;
    // The engine leaves OPEN by itself when a close frame goes either way or the socket ends.
    if (state === OPEN && this._inner!.readyState !== OPEN) return CLOSING;
    return state;
  }

  /** The URL of a client (after redirects); undefined on the server side. */
  get url(): string {
    return this._url as string;
  }

  /** The socket under the connection (ws's `_socket`; null before the handshake). Read it, do not drive it. */
  get _socket(): Socket | null {
    return this._inner === undefined ? null : this._inner.rawSocket;
  }

  /** @internal `CloseEvent.wasClean`: close frames went both ways. */
  get closedCleanly(): boolean {
    return this._closedCleanly;
  }

  /**
   * Send a message: a string as text, anything else as binary (unless `options.binary` says), a
   * number as its text. `cb` runs once the bytes reached the kernel, or with the error. After
   * close, nothing is sent and `cb` gets the error on the next tick.
   * @throws Error while CONNECTING: 'WebSocket is not open: readyState 0 (CONNECTING)'.
   */
  send(data: SendData, cb?: SendCallback): void;
  send(data: SendData, options: SendOptions | undefined, cb?: SendCallback): void;
  send(data: SendData, options?: SendOptions | SendCallback, cb?: SendCallback): void {
    const state = this.readyState;
    if (state === CONNECTING) throw notOpen(CONNECTING);
    if (typeof options === 'function') {
      cb = options;
      options = undefined;
    }
    if (typeof data === 'number') data = data.toString();
    if (state !== OPEN) {
      this.sendAfterClose(data, cb);
      return;
    }
    // ws spreads the options over its defaults: a key present with `undefined` counts as false.
    let binary = typeof data !== 'string';
    let compress = true;
    let fin = true;
    if (options !== null && typeof options === 'object') {
      if ('binary' in options) binary = !!options.binary;
      if ('compress' in options) compress = !!options.compress;
      if ('fin' in options) fin = !!options.fin;
    }
    // A Buffer (the echo and broadcast case: what `message` delivered) needs neither test nor conversion.
    let bytes: Uint8Array;
    if (Buffer.isBuffer(data)) bytes = data;
    else if (isBlob(data)) {
      this.enqueue(MESSAGE, data, binary, fin, compress, cb);
      return;
    } else bytes = data ? toBytes(data) : EMPTY_BUFFER;
    if (this._pending !== undefined) {
      // Behind a Blob being read: keep the order of sends.
      this.enqueue(MESSAGE, bytes, binary, fin, compress, cb);
      return;
    }
    this._inner!.sendFrame(bytes, binary, fin, compress, cb as WriteCallback | undefined);
  }

  /**
   * Send a ping (at most 125 bytes). `mask` is accepted for ws's signature; `cb` as for `send`.
   * @throws Error while CONNECTING; RangeError for more than 125 bytes.
   */
  ping(data?: SendData | SendCallback, mask?: boolean | SendCallback, cb?: SendCallback): void {
    this.control(PING, data, mask, cb);
  }

  /**
   * Send a pong (at most 125 bytes), e.g. with `autoPong: false`. As `ping`.
   * @throws Error while CONNECTING; RangeError for more than 125 bytes.
   */
  pong(data?: SendData | SendCallback, mask?: boolean | SendCallback, cb?: SendCallback): void {
    this.control(PONG, data, mask, cb);
  }

  /**
   * Start the closing handshake with `code` and `reason` (without a code the close frame is empty;
   * the peer sees 1005). The socket is destroyed if the peer does not answer within `closeTimeout`.
   * While CONNECTING, aborts the handshake ('WebSocket was closed before the connection was established').
   * @throws TypeError for a code that may not be sent; RangeError for a reason over 123 bytes;
   * TypeError for a reason that is neither a string nor bytes.
   */
  close(code?: number, reason?: string | Buffer): void {
    const state = this.readyState;
    if (state === CLOSED) return;
    if (state === CONNECTING) {
      this.abortHandshake('WebSocket was closed before the connection was established');
      return;
    }
    const inner = this._inner;
    // A failed handshake leaves CLOSING without a socket: nothing to close (ws does nothing either).
    if (inner === undefined) return;
    if (state === CLOSING) {
      // Close frames went both ways (or the peer failed): end our side now rather than wait, after
      // what the engine queued (an 'error' listener runs before the failure's close frame is written).
      const connection = inner.connection;
      if (connection.closing && (connection.closeCode !== 1006 || this._errorEmitted)) inner.endTransport();
      return;
    }
    let text = '';
    if (code !== undefined) {
      if (typeof code !== 'number' || !isValidCloseCode(code)) throw new TypeError('First argument must be a valid error code number');
      if (reason !== undefined && reason.length > 0) {
        if (Buffer.byteLength(reason) > 123) throw new RangeError('The message must not be greater than 123 bytes');
        if (typeof reason === 'string') text = reason;
        else if (reason instanceof Uint8Array) text = Buffer.from(reason.buffer, reason.byteOffset, reason.byteLength).toString();
        else throw new TypeError('Second argument must be a string or a Uint8Array');
      }
    }
    this._readyState = CLOSING;
    if (this._pending !== undefined) {
      // Sends made before this close wait for a Blob to be read: the close frame goes after them.
      this._pending.push({ kind: CLOSE_FRAME, data: EMPTY_BUFFER, binary: false, fin: true, compress: false, cb: undefined, reading: false, code, reason: text });
      return;
    }
    inner.closeFrame(code, text);
  }

  /** Destroy the socket now, without a closing handshake (the peer sees 1006). While CONNECTING, aborts the handshake. */
  terminate(): void {
    const state = this.readyState;
    if (state === CLOSED) return;
    if (state === CONNECTING) {
      this.abortHandshake('WebSocket was closed before the connection was established');
      return;
    }
    // A failed handshake leaves CLOSING without a socket: nothing to destroy.
    if (this._inner === undefined) return;
    this._readyState = CLOSING;
    this._inner.terminate();
  }

  /** Stop reading from the socket (messages stop after what was already read). No-op while CONNECTING or CLOSED. */
  pause(): void {
    const state = this.readyState;
    if (state === CONNECTING || state === CLOSED) return;
    this._paused = true;
    this._inner?.pause(); // none after a failed handshake (CLOSING)
  }

  /** Read again after `pause()`. No-op while CONNECTING or CLOSED. */
  resume(): void {
    const state = this.readyState;
    if (state === CONNECTING || state === CLOSED) return;
    this._paused = false;
    if (this._deferred === undefined || this._deferred.length === 0) this._inner?.resume();
  }

  /** Add a DOM-style listener for `open`, `message`, `close` or `error` (`{ once }` supported); other types are ignored. */
  addEventListener(type: 'open', listener: EventListenerLike<Event>, options?: AddEventListenerOptions): void;
  addEventListener(type: 'message', listener: EventListenerLike<MessageEvent>, options?: AddEventListenerOptions): void;
  addEventListener(type: 'close', listener: EventListenerLike<CloseEvent>, options?: AddEventListenerOptions): void;
  addEventListener(type: 'error', listener: EventListenerLike<ErrorEvent>, options?: AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerLike<never>, options?: AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerLike<never>, options?: AddEventListenerOptions): void {
    addEventListener.call(this, type, listener, options);
  }

  /** Remove a listener added with `addEventListener`. */
  removeEventListener(type: 'open', listener: EventListenerLike<Event>): void;
  removeEventListener(type: 'message', listener: EventListenerLike<MessageEvent>): void;
  removeEventListener(type: 'close', listener: EventListenerLike<CloseEvent>): void;
  removeEventListener(type: 'error', listener: EventListenerLike<ErrorEvent>): void;
  removeEventListener(type: string, listener: EventListenerLike<never>): void;
  removeEventListener(type: string, listener: EventListenerLike<never>): void {
    removeEventListener.call(this, type, listener);
  }

  // ---- the handshakes' side (ClientHandshakeSink; the server calls setSocket) ---------------

  /** @internal The address as `url` shows it. */
  setUrl(url: string): void {
    this._url = url;
  }

  /** @internal The client request in flight (aborted by close/terminate while CONNECTING). */
  setRequest(req: ClientRequest | null): void {
    this._req = req;
  }

  /**
   * @internal The handshake succeeded: bind the socket (any Duplex), OPEN, emit `open`. Takes what
   * our handshakes hand over (a `SocketBinding`), or ws's own options (`WsSocketOptions`, told
   * apart by the binding's `side`): then the side comes from `_isServer` and nothing was negotiated.
   */
  setSocket(socket: Duplex, head: Buffer, options: SocketBinding | WsSocketOptions): void {
    let side: 'server' | 'client';
    let codec: SocketBinding['codec'];
    let autoPong: boolean;
    if ('side' in options) {
      side = options.side;
      codec = options.codec;
      autoPong = options.autoPong;
      this._protocol = options.protocol;
      this._extensions = options.extensions;
    } else {
      side = this._isServer ? 'server' : 'client';
      autoPong = this._autoPong;
    }
    // ws's receiver defaults: synchronous events unless told otherwise, no limit where none is given.
    this._sync = options.allowSynchronousEvents !== false;
    // Pongs are ours to send when their count is limited (ws 8.23's maxPendingAutoPongs).
    this._pongLimit = autoPong && this._maxPendingAutoPongs > 0 ? this._maxPendingAutoPongs : 0;
    const limits: Limits = {
      maxPayload: int32(options.maxPayload),
      skipUTF8Validation: !!options.skipUTF8Validation,
      enginePongs: autoPong && this._pongLimit === 0,
      maxFragments: Math.max(0, int32(options.maxFragments)),
      maxBufferedChunks: Math.max(0, int32(options.maxBufferedChunks)),
    };
    const generateMask = options.generateMask;
    // Bytes that came with the upgrade are read after 'open' and 'connection', as ws does.
    if (head.length > 0) socket.unshift(head);
    this._inner = new Inner<WebSocket>(
      socket as unknown as Transport,
      {
        side,
        handlers: HANDLERS,
        data: this,
        protocol: this._protocol,
        extensions: this._extensions,
        codec,
        settings: settingsFor(limits, this._closeTimeout),
        maskingKeys: typeof generateMask === 'function' ? new GeneratedMaskingKeys(generateMask) : undefined,
      },
      attachSocket,
    );
    this._readyState = OPEN;
    this.emit('open');
  }

  /** @internal The handshake failed: CLOSING now, `error` then `close` (1006) on the next tick. */
  failHandshake(error: Error): void {
    if (this._readyState !== CONNECTING) return;
    this._readyState = CLOSING;
    process.nextTick(emitErrorAndClose, this, error);
  }

  // ---- from the engine ---------------------------------------------------------------------

  /** @internal An engine event (`HANDLERS`): now, or on a later loop pass without synchronous events. */
  receive(kind: number, data: Buffer | Error, isBinary: boolean): void {
    if (this._sync && this._deferred === undefined) this.dispatch(kind, data, isBinary);
    else this.defer(kind, data, isBinary);
  }

  /** @internal The socket closed: emit `close` (after any deferred event). */
  onSocketClose(): void {
    if (this._readyState === CLOSED) return;
    if (this._deferred !== undefined && this._deferred.length > 0) this._closePending = true;
    else this.emitClose();
  }

  private dispatch(kind: number, data: Buffer | Error, isBinary: boolean): void {
    if (kind === MESSAGE) {
      this.emit('message', isBinary ? this.binaryData(data as Buffer) : data, isBinary);
    } else if (kind === PING) {
      if (this._pongLimit > 0) this.autoPong(data as Buffer);
      this.emit('ping', data);
    } else if (kind === PONG) {
      this.emit('pong', data);
    } else if (!this._errorEmitted) {
      this._errorEmitted = true;
      this.emit('error', toWsError(data as ProtocolError));
    }
  }

  /** `allowSynchronousEvents: false`: one event per loop pass, reading paused meanwhile (ws's rule). */
  private defer(kind: number, data: Buffer | Error, isBinary: boolean): void {
    if (this._deferred === undefined) this._deferred = [];
    if (this._deferred.length === 0) {
      setImmediate(emitDeferred, this);
      this._inner?.pause();
    }
    this._deferred.push({ kind, data, isBinary });
  }

  /** @internal Emit the oldest deferred event (a `setImmediate` callback). */
  emitNextDeferred(): void {
    const queue = this._deferred!;
    const event = queue.shift();
    if (event !== undefined) this.dispatch(event.kind, event.data, event.isBinary);
    if (queue.length > 0) {
      setImmediate(emitDeferred, this);
      return;
    }
    if (this._sync) this._deferred = undefined;
    if (this._closePending) {
      this._closePending = false;
      this.emitClose();
    } else if (!this._paused && this._readyState !== CLOSED) {
      this._inner?.resume();
    }
  }

  /**
   * ws 8.23's automatic pong with `maxPendingAutoPongs`: a peer whose pongs pile up unwritten (it
   * pings and does not read) is terminated rather than left to grow our send buffer.
   */
  private autoPong(data: Buffer): void {
    if (this.readyState !== OPEN) return;
    if (this._pendingPongs >= this._pongLimit) {
      this.terminate();
      return;
    }
    this._pendingPongs++;
    // One callback per connection, made on its first ping.
    this._onPongWritten ??= () => {
      this._pendingPongs--;
    };
    this._inner!.sendControl(false, data, this._onPongWritten);
  }

  private binaryData(data: Buffer): RawData {
    switch (this._binaryType) {
      case 'arraybuffer':
        return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength
          ? (data.buffer as ArrayBuffer)
          : (data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer);
      case 'fragments':
        return [data];
      case 'blob':
        return new Blob([data as Uint8Array<ArrayBuffer>]);
      default:
        return data;
    }
  }

  /** @internal Emit `close` with the peer's code (1006 if no close frame came) and reason. */
  emitClose(): void {
    if (this._readyState === CLOSED) return;
    let code = 1006;
    let reason = EMPTY_BUFFER;
    const inner = this._inner;
    if (inner !== undefined) {
      const connection = inner.connection;
      code = connection.closeCode;
      if (connection.closeReason !== '') reason = Buffer.from(connection.closeReason);
      this._closedCleanly = code !== 1006 && connection.closeSentCode !== 0;
    }
    this._readyState = CLOSED;
    this.emit('close', code, reason);
  }

  // ---- sending -----------------------------------------------------------------------------

  private control(kind: number, data: SendData | SendCallback, mask: boolean | SendCallback | undefined, cb: SendCallback | undefined): void {
    const state = this.readyState;
    if (state === CONNECTING) throw notOpen(CONNECTING);
    if (typeof data === 'function') {
      cb = data;
      data = undefined;
    } else if (typeof mask === 'function') {
      cb = mask;
    }
    if (typeof data === 'number') data = data.toString();
    if (state !== OPEN) {
      this.sendAfterClose(data, cb);
      return;
    }
    const bytes = data ? (isBlob(data) ? data : toBytes(data)) : EMPTY_BUFFER;
    const length = isBlob(bytes) ? bytes.size : bytes.length;
    if (length > 125) throw new RangeError('The data size must not be greater than 125 bytes');
    if (this._pending !== undefined || isBlob(bytes)) {
      this.enqueue(kind, bytes, false, true, false, cb);
      return;
    }
    this._inner!.sendControl(kind === PING, bytes, cb as WriteCallback | undefined);
  }

  /** ws's sendAfterClose: the bytes count in bufferedAmount, `cb` gets the error on the next tick. */
  private sendAfterClose(data: SendData, cb: SendCallback | undefined): void {
    if (data) {
      this._afterCloseBytes += isBlob(data) ? data.size : toBytes(data as Exclude<SendData, Blob | number | null | undefined>).length;
    }
    if (cb) process.nextTick(cb, notOpen(this.readyState));
  }

  /** Hold a send until the Blobs before it (or it) are read, keeping the order of sends. */
  private enqueue(kind: number, data: Uint8Array | Blob, binary: boolean, fin: boolean, compress: boolean, cb: SendCallback | undefined): void {
    (this._pending ??= []).push({ kind, data, binary, fin, compress, cb, reading: false });
    this.pump();
  }

  private pump(): void {
    const pending = this._pending!;
    while (pending.length > 0) {
      const next = pending[0]!;
      if (isBlob(next.data)) {
        if (!next.reading) {
          next.reading = true;
          next.data.arrayBuffer().then(
            (buffer) => {
              next.data = Buffer.from(buffer);
              this.pump();
            },
            (error: unknown) => this.blobFailed(error instanceof Error ? error : new Error(String(error))),
          );
        }
        return;
      }
      pending.shift();
      const inner = this._inner;
      // What was queued while OPEN still goes out after a later close(), before its close frame
      // (ws's sender queue); only a socket that closed meanwhile refuses it.
      if (inner === undefined || inner.readyState !== OPEN || inner.connection.closing || !inner.rawSocket.writable) {
        if (next.cb) process.nextTick(next.cb, new Error('The socket was closed while the blob was being read'));
      } else if (next.kind === MESSAGE) {
        inner.sendFrame(next.data, next.binary, next.fin, next.compress, next.cb as WriteCallback | undefined);
      } else if (next.kind === CLOSE_FRAME) {
        inner.closeFrame(next.code, next.reason ?? '');
      } else {
        inner.sendControl(next.kind === PING, next.data, next.cb as WriteCallback | undefined);
      }
    }
    this._pending = undefined;
  }

  /**
   * A Blob could not be read: as ws, every queued send's callback gets the error, `error` is
   * emitted (once), and the socket is ended (the peer sees 1006).
   */
  private blobFailed(error: Error): void {
    const pending = this._pending ?? [];
    this._pending = undefined;
    for (const item of pending) if (item.cb) item.cb(error);
    if (this._readyState === OPEN) this._readyState = CLOSING;
    this._inner?.endTransport();
    if (!this._errorEmitted) {
      this._errorEmitted = true;
      this.emit('error', error);
    }
  }

  private abortHandshake(message: string): void {
    const req = this._req;
    this._req = null;
    this.failHandshake(new Error(message));
    if (req !== null) {
      req.destroy();
      // After a response, destroying the request may leave its socket open.
      if (req.socket && !req.socket.destroyed) req.socket.destroy();
    }
  }
}

function emitErrorAndClose(ws: WebSocket, error: Error): void {
  ws.emit('error', error);
  ws.emitClose();
}

function emitDeferred(ws: WebSocket): void {
  ws.emitNextDeferred();
}

// The handshakes hand over through these methods (not an `implements` clause: they are stripped
// from the published types).
void ((ws: WebSocket): ClientHandshakeSink => ws);

// ws's constants: enumerable, read-only, on the class and on its instances.
for (const [index, name] of READY_STATES.entries()) {
  const descriptor = { enumerable: true, value: index, writable: false, configurable: false };
  Object.defineProperty(WebSocket, name, descriptor);
  Object.defineProperty(WebSocket.prototype, name, descriptor);
}
// ws's attributes are enumerable accessors of the prototype.
for (const name of ['binaryType', 'bufferedAmount', 'extensions', 'isPaused', 'protocol', 'readyState', 'url']) {
  Object.defineProperty(WebSocket.prototype, name, { enumerable: true });
}
defineEventAttributes(WebSocket.prototype);
