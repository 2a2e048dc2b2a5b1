/**
 * The browser client of the hub protocol (`docs/protocol.md`), an ES module whose only imports
 * are `../hub/client-core.js` (the protocol logic, shared with the Node `HubClient`) and
 * `../hub/wire.js` (free of imports), so a page can load it with `<script type="module">` and
 * no bundler. `duplex serve` serves it at `/duplex/client.js`.
 *
 * It is the hub client core with the browser's `WebSocket` as the transport: connect with
 * a token, subscribe / unsubscribe / publish (acknowledged) / presence, join and leave events,
 * automatic reconnection with exponential backoff and full jitter (paused while the browser
 * says it is offline), and resubscription with recovery from the last offset and epoch seen, so
 * messages published while a page was away arrive after it comes back, in order, exactly once.
 *
 * ```js
 * import { DuplexClient } from '/duplex/client.js';
 * const client = new DuplexClient('/ws');
 * client.on('state', (state) => console.log(state)); // connecting, open, reconnecting, closed
 * await client.subscribe('chat:lobby', (data, meta) => console.log(meta.offset, data));
 * await client.publish('chat:lobby', { text: 'hello' });
 * ```
 * @module duplex-ws/client
 */
import type { Json, PresenceMember } from '../hub/broker.js';
import type { ConnectResult, PublishResult, StreamPosition, SubscribeResult } from '../hub/wire.js';
import { HubClientCore, type ClientState, type CoreEvents, type GapInfo, type HubTransport, type MessageListener, type MessageMeta, type SubscribeOptions } from '../hub/client-core.js';

export type { Json, PresenceMember, ConnectResult, PublishResult, StreamPosition, SubscribeResult };
export type { GapInfo, MessageListener, MessageMeta, SubscribeOptions, ClientState, HubTransport };

