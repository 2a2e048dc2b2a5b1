/**
 * The real-time hub: topics with publish/subscribe, presence, per-topic history with recovery,
 * messages to one connection, one user or everyone — over the wire protocol of `wire.ts`, on
 * any number of nodes joined by a `Broker`.
 *
 * How a publication travels: `publish` (server code or a client) → broker (assigns offset and
 * epoch, keeps history, tells every subscribed node) → `onPublication` on each node → delivered
 * in offset order to the node's local subscribers: the `message` JSON is built once by string
 * concatenation around the already-serialised data, framed once (`prepareMessage`), and the same
 * bytes are written to every subscriber (`sendPrepared`, which applies the slow-consumer policy).
 *
 * What "nothing acknowledged is lost" rests on (after Centrifugo): the node tracks the last
 * offset it delivered per topic; a jump, or the broker's `onReconnect`, makes it fetch the
 * missing publications from history first — and when history cannot fill the hole, every
 * subscriber gets a `gap` message. A client that reconnects names its last offset and epoch and
 * gets what it missed, in order, before live messages, or is told why not.
 */
import { randomBytes } from 'node:crypto';
import { CloseCode } from '../protocol/constants.js';
import { HandshakeError } from '../protocol/errors.js';
import { silentLogger, type Logger } from '../node/logger.js';
import { corkLoopPass, prepareMessage, type MessageData, type WebSocket, type WebSocketHandlers } from '../node/websocket.js';
import type { Broker, BrokerNode, HistoryOptions, Json, PresenceEvent, PresenceMember, Publication } from './broker.js';
import { MemoryBroker } from './brokers/memory.js';
import { AuthError, createJwtVerifier, tokenFromRequest, type HubIdentity, type JwtOptions, type TokenVerifier } from './auth.js';
import {
  PROTOCOL_VERSION,
  RESERVED_PREFIX,
  WIRE_LIMITS,
  encodeError,
  encodeGap,
  encodeMessage,
  encodePresenceEvent,
  encodePush,
  encodeReply,
  encodeWirePublication,
  parseClientRequest,
  topicProblem,
  type ClientRequest,
  type GapReason,
  type HubErrorCode,
  type RequestId,
  type StreamPosition,
} from './wire.js';

/** Default history retention: the last 100 publications, at most 5 minutes old. */
export const DEFAULT_HISTORY: HistoryOptions = { size: 100, ttl: 5 * 60_000 };

/** Reserved topics: every node's broadcast topic, a user's topic, a node's own topic. */
const ALL_TOPIC = '$all';
const USER_PREFIX = '$user:';
const NODE_PREFIX = '$node:';
/** Reserved topics keep no history: their messages are not recoverable. */
const NO_HISTORY: HistoryOptions = { size: 0, ttl: 0 };
/** A failed history fetch while filling a gap is retried this many times, after 100, 200, 400 … ms (3.1 s in all). */
const HISTORY_RETRIES = 5;
const HISTORY_RETRY_DELAY = 100;
/** Ask the broker for a topic's position only: nothing is retained after this offset. */
const POSITION_ONLY = Number.MAX_SAFE_INTEGER;

/** What an authorisation hook sees of the connection asking. */
export interface HubContext<User extends HubIdentity = HubIdentity> {
  /** The authenticated user (undefined for an anonymous connection). */
  readonly user: User | undefined;
  /** The connection's id, unique across nodes. */
  readonly connId: string;
  /** The WebSocket. */
  readonly ws: WebSocket<unknown>;
}

/** Per-topic permission checks, decided by server code. Each may be async; false (or a throw) refuses. */
export interface HubAuthorize<User extends HubIdentity = HubIdentity> {
  /**
   * May this connection subscribe to `topic`? Also asked for `presence` of a topic the
   * connection is not subscribed to: seeing who is in a topic is as sensitive as reading it.
   * Only `true` allows; a refusal is answered with E_FORBIDDEN.
   */
  subscribe?(ctx: HubContext<User>, topic: string): boolean | Promise<boolean>;
  /** May this connection publish `data` to `topic`? Only `true` allows; a refusal is answered with E_FORBIDDEN. */
  publish?(ctx: HubContext<User>, topic: string, data: Json): boolean | Promise<boolean>;
}

/** How connections authenticate. */
export interface HubAuthOptions<User extends HubIdentity = HubIdentity> {
  /** Verify JWTs (HS256 secret or RS256/ES256 public key). */
  jwt?: JwtOptions;
  /** Or verify tokens yourself: return the identity, throw (e.g. `AuthError`) to refuse. */
  verify?(token: string): User | Promise<User>;
  /**
   * Refuse a handshake that carries no token with 401 (default false: the connection may
   * still authenticate with a `connect` message within `connectTimeout`).
   */
  requireHandshakeToken?: boolean;
}

/** Options of a `Hub`. */
export interface HubOptions<User extends HubIdentity = HubIdentity> {
  /** Carries publications, history and presence between nodes (default: a new `MemoryBroker`). */
  broker?: Broker;
  /** This node's id, unique across the cluster (default: random). */
  nodeId?: string;
  /** History retention, for every topic or per topic (default: 100 publications / 5 minutes). */
  history?: HistoryOptions | ((topic: string) => HistoryOptions);
  /** Permission checks for client subscribe/publish/presence (default: everything allowed). */
  authorize?: HubAuthorize<User>;
  /** Let clients publish (default true); false answers client publishes with E_FORBIDDEN. */
  allowClientPublish?: boolean;
  /** Track presence and announce join/leave (default true). */
  presence?: boolean;
  /** Token authentication (JWT or your own verifier). */
  auth?: HubAuthOptions<User>;
  /**
   * Admit connections without a token, as anonymous (no user id). An explicit choice, for demos
   * and public read-only feeds; without it (and without `auth`) the constructor throws.
   */
  anonymous?: boolean;
  /** Presence info of a connection (default: the user's `info`). */
  presenceInfo?(ctx: HubContext<User>): Json | undefined;
  /** Largest inbound hub message, bytes (default 64 KiB); more → E_TOO_LARGE. */
  maxMessageSize?: number;
  /** Most subscriptions per connection (default 1000). */
  maxSubscriptions?: number;
  /** Requests a connection may have waiting for an answer (default 256); more → E_BUSY. */
  maxPendingRequests?: number;
  /** Invalid messages tolerated per connection before it is closed with 1008 (default 100). */
  maxInvalidMessages?: number;
  /** How long a connection that did not authenticate at the handshake has to send `connect`, ms (default 10 s). */
  connectTimeout?: number;
  /** Where log lines go (default: nowhere). */
  logger?: Logger;
}

