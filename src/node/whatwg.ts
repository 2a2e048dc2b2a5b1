/**
 * The browser's `WebSocket` API (the WHATWG WebSockets Standard) on top of `connect()`, so code
 * written for browsers runs on Node unchanged: `readyState`, `onopen`/`onmessage`/`onerror`/
 * `onclose` and `addEventListener` (it is an `EventTarget`), `binaryType`, `bufferedAmount`,
 * `send`, `close`, with the spec's exceptions and its event timing: every event is dispatched in
 * a task of its own (`setImmediate`), never synchronously from the constructor or a method.
 * That costs a little per message (ws#2159); the callback API of `connect()` does not pay it.
 *
 * Deviations: `close()` without a code sends 1000 rather than an empty close frame (the peer
 * sees 1000, not 1005); `bufferedAmount` counts framed bytes in the socket buffer, not payload
 * bytes; `binaryType` also accepts `'nodebuffer'` (a Buffer, as in `ws`).
 * @module duplex-ws/whatwg
 */
import { CloseCode } from '../protocol/constants.js';
import { toError } from '../protocol/errors.js';
import { isToken } from '../protocol/headers.js';
import { parseWebSocketUrl } from '../protocol/url.js';
import { connect, type ConnectOptions } from './client.js';
import type { MessageData, WebSocketHandlers } from './handlers.js';
import type { WebSocket } from './websocket.js';

/** How binary messages are delivered: a `Blob` (the spec's default), an `ArrayBuffer`, or a Node `Buffer`. */
export type BinaryType = 'blob' | 'arraybuffer' | 'nodebuffer';

/** What `send()` accepts: text, or binary as an ArrayBuffer, a view of one (e.g. a Buffer), or a Blob. */
export type WHATWGSendData = string | ArrayBufferLike | ArrayBufferView | Blob;

/** The `data` of a `message` event: a string for text; for binary, per `binaryType`. */
export type WHATWGMessageData = string | Blob | ArrayBuffer | Buffer;

/** Node-only extras (the browser API has no place for them): headers, TLS, origin, deflate, limits. */
export type WHATWGWebSocketOptions = Omit<ConnectOptions<unknown>, 'handlers' | 'data' | 'protocols' | 'textAsBuffer'>;

/** Init of a `CloseEvent`. */
export interface CloseEventInit extends EventInit {
  /** The close code (default 0, as in the spec). */
  code?: number;
  /** The close reason (default ''). */
  reason?: string;
  /** Whether the closing handshake completed (default false). */
  wasClean?: boolean;
}

/** The `close` event (global in browsers, not in Node 20). */
export class CloseEvent extends Event {
  /** The close code the peer sent; 1005 if none, 1006 if the connection dropped. */
  readonly code: number;
  /** The close reason the peer sent. */
  readonly reason: string;
  /** Whether the closing handshake completed. */
  readonly wasClean: boolean;
  /**
   * For dispatching your own (tests, adapters); the socket makes one per connection.
   * @param type The event type; the socket dispatches `'close'`.
   */
  constructor(type: string, init: CloseEventInit = {}) {
    super(type, init);
    this.code = init.code ?? 0;
    this.reason = init.reason ?? '';
    this.wasClean = init.wasClean ?? false;
  }
}

/** The `error` event: a plain `Event` to browser code, with the cause attached for Node users. */
export class WebSocketErrorEvent extends Event {
  /** What went wrong (e.g. a `HandshakeError` with the HTTP status, or ECONNREFUSED). */
  readonly error: Error | undefined;
  /** The error's message ('' without one), as on the `ErrorEvent` some runtimes dispatch. */
  readonly message: string;
  /** The event the socket dispatches just before `close` when the connection failed, with its cause. */
  constructor(error: Error | undefined) {
    super('error');
    this.error = error;
    this.message = error?.message ?? '';
  }
}

type Handler<E extends Event> = ((this: WHATWGWebSocket, event: E) => unknown) | null;
type AnyHandler = (this: WHATWGWebSocket, event: Event) => unknown;
type EventName = 'open' | 'message' | 'error' | 'close';

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
/** RFC 6455 §5.5: a close frame's payload is at most 125 bytes, 2 of them the code. */
const MAX_REASON_BYTES = 123;

// One handler object for every instance: the instance travels as the connection's `data`.
const handlers: WebSocketHandlers<WHATWGWebSocket> = {
  open: (ws) => ws.data.connected(ws),
  message: (ws, data, isBinary) => ws.data.received(data, isBinary),
  error: (ws, error) => ws.data.failed(error),
  close: (ws, code, reason) => ws.data.closed(code, reason),
};

