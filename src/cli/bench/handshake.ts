/**
 * The client's opening handshake (RFC 6455 §4.1) over a raw `net`/`tls` socket, for
 * `duplex bench`: no `http.ClientRequest`, no `WebSocket` object, only the bytes of the request,
 * the response head and the engine's checks (`buildClientRequest`, `validateResponse`). Offers
 * no extension and no subprotocol, so every server answers with plain frames.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { parseWebSocketUrl } from '../../protocol/url.js';
import { HandshakeError } from '../../protocol/errors.js';
import { buildClientRequest, generateKey, validateResponse } from '../../protocol/handshake.js';

/** Where to connect, from a `ws://` or `wss://` URL. */
export interface Target {
  secure: boolean;
  /** Host name or address to connect to (IPv6 without brackets). */
  hostname: string;
  port: number;
  /** The `Host` header: host with `:port` when the URL has one. */
  host: string;
  /** Path and query. */
  path: string;
}

/** Parse a `ws://` or `wss://` URL; throws a TypeError with a readable message otherwise. */
export function parseTarget(url: string): Target {
  const target = parseWebSocketUrl(url);
  if ('problem' in target) {
    throw new TypeError(target.problem === 'scheme' ? `unsupported URL scheme "${target.scheme}" in ${url} (use ws: or wss:)` : `"${url}" is not a URL; expected ws://host:port/path`);
  }
  const { secure, hostname, port, host, path } = target;
  return { secure, hostname, port, host, path };
}

/** An open WebSocket transport: the socket and the bytes that came after the response head. */
export interface Opened {
  socket: Socket;
  head: Buffer;
}

/** Largest response head read (a server sending more is not a WebSocket server). */
const MAX_HEAD = 16 * 1024;
/** A refused handshake's body is read up to this size, for the error message. */
const MAX_BODY = 4096;
/** How long to wait for the body of a refusal that has no Content-Length. */
const BODY_WAIT = 300;

/**
 * Connect and perform the opening handshake. Resolves with the socket once the server's 101
 * answer is validated; rejects with a `HandshakeError` carrying the status (and body) when the
 * server refuses, or with the socket's error (`ECONNREFUSED`, …) when it cannot connect.
 */
export function openWebSocket(target: Target, timeout: number): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const key = generateKey();
    let request: string;
    try {
      request = buildClientRequest({ host: target.host, path: target.path, key });
    } catch (error) {
      reject(error as Error);
      return;
    }
    const socket = target.secure
      ? tlsConnect({ host: target.hostname, port: target.port, servername: isIP(target.hostname) ? undefined : target.hostname, ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: target.hostname, port: target.port });
    socket.setNoDelay(true);
    let buffer: Buffer = Buffer.alloc(0);
    let headEnd = -1;
    let status = 0;
    let statusText = '';
    let contentLength = -1;
    let settled = false;
    let bodyTimer: NodeJS.Timeout | undefined;

    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      clearTimeout(bodyTimer);
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('end', onEnd);
    };
    const fail = (error: Error): void => {
      if (settled) return;
      cleanup();
      socket.destroy();
      reject(error);
    };
    const refuse = (): void => {
      const body = buffer.subarray(headEnd + 4, headEnd + 4 + MAX_BODY).toString('utf8').trim();
      fail(new HandshakeError(`server answered ${status}${statusText ? ` ${statusText}` : ''}${body ? `: ${body}` : ''}`, status));
    };
    const timer = setTimeout(() => fail(new HandshakeError(`opening handshake timed out after ${timeout} ms`, 0)), timeout);

    function onEnd(): void {
      if (headEnd >= 0 && status !== 101) refuse();
      else fail(new HandshakeError('the server closed the connection during the opening handshake', 0));
    }

    function onData(chunk: Buffer): void {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      if (headEnd < 0) {
        headEnd = buffer.indexOf('\r\n\r\n');
        if (headEnd < 0) {
          if (buffer.length > MAX_HEAD) fail(new HandshakeError(`the response head exceeds ${MAX_HEAD} bytes: not a WebSocket server?`, 0));
          return;
        }
        const lines = buffer.subarray(0, headEnd).toString('latin1').split('\r\n');
        const statusLine = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
        if (!statusLine) {
          fail(new HandshakeError(`the server did not answer with HTTP: ${JSON.stringify(lines[0].slice(0, 80))}`, 0));
          return;
        }
        status = Number(statusLine[1]);
        statusText = statusLine[2] ?? '';
        const headers: Record<string, string | string[]> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          if (colon <= 0) continue;
          const name = line.slice(0, colon).trim().toLowerCase();
          const value = line.slice(colon + 1).trim();
          const prior = headers[name];
          headers[name] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value];
        }
        if (status === 101) {
          try {
            const validated = validateResponse({ status, headers }, { key, protocols: [] });
            // RFC 6455 §9.1: the server may only accept extensions that were offered (none were).
            if (validated.extensions.length > 0) {
              throw new HandshakeError(`the server accepted an extension that was not offered: ${validated.extensions[0].name}`, 101);
            }
          } catch (error) {
            fail(error as Error);
            return;
          }
          cleanup();
          resolve({ socket, head: buffer.subarray(headEnd + 4) });
          return;
        }
        const length = headers['content-length'];
        contentLength = typeof length === 'string' && /^\d+$/.test(length) ? Number(length) : -1;
        if (contentLength < 0) bodyTimer = setTimeout(refuse, BODY_WAIT);
      }
      if (contentLength >= 0 && buffer.length - (headEnd + 4) >= Math.min(contentLength, MAX_BODY)) refuse();
    }

    socket.on('data', onData);
    socket.on('error', fail);
    socket.on('end', onEnd);
    socket.once(target.secure ? 'secureConnect' : 'connect', () => socket.write(request));
  });
}
