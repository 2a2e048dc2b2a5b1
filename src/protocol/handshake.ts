/**
 * The opening handshake of RFC 6455 §4, for both ends, as pure functions: they read and write
 * header records and HTTP text, and never touch a socket.
 *
 * Server: {@link validateRequest} → {@link selectSubprotocol} → {@link buildAcceptResponse}, or
 * {@link buildRejectResponse} with the status and headers of the `HandshakeError` it threw.
 * Client: {@link generateKey} → {@link clientRequestHeaders} / {@link buildClientRequest} →
 * {@link validateResponse}.
 */

import { WEBSOCKET_GUID } from './constants.js';
import { HandshakeError } from './errors.js';
import type { ExtensionOffer } from './extension.js';
import {
  type HeaderValue,
  isToken,
  parseExtensions,
  parseTokenList,
  parseUpgrade,
} from './headers.js';
import { sha1 } from './sha1.js';

/** The only protocol version this engine speaks (RFC 6455 §4.1, §11.6). */
const WEBSOCKET_VERSION = 13;

/** Header records as Node gives them: lower-case names; repeated lines may be arrays. */
export type HeaderRecord = Readonly<Record<string, HeaderValue>>;

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

/** What the server's 101 response settled (RFC 6455 §4.1, §4.2.2). */
export interface ValidatedResponse {
  /** The subprotocol the server chose, or `undefined` for none. */
  protocol: string | undefined;
  /** The extensions the server accepted; the caller checks that it offered them. */
  extensions: ExtensionOffer[];
}

// ---------------------------------------------------------------------------------------------
// Keys

/** Base64 of 16 bytes: 22 characters and `==` (RFC 4648 §4). */
const KEY = /^[A-Za-z0-9+/]{22}==$/;

/** Base64 (RFC 4648 §4) of raw bytes, through the web-standard `btoa`. */
function base64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]!);
  return btoa(binary);
}

/** The default source of randomness: Web Crypto, available in browsers and in Node ≥ 19. */
function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/**
 * A fresh `Sec-WebSocket-Key`: 16 random bytes, base64-encoded (RFC 6455 §4.1 item 7: "randomly
 * selected … for each connection").
 *
 * @param random - a source of random bytes; defaults to `crypto.getRandomValues`.
 * @throws TypeError when `random` does not return 16 bytes.
 */
export function generateKey(random: (n: number) => Uint8Array = randomBytes): string {
  const bytes = random(16);
  if (bytes.length !== 16) {
    throw new TypeError(`generateKey: the random source returned ${bytes.length} bytes, not 16`);
  }
  return base64(bytes);
}

/**
 * The `Sec-WebSocket-Accept` value for a key: base64(SHA-1(key + GUID)) (RFC 6455 §1.3, §4.2.2
 * item 5.4). `acceptKey('dGhlIHNhbXBsZSBub25jZQ==')` is `'s3pPLMBiTxaQ9kYGzzhZRbK+xOo='`.
 *
 * @param digest - the SHA-1 to use, e.g. the platform's (`node:crypto`); defaults to the engine's
 *   own in plain TypeScript, which runs anywhere. It gets the bytes and returns the 20-byte digest.
 */
export function acceptKey(key: string, digest: (data: Uint8Array) => Uint8Array = sha1): string {
  return base64(digest(asciiBytes(key + WEBSOCKET_GUID)));
}

/** A reused buffer for the ASCII key + GUID (60 bytes for a valid key). */
const KEY_BYTES = new Uint8Array(128);

/** The bytes of an ASCII string (a base64 key and the GUID are ASCII); UTF-8 for anything longer or wider. */
function asciiBytes(text: string): Uint8Array {
  if (text.length > KEY_BYTES.length) return new TextEncoder().encode(text);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return new TextEncoder().encode(text);
    KEY_BYTES[i] = code;
  }
  return KEY_BYTES.subarray(0, text.length);
}

/** Whether `key` is a valid `Sec-WebSocket-Key`: base64 that decodes to 16 bytes. */
function isValidKey(key: string): boolean {
  // Like ws and python-websockets, the 4 unused bits of the last character are not checked.
  return KEY.test(key);
}

// ---------------------------------------------------------------------------------------------
// Server side

