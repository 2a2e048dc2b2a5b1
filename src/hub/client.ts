/**
 * The Node client of the hub protocol (`docs/protocol.md`): subscribe, publish, presence, rpc, with
 * automatic reconnection (exponential backoff with full jitter) and, after each reconnection,
 * resubscription with recovery from the last offset and epoch seen per topic — so a subscriber
 * receives every publication exactly once and in order across a reconnect, or a `gap` event
 * saying what was lost.
 *
 * Everything but the transport is `client-core.ts`, shared with the browser client: the
 * protocol, the reconnection loop and its policy (`client-reconnect.ts`), the error class
 * (`client-errors.ts`). This file opens one Node connection per attempt (`connect()`), with the
 * token in the `connect` message, a header or the query string, and adds what only Node can
 * see: a handshake refused with a 4xx status is not retried, and its `Retry-After` is waited.
 */
import { CloseCode, State } from '../protocol/constants.js';
import { connect } from '../node/client.js';
import type { MessageData, WebSocketHandlers } from '../node/handlers.js';
import { silentLogger, type Logger } from '../node/logger.js';
import { defaultShouldReconnect, retryAfter, type ReconnectingOptions } from '../node/reconnecting.js';
import type { WebSocket } from '../node/websocket.js';
import { HubClientError } from './client-errors.js';
import { toError } from '../protocol/errors.js';
import type { Json } from './broker.js';
import { HubClientCore, connectDataOf, type ClientState, type CoreEvents, type GapInfo, type MessageListener, type MessageMeta } from './client-core.js';
import { reconnectsAfterClose } from './client-reconnect.js';

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
  /**
   * Application data for the server's connect hook (e.g. a backend that decides who the
   * connection is from its cookies and this), sent as `data` in every `connect` message: any
   * JSON, 32 levels deep at most, or a function returning it (sync or async), asked again before
   * each connection. A function that throws (or rejects) fails that connection, which is retried.
   */
  connectData?: Json | (() => Json | Promise<Json>);
  /** Reject a request with E_TIMEOUT after this many ms without an answer (default 10 s, as the browser client). */
  requestTimeout?: number;
  /**
   * Requests (publishes, RPCs, presence queries) kept while disconnected (default 256, as the browser
   * client: a hub answers E_BUSY beyond 256 waiting requests of a connection); more → E_QUEUE_FULL.
   */
  maxQueuedRequests?: number;
  /**
   * Reconnection and connection options, named as `ReconnectingWebSocket`'s: the backoff
   * (`minDelay` 1 s, `maxDelay` 30 s, `factor` 2, `jitter`, `resetAfter` 5 s, `maxAttempts`:
   * never give up — the defaults of both hub clients), `shouldReconnect` (default: stop after
   * close code 1003 or 1008 and after a handshake refused with a 4xx other than 408/429; retry
   * the rest, 1013 "try again later", 4001 "authentication expired" and 4008 "slow consumer"
   * included), and `connect()`'s options (headers, TLS, limits…).
   * `ReconnectingWebSocket`'s queue options are not here: the client queues requests
   * (`maxQueuedRequests`), not messages.
   */
  reconnect?: Omit<ReconnectingOptions, 'handlers' | 'beforeConnect' | 'maxQueuedMessages' | 'maxQueuedBytes' | 'queueOverflow'>;
}

/**
 * A hub client. It connects at once and stays connected until `close()`.
 *
 * ```ts
 * const client = new HubClient('ws://localhost:8080/hub', { token });
 * await client.subscribe('chat:lobby', (data, { offset }) => console.log(offset, data));
 * await client.publish('chat:lobby', { text: 'hello' });
 * const sum = await client.rpc('sum', [1, 2]); // what the server's `sum` method answered
 * ```
 */
export class HubClient extends HubClientCore<'connected', HubClientEvents> {
  private readonly url: string;
  private readonly options: HubClientOptions;
  private readonly logger: Logger;
  /** The open connection of the current attempt, if any. */
  private ws: WebSocket<undefined> | undefined;
  /** Settles once the current attempt and its connection are over (what `close()` waits for). */
  private settled: Promise<void> = Promise.resolve();

