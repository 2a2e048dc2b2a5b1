/**
 * The Node client of the hub protocol (`docs/protocol.md`): subscribe, publish, presence, with
 * automatic reconnection (exponential backoff with full jitter, from `ReconnectingWebSocket`)
 * and, after each reconnection, resubscription with recovery from the last offset and epoch
 * seen per topic — so a subscriber receives every publication exactly once and in order across
 * a reconnect, or a `gap` event saying what was lost.
 *
 * Everything but `openTransport` is plain TypeScript over `wire.ts` (timers, Promise, Map): the
 * browser client mirrors this file with the browser's WebSocket as its transport.
 */
import { CloseCode } from '../protocol/constants.js';
import { ReconnectingWebSocket, type ReconnectingOptions } from '../node/reconnecting.js';
import type { MessageData } from '../node/websocket.js';
import type { Json, PresenceMember } from './broker.js';
import {
  parseServerMessage,
  readPresenceResult,
  readSubscribeResult,
  type ConnectResult,
  type GapReason,
  type HubErrorCode,
  type PublishResult,
  type ServerMessage,
  type StreamPosition,
  type SubscribeResult,
} from './wire.js';

/** A request refused by the server (its `code`), or failed on the client's side. */
export class HubClientError extends Error {
  override readonly name = 'HubClientError';
  constructor(
    readonly code: HubErrorCode | string,
    message: string,
  ) {
    super(message);
  }
}

/** Where a `HubClient` is. */
export type HubClientState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** A publication as delivered to a subscriber. */
export interface HubMessageMeta {
  readonly topic: string;
  readonly offset: number;
  readonly epoch: string;
  /** True if it came from history on (re)subscription rather than live. */
  readonly recovered: boolean;
}

/** Called for each publication of a subscribed topic, in offset order. */
export type MessageListener = (data: Json, meta: HubMessageMeta) => void;

/** Publications were lost for this client (`offset` is the position after the loss). */
export interface GapInfo {
  readonly topic: string;
  readonly reason: GapReason;
  readonly epoch: string;
  readonly offset: number;
}

/** Events of a `HubClient` and their listeners' arguments. */
export interface HubClientEvents {
  /** The state changed. */
  state: [state: HubClientState];
  /** Connected (first time and after each reconnection), subscriptions restored. */
  connected: [info: ConnectResult];
  /** Any publication of any topic, including topics subscribed by server code. */
  message: [data: Json, meta: HubMessageMeta];
  /** A message to this connection, its user, or everyone (`sendToConnection`/`sendToUser`/`broadcast`). */
  push: [data: Json];
  join: [topic: string, member: PresenceMember];
  leave: [topic: string, member: PresenceMember];
  /** Publications of a topic were lost (history too short, or the broker lost it). */
  gap: [info: GapInfo];
  /** An error not tied to a request (a server error without id, a failed connect, a listener that threw). */
  error: [error: Error];
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

/** A request waiting for its answer. */
interface PendingRequest {
  readonly id: number;
  readonly text: string;
  readonly resolve: (result: Record<string, unknown>) => void;
  readonly reject: (error: HubClientError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  sent: boolean;
}

/** A subscription kept by the client (restored after every reconnection). */
interface ClientSub {
  readonly topic: string;
  readonly listener: MessageListener | undefined;
  /** The last position seen: recovery starts here. */
  position: StreamPosition | undefined;
  active: boolean;
  /** The id of the subscribe request in flight, if any. */
  requestId: number | undefined;
  waiters: Array<{ resolve: (result: SubscribeResult) => void; reject: (error: HubClientError) => void }>;
}

/** The transport a `HubClient` drives: text out, and callbacks in. */
interface Transport {
  send(text: string): void;
  close(): void;
}

type Listener<K extends keyof HubClientEvents> = (...args: HubClientEvents[K]) => void;

/**
 * A hub client. It connects at once and stays connected until `close()`.
 *
 * ```ts
 * const client = new HubClient('ws://localhost:8080/hub', { token });
 * await client.subscribe('chat:lobby', (data, { offset }) => console.log(offset, data));
 * await client.publish('chat:lobby', { text: 'hello' });
 * ```
 */
export class HubClient {
  /** The id the server gave the current connection (undefined while not connected). */
  connId: string | undefined;
  /** The user id the server authenticated (undefined for anonymous). */
  userId: string | undefined;

