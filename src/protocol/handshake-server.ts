/**
 * The server's side of the opening handshake (RFC 6455 §4.2), as pure functions:
 * {@link validateRequest} → {@link selectSubprotocol} → {@link buildAcceptResponse}, or
 * {@link buildRejectResponse} with the status and headers of the `HandshakeError` it threw.
 */

import { HandshakeError } from './errors.js';
import type { ExtensionOffer } from './extension.js';
import { isToken, parseExtensions, parseTokenList, parseUpgrade } from './headers.js';
import { WEBSOCKET_VERSION, acceptKey, headerLine, includesIgnoringCase, isValidKey, single, withStatus } from './handshake-common.js';

/** An HTTP request that may open a WebSocket connection, as read off the wire. */
export interface HandshakeRequest {
  /** The request method, case-sensitive (RFC 7230 §3.1.1). */
  method: string;
  /** `major.minor`, as in Node's `IncomingMessage.httpVersion` (e.g. `1.1`). */
  httpVersion: string;
  /** The request-target, e.g. `/chat?room=1`. */
  url: string;
  /** Header fields with lower-case names. */
  headers: Record<string, string | string[] | undefined>;
}

/** What a valid opening handshake request asked for (RFC 6455 §4.2.1). */
export interface ValidatedRequest {
  /** `Sec-WebSocket-Key`, to answer with {@link acceptKey}. */
  key: string;
  /** `Sec-WebSocket-Version`; only 13 is accepted. */
  version: 13;
  /** `Sec-WebSocket-Protocol` offers, in the client's order of preference (RFC 6455 §4.1). */
  protocols: string[];
  /** `Sec-WebSocket-Extensions` offers, in order, duplicates kept. */
  extensions: ExtensionOffer[];
  /** `Origin` (RFC 6455 §4.2.1 item 7, §10.2), sent by browsers; the server decides on it. */
  origin: string | undefined;
  /** `Host` (RFC 6455 §4.2.1 item 2). */
  host: string;
}

/** RFC 7230 §2.6: `HTTP-version = "HTTP/" DIGIT "." DIGIT`, as `major.minor`. */
const HTTP_VERSION = /^(\d+)\.(\d+)$/;

/**
 * Checks an opening handshake request (RFC 6455 §4.2.1) and returns what it asked for.
 *
 * The statuses, in the order the rules are checked:
 * - method not `GET` → **405** with `Allow: GET` (RFC 7231 §6.5.5 requires `Allow`);
 * - HTTP version below 1.1 → **400**: the version is one the server speaks (505 would say it is
 *   not, RFC 7231 §6.6.6), but the request cannot be a handshake (RFC 6455 §4.1 item 1, §4.2.1
 *   item 1: "HTTP/1.1 or higher");
 * - `Host` missing, empty or repeated → **400** (RFC 6455 §4.2.1 item 2, RFC 7230 §5.4);
 * - `Upgrade` missing or without `websocket` → **426** with `Upgrade: websocket` and
 *   `Connection: Upgrade`, as python-websockets does: this is what a plain HTTP request to a
 *   WebSocket endpoint gets, and RFC 7231 §6.5.15 / RFC 7230 §6.7 make 426 the status that
 *   says which protocol to switch to (ws answers 400);
 * - `Connection` without `upgrade` → **400** (RFC 6455 §4.2.1 item 4; `Upgrade` was right, so
 *   the request is malformed rather than plain HTTP);
 * - `Sec-WebSocket-Version` missing or not `13` → **426** with `Sec-WebSocket-Version: 13`
 *   (RFC 6455 §4.2.2 item 4, §4.4). It is checked before the key because clients of other
 *   versions (e.g. hixie-76) send no `Sec-WebSocket-Key`, and 426 tells them what to speak;
 * - `Sec-WebSocket-Key` missing, repeated, or not base64 of 16 bytes → **400** (§4.2.1 item 5);
 * - `Sec-WebSocket-Protocol`, `Sec-WebSocket-Extensions` malformed, or `Origin` repeated →
 *   **400**.
 *
 * @throws HandshakeError with the status above and a message that says what is wrong.
 */