/** What the hub keeps as `ws.data`: `hub.authenticate` returns it; any upgrade hook may. */
export interface HubSocketData<User extends HubIdentity = HubIdentity> {
  /** The user the handshake's token authenticated; undefined without one (a `connect` message may still authenticate). */
  readonly user: User | undefined;
}

/** Counters of a hub node, from `hub.stats()`. */
export interface HubStats {
  /** Hub connections on this node. */
  connections: number;
  /** Topics this node is subscribed to at the broker (reserved ones excluded). */
  topics: number;
  /** Publications received from the broker. */
  publications: number;
  /** Outgoing `message`/`push` JSON texts built (one per publication, however many subscribers). */
  messagesBuilt: number;
  /** Messages written to subscribers. */
  deliveries: number;
  /** Publications fetched from history to fill a jump in offsets. */
  refetched: number;
  /** `gap` notices sent (to topics, not per subscriber). */
  gaps: number;
  /** Subscriptions with `recover` that got every missed publication from history. */
  recovered: number;
  /** Subscriptions with `recover` that could not be recovered (epoch changed, or history too short). */
  notRecovered: number;
  /** Invalid messages received. */
  invalidMessages: number;
}

/** A refused operation of the server-side API. */
export class HubError extends Error {
  /** Always `'HubError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'HubError';
  /**
   * Thrown by the server-side API (`publish`, `subscribe`, `sendToConnection`…).
   * @param message What was refused and why, for people.
   */
  constructor(
    /** The same code a client would get for the same refusal (e.g. E_BAD_REQUEST, E_FORBIDDEN, E_UNAVAILABLE). */
    readonly code: HubErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** One subscription of one connection. */
interface Sub<User extends HubIdentity> {
  readonly conn: Conn<User>;
  readonly topic: TopicState<User>;
  /** Deliveries at or below this offset were already sent (recovered from history). */
  after: number;
  /** While subscribing: live publications held until the reply has been sent. */
  buffer: Publication[] | undefined;
  /** The presence member, once joined (and the join's promise, so a leave follows it). */
  member: PresenceMember | undefined;
  joined: Promise<void> | undefined;
  removed: boolean;
}

/** A topic this node is subscribed to at the broker. */
class TopicState<User extends HubIdentity> {
  readonly json: string;
  readonly subs = new Set<Sub<User>>();
  /** Resolves once the broker subscription is made and the position is known. */
  ready!: Promise<void>;
  known = false;
  /** The last publication delivered: epoch and offset. */
  epoch = '';
  offset = 0;
  /** Publications that arrived out of order (or before the position was known). */
  pending: Publication[] = [];
  catchingUp = false;
  /** Another catch-up was asked for while one ran (broker reconnect). */
  again = false;
  closed = false;
  constructor(readonly name: string) {
    this.json = JSON.stringify(name);
  }
}

/** One hub connection. */
class Conn<User extends HubIdentity> implements HubContext<User> {
  user: User | undefined;
  authenticated = false;
  /** Resolves once the connection's user topic is subscribed (so `sendToUser` reaches it). */
  registered: Promise<void> = Promise.resolve();
  readonly subs = new Map<string, Sub<User>>();
  invalid = 0;
  pending = 0;
  chain: Promise<void> = Promise.resolve();
  closed = false;
  connectTimer: NodeJS.Timeout | undefined;
  constructor(
    readonly connId: string,
    readonly ws: WebSocket<unknown>,
  ) {}
}

function isHubSocketData(value: unknown): value is HubSocketData<HubIdentity> {
  return typeof value === 'object' && value !== null && 'user' in value;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A hub node. Mount `hub.handlers` on a `WebSocketServer` route (with `hub.authenticate` as
 * its upgrade hook for handshake tokens):
 *
 * ```ts
 * const hub = new Hub({ auth: { jwt: { secret } } });
 * await hub.start();
 * const server = new WebSocketServer({ handlers: hub.handlers, upgrade: hub.authenticate });
 * await server.listen(8080);
 * await hub.publish('news', { headline: 'duplex 1.0' });
 * ```
 */
export class Hub<User extends HubIdentity = HubIdentity> {
  /** This node's id. */
  readonly nodeId: string;
  /** The broker. */
  readonly broker: Broker;
  /** The callbacks to mount on a WebSocketServer route. */
  readonly handlers: WebSocketHandlers<HubSocketData<User>>;

  private readonly options: HubOptions<User>;
  private readonly logger: Logger;
  private readonly verifier: TokenVerifier<User> | undefined;
  private readonly anonymous: boolean;
  private readonly presenceOn: boolean;
  private readonly maxMessageSize: number;
  private readonly maxSubscriptions: number;
  private readonly maxPending: number;
  private readonly maxInvalid: number;
  private readonly connectTimeout: number;
  private readonly conns = new Map<WebSocket<unknown>, Conn<User>>();
  private readonly connsById = new Map<string, Conn<User>>();
  /** Local connections per user id, and the broker subscription to the user's topic. */
  private readonly userConns = new Map<string, { conns: Set<Conn<User>>; ready: Promise<void> }>();
  private readonly topics = new Map<string, TopicState<User>>();
  /** Broker subscribe/unsubscribe calls per topic, in order (an unsubscribe never overtakes a later subscribe). */
  private readonly brokerOps = new Map<string, Promise<void>>();
  private readonly counters: Omit<HubStats, 'connections' | 'topics'> = {
    publications: 0,
    messagesBuilt: 0,
    deliveries: 0,
    refetched: 0,
    gaps: 0,
    recovered: 0,
    notRecovered: 0,
    invalidMessages: 0,
  };
  private nextConn = 1;
  private starting: Promise<void> | undefined;
  private state: 'new' | 'started' | 'closed' = 'new';

  /**
   * A node that does nothing until `start()`. Options are read once, here.
   * @throws TypeError when neither `auth` nor `anonymous: true` is given, or `auth` has both `jwt` and `verify`.
   * @throws MissingPeerDependencyError with `auth.jwt` when the `jose` package is not installed.
   */
  constructor(options: HubOptions<User> = {}) {
    this.options = options;
    this.nodeId = options.nodeId ?? randomBytes(6).toString('hex');
    this.broker = options.broker ?? new MemoryBroker();
    this.logger = options.logger ?? silentLogger;
    this.anonymous = options.anonymous ?? false;
    this.presenceOn = options.presence ?? true;
    this.maxMessageSize = options.maxMessageSize ?? 64 * 1024;
    this.maxSubscriptions = options.maxSubscriptions ?? 1000;
    this.maxPending = options.maxPendingRequests ?? 256;
    this.maxInvalid = options.maxInvalidMessages ?? 100;
    this.connectTimeout = options.connectTimeout ?? 10_000;
    const auth = options.auth;
    if (auth?.jwt && auth.verify) throw new TypeError('hub auth: give jwt or verify, not both');
    if (auth?.verify) {
      const verify = auth.verify;
      this.verifier = async (token) => verify(token);
    } else if (auth?.jwt) {
      // The JWT identity is { id, info }; a hub with a richer User type supplies `verify` instead.
      this.verifier = createJwtVerifier(auth.jwt) as TokenVerifier<User>;
    }
    if (!this.verifier && !this.anonymous) {
      throw new TypeError('hub: configure auth (jwt or verify) or set anonymous: true to admit connections without a token');
    }
    this.handlers = {
      open: (ws) => this.onOpen(ws as WebSocket<unknown>),
      message: (ws, data, isBinary) => this.onMessage(ws as WebSocket<unknown>, data, isBinary),
      close: (ws) => this.onClose(ws as WebSocket<unknown>),
    };
  }

  // ---- life cycle ------------------------------------------------------------------------------

  /** Connect the broker and subscribe this node's reserved topics. Idempotent. */
  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const node: BrokerNode = {
      id: this.nodeId,
      onPublication: (publication) => {
        // Every publication delivered in this loop pass reaches each socket in one write.
        corkLoopPass();
        this.onPublication(publication);
      },
      onPresence: (event) => {
        // A burst of joins and leaves reaches each subscriber in one write per loop pass too.
        corkLoopPass();
        this.onPresence(event);
      },
      onReconnect: () => this.onBrokerReconnect(),
      onState: (state) => this.logger.info({ node: this.nodeId, broker: this.broker.name, state }, `broker ${state}`),
    };
    await this.broker.start(node);
    await Promise.all([this.brokerOp(ALL_TOPIC, 'subscribe'), this.brokerOp(NODE_PREFIX + this.nodeId, 'subscribe')]);
    this.state = 'started';
  }

  /**
   * Stop: close this node's hub connections with 1001 (their presence is removed), then close
   * the broker. The WebSocketServer itself is yours to close.
   */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const conn of [...this.conns.values()]) {
      this.dropConnection(conn);
      conn.ws.close(CloseCode.GoingAway, 'hub closing');
    }
    await Promise.allSettled([...this.brokerOps.values()]);
    await this.broker.close();
  }

