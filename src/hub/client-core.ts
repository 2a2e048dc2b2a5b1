/**
 * The client side of the hub protocol (`docs/protocol.md`), shared by the Node `HubClient`
 * (`./client.ts`) and the browser `DuplexClient` (`../browser/client.ts`): request ids and
 * acknowledgements with timeouts, the queue of requests waiting for a connection, `connect`
 * (with the token and the application's connect data), RPCs,
 * subscriptions restored after every reconnection with recovery from the last offset and epoch
 * seen (each publication delivered once, in order, or a `gap` event), presence, and events.
 *
 * The core also owns the reconnection loop (`client-reconnect.ts`: one backoff, one policy by
 * close code, one set of defaults) and the error class (`client-errors.ts`), so the two clients
 * differ only in their transport. A subclass opens one connection per attempt in
 * `openConnection(attempt)` and reports `connectionOpened`, `receive`, then `connectionClosed`
 * (or `attemptFailed` if it never opened); the core writes through a `HubTransport`.
 *
 * It uses web-standard APIs only (timers, Promise, Map, JSON) and the modules named above, none
 * of which imports anything of Node, so browsers load it as a plain ES module.
 */
import type { Json, PresenceMember } from './broker.js';
import { HubClientError } from './client-errors.js';
import { RequestTable } from './client-requests.js';
import { toError } from '../protocol/errors.js';
import { HUB_CLIENT_DEFAULTS, Reconnector, type ConnectionEnd, type GiveUpReason, type ReconnectSettings } from './client-reconnect.js';
import type { ClientState, CoreEvents, HubTransport, MessageListener, MessageMeta, SubscribeOptions } from './client-types.js';
import { parseServerMessage, readPresenceResult, readRpcResult, readSubscribeResult } from './parse-server-message.js';
import type { ConnectResult, PublishResult, StreamPosition, SubscribeResult } from './wire.js';

// The public types live in `client-types.ts` (types only, never loaded); the clients import them from here.
export type { ClientState, CoreEvents, GapInfo, HubTransport, MessageListener, MessageMeta, SubscribeOptions } from './client-types.js';

/** What a client configures in the core; unset limits and policy fields have `HUB_CLIENT_DEFAULTS`. */
export interface CoreConfig<Open extends string> {
  /** The state name once connected and authenticated ('connected', 'open'). */
  readonly openState: Open;
  /** The token sent in the `connect` message, if any. */
  readonly token: () => Promise<string | undefined>;
  /** The `data` sent in the `connect` message, if any: asked again before each connection. */
  readonly connectData?: (() => Promise<Json | undefined>) | undefined;
  /** A request without an answer this long fails with E_TIMEOUT, ms. */
  readonly requestTimeout?: number | undefined;
  /** Requests kept while disconnected; more fail with E_QUEUE_FULL. */
  readonly maxQueuedRequests?: number | undefined;
  /** Emit `error` for a refused first subscription too (it also rejects `subscribe`), not only for resubscriptions. */
  readonly emitAllSubscribeErrors: boolean;
  /** Backoff, give-up and policy settings of the reconnection loop. */
  readonly reconnect: ReconnectSettings;
}

/**
 * The core's `connectData` for a client's option: a function asking a fresh value of the
 * option's function before each connection, or giving its value; undefined without one.
 * The Node and the browser client take the option alike.
 */
export function connectDataOf(option: Json | (() => Json | Promise<Json>) | undefined): (() => Promise<Json | undefined>) | undefined {
  if (option === undefined) return undefined;
  return async () => (typeof option === 'function' ? option() : option);
}

/** A subscription kept by the client (restored after every reconnection). */
interface Sub {
  readonly topic: string;
  readonly listener: MessageListener | undefined;
  readonly recover: boolean;
  /** The last position seen: recovery starts here. */
  position: StreamPosition | undefined;
  /** Answered once: later (re)subscriptions of a `recover: false` topic start afresh. */
  answered: boolean;
  /** The id of the subscribe request in flight, if any. */
  requestId: number | undefined;
  waiters: Array<{ resolve: (result: SubscribeResult) => void; reject: (error: HubClientError) => void }>;
}

