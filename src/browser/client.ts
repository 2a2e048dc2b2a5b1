/**
 * The browser client of the hub protocol (`docs/protocol.md`), an ES module that imports only
 * the hub client core and what it needs (`../hub/client-core.js`, `client-errors.js`,
 * `client-reconnect.js`, `wire.js`, `../protocol/constants.js`: web-standard APIs only, nothing
 * of Node), so a page can load it with `<script type="module">` and no bundler. `duplex serve`
 * serves it at `/duplex/client.js`.
 *
 * It is the hub client core — shared with the Node `HubClient`: the protocol, the reconnection
 * loop, its backoff and close-code policy, the defaults, the error class — with the browser's
 * `WebSocket` as the transport: connect with a token (and connect data), subscribe / unsubscribe /
 * publish (acknowledged) / presence / rpc, join and leave events, automatic reconnection with exponential
 * backoff and full jitter (paused while the browser says it is offline), and resubscription
 * with recovery from the last offset and epoch seen, so messages published while a page was
 * away arrive after it comes back, in order, exactly once.
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
import { HubClientCore, connectDataOf, type ClientState, type CoreEvents, type GapInfo, type HubTransport, type MessageListener, type MessageMeta, type SubscribeOptions } from '../hub/client-core.js';
import { HubClientError } from '../hub/client-errors.js';
import { toError } from '../protocol/errors.js';
import { HubCloseCode } from '../hub/client-reconnect.js';
import { parseWebSocketUrl } from '../protocol/url.js';

export type { Json, PresenceMember, ConnectResult, PublishResult, StreamPosition, SubscribeResult };
export type { GapInfo, MessageListener, MessageMeta, SubscribeOptions, ClientState, HubTransport };

/**
 * The root of every duplex error: `instanceof DuplexError` holds for each error this client
 * rejects with (a `HubClientError`), as for every other duplex error; the same class as
 * `DuplexError` of `duplex-ws` and `duplex-ws/hub`.
 */
export { DuplexError } from '../protocol/errors.js';
/**
 * The error of every refused or failed request: the server's `code` (E_FORBIDDEN…) or the
 * client's (E_TIMEOUT, E_CONNECTION_LOST, E_QUEUE_FULL, E_CLOSED). The same class as the Node
 * client's `HubClientError` (`duplex-ws/hub`); a `DuplexError`.
 */
export { HubClientError };

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
      /**
       * Which attempt comes next, counting attempts in a row (the first connection attempt is 1,
       * so the first retry after it is 2); back to 1 after a connection that stayed up 5 s. As the
       * Node `HubClient` and `ReconnectingWebSocket` count.
       */
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
    /** The close code (1006: dropped without a close frame; 1003 and 1008 stop the client; 1013, 4001, 4008 and the rest reconnect). */
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
  /**
   * Application data for the server's connect hook (e.g. a backend that decides who the page is
   * from its cookies and this), sent as `data` in every `connect` message: any JSON, 32 levels
   * deep at most, or a function returning it (sync or async), asked again before each
   * connection. A function that throws (or rejects) fails that connection, which is retried.
   */
  connectData?: Json | (() => Json | Promise<Json>);
  /** Query parameters added to the URL (e.g. `{ name: 'Ada' }` for an anonymous demo server's presence). */
  params?: Record<string, string>;
  /** First retry waits up to this long, ms (default 1000, as the Node `HubClient`; the ceiling doubles per attempt). */
  minDelay?: number;
  /** Retries wait at most this long, ms (default 30 000, as the Node `HubClient`). */
  maxDelay?: number;
  /** A request without an answer for this long fails with E_TIMEOUT, ms (default 10 000). */
  requestTimeout?: number;
  /**
   * Publishes, RPCs and presence queries kept while disconnected (default 256, as the Node `HubClient`:
   * a hub answers E_BUSY beyond 256 waiting requests of a connection); more → E_QUEUE_FULL.
   */
  maxQueuedRequests?: number;
  /** The WebSocket class (default: the global one). */
  WebSocket?: WebSocketConstructor;
}

/** `WebSocket.OPEN`: the constant, as the class need not have it (a `WebSocketLike`). */
const OPEN = 1;