  /** Counters of this node. */
  stats(): HubStats {
    return { connections: this.conns.size, topics: this.topics.size, ...this.counters };
  }

  // ---- authentication ------------------------------------------------------------------------

  /**
   * The upgrade hook for a hub route: reads a bearer token from `Authorization: Bearer` or the
   * `token` query parameter and verifies it. A bad token → 401. No token → admitted without a
   * user (it must then send `connect` with a token, unless the hub is anonymous), or 401 with
   * `requireHandshakeToken`.
   *
   * ```ts
   * server.route('/hub', { handlers: hub.handlers, upgrade: hub.authenticate });
   * ```
   */
  readonly authenticate = async (ctx: { readonly headers: { readonly authorization?: string | undefined }; readonly query: URLSearchParams }): Promise<HubSocketData<User>> => {
    const token = tokenFromRequest(ctx.headers, ctx.query);
    const challenge = { 'WWW-Authenticate': 'Bearer' };
    if (token === undefined) {
      if (this.options.auth?.requireHandshakeToken) throw new HandshakeError('a bearer token is required', 401, challenge);
      return { user: undefined };
    }
    if (!this.verifier) throw new HandshakeError('this hub does not accept tokens', 401, challenge);
    try {
      return { user: await this.verifier(token) };
    } catch (error) {
      const reason = error instanceof AuthError ? error.message : 'token is invalid';
      if (!(error instanceof AuthError)) this.logger.warn({ err: errorMessage(error) }, 'token verifier failed');
      throw new HandshakeError(reason, 401, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    }
  };

  // ---- server-side API -----------------------------------------------------------------------

  /**
   * Publish `data` (any JSON value, serialised once here) to `topic`. Resolves with the
   * publication once the broker accepted it. `excludeConnId` keeps it from that connection.
   * @throws HubError E_BAD_REQUEST for an invalid or reserved topic.
   */
  async publish(topic: string, data: Json, options: { excludeConnId?: string } = {}): Promise<Publication> {
    const problem = topicProblem(topic, Infinity);
    if (problem) throw new HubError('E_BAD_REQUEST', problem);
    if (topic.startsWith(RESERVED_PREFIX)) throw new HubError('E_BAD_REQUEST', `topic ${topic} is reserved (topics starting with ${RESERVED_PREFIX})`);
    await this.start();
    return this.broker.publish(topic, JSON.stringify(data) ?? 'null', this.historyOf(topic), options.excludeConnId);
  }

  /** Subscribe a connection from server code (no authorisation check; the client gets `message`s for it). */
  async subscribe(ws: WebSocket<unknown>, topic: string): Promise<void> {
    const conn = this.conns.get(ws);
    if (!conn) throw new HubError('E_BAD_REQUEST', 'not a hub connection (mount hub.handlers on its route)');
    const problem = topicProblem(topic, Infinity);
    if (problem) throw new HubError('E_BAD_REQUEST', problem);
    if (conn.subs.has(topic)) return;
    await this.start();
    const outcome = await this.addSubscription(conn, topic, undefined, undefined);
    if (outcome.error) throw new HubError(outcome.error.code, outcome.error.message);
  }

  /** Unsubscribe a connection from server code. Resolves false if it was not subscribed. */
  async unsubscribe(ws: WebSocket<unknown>, topic: string): Promise<boolean> {
    const conn = this.conns.get(ws);
    const sub = conn?.subs.get(topic);
    if (!sub) return false;
    this.removeSubscription(sub);
    return true;
  }

  /** Send `data` to one connection, on whichever node it lives. */
  async sendToConnection(connId: string, data: Json): Promise<void> {
    const json = JSON.stringify(data) ?? 'null';
    const local = this.connsById.get(connId);
    if (local) {
      this.counters.messagesBuilt++;
      this.counters.deliveries++;
      local.ws.send(encodePush(json));
      return;
    }
    const dot = connId.lastIndexOf('.');
    if (dot <= 0) throw new HubError('E_BAD_REQUEST', `not a connection id: ${connId}`);
    await this.start();
    // To the owning node's own topic; the envelope names the connection.
    await this.broker.publish(NODE_PREFIX + connId.slice(0, dot), `[${JSON.stringify(connId)},${json}]`, NO_HISTORY);
  }

  /** Send `data` to every connection of a user, on every node. */
  async sendToUser(userId: string, data: Json): Promise<void> {
    await this.start();
    await this.broker.publish(USER_PREFIX + userId, JSON.stringify(data) ?? 'null', NO_HISTORY);
  }

  /** Send `data` to every hub connection on every node. */
  async broadcast(data: Json, options: { excludeConnId?: string } = {}): Promise<void> {
    await this.start();
    await this.broker.publish(ALL_TOPIC, JSON.stringify(data) ?? 'null', NO_HISTORY, options.excludeConnId);
  }

  /** Who is in `topic`, across all nodes. */
  async presence(topic: string): Promise<PresenceMember[]> {
    await this.start();
    return this.broker.presence(topic);
  }

  /** The hub id of a connection (undefined if it is not a hub connection). */
  connectionId(ws: WebSocket<unknown>): string | undefined {
    return this.conns.get(ws)?.connId;
  }

  // ---- connections -------------------------------------------------------------------------

  private onOpen(ws: WebSocket<unknown>): void {
    const conn = new Conn<User>(`${this.nodeId}.${this.nextConn++}`, ws);
    this.conns.set(ws, conn);
    this.connsById.set(conn.connId, conn);
    const data = ws.data;
    if (isHubSocketData(data) && data.user !== undefined) {
      this.admit(conn, data.user as User);
    } else if (this.anonymous) {
      this.admit(conn, undefined);
    } else {
      conn.connectTimer = setTimeout(() => {
        if (!conn.authenticated && !conn.closed) ws.close(CloseCode.PolicyViolation, 'no connect message with a valid token in time');
      }, this.connectTimeout);
      conn.connectTimer.unref();
    }
  }

  /** The connection is authenticated (as `user`, or anonymously). */
  private admit(conn: Conn<User>, user: User | undefined): void {
    conn.authenticated = true;
    conn.user = user;
    if (conn.connectTimer) clearTimeout(conn.connectTimer);
    const userId = user?.id;
    if (userId === undefined) return;
    let entry = this.userConns.get(userId);
    if (!entry) {
      const topic = USER_PREFIX + userId;
      const ready = this.start()
        .then(() => this.brokerOp(topic, 'subscribe'))
        .catch((error: unknown) => this.logger.warn({ user: userId, err: errorMessage(error) }, 'could not subscribe the user topic'));
      entry = { conns: new Set(), ready };
      this.userConns.set(userId, entry);
    }
    entry.conns.add(conn);
    conn.registered = entry.ready;
  }

  private onClose(ws: WebSocket<unknown>): void {
    const conn = this.conns.get(ws);
    if (conn) this.dropConnection(conn);
  }

  /** Forget a connection: its subscriptions (and presence), its user topic reference. */
  private dropConnection(conn: Conn<User>): void {
    if (conn.closed) return;
    conn.closed = true;
    if (conn.connectTimer) clearTimeout(conn.connectTimer);
    this.conns.delete(conn.ws);
    this.connsById.delete(conn.connId);
    for (const sub of [...conn.subs.values()]) this.removeSubscription(sub);
    const userId = conn.user?.id;
    if (userId !== undefined) {
      const entry = this.userConns.get(userId);
      if (entry?.conns.delete(conn) && entry.conns.size === 0) {
        this.userConns.delete(userId);
        if (this.state !== 'closed') this.brokerOp(USER_PREFIX + userId, 'unsubscribe').catch(() => {});
      }
    }
  }

  private onMessage(ws: WebSocket<unknown>, data: MessageData, isBinary: boolean): void {
    const conn = this.conns.get(ws);
    if (!conn || conn.closed) return;
    if (isBinary || typeof data !== 'string') {
      this.invalid(conn, undefined, 'E_BAD_REQUEST', 'hub messages are JSON text; binary messages are not accepted');
      return;
    }
    // Code units are at most 3 UTF-8 bytes each: count bytes only when it might matter.
    if (data.length * 3 > this.maxMessageSize && Buffer.byteLength(data) > this.maxMessageSize) {
      this.invalid(conn, undefined, 'E_TOO_LARGE', `message is larger than ${this.maxMessageSize} bytes`);
      return;
    }
    const parsed = parseClientRequest(data, { maxTopicLength: WIRE_LIMITS.maxTopicLength, maxDataDepth: WIRE_LIMITS.maxDataDepth });
    if (!parsed.ok) {
      this.invalid(conn, parsed.error.id, parsed.error.code, parsed.error.message);
      return;
    }
    const request = parsed.value;
    if (!conn.authenticated && request.type !== 'connect') {
      this.invalid(conn, request.id, 'E_UNAUTHORIZED', 'send connect with a token first');
      return;
    }
    if (conn.pending >= this.maxPending) {
      this.replyError(conn, request.id, 'E_BUSY', `more than ${this.maxPending} requests waiting for an answer`);
      return;
    }
    // Requests of one connection are handled in order: a publish sent after a subscribe is
    // handled after it, an unsubscribe never overtakes the subscribe it undoes.
    conn.pending++;
    conn.chain = conn.chain
      .then(() => this.handle(conn, request))
      .catch((error: unknown) => {
        this.logger.error({ conn: conn.connId, type: request.type, err: errorMessage(error) }, 'hub request failed');
        this.replyError(conn, request.id, 'E_INTERNAL', 'internal error');
      })
      .finally(() => conn.pending--);
  }

  /** An invalid message: answer with an error; close with 1008 after `maxInvalidMessages`. */
  private invalid(conn: Conn<User>, id: RequestId | undefined, code: HubErrorCode, message: string): void {
    this.counters.invalidMessages++;
    conn.invalid++;
    this.replyError(conn, id, code, message);
    if (conn.invalid >= this.maxInvalid) {
      this.logger.warn({ conn: conn.connId, remote: conn.ws.remoteAddress }, `closing after ${conn.invalid} invalid messages`);
      conn.ws.close(CloseCode.PolicyViolation, 'too many invalid messages');
    }
  }

  private replyError(conn: Conn<User>, id: RequestId | undefined, code: HubErrorCode, message: string): void {
    if (!conn.closed) conn.ws.send(encodeError(id, code, message));
  }

  private reply(conn: Conn<User>, id: RequestId | undefined, resultJson: string): void {
    if (id !== undefined && !conn.closed) conn.ws.send(encodeReply(id, resultJson));
  }

  private async handle(conn: Conn<User>, request: ClientRequest): Promise<void> {
    if (conn.closed) return;
    if (this.state === 'closed') {
      this.replyError(conn, request.id, 'E_UNAVAILABLE', 'the hub is closed');
      return;
    }
    try {
      await this.start();
    } catch (error) {
      this.logger.error({ err: errorMessage(error) }, 'hub could not start its broker');
      this.replyError(conn, request.id, 'E_UNAVAILABLE', 'the broker is not available');
      return;
    }
    switch (request.type) {
      case 'connect':
        return this.handleConnect(conn, request.id, request.token);
      case 'ping':
        return this.reply(conn, request.id, '{}');
      case 'subscribe':
        return this.handleSubscribe(conn, request.id, request.topic, request.recover);
      case 'unsubscribe': {
        const sub = conn.subs.get(request.topic);
        if (!sub) return this.replyError(conn, request.id, 'E_NOT_SUBSCRIBED', `not subscribed to ${request.topic}`);
        this.removeSubscription(sub);
        return this.reply(conn, request.id, '{}');
      }
      case 'publish':
        return this.handlePublish(conn, request.id, request.topic, request.data, request.excludeSelf ?? false);
      case 'presence':
        return this.handlePresence(conn, request.id, request.topic);
    }
  }

  private async handleConnect(conn: Conn<User>, id: RequestId | undefined, token: string | undefined): Promise<void> {
    if (token !== undefined) {
      if (!this.verifier) return this.replyError(conn, id, 'E_BAD_REQUEST', 'this hub does not accept tokens');
      let user: User;
      try {
        user = await this.verifier(token);
      } catch (error) {
        const reason = error instanceof AuthError ? error.message : 'token is invalid';
        this.replyError(conn, id, 'E_UNAUTHORIZED', reason);
        // A client with a bad token will not get better by retrying on this connection.
        if (!conn.authenticated) conn.ws.close(CloseCode.PolicyViolation, 'authentication failed');
        return;
      }
      if (conn.closed) return;
      if (conn.authenticated && conn.user?.id !== user.id) {
        return this.replyError(conn, id, 'E_FORBIDDEN', 'a connection cannot change its user; reconnect instead');
      }
      if (!conn.authenticated || conn.user === undefined) this.admit(conn, user);
    } else if (!conn.authenticated) {
      return this.invalid(conn, id, 'E_UNAUTHORIZED', 'a token is required (in the handshake or in connect)');
    }
    await conn.registered;
    const userId = conn.user?.id;
    const result = `{"connId":${JSON.stringify(conn.connId)},${userId === undefined ? '' : `"userId":${JSON.stringify(userId)},`}"node":${JSON.stringify(this.nodeId)},"version":${PROTOCOL_VERSION}}`;
    this.reply(conn, id, result);
  }

  /** Run an authorisation hook; a throw counts as a refusal (and is logged). */
  private async allowed(check: (() => boolean | Promise<boolean>) | undefined, conn: Conn<User>, what: string): Promise<boolean> {
    if (!check) return true;
    try {
      return (await check()) === true;
    } catch (error) {
      this.logger.error({ conn: conn.connId, err: errorMessage(error) }, `authorize.${what} threw; refusing`);
      return false;
    }
  }

  private reserved(conn: Conn<User>, id: RequestId | undefined, topic: string): boolean {
    if (!topic.startsWith(RESERVED_PREFIX)) return false;
    this.replyError(conn, id, 'E_FORBIDDEN', `topics starting with ${RESERVED_PREFIX} are reserved`);
    return true;
  }

  private async handleSubscribe(conn: Conn<User>, id: RequestId | undefined, topic: string, recover: StreamPosition | undefined): Promise<void> {
    if (this.reserved(conn, id, topic)) return;
    if (recover && id === undefined) return this.invalid(conn, id, 'E_BAD_REQUEST', 'subscribe with recover needs an id (recovered publications come in the reply)');
    if (conn.subs.has(topic)) return this.replyError(conn, id, 'E_ALREADY_SUBSCRIBED', `already subscribed to ${topic}`);
    if (conn.subs.size >= this.maxSubscriptions) return this.replyError(conn, id, 'E_FORBIDDEN', `more than ${this.maxSubscriptions} subscriptions`);
    const authorize = this.options.authorize?.subscribe;
    if (!(await this.allowed(authorize && (() => authorize(conn, topic)), conn, 'subscribe'))) {
      return this.replyError(conn, id, 'E_FORBIDDEN', `not allowed to subscribe to ${topic}`);
    }
    if (conn.closed || conn.subs.has(topic)) return;
    const outcome = await this.addSubscription(conn, topic, recover, id);
    if (outcome.error) this.replyError(conn, id, outcome.error.code, outcome.error.message);
  }

  private async handlePublish(conn: Conn<User>, id: RequestId | undefined, topic: string, data: Json, excludeSelf: boolean): Promise<void> {
    if (this.reserved(conn, id, topic)) return;
    if (this.options.allowClientPublish === false) return this.replyError(conn, id, 'E_FORBIDDEN', 'clients may not publish on this hub');
    const authorize = this.options.authorize?.publish;
    if (!(await this.allowed(authorize && (() => authorize(conn, topic, data)), conn, 'publish'))) {
      return this.replyError(conn, id, 'E_FORBIDDEN', `not allowed to publish to ${topic}`);
    }
    let publication: Publication;
    try {
      // Serialised once here; every node and subscriber reuses this text.
      publication = await this.broker.publish(topic, JSON.stringify(data), this.historyOf(topic), excludeSelf ? conn.connId : undefined);
    } catch (error) {
      this.logger.error({ conn: conn.connId, topic, err: errorMessage(error) }, 'broker publish failed');
      return this.replyError(conn, id, 'E_UNAVAILABLE', 'the broker could not accept the publication; retry');
    }
    this.reply(conn, id, `{"offset":${publication.offset},"epoch":${JSON.stringify(publication.epoch)}}`);
  }

  private async handlePresence(conn: Conn<User>, id: RequestId | undefined, topic: string): Promise<void> {
    if (this.reserved(conn, id, topic)) return;
    if (!conn.subs.has(topic)) {
      // Seeing who is in a topic is as sensitive as reading it.
      const authorize = this.options.authorize?.subscribe;
      if (!(await this.allowed(authorize && (() => authorize(conn, topic)), conn, 'subscribe'))) {
        return this.replyError(conn, id, 'E_FORBIDDEN', `not allowed to see presence of ${topic}`);
      }
    }
    let members: PresenceMember[];
    try {
      members = await this.broker.presence(topic);
    } catch (error) {
      this.logger.error({ topic, err: errorMessage(error) }, 'broker presence failed');
      return this.replyError(conn, id, 'E_UNAVAILABLE', 'presence is not available; retry');
    }
    this.reply(conn, id, `{"members":${JSON.stringify(members)}}`);
  }

  // ---- subscriptions ---------------------------------------------------------------------------

  /**
   * Subscribe `conn` to `topic`, recovering from `recover` if given, and reply to `id`.
   *
   * The seam between history and live delivery: the subscription is registered (buffering)
   * before history is read, so a publication is either in the history read, or buffered, or
   * both — never neither; the reply goes out first, then buffered publications newer than
   * what the reply carried. Nothing lost, nothing twice.
   */
  private async addSubscription(
    conn: Conn<User>,
    name: string,
    recover: StreamPosition | undefined,
    id: RequestId | undefined,
  ): Promise<{ error?: { code: HubErrorCode; message: string } }> {
    const topic = this.acquire(name);
    const sub: Sub<User> = { conn, topic, after: 0, buffer: [], member: undefined, joined: undefined, removed: false };
    conn.subs.set(name, sub);
    topic.subs.add(sub);
    try {
      await topic.ready;
    } catch (error) {
      this.removeSubscription(sub);
      this.logger.error({ topic: name, err: errorMessage(error) }, 'broker subscribe failed');
      return { error: { code: 'E_UNAVAILABLE', message: 'the broker could not subscribe; retry' } };
    }
    if (sub.removed) return {};
    let result: string;
    if (!recover) {
      sub.after = topic.offset;
      result = `{"topic":${topic.json},"epoch":${JSON.stringify(topic.epoch)},"offset":${topic.offset}}`;
    } else {
      let slice;
      try {
        slice = await this.broker.history(name, recover.offset, recover.epoch);
      } catch (error) {
        this.removeSubscription(sub);
        this.logger.error({ topic: name, err: errorMessage(error) }, 'broker history failed');
        return { error: { code: 'E_UNAVAILABLE', message: 'history is not available; retry' } };
      }
      if (sub.removed) return {};
      if (slice.epoch === recover.epoch && slice.complete) {
        let last = recover.offset;
        const parts: string[] = [];
        for (const p of slice.publications) {
          if (p.offset <= last) continue;
          parts.push(encodeWirePublication(p.offset, p.data));
          last = p.offset;
        }
        sub.after = last;
        this.counters.recovered++;
        result = `{"topic":${topic.json},"epoch":${JSON.stringify(slice.epoch)},"offset":${last},"recovered":true,"publications":[${parts.join(',')}]}`;
      } else {
        const reason: GapReason = slice.epoch !== recover.epoch ? 'epoch changed' : 'too old';
        sub.after = topic.offset;
        this.counters.notRecovered++;
        result = `{"topic":${topic.json},"epoch":${JSON.stringify(topic.epoch)},"offset":${topic.offset},"recovered":false,"reason":"${reason}"}`;
      }
    }
    if (this.presenceOn) {
      const info = this.options.presenceInfo ? this.options.presenceInfo(conn) : conn.user?.info;
      const member: PresenceMember = { connId: conn.connId, node: this.nodeId, ...(conn.user?.id !== undefined ? { userId: conn.user.id } : {}), ...(info !== undefined ? { info } : {}) };
      sub.member = member;
      sub.joined = this.broker.join(name, member).catch((error: unknown) => {
        this.logger.warn({ topic: name, conn: conn.connId, err: errorMessage(error) }, 'presence join failed');
      });
      // Answer after the join, so a presence query right after the reply lists this connection.
      await sub.joined;
      if (sub.removed) return {};
    }
    this.reply(conn, id, result);
    const buffered = sub.buffer ?? [];
    sub.buffer = undefined;
    for (const publication of buffered) this.deliverOne(sub, publication);
    return {};
  }

  /** Deliver a publication to one subscriber (its buffered ones, after the reply). */
  private deliverOne(sub: Sub<User>, publication: Publication): void {
    if (publication.offset <= sub.after && publication.epoch === sub.topic.epoch) return;
    if (publication.publisher !== undefined && publication.publisher === sub.conn.connId) return;
    this.counters.messagesBuilt++;
    this.counters.deliveries++;
    sub.conn.ws.send(encodeMessage(sub.topic.json, publication.offset, publication.epoch, publication.data));
  }

  private removeSubscription(sub: Sub<User>): void {
    if (sub.removed) return;
    sub.removed = true;
    const { conn, topic } = sub;
    if (conn.subs.get(topic.name) === sub) conn.subs.delete(topic.name);
    topic.subs.delete(sub);
    const member = sub.member;
    if (member && sub.joined && this.state !== 'closed') {
      // After the join has gone through, whatever its outcome.
      sub.joined
        .then(() => this.broker.leave(topic.name, member))
        .catch((error: unknown) => this.logger.warn({ topic: topic.name, conn: conn.connId, err: errorMessage(error) }, 'presence leave failed'));
    }
    this.release(topic);
  }

  /** The node's state for a topic, subscribing at the broker for the first local subscriber. */
  private acquire(name: string): TopicState<User> {
    let topic = this.topics.get(name);
    if (topic) return topic;
    const created = new TopicState<User>(name);
    topic = created;
    this.topics.set(name, created);
    created.ready = this.brokerOp(name, 'subscribe').then(async () => {
      // The position to deliver from: publications up to it are history, after it live.
      const slice = await this.broker.history(name, POSITION_ONLY, undefined);
      created.epoch = slice.epoch;
      created.offset = slice.offset;
      created.known = true;
      this.drainPending(created);
    });
    created.ready.catch(() => {});
    return created;
  }

  /** Unsubscribe the node at the broker once the last local subscriber is gone. */
  private release(topic: TopicState<User>): void {
    if (topic.subs.size > 0 || this.topics.get(topic.name) !== topic) return;
    this.topics.delete(topic.name);
    topic.closed = true;
    if (this.state !== 'closed') {
      this.brokerOp(topic.name, 'unsubscribe').catch((error: unknown) => this.logger.warn({ topic: topic.name, err: errorMessage(error) }, 'broker unsubscribe failed'));
    }
  }

  /** Broker subscribe/unsubscribe for a topic, queued behind the previous one for that topic. */
  private brokerOp(topic: string, op: 'subscribe' | 'unsubscribe'): Promise<void> {
    const previous = this.brokerOps.get(topic) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => (op === 'subscribe' ? this.broker.subscribe(topic) : this.broker.unsubscribe(topic)));
    this.brokerOps.set(topic, next);
    const forget = (): void => {
      if (this.brokerOps.get(topic) === next) this.brokerOps.delete(topic);
    };
    next.then(forget, forget);
    return next;
  }