function byteSize(data: WHATWGSendData): number {
  if (typeof data === 'string') return Buffer.byteLength(data);
  if (data instanceof Blob) return data.size;
  return data.byteLength;
}

/** A view of the bytes to send (not a copy: the client engine copies while masking). */
function asBytes(data: ArrayBufferLike | ArrayBufferView): Uint8Array {
  return ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
}

/**
 * A WebSocket client with the browser's API. Exported from `duplex` as `WHATWGWebSocket` (our
 * own `WebSocket` is the Node-style connection class) and as `WebSocket` from `duplex/whatwg`.
 */
export class WHATWGWebSocket extends EventTarget {
  /** `readyState` 0: the handshake is in progress. */
  static readonly CONNECTING = CONNECTING;
  /** `readyState` 1: open, messages flow. */
  static readonly OPEN = OPEN;
  /** `readyState` 2: the closing handshake started. */
  static readonly CLOSING = CLOSING;
  /** `readyState` 3: closed, or the connection could not be opened. */
  static readonly CLOSED = CLOSED;
  /** `readyState` 0, on instances too (as in browsers). */
  declare readonly CONNECTING: 0;
  /** `readyState` 1, on instances too. */
  declare readonly OPEN: 1;
  /** `readyState` 2, on instances too. */
  declare readonly CLOSING: 2;
  /** `readyState` 3, on instances too. */
  declare readonly CLOSED: 3;

  private readonly _url: string;
  private _readyState: number = CONNECTING;
  private _protocol = '';
  private _extensions = '';
  private _binaryType: BinaryType = 'blob';
  private ws: WebSocket<WHATWGWebSocket> | undefined;
  /** The connection failed (error, or close() while CONNECTING): `error` precedes `close`. */
  private failure: { error: Error | undefined } | undefined;
  /** Sends waiting behind a Blob being read, so that order is kept. */
  private outbox: WHATWGSendData[] | undefined;
  private outboxBytes = 0;
  /** Bytes "sent" after closing started: the spec counts them in bufferedAmount forever. */
  private discardedBytes = 0;
  private pendingClose: { code: number; reason: string } | undefined;
  private readonly attributes = new Map<EventName, { handler: AnyHandler; listener: (event: Event) => void }>();

  /**
   * Connect to `url` (`ws:`, `wss:`, or `http:`/`https:` which map to them), offering
   * `protocols`. Throws a `SyntaxError` DOMException for a bad URL or subprotocol list.
   */
  constructor(url: string | URL, protocols: string | readonly string[] = [], options: WHATWGWebSocketOptions = {}) {
    super();
    const parsed = parseWebSocketUrl(url, { mapHttp: true, refuseFragment: true });
    if ('problem' in parsed) {
      const message =
        parsed.problem === 'scheme' ? `The URL's scheme must be ws: or wss: (got ${parsed.scheme})` : parsed.problem === 'fragment' ? 'The URL must not have a fragment' : `Invalid URL: ${String(url)}`;
      throw new DOMException(message, 'SyntaxError');
    }
    const target = parsed.url;
    const list = typeof protocols === 'string' ? [protocols] : [...protocols];
    const seen = new Set<string>();
    for (const protocol of list) {
      if (!isToken(protocol) || seen.has(protocol)) throw new DOMException(`Invalid or repeated subprotocol: ${JSON.stringify(protocol)}`, 'SyntaxError');
      seen.add(protocol);
    }
    this._url = target.href;
    connect<WHATWGWebSocket>(target, { ...options, protocols: list, data: this, handlers }).catch((error: unknown) => {
      const err = toError(error);
      this.failure ??= { error: err };
      this.task(() => this.finish(CloseCode.AbnormalClosure, ''));
    });
  }

  /** The URL, resolved (`http:` mapped to `ws:`). */
  get url(): string {
    return this._url;
  }
  /** CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3). */
  get readyState(): number {
    return this._readyState;
  }
  /** The subprotocol the server selected ('' until open, or if none). */
  get protocol(): string {
    return this._protocol;
  }
  /** The extensions the server accepted ('' until open, or if none). */
  get extensions(): string {
    return this._extensions;
  }
  /** Bytes given to `send()` and not yet handed to the operating system. */
  get bufferedAmount(): number {
    return (this.ws?.bufferedAmount ?? 0) + this.outboxBytes + this.discardedBytes;
  }
  /** How binary messages are delivered; an unknown value is ignored, as WebIDL asks of enums. */
  get binaryType(): BinaryType {
    return this._binaryType;
  }
  /** Applies to messages delivered from now on; values other than the three are ignored. */
  set binaryType(value: BinaryType) {
    if (value === 'blob' || value === 'arraybuffer' || value === 'nodebuffer') this._binaryType = value;
  }

