/**
 * The Node client of the hub protocol (`docs/protocol.md`): subscribe, publish, presence, with
 * automatic reconnection (exponential backoff with full jitter, from `ReconnectingWebSocket`)
 * and, after each reconnection, resubscription with recovery from the last offset and epoch
 * seen per topic — so a subscriber receives every publication exactly once and in order across
 * a reconnect, or a `gap` event saying what was lost.
 *
 * The protocol logic is `client-core.ts`, shared with the browser client; this file adds the
 * Node transport (`ReconnectingWebSocket`: backoff, token in a header or the query string).
 */
import { CloseCode } from '../protocol/constants.js';
import { ReconnectingWebSocket, type ReconnectingOptions } from '../node/reconnecting.js';
import type { MessageData } from '../node/websocket.js';
import type { HubErrorCode, SubscribeResult } from './wire.js';
import { HubClientCore, type ClientState, type CoreEvents, type GapInfo, type MessageListener, type MessageMeta } from './client-core.js';

/** A request refused by the server (its `code`), or failed on the client's side. */
export class HubClientError extends Error {
  /** Always `'HubClientError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'HubClientError';
  /**
   * Made by the client for refusals and client-side failures; rarely useful to construct yourself.
   * @param message What went wrong, for people: the server's message, or the client's.
   */
  constructor(
    /**
     * The server's error code (E_FORBIDDEN, E_UNAVAILABLE…; a string outside `HubErrorCode` may
     * come from a newer server) or a client-side one: E_TIMEOUT, E_CONNECTION_LOST, E_QUEUE_FULL, E_CLOSED.
     */
    readonly code: HubErrorCode | string,
    message: string,
  ) {
    super(message);
  }
}

/** Where a `HubClient` is. */
export type HubClientState = ClientState<'connected'>;

/** A publication as delivered to a subscriber. */
export type HubMessageMeta = MessageMeta;

export type { GapInfo, MessageListener };

/** Events of a `HubClient` and their listeners' arguments. */
export interface HubClientEvents extends CoreEvents<HubClientState> {
  /** The client stopped for good (closed, refused, or gave up). */
  closed: [];
}

/** Options of a `HubClient`. */
export interface HubClientOptions {
  /** The token, or a function returning a fresh one before each connection (e.g. to renew a JWT). */
  token?: string | (() => string | Promise<string>);
  /**
   * How the token travels: in the `connect` message (default; never in logs or URLs), in the
   * `token` query parameter, or in an `Authorization: Bearer` header.
   */
  tokenTransport?: 'message' | 'query' | 'header';
  /** Reject a request with E_TIMEOUT after this many ms without an answer (default 10 s). */
  requestTimeout?: number;
  /** Requests (publishes, presence queries) kept while disconnected (default 1000); more → E_QUEUE_FULL. */
  maxQueuedRequests?: number;
  /** Reconnection and connection options (backoff, headers, TLS, …) of the underlying `ReconnectingWebSocket`. */
  reconnect?: Omit<ReconnectingOptions, 'handlers' | 'beforeConnect'>;
}

/**
 * A hub client. It connects at once and stays connected until `close()`.
 *
 * ```ts
 * const client = new HubClient('ws://localhost:8080/hub', { token });
 * await client.subscribe('chat:lobby', (data, { offset }) => console.log(offset, data));
 * await client.publish('chat:lobby', { text: 'hello' });
 * ```
 */
export class HubClient extends HubClientCore<'connected', HubClientEvents, HubClientError> {
  private readonly url: string;
  private readonly options: HubClientOptions;
  private readonly socket: ReconnectingWebSocket;

  /**
   * Starts connecting at once; requests made before the connection is up wait for it.
   * @param url The hub route's `ws:` or `wss:` URL.
   */
  constructor(url: string | URL, options: HubClientOptions = {}) {
    const tokenTransport = options.tokenTransport ?? 'message';
    super({
      openState: 'connected',
      error: (code, message) => new HubClientError(code, message),
      token: async () => (tokenTransport === 'message' ? tokenOf(options) : undefined),
      requestTimeout: options.requestTimeout ?? 10_000,
      maxQueuedRequests: options.maxQueuedRequests ?? 1000,
      emitAllSubscribeErrors: false,
    });
    this.url = String(url);
    this.options = options;
    this.socket = this.openSocket();
    this.transport = {
      send: (text) => void this.socket.send(text),
      close: () => void this.socket.close(CloseCode.NormalClosure, 'client closed'),
      // An abnormal close (1006) is retried by the reconnecting socket.
      drop: () => this.socket.ws?.terminate(),
    };
  }

  /** Resolves once connected (now, if it is); rejects if the client stops first. */
  connected(): Promise<void> {
    return this.whenReady();
  }

  /**
   * Subscribe to `topic`; `listener` gets its publications in offset order. Resolves when the
   * server acknowledged (rejects with the server's error code, e.g. E_FORBIDDEN). Kept across
   * reconnections: each one resubscribes with recovery from the last offset seen.
   */
  override subscribe(topic: string, listener?: MessageListener): Promise<SubscribeResult> {
    return super.subscribe(topic, listener);
  }

  /** Stop for good: close the connection, reject what waits. */
  async close(): Promise<void> {
    if (this.isClosed()) return;
    this.shutdown();
    await this.socket.finished;
  }

  protected override stop(error: HubClientError): boolean {
    if (!super.stop(error)) return false;
    this.emit('closed');
    return true;
  }

  // ---- transport (the only Node-specific part) -------------------------------------------------

  private openSocket(): ReconnectingWebSocket {
    const options = this.options;
    const transport = options.tokenTransport ?? 'message';
    return new ReconnectingWebSocket(this.url, {
      ...options.reconnect,
      perMessageDeflate: options.reconnect?.perMessageDeflate ?? false,
      beforeConnect: async () => {
        if (transport === 'message' || options.token === undefined) return;
        const token = await tokenOf(options);
        if (token === undefined) return;
        if (transport === 'header') return { headers: { Authorization: `Bearer ${token}` } };
        const url = new URL(this.url);
        url.searchParams.set('token', token);
        return { url };
      },
      handlers: {
        open: () => void this.connectionOpened(),
        message: (_client, data: MessageData, isBinary: boolean) => {
          if (!isBinary && typeof data === 'string') this.receive(data);
        },
        close: () => {
          this.connectionLost();
          this.reconnecting();
        },
        error: (_client, error) => {
          if (!this.isClosed()) this.reportError(error);
        },
        reconnecting: () => this.reconnecting(),
        closed: (_client, info) => {
          const cause = info.cause;
          const why = cause?.type === 'close' ? `closed with ${cause.code} ${cause.reason}` : cause?.type === 'error' ? cause.error.message : info.reason;
          this.stop(new HubClientError('E_CLOSED', `the client stopped (${info.reason}): ${why}`));
        },
      },
    });
  }
}

/** The token of `options`, fresh from its function if it is one. */
async function tokenOf(options: HubClientOptions): Promise<string | undefined> {
  const token = options.token;
  return typeof token === 'function' ? token() : token;
}