  private historyOf(topic: string): HistoryOptions {
    const history = this.options.history;
    if (history === undefined) return DEFAULT_HISTORY;
    return typeof history === 'function' ? history(topic) : history;
  }

  // ---- delivery ----------------------------------------------------------------------------------

  private onPublication(publication: Publication): void {
    this.counters.publications++;
    const name = publication.topic;
    if (name.startsWith(RESERVED_PREFIX)) {
      this.onReservedPublication(publication);
      return;
    }
    const topic = this.topics.get(name);
    if (!topic) return;
    if (!topic.known || topic.catchingUp) {
      topic.pending.push(publication);
      return;
    }
    this.accept(topic, publication);
  }

  /** In-order delivery: the next offset is delivered, an old one dropped, a jump fetched from history. */
  private accept(topic: TopicState<User>, publication: Publication): void {
    if (publication.epoch !== topic.epoch) {
      // The broker lost the topic's history (a new epoch): older positions mean nothing now.
      if (publication.offset > 1) {
        // Publications of the new epoch came before this one (e.g. while this node's broker
        // connection was down): fetch them from history rather than declare them lost too.
        topic.pending.push(publication);
        void this.catchUp(topic);
        return;
      }
      this.sendGap(topic, publication.epoch, publication.offset - 1, 'epoch changed');
      this.deliver(topic, publication);
      return;
    }
    if (publication.offset <= topic.offset) return; // already delivered
    if (publication.offset === topic.offset + 1) {
      this.deliver(topic, publication);
      return;
    }
    topic.pending.push(publication);
    void this.catchUp(topic);
  }