/** The one value of a header that must appear at most once, or a `HandshakeError`. */
function single(headers: HeaderRecord, name: string, field: string, status: number): string | undefined {
  const value = headers[name];
  if (value === undefined || typeof value === 'string') return value;
  if (value.length === 1) return value[0];
  if (value.length === 0) return undefined;
  throw new HandshakeError(`${field} header must appear exactly once`, status);
}

/** Case-insensitive membership (RFC 7230 §6.1, §6.7: connection options, protocol names). */
function includesIgnoringCase(list: readonly string[], wanted: string): boolean {
  return list.some((item) => item.toLowerCase() === wanted);
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

/** Runs `parse`, giving any `HandshakeError` it throws another status and headers. */
function withStatus<T>(status: number, headers: Record<string, string>, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof HandshakeError) throw new HandshakeError(error.message, status, headers);
    throw error;
  }
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

/** `name: value\r\n`, refusing what would let a value split the message (RFC 7230 §3.2). */
function headerLine(name: string, value: string): string {
  if (!isToken(name)) throw new TypeError(`Invalid header name ${JSON.stringify(name)}`);
  if (/[\r\n\0]/.test(value)) {
    throw new TypeError(`Header ${name} has a value with CR, LF or NUL in it`);
  }
  return `${name}: ${value}\r\n`;
}

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

// ---------------------------------------------------------------------------------------------
// Client side

/** What the client sends to open a connection (RFC 6455 §4.1). */
export interface ClientRequestOptions {
  /** `Host`: the host, with `:port` when it is not the scheme's default (RFC 6455 §4.1 item 4). */
  host: string;
  /** The request-target: path and query, starting with `/` (RFC 6455 §3 resource-name). */
  path: string;
  /** `Sec-WebSocket-Key`, from {@link generateKey}. */
  key: string;
  /** Subprotocols to offer, most preferred first; tokens, each at most once. */
  protocols?: readonly string[];
  /** Extension offers, already formatted (see `formatExtensions`). */
  extensions?: string;
  /** `Origin`, which browsers send; other clients may (RFC 6455 §4.1 item 8). */
  origin?: string;
  /** More headers, e.g. `Authorization`. */
  headers?: Record<string, string>;
}

/** Headers that the request writes from its options. */
const CLIENT_RESERVED = new Set([
  'host',
  'upgrade',
  'connection',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
  'origin',
]);

/**
 * The headers of the client's opening handshake (RFC 6455 §4.1 items 4–11), for
 * `http.request({ headers })` or {@link buildClientRequest}.
 *
 * @throws TypeError when the key is not base64 of 16 bytes, a subprotocol is not a token or is
 * repeated (RFC 6455 §4.1 item 10: "MUST all be unique"), a header could split the request, or
 * `headers` sets a header that has its own option.
 */
export function clientRequestHeaders(opts: ClientRequestOptions): Record<string, string> {
  if (!isValidKey(opts.key)) {
    throw new TypeError('Sec-WebSocket-Key must be 16 bytes, base64-encoded (use generateKey())');
  }
  const headers: Record<string, string> = {
    Host: opts.host,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': opts.key,
    'Sec-WebSocket-Version': String(WEBSOCKET_VERSION),
  };
  if (opts.protocols !== undefined && opts.protocols.length > 0) {
    const seen = new Set<string>();
    for (const protocol of opts.protocols) {
      if (!isToken(protocol)) {
        throw new TypeError(`Subprotocol ${JSON.stringify(protocol)} is not a token`);
      }
      if (seen.has(protocol)) throw new TypeError(`Subprotocol "${protocol}" is offered twice`);
      seen.add(protocol);
    }
    headers['Sec-WebSocket-Protocol'] = opts.protocols.join(', ');
  }
  if (opts.extensions !== undefined && opts.extensions !== '') {
    headers['Sec-WebSocket-Extensions'] = opts.extensions;
  }
  if (opts.origin !== undefined) headers['Origin'] = opts.origin;
  for (const [name, value] of Object.entries(opts.headers ?? {})) {
    if (CLIENT_RESERVED.has(name.toLowerCase())) {
      throw new TypeError(`Header ${name} is set by the handshake; use its option instead`);
    }
    headers[name] = value;
  }
  // Checks every name and value, the ones from options included.
  for (const [name, value] of Object.entries(headers)) headerLine(name, value);
  return headers;
}

