/**
 * The client side of the ws-compatible `WebSocket`: what ws 8's constructor does with an
 * address. It checks the options and the URL (throwing ws's errors), sends the opening handshake
 * through `node:http`/`node:https` (with ws's request options: agent, createConnection, headers,
 * origin, auth, TLS options, `ws+unix:` sockets, handshakeTimeout, finishRequest), follows
 * redirects when asked, checks the server's answer with ws's messages, and hands the upgraded
 * socket to the WebSocket (`setSocket`) or fails it (`failHandshake`), per `./binding.ts`.
 *
 * The checks use the engine's handshake functions (key, accept value, extension grammar,
 * permessage-deflate negotiation); only the messages and the order are ws's.
 */
// The modules themselves, not named imports: their functions are looked up at call time, as ws
// does, so that code (and ws's tests) replacing e.g. `tls.connect` sees its calls.
import http, { type ClientRequest, type ClientRequestArgs, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https, { type RequestOptions } from 'node:https';
import net, { type NetConnectOpts, type Socket } from 'node:net';
import { unescape as unescapeQuery } from 'node:querystring';
import tls, { type ConnectionOptions } from 'node:tls';
import type { MessageCodec } from '../protocol/extension.js';
import { acceptKey, generateKey } from '../protocol/handshake-common.js';
import { formatExtensions, parseExtensions } from '../protocol/headers.js';
import {
  EXTENSION_NAME as PERMESSAGE_DEFLATE,
  acceptServerResponse,
  buildClientOffer,
  type PerMessageDeflateOptions,
} from '../protocol/permessage-deflate.js';
import { parseWebSocketUrl } from '../protocol/url.js';
import { createDeflateCodec } from '../node/deflate.js';
import { nodeSha1 } from '../node/sha1.js';
import type { SocketBinding } from './binding.js';
import { toDeflateOptions } from './deflate-options.js';
import type { ClientOptions } from './options.js';
import type { WebSocket } from './websocket.js';

/** The protocol versions ws can speak: 13 (RFC 6455) and 8 (hybi-08, which sends `Sec-WebSocket-Origin`). */
const PROTOCOL_VERSIONS: readonly number[] = [8, 13];
/** readyState CONNECTING, fixed by the WebSocket API. */
const CONNECTING = 0;
/** RFC 7230 token characters: what ws accepts as a subprotocol name. */
const SUBPROTOCOL = /^[!#$%&'*+\-.0-9A-Z^_`|a-z~]+$/;

/**
 * ws's client defaults, in ws's units. `handshakeTimeout` has none (no timeout), as in ws.
 * The options below the first block are read by the WebSocket class itself.
 */
const CLIENT_DEFAULTS = {
  allowSynchronousEvents: true,
  autoPong: true,
  /** 13: RFC 6455. */
  protocolVersion: 13,
  /** Bytes: 100 MiB, ws's limit on a message (more: close 1009). */
  maxPayload: 100 * 1024 * 1024,
  /** Chunks a frame may arrive in (ws 8.23: 256 Ki; more: close 1008). */
  maxBufferedChunks: 256 * 1024,
  /** Frames a message may have (ws 8.23: 16 Ki; more: close 1008). */
  maxFragments: 16 * 1024,
  skipUTF8Validation: false,
  /** Offered by default, as ws and browsers do. */
  perMessageDeflate: true as ClientOptions['perMessageDeflate'],
  followRedirects: false,
  /** Redirects followed before 'Maximum redirects exceeded'. */
  maxRedirects: 10,
};

/** The options as the handshake reads them: ws's defaults under the user's options. */
type Settings = Omit<ClientOptions, keyof typeof CLIENT_DEFAULTS> & typeof CLIENT_DEFAULTS;

/** Request options as ws builds them: the user's options passed through, plus the request's own fields. */
type RequestSettings = RequestOptions & { defaultPort?: number; socketPath?: string | undefined };

/** One WebSocket's handshake, across the redirects it follows. */
interface Handshake {
  readonly websocket: WebSocket;
  readonly settings: Settings;
  /** The user's headers; lower-cased names once redirects are followed (ws's rule, to drop them by name). */
  readonly headers: OutgoingHttpHeaders;
  readonly protocols: readonly string[];
  readonly protocolSet: ReadonlySet<string>;
  /** The engine's permessage-deflate settings when compression is offered. */
  readonly deflate: PerMessageDeflateOptions | undefined;
  /** The offer, formatted once: the same on every request. */
  readonly offer: string | undefined;
  /** Redirects followed so far (mirrored to `websocket._redirects`, which ws's users and tests read). */
  redirects: number;
  /** Where the first request went (for the headers dropped on a redirect elsewhere). */
  originalIpc: boolean;
  originalSecure: boolean;
  originalHostOrSocketPath: string;
}

/** Requests this module aborted itself: their late 'error' events are not the WebSocket's. */
const aborted = new WeakSet<ClientRequest>();

/**
 * Starts the client handshake of `websocket` (ws's constructor with an address).
 *
 * @throws RangeError for a `protocolVersion` other than 8 or 13; SyntaxError for an invalid URL,
 * a scheme other than ws:, wss:, http:, https: or ws+unix:, a fragment, a ws+unix: URL without a
 * path, or an invalid or repeated subprotocol (ws's messages); what `http.request` throws (e.g. an
 * invalid header value).
 */
export function initAsClient(
  websocket: WebSocket,
  address: string | URL,
  protocols: string | string[] | undefined,
  options: ClientOptions | undefined,
): void {
  const settings: Settings = { ...CLIENT_DEFAULTS, ...options };
  if (!PROTOCOL_VERSIONS.includes(settings.protocolVersion)) {
    throw new RangeError(
      `Unsupported protocol version: ${String(settings.protocolVersion)} (supported versions: ${PROTOCOL_VERSIONS.join(', ')})`,
    );
  }
  const list = protocols === undefined ? [] : Array.isArray(protocols) ? protocols : [protocols];
  const deflate = settings.perMessageDeflate ? toDeflateOptions(settings.perMessageDeflate, false) : undefined;
  const handshake: Handshake = {
    websocket,
    settings,
    headers: { ...settings.headers },
    protocols: list,
    protocolSet: new Set(list),
    deflate,
    offer: deflate === undefined ? undefined : formatExtensions([buildClientOffer(deflate)]),
    redirects: 0,
    originalIpc: false,
    originalSecure: false,
    originalHostOrSocketPath: '',
  };
  countRedirects(handshake, 0);
  request(handshake, address);
}

/** The URL as ws reads it, or ws's SyntaxError. `http:`/`https:` stand for `ws:`/`wss:`. */
function readUrl(websocket: WebSocket, address: string | URL): URL | SyntaxError {
  let url: URL;
  if (address instanceof URL) {
    url = address;
  } else {
    try {
      url = new URL(address);
    } catch {
      return new SyntaxError(`Invalid URL: ${address}`);
    }
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    url = new URL(url);
    url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  }
  // ws shows the address even when it refuses it.
  websocket.setUrl(url.href);
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:' && url.protocol !== 'ws+unix:') {
    return new SyntaxError('The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"');
  }
  if (url.protocol === 'ws+unix:' && url.pathname === '') return new SyntaxError("The URL's pathname is empty");
  // RFC 6455 §3: "Fragment identifiers ... MUST NOT be used on these URIs" (a bare '#' passes, as in ws).
  if (url.hash !== '') return new SyntaxError('The URL contains a fragment identifier');
  return url;
}

/** One request of the handshake: the first, or the one a redirect leads to. */
function request(handshake: Handshake, address: string | URL): void {
  const { websocket, settings } = handshake;
  const url = readUrl(websocket, address);
  if (url instanceof SyntaxError) {
    // The first address is the caller's mistake; a redirect's is the server's.
    if (handshake.redirects === 0) throw url;
    websocket.failHandshake(url);
    return;
  }
  // Before anything is sent, so that a bad subprotocol throws from the constructor.
  if (handshake.redirects === 0) checkSubprotocols(handshake.protocols);

  const secure = url.protocol === 'wss:';
  const ipc = url.protocol === 'ws+unix:';
  const key = generateKey();
  const headers: OutgoingHttpHeaders = {
    ...handshake.headers,
    'Sec-WebSocket-Version': settings.protocolVersion,
    'Sec-WebSocket-Key': key,
    Connection: 'Upgrade',
    Upgrade: 'websocket',
  };
  if (handshake.offer !== undefined) headers['Sec-WebSocket-Extensions'] = handshake.offer;
  if (handshake.protocols.length > 0) headers['Sec-WebSocket-Protocol'] = handshake.protocols.join(',');
  if (settings.origin) {
    headers[settings.protocolVersion < 13 ? 'Sec-WebSocket-Origin' : 'Origin'] = settings.origin;
  }

  const target = ipc ? undefined : parseWebSocketUrl(url);
  const hostname = target !== undefined && 'hostname' in target ? target.hostname : url.hostname;
  const defaultPort = secure ? 443 : 80;
  const opts: RequestSettings = {
    ...(settings as RequestOptions),
    createConnection: (settings.createConnection as RequestOptions['createConnection']) ?? (secure ? tlsConnect : netConnect),
    defaultPort,
    port: url.port || defaultPort,
    host: hostname,
    hostname: undefined,
    protocol: undefined,
    socketPath: undefined,
    method: 'GET',
    headers,
    path: url.pathname + url.search,
    // A socket inactivity timeout, as ws's handshakeTimeout is.
    timeout: settings.handshakeTimeout,
  };
  if (url.username || url.password) opts.auth = `${unescapeQuery(url.username)}:${unescapeQuery(url.password)}`;
  if (ipc) {
    // ws+unix:/path/to/socket:/request/path
    const path = opts.path!;
    const colon = path.indexOf(':');
    opts.socketPath = colon === -1 ? path : path.slice(0, colon);
    opts.path = colon === -1 ? '' : path.slice(colon + 1);
  }
  if (settings.followRedirects) redirectHeaders(handshake, url, opts, headers, ipc, secure);

  const req = secure ? https.request(opts) : http.request(opts);
  websocket.setRequest(req);
  if (settings.followRedirects && handshake.redirects > 0) websocket.emit('redirect', websocket.url, req);

  if (opts.timeout) req.on('timeout', () => abortRequest(handshake, req, 'Opening handshake has timed out'));
  req.on('error', (error: Error) => {
    if (aborted.has(req) || websocket.readyState !== CONNECTING) return;
    websocket.setRequest(null);
    websocket.failHandshake(error);
  });
  req.on('response', (res: IncomingMessage) => onResponse(handshake, address, req, res));
  req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => onUpgrade(handshake, key, res, socket, head));

  if (settings.finishRequest) settings.finishRequest(req, websocket);
  else req.end();
}

