/**
 * The real-time hub: topics with publish/subscribe, presence, per-topic history with recovery,
 * messages to one connection, one user or everyone — over the wire protocol of `wire.ts`, on
 * any number of nodes joined by a `Broker`.
 *
 * `Hub` is the facade over small parts, each with one job:
 * - `session.ts`: one connection's session — its request queue and the dispatch of its requests;
 * - `subscriptions.ts`: the node's topics at the broker, and a subscribe's seam between history
 *   and live delivery;
 * - `topic.ts`: a topic's sequencer — offset order, gaps filled from history, or announced;
 * - `fanout.ts`: each message framed once, the same bytes written to every local recipient;
 * - `auth.ts`: tokens at the handshake and in `connect`; `wire.ts`: what goes over the wire.
 *
 * How a publication travels: `publish` (server code or a client) → broker (assigns offset and
 * epoch, keeps history, tells every subscribed node) → `onPublication` on each node → the topic's
 * sequencer, in offset order → the topic's fan-out to the node's local subscribers.
 */
import { randomBytes } from 'node:crypto';
import { CloseCode } from '../protocol/constants.js';
import { DEFAULTS } from '../protocol/defaults.js';
import type { MessageData, WebSocketHandlers } from '../node/handlers.js';
import { silentLogger, type Logger } from '../node/logger.js';
import type { WebSocket } from '../node/websocket.js';
import { corkLoopPass } from '../node/write-batch.js';
import type { Broker, BrokerNode, HistoryOptions, Json, PresenceMember, Publication } from './broker.js';
import { globMatch } from './glob.js';
import { ControlPlane, packageVersion, type ActiveTopic, type ConnectionTarget, type NodeInfo } from './control.js';
import { MemoryBroker } from './brokers/memory.js';
import { HubAuth, handshakeUser, type HubAuthOptions, type HubIdentity, type HubSocketData } from './auth.js';
import { HubError, errorMessage } from './errors.js';
import { push } from './fanout.js';
import { Session, type SessionHost } from './session.js';
import { BrokerCalls, Subscriptions, type HubCounters } from './subscriptions.js';
import { topicProblem } from './parse-request.js';
import { RESERVED_PREFIX, SLOW_CONSUMER_CLOSE_CODE, encodePush, type StreamPosition } from './wire.js';

export { HubError } from './errors.js';
export type { HubAuthOptions, HubSocketData } from './auth.js';
export type { ActiveTopic, ConnectionTarget, NodeInfo } from './control.js';

/** Default history retention: the last 100 publications, at most 5 minutes old (`DEFAULTS.hub.history`). */
export const DEFAULT_HISTORY: HistoryOptions = { size: DEFAULTS.hub.history.size, ttl: DEFAULTS.hub.history.ttl };

/** Reserved topics: every node's broadcast topic, a user's topic, a node's own topic. */
const ALL_TOPIC = '$all';
const USER_PREFIX = '$user:';
const NODE_PREFIX = '$node:';
/** Reserved topics keep no history: their messages are not recoverable. */
const NO_HISTORY: HistoryOptions = { size: 0, ttl: 0 };

