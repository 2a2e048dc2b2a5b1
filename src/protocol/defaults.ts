/**
 * Every default of the package in one object, grouped by the part that reads it, each with its
 * unit and its reason. The parts read their defaults from here (`DEFAULT_SETTINGS`,
 * `RECONNECT_DEFAULTS`, `DEFAULT_HISTORY`, `HUB_CLIENT_DEFAULTS`, `BROKER_DEFAULTS` are views of
 * it), so a default is changed in one place and its reason travels with it.
 *
 * No imports and no Node API: the browser hub client reads `hubClient` from it, so it is one of
 * the files `duplex serve` hands to browsers under `/duplex/` (CLIENT_FILES in `cli/serve.ts`).
 */

/**
 * The reconnection backoff, the same for the engine's `ReconnectingWebSocket` and the hub clients:
 * attempt n waits a random time up to min(maxDelay, minDelay × factor^(n−1)).
 */
const BACKOFF = Object.freeze({
  /** ms: 1 s, the ceiling of the first retry's delay (as Socket.IO's `reconnectionDelay`). */
  minDelay: 1000,
  /** ms: 30 s, the largest ceiling, reached at the 6th attempt in a row. */
  maxDelay: 30_000,
  /** Multiplier: the ceiling doubles per attempt. */
  factor: 2,
  /** Full jitter: a uniformly random delay up to the ceiling. */
  jitter: true,
  /** Attempts: never give up (a page or a service wants its feed back whenever the server is). */
  maxAttempts: Infinity,
  /** ms: 5 s, a connection that stayed open this long starts the backoff again from `minDelay`. */
  resetAfter: 5000,
} as const);