  private readonly url: string;
  private readonly options: HubClientOptions;
  private readonly requestTimeout: number;
  private readonly maxQueued: number;
  private readonly listeners = new Map<keyof HubClientEvents, Set<(...args: never[]) => void>>();
  private readonly subs = new Map<string, ClientSub>();
  private readonly requests = new Map<number, PendingRequest>();
  /** Requests waiting for the next connection, oldest first. */
  private queue: PendingRequest[] = [];
  private nextId = 1;
  private _state: HubClientState = 'connecting';
  private transport: Transport | undefined;
  /** True once `connect` was answered on the current connection. */
  private ready = false;
  private connectedWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  constructor(url: string | URL, options: HubClientOptions = {}) {
    this.url = String(url);
    this.options = options;
    this.requestTimeout = options.requestTimeout ?? 10_000;
    this.maxQueued = options.maxQueuedRequests ?? 1000;
    this.transport = this.openTransport();
  }

  /** Where the client is. */
  get state(): HubClientState {
    return this._state;
  }

  /** Resolves once connected (now, if it is); rejects if the client stops first. */
  connected(): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this._state === 'closed') return Promise.reject(new HubClientError('E_CLOSED', 'the client is closed'));
    return new Promise((resolve, reject) => this.connectedWaiters.push({ resolve, reject }));
  }

