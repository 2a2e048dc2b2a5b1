/**
 * The client side of the hub protocol (`docs/protocol.md`), shared by the Node `HubClient`
 * (`./client.ts`) and the browser `DuplexClient` (`../browser/client.ts`): request ids and
 * acknowledgements with timeouts, the queue of requests waiting for a connection, `connect`,
 * subscriptions restored after every reconnection with recovery from the last offset and epoch
 * seen (each publication delivered once, in order, or a `gap` event), presence, and events.
 *
 * It uses web-standard APIs only (timers, Promise, Map, JSON) and `wire.ts`, so browsers load
 * it as a plain ES module. The connection is the subclass's: it reconnects by itself (with its
 * own backoff) and reports to the core through the protected methods `connectionOpened`,
 * `receive`, `connectionLost`, `reconnecting` and `stop`; the core writes through a
 * `HubTransport`.
 */
import type { Json, PresenceMember } from './broker.js';
import {
  parseServerMessage,
  readPresenceResult,
  readSubscribeResult,
  type ConnectResult,
  type GapReason,
  type PublishResult,
  type StreamPosition,
  type SubscribeResult,
} from './wire.js';

/** What a subscriber learns about each publication. */
export interface MessageMeta {
  /** The topic it was published to. */
  readonly topic: string;
  /** Its offset in `epoch`; remembered per topic, recovery after a reconnection starts after it. */
  readonly offset: number;
  /** The epoch of the topic's history it belongs to. */
  readonly epoch: string;
  /** True if it came from history (on subscribe with `from`, or after a reconnection) rather than live. */
  readonly recovered: boolean;
}

/** Called for each publication of a subscribed topic, in offset order. */
export type MessageListener = (data: Json, meta: MessageMeta) => void;

/** Publications were lost for this client for good (`offset` is the position after the loss). */
export interface GapInfo {
  /** The topic that lost publications. */
  readonly topic: string;
  /** 'epoch changed' (the broker lost the topic's history) or 'too old' (history no longer reaches back). */
  readonly reason: GapReason;
  /** The epoch the client continues in. */
  readonly epoch: string;
  /** The offset the client continues after: what came before it and was not delivered is gone. */
  readonly offset: number;
}

/** Where a client is: `Open` is its name for connected and authenticated ('connected', 'open'). */
export type ClientState<Open extends string> = 'connecting' | Open | 'reconnecting' | 'closed';

/** The events every hub client emits (a client may add its own) and their listeners' arguments. */
export interface CoreEvents<State extends string> {
  /** The state changed. */
  state: [state: State];
  /** Connected and authenticated (first time and after each reconnection); subscriptions are being restored. */
  connected: [info: ConnectResult];
  /** Any publication of any topic (after its topic's listener), including topics subscribed by server code. */
  message: [data: Json, meta: MessageMeta];
  /** A message to this connection, its user, or everyone (`sendToConnection`/`sendToUser`/`broadcast`). */
  push: [data: Json];
  /** A connection joined a subscribed topic's presence (not sent for this client's own join). */
  join: [topic: string, member: PresenceMember];
  /** A connection left a subscribed topic's presence (also when its node died; not sent for this client's own leave). */
  leave: [topic: string, member: PresenceMember];
  /** Publications of a topic were lost (history too short, or the broker lost it). */
  gap: [info: GapInfo];
  /** An error not tied to a request (a server error without id, a failed connect, a listener that threw). */
  error: [error: Error];
}

/** An error with a protocol code (E_FORBIDDEN, E_TIMEOUT, E_CONNECTION_LOST, E_CLOSED, …). */
export interface CodedError extends Error {
  readonly code: string;
}

/** Where the core writes: the current connection of a transport that reconnects by itself. */
export interface HubTransport {
  /** Send a text message on the open connection. */
  send(text: string): void;
  /** Close for good (code 1000), no reconnection. */
  close(): void;
  /** Drop the current connection so that the transport reconnects (e.g. the token could not be had). */
  drop(): void;
}

/** How a client names and words things (the Node and browser clients differ). */
export interface CoreConfig<Open extends string, Err extends CodedError> {
  /** The state name once connected and authenticated ('connected', 'open'). */
  readonly openState: Open;
  /** Makes the client's error class. */
  readonly error: (code: string, message: string) => Err;
  /** The token sent in the `connect` message, if any. */
  readonly token: () => Promise<string | undefined>;
  readonly requestTimeout: number;
  readonly maxQueuedRequests: number;
  /** Emit `error` for a refused first subscription too (it also rejects `subscribe`), not only for resubscriptions. */
  readonly emitAllSubscribeErrors: boolean;
}

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /** Start from this position: publications after it are delivered from history first (`recovered: true`). */
  from?: StreamPosition;
  /** Recover what was missed after a reconnection (default true; false for ephemeral topics such as typing indicators). */
  recover?: boolean;
}