/** A request refused by the server (`code`, e.g. E_FORBIDDEN) or failed on this side (E_TIMEOUT, E_CONNECTION_LOST, E_CLOSED, E_QUEUE_FULL). */
export class DuplexError extends Error {
  /** Always `'DuplexError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'DuplexError';
  /**
   * Made by the client for refusals and client-side failures; rarely useful to construct yourself.
   * @param message What went wrong, for people: the server's message, or the client's.
   */
  constructor(
    /** Stable, for programs: the server's code (E_FORBIDDEN…, see `docs/protocol.md`) or E_TIMEOUT, E_CONNECTION_LOST, E_QUEUE_FULL, E_CLOSED. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Where a client is. */
export type DuplexState = ClientState<'open'>;

/** Events and their listeners' arguments. */
export interface DuplexEvents extends CoreEvents<DuplexState> {
  /** A connection was lost; `code` is the WebSocket close code (1006: dropped). */
  disconnected: [
    info: {
      /** The close code (1006: the connection dropped without a close frame). */
      code: number;
      /** The close reason ('' if none). */
      reason: string;
    },
  ];
  /** Waiting `delay` ms before connection attempt `attempt`. */
  reconnecting: [
    info: {
      /** Which attempt comes next: 1, 2, 3…; back to 1 after a connection that stayed up 5 s. */
      attempt: number;
      /** How long until it, in ms: random in [0, min(maxDelay, minDelay × 2^(attempt−1))] (full jitter). */
      delay: number;
    },
  ];
}

/**
 * An event handler attribute. Declared through a method so that its parameter is compared
 * bivariantly: an implementation whose handlers take its own, richer event classes (the browser's,
 * duplex's `WHATWGWebSocket`) still fits.
 */
export type EventHandlerAttribute<E> = {
  /** The handler: called with the event, its result ignored. */
  handle(event: E): unknown;
}['handle'] | null;

/** The part of the browser's WebSocket this client uses (any WHATWG implementation fits). */
export interface WebSocketLike {
  /** 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED. */
  readonly readyState: number;
  /** Sends a text message. */
  send(data: string): void;
  /** Starts the closing handshake. */
  close(code?: number, reason?: string): void;
  /** Set by the client: the connection opened. */
  onopen: EventHandlerAttribute<unknown>;
  /** Set by the client: a message arrived. */
  onmessage: EventHandlerAttribute<{
    /** The message: a string for text (all the hub sends); anything else is ignored. */
    data: unknown;
  }>;
  /** Set by the client: the connection closed. */
  onclose: EventHandlerAttribute<{
    /** The close code (1006: dropped without a close frame; 1008 other than "slow consumer" stops the client). */
    code: number;
    /** The close reason ('' if none). */
    reason: string;
  }>;
  /** Set by the client: the connection failed. */
  onerror: EventHandlerAttribute<unknown>;
}
/** A WebSocket class: the browser's global `WebSocket`, or any constructor of a `WebSocketLike` (tests, Node). */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Options of a `DuplexClient`. */
export interface DuplexClientOptions {
  /** A token (JWT), or a function giving a fresh one before each connection. Sent in the `connect` message. */
  token?: string | (() => string | Promise<string>);
  /** Query parameters added to the URL (e.g. `{ name: 'Ada' }` for an anonymous demo server's presence). */
  params?: Record<string, string>;
  /** First retry waits up to this long, ms (default 500). */
  minDelay?: number;
  /** Retries wait at most this long, ms (default 10 000). */
  maxDelay?: number;
  /** A request without an answer for this long fails with E_TIMEOUT, ms (default 10 000). */
  requestTimeout?: number;
  /** Publishes and presence queries kept while disconnected (default 500). */
  maxQueuedRequests?: number;
  /** The WebSocket class (default: the global one). */
  WebSocket?: WebSocketConstructor;
}

const OPEN = 1;
/** A connection that stayed up this long resets the backoff. */
const RESET_AFTER = 5000;

/** Resolve `url` against the page (`/ws` → `ws://host/ws`, `https:` pages → `wss:`). */
function absoluteUrl(url: string, params: Record<string, string> | undefined): string {
  const base = typeof location === 'undefined' ? 'http://localhost/' : location.href;
  const resolved = new URL(url, base);
  if (resolved.protocol === 'http:') resolved.protocol = 'ws:';
  else if (resolved.protocol === 'https:') resolved.protocol = 'wss:';
  for (const [key, value] of Object.entries(params ?? {})) resolved.searchParams.set(key, value);
  return resolved.href;
}

/** A hub client for browsers. Connects at once and stays connected until `close()`. */
export class DuplexClient extends HubClientCore<'open', DuplexEvents, DuplexError> {
  /** The URL connected to. */
  readonly url: string;

  private readonly options: DuplexClientOptions;
  private readonly WS: WebSocketConstructor;
  private socket: WebSocketLike | undefined;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private openedAt = 0;
  private waitingForOnline = false;
  private readonly onOnline = (): void => {
    if (!this.waitingForOnline || this.isClosed()) return;
    this.waitingForOnline = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.open();
  };

  /**
   * Starts connecting at once; requests made before the connection is up wait for it.
   * @param url The hub route, resolved against the page: `/ws` becomes `ws://host/ws` (`wss:` on an `https:` page).
   * @throws TypeError when there is no `WebSocket` class (no global one and no `options.WebSocket`).
   */
  constructor(url: string, options: DuplexClientOptions = {}) {
    super({
      openState: 'open',
      error: (code, message) => new DuplexError(code, message),
      token: async () => (typeof options.token === 'function' ? options.token() : options.token),
      requestTimeout: options.requestTimeout ?? 10_000,
      maxQueuedRequests: options.maxQueuedRequests ?? 500,
      emitAllSubscribeErrors: true,
    });
    this.options = options;
    this.url = absoluteUrl(url, options.params);
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError('no WebSocket class: pass options.WebSocket');
    this.WS = WS;
    this.transport = {
      send: (text) => {
        const socket = this.socket;
        if (socket && socket.readyState === OPEN) socket.send(text);
      },
      close: () => {
        const socket = this.socket;
        this.socket = undefined;
        if (socket && socket.readyState <= OPEN) socket.close(1000, 'client closed');
      },
      // 4000 (an application code: browsers may only send 1000 and 3000–4999) is retried.
      drop: () => this.socket?.close(4000, 'token unavailable'),
    };
    if (typeof addEventListener === 'function') addEventListener('online', this.onOnline);
    this.open();
  }

  /** Resolves once connected and authenticated. */
  whenOpen(): Promise<void> {
    return this.whenReady();
  }

  /** Stop for good. */
  close(): void {
    if (this.isClosed()) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (typeof removeEventListener === 'function') removeEventListener('online', this.onOnline);
    this.shutdown();
  }

  // ---- transport: the browser's WebSocket, reconnected with backoff ----------------------------

  private open(): void {
    if (this.isClosed()) return;
    let socket: WebSocketLike;
    try {
      socket = new this.WS(this.url);
    } catch (error) {
      this.reportError(error);
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.openedAt = Date.now();
      void this.connectionOpened();
    };
    socket.onmessage = (event) => {
      if (this.socket === socket && typeof event.data === 'string') this.receive(event.data);
    };
    socket.onerror = () => {};
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.onDisconnect(event.code, event.reason);
    };
  }

  private onDisconnect(code: number, reason: string): void {
    this.connectionLost();
    if (this.isClosed()) return;
    if (this.openedAt > 0) this.emit('disconnected', { code, reason });
    // 1008: the server refused us (bad token, abuse); retrying will not help — except after a
    // slow-consumer close, which a reconnection with recovery repairs.
    if (code === 1008 && reason !== 'slow consumer') {
      this.reportError(new DuplexError('E_UNAUTHORIZED', `the server closed the connection: ${reason || 'policy violation'}`));
      this.stop(new DuplexError('E_CLOSED', `refused by the server: ${reason}`));
      return;
    }
    if (this.openedAt > 0 && Date.now() - this.openedAt >= RESET_AFTER) this.attempt = 0;
    this.openedAt = 0;
    this.reconnecting();
    this.scheduleRetry();
  }

  /** Full-jitter exponential backoff; while the browser is offline, wait for it to come back. */
  private scheduleRetry(): void {
    if (this.isClosed()) return;
    this.attempt++;
    const min = this.options.minDelay ?? 500;
    const max = this.options.maxDelay ?? 10_000;
    const delay = Math.round(Math.random() * Math.min(max, min * 2 ** (this.attempt - 1)));
    if (typeof navigator !== 'undefined' && navigator.onLine === false) this.waitingForOnline = true;
    this.emit('reconnecting', { attempt: this.attempt, delay });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (typeof navigator !== 'undefined' && navigator.onLine === false) {
        // No network: the `online` event retries at once; meanwhile check now and then.
        this.waitingForOnline = true;
        this.attempt--;
        this.scheduleRetry();
        return;
      }
      this.waitingForOnline = false;
      this.open();
    }, delay);
  }
}
