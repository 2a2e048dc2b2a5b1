/**
 * The client's side of the opening handshake (RFC 6455 §4.1), as pure functions:
 * {@link generateKey} → {@link clientRequestHeaders} / {@link buildClientRequest} →
 * {@link validateResponse}.
 */

import { HandshakeError } from './errors.js';
import type { ExtensionOffer } from './extension.js';
import { isToken, parseExtensions, parseTokenList, parseUpgrade } from './headers.js';
import { WEBSOCKET_VERSION, acceptKey, headerLine, includesIgnoringCase, isValidKey, single, withStatus } from './handshake-common.js';

/** What the server's 101 response settled (RFC 6455 §4.1, §4.2.2). */
export interface ValidatedResponse {
  /** The subprotocol the server chose, or `undefined` for none. */
  protocol: string | undefined;
  /** The extensions the server accepted; the caller checks that it offered them. */
  extensions: ExtensionOffer[];
}


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