/** The defaults of every part of the package, each with its unit and its reason (deeply frozen). */
export const DEFAULTS = Object.freeze({
  /** Per-connection tunables (`ConnectionSettings`, `DEFAULT_SETTINGS`), for servers and `connect()` alike. */
  connection: Object.freeze({
    /**
     * Bytes, after decompression: the largest message accepted (more → 1009). 1 MiB, as
     * python-websockets and Socket.IO: what a peer can make a connection hold (a message being
     * reassembled or inflated) is this much memory, so N hostile connections cost N × this
     * (ws's 100 MiB: 1,000 connections can ask for 100 GB). Raise it for the routes that take
     * large messages; their work is done in slices (`sliceSize`), so other connections keep
     * their latency, but not their memory. The ws-compatible module keeps ws's 100 MiB.
     */
    maxMessageSize: 1024 * 1024,
    /**
     * Bytes of large-message work (inflate, deflate, unmasking, joining pieces) a connection does
     * before it yields to the others: 256 KiB, ~0.2–0.5 ms of zlib, so one peer's 16 MiB message
     * cannot hold the event loop for its 10–30 ms (see `docs/security.md`, "Fairness").
     */
    sliceSize: 256 * 1024,
    /** ms: 10 s for the peer's side of the closing handshake. */
    closeTimeout: 10_000,
    /** ms: a ping after 25 s without traffic (as Socket.IO): well inside the 60 s idle timeout of nginx and AWS ALB. */
    pingInterval: 25_000,
    /** ms: 20 s for the pong (or any data) before the connection is deemed dead. */
    pingTimeout: 20_000,
    /** ms: no idle timeout (0 = never). */
    idleTimeout: 0,
    /** Bytes: `send()` returns false from 64 KiB buffered. */
    highWaterMark: 64 * 1024,
    /** Bytes: `drain` at 16 KiB buffered. */
    lowWaterMark: 16 * 1024,
    /** Bytes: the slow-consumer policy applies from 4 MiB buffered. */
    maxBufferedAmount: 4 * 1024 * 1024,
    /** Messages: async iteration pauses the socket with 16 unread, so a fast sender cannot grow memory without bound. */
    maxQueuedMessages: 16,
  } as const),
  /** The server's own limits (`WebSocketServerOptions`). */
  server: Object.freeze({
    /**
     * ms an `upgrade` hook may take before the client gets 503: long enough for a remote
     * authentication lookup, short enough that a stuck one does not hold a connection slot.
     */
    handshakeTimeout: 10_000,
    /**
     * ms a client may take to send its request line and headers before it gets 408 (`listen`
     * only). Against slowloris: Node's own 60 s lets idle sockets pile up.
     */
    headersTimeout: 10_000,
    /** Bytes of request line and headers, at most: Node's own default for `maxHeaderSize`, so `listen` and `attach` agree. */
    maxHeaderSize: 16 * 1024,
    /** Seconds (the `Retry-After` header's text) a client refused with 503 (or 429 over `maxConnectionsPerIp`) is asked to wait. */
    retryAfterSeconds: '5',
    /**
     * Bytes a client may send before our 101 while an asynchronous hook runs. RFC 6455 §4.1: "the
     * client MUST wait for a response from the server before sending any further data"; some do
     * not, so this much is kept for the connection, and more cuts the socket off.
     */
    maxEarlyData: 64 * 1024,
  } as const),
  /** `connect()` (`ConnectOptions`). */
  client: Object.freeze({
    /** ms: give up on the opening handshake after 10 s. */
    handshakeTimeout: 10_000,
  } as const),
  /**
   * `ReconnectingWebSocket` (`RECONNECT_DEFAULTS`). The backoff follows the "full jitter" scheme
   * (a uniformly random delay between 0 and an exponentially growing ceiling), which spreads a
   * crowd of clients reconnecting after a server restart better than fixed or proportional
   * jitter. The first retry waits 0–1 s (as Socket.IO's `reconnectionDelay`); the ceiling is 30 s:
   * between Socket.IO's 5 s (aggressive for thousands of clients) and python-websockets' 90 s
   * (long for a user watching a screen).
   */
  reconnect: Object.freeze({
    ...BACKOFF,
    /** Messages queued while disconnected, at most. */
    maxQueuedMessages: 1000,
    /** Bytes queued while disconnected, at most (1 MiB). */
    maxQueuedBytes: 1024 * 1024,
    /** A full queue refuses the new message (`send()` returns `'rejected'`). */
    queueOverflow: 'reject',
  } as const),
  /** A hub node (`HubOptions`). */
  hub: Object.freeze({
    /** Bytes: the largest inbound hub message, 64 KiB (more → E_TOO_LARGE). */
    maxMessageSize: 64 * 1024,
    /** Subscriptions per connection, at most. */
    maxSubscriptions: 1000,
    /** Requests a connection may have waiting for an answer (more → E_BUSY). */
    maxPendingRequests: 256,
    /** Invalid messages tolerated per connection before it is closed with 1008. */
    maxInvalidMessages: 100,
    /** ms: 10 s for a connection that did not authenticate at the handshake to send `connect` (then 1008). */
    connectTimeout: 10_000,
    /** ms an RPC handler (or the backend behind it) may take before the client gets E_UNAVAILABLE: 10 s, the clients' request timeout. */
    rpcTimeout: 10_000,
    /** ms between two announcements of a node on the control topic (`hub.nodes()`): 3 s, a node unheard of for 9 s is gone. */
    nodeAnnounceInterval: 3_000,
    /** The backend hooks (`createBackendHooks`, `BACKEND_HOOK_DEFAULTS`). */
    backendHooks: Object.freeze({
      /** ms for a whole hook call, retries included: 5 s, half the clients' 10 s request timeout, so a client hears E_UNAVAILABLE rather than timing out itself. */
      timeout: 5000,
      /** Attempts after the first (connect and subscribe only): one, to ride over a backend restarting or one bad instance behind a load balancer. */
      retries: 1,
      /** ms before the first retry, doubling for each next one: short, as a client is waiting. */
      retryDelay: 100,
      /** Bytes of an answer body read at most: 1 MiB; a bigger answer is E_UNAVAILABLE (a backend bug, and memory a hub should not give). */
      maxAnswerBytes: 1024 * 1024,
      /** Handshake headers the connect hook forwards: what backends identify a browser's session by. */
      connectHeaders: Object.freeze(['cookie', 'authorization', 'origin', 'user-agent'] as const),
    } as const),
    /** The server API (`createServerApi`, `SERVER_API_DEFAULTS`). */
    serverApi: Object.freeze({
      /** Where the API is mounted: methods at `/api/<method>`, the OpenAPI document at `/api/openapi.json`. */
      prefix: '/api/',
      /** Bytes: the largest body, 1 MiB (more → 413 E_TOO_LARGE): a publication is bounded by the hub's clients anyway. */
      maxBodySize: 1024 * 1024,
    } as const),
    /** History retention (`DEFAULT_HISTORY`): the last 100 publications, at most 5 minutes old. */
    history: Object.freeze({
      /** Publications kept per topic. */
      size: 100,
      /** ms they are kept: 5 minutes. */
      ttl: 5 * 60_000,
    } as const),
  } as const),
  /** The networked brokers, Redis and NATS (`BROKER_DEFAULTS`). */
  broker: Object.freeze({
    /**
     * ms a node stays alive without refreshing its liveness: long enough to ride out a GC pause
     * or a short network stall, short enough that a crashed node's presence goes within seconds.
     */
    presenceTtl: 10_000,
    /** ms between two refreshes (and sweeps): a few per `presenceTtl`, so one lost refresh is not death. */
    presenceRefresh: 3_000,
    /** ms a topic's last offset and epoch outlive its last publication: 30 days (Centrifugo's `history_meta_ttl`). */
    metaTtl: 30 * 24 * 3600 * 1000,
    /**
     * ms an idempotency key of a publish is remembered: 2 minutes, NATS JetStream's default
     * duplicate window, so a retried server-API POST within it is published once.
     */
    idempotencyWindow: 2 * 60_000,
  } as const),
  /**
   * Both hub clients, the Node `HubClient` and the browser `DuplexClient` (`HUB_CLIENT_DEFAULTS`).
   * The backoff figures are those of `reconnect`, so every client of the package backs off
   * alike: a hub server restarted under thousands of browser pages is the crowd they are chosen for.
   */
  hubClient: Object.freeze({
    /** ms: a request without an answer for 10 s fails with E_TIMEOUT. */
    requestTimeout: 10_000,
    /**
     * Requests kept while disconnected; one more fails at once with E_QUEUE_FULL. The queue is
     * sent in one burst after the reconnection, and a hub answers E_BUSY beyond its
     * `maxPendingRequests` (256 by default) waiting requests of one connection: a longer queue
     * would only turn E_QUEUE_FULL now into E_BUSY later (the resubscriptions, sent just before
     * the queue, count against the same limit).
     */
    maxQueuedRequests: 256,
    ...BACKOFF,
  } as const),
  /**
   * `duplex serve`, where it differs from the library (the rest of its configuration's defaults
   * are the library's: `hub`, `connection`). A demo server on loopback, anonymous, in-memory broker.
   */
  serve: Object.freeze({
    /** TCP port. */
    port: 8080,
    /** Address: loopback, as the defaults are a demo server's (anonymous, in-memory broker). */
    host: '127.0.0.1',
    /**
     * Bytes: the largest WebSocket message, 1 MiB (more → 1009), as the library's: `serve`
     * is a gateway facing the internet.
     */
    maxMessageSize: 1024 * 1024,
    /** Topics starting with one of these keep no history (typing indicators and the like). */
    ephemeralPrefixes: Object.freeze(['typing:']) as readonly string[],
  } as const),
} as const);