/** What an authorisation hook sees of the connection asking. */
export interface HubContext<User extends HubIdentity = HubIdentity> {
  /** The authenticated user (undefined for an anonymous connection). */
  readonly user: User | undefined;
  /** The connection's id, unique across nodes. */
  readonly connId: string;
  /** The WebSocket. */
  readonly ws: WebSocket<unknown>;
  /** The handshake headers the hub keeps for its hooks (`HubOptions.handshakeHeaders`), lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Per-topic permission checks, decided by server code. Each may be async; false refuses with
 * E_FORBIDDEN. A thrown `HubError` answers with its own code and message (E_UNAVAILABLE from a
 * backend that is down: the client may retry); any other throw is logged and refuses.
 */
export interface HubAuthorize<User extends HubIdentity = HubIdentity> {
  /**
   * May this connection subscribe to `topic`? Also asked for `presence` of a topic the
   * connection is not subscribed to: seeing who is in a topic is as sensitive as reading it.
   * Only `true` allows; a refusal is answered with E_FORBIDDEN.
   */
  subscribe?(ctx: HubContext<User>, topic: string): boolean | Promise<boolean>;
  /**
   * May this connection publish `data` to `topic`? `true` allows; `{ data }` allows and publishes
   * that data instead (a backend that rewrites or enriches what clients send); anything else
   * refuses with E_FORBIDDEN.
   */
  publish?(ctx: HubContext<User>, topic: string, data: Json): boolean | HubPublishRewrite | Promise<boolean | HubPublishRewrite>;
}

/** What `authorize.publish` returns to publish other data than the client sent. */
export interface HubPublishRewrite {
  /** The data to publish instead. */
  readonly data: Json;
}

/** What the connect hook is told about a connection that sent `connect` without a handshake token. */
export interface HubConnectRequest {
  /** The connection's id. */
  readonly connId: string;
  /** The peer's address (the TCP peer: behind a proxy, forward `x-forwarded-for` as a header). */
  readonly remoteAddress: string | undefined;
  /** The handshake's headers named in `HubOptions.handshakeHeaders`, lower-case names (repeated headers joined with ", "). */
  readonly headers: Readonly<Record<string, string>>;
  /** The token of the `connect` message, when the hub has no `auth` to verify it itself. */
  readonly token: string | undefined;
  /** The `data` of the `connect` message (the client's `connectData`). */
  readonly data: Json | undefined;
}

/** The connect hook's answer: who the connection is, and until when. */
export interface HubConnectAnswer<User extends HubIdentity = HubIdentity> {
  /** The user (`id` absent: an anonymous connection); `info` is shown in presence. */
  readonly user: User;
  /** When the authentication expires, ms since the epoch: the connection is then closed with 4001 and its client reconnects (asking the hook again). */
  readonly expireAt?: number | undefined;
}

/**
 * Authentication by your code (or your backend, see `createBackendHooks`): asked for each
 * connection that did not authenticate with a handshake token, when it sends `connect`. Throw a
 * `HubError` to refuse: E_UNAUTHORIZED / E_FORBIDDEN close the connection with 1008 (its client
 * stops), E_UNAVAILABLE with 1013 (its client retries later).
 */
export interface HubConnectHook<User extends HubIdentity = HubIdentity> {
  /** Decide who the connection is. */
  authenticate(request: HubConnectRequest): HubConnectAnswer<User> | Promise<HubConnectAnswer<User>>;
}

/** An RPC method: gets the caller and the `params` (null when absent), returns the answer (undefined → null). Throw a `HubError` to answer with its code. */
export type HubRpcHandler<User extends HubIdentity = HubIdentity> = (ctx: HubContext<User>, params: Json) => Json | undefined | Promise<Json | undefined>;

/** Asked for an RPC method no `hub.rpc()` handler has (e.g. a backend): like a handler, with the method's name. Throw `HubError('E_NOT_FOUND', …)` for a method it does not have either. */
export type HubRpcFallback<User extends HubIdentity = HubIdentity> = (ctx: HubContext<User>, method: string, params: Json) => Json | undefined | Promise<Json | undefined>;

/** Who is in a topic, counted (`hub.presenceStats()`). */
export interface HubPresenceStats {
  /** Connections present. */
  readonly connections: number;
  /** Distinct user ids among them (anonymous connections not counted). */
  readonly users: number;
}

/** The topics with subscribers across the cluster (`hub.topics()`). */
export interface HubTopics {
  /** Each topic and its subscriber count, by name. */
  readonly topics: ActiveTopic[];
  /** How many nodes answered (this one included). */
  readonly nodes: number;
  /** True when some known node did not answer in time: `topics` may then miss some. */
  readonly partial: boolean;
}

/** Options of `hub.history()`. */
export interface HubHistoryQuery {
  /** Only publications after this position (absent: every retained one). In another epoch: every retained one, with `complete: false`. */
  readonly since?: StreamPosition | undefined;
  /** At most this many (default: all retained). With `reverse`, the newest ones. */
  readonly limit?: number | undefined;
  /** Newest first (default false: oldest first). */
  readonly reverse?: boolean | undefined;
}

/** One publication of a topic's history. */
export interface HubHistoryEntry {
  /** Its offset in the topic's epoch. */
  readonly offset: number;
  /** What was published. */
  readonly data: Json;
  /** When, ms since the epoch. */
  readonly time: number;
}

/** A topic's history, from `hub.history()`. */
export interface HubHistory {
  /** The publications, in the order asked for. */
  readonly publications: readonly HubHistoryEntry[];
  /** The topic's current epoch. */
  readonly epoch: string;
  /** The topic's latest offset. */
  readonly offset: number;
  /** With `since`: false when publications after it are gone (another epoch, or trimmed). */
  readonly complete: boolean;
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
  /** Authenticate connections by your code or backend, when they bring no handshake token (see `HubConnectHook`). */
  connect?: HubConnectHook<User>;
  /**
   * Handshake headers each connection keeps for the hooks (`HubContext.headers`, the connect
   * hook's `request.headers`): default cookie, authorization, origin and user-agent with a
   * `connect` hook, none without. Only the named ones are kept: an idle connection's memory.
   */
  handshakeHeaders?: readonly string[];
  /** Asked for RPC methods that no `hub.rpc()` handler has (default: E_NOT_FOUND); see `HubRpcFallback`. */
  rpcFallback?(ctx: HubContext<User>, method: string, params: Json): Json | undefined | Promise<Json | undefined>;
  /** How long an RPC handler may take before the client gets E_UNAVAILABLE, ms (default 10 s). */
  rpcTimeout?: number;
  /** ms between two announcements of this node to the others (`hub.nodes()`; default 3 s). */
  nodeAnnounceInterval?: number;
  /** Where log lines go (default: nowhere). */
  logger?: Logger;
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

/**
 * A hub node. Mount it on a `WebSocketServer` route with `hub.routeOptions` (its handlers, its
 * upgrade hook for handshake tokens, and the close code its clients expect for a slow consumer):
 *
 * ```ts
 * const hub = new Hub({ auth: { jwt: { secret } } });
 * await hub.start();
 * const server = new WebSocketServer(hub.routeOptions);
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
  /**
   * What a hub route is mounted with: `server.route('/ws', hub.routeOptions)`, or spread with
   * settings of your own (`{ ...hub.routeOptions, maxMessageSize }`). Besides `handlers` and the
   * `authenticate` upgrade hook, it closes a slow subscriber with 4008 rather than 1008, so the
   * hub's clients reconnect and catch up from history instead of stopping (`docs/protocol.md`).
   */
  readonly routeOptions: {
    /** `hub.handlers`. */
    readonly handlers: WebSocketHandlers<HubSocketData<User>>;
    /** `hub.authenticate`, the route's upgrade hook. */
    readonly upgrade: Hub<User>['authenticate'];
    /** 4008: a slow subscriber is told to come back (its clients reconnect and recover). */
    readonly slowConsumerCloseCode: number;
  };

