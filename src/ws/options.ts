/**
 * The option types of the ws-compatible module, named and shaped as ws 8's (its README and
 * doc/ws.md), each with ws's default. `ClientOptions` is read by `./client.ts`, `ServerOptions` by
 * `./server.ts`, `PerMessageDeflateOptions` by both through `./deflate-options.ts`.
 */
import type { Agent, ClientRequest, IncomingMessage, OutgoingHttpHeaders, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { PeerCertificate, SecureContextOptions } from 'node:tls';
import type { ZlibOptions } from 'node:zlib';
import type { WebSocket } from './websocket.js';

/**
 * ws's `perMessageDeflate` object (RFC 7692). The server's defaults are ws's: context takeover
 * both ways (no `*NoContextTakeover`), windows of 15 bits, a 1024-byte threshold.
 */
export interface PerMessageDeflateOptions {
  /** Server: answer `server_no_context_takeover` (default false). Client: ask for it. */
  serverNoContextTakeover?: boolean;
  /** Server: answer `client_no_context_takeover` (default false). Client: promise it. */
  clientNoContextTakeover?: boolean;
  /** Server: the window it compresses with (8–15). Client: the window it asks the server to use. */
  serverMaxWindowBits?: number | boolean;
  /** Server: the window the client must compress with, if it allows one. Client: offer `client_max_window_bits` (default true). */
  clientMaxWindowBits?: number | boolean;
  /** zlib options of the compressor: `level` and `memLevel` are used (compression is synchronous here). */
  zlibDeflateOptions?: ZlibOptions;
  /** zlib options of the decompressor (not used: the window comes from the negotiation). */
  zlibInflateOptions?: ZlibOptions;
  /** Bytes: messages smaller than this are not compressed (default 1024). */
  threshold?: number;
  /** ws's limit on concurrent zlib calls (accepted and ignored: compression here is synchronous). */
  concurrencyLimit?: number;
}

/** Options of ws's client `WebSocket` (`new WebSocket(address, protocols, options)`), with ws's defaults. */
export interface ClientOptions extends SecureContextOptions {
  /** Events message/ping/pong may be emitted several times in one tick (default true); false: one per `setImmediate`. */
  allowSynchronousEvents?: boolean;
  /** Answer pings with pongs automatically (default true). */
  autoPong?: boolean;
  /** ms to wait for the closing handshake before destroying the socket (default 30000). */
  closeTimeout?: number;
  /** Called with the request and the WebSocket instead of `req.end()`: finish the headers, then end it. */
  finishRequest?: (request: ClientRequest, websocket: WebSocket) => void;
  /** Follow 3xx redirects (default false). */
  followRedirects?: boolean;
  /**
   * Fills the 4-byte masking key of each frame sent (default: random keys from the CSPRNG). For
   * tests that read the wire; RFC 6455 §10.3 wants keys an attacker cannot predict.
   */
  generateMask?: (mask: Buffer) => void;
  /** ms before the opening handshake fails with 'Opening handshake has timed out' (default none). */
  handshakeTimeout?: number;
  /** Bytes: the largest message accepted (default 100 MiB; more: close 1009). */
  maxPayload?: number;
  /** The most chunks one frame's payload may arrive in (default 262144; 0: no limit; more: close 1008, 'Too many buffered chunks'). */
  maxBufferedChunks?: number;
  /** The most frames one message may have (default 16384; 0: no limit; more: close 1008, 'Too many message fragments'). */
  maxFragments?: number;
  /** Automatic pongs not yet written at which a new ping terminates the connection (default 60; 0: no limit). */
  maxPendingAutoPongs?: number;
  /** Redirects followed at most (default 10). */
  maxRedirects?: number;
  /** The `Origin` header (`Sec-WebSocket-Origin` with protocolVersion 8). */
  origin?: string;
  /** Offer permessage-deflate (default true), or how. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** `Sec-WebSocket-Version`: 13 (default) or 8. */
  protocolVersion?: number;
  /** Do not check that text messages and close reasons are UTF-8 (default false). */
  skipUTF8Validation?: boolean;
  /** Subprotocols, when the second constructor argument is the options. */
  protocols?: string | string[];
  /** Request headers to add. */
  headers?: OutgoingHttpHeaders;
  /** The http(s) agent of the request. */
  agent?: Agent;
  /** `user:password` for Basic authentication (also taken from the URL). */
  auth?: string;
  /** Creates the socket of the request (http's option). */
  createConnection?: (options: object, callback?: (error: Error | null, socket: Duplex) => void) => Duplex | Socket;
  /** Local interface to bind. */
  localAddress?: string;
  /** IP family of the lookup (4 or 6). */
  family?: number;
  /** DNS lookup function. */
  lookup?: LookupFunction;
  /** Host header / host to connect to, overriding the URL's (http's option). */
  host?: string;
  /** TLS: verify the server's certificate (default true). */
  rejectUnauthorized?: boolean;
  /** TLS: the server name for SNI (default: the URL's host name unless it is an IP). */
  servername?: string;
  /** TLS: check the certificate's identity. */
  checkServerIdentity?: (hostname: string, cert: PeerCertificate) => Error | undefined;
}

/** What `verifyClient` receives. */
export interface VerifyClientInfo {
  /** The `Origin` header (`Sec-WebSocket-Origin` for version 8 clients). */
  origin: string | undefined;
  /** Whether the request came over TLS. */
  secure: boolean;
  /** The upgrade request. */
  req: IncomingMessage;
}

/** The asynchronous `verifyClient`'s answer: refuse with `code` (default 401), `message`, `headers`. */
export type VerifyClientCallback = (result: boolean, code?: number, message?: string, headers?: OutgoingHttpHeaders) => void;

/**
 * ws's `verifyClient`: synchronous, `(info) => boolean`, or asynchronous, `(info, callback) => void`
 * (told apart by the number of parameters it declares, as ws does).
 */
export type VerifyClient = (info: VerifyClientInfo, callback: VerifyClientCallback) => boolean | void;

/** Options of `WebSocketServer`, with ws's defaults. Exactly one of `port`, `server`, `noServer`. */
export interface ServerOptions {
  /** Listen on this port (the server answers plain HTTP requests with 426). */
  port?: number;
  /** The host to listen on (default: every interface). */
  host?: string;
  /** The listen backlog (default Node's, 511). */
  backlog?: number;
  /** Use this http(s) server's `upgrade` events. */
  server?: HttpServer | HttpsServer;
  /** Neither listen nor attach: call `handleUpgrade` yourself. */
  noServer?: boolean;
  /** Only accept upgrades to this path (default: any). */
  path?: string;
  /** Keep the open connections in `clients` (default true). */
  clientTracking?: boolean;
  /** Accept or refuse a client (default: accept every one). */
  verifyClient?: VerifyClient;
  /** Choose the subprotocol among the client's (default: its first); false: none. */
  handleProtocols?: (protocols: Set<string>, request: IncomingMessage) => string | false;
  /** Accept permessage-deflate (default false), or how. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Bytes: the largest message accepted (default 100 MiB; more: close 1009). */
  maxPayload?: number;
  /** The most chunks one frame's payload may arrive in (default 262144; 0: no limit; more: close 1008, 'Too many buffered chunks'). */
  maxBufferedChunks?: number;
  /** The most frames one message may have (default 16384; 0: no limit; more: close 1008, 'Too many message fragments'). */
  maxFragments?: number;
  /** Automatic pongs not yet written at which a new ping terminates the connection (default 60; 0: no limit). */
  maxPendingAutoPongs?: number;
  /** Do not check that text messages and close reasons are UTF-8 (default false). */
  skipUTF8Validation?: boolean;
  /** Answer pings with pongs automatically (default true). */
  autoPong?: boolean;
  /** Events message/ping/pong may be emitted several times in one tick (default true). */
  allowSynchronousEvents?: boolean;
  /** ms to wait for the closing handshake before destroying the socket (default 30000). */
  closeTimeout?: number;
  /** The class of the connections: `WebSocket` or a subclass (constructed as `new WebSocket(null, undefined, options)`). */
  WebSocket?: typeof WebSocket;
}
