/**
 * What the server writes back before any WebSocket byte: the 101 that accepts an upgrade, the
 * HTTP errors that refuse one (written on the raw socket, which is then closed), the answer to
 * errors of Node's HTTP parser, and the 426 for plain HTTP requests to a server of `listen`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { HandshakeError, toError } from '../../protocol/errors.js';
import { buildAcceptResponse, buildRejectResponse } from '../../protocol/handshake.js';
import { nodeSha1 } from '../sha1.js';
import { isToken } from '../../protocol/headers.js';
import type { Logger } from '../logger.js';

/** `UpgradeContext.reject`: refuse the handshake by throwing the `HandshakeError` the server answers with. */
export function rejectUpgrade(status: number, message: string, headers?: Readonly<Record<string, string>>): never {
  throw new HandshakeError(message, status, headers);
}

/**
 * The 101 response, with the hook's headers (one line per value of a repeated header).
 * @throws TypeError for a header name or value that would split the response, or a reserved one.
 */
export function acceptResponse(
  key: string,
  protocol: string | undefined,
  extensions: string | undefined,
  extra: ReadonlyArray<[string, string | readonly string[]]> | undefined,
): string {
  if (!extra) return buildAcceptResponse({ key, protocol, extensions, sha1: nodeSha1 });
  const single: Record<string, string> = {};
  let more = '';
  for (const [name, value] of extra) {
    const values = typeof value === 'string' ? [value] : value;
    for (const v of values) {
      if (!(name in single)) {
        single[name] = v; // validated (and refused if reserved) by buildAcceptResponse
        continue;
      }
      if (!isToken(name) || /[\r\n\0]/.test(v)) throw new TypeError(`Invalid response header ${JSON.stringify(name)}`);
      more += `${name}: ${v}\r\n`;
    }
  }
  const response = buildAcceptResponse({ key, protocol, extensions, headers: single, sha1: nodeSha1 });
  return more ? response.slice(0, -2) + more + '\r\n' : response;
}

/**
 * Write an HTTP error response on the raw socket and close it once written; a socket that
 * can no longer be written to is only destroyed.
 */
export function endWithError(socket: Duplex, status: number, message: string, headers: Readonly<Record<string, string>> | undefined, logger: Logger): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  let response: string;
  try {
    response = buildRejectResponse(status, message, headers);
  } catch (error) {
    // Bad headers from a hook's HandshakeError: still refuse, without them.
    logger.error({ err: toError(error).message }, 'invalid rejection headers');
    response = buildRejectResponse(status, message);
  }
  socket.end(response, () => socket.destroy());
}

/** The answer to an error of Node's HTTP parser (server of `listen`): 431 for big headers, 408 when they are slow, else 400. */
export function parserErrorResponse(code: string | undefined, maxHeaderSize: number): { status: number; message: string } {
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, message: `request headers are larger than ${maxHeaderSize} bytes` };
  if (code === 'HPE_REQUEST_TIMEOUT' || code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, message: 'request headers took too long' };
  return { status: 400, message: 'malformed HTTP request' };
}

/** Plain HTTP requests to a server of `listen`: 426 Upgrade Required. */
export function answerPlainRequest(req: IncomingMessage, res: ServerResponse): void {
  const body = 'This is a WebSocket endpoint: connect with a WebSocket client.\n';
  // RFC 7230 §6.7: a 426 names the protocol in Upgrade, listed in Connection; a request that asked
  // for `close` still gets it (setting Connection ourselves stops Node from adding it).
  const close = req.httpVersion === '1.0' || /(^|[\s,])close($|[\s,])/i.test(req.headers.connection ?? '');
  res.writeHead(426, { Upgrade: 'websocket', Connection: close ? 'Upgrade, close' : 'Upgrade', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