  /** Fetch what is missing after `topic.offset` from history, then deliver what waited. */
  private async catchUp(topic: TopicState<User>): Promise<void> {
    if (topic.catchingUp) {
      topic.again = true;
      return;
    }
    topic.catchingUp = true;
    let failures = 0;
    let retry = false;
    try {
      do {
        topic.again = false;
        retry = false;
        let slice;
        try {
          slice = await this.broker.history(topic.name, topic.offset, topic.epoch);
          failures = 0;
        } catch (error) {
          this.logger.warn({ topic: topic.name, err: errorMessage(error), failures }, 'history fetch failed while filling a gap');
          slice = undefined;
        }
        if (topic.closed) return;
        if (slice === undefined && failures < HISTORY_RETRIES) {
          // The broker is most likely reconnecting (its subscriber connection can be back before
          // its command connection): what is missing is probably still in history, so wait and
          // ask again — holding later publications back — before declaring it lost.
          await delay(HISTORY_RETRY_DELAY * 2 ** failures++);
          if (topic.closed) return;
          retry = true;
          continue;
        }
        if (slice === undefined) {
          // Cannot fill the hole: say so, and go on from what is waiting.
          const next = Math.min(...topic.pending.map((p) => p.offset));
          if (Number.isFinite(next)) this.sendGap(topic, topic.epoch, next - 1, 'too old');
        } else if (slice.epoch !== topic.epoch || !slice.complete) {
          const first = slice.publications[0]?.offset ?? slice.offset + 1;
          this.sendGap(topic, slice.epoch, first - 1, slice.epoch !== topic.epoch ? 'epoch changed' : 'too old');
          for (const p of slice.publications) this.deliver(topic, p);
        } else {
          for (const p of slice.publications) {
            if (p.offset === topic.offset + 1) {
              this.counters.refetched++;
              this.deliver(topic, p);
            }
          }
        }
      } while (retry || this.drainPending(topic) || topic.again);
    } finally {
      topic.catchingUp = false;
    }
  }