  private readonly options: HubOptions<User>;
  private readonly logger: Logger;
  private readonly auth: HubAuth<User>;
  private readonly anonymous: boolean;
  private readonly connectTimeout: number;
  private readonly sessions = new Map<WebSocket<unknown>, Session<User>>();
  private readonly sessionsById = new Map<string, Session<User>>();
  /** Local sessions per user id, and the broker subscription to the user's topic. */
  private readonly userSessions = new Map<string, { sessions: Set<Session<User>>; ready: Promise<void> }>();
  private readonly brokerCalls: BrokerCalls;
  private readonly rpcHandlers = new Map<string, HubRpcHandler<User>>();
  private readonly control: ControlPlane;
  private readonly startedAt = Date.now();
  private readonly subscriptions: Subscriptions<User>;
  /** What every session of this hub shares. */
  private readonly sessionHost: SessionHost<User>;
  private readonly counters: HubCounters = {
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
   * @throws TypeError when none of `auth`, `connect` and `anonymous: true` is given, or `auth` has both `jwt` and `verify`.
   * @throws MissingPeerDependencyError with `auth.jwt` when the `jose` package is not installed.
   */
  constructor(options: HubOptions<User> = {}) {
    this.options = options;
    this.nodeId = options.nodeId ?? randomBytes(6).toString('hex');
    this.broker = options.broker ?? new MemoryBroker();
    this.logger = options.logger ?? silentLogger;
    this.anonymous = options.anonymous ?? false;
    this.connectTimeout = options.connectTimeout ?? DEFAULTS.hub.connectTimeout;
    this.auth = new HubAuth<User>(options, this.logger);
    this.brokerCalls = new BrokerCalls(this.broker);
    const isClosed = (): boolean => this.state === 'closed';
    this.subscriptions = new Subscriptions<User>({
      nodeId: this.nodeId,
      broker: this.broker,
      brokerCalls: this.brokerCalls,
      logger: this.logger,
      counters: this.counters,
      options,
      isClosed,
    });
    this.sessionHost = {
      nodeId: this.nodeId,
      broker: this.broker,
      logger: this.logger,
      auth: this.auth,
      subscriptions: this.subscriptions,
      counters: this.counters,
      limits: {
        maxMessageSize: options.maxMessageSize ?? DEFAULTS.hub.maxMessageSize,
        maxSubscriptions: options.maxSubscriptions ?? DEFAULTS.hub.maxSubscriptions,
        maxPending: options.maxPendingRequests ?? DEFAULTS.hub.maxPendingRequests,
        maxInvalid: options.maxInvalidMessages ?? DEFAULTS.hub.maxInvalidMessages,
      },
      options,
      isClosed,
      start: () => this.start(),
      admit: (session, user) => this.admit(session, user),
      historyOf: (topic) => this.historyOf(topic),
      rpcHandler: (method) => this.rpcHandlers.get(method),
      rpcTimeout: options.rpcTimeout ?? DEFAULTS.hub.rpcTimeout,
    };
    this.control = new ControlPlane(
      {
        nodeId: this.nodeId,
        broker: this.broker,
        logger: this.logger,
        info: () => this.nodeInfo(),
        disconnect: (target, code, reason) => {
          for (const session of this.localSessions(target)) session.ws.close(code, reason);
        },
        setSubscription: (target, topic, subscribed) => this.setLocalSubscription(target, topic, subscribed),
        topics: () => this.subscriptions.counts(),
      },
      options.nodeAnnounceInterval ?? DEFAULTS.hub.nodeAnnounceInterval,
    );
    this.handlers = {
      open: (ws) => this.onOpen(ws as WebSocket<unknown>),
      message: (ws, data, isBinary) => this.onMessage(ws as WebSocket<unknown>, data, isBinary),
      close: (ws) => this.onClose(ws as WebSocket<unknown>),
      drain: (ws) => this.onDrain(ws as WebSocket<unknown>),
    };
    this.routeOptions = { handlers: this.handlers, upgrade: this.authenticate, slowConsumerCloseCode: SLOW_CONSUMER_CLOSE_CODE };
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
        this.subscriptions.onPresence(event);
      },
      onReconnect: () => this.onBrokerReconnect(),
      onState: (state) => this.logger.info({ node: this.nodeId, broker: this.broker.name, state }, `broker ${state}`),
    };
    await this.broker.start(node);
    await Promise.all([ALL_TOPIC, NODE_PREFIX + this.nodeId, ...this.control.topics].map((topic) => this.brokerCalls.run(topic, 'subscribe')));
    this.state = 'started';
    this.control.start();
  }