  /** The `open` handler: called once the handshake succeeded (null if none). */
  get onopen(): Handler<Event> {
    return this.getAttribute('open');
  }
  /** A non-function clears it. The handler runs where the attribute was first set among the `addEventListener` listeners, as in browsers. */
  set onopen(handler: Handler<Event>) {
    this.setAttribute('open', handler);
  }
  /** The `message` handler: called with a `MessageEvent` whose `data` depends on `binaryType` (null if none). */
  get onmessage(): Handler<MessageEvent<WHATWGMessageData>> {
    return this.getAttribute('message');
  }
  /** A non-function clears it. The handler runs where the attribute was first set among the `addEventListener` listeners, as in browsers. */
  set onmessage(handler: Handler<MessageEvent<WHATWGMessageData>>) {
    this.setAttribute('message', handler);
  }
  /** The `error` handler: the connection failed; `close` follows (null if none). */
  get onerror(): Handler<Event> {
    return this.getAttribute('error');
  }
  /** A non-function clears it. The handler runs where the attribute was first set among the `addEventListener` listeners, as in browsers. */
  set onerror(handler: Handler<Event>) {
    this.setAttribute('error', handler);
  }
  /** The `close` handler: called with a `CloseEvent` once the connection is closed (null if none). */
  get onclose(): Handler<CloseEvent> {
    return this.getAttribute('close');
  }
  /** A non-function clears it. The handler runs where the attribute was first set among the `addEventListener` listeners, as in browsers. */
  set onclose(handler: Handler<CloseEvent>) {
    this.setAttribute('close', handler);
  }

  /**
   * Send a message. Throws an `InvalidStateError` DOMException while CONNECTING; once closing
   * or closed the data is discarded and only counted in `bufferedAmount` (as the spec says).
   */
  send(data: WHATWGSendData): void {
    if (this._readyState === CONNECTING) throw new DOMException('Still in CONNECTING state: wait for the open event', 'InvalidStateError');
    if (typeof data !== 'string' && !(data instanceof Blob) && !(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data) && !(data instanceof SharedArrayBuffer)) {
      data = String(data); // WebIDL: anything else is converted to a string
    }
    const ws = this.ws;
    if (this._readyState !== OPEN || !ws || ws.connection.closing || this.pendingClose) {
      this.discardedBytes += byteSize(data);
      return;
    }
    if (this.outbox || data instanceof Blob) {
      // Keep order behind a Blob that is being read: copy views, the caller may reuse them.
      const item = typeof data === 'string' || data instanceof Blob ? data : asBytes(data).slice();
      this.outboxBytes += byteSize(item);
      if (this.outbox) this.outbox.push(item);
      else {
        this.outbox = [item];
        void this.pump(ws);
      }
      return;
    }
    ws.send(typeof data === 'string' ? data : asBytes(data));
  }

  /**
   * Start the closing handshake. `code` must be 1000 or 3000–4999 (else `InvalidAccessError`),
   * `reason` at most 123 bytes of UTF-8 (else `SyntaxError`). While CONNECTING, the connection
   * is failed instead: `error`, then `close` with 1006.
   */
  close(code?: number, reason?: string): void {
    if (code !== undefined && code !== CloseCode.NormalClosure && !(code >= 3000 && code <= 4999)) {
      throw new DOMException(`The close code must be 1000 or in 3000–4999 (got ${code})`, 'InvalidAccessError');
    }
    const reasonText = reason === undefined ? '' : String(reason);
    if (Buffer.byteLength(reasonText) > MAX_REASON_BYTES) {
      throw new DOMException(`The close reason must be at most ${MAX_REASON_BYTES} bytes of UTF-8`, 'SyntaxError');
    }
    if (this._readyState === CLOSING || this._readyState === CLOSED) return;
    if (this._readyState === CONNECTING) {
      this._readyState = CLOSING;
      this.failure ??= { error: new Error('WebSocket was closed before the connection was established') };
      this.ws?.terminate();
      return;
    }
    this._readyState = CLOSING;
    const close = { code: code ?? CloseCode.NormalClosure, reason: reasonText };
    if (this.outbox) this.pendingClose = close; // after the queued Blob sends
    else this.ws?.close(close.code, close.reason);
  }