/** Sets the redirect count, also where ws keeps it: the WebSocket's `_redirects`. */
function countRedirects(handshake: Handshake, count: number): void {
  handshake.redirects = count;
  handshake.websocket._redirects = count;
}

/** ws's check of the subprotocols offered: tokens, each at most once (RFC 6455 §4.1 item 10). */
function checkSubprotocols(protocols: readonly unknown[]): void {
  const seen = new Set<unknown>();
  for (const protocol of protocols) {
    if (typeof protocol !== 'string' || !SUBPROTOCOL.test(protocol) || seen.has(protocol)) {
      throw new SyntaxError('An invalid or duplicated subprotocol was specified');
    }
    seen.add(protocol);
  }
}

/**
 * With followRedirects, headers go by lower-case name (ws's rule, so that they can be dropped by
 * name): credentials and cookies are not sent to another host, nor from wss: to ws: (as curl
 * 7.77 does), unless a 'redirect' listener takes charge of the headers. The first Authorization
 * wins: the URL's credentials become a header that later requests carry.
 */
function redirectHeaders(
  handshake: Handshake,
  url: URL,
  opts: RequestSettings,
  headers: OutgoingHttpHeaders,
  ipc: boolean,
  secure: boolean,
): void {
  const { websocket } = handshake;
  const persistent = handshake.headers;
  if (handshake.redirects === 0) {
    handshake.originalIpc = ipc;
    handshake.originalSecure = secure;
    handshake.originalHostOrSocketPath = ipc ? opts.socketPath! : url.host;
    // From now on the names are lower-case; the first request keeps the user's spelling.
    const given = Object.entries(persistent);
    for (const [name] of given) delete persistent[name];
    for (const [name, value] of given) persistent[name.toLowerCase()] = value;
  } else if (websocket.listenerCount('redirect') === 0) {
    const sameHost = ipc
      ? handshake.originalIpc && opts.socketPath === handshake.originalHostOrSocketPath
      : !handshake.originalIpc && url.host === handshake.originalHostOrSocketPath;
    if (!sameHost || (handshake.originalSecure && !secure)) {
      delete headers['authorization'];
      delete headers['cookie'];
      if (!sameHost) delete headers['host'];
      opts.auth = undefined;
    }
  }
  if (opts.auth && persistent['authorization'] === undefined) {
    persistent['authorization'] = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  }
}

