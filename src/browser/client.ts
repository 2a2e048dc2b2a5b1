/**
 * The browser client of the hub protocol (`docs/protocol.md`), an ES module with no
 * dependencies but `../hub/wire.js` (itself free of imports), so a page can load it with
 * `<script type="module">` and no bundler. `duplex serve` serves it at `/duplex/client.js`.
 *
 * It mirrors the Node `HubClient` with the browser's `WebSocket` as the transport: connect with
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
 */
import type { Json, PresenceMember } from '../hub/broker.js';
import {
  parseServerMessage,
  readPresenceResult,
  readSubscribeResult,
  type ConnectResult,
  type GapReason,
  type PublishResult,
  type StreamPosition,
  type SubscribeResult,
} from '../hub/wire.js';

export type { Json, PresenceMember, ConnectResult, PublishResult, StreamPosition, SubscribeResult };

/** A request refused by the server (`code`, e.g. E_FORBIDDEN) or failed on this side (E_TIMEOUT, E_CONNECTION_LOST, E_CLOSED, E_QUEUE_FULL). */
export class DuplexError extends Error {
  override readonly name = 'DuplexError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Where a client is. */
export type DuplexState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What a subscriber learns about each publication. */
export interface MessageMeta {
  readonly topic: string;
  readonly offset: number;
  readonly epoch: string;
  /** True if it came from history (on subscribe with `from`, or after a reconnection). */
  readonly recovered: boolean;
}

export type MessageListener = (data: Json, meta: MessageMeta) => void;

/** Publications were lost for this client for good. */
export interface GapInfo {
  readonly topic: string;
  readonly reason: GapReason;
  readonly epoch: string;
  readonly offset: number;
}

/** Events and their listeners' arguments. */
export interface DuplexEvents {
  state: [state: DuplexState];
  /** Authenticated (first time and after every reconnection); subscriptions are being restored. */
  connected: [info: ConnectResult];
  /** Any publication, after its topic's listener. */
  message: [data: Json, meta: MessageMeta];
  push: [data: Json];
  join: [topic: string, member: PresenceMember];
  leave: [topic: string, member: PresenceMember];
  gap: [info: GapInfo];
  /** A connection was lost; `code` is the WebSocket close code (1006: dropped). */
  disconnected: [info: { code: number; reason: string }];
  /** Waiting `delay` ms before connection attempt `attempt`. */
  reconnecting: [info: { attempt: number; delay: number }];
  error: [error: Error];
}

/** The part of the browser's WebSocket this client uses (any WHATWG implementation fits). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
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

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /** Start from this position: publications after it are delivered from history first (`recovered: true`). */
  from?: StreamPosition;
  /** Recover what was missed after a reconnection (default true; false for ephemeral topics such as typing indicators). */
  recover?: boolean;
}

interface Pending {
  readonly id: number;
  readonly text: string;
  readonly resolve: (result: Record<string, unknown>) => void;
  readonly reject: (error: DuplexError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  sent: boolean;
}

interface Sub {
  readonly topic: string;
  readonly listener: MessageListener | undefined;
  readonly recover: boolean;
  position: StreamPosition | undefined;
  /** Answered once: later (re)subscriptions of a `recover: false` topic start afresh. */
  answered: boolean;
  requestId: number | undefined;
  waiters: Array<{ resolve: (result: SubscribeResult) => void; reject: (error: DuplexError) => void }>;
}

type Listener<K extends keyof DuplexEvents> = (...args: DuplexEvents[K]) => void;

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
export class DuplexClient {
  /** The server's id for the current connection. */
  connId: string | undefined;
  /** The authenticated user id (undefined when anonymous). */
  userId: string | undefined;
  /** The URL connected to. */
  readonly url: string;

  private readonly options: DuplexClientOptions;
  private readonly WS: WebSocketConstructor;
  private readonly listeners = new Map<keyof DuplexEvents, Set<(...args: never[]) => void>>();
  private readonly subs = new Map<string, Sub>();
  private readonly requests = new Map<number, Pending>();
  private queue: Pending[] = [];
  private nextId = 1;
  private _state: DuplexState = 'connecting';
  private socket: WebSocketLike | undefined;
  private ready = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private openedAt = 0;
  private waitingForOnline = false;
  private readonly onOnline = (): void => {
    if (!this.waitingForOnline || this._state === 'closed') return;
    this.waitingForOnline = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.open();
  };

