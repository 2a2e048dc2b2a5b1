/**
 * The server's checks of an upgrade request, in ws 8's order and with ws's statuses and messages
 * (method 405, Upgrade 400, key 400, version, then — after the path — subprotocols 400 and
 * extensions 400), on duplex's protocol functions. Where duplex is stricter it keeps its rule:
 * a version other than 13 or 8 gets 426 with `Sec-WebSocket-Version: 13, 8` (ws: 400),
 * and HTTP/1.0, a missing or repeated Host, or a Connection header without "upgrade" get
 * duplex's 400 (`validateRequest`). Also the refusal's bytes, written on the raw socket.
 */
import { STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { HandshakeError } from '../protocol/errors.js';
import { headerLine, isValidKey } from '../protocol/handshake-common.js';
import { validateRequest } from '../protocol/handshake-server.js';
import { formatExtensions, parseExtensions, parseTokenList } from '../protocol/headers.js';
import { EXTENSION_NAME, negotiateServer, type NegotiatedDeflate, type PerMessageDeflateOptions } from '../protocol/permessage-deflate.js';

/** A refused request: the status, the body, extra headers, and whether `wsClientError` may take it (as in ws). */
export interface Refusal {
  readonly status: number;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** What the first checks (before the path) found: the key, or a refusal. */
export type FirstCheck = { readonly key: string } | Refusal;

/** A refusal `wsClientError` listeners may take over (ws: every one before `verifyClient` but the path's). */
export function isRefusal(value: object): value is Refusal {
  return 'status' in value;
}

/**
 * ws's checks up to the version, then duplex's stricter ones (HTTP version, Host, Connection)
 * through `validateRequest` on the headers they read.
 */
export function checkRequest(req: IncomingMessage): FirstCheck {
  const headers = req.headers;
  // Node's parser gives strings; a hand-made request (e.g. @fastify/websocket's injectWS) may
  // give a number, which ws takes as its text.
  const version = headerText(headers['sec-websocket-version']);
  if (req.method !== 'GET') return { status: 405, message: 'Invalid HTTP method' };
  const upgrade = headers.upgrade;
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return { status: 400, message: 'Invalid Upgrade header' };
  const key = headers['sec-websocket-key'];
  if (typeof key !== 'string' || !isValidKey(key)) return { status: 400, message: 'Missing or invalid Sec-WebSocket-Key header' };
  const number = Number(version);
  if (number !== 13 && number !== 8) {
    // RFC 6455 §4.2.2 item 4: 426 with the versions spoken (ws answers 400). Version 8 (the last
    // hybi draft) frames exactly as 13 does, and ws accepts it, so this module does too.
    return { status: 426, message: 'Missing or invalid Sec-WebSocket-Version header', headers: { 'Sec-WebSocket-Version': '13, 8' } };
  }
  try {
    validateRequest({
      method: req.method,
      httpVersion: req.httpVersion,
      url: req.url ?? '/',
      headers: {
        host: headers.host,
        upgrade,
        connection: headers.connection,
        // duplex's own checks speak 13 only; 8 passed the check above.
        'sec-websocket-version': '13',
        'sec-websocket-key': key,
      },
    });
  } catch (error) {
    if (error instanceof HandshakeError) return { status: error.status, message: error.message, headers: error.headers };
    throw error;
  }
  return { key };
}

/** A header value as text: a number (only in a hand-made request) becomes its digits. */
function headerText(value: string | string[] | number | undefined): string | string[] | undefined {
  return typeof value === 'number' ? String(value) : value;
}

/** The client's subprotocols as ws reads them (a Set, in order), or ws's refusal for a malformed or repeated one. */
export function readProtocols(req: IncomingMessage): Set<string> | Refusal {
  const header = req.headers['sec-websocket-protocol'];
  const protocols = new Set<string>();
  if (header === undefined) return protocols;
  const invalid: Refusal = { status: 400, message: 'Invalid Sec-WebSocket-Protocol header' };
  let list: string[];
  try {
    list = parseTokenList(header, 'Sec-WebSocket-Protocol');
  } catch {
    return invalid;
  }
  for (const protocol of list) {
    if (protocols.has(protocol)) return invalid;
    protocols.add(protocol);
  }
  return protocols.size === 0 ? invalid : protocols;
}

/** The permessage-deflate agreement: its parameters and the 101's `Sec-WebSocket-Extensions` value. */
export interface DeflateAgreement {
  readonly params: NegotiatedDeflate;
  readonly header: string;
}

/**
 * The permessage-deflate answer to the client's offers (server with `perMessageDeflate` on), or
 * ws's refusal when the header is malformed or offers permessage-deflate with nothing acceptable.
 */
export function negotiateDeflate(req: IncomingMessage, options: PerMessageDeflateOptions): DeflateAgreement | Refusal | undefined {
  const header = req.headers['sec-websocket-extensions'];
  if (header === undefined) return undefined;
  const invalid: Refusal = { status: 400, message: 'Invalid or unacceptable Sec-WebSocket-Extensions header' };
  try {
    const offers = parseExtensions(header);
    const agreed = negotiateServer(offers, options);
    if (agreed !== undefined) return { params: agreed.params, header: formatExtensions([agreed.response]) };
    return offers.some((offer) => offer.name.toLowerCase() === EXTENSION_NAME) ? invalid : undefined;
  } catch {
    return invalid;
  }
}

/**
 * Refuse on the raw socket as ws does: `status`, the reason phrase, `Connection: close`, the
 * message (default: the reason phrase) as the body, then close the socket once written.
 * @throws TypeError for a header (from `verifyClient`) that would split the response.
 */
export function writeRefusal(socket: Duplex, status: number, message?: string, headers?: OutgoingHttpHeaders | Readonly<Record<string, string>>): void {
  const reason = STATUS_CODES[status] ?? 'Unknown';
  const body = message || reason;
  const all: OutgoingHttpHeaders = {
    Connection: 'close',
    'Content-Type': 'text/html',
    'Content-Length': Buffer.byteLength(body),
    ...headers,
  };
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [name, value] of Object.entries(all)) {
    if (value !== undefined) head += headerLine(name, Array.isArray(value) ? value.join(', ') : String(value));
  }
  socket.once('finish', destroySocket);
  socket.end(`${head}\r\n${body}`);
}

function destroySocket(this: Duplex): void {
  this.destroy();
}