  /**
   * Deliver waiting publications that follow on; drop old ones. True if a jump remains (another
   * history fetch is needed).
   */
  private drainPending(topic: TopicState<User>): boolean {
    if (topic.pending.length === 0) return false;
    const waiting = topic.pending.sort((a, b) => a.offset - b.offset);
    topic.pending = [];
    for (let i = 0; i < waiting.length; i++) {
      const p = waiting[i]!;
      if (p.epoch !== topic.epoch) {
        this.sendGap(topic, p.epoch, p.offset - 1, 'epoch changed');
        this.deliver(topic, p);
      } else if (p.offset === topic.offset + 1) {
        this.deliver(topic, p);
      } else if (p.offset > topic.offset + 1) {
        topic.pending = waiting.slice(i);
        if (!topic.catchingUp) void this.catchUp(topic);
        return true;
      }
    }
    return false;
  }

  /**
   * Fan a publication out to the topic's local subscribers: the JSON text is built once and
   * framed once; every subscriber gets the same bytes.
   */
  private deliver(topic: TopicState<User>, publication: Publication): void {
    if (publication.epoch !== topic.epoch) {
      topic.epoch = publication.epoch;
      for (const sub of topic.subs) sub.after = 0;
    }
    topic.offset = publication.offset;
    if (topic.subs.size === 0) return;
    const text = encodeMessage(topic.json, publication.offset, publication.epoch, publication.data);
    this.counters.messagesBuilt++;
    const prepared = prepareMessage(text);
    const publisher = publication.publisher;
    let delivered = 0;
    for (const sub of topic.subs) {
      if (sub.buffer) {
        sub.buffer.push(publication);
        continue;
      }
      if (publication.offset <= sub.after) continue;
      if (publisher !== undefined && publisher === sub.conn.connId) continue;
      sub.conn.ws.sendPrepared(prepared);
      delivered++;
    }
    this.counters.deliveries += delivered;
  }