/**
 * Answers to a resubscription after which the subscription is kept and made again on a new
 * connection: E_UNAVAILABLE says "not now" (`docs/protocol.md`: retry), E_TIMEOUT leaves the
 * server's state unknown. Not E_BUSY: a client with more subscriptions than the server lets wait
 * would get it again on every connection.
 */
const RESUBSCRIBE_ON_NEW_CONNECTION: ReadonlySet<string> = new Set(['E_UNAVAILABLE', 'E_TIMEOUT']);

/** The longest delay timers keep (2^31 − 1 ms, about 24.8 days): a longer one fires at once. */
const MAX_TIMER_DELAY = 2_147_483_647;

type AnyListener = (...args: never[]) => void;
/** Each event's listener arguments, as a tuple. */
type EventMap<Events> = { [K in keyof Events]: unknown[] };

/** The protocol logic and reconnection loop of a hub client; subclasses bring the connection. */
export abstract class HubClientCore<Open extends string, Events extends CoreEvents<ClientState<Open>> & EventMap<Events>> {
  /** The id the server gave the current connection (undefined while not connected). */
  connId: string | undefined;
  /** The user id the server authenticated (undefined for anonymous). */
  userId: string | undefined;

  /** Where the core writes; set by the subclass, cleared on close. */
  protected transport: HubTransport | undefined;
  /** True once `connect` was answered on the current connection. */
  protected ready = false;

  private readonly config: CoreConfig<Open>;
  private readonly reconnector: Reconnector;
  /** True from `connectionOpened` to `connectionClosed`: the socket of the current attempt is open. */
  private linkOpen = false;
  private readonly listeners = new Map<PropertyKey, Set<AnyListener>>();
  private readonly subs = new Map<string, Sub>();
  private readonly requests: RequestTable;
  private _state: ClientState<Open> = 'connecting';
  private readyWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  /** @throws RangeError for an inconsistent reconnection policy (`minDelay` > `maxDelay`, …). */
  constructor(config: CoreConfig<Open>) {
    this.config = config;
    this.requests = new RequestTable(
      config.requestTimeout ?? HUB_CLIENT_DEFAULTS.requestTimeout,
      config.maxQueuedRequests ?? HUB_CLIENT_DEFAULTS.maxQueuedRequests,
      (text) => this.transport?.send(text),
    );
    const shouldReconnect = config.reconnect.shouldReconnect;
    this.reconnector = new Reconnector(
      {
        ...config.reconnect,
        // A policy that throws is reported, and taken as "no".
        ...(shouldReconnect && {
          shouldReconnect: (cause: ConnectionEnd) => {
            try {
              return shouldReconnect(cause);
            } catch (error) {
              this.reportError(error);
              return false;
            }
          },
        }),
      },
      {
        connect: (attempt) => this.openConnection(attempt),
        retrying: (info) => {
          this.setState('reconnecting');
          this.retrying(info.attempt, info.delay);
        },
        stopped: (reason, cause) => this.giveUp(reason, cause),
        canConnect: () => this.canConnect(),
      },
    );
  }

  /** Where the client is. */
  get state(): ClientState<Open> {
    return this._state;
  }