  /**
   * Starts connecting at once; requests made before the connection is up wait for it.
   * @param url The hub route's `ws:` or `wss:` URL.
   * @throws RangeError for an inconsistent reconnection policy: `minDelay` < 0, `maxDelay` < `minDelay`, `factor` < 1, `maxAttempts` < 1.
   */
  constructor(url: string | URL, options: HubClientOptions = {}) {
    const tokenTransport = options.tokenTransport ?? 'message';
    const reconnect = options.reconnect ?? {};
    super({
      openState: 'connected',
      token: async () => (tokenTransport === 'message' ? tokenOf(options) : undefined),
      connectData: connectDataOf(options.connectData),
      requestTimeout: options.requestTimeout,
      maxQueuedRequests: options.maxQueuedRequests,
      emitAllSubscribeErrors: false,
      reconnect: {
        minDelay: reconnect.minDelay,
        maxDelay: reconnect.maxDelay,
        factor: reconnect.factor,
        jitter: reconnect.jitter,
        maxAttempts: reconnect.maxAttempts,
        resetAfter: reconnect.resetAfter,
        // The close codes are the hub's policy, shared with browsers; a failed handshake is Node's to judge.
        shouldReconnect: reconnect.shouldReconnect ?? ((cause) => (cause.type === 'close' ? reconnectsAfterClose(cause.code) : defaultShouldReconnect(cause))),
        // A refused handshake's `Retry-After` (429, 503) is a floor: the server said when to come back.
        minimumDelay: retryAfter,
      },
    });
    this.url = String(url);
    this.options = options;
    this.logger = reconnect.logger ?? silentLogger;
    this.transport = {
      send: (text) => {
        const ws = this.ws;
        if (ws && ws.readyState === State.Open) ws.send(text);
      },
      close: () => this.ws?.close(CloseCode.NormalClosure, 'client closed'),
      // An abnormal close (1006) is retried.
      drop: () => this.ws?.terminate(),
    };
    this.start();
  }

  /** Resolves once connected (now, if it is); rejects if the client stops first. */
  connected(): Promise<void> {
    return this.whenReady();
  }

  /** Stop for good: close the connection, reject what waits. Resolves once the connection is closed. */
  async close(): Promise<void> {
    if (this.isClosed()) return;
    this.shutdown();
    await this.settled;
  }

  protected override stop(error: HubClientError): boolean {
    if (!super.stop(error)) return false;
    this.emit('closed');
    return true;
  }

  protected override retrying(attempt: number, delay: number): void {
    this.logger.debug({ attempt, delay }, 'reconnecting');
  }

  // ---- transport (the only Node-specific part) -------------------------------------------------

  protected override openConnection(attempt: number): void {
    let settle!: () => void;
    this.settled = new Promise((resolve) => (settle = resolve));
    void this.dial(attempt, settle);
  }

  /** One attempt: the token where it travels, the handshake, then the connection's events until it closes. */
  private async dial(attempt: number, settle: () => void): Promise<void> {
    const {
      minDelay: _min, maxDelay: _max, factor: _factor, jitter: _jitter, maxAttempts: _attempts, resetAfter: _reset, shouldReconnect: _should, ...base
    } = this.options.reconnect ?? {};
    const failed = (error: unknown): void => {
      const err = toError(error);
      this.logger.debug({ attempt, err: err.message }, 'connection attempt failed');
      if (!this.isClosed()) this.reportError(err);
      this.attemptFailed(err);
      settle();
    };
    let target: { url?: string | URL; headers?: Record<string, string> };
    try {
      target = await this.tokenTarget();
    } catch (error) {
      failed(error);
      return;
    }
    if (this.isClosed()) return settle();
    const handlers: WebSocketHandlers<undefined> = {
      open: (ws) => {
        if (this.isClosed()) return ws.close(CloseCode.NormalClosure, 'client closed');
        this.ws = ws;
        void this.connectionOpened();
      },
      message: (ws, data: MessageData, isBinary) => {
        if (ws === this.ws && !isBinary && typeof data === 'string') this.receive(data);
      },
      error: (_ws, error) => {
        if (!this.isClosed()) this.reportError(error);
      },
      close: (ws, code, reason) => {
        if (ws === this.ws) {
          this.ws = undefined;
          this.connectionClosed(code, reason);
        }
        settle();
      },
    };
    const url = target.url ?? this.url;
    this.logger.debug({ url: String(url), attempt }, 'connecting');
    try {
      // `open` runs inside connect(), before this await resumes.
      await connect<undefined>(url, {
        ...base,
        perMessageDeflate: base.perMessageDeflate ?? false,
        headers: { ...base.headers, ...target.headers },
        handlers,
      });
    } catch (error) {
      failed(error);
    }
  }

  /** Where this attempt's token goes when it does not travel in the `connect` message: a header or the URL. */
  private async tokenTarget(): Promise<{ url?: string | URL; headers?: Record<string, string> }> {
    const options = this.options;
    const transport = options.tokenTransport ?? 'message';
    if (transport === 'message' || options.token === undefined) return {};
    const token = await tokenOf(options);
    if (token === undefined) return {};
    if (transport === 'header') return { headers: { Authorization: `Bearer ${token}` } };
    const url = new URL(this.url);
    url.searchParams.set('token', token);
    return { url };
  }
}

/** The token of `options`, fresh from its function if it is one. */
async function tokenOf(options: HubClientOptions): Promise<string | undefined> {
  const token = options.token;
  return typeof token === 'function' ? token() : token;
}