export function validateRequest(req: HandshakeRequest): ValidatedRequest {
  const { headers } = req;

  // RFC 6455 §4.1 item 1: "The method of the request MUST be GET".
  if (req.method !== 'GET') {
    throw new HandshakeError(
      `The WebSocket handshake requires the GET method, not ${req.method}`,
      405,
      { Allow: 'GET' },
    );
  }

  const version = HTTP_VERSION.exec(req.httpVersion);
  const major = version ? Number(version[1]) : 0;
  const minor = version ? Number(version[2]) : 0;
  if (!version || major < 1 || (major === 1 && minor < 1)) {
    throw new HandshakeError(
      `The WebSocket handshake requires HTTP/1.1 or later, not HTTP/${req.httpVersion}`,
      400,
    );
  }

  const host = single(headers, 'host', 'Host', 400);
  if (host === undefined || host.trim() === '') {
    throw new HandshakeError('Missing Host header', 400);
  }

  // RFC 6455 §4.2.1 item 3: an Upgrade header field containing "websocket", case-insensitively.
  const upgradeRequired = { Upgrade: 'websocket', Connection: 'Upgrade' };
  if (headers.upgrade === undefined) {
    throw new HandshakeError(
      'Missing Upgrade header: this is a WebSocket endpoint; send "Upgrade: websocket"',
      426,
      upgradeRequired,
    );
  }
  const upgrade = withStatus(426, upgradeRequired, () => parseUpgrade(headers.upgrade));
  if (!includesIgnoringCase(upgrade, 'websocket')) {
    throw new HandshakeError(
      `Upgrade header must include "websocket", got ${JSON.stringify(upgrade.join(', '))}`,
      426,
      upgradeRequired,
    );
  }

  // RFC 6455 §4.2.1 item 4: a Connection header field that includes "Upgrade".
  if (headers.connection === undefined) {
    throw new HandshakeError('Missing Connection header: send "Connection: Upgrade"', 400);
  }
  const connection = parseTokenList(headers.connection, 'Connection');
  if (!includesIgnoringCase(connection, 'upgrade')) {
    throw new HandshakeError(
      `Connection header must include "Upgrade", got ${JSON.stringify(connection.join(', '))}`,
      400,
    );
  }

  // RFC 6455 §4.2.2 item 4, §4.4: answer an unknown version with 426 and the versions we speak.
  const versionRequired = { 'Sec-WebSocket-Version': String(WEBSOCKET_VERSION) };
  const wsVersion = withStatus(426, versionRequired, () =>
    single(headers, 'sec-websocket-version', 'Sec-WebSocket-Version', 426),
  );
  if (wsVersion === undefined) {
    throw new HandshakeError(
      `Missing Sec-WebSocket-Version header: this server speaks version ${WEBSOCKET_VERSION}`,
      426,
      versionRequired,
    );
  }
  if (wsVersion.trim() !== String(WEBSOCKET_VERSION)) {
    throw new HandshakeError(
      `Unsupported Sec-WebSocket-Version ${JSON.stringify(wsVersion)}: this server speaks version ${WEBSOCKET_VERSION}`,
      426,
      versionRequired,
    );
  }

  // RFC 6455 §4.2.1 item 5: a base64-encoded value that decodes to 16 bytes.
  const rawKey = single(headers, 'sec-websocket-key', 'Sec-WebSocket-Key', 400);
  if (rawKey === undefined) throw new HandshakeError('Missing Sec-WebSocket-Key header', 400);
  const key = rawKey.trim();
  if (!isValidKey(key)) {
    throw new HandshakeError('Sec-WebSocket-Key must be 16 bytes, base64-encoded', 400);
  }

  // RFC 6455 §4.2.1 items 8–9: optional, but must parse when present.
  const protocols = parseTokenList(headers['sec-websocket-protocol'], 'Sec-WebSocket-Protocol');
  const extensions = parseExtensions(headers['sec-websocket-extensions']);
  const origin = single(headers, 'origin', 'Origin', 400);

  return { key, version: WEBSOCKET_VERSION, protocols, extensions, origin, host };
}

/**
 * Picks the subprotocol to answer with: the first of the client's offers that the server
 * supports, compared exactly. The client lists its offers "ordered by preference"
 * (RFC 6455 §4.1 item 10), so its order wins; this is also the default of ws and
 * python-websockets. A server that wants its own order can pass a custom selector upstream.
 *
 * @returns the subprotocol, or `undefined` to answer without `Sec-WebSocket-Protocol`, which
 * the client may then refuse (RFC 6455 §4.2.2 item 5.4).
 */
export function selectSubprotocol(
  offered: readonly string[],
  supported: readonly string[],
): string | undefined {
  return offered.find((protocol) => supported.includes(protocol));
}