  /**
   * Stop: close this node's hub connections with 1001 (their presence is removed), then close
   * the broker. The WebSocketServer itself is yours to close.
   */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const session of [...this.sessions.values()]) {
      this.dropSession(session);
      session.ws.close(CloseCode.GoingAway, 'hub closing');
    }
    if (this.starting) await this.control.stop();
    await this.brokerCalls.settled();
    await this.broker.close();
  }

  /** Counters of this node. */
  stats(): HubStats {
    return { connections: this.sessions.size, topics: this.subscriptions.size, ...this.counters };
  }

  // ---- authentication ------------------------------------------------------------------------

  /**
   * The upgrade hook for a hub route: reads a bearer token from `Authorization: Bearer` or the
   * `token` query parameter and verifies it. A bad token → 401. No token → admitted without a
   * user (it must then send `connect` with a token, unless the hub is anonymous), or 401 with
   * `requireHandshakeToken`.
   *
   * ```ts
   * server.route('/hub', { handlers: hub.handlers, upgrade: hub.authenticate }); // or: hub.routeOptions
   * ```
   */
  readonly authenticate = async (ctx: { readonly headers: Readonly<Record<string, string | string[] | undefined>>; readonly query: URLSearchParams }): Promise<HubSocketData<User>> => {
    const data = await this.auth.handshake({ headers: { authorization: headerText(ctx.headers['authorization']) }, query: ctx.query });
    const names = this.options.handshakeHeaders ?? (this.options.connect ? DEFAULT_CONNECT_HEADERS : []);
    if (names.length === 0) return data;
    const headers: Record<string, string> = {};
    for (const name of names) {
      const value = headerText(ctx.headers[name.toLowerCase()]);
      if (value !== undefined) headers[name.toLowerCase()] = value;
    }
    return { ...data, headers };
  };

  // ---- server-side API -----------------------------------------------------------------------

  /**
   * Publish `data` (any JSON value, serialised once here) to `topic`. Resolves with the
   * publication once the broker accepted it. `excludeConnId` keeps it from that connection.
   * @throws HubError E_BAD_REQUEST for an invalid or reserved topic.
   */
  async publish(topic: string, data: Json, options: { excludeConnId?: string; idempotencyKey?: string } = {}): Promise<Publication> {
    checkTopic(topic);
    await this.start();
    return this.broker.publish(topic, JSON.stringify(data) ?? 'null', this.historyOf(topic), options.excludeConnId, options.idempotencyKey);
  }

  /**
   * Serve RPC `method` with `handler` (replacing an earlier one). Clients call it with
   * `rpc(method, params)`; an answer that takes longer than `rpcTimeout` is E_UNAVAILABLE.
   * @throws HubError E_BAD_REQUEST for an empty method name.
   */
  rpc(method: string, handler: HubRpcHandler<User>): this {
    if (method === '') throw new HubError('E_BAD_REQUEST', 'an RPC method needs a name');
    this.rpcHandlers.set(method, handler);
    return this;
  }

  /**
   * Close every connection of a user (or one connection), on every node, with `code` (1000 or
   * 3000–4999; default 1008, after which the hub's clients do not reconnect) and `reason`.
   * Resolves once the broker carried the command.
   * @throws HubError E_BAD_REQUEST for a code a server may not send.
   */
  async disconnect(target: ConnectionTarget, code: number = CloseCode.PolicyViolation, reason = 'disconnected by the server'): Promise<void> {
    if (!(code === 1000 || code === 1001 || code === 1008 || (code >= 3000 && code <= 4999))) {
      throw new HubError('E_BAD_REQUEST', `close code ${code} cannot be sent: use 1000, 1001, 1008 or 3000-4999`);
    }
    if (Buffer.byteLength(reason) > 123) throw new HubError('E_BAD_REQUEST', 'the close reason is longer than 123 bytes');
    await this.start();
    await this.control.command({ op: 'disconnect', target, code, reason });
  }

  /**
   * Subscribe every connection of a user (or one connection), on every node, to `topic`, from
   * server code: no authorisation check; their clients get the topic's `message`s. Connections
   * the user opens later are not subscribed.
   */
  async subscribeConnections(target: ConnectionTarget, topic: string): Promise<void> {
    checkTopic(topic);
    await this.start();
    await this.control.command({ op: 'subscribe', target, topic });
  }

  /** Undo `subscribeConnections` (or a client's own subscription) for a user's connections, on every node. */
  async unsubscribeConnections(target: ConnectionTarget, topic: string): Promise<void> {
    checkTopic(topic);
    await this.start();
    await this.control.command({ op: 'unsubscribe', target, topic });
  }

  /** How many connections, and distinct users, are in `topic`'s presence, across all nodes. */
  async presenceStats(topic: string): Promise<HubPresenceStats> {
    const members = await this.presence(topic);
    return { connections: members.length, users: new Set(members.flatMap((m) => (m.userId === undefined ? [] : [m.userId]))).size };
  }

  /** A topic's retained history (from the broker), filtered and ordered as asked. */
  async history(topic: string, query: HubHistoryQuery = {}): Promise<HubHistory> {
    checkTopic(topic);
    await this.start();
    const since = query.since;
    const slice = await this.broker.history(topic, since?.offset ?? 0, since?.epoch);
    let publications = slice.publications.map((p) => ({ offset: p.offset, data: JSON.parse(p.data) as Json, time: p.time }));
    if (query.reverse) publications.reverse();
    if (query.limit !== undefined && publications.length > query.limit) publications = publications.slice(0, query.limit);
    return { publications, epoch: slice.epoch, offset: slice.offset, complete: since === undefined ? true : slice.complete };
  }

  /**
   * The topics with subscribers on any node, with their subscriber counts; `pattern` keeps
   * those matching a glob (`*` any characters, `?` one). Every live node is asked; `partial`
   * says some did not answer within `timeout` ms (default 2 s).
   */
  async topics(pattern?: string, timeout = 2000): Promise<HubTopics> {
    await this.start();
    const result = await this.control.activeTopics(timeout);
    if (pattern === undefined) return result;
    return { ...result, topics: result.topics.filter((t) => globMatch(pattern, t.topic)) };
  }

  /** The live nodes of the cluster, this one first, as they last announced themselves. */
  nodes(): NodeInfo[] {
    return this.control.nodes();
  }

  /** Subscribe a connection from server code (no authorisation check; the client gets `message`s for it). */
  async subscribe(ws: WebSocket<unknown>, topic: string): Promise<void> {
    const session = this.sessions.get(ws);
    if (!session) throw new HubError('E_BAD_REQUEST', 'not a hub connection (mount hub.handlers on its route)');
    const problem = topicProblem(topic, Infinity);
    if (problem) throw new HubError('E_BAD_REQUEST', problem);
    if (session.subs.has(topic)) return;
    await this.start();
    const refusal = await this.subscriptions.add(session, topic, undefined, undefined);
    if (refusal) throw new HubError(refusal.code, refusal.message);
  }

  /** Unsubscribe a connection from server code. Resolves false if it was not subscribed. */
  async unsubscribe(ws: WebSocket<unknown>, topic: string): Promise<boolean> {
    const session = this.sessions.get(ws);
    const sub = session?.subs.get(topic);
    if (!sub) return false;
    this.subscriptions.remove(sub);
    return true;
  }

  /** Send `data` to one connection, on whichever node it lives. */
  async sendToConnection(connId: string, data: Json): Promise<void> {
    const json = JSON.stringify(data) ?? 'null';
    const local = this.sessionsById.get(connId);
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
    return this.sessions.get(ws)?.connId;
  }

  // ---- connections -------------------------------------------------------------------------

  private onOpen(ws: WebSocket<unknown>): void {
    const session = new Session<User>(`${this.nodeId}.${this.nextConn++}`, ws, this.sessionHost);
    this.sessions.set(ws, session);
    this.sessionsById.set(session.connId, session);
    const user = handshakeUser<User>(ws.data);
    if (user !== undefined) {
      this.admit(session, user);
    } else if (this.anonymous && !this.options.connect) {
      this.admit(session, undefined);
    } else {
      session.awaitConnect(this.connectTimeout);
    }
  }

  /** The session is authenticated (as `user`, or anonymously): register it for its user's messages. */
  private admit(session: Session<User>, user: User | undefined): void {
    session.admitted(user);
    const userId = user?.id;
    if (userId === undefined) return;
    let entry = this.userSessions.get(userId);
    if (!entry) {
      const topic = USER_PREFIX + userId;
      const ready = this.start()
        .then(() => this.brokerCalls.run(topic, 'subscribe'))
        .catch((error: unknown) => this.logger.warn({ user: userId, err: errorMessage(error) }, 'could not subscribe the user topic'));
      entry = { sessions: new Set(), ready };
      this.userSessions.set(userId, entry);
    }
    entry.sessions.add(session);
    session.registered = entry.ready;
  }

  private onMessage(ws: WebSocket<unknown>, data: MessageData, isBinary: boolean): void {
    const session = this.sessions.get(ws);
    if (!session || session.closed) return;
    session.receive(data, isBinary);
  }

  /** A socket caught up: repair the subscriptions the slow-consumer policy 'drop' cut short. */
  private onDrain(ws: WebSocket<unknown>): void {
    const session = this.sessions.get(ws);
    if (!session) return;
    for (const sub of session.subs.values()) {
      if (sub.lost) this.subscriptions.repair(sub).catch((error: unknown) => this.logger.warn({ conn: session.connId, err: errorMessage(error) }, 'repair of a lagging subscription failed'));
    }
  }

  private onClose(ws: WebSocket<unknown>): void {
    const session = this.sessions.get(ws);
    if (session) this.dropSession(session);
  }

  /** Forget a session: its subscriptions (and presence), its user topic reference. */
  private dropSession(session: Session<User>): void {
    if (!session.end()) return;
    this.sessions.delete(session.ws);
    this.sessionsById.delete(session.connId);
    for (const sub of [...session.subs.values()]) this.subscriptions.remove(sub);
    const userId = session.user?.id;
    if (userId !== undefined) {
      const entry = this.userSessions.get(userId);
      if (entry?.sessions.delete(session) && entry.sessions.size === 0) {
        this.userSessions.delete(userId);
        if (this.state !== 'closed') this.brokerCalls.run(USER_PREFIX + userId, 'unsubscribe').catch(() => {});
      }
    }
  }

  /** This node's sessions that `target` names. */
  private localSessions(target: ConnectionTarget): Iterable<Session<User>> {
    if ('user' in target) return [...(this.userSessions.get(target.user)?.sessions ?? [])];
    const session = this.sessionsById.get(target.connId);
    return session ? [session] : [];
  }

  /** A subscribe/unsubscribe command reached this node: apply it to its sessions of `target`. */
  private setLocalSubscription(target: ConnectionTarget, topic: string, subscribed: boolean): void {
    for (const session of this.localSessions(target)) {
      // A connection that has not authenticated yet is nobody's to subscribe.
      if (session.closed || !session.authenticated) continue;
      const sub = session.subs.get(topic);
      if (!subscribed) {
        if (sub) this.subscriptions.remove(sub);
      } else if (!sub) {
        this.subscriptions.add(session, topic, undefined, undefined).then(
          (refusal) => refusal && this.logger.warn({ conn: session.connId, topic, err: refusal.message }, 'server-side subscription failed'),
          (error: unknown) => this.logger.warn({ conn: session.connId, topic, err: errorMessage(error) }, 'server-side subscription failed'),
        );
      }
    }
  }

  /** What this node announces of itself. */
  private nodeInfo(): NodeInfo {
    return {
      id: this.nodeId,
      version: packageVersion(),
      uptime: Math.round((Date.now() - this.startedAt) / 1000),
      connections: this.sessions.size,
      users: this.userSessions.size,
      topics: this.subscriptions.size,
      broker: this.broker.name,
    };
  }

  private historyOf(topic: string): HistoryOptions {
    const history = this.options.history;
    if (history === undefined) return DEFAULT_HISTORY;
    return typeof history === 'function' ? history(topic) : history;
  }

  // ---- from the broker ---------------------------------------------------------------------------

  private onPublication(publication: Publication): void {
    if (ControlPlane.isControlTopic(publication.topic)) {
      this.control.receive(publication.data);
      return;
    }
    this.counters.publications++;
    if (publication.topic.startsWith(RESERVED_PREFIX)) this.onReservedPublication(publication);
    else this.subscriptions.onPublication(publication);
  }

  /** `$all`, `$user:<id>` and `$node:<id>` publications become `push` messages. */
  private onReservedPublication(publication: Publication): void {
    const name = publication.topic;
    let targets: Iterable<Session<User>> | undefined;
    let data = publication.data;
    if (name === ALL_TOPIC) {
      targets = this.sessions.values();
    } else if (name.startsWith(USER_PREFIX)) {
      targets = this.userSessions.get(name.slice(USER_PREFIX.length))?.sessions;
    } else if (name === NODE_PREFIX + this.nodeId) {
      let envelope: unknown;
      try {
        envelope = JSON.parse(data);
      } catch {
        return;
      }
      if (!Array.isArray(envelope) || typeof envelope[0] !== 'string') return;
      const session = this.sessionsById.get(envelope[0]);
      if (!session) return;
      targets = [session];
      data = JSON.stringify(envelope[1]) ?? 'null';
    }
    if (!targets) return;
    push(targets, data, publication.publisher, this.counters);
  }

  /** The broker lost its connection and is back: re-check every topic against history. */
  private onBrokerReconnect(): void {
    this.logger.info({ node: this.nodeId, topics: this.subscriptions.size }, 'broker reconnected: checking history for missed publications');
    this.subscriptions.resync();
  }
}

/** The handshake headers kept for the hooks by default when there is a connect hook. */
const DEFAULT_CONNECT_HEADERS: readonly string[] = DEFAULTS.hub.backendHooks.connectHeaders;

/** A header's value as one string (repeated headers joined as HTTP joins them). */
function headerText(value: string | readonly string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : value === undefined ? undefined : value.join(', ');
}

/** A topic server code may publish to: a valid name, not reserved. */
function checkTopic(topic: string): void {
  const problem = topicProblem(topic, Infinity);
  if (problem) throw new HubError('E_BAD_REQUEST', problem);
  if (topic.startsWith(RESERVED_PREFIX)) throw new HubError('E_BAD_REQUEST', `topic ${topic} is reserved (topics starting with ${RESERVED_PREFIX})`);
}

