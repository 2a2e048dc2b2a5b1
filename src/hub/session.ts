/**
 * One hub connection's session: who it is (authenticated or not, as which user), its
 * subscriptions, and its requests — validated, answered in the order they came (a publish sent
 * after a subscribe is handled after it, an unsubscribe never overtakes the subscribe it undoes),
 * at most `maxPendingRequests` waiting at once — and the dispatch of each request to its handler.
 */
import { CloseCode } from '../protocol/constants.js';
import type { Logger } from '../node/logger.js';
import type { MessageData } from '../node/handlers.js';
import type { WebSocket } from '../node/websocket.js';
import type { Broker, HistoryOptions, Json, PresenceMember, Publication } from './broker.js';
import { handshakeHeaders, type HubAuth, type HubIdentity } from './auth.js';
import { HubError, errorMessage, type Refusal } from './errors.js';
import type { HubConnectAnswer, HubContext, HubOptions, HubPublishRewrite, HubRpcHandler } from './hub.js';
import type { HubCounters, Subscription, Subscriptions } from './subscriptions.js';
import {
  EMPTY_RESULT,
  AUTH_EXPIRED_CLOSE_CODE,
  RESERVED_PREFIX,
  WIRE_LIMITS,
  encodeConnectResult,
  encodeError,
  encodePresenceResult,
  encodePublishResult,
  encodeReply,
  encodeRpcResult,
  type ClientRequest,
  type HubErrorCode,
  type RequestId,
  type StreamPosition,
} from './wire.js';
import { parseClientRequest } from './parse-request.js';

/** The per-connection limits of a hub (from its options, with their defaults). */
export interface SessionLimits {
  /** Largest inbound hub message, bytes. */
  readonly maxMessageSize: number;
  /** Most subscriptions per connection. */
  readonly maxSubscriptions: number;
  /** Requests a connection may have waiting for an answer. */
  readonly maxPending: number;
  /** Invalid messages tolerated per connection before it is closed with 1008. */
  readonly maxInvalid: number;
}

/** What a session needs of its hub. */
export interface SessionHost<User extends HubIdentity> {
  readonly nodeId: string;
  readonly broker: Broker;
  readonly logger: Logger;
  readonly auth: HubAuth<User>;
  readonly subscriptions: Subscriptions<User>;
  readonly counters: HubCounters;
  readonly limits: SessionLimits;
  /** The hub's options, read when used: `authorize`, `allowClientPublish`, `connect`, `rpcFallback`. */
  readonly options: Pick<HubOptions<User>, 'authorize' | 'allowClientPublish' | 'connect' | 'rpcFallback'>;
  /** The handler `hub.rpc()` registered for `method`, if any. */
  rpcHandler(method: string): HubRpcHandler<User> | undefined;
  /** How long an RPC handler may take, ms. */
  readonly rpcTimeout: number;
  /** Whether the hub is closed (requests are then refused with E_UNAVAILABLE). */
  isClosed(): boolean;
  /** Start the hub (idempotent); rejects if its broker cannot start. */
  start(): Promise<void>;
  /** The session authenticated (as `user`, or anonymously): register it for its user's messages. */
  admit(session: Session<User>, user: User | undefined): void;
  /** The history retention of `topic`. */
  historyOf(topic: string): HistoryOptions;
}

/** One hub connection: what authorisation hooks see as its `HubContext`. */
export class Session<User extends HubIdentity> implements HubContext<User> {
  user: User | undefined;
  authenticated = false;
  /** Resolves once the connection's user topic is subscribed (so `sendToUser` reaches it). */
  registered: Promise<void> = Promise.resolve();
  /** Its subscriptions, by topic. */
  readonly subs = new Map<string, Subscription<User>>();
  /** The socket is closed (or the hub closing): nothing more is sent or handled. */
  closed = false;
  readonly #host: SessionHost<User>;
  #invalid = 0;
  #pending = 0;
  #chain: Promise<void> = Promise.resolve();
  #connectTimer: NodeJS.Timeout | undefined;
  /** Closes the connection when its connect hook's authentication expires. */
  #expiryTimer: NodeJS.Timeout | undefined;