/** A response that is not an upgrade: a redirect to follow, or the end of the handshake. */
function onResponse(handshake: Handshake, address: string | URL, req: ClientRequest, res: IncomingMessage): void {
  const { websocket, settings } = handshake;
  const location = res.headers.location;
  const status = res.statusCode ?? 0;
  if (location && settings.followRedirects && status >= 300 && status < 400) {
    countRedirects(handshake, handshake.redirects + 1);
    if (handshake.redirects > settings.maxRedirects) {
      abortRequest(handshake, req, 'Maximum redirects exceeded');
      return;
    }
    aborted.add(req);
    req.destroy();
    let next: URL;
    try {
      next = new URL(location, address);
    } catch {
      websocket.setRequest(null);
      websocket.failHandshake(new SyntaxError(`Invalid URL: ${location}`));
      return;
    }
    request(handshake, next);
    return;
  }
  // A listener takes charge of the response (and of aborting the request).
  if (!websocket.emit('unexpected-response', req, res)) {
    abortRequest(handshake, req, `Unexpected server response: ${status}`);
  }
}

/** Ends a request in flight and fails the handshake with `message` (ws's abortHandshake on a request). */
function abortRequest(handshake: Handshake, req: ClientRequest, message: string): void {
  aborted.add(req);
  req.destroy();
  // After a response, destroying the request may leave its socket open.
  if (req.socket !== null && !req.socket.destroyed) req.socket.destroy();
  handshake.websocket.setRequest(null);
  handshake.websocket.failHandshake(new Error(message));
}