/** Resolve `url` against the page (`/ws` → `ws://host/ws`, `https:` pages → `wss:`). */
function absoluteUrl(url: string, params: Record<string, string> | undefined): string {
  const base = typeof location === 'undefined' ? 'http://localhost/' : location.href;
  const target = parseWebSocketUrl(url, { base, mapHttp: true });
  // As before, a URL that is no ws:/wss: one is handed to the WebSocket constructor as it is,
  // which throws the browser's own SyntaxError for it.
  const resolved = 'problem' in target ? new URL(url, base) : target.url;
  for (const [key, value] of Object.entries(params ?? {})) resolved.searchParams.set(key, value);
  return resolved.href;
}

/** A hub client for browsers. Connects at once and stays connected until `close()`. */
export class DuplexClient extends HubClientCore<'open', DuplexEvents> {
  /** The URL connected to. */
  readonly url: string;

  private readonly WS: WebSocketConstructor;
  private socket: WebSocketLike | undefined;
  /** A retry waits for the browser's `online` event (it was offline when the retry was due). */
  private waitingForOnline = false;
  private readonly onOnline = (): void => {
    if (!this.waitingForOnline || this.isClosed()) return;
    this.waitingForOnline = false;
    this.retryNow();
  };

  /**
   * Starts connecting at once; requests made before the connection is up wait for it.
   * @param url The hub route, resolved against the page: `/ws` becomes `ws://host/ws` (`wss:` on an `https:` page).
   * @throws TypeError when there is no `WebSocket` class (no global one and no `options.WebSocket`).
   * @throws RangeError when `minDelay` < 0 or `maxDelay` < `minDelay`.
   */
  constructor(url: string, options: DuplexClientOptions = {}) {
    super({
      openState: 'open',
      token: async () => (typeof options.token === 'function' ? options.token() : options.token),
      connectData: connectDataOf(options.connectData),
      requestTimeout: options.requestTimeout,
      maxQueuedRequests: options.maxQueuedRequests,
      emitAllSubscribeErrors: true,
      reconnect: { minDelay: options.minDelay, maxDelay: options.maxDelay },
    });
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
        if (socket && socket.readyState <= OPEN) socket.close(HubCloseCode.NormalClosure, 'client closed');
      },
      // 4000 (an application code: browsers may only send 1000 and 3000–4999) is retried.
      drop: () => this.socket?.close(4000, 'token unavailable'),
    };
    if (typeof addEventListener === 'function') addEventListener('online', this.onOnline);
    this.start();
  }

  /** Resolves once connected and authenticated. */
  whenOpen(): Promise<void> {
    return this.whenReady();
  }

  /** Stop for good. */
  close(): void {
    if (this.isClosed()) return;
    this.shutdown();
  }

  protected override stop(error: HubClientError): boolean {
    if (!super.stop(error)) return false;
    if (typeof removeEventListener === 'function') removeEventListener('online', this.onOnline);
    return true;
  }

  protected override disconnected(code: number, reason: string): void {
    this.emit('disconnected', { code, reason });
  }

  protected override retrying(attempt: number, delay: number): void {
    if (offline()) this.waitingForOnline = true;
    this.emit('reconnecting', { attempt, delay });
  }

  /** No network: wait (the `online` event retries at once; meanwhile the delay comes round again). */
  protected override canConnect(): boolean {
    this.waitingForOnline = offline();
    return !this.waitingForOnline;
  }

  // ---- transport: the browser's WebSocket, one per attempt -------------------------------------

  protected override openConnection(): void {
    let socket: WebSocketLike;
    try {
      socket = new this.WS(this.url);
    } catch (error) {
      // A `SyntaxError` (a bad URL) stops the client; anything else is retried.
      const err = toError(error);
      this.reportError(err);
      this.attemptFailed(err);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket === socket) void this.connectionOpened();
    };
    socket.onmessage = (event) => {
      if (this.socket === socket && typeof event.data === 'string') this.receive(event.data);
    };
    socket.onerror = () => {};
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      // A failed attempt closes too (1006, the browser says no more): the core tells them apart.
      this.connectionClosed(event.code, event.reason);
    };
  }
}

/** Whether the browser says it has no network. */
function offline(): boolean {
  return typeof navigator !== 'undefined' && navigator.onLine === false;
}