/**
 * The raw text of the client's opening handshake request (RFC 6455 §4.1), ending with the
 * blank line: `GET <path> HTTP/1.1` and {@link clientRequestHeaders}.
 *
 * @throws TypeError as {@link clientRequestHeaders}, and when `path` does not start with `/`
 * or holds whitespace or control characters (RFC 7230 §3.1.1 request-target).
 */
export function buildClientRequest(opts: ClientRequestOptions): string {
  if (!/^\/[\x21-\x7e]*$/.test(opts.path)) {
    throw new TypeError(
      `Invalid request path ${JSON.stringify(opts.path)}: it must start with "/" and hold no spaces or control characters`,
    );
  }
  let out = `GET ${opts.path} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(clientRequestHeaders(opts))) {
    out += headerLine(name, value);
  }
  return `${out}\r\n`;
}

/** The parts of the server's response that the client checks. */
export interface HandshakeResponse {
  /** The status code. */
  status: number;
  /** Header fields with lower-case names. */
  headers: Record<string, string | string[] | undefined>;
}

/** What the client offered, to check the response against. */
export interface ExpectedResponse {
  /** The `Sec-WebSocket-Key` that was sent. */
  key: string;
  /** The subprotocols that were offered (empty for none). */
  protocols: readonly string[];
  /**
   * The SHA-1 to check `Sec-WebSocket-Accept` with (see {@link acceptKey}), e.g. the platform's;
   * default: the engine's own, in plain TypeScript.
   */
  sha1?: (data: Uint8Array) => Uint8Array;
}

/**
 * Checks the server's answer to the opening handshake (RFC 6455 §4.1, "the client MUST
 * validate the server's response as follows"):
 * - status 101 (item 1);
 * - `Upgrade` is `websocket`, case-insensitively (item 2);
 * - `Connection` includes `upgrade`, case-insensitively (item 3);
 * - exactly one `Sec-WebSocket-Accept`, equal to `acceptKey(key)` (item 4);
 * - `Sec-WebSocket-Protocol` absent, or exactly one of the offered subprotocols (item 6).
 *   An absent one is accepted even when subprotocols were offered (the server may decline
 *   them, RFC 6455 §4.2.2 item 5.4); ws fails in that case, python-websockets does not.
 * - `Sec-WebSocket-Extensions` parses (item 5); whether each was offered is the caller's call.
 *
 * @throws HandshakeError whose `status` is the status the server answered.
 */
export function validateResponse(res: HandshakeResponse, expected: ExpectedResponse): ValidatedResponse {
  const { status, headers } = res;
  function fail(message: string): never {
    throw new HandshakeError(message, status);
  }
  return withStatus(status, {}, () => {
    if (status !== 101) {
      fail(`The server answered ${status} instead of 101 Switching Protocols`);
    }

    const upgrade = parseUpgrade(headers.upgrade);
    if (upgrade.length !== 1 || upgrade[0]!.toLowerCase() !== 'websocket') {
      fail(
        headers.upgrade === undefined
          ? 'The server response has no Upgrade header'
          : `The server response's Upgrade header is ${JSON.stringify(upgrade.join(', '))}, not "websocket"`,
      );
    }

    const connection = parseTokenList(headers.connection, 'Connection');
    if (!includesIgnoringCase(connection, 'upgrade')) {
      fail(`The server response's Connection header does not include "Upgrade"`);
    }

    const accept = single(headers, 'sec-websocket-accept', 'Sec-WebSocket-Accept', status);
    if (accept === undefined) fail('The server response has no Sec-WebSocket-Accept header');
    if (accept.trim() !== acceptKey(expected.key, expected.sha1)) {
      fail('The server response has the wrong Sec-WebSocket-Accept for the key that was sent');
    }

    let protocol: string | undefined;
    if (headers['sec-websocket-protocol'] !== undefined) {
      const chosen = parseTokenList(headers['sec-websocket-protocol'], 'Sec-WebSocket-Protocol');
      if (chosen.length !== 1) {
        fail('The server response must name exactly one subprotocol in Sec-WebSocket-Protocol');
      }
      protocol = chosen[0];
      if (!expected.protocols.includes(protocol)) {
        fail(
          expected.protocols.length === 0
            ? `The server chose subprotocol "${protocol}" but none was offered`
            : `The server chose subprotocol "${protocol}", which was not offered`,
        );
      }
    }

    const extensions = parseExtensions(headers['sec-websocket-extensions']);
    return { protocol, extensions };
  });
}