  /** Listen to an event. Returns a function that removes the listener. */
  on<K extends keyof HubClientEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (...args: never[]) => void);
    return () => this.off(event, listener);
  }

  /** Remove a listener. */
  off<K extends keyof HubClientEvents>(event: K, listener: Listener<K>): void {
    this.listeners.get(event)?.delete(listener as (...args: never[]) => void);
  }

  /**
   * Subscribe to `topic`; `listener` gets its publications in offset order. Resolves when the
   * server acknowledged (rejects with the server's error code, e.g. E_FORBIDDEN). Kept across
   * reconnections: each one resubscribes with recovery from the last offset seen.
   */
  subscribe(topic: string, listener?: MessageListener): Promise<SubscribeResult> {
    if (this._state === 'closed') return Promise.reject(new HubClientError('E_CLOSED', 'the client is closed'));
    if (this.subs.has(topic)) return Promise.reject(new HubClientError('E_ALREADY_SUBSCRIBED', `already subscribed to ${topic}`));
    const sub: ClientSub = { topic, listener, position: undefined, active: false, requestId: undefined, waiters: [] };
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
    for (const waiter of sub.waiters) waiter.reject(new HubClientError('E_NOT_SUBSCRIBED', `unsubscribed from ${topic} before the server answered`));
    sub.waiters = [];
    if (!this.ready) return;
    try {
      await this.request({ type: 'unsubscribe', topic }, false);
    } catch (error) {
      // Not subscribed on the server (never was, or the connection changed): the outcome is the same.
      if (!(error instanceof HubClientError && (error.code === 'E_NOT_SUBSCRIBED' || error.code === 'E_CONNECTION_LOST'))) throw error;
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

  /** Who is in `topic`, across all server nodes. */
  async presence(topic: string): Promise<PresenceMember[]> {
    const result = await this.request({ type: 'presence', topic }, true);
    const members = readPresenceResult(result);
    if (!members) throw new HubClientError('E_BAD_REQUEST', 'malformed presence reply');
    return members;
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

  /** Stop for good: close the connection, reject what waits. */
  async close(): Promise<void> {
    if (this._state === 'closed') return;
    const transport = this.transport;
    this.transport = undefined;
    this.stop(new HubClientError('E_CLOSED', 'the client was closed'));
    transport?.close();
    if (this.socket) await this.socket.finished;
  }

  // ---- transport (the only Node-specific part) -------------------------------------------------

  private socket: ReconnectingWebSocket | undefined;

  private openTransport(): Transport {
    const options = this.options;
    const transport = options.tokenTransport ?? 'message';
    const socket = new ReconnectingWebSocket(this.url, {
      ...options.reconnect,
      perMessageDeflate: options.reconnect?.perMessageDeflate ?? false,
      beforeConnect: async () => {
        if (transport === 'message' || options.token === undefined) return;
        const token = await this.token();
        if (token === undefined) return;
        if (transport === 'header') return { headers: { Authorization: `Bearer ${token}` } };
        const url = new URL(this.url);
        url.searchParams.set('token', token);
        return { url };
      },
      handlers: {
        open: () => void this.onOpen(),
        message: (_client, data: MessageData, isBinary: boolean) => {
          if (!isBinary && typeof data === 'string') this.onText(data);
        },
        close: () => this.onDisconnect(),
        error: (_client, error) => {
          if (this._state !== 'closed') this.emit('error', error);
        },
        reconnecting: () => this.setState('reconnecting'),
        closed: (_client, info) => {
          if (this._state === 'closed') return;
          const cause = info.cause;
          const why = cause?.type === 'close' ? `closed with ${cause.code} ${cause.reason}` : cause?.type === 'error' ? cause.error.message : info.reason;
          this.stop(new HubClientError('E_CLOSED', `the client stopped (${info.reason}): ${why}`));
        },
      },
    });
    this.socket = socket;
    return {
      send: (text) => void socket.send(text),
      close: () => void socket.close(CloseCode.NormalClosure, 'client closed'),
    };
  }

  // ---- protocol --------------------------------------------------------------------------------

  private async token(): Promise<string | undefined> {
    const token = this.options.token;
    return typeof token === 'function' ? token() : token;
  }

  /** A connection opened: authenticate, restore subscriptions, then send what was queued. */
  private async onOpen(): Promise<void> {
    this.ready = false;
    let info: ConnectResult;
    try {
      const token = (this.options.tokenTransport ?? 'message') === 'message' ? await this.token() : undefined;
      const result = await this.request({ type: 'connect', ...(token !== undefined ? { token } : {}) }, false);
      info = {
        connId: String(result['connId']),
        node: String(result['node']),
        version: Number(result['version']),
        ...(typeof result['userId'] === 'string' ? { userId: result['userId'] } : {}),
      };
    } catch (error) {
      if (this._state !== 'closed') this.emit('error', error instanceof Error ? error : new Error(String(error)));
      return; // the server closes a connection that failed to authenticate; reconnection follows (or not)
    }
    if (this._state === 'closed') return;
    this.connId = info.connId;
    this.userId = info.userId;
    this.ready = true;
    // Subscriptions first, in the order they were made; then the queue (the server answers in order).
    for (const sub of this.subs.values()) this.sendSubscribe(sub);
    const queued = this.queue;
    this.queue = [];
    for (const request of queued) this.transmit(request);
    this.setState('connected');
    for (const waiter of this.connectedWaiters.splice(0)) waiter.resolve();
    this.emit('connected', info);
  }

  private onDisconnect(): void {
    this.ready = false;
    this.connId = undefined;
    for (const sub of this.subs.values()) {
      sub.active = false;
      sub.requestId = undefined;
    }
    // Answers to requests already sent will not come; what was not sent stays queued.
    for (const request of [...this.requests.values()]) {
      if (!request.sent) continue;
      this.settle(request);
      request.reject(new HubClientError('E_CONNECTION_LOST', 'the connection dropped before the server answered'));
    }
    if (this._state !== 'closed') this.setState('reconnecting');
  }

  private sendSubscribe(sub: ClientSub): void {
    const recover = sub.position;
    const id = this.nextId++;
    sub.requestId = id;
    const text = JSON.stringify({ type: 'subscribe', id, topic: sub.topic, ...(recover ? { recover } : {}) });
    const pending: PendingRequest = {
      id,
      text,
      timer: undefined,
      sent: false,
      resolve: (result) => this.onSubscribed(sub, id, result),
      reject: (error) => {
        if (sub.requestId !== id) return;
        sub.requestId = undefined;
        if (error.code === 'E_CONNECTION_LOST') return; // resubscribed on the next connection
        if (this.subs.get(sub.topic) === sub) this.subs.delete(sub.topic);
        for (const waiter of sub.waiters.splice(0)) waiter.reject(error);
        if (sub.active || sub.position) this.emit('error', error);
      },
    };
    this.requests.set(id, pending);
    this.transmit(pending);
  }

  private onSubscribed(sub: ClientSub, id: number, raw: Record<string, unknown>): void {
    if (sub.requestId !== id || this.subs.get(sub.topic) !== sub) return;
    sub.requestId = undefined;
    const result = readSubscribeResult(raw);
    if (!result) {
      this.emit('error', new HubClientError('E_BAD_REQUEST', `malformed subscribe reply for ${sub.topic}`));
      return;
    }
    const before = sub.position;
    if (result.recovered === true && result.publications) {
      for (const p of result.publications) this.deliver(sub, p.offset, result.epoch, p.data, true);
    } else if (result.recovered === false && before) {
      const info: GapInfo = { topic: sub.topic, reason: result.reason ?? 'too old', epoch: result.epoch, offset: result.offset };
      this.emit('gap', info);
    }
    sub.position = { epoch: result.epoch, offset: Math.max(result.offset, result.epoch === sub.position?.epoch ? sub.position.offset : 0) };
    sub.active = true;
    for (const waiter of sub.waiters.splice(0)) waiter.resolve(result);
  }

  /** Deliver a publication once: an offset at or below the last seen (same epoch) is a duplicate. */
  private deliver(sub: ClientSub | undefined, offset: number, epoch: string, data: Json, recovered: boolean): void {
    const topic = sub?.topic;
    if (sub) {
      const position = sub.position;
      if (position && position.epoch === epoch && offset <= position.offset) return;
      sub.position = { epoch, offset };
    }
    const meta: HubMessageMeta = { topic: topic ?? '', offset, epoch, recovered };
    if (sub?.listener) {
      try {
        sub.listener(data, meta);
      } catch (error) {
        this.emit('error', error instanceof Error ? error : new Error(String(error)));
      }
    }
    this.emit('message', data, meta);
  }

  private onText(text: string): void {
    const message: ServerMessage | undefined = parseServerMessage(text);
    if (!message) {
      this.emit('error', new HubClientError('E_BAD_REQUEST', 'malformed message from the server'));
      return;
    }
    switch (message.type) {
      case 'reply': {
        const request = typeof message.id === 'number' ? this.requests.get(message.id) : undefined;
        if (!request) return;
        this.settle(request);
        request.resolve(message.result);
        return;
      }
      case 'error': {
        const request = typeof message.id === 'number' ? this.requests.get(message.id) : undefined;
        const error = new HubClientError(message.code, message.message);
        if (!request) {
          this.emit('error', error);
          return;
        }
        this.settle(request);
        request.reject(error);
        return;
      }
      case 'message': {
        const sub = this.subs.get(message.topic);
        if (sub) this.deliver(sub, message.offset, message.epoch, message.data, false);
        else this.deliver(undefined, message.offset, message.epoch, message.data, false);
        return;
      }
      case 'join':
      case 'leave':
        this.emit(message.type, message.topic, message.member);
        return;
      case 'gap': {
        const sub = this.subs.get(message.topic);
        if (sub) sub.position = { epoch: message.epoch, offset: message.offset };
        this.emit('gap', { topic: message.topic, reason: message.reason, epoch: message.epoch, offset: message.offset });
        return;
      }
      case 'push':
        this.emit('push', message.data);
        return;
    }
  }

  /**
   * Send a request and wait for its answer. While not connected it waits in the queue if
   * `queue` (else fails with E_CONNECTION_LOST); the timeout runs from when it is sent.
   */
  private request(body: Record<string, Json>, queue: boolean): Promise<Record<string, unknown>> {
    if (this._state === 'closed') return Promise.reject(new HubClientError('E_CLOSED', 'the client is closed'));
    const id = this.nextId++;
    const text = JSON.stringify({ ...body, id });
    return new Promise((resolve, reject) => {
      const request: PendingRequest = { id, text, resolve, reject, timer: undefined, sent: false };
      const isConnect = body['type'] === 'connect';
      if (this.ready || isConnect) {
        this.requests.set(id, request);
        this.transmit(request);
        return;
      }
      if (!queue) {
        reject(new HubClientError('E_CONNECTION_LOST', 'not connected'));
        return;
      }
      if (this.queue.length >= this.maxQueued) {
        reject(new HubClientError('E_QUEUE_FULL', `more than ${this.maxQueued} requests wait for a connection`));
        return;
      }
      this.requests.set(id, request);
      this.queue.push(request);
    });
  }

  private transmit(request: PendingRequest): void {
    request.sent = true;
    request.timer = setTimeout(() => {
      this.settle(request);
      request.reject(new HubClientError('E_TIMEOUT', `no answer within ${this.requestTimeout} ms`));
    }, this.requestTimeout);
    this.transport?.send(request.text);
  }

  private settle(request: PendingRequest): void {
    if (request.timer) clearTimeout(request.timer);
    this.requests.delete(request.id);
  }

  private stop(error: HubClientError): void {
    if (this._state === 'closed') return;
    this.ready = false;
    this.setState('closed');
    for (const request of [...this.requests.values()]) {
      this.settle(request);
      request.reject(error);
    }
    this.queue = [];
    for (const sub of this.subs.values()) for (const waiter of sub.waiters.splice(0)) waiter.reject(error);
    for (const waiter of this.connectedWaiters.splice(0)) waiter.reject(error);
    this.emit('closed');
  }

  private setState(state: HubClientState): void {
    if (this._state === state || this._state === 'closed') return;
    this._state = state;
    this.emit('state', state);
  }

  private emit<K extends keyof HubClientEvents>(event: K, ...args: HubClientEvents[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<K>)(...args);
      } catch (error) {
        if (event !== 'error') this.emit('error', error instanceof Error ? error : new Error(String(error)));
      }
    }
  }
}