/** A request waiting for its answer. */
interface Pending {
  readonly id: number;
  readonly text: string;
  readonly resolve: (result: Record<string, unknown>) => void;
  readonly reject: (error: CodedError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  sent: boolean;
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
  waiters: Array<{ resolve: (result: SubscribeResult) => void; reject: (error: CodedError) => void }>;
}

type AnyListener = (...args: never[]) => void;
/** Each event's listener arguments, as a tuple. */
type EventMap<Events> = { [K in keyof Events]: unknown[] };

const toError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

/** The protocol logic of a hub client; subclasses bring the connection. */
export class HubClientCore<Open extends string, Events extends CoreEvents<ClientState<Open>> & EventMap<Events>, Err extends CodedError> {
  /** The id the server gave the current connection (undefined while not connected). */
  connId: string | undefined;
  /** The user id the server authenticated (undefined for anonymous). */
  userId: string | undefined;

  /** Where the core writes; set by the subclass, cleared on close. */
  protected transport: HubTransport | undefined;
  /** True once `connect` was answered on the current connection. */
  protected ready = false;

  private readonly config: CoreConfig<Open, Err>;
  private readonly listeners = new Map<PropertyKey, Set<AnyListener>>();
  private readonly subs = new Map<string, Sub>();
  private readonly requests = new Map<number, Pending>();
  /** Requests waiting for the next connection, oldest first. */
  private queue: Pending[] = [];
  private nextId = 1;
  private _state: ClientState<Open> = 'connecting';
  private readyWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  constructor(config: CoreConfig<Open, Err>) {
    this.config = config;
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
   */
  subscribe(topic: string, listener?: MessageListener, options: SubscribeOptions = {}): Promise<SubscribeResult> {
    if (this.isClosed()) return Promise.reject(this.config.error('E_CLOSED', 'the client is closed'));
    if (this.subs.has(topic)) return Promise.reject(this.config.error('E_ALREADY_SUBSCRIBED', `already subscribed to ${topic}`));
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
    for (const waiter of sub.waiters.splice(0)) waiter.reject(this.config.error('E_NOT_SUBSCRIBED', `unsubscribed from ${topic} before the server answered`));
    if (!this.ready) return;
    try {
      await this.request({ type: 'unsubscribe', topic }, false);
    } catch (error) {
      // Not subscribed on the server (never was, or the connection changed): the outcome is the same.
      const code = (error as Partial<CodedError>).code;
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
    if (!members) throw this.config.error('E_BAD_REQUEST', 'malformed presence reply');
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

  // ---- for the subclass: its connection's events -------------------------------------------------

  /** Resolves once connected (now, if it is); rejects if the client stops first. */
  protected whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.isClosed()) return Promise.reject(this.config.error('E_CLOSED', 'the client is closed'));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Whether the client stopped for good (`close()`, or the transport gave up). */
  protected isClosed(): boolean {
    return this._state === 'closed';
  }

  /** A connection opened: authenticate, restore subscriptions, then send what was queued. */
  protected async connectionOpened(): Promise<void> {
    this.ready = false;
    let info: ConnectResult;
    let token: string | undefined;
    try {
      token = await this.config.token();
    } catch (error) {
      // No token now (say the auth service is briefly down): try again on a new connection
      // rather than sit unauthenticated until the server gives up on us with 1008.
      if (!this.isClosed()) {
        this.reportError(error);
        this.transport?.drop();
      }
      return;
    }
    try {
      const result = await this.request({ type: 'connect', ...(token !== undefined ? { token } : {}) }, false);
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
    const queued = this.queue;
    this.queue = [];
    for (const request of queued) this.transmit(request);
    this.setState(this.config.openState);
    for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
    this.fire('connected', info);
  }

  /** The connection dropped: answers to requests already sent will not come; what was not sent stays queued. */
  protected connectionLost(): void {
    this.ready = false;
    this.connId = undefined;
    for (const sub of this.subs.values()) sub.requestId = undefined;
    for (const request of [...this.requests.values()]) {
      if (!request.sent) continue;
      this.settle(request);
      request.reject(this.config.error('E_CONNECTION_LOST', 'the connection dropped before the server answered'));
    }
  }

  /** The transport waits to reconnect. */
  protected reconnecting(): void {
    this.setState('reconnecting');
  }

  /** A text message arrived. */
  protected receive(text: string): void {
    const message = parseServerMessage(text);
    if (!message) {
      this.fire('error', this.config.error('E_BAD_REQUEST', 'malformed message from the server'));
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
        const error = this.config.error(message.code, message.message);
        if (!request) {
          this.fire('error', error);
          return;
        }
        this.settle(request);
        request.reject(error);
        return;
      }
      case 'message':
        // Topics subscribed by server code have no `Sub`: delivered to `message` listeners only.
        this.deliver(this.subs.get(message.topic), message.offset, message.epoch, message.data, false);
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
  protected stop(error: Err): boolean {
    if (this.isClosed()) return false;
    this.ready = false;
    this.setState('closed');
    for (const request of [...this.requests.values()]) {
      this.settle(request);
      request.reject(error);
    }
    this.queue = [];
    for (const sub of this.subs.values()) for (const waiter of sub.waiters.splice(0)) waiter.reject(error);
    for (const waiter of this.readyWaiters.splice(0)) waiter.reject(error);
    return true;
  }

  /** `close()` for the subclass: stop, then close the transport. */
  protected shutdown(): void {
    const transport = this.transport;
    this.transport = undefined;
    this.stop(this.config.error('E_CLOSED', 'the client was closed'));
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
    const id = this.nextId++;
    sub.requestId = id;
    const text = JSON.stringify({ type: 'subscribe', id, topic: sub.topic, ...(recover ? { recover } : {}) });
    const pending: Pending = {
      id,
      text,
      timer: undefined,
      sent: false,
      resolve: (result) => this.onSubscribed(sub, id, result, recover !== undefined),
      reject: (error) => {
        if (sub.requestId !== id) return;
        sub.requestId = undefined;
        if (error.code === 'E_CONNECTION_LOST') return; // resubscribed on the next connection
        if (this.subs.get(sub.topic) === sub) this.subs.delete(sub.topic);
        for (const waiter of sub.waiters.splice(0)) waiter.reject(error);
        if (this.config.emitAllSubscribeErrors || sub.position) this.fire('error', error);
      },
    };
    this.requests.set(id, pending);
    this.transmit(pending);
  }

  private onSubscribed(sub: Sub, id: number, raw: Record<string, unknown>, recovering: boolean): void {
    if (sub.requestId !== id || this.subs.get(sub.topic) !== sub) return;
    sub.requestId = undefined;
    const result = readSubscribeResult(raw);
    if (!result) {
      this.fire('error', this.config.error('E_BAD_REQUEST', `malformed subscribe reply for ${sub.topic}`));
      return;
    }
    sub.answered = true;
    if (!recovering) sub.position = undefined;
    if (result.recovered === true && result.publications) {
      for (const p of result.publications) this.deliver(sub, p.offset, result.epoch, p.data, true);
    } else if (result.recovered === false && recovering) {
      this.fire('gap', { topic: sub.topic, reason: result.reason ?? 'too old', epoch: result.epoch, offset: result.offset });
    }
    const same = sub.position?.epoch === result.epoch;
    sub.position = { epoch: result.epoch, offset: same ? Math.max(result.offset, sub.position!.offset) : result.offset };
    for (const waiter of sub.waiters.splice(0)) waiter.resolve(result);
  }

  /** Deliver a publication once: an offset at or below the last seen (same epoch) is a duplicate. */
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
        this.reportError(error);
      }
    }
    this.fire('message', data, meta);
  }

  /**
   * Send a request and wait for its answer. While not connected it waits in the queue if
   * `queue` (else fails with E_CONNECTION_LOST); the timeout runs from when it is sent.
   */
  private request(body: Record<string, Json>, queue: boolean): Promise<Record<string, unknown>> {
    if (this.isClosed()) return Promise.reject(this.config.error('E_CLOSED', 'the client is closed'));
    const id = this.nextId++;
    const text = JSON.stringify({ ...body, id });
    return new Promise((resolve, reject) => {
      const request: Pending = { id, text, resolve, reject, timer: undefined, sent: false };
      const max = this.config.maxQueuedRequests;
      if (this.ready || body['type'] === 'connect') {
        this.requests.set(id, request);
        this.transmit(request);
      } else if (!queue) {
        reject(this.config.error('E_CONNECTION_LOST', 'not connected'));
      } else if (this.queue.length >= max) {
        reject(this.config.error('E_QUEUE_FULL', `more than ${max} requests wait for a connection`));
      } else {
        this.requests.set(id, request);
        this.queue.push(request);
      }
    });
  }

  private transmit(request: Pending): void {
    request.sent = true;
    const timeout = this.config.requestTimeout;
    request.timer = setTimeout(() => {
      this.settle(request);
      request.reject(this.config.error('E_TIMEOUT', `no answer within ${timeout} ms`));
    }, timeout);
    this.transport?.send(request.text);
  }

  private settle(request: Pending): void {
    if (request.timer) clearTimeout(request.timer);
    this.requests.delete(request.id);
  }
}