/** Closes the upgraded socket and fails the handshake with `message`. */
function abortSocket(websocket: WebSocket, socket: Socket, message: string): void {
  socket.destroy();
  websocket.failHandshake(new Error(message));
}

/** The 101: 'upgrade', then ws's checks in ws's order, then the socket goes to the WebSocket. */
function onUpgrade(handshake: Handshake, key: string, res: IncomingMessage, socket: Socket, head: Buffer): void {
  const { websocket, settings } = handshake;
  websocket.emit('upgrade', res);
  // A listener may have closed the WebSocket, which aborted the request.
  if (websocket.readyState !== CONNECTING) {
    socket.destroy();
    return;
  }
  websocket.setRequest(null);

  const upgrade = res.headers.upgrade;
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') {
    abortSocket(websocket, socket, 'Invalid Upgrade header');
    return;
  }
  // RFC 6455 §4.1: the accept value must be base64(SHA-1(key + GUID)), exactly.
  if (res.headers['sec-websocket-accept'] !== acceptKey(key, nodeSha1)) {
    abortSocket(websocket, socket, 'Invalid Sec-WebSocket-Accept header');
    return;
  }

  const protocol = res.headers['sec-websocket-protocol'];
  let protocolError: string | undefined;
  if (protocol !== undefined) {
    if (handshake.protocolSet.size === 0) protocolError = 'Server sent a subprotocol but none was requested';
    else if (!handshake.protocolSet.has(protocol)) protocolError = 'Server sent an invalid subprotocol';
  } else if (handshake.protocolSet.size > 0) {
    // ws requires an answer when subprotocols were offered (RFC 6455 lets the server decline).
    protocolError = 'Server sent no subprotocol';
  }
  if (protocolError !== undefined) {
    abortSocket(websocket, socket, protocolError);
    return;
  }

  let codec: MessageCodec | undefined;
  const extensions = res.headers['sec-websocket-extensions'];
  if (extensions !== undefined) {
    const outcome = negotiate(handshake, extensions);
    if (typeof outcome === 'string') {
      abortSocket(websocket, socket, outcome);
      return;
    }
    codec = outcome;
  }

  // The handshake timeout was an inactivity timeout on this socket: it ends with the handshake.
  socket.setTimeout(0);
  const binding: SocketBinding = {
    side: 'client',
    protocol: protocol ?? '',
    extensions: codec === undefined ? '' : PERMESSAGE_DEFLATE,
    codec,
    maxPayload: settings.maxPayload,
    skipUTF8Validation: settings.skipUTF8Validation,
    allowSynchronousEvents: settings.allowSynchronousEvents,
    autoPong: settings.autoPong,
    generateMask: settings.generateMask,
    maxBufferedChunks: settings.maxBufferedChunks,
    maxFragments: settings.maxFragments,
  };
  websocket.setSocket(socket, head, binding);
}