  /** Tell a topic's subscribers that publications up to `offset` in `epoch` are lost for them. */
  private sendGap(topic: TopicState<User>, epoch: string, offset: number, reason: GapReason): void {
    this.counters.gaps++;
    this.logger.warn({ topic: topic.name, epoch, offset, reason }, 'publications lost: sending gap');
    if (epoch !== topic.epoch) {
      topic.epoch = epoch;
      for (const sub of topic.subs) sub.after = 0;
    }
    topic.offset = Math.max(0, offset);
    if (topic.subs.size === 0) return;
    const prepared = prepareMessage(encodeGap(topic.json, epoch, topic.offset, reason));
    for (const sub of topic.subs) if (!sub.buffer) sub.conn.ws.sendPrepared(prepared);
  }

  /** `$all`, `$user:<id>` and `$node:<id>` publications become `push` messages. */
  private onReservedPublication(publication: Publication): void {
    const name = publication.topic;
    let targets: Iterable<Conn<User>> | undefined;
    let data = publication.data;
    if (name === ALL_TOPIC) {
      targets = this.conns.values();
    } else if (name.startsWith(USER_PREFIX)) {
      targets = this.userConns.get(name.slice(USER_PREFIX.length))?.conns;
    } else if (name === NODE_PREFIX + this.nodeId) {
      let envelope: unknown;
      try {
        envelope = JSON.parse(data);
      } catch {
        return;
      }
      if (!Array.isArray(envelope) || typeof envelope[0] !== 'string') return;
      const conn = this.connsById.get(envelope[0]);
      if (!conn) return;
      targets = [conn];
      data = JSON.stringify(envelope[1]) ?? 'null';
    }
    if (!targets) return;
    const text = encodePush(data);
    this.counters.messagesBuilt++;
    const prepared = prepareMessage(text);
    const publisher = publication.publisher;
    for (const conn of targets) {
      if (!conn.authenticated || conn.connId === publisher) continue;
      conn.ws.sendPrepared(prepared);
      this.counters.deliveries++;
    }
  }

  private onPresence(event: PresenceEvent): void {
    const topic = this.topics.get(event.topic);
    if (!topic || topic.subs.size === 0) return;
    const prepared = prepareMessage(encodePresenceEvent(event.kind, topic.json, event.member));
    for (const sub of topic.subs) {
      if (sub.buffer || sub.conn.connId === event.member.connId) continue;
      sub.conn.ws.sendPrepared(prepared);
    }
  }

  /** The broker lost its connection and is back: re-check every topic against history. */
  private onBrokerReconnect(): void {
    this.logger.info({ node: this.nodeId, topics: this.topics.size }, 'broker reconnected: checking history for missed publications');
    for (const topic of this.topics.values()) {
      if (topic.known) void this.catchUp(topic);
    }
  }
}