  /** The handshake headers kept for the hooks. */
  get headers(): Readonly<Record<string, string>> {
    return handshakeHeaders(this.ws.data);
  }

  constructor(
    readonly connId: string,
    readonly ws: WebSocket<unknown>,
    host: SessionHost<User>,
  ) {
    this.#host = host;
  }

  /** Close the connection with 1008 unless it authenticates (sends `connect` with a valid token) within `ms`. */
  awaitConnect(ms: number): void {
    this.#connectTimer = setTimeout(() => {
      if (!this.authenticated && !this.closed) this.ws.close(CloseCode.PolicyViolation, 'no connect message with a valid token in time');
    }, ms);
    this.#connectTimer.unref();
  }

  /** The connection is authenticated (as `user`, or anonymously). */
  admitted(user: User | undefined): void {
    this.authenticated = true;
    this.user = user;
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
  }

  /** The session is over (its socket closed, or the hub closing). False if it already was. */
  end(): boolean {
    if (this.closed) return false;
    this.closed = true;
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    return true;
  }

  /** A message from the client: validated, then queued behind the connection's earlier requests. */
  receive(data: MessageData, isBinary: boolean): void {
    const { limits, logger } = this.#host;
    if (isBinary || typeof data !== 'string') {
      this.#reject(undefined, 'E_BAD_REQUEST', 'hub messages are JSON text; binary messages are not accepted');
      return;
    }
    // Code units are at most 3 UTF-8 bytes each: count bytes only when it might matter.
    if (data.length * 3 > limits.maxMessageSize && Buffer.byteLength(data) > limits.maxMessageSize) {
      this.#reject(undefined, 'E_TOO_LARGE', `message is larger than ${limits.maxMessageSize} bytes`);
      return;
    }
    const parsed = parseClientRequest(data, { maxTopicLength: WIRE_LIMITS.maxTopicLength, maxDataDepth: WIRE_LIMITS.maxDataDepth });
    if (!parsed.ok) {
      this.#reject(parsed.error.id, parsed.error.code, parsed.error.message);
      return;
    }
    const request = parsed.value;
    if (!this.authenticated && request.type !== 'connect') {
      this.#reject(request.id, 'E_UNAUTHORIZED', 'send connect with a token first');
      return;
    }
    if (this.#pending >= limits.maxPending) {
      this.replyError(request.id, 'E_BUSY', `more than ${limits.maxPending} requests waiting for an answer`);
      return;
    }
    this.#pending++;
    this.#chain = this.#chain
      .then(() => this.#handle(request))
      .catch((error: unknown) => {
        logger.error({ conn: this.connId, type: request.type, err: errorMessage(error) }, 'hub request failed');
        this.replyError(request.id, 'E_INTERNAL', 'internal error');
      })
      .finally(() => this.#pending--);
  }

  /** Answer request `id` (nothing is sent for a request without an id). */
  reply(id: RequestId | undefined, resultJson: string): void {
    if (id !== undefined && !this.closed) this.ws.send(encodeReply(id, resultJson));
  }

  /** Answer with an error (also for a request without an id). */
  replyError(id: RequestId | undefined, code: HubErrorCode, message: string): void {
    if (!this.closed) this.ws.send(encodeError(id, code, message));
  }

  /** An invalid message: answer with an error; close with 1008 after `maxInvalidMessages`. */
  #reject(id: RequestId | undefined, code: HubErrorCode, message: string): void {
    this.#host.counters.invalidMessages++;
    this.#invalid++;
    this.replyError(id, code, message);
    if (this.#invalid >= this.#host.limits.maxInvalid) {
      this.#host.logger.warn({ conn: this.connId, remote: this.ws.remoteAddress }, `closing after ${this.#invalid} invalid messages`);
      this.ws.close(CloseCode.PolicyViolation, 'too many invalid messages');
    }
  }

  async #handle(request: ClientRequest): Promise<void> {
    if (this.closed) return;
    const host = this.#host;
    if (host.isClosed()) {
      this.replyError(request.id, 'E_UNAVAILABLE', 'the hub is closed');
      return;
    }
    try {
      await host.start();
    } catch (error) {
      host.logger.error({ err: errorMessage(error) }, 'hub could not start its broker');
      this.replyError(request.id, 'E_UNAVAILABLE', 'the broker is not available');
      return;
    }
    switch (request.type) {
      case 'connect':
        return this.#connect(request.id, request.token, request.data);
      case 'ping':
        return this.reply(request.id, EMPTY_RESULT);
      case 'subscribe':
        return this.#subscribe(request.id, request.topic, request.recover);
      case 'unsubscribe': {
        const sub = this.subs.get(request.topic);
        if (!sub) return this.replyError(request.id, 'E_NOT_SUBSCRIBED', `not subscribed to ${request.topic}`);
        host.subscriptions.remove(sub);
        return this.reply(request.id, EMPTY_RESULT);
      }
      case 'publish':
        return this.#publish(request.id, request.topic, request.data, request.excludeSelf ?? false);
      case 'presence':
        return this.#presence(request.id, request.topic);
      case 'rpc':
        // Started in order, answered when done: the requests after it do not wait for it. It
        // keeps a pending slot of its own until answered, so maxPendingRequests bounds RPCs too.
        this.#pending++;
        void this.#rpc(request.id!, request.method, request.params ?? null).finally(() => this.#pending--);
        return;
    }
  }

  async #connect(id: RequestId | undefined, token: string | undefined, data: Json | undefined): Promise<void> {
    const hook = this.#host.options.connect;
    if (hook && !this.authenticated && (token === undefined || !this.#host.auth.acceptsTokens)) return this.#connectByHook(id, token, data);
    if (token !== undefined) {
      const auth = this.#host.auth;
      if (!auth.acceptsTokens) return this.replyError(id, 'E_BAD_REQUEST', 'this hub does not accept tokens');
      const verified = await auth.verify(token);
      if ('refused' in verified) {
        this.replyError(id, 'E_UNAUTHORIZED', verified.refused.message);
        // A client with a bad token will not get better by retrying on this connection.
        if (!this.authenticated) this.ws.close(CloseCode.PolicyViolation, 'authentication failed');
        return;
      }
      const user = verified.user;
      if (this.closed) return;
      if (this.authenticated && this.user?.id !== user.id) {
        return this.replyError(id, 'E_FORBIDDEN', 'a connection cannot change its user; reconnect instead');
      }
      if (!this.authenticated || this.user === undefined) this.#host.admit(this, user);
    } else if (!this.authenticated) {
      return this.#reject(id, 'E_UNAUTHORIZED', 'a token is required (in the handshake or in connect)');
    }
    await this.registered;
    this.reply(id, encodeConnectResult(this.connId, this.user?.id, this.#host.nodeId));
  }

  /**
   * Ask the connect hook who this connection is. A refusal closes the connection: with 1008
   * (E_UNAUTHORIZED, E_FORBIDDEN: its client stops), or 1013 when the hook could not decide now
   * (E_UNAVAILABLE: its client retries later); an unexpected throw is E_INTERNAL and 1011.
   */
  async #connectByHook(id: RequestId | undefined, token: string | undefined, data: Json | undefined): Promise<void> {
    const host = this.#host;
    let answer: HubConnectAnswer<User>;
    try {
      answer = await host.options.connect!.authenticate({ connId: this.connId, remoteAddress: this.ws.remoteAddress, headers: handshakeHeaders(this.ws.data), token, data });
      if (typeof answer !== 'object' || answer === null || typeof answer.user !== 'object' || answer.user === null) throw new TypeError('connect hook answered without a user object');
    } catch (error) {
      if (this.closed) return;
      if (error instanceof HubError && error.code !== 'E_INTERNAL') {
        const retry = error.code === 'E_UNAVAILABLE';
        // A backend hook has logged its own failure already; this line ties it to the connection.
        host.logger.info({ conn: this.connId, remote: this.ws.remoteAddress, code: error.code, err: error.message }, 'connect hook refused the connection');
        this.replyError(id, error.code, error.message);
        this.ws.close(retry ? CloseCode.TryAgainLater : CloseCode.PolicyViolation, retry ? 'authentication unavailable, retry later' : 'authentication failed');
      } else {
        host.logger.error({ conn: this.connId, err: errorMessage(error) }, 'connect hook failed');
        this.replyError(id, 'E_INTERNAL', 'authentication failed on the server');
        this.ws.close(CloseCode.InternalError, 'authentication failed on the server');
      }
      return;
    }
    if (this.closed || this.authenticated) return;
    const expireAt = answer.expireAt;
    if (expireAt !== undefined) {
      const left = expireAt - Date.now();
      if (!(left > 0)) {
        this.replyError(id, 'E_UNAUTHORIZED', 'the authentication has already expired');
        this.ws.close(CloseCode.PolicyViolation, 'authentication expired');
        return;
      }
      // setTimeout holds at most 2^31-1 ms (24.8 days): a later expiry is re-armed when that passes.
      const arm = (ms: number): void => {
        this.#expiryTimer = setTimeout(() => {
          const rest = expireAt - Date.now();
          if (rest > 0) return arm(rest);
          if (!this.closed) this.ws.close(AUTH_EXPIRED_CLOSE_CODE, 'authentication expired');
        }, Math.min(ms, 2 ** 31 - 1));
        this.#expiryTimer.unref();
      };
      arm(left);
    }
    host.admit(this, answer.user);
    await this.registered;
    this.reply(id, encodeConnectResult(this.connId, this.user?.id, host.nodeId));
  }

  /**
   * Run an authorisation hook: true, its rewrite of the data, or a refusal. A `HubError` thrown
   * answers with its code (E_UNAVAILABLE from a backend that is down); any other throw refuses
   * (and is logged).
   */
  async #allowed<T>(check: (() => boolean | T | Promise<boolean | T>) | undefined, what: string, refusal: string): Promise<true | T | Refusal> {
    if (!check) return true;
    try {
      const verdict = await check();
      if (verdict === true || (typeof verdict === 'object' && verdict !== null)) return verdict as true | T;
    } catch (error) {
      if (error instanceof HubError) return { code: error.code, message: error.message };
      this.#host.logger.error({ conn: this.connId, err: errorMessage(error) }, `authorize.${what} threw; refusing`);
    }
    return { code: 'E_FORBIDDEN', message: refusal };
  }

  /** Refuse a reserved (`$…`) topic: true if it was one. */
  #reserved(id: RequestId | undefined, topic: string): boolean {
    if (!topic.startsWith(RESERVED_PREFIX)) return false;
    this.replyError(id, 'E_FORBIDDEN', `topics starting with ${RESERVED_PREFIX} are reserved`);
    return true;
  }

  /** May this connection read `topic` (subscribe, or see its presence)? True, or why not. */
  async #maySubscribe(topic: string, refusal: string): Promise<true | Refusal> {
    const authorize = this.#host.options.authorize?.subscribe;
    const verdict = await this.#allowed<Refusal>(authorize && (() => authorize(this, topic)), 'subscribe', refusal);
    // A subscribe hook allows with `true` only; an object it returns is not a rewrite.
    return verdict === true || 'code' in verdict ? verdict : { code: 'E_FORBIDDEN', message: refusal };
  }

  async #subscribe(id: RequestId | undefined, topic: string, recover: StreamPosition | undefined): Promise<void> {
    if (this.#reserved(id, topic)) return;
    if (recover && id === undefined) return this.#reject(id, 'E_BAD_REQUEST', 'subscribe with recover needs an id (recovered publications come in the reply)');
    if (this.subs.has(topic)) return this.replyError(id, 'E_ALREADY_SUBSCRIBED', `already subscribed to ${topic}`);
    const max = this.#host.limits.maxSubscriptions;
    if (this.subs.size >= max) return this.replyError(id, 'E_FORBIDDEN', `more than ${max} subscriptions`);
    const verdict = await this.#maySubscribe(topic, `not allowed to subscribe to ${topic}`);
    if (verdict !== true) return this.replyError(id, verdict.code, verdict.message);
    if (this.closed || this.subs.has(topic)) return;
    const refusal = await this.#host.subscriptions.add(this, topic, recover, id);
    if (refusal) this.replyError(id, refusal.code, refusal.message);
  }

  async #publish(id: RequestId | undefined, topic: string, data: Json, excludeSelf: boolean): Promise<void> {
    if (this.#reserved(id, topic)) return;
    const host = this.#host;
    if (host.options.allowClientPublish === false) return this.replyError(id, 'E_FORBIDDEN', 'clients may not publish on this hub');
    const authorize = host.options.authorize?.publish;
    const verdict = await this.#allowed<HubPublishRewrite | Refusal>(authorize && (() => authorize(this, topic, data)), 'publish', `not allowed to publish to ${topic}`);
    if (verdict !== true && 'code' in verdict) return this.replyError(id, verdict.code, verdict.message);
    if (verdict !== true) {
      if (!('data' in verdict)) return this.replyError(id, 'E_FORBIDDEN', `not allowed to publish to ${topic}`);
      data = verdict.data;
    }
    if (this.closed) return;
    let publication: Publication;
    try {
      // Serialised once here; every node and subscriber reuses this text.
      publication = await host.broker.publish(topic, JSON.stringify(data), host.historyOf(topic), excludeSelf ? this.connId : undefined);
    } catch (error) {
      host.logger.error({ conn: this.connId, topic, err: errorMessage(error) }, 'broker publish failed');
      return this.replyError(id, 'E_UNAVAILABLE', 'the broker could not accept the publication; retry');
    }
    this.reply(id, encodePublishResult(publication.offset, publication.epoch));
  }

  /** Call an RPC method (a `hub.rpc()` handler, else the fallback) within `rpcTimeout`, and answer. */
  async #rpc(id: RequestId, method: string, params: Json): Promise<void> {
    const host = this.#host;
    const handler = host.rpcHandler(method);
    const options = host.options;
    if (!handler && !options.rpcFallback) return this.replyError(id, 'E_NOT_FOUND', `no RPC method ${method}`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HubError('E_UNAVAILABLE', `RPC ${method} did not answer within ${host.rpcTimeout} ms`)), host.rpcTimeout);
    });
    try {
      const call = handler ? handler(this, params) : options.rpcFallback!(this, method, params);
      const answer = await Promise.race([call, timeout]);
      const json = JSON.stringify(answer ?? null);
      this.reply(id, encodeRpcResult(json));
    } catch (error) {
      const refusal = rpcRefusal(error);
      if (refusal) {
        if (refusal.code === 'E_UNAVAILABLE') host.logger.warn({ conn: this.connId, method, err: refusal.message }, 'RPC unavailable');
        return this.replyError(id, refusal.code, refusal.message);
      }
      host.logger.error({ conn: this.connId, method, err: errorMessage(error) }, 'RPC handler failed');
      this.replyError(id, 'E_INTERNAL', 'internal error');
    } finally {
      clearTimeout(timer);
    }
  }

  async #presence(id: RequestId | undefined, topic: string): Promise<void> {
    if (this.#reserved(id, topic)) return;
    // Seeing who is in a topic is as sensitive as reading it.
    if (!this.subs.has(topic)) {
      const verdict = await this.#maySubscribe(topic, `not allowed to see presence of ${topic}`);
      if (verdict !== true) return this.replyError(id, verdict.code, verdict.message);
    }
    let members: PresenceMember[];
    try {
      members = await this.#host.broker.presence(topic);
    } catch (error) {
      this.#host.logger.error({ topic, err: errorMessage(error) }, 'broker presence failed');
      return this.replyError(id, 'E_UNAVAILABLE', 'presence is not available; retry');
    }
    this.reply(id, encodePresenceResult(members));
  }
}

/** An RPC handler that throws this much is answered E_INTERNAL; a HubError keeps its code. */
function rpcRefusal(error: unknown): Refusal | undefined {
  return error instanceof HubError ? { code: error.code, message: error.message } : undefined;
}