/** What the server answers a valid request with (RFC 6455 §4.2.2 item 5). */
export interface AcceptOptions {
  /** The client's `Sec-WebSocket-Key`. */
  key: string;
  /** The chosen subprotocol; must be one the client offered. */
  protocol?: string;
  /** The accepted extensions, already formatted (see `formatExtensions`). */
  extensions?: string;
  /** More headers, e.g. `Set-Cookie`. */
  headers?: Record<string, string>;
  /**
   * The SHA-1 for `Sec-WebSocket-Accept` (see {@link acceptKey}), e.g. the platform's; default:
   * the engine's own, in plain TypeScript.
   */
  sha1?: (data: Uint8Array) => Uint8Array;
}

/** Headers the accept response writes itself; setting them again would break the handshake. */
const ACCEPT_RESERVED = new Set([
  'upgrade',
  'connection',
  'sec-websocket-accept',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
]);

/** The lines of user-supplied headers, refusing the ones the handshake owns. */
function userHeaderLines(
  headers: Readonly<Record<string, string>> | undefined,
  reserved: ReadonlySet<string>,
  hint: string,
): string {
  let out = '';
  if (headers === undefined) return out;
  for (const [name, value] of Object.entries(headers)) {
    if (reserved.has(name.toLowerCase())) {
      throw new TypeError(`Header ${name} is set by the handshake; ${hint}`);
    }
    out += headerLine(name, value);
  }
  return out;
}

/**
 * The full `101 Switching Protocols` response that completes the handshake (RFC 6455 §4.2.2
 * item 5), ending with the blank line.
 *
 * @throws TypeError when a header name is not a token, a value holds CR, LF or NUL (which would
 * let it split the response), or `headers` sets a header the handshake writes itself.
 */
export function buildAcceptResponse(opts: AcceptOptions): string {
  let out =
    'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    headerLine('Sec-WebSocket-Accept', acceptKey(opts.key, opts.sha1));
  if (opts.protocol !== undefined) {
    // RFC 6455 §4.2.2 item 5.4: the selected subprotocol is a single token.
    if (!isToken(opts.protocol)) {
      throw new TypeError(`Subprotocol ${JSON.stringify(opts.protocol)} is not a token`);
    }
    out += headerLine('Sec-WebSocket-Protocol', opts.protocol);
  }
  if (opts.extensions !== undefined && opts.extensions !== '') {
    out += headerLine('Sec-WebSocket-Extensions', opts.extensions);
  }
  out += userHeaderLines(opts.headers, ACCEPT_RESERVED, 'use the protocol or extensions option');
  return `${out}\r\n`;
}

/** Reason phrases (RFC 7231 §6.1, RFC 6585) for the statuses a handshake may answer with. */
const REASON_PHRASES: Readonly<Record<number, string>> = {
  200: 'OK',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

/** Headers the reject response computes from its body. */
const REJECT_RESERVED = new Set(['content-length']);

/**
 * A complete HTTP response refusing the handshake, with `message` as a plain-text body and the
 * connection closed after it (a refused upgrade leaves nothing else to say on it).
 *
 * `headers` (e.g. `HandshakeError.headers`) are added; a `Connection` header in them is merged
 * with `close` (a 426 must offer `Connection: Upgrade` with its `Upgrade`, RFC 7230 §6.7), and a
 * `Content-Type` replaces the default `text/plain; charset=utf-8`.
 *
 * @param status - an HTTP status, 200–599.
 * @throws RangeError for another status; TypeError for a header that would split the response
 * or a `Content-Length` header (it is computed: the UTF-8 length of `message`).
 */
export function buildRejectResponse(
  status: number,
  message: string,
  headers?: Readonly<Record<string, string>>,
): string {
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new RangeError(`buildRejectResponse: ${status} is not a status that refuses a handshake`);
  }
  const body = new TextEncoder().encode(message);
  let connection = 'close';
  let contentType = 'text/plain; charset=utf-8';
  const rest: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const lower = name.toLowerCase();
    if (lower === 'connection') connection = `${value}, close`;
    else if (lower === 'content-type') contentType = value;
    else rest[name] = value;
  }
  const reason = REASON_PHRASES[status] ?? 'Unknown';
  return (
    `HTTP/1.1 ${status} ${reason}\r\n` +
    headerLine('Connection', connection) +
    headerLine('Content-Type', contentType) +
    `Content-Length: ${body.length}\r\n` +
    userHeaderLines(rest, REJECT_RESERVED, 'it is the length of the message') +
    `\r\n${message}`
  );
}