  // ---- from the connection (via `handlers`) --------------------------------------------------

  /** @internal The handshake succeeded. */
  connected(ws: WebSocket<WHATWGWebSocket>): void {
    this.ws = ws;
    if (this._readyState !== CONNECTING) {
      ws.terminate(); // close() was called while connecting
      return;
    }
    this.task(() => {
      if (this._readyState !== CONNECTING) return;
      this._readyState = OPEN;
      this._protocol = ws.protocol;
      this._extensions = ws.extensions;
      this.dispatchEvent(new Event('open'));
    });
  }

  /** @internal A message arrived. */
  received(data: MessageData, isBinary: boolean): void {
    this.task(() => {
      if (this._readyState !== OPEN) return; // the spec drops messages once closing started
      let value: WHATWGMessageData;
      if (!isBinary) value = data as string;
      else {
        const bytes = data as Buffer;
        if (this._binaryType === 'arraybuffer') value = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
        else if (this._binaryType === 'blob') value = new Blob([new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength)]);
        else value = bytes;
      }
      this.dispatchEvent(new MessageEvent('message', { data: value, origin: new URL(this._url).origin }));
    });
  }

  /** @internal The connection failed (protocol error, socket error). */
  failed(error: Error): void {
    this.failure ??= { error };
  }

  /** @internal The connection closed. */
  closed(code: number, reason: string): void {
    this.task(() => this.finish(code, reason));
  }

  // ---- internals ------------------------------------------------------------------------------

  private finish(code: number, reason: string): void {
    if (this._readyState === CLOSED) return;
    this._readyState = CLOSED;
    this.outbox = undefined;
    this.outboxBytes = 0;
    const failure = this.failure;
    if (failure) this.dispatchEvent(new WebSocketErrorEvent(failure.error));
    const wasClean = !failure && code !== CloseCode.AbnormalClosure;
    this.dispatchEvent(new CloseEvent('close', { code, reason, wasClean }));
  }

  /** Send the outbox in order, reading Blobs as their turn comes. */
  private async pump(ws: WebSocket<WHATWGWebSocket>): Promise<void> {
    while (this.outbox && this.outbox.length > 0) {
      const item = this.outbox.shift()!;
      const size = byteSize(item);
      let data: WHATWGSendData;
      try {
        data = item instanceof Blob ? new Uint8Array(await item.arrayBuffer()) : item;
      } catch {
        data = new Uint8Array(0); // an unreadable Blob: the spec leaves this undefined; send nothing
        if (!this.outbox) return;
        this.outboxBytes -= size;
        continue;
      }
      if (!this.outbox) return; // closed meanwhile
      this.outboxBytes -= size;
      if (ws.readyState !== OPEN || ws.connection.closing) {
        this.discardedBytes += size;
        continue;
      }
      ws.send(typeof data === 'string' ? data : asBytes(data));
    }
    this.outbox = undefined;
    const close = this.pendingClose;
    if (close) {
      this.pendingClose = undefined;
      if (ws.readyState === OPEN && !ws.connection.closing) ws.close(close.code, close.reason);
    }
  }

  /** Queue a task (the spec's event timing): each event after the current one and its microtasks. */
  private task(run: () => void): void {
    setImmediate(run);
  }

  private getAttribute<E extends Event>(type: EventName): Handler<E> {
    return (this.attributes.get(type)?.handler as Handler<E> | undefined) ?? null;
  }

  /** An `on…` attribute: one listener, registered on first set, that calls the current handler. */
  private setAttribute<E extends Event>(type: EventName, handler: Handler<E>): void {
    const entry = this.attributes.get(type);
    if (typeof handler !== 'function') {
      if (entry) {
        this.removeEventListener(type, entry.listener);
        this.attributes.delete(type);
      }
      return;
    }
    if (entry) {
      entry.handler = handler as AnyHandler;
      return;
    }
    const created = {
      handler: handler as AnyHandler,
      listener: (event: Event): void => {
        created.handler.call(this, event);
      },
    };
    this.attributes.set(type, created);
    this.addEventListener(type, created.listener);
  }
}

for (const [name, value] of Object.entries({ CONNECTING, OPEN, CLOSING, CLOSED })) {
  Object.defineProperty(WHATWGWebSocket.prototype, name, { value, enumerable: true });
}
Object.defineProperty(WHATWGWebSocket.prototype, Symbol.toStringTag, { value: 'WebSocket', configurable: true });

export { WHATWGWebSocket as WebSocket };