  /** Listen to an event. Returns a function that removes the listener. */
  on<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as unknown as AnyListener);
    return () => this.off(event, listener);
  }

  /** Remove a listener. */
  off<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): void {
    this.listeners.get(event)?.delete(listener as unknown as AnyListener);
  }

  /**
   * Subscribe to `topic`; `listener` gets its publications in offset order, exactly once, across
   * reconnections (each one resubscribes with recovery from the last offset seen). Resolves when
   * the server acknowledged (rejects with the server's error code, e.g. E_FORBIDDEN).
   * `options.from` starts from a position instead (the history after it comes first, with
   * `recovered: true`); `options.recover: false` resubscribes afresh after a reconnection, without
   * what was missed (ephemeral topics such as typing indicators).
   */
  subscribe(topic: string, listener?: MessageListener, options: SubscribeOptions = {}): Promise<SubscribeResult> {
    if (this.isClosed()) return Promise.reject(new HubClientError('E_CLOSED', 'the client is closed'));
    if (this.subs.has(topic)) return Promise.reject(new HubClientError('E_ALREADY_SUBSCRIBED', `already subscribed to ${topic}`));
    const sub: Sub = { topic, listener, recover: options.recover ?? true, position: options.from, answered: false, requestId: undefined, waiters: [] };
    this.subs.set(topic, sub);
    const done = new Promise<SubscribeResult>((resolve, reject) => sub.waiters.push({ resolve, reject }));
    if (this.ready) this.sendSubscribe(sub);
    return done;
  }

  /** Stop receiving `topic`. */
  async unsubscribe(topic: string): Promise<void> {
    const sub = this.subs.get(topic);
    if (!sub) return;
    this.subs.delete(topic);
    for (const waiter of sub.waiters.splice(0)) waiter.reject(new HubClientError('E_NOT_SUBSCRIBED', `unsubscribed from ${topic} before the server answered`));
    if (!this.ready) return;
    try {
      await this.request({ type: 'unsubscribe', topic }, false);
    } catch (error) {
      // Not subscribed on the server (never was, or the connection changed): the outcome is the same.
      const code = (error as Partial<HubClientError>).code;
      if (code !== 'E_NOT_SUBSCRIBED' && code !== 'E_CONNECTION_LOST') throw error;
    }
  }

  /**
   * Publish `data` to `topic`; resolves with its offset once the server's broker accepted it.
   * While disconnected the publish is queued (bounded by `maxQueuedRequests`) and sent after
   * reconnection. Rejects with the server's error (E_FORBIDDEN …), E_QUEUE_FULL, E_TIMEOUT, or
   * E_CONNECTION_LOST when the connection dropped after it was sent (it may or may not have
   * been published: at most once, never twice).
   */
  async publish(topic: string, data: Json, options: { excludeSelf?: boolean } = {}): Promise<PublishResult> {
    const result = await this.request({ type: 'publish', topic, data, ...(options.excludeSelf ? { excludeSelf: true } : {}) }, true);
    return { offset: Number(result['offset']), epoch: String(result['epoch']) };
  }

  /** Who is in `topic` now, across all server nodes (one member per connection). */
  async presence(topic: string): Promise<PresenceMember[]> {
    const members = readPresenceResult(await this.request({ type: 'presence', topic }, true));
    if (!members) throw new HubClientError('E_BAD_REQUEST', 'malformed presence reply');
    return members;
  }

  /**
   * Call `method` on the server (a handler of its hub, or its backend) with `params`; resolves
   * with the method's answer (`null` when it returned nothing). RPCs run concurrently on the
   * server, so their answers may come in any order; each one finds its own call. While
   * disconnected the call is queued (bounded by `maxQueuedRequests`) and sent after
   * reconnection, but never sent twice: it may have run before the connection dropped.
   * Rejects with the server's code — E_NOT_FOUND (no such method), E_FORBIDDEN (refused),
   * E_UNAVAILABLE (the handler or backend timed out or failed: retry later), E_BAD_REQUEST,
   * E_INTERNAL, or a code the handler chose — or with E_TIMEOUT after `options.timeout` ms
   * (default `requestTimeout`) without an answer, E_CONNECTION_LOST when the connection dropped
   * after the call was sent, E_QUEUE_FULL, E_CLOSED.
   * @param method 1–128 characters, no control characters (else E_BAD_REQUEST from the server).
   * @param params Any JSON, 32 levels deep at most; left out of the request when undefined.
   * @throws RangeError (as a rejection) for a `timeout` that is not a positive number of ms.
   */
  async rpc(
    method: string,
    params?: Json,
    options: {
      /** ms to wait for the answer once the call is sent (default `requestTimeout`), then E_TIMEOUT. */
      timeout?: number;
    } = {},
  ): Promise<Json> {
    const timeout = options.timeout;
    if (timeout !== undefined && !(timeout > 0 && timeout <= MAX_TIMER_DELAY)) {
      throw new RangeError(`rpc timeout must be a number of ms in (0, ${MAX_TIMER_DELAY}], got ${timeout}`);
    }
    const body: Record<string, Json> = { type: 'rpc', method, ...(params !== undefined ? { params } : {}) };
    const answer = readRpcResult(await this.request(body, true, timeout));
    if (!answer) throw new HubClientError('E_BAD_REQUEST', `malformed rpc reply for ${method}`);
    return answer.data;
  }

  /** A round trip to the server. Resolves with the time it took, in ms. */
  async ping(): Promise<number> {
    const start = Date.now();
    await this.request({ type: 'ping' }, true);
    return Date.now() - start;
  }

  /** The position (epoch and last offset) this client has seen in `topic`, if subscribed. */
  position(topic: string): StreamPosition | undefined {
    return this.subs.get(topic)?.position;
  }

  // ---- for the subclass: its connection and its events ------------------------------------------

  /**
   * Open one connection (attempt `attempt`: 1, 2, 3… since the last connection that stayed up).
   * Report `connectionOpened()` once it is open, then `connectionClosed()`; or `attemptFailed()`.
   */
  protected abstract openConnection(attempt: number): void;

  /** Start connecting: the subclass calls it at the end of its constructor (the first attempt runs in a microtask). */
  protected start(): void {
    this.reconnector.start();
  }

  /** Attempt now if a retry is waiting (e.g. the network came back). False if none was waiting. */
  protected retryNow(): boolean {
    return this.reconnector.retryNow();
  }

  /** Whether an attempt may start now; false makes it wait another delay (e.g. while offline). */
  protected canConnect(): boolean {
    return true;
  }

  /**
   * A connection that had opened was lost (before the next attempt is scheduled); for events.
   * @param code The close code (1006: dropped without a close frame).
   * @param reason The close reason ('' if none).
   */
  protected disconnected(code: number, reason: string): void {
    void code;
    void reason;
  }

  /**
   * A retry is scheduled (the state is `reconnecting`); for events.
   * @param attempt The coming attempt's number: 1, 2, 3…
   * @param delay Milliseconds until it starts.
   */
  protected retrying(attempt: number, delay: number): void {
    void attempt;
    void delay;
  }

  /** Resolves once connected (now, if it is); rejects if the client stops first. */
  protected whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.isClosed()) return Promise.reject(new HubClientError('E_CLOSED', 'the client is closed'));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Whether the client stopped for good (`close()`, or the transport gave up). */
  protected isClosed(): boolean {
    return this._state === 'closed';
  }

  /** A connection opened: authenticate, restore subscriptions, then send what was queued. */
  protected async connectionOpened(): Promise<void> {
    this.ready = false;
    this.linkOpen = true;
    this.reconnector.opened();
    let info: ConnectResult;
    let token: string | undefined;
    let data: Json | undefined;
    try {
      token = await this.config.token();
      data = await this.config.connectData?.();
    } catch (error) {
      // No token or connect data now (say the auth service is briefly down): try again on a new
      // connection rather than sit unauthenticated until the server gives up on us with 1008.
      if (!this.isClosed()) {
        this.reportError(error);
        this.transport?.drop();
      }
      return;
    }
    try {
      const result = await this.request({ type: 'connect', ...(token !== undefined ? { token } : {}), ...(data !== undefined ? { data } : {}) }, false);
      info = {
        connId: String(result['connId']),
        node: String(result['node']),
        version: Number(result['version']),
        ...(typeof result['userId'] === 'string' ? { userId: result['userId'] } : {}),
      };
    } catch (error) {
      if (!this.isClosed()) this.reportError(error);
      return; // the server closes a connection that failed to authenticate; reconnection follows (or not)
    }
    if (this.isClosed()) return;
    this.connId = info.connId;
    this.userId = info.userId;
    this.ready = true;
    // Subscriptions first, in the order they were made; then the queue (the server answers in order).
    for (const sub of this.subs.values()) this.sendSubscribe(sub);
    this.requests.flushQueue();
    this.setState(this.config.openState);
    for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
    this.fire('connected', info);
  }

  /**
   * The connection closed: the core reconnects (and recovers) or stops, by the close code alone
   * (`reconnectsAfterClose`: 1003 and 1008 stop; 1013, 4001, 4008 and the rest reconnect).
   * @param code The close code (1006: dropped without a close frame).
   * @param reason The close reason ('' if none); for messages only.
   */
  protected connectionClosed(code: number, reason: string): void {
    const wasOpen = this.linkOpen;
    this.linkOpen = false;
    this.connectionLost();
    if (this.isClosed()) return;
    if (wasOpen) this.disconnected(code, reason);
    this.reconnector.ended({ type: 'close', code, reason });
  }

  /**
   * An attempt failed before its connection opened (refused handshake, network error, no token).
   * @param error Why; the policy decides from it whether to try again.
   */
  protected attemptFailed(error: Error): void {
    this.linkOpen = false;
    this.connectionLost();
    if (this.isClosed()) return;
    this.reconnector.ended({ type: 'error', error });
  }

  /** The connection dropped: answers to requests already sent will not come; what was not sent stays queued. */
  private connectionLost(): void {
    this.ready = false;
    this.connId = undefined;
    for (const sub of this.subs.values()) sub.requestId = undefined;
    this.requests.connectionLost();
  }

  /** A text message arrived. */
  protected receive(text: string): void {
    const message = parseServerMessage(text);
    if (!message) {
      this.fire('error', new HubClientError('E_BAD_REQUEST', 'malformed message from the server'));
      return;
    }
    switch (message.type) {
      case 'reply':
      case 'error': {
        if (message.type === 'reply') {
          this.requests.resolve(message.id, message.result);
          return;
        }
        const error = new HubClientError(message.code, message.message);
        if (!this.requests.reject(message.id, error)) this.fire('error', error);
        return;
      }
      case 'message':
        // Topics subscribed by server code have no `Sub`: delivered to `message` listeners only.
        this.deliver(message.topic, this.subs.get(message.topic), message.offset, message.epoch, message.data, false);
        return;
      case 'join':
      case 'leave':
        this.fire(message.type, message.topic, message.member);
        return;
      case 'gap': {
        const sub = this.subs.get(message.topic);
        if (sub) sub.position = { epoch: message.epoch, offset: message.offset };
        this.fire('gap', { topic: message.topic, reason: message.reason, epoch: message.epoch, offset: message.offset });
        return;
      }
      case 'push':
        this.fire('push', message.data);
        return;
    }
  }

  /** Stop for good: reject everything that waits. False if already stopped. */
  protected stop(error: HubClientError): boolean {
    if (this.isClosed()) return false;
    this.reconnector.stop();
    this.ready = false;
    this.setState('closed');
    this.requests.rejectAll(error);
    for (const sub of this.subs.values()) for (const waiter of sub.waiters.splice(0)) waiter.reject(error);
    for (const waiter of this.readyWaiters.splice(0)) waiter.reject(error);
    return true;
  }

  /** `close()` for the subclass: stop, then close the transport. */
  protected shutdown(): void {
    const transport = this.transport;
    this.transport = undefined;
    this.stop(new HubClientError('E_CLOSED', 'the client was closed'));
    transport?.close();
  }

  /** Emit an `error` event for a failure no request is waiting for (a non-Error is wrapped in one). */
  protected reportError(error: unknown): void {
    this.fire('error', toError(error));
  }

  /** Call the listeners of `event`; one that throws is reported as an `error` event. */
  protected emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as unknown as (...args: unknown[]) => void)(...args);
      } catch (error) {
        if (event !== 'error') this.reportError(error);
        else console.error(error);
      }
    }
  }

  // ---- protocol --------------------------------------------------------------------------------

  /** The reconnection loop stopped by itself: say why (an `error` event), then stop. */
  private giveUp(reason: GiveUpReason, cause: ConnectionEnd): void {
    const why = cause.type === 'close' ? `closed with ${cause.code}${cause.reason ? ` ${cause.reason}` : ''}` : cause.error.message;
    const error = new HubClientError('E_CLOSED', `the client stopped (${reason}): ${why}`);
    this.reportError(error);
    this.stop(error);
  }

  private fire<K extends keyof CoreEvents<ClientState<Open>>>(event: K, ...args: CoreEvents<ClientState<Open>>[K]): void {
    (this.emit as (event: K, ...args: unknown[]) => void)(event, ...args);
  }

  private setState(state: ClientState<Open>): void {
    if (this._state === state || this.isClosed()) return;
    this._state = state;
    this.fire('state', state);
  }

  private sendSubscribe(sub: Sub): void {
    const recover = sub.recover || !sub.answered ? sub.position : undefined;
    const id = this.requests.newId();
    sub.requestId = id;
    const text = JSON.stringify({ type: 'subscribe', id, topic: sub.topic, ...(recover ? { recover } : {}) });
    this.requests.send(
      id,
      text,
      (result) => this.onSubscribed(sub, id, result, recover !== undefined),
      (error) => {
        if (sub.requestId !== id) return;
        sub.requestId = undefined;
        if (error.code === 'E_CONNECTION_LOST') return; // resubscribed on the next connection
        if (sub.answered && RESUBSCRIBE_ON_NEW_CONNECTION.has(error.code) && this.subs.get(sub.topic) === sub) {
          // A resubscription the server could not make now (its broker unreachable) or did not
          // answer in time (then whether it was made is unknown): keep the subscription
          // and make it again, with recovery, on a new connection — the reconnection's backoff
          // paces the retries. Dropping it would end delivery for good while the application
          // believes it is subscribed (found by the partition test, docs/partitions.md).
          this.fire('error', error);
          this.transport?.drop();
          return;
        }
        if (this.subs.get(sub.topic) === sub) this.subs.delete(sub.topic);
        for (const waiter of sub.waiters.splice(0)) waiter.reject(error);
        if (this.config.emitAllSubscribeErrors || sub.position) this.fire('error', error);
      },
    );
  }

  private onSubscribed(sub: Sub, id: number, raw: Record<string, unknown>, recovering: boolean): void {
    if (sub.requestId !== id || this.subs.get(sub.topic) !== sub) return;
    sub.requestId = undefined;
    const result = readSubscribeResult(raw);
    if (!result) {
      this.fire('error', new HubClientError('E_BAD_REQUEST', `malformed subscribe reply for ${sub.topic}`));
      return;
    }
    sub.answered = true;
    if (!recovering) sub.position = undefined;
    if (result.recovered === true && result.publications) {
      for (const p of result.publications) this.deliver(sub.topic, sub, p.offset, result.epoch, p.data, true);
    } else if (result.recovered === false && recovering) {
      this.fire('gap', { topic: sub.topic, reason: result.reason ?? 'too old', epoch: result.epoch, offset: result.offset });
    }
    const same = sub.position?.epoch === result.epoch;
    sub.position = { epoch: result.epoch, offset: same ? Math.max(result.offset, sub.position!.offset) : result.offset };
    for (const waiter of sub.waiters.splice(0)) waiter.resolve(result);
  }

  /**
   * Deliver a publication of `topic` once: an offset at or below the last seen (same epoch) is a
   * duplicate. Without `sub` (a topic server code subscribed this connection to) there is no
   * position to check, and only the `message` listeners get it.
   */
  private deliver(topic: string, sub: Sub | undefined, offset: number, epoch: string, data: Json, recovered: boolean): void {
    if (sub) {
      const position = sub.position;
      if (position && position.epoch === epoch && offset <= position.offset) return;
      sub.position = { epoch, offset };
    }
    const meta: MessageMeta = { topic, offset, epoch, recovered };
    if (sub?.listener) {
      try {
        sub.listener(data, meta);
      } catch (error) {
        this.reportError(error);
      }
    }
    this.fire('message', data, meta);
  }

  /**
   * Send a request and wait for its answer. While not connected it waits in the queue if
   * `queue` (else fails with E_CONNECTION_LOST); the timeout (`timeout`, else `requestTimeout`)
   * runs from when it is sent.
   */
  private request(body: Record<string, Json>, queue: boolean, timeout?: number): Promise<Record<string, unknown>> {
    if (this.isClosed()) return Promise.reject(new HubClientError('E_CLOSED', 'the client is closed'));
    return this.requests.request(body, this.ready || body['type'] === 'connect', queue, timeout);
  }
}