/** The server's Sec-WebSocket-Extensions against our offer: the codec, or ws's message for the failure. */
function negotiate(handshake: Handshake, header: string): MessageCodec | string {
  const { deflate } = handshake;
  if (deflate === undefined) return 'Server sent a Sec-WebSocket-Extensions header but no extension was requested';
  const invalid = 'Invalid Sec-WebSocket-Extensions header';
  let accepted;
  try {
    accepted = parseExtensions(header);
  } catch {
    return invalid;
  }
  // An empty list is no valid header value (RFC 6455 §9.1: 1#extension).
  if (accepted.length === 0) return invalid;
  const names = new Set(accepted.map((extension) => extension.name));
  if (names.size !== 1 || !names.has(PERMESSAGE_DEFLATE)) return 'Server indicated an extension that was not requested';
  // ws refuses client_no_context_takeover when its option was set to false explicitly.
  const option = handshake.settings.perMessageDeflate;
  if (
    typeof option === 'object' &&
    option.clientNoContextTakeover === false &&
    accepted[0]!.params.some(([name]) => name === 'client_no_context_takeover')
  ) {
    return invalid;
  }
  try {
    const params = acceptServerResponse(accepted, deflate);
    return params === undefined ? invalid : createDeflateCodec('client', params, deflate);
  } catch {
    return invalid;
  }
}

/** ws's default `createConnection` for ws: and ws+unix:: TCP, or the socket path. */
function netConnect(options: ClientRequestArgs & { socketPath?: string }): Socket {
  return net.connect({ ...(options as object), path: options.socketPath } as NetConnectOpts);
}

/** ws's default `createConnection` for wss:: TLS with SNI for a host name (not for an IP address, RFC 6066 §3). */
function tlsConnect(options: ClientRequestArgs): Socket {
  const tlsOptions = { ...(options as ConnectionOptions), path: undefined };
  if (!tlsOptions.servername && tlsOptions.servername !== '') {
    const host = typeof options.host === 'string' ? options.host : '';
    tlsOptions.servername = net.isIP(host) ? '' : host;
  }
  return tls.connect(tlsOptions);
}