  constructor(url: string, options: DuplexClientOptions = {}) {
    this.options = options;
    this.url = absoluteUrl(url, options.params);
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError('no WebSocket class: pass options.WebSocket');
    this.WS = WS;
    if (typeof addEventListener === 'function') addEventListener('online', this.onOnline);
    this.open();
  }

  /** Where the client is: connecting, open, reconnecting or closed. */
  get state(): DuplexState {
    return this._state;
  }

  /** Listen to an event; returns a function that removes the listener. */
  on<K extends keyof DuplexEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as unknown as (...args: never[]) => void);
    return () => this.off(event, listener);
  }

  off<K extends keyof DuplexEvents>(event: K, listener: Listener<K>): void {
    this.listeners.get(event)?.delete(listener as unknown as (...args: never[]) => void);
  }

  /** Resolves once connected and authenticated. */
  whenOpen(): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const offState = this.on('state', (state) => {
        if (state === 'open') {
          offState();
          resolve();
        } else if (state === 'closed') {
          offState();
          reject(new DuplexError('E_CLOSED', 'the client is closed'));
        }
      });
    });
  }

  /**
   * Subscribe to `topic`; `listener` gets its publications in offset order, exactly once, across
   * reconnections. Resolves when the server has answered.
   */
  subscribe(topic: string, listener?: MessageListener, options: SubscribeOptions = {}): Promise<SubscribeResult> {
    if (this._state === 'closed') return Promise.reject(new DuplexError('E_CLOSED', 'the client is closed'));
    if (this.subs.has(topic)) return Promise.reject(new DuplexError('E_ALREADY_SUBSCRIBED', `already subscribed to ${topic}`));
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
    for (const waiter of sub.waiters.splice(0)) waiter.reject(new DuplexError('E_NOT_SUBSCRIBED', `unsubscribed from ${topic}`));
    if (!this.ready) return;
    await this.request({ type: 'unsubscribe', topic }, false).catch((error: unknown) => {
      if (!(error instanceof DuplexError) || (error.code !== 'E_NOT_SUBSCRIBED' && error.code !== 'E_CONNECTION_LOST')) throw error;
    });
  }

  /**
   * Publish `data` to `topic`. Resolves with its offset once the server's broker accepted it.
   * Queued while disconnected; E_CONNECTION_LOST if the connection dropped after sending (it
   * may or may not have been published: at most once).
   */
  async publish(topic: string, data: Json, options: { excludeSelf?: boolean } = {}): Promise<PublishResult> {
    const result = await this.request({ type: 'publish', topic, data, ...(options.excludeSelf ? { excludeSelf: true } : {}) }, true);
    return { offset: Number(result['offset']), epoch: String(result['epoch']) };
  }

  /** Who is in `topic` now (one member per connection). */
  async presence(topic: string): Promise<PresenceMember[]> {
    const members = readPresenceResult(await this.request({ type: 'presence', topic }, true));
    if (!members) throw new DuplexError('E_BAD_REQUEST', 'malformed presence reply');
    return members;
  }

  /** A round trip; resolves with the milliseconds it took. */
  async ping(): Promise<number> {
    const start = Date.now();
    await this.request({ type: 'ping' }, true);
    return Date.now() - start;
  }

  /** The last position seen in `topic`. */
  position(topic: string): StreamPosition | undefined {
    return this.subs.get(topic)?.position;
  }

  /** Stop for good. */
  close(): void {
    if (this._state === 'closed') return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (typeof removeEventListener === 'function') removeEventListener('online', this.onOnline);
    const socket = this.socket;
    this.socket = undefined;
    this.stop(new DuplexError('E_CLOSED', 'the client was closed'));
    if (socket && socket.readyState <= OPEN) socket.close(1000, 'client closed');
  }

  // ---- connection ------------------------------------------------------------------------------

  private open(): void {
    if (this._state === 'closed') return;
    let socket: WebSocketLike;
    try {
      socket = new this.WS(this.url);
    } catch (error) {
      this.emit('error', error instanceof Error ? error : new Error(String(error)));
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.openedAt = Date.now();
      void this.authenticate();
    };
    socket.onmessage = (event) => {
      if (this.socket === socket && typeof event.data === 'string') this.onText(event.data);
    };
    socket.onerror = () => {};
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.onDisconnect(event.code, event.reason);
    };
  }

  private onDisconnect(code: number, reason: string): void {
    const wasReady = this.ready;
    this.ready = false;
    this.connId = undefined;
    for (const sub of this.subs.values()) sub.requestId = undefined;
    for (const request of [...this.requests.values()]) {
      if (!request.sent) continue;
      this.settle(request);
      request.reject(new DuplexError('E_CONNECTION_LOST', 'the connection dropped before the server answered'));
    }
    if (this._state === 'closed') return;
    if (wasReady || this.openedAt > 0) this.emit('disconnected', { code, reason });
    // 1008: the server refused us (bad token, abuse); retrying will not help — except after a
    // slow-consumer close, which a reconnection with recovery repairs.
    if (code === 1008 && reason !== 'slow consumer') {
      this.emit('error', new DuplexError('E_UNAUTHORIZED', `the server closed the connection: ${reason || 'policy violation'}`));
      this.stop(new DuplexError('E_CLOSED', `refused by the server: ${reason}`));
      return;
    }
    if (this.openedAt > 0 && Date.now() - this.openedAt >= RESET_AFTER) this.attempt = 0;
    this.openedAt = 0;
    this.setState('reconnecting');
    this.scheduleRetry();
  }

  /** Full-jitter exponential backoff; while the browser is offline, wait for it to come back. */
  private scheduleRetry(): void {
    if (this._state === 'closed') return;
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

  private async token(): Promise<string | undefined> {
    const token = this.options.token;
    return typeof token === 'function' ? token() : token;
  }

  /** `connect`, then restore subscriptions, then send what was queued. */
  private async authenticate(): Promise<void> {
    let result: Record<string, unknown>;
    try {
      const token = await this.token();
      result = await this.request({ type: 'connect', ...(token !== undefined ? { token } : {}) }, false);
    } catch (error) {
      if (this._state !== 'closed') this.emit('error', error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (this._state === 'closed') return;
    const info: ConnectResult = {
      connId: String(result['connId']),
      node: String(result['node']),
      version: Number(result['version']),
      ...(typeof result['userId'] === 'string' ? { userId: result['userId'] } : {}),
    };
    this.connId = info.connId;
    this.userId = info.userId;
    this.ready = true;
    for (const sub of this.subs.values()) this.sendSubscribe(sub);
    const queued = this.queue;
    this.queue = [];
    for (const request of queued) this.transmit(request);
    this.setState('open');
    this.emit('connected', info);
  }

  private sendSubscribe(sub: Sub): void {
    const recover = sub.recover || !sub.answered ? sub.position : undefined;
    const id = this.nextId++;
    sub.requestId = id;
    const text = JSON.stringify({ type: 'subscribe', id, topic: sub.topic, ...(recover ? { recover } : {}) });
    const pending: Pending = {
      id,
      text,
      timer: undefined,
      sent: false,
      resolve: (raw) => this.onSubscribed(sub, id, raw, recover !== undefined),
      reject: (error) => {
        if (sub.requestId !== id) return;
        sub.requestId = undefined;
        if (error.code === 'E_CONNECTION_LOST') return; // resubscribed on the next connection
        if (this.subs.get(sub.topic) === sub) this.subs.delete(sub.topic);
        for (const waiter of sub.waiters.splice(0)) waiter.reject(error);
        this.emit('error', error);
      },
    };
    this.requests.set(id, pending);
    this.transmit(pending);
  }

  private onSubscribed(sub: Sub, id: number, raw: Record<string, unknown>, recovering: boolean): void {
    if (sub.requestId !== id || this.subs.get(sub.topic) !== sub) return;
    const result = readSubscribeResult(raw);
    if (!result) {
      this.emit('error', new DuplexError('E_BAD_REQUEST', `malformed subscribe reply for ${sub.topic}`));
      return;
    }
    sub.answered = true;
    if (!recovering) sub.position = undefined;
    if (result.recovered === true && result.publications) {
      for (const p of result.publications) this.deliver(sub, p.offset, result.epoch, p.data, true);
    } else if (result.recovered === false && recovering) {
      this.emit('gap', { topic: sub.topic, reason: result.reason ?? 'too old', epoch: result.epoch, offset: result.offset });
    }
    const same = sub.position?.epoch === result.epoch;
    sub.position = { epoch: result.epoch, offset: same ? Math.max(result.offset, sub.position!.offset) : result.offset };
    for (const waiter of sub.waiters.splice(0)) waiter.resolve(result);
  }

  /** Deliver once: an offset at or below the last seen in the same epoch is a duplicate. */
  private deliver(sub: Sub | undefined, offset: number, epoch: string, data: Json, recovered: boolean): void {
    if (sub) {
      const position = sub.position;
      if (position && position.epoch === epoch && offset <= position.offset) return;
      sub.position = { epoch, offset };
    }
    const meta: MessageMeta = { topic: sub?.topic ?? '', offset, epoch, recovered };
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
    const message = parseServerMessage(text);
    if (!message) {
      this.emit('error', new DuplexError('E_BAD_REQUEST', 'malformed message from the server'));
      return;
    }
    switch (message.type) {
      case 'reply':
      case 'error': {
        const request = typeof message.id === 'number' ? this.requests.get(message.id) : undefined;
        if (message.type === 'reply') {
          if (!request) return;
          this.settle(request);
          request.resolve(message.result);
          return;
        }
        const error = new DuplexError(message.code, message.message);
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
        // A message for a topic still being (re)subscribed waits for the reply's position: the
        // server sends the reply first, so this only happens for server-side subscriptions.
        this.deliver(sub, message.offset, message.epoch, message.data, false);
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

  private request(body: Record<string, Json>, queue: boolean): Promise<Record<string, unknown>> {
    if (this._state === 'closed') return Promise.reject(new DuplexError('E_CLOSED', 'the client is closed'));
    const id = this.nextId++;
    const text = JSON.stringify({ ...body, id });
    return new Promise((resolve, reject) => {
      const request: Pending = { id, text, resolve, reject, timer: undefined, sent: false };
      if (this.ready || body['type'] === 'connect') {
        this.requests.set(id, request);
        this.transmit(request);
      } else if (!queue) {
        reject(new DuplexError('E_CONNECTION_LOST', 'not connected'));
      } else if (this.queue.length >= (this.options.maxQueuedRequests ?? 500)) {
        reject(new DuplexError('E_QUEUE_FULL', 'too many requests wait for a connection'));
      } else {
        this.requests.set(id, request);
        this.queue.push(request);
      }
    });
  }

  private transmit(request: Pending): void {
    request.sent = true;
    const timeout = this.options.requestTimeout ?? 10_000;
    request.timer = setTimeout(() => {
      this.settle(request);
      request.reject(new DuplexError('E_TIMEOUT', `no answer within ${timeout} ms`));
    }, timeout);
    const socket = this.socket;
    if (socket && socket.readyState === OPEN) socket.send(request.text);
  }

  private settle(request: Pending): void {
    if (request.timer) clearTimeout(request.timer);
    this.requests.delete(request.id);
  }

  private stop(error: DuplexError): void {
    if (this._state === 'closed') return;
    this.ready = false;
    this.setState('closed');
    for (const request of [...this.requests.values()]) {
      this.settle(request);
      request.reject(error);
    }
    this.queue = [];
    for (const sub of this.subs.values()) for (const waiter of sub.waiters.splice(0)) waiter.reject(error);
  }

  private setState(state: DuplexState): void {
    if (this._state === state || this._state === 'closed') return;
    this._state = state;
    this.emit('state', state);
  }

  private emit<K extends keyof DuplexEvents>(event: K, ...args: DuplexEvents[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as unknown as Listener<K>)(...args);
      } catch (error) {
        if (event !== 'error') this.emit('error', error instanceof Error ? error : new Error(String(error)));
        else console.error(error);
      }
    }
  }
}
