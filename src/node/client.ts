/**
 * The client binding: `connect(url)` performs the opening handshake (RFC 6455 §4.1) over
 * `http`/`https` and resolves with an open `WebSocket`, or rejects with a `HandshakeError`
 * carrying the status (and body) the server answered.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { DEFAULTS } from '../protocol/defaults.js';
import { HandshakeError, toError } from '../protocol/errors.js';
import type { MessageCodec } from '../protocol/extension.js';
import { clientRequestHeaders, generateKey, validateResponse } from '../protocol/handshake.js';
import { formatExtensions } from '../protocol/headers.js';
import { parseWebSocketUrl } from '../protocol/url.js';
import {
  EXTENSION_NAME as PERMESSAGE_DEFLATE,
  acceptServerResponse,
  buildClientOffer,
  type PerMessageDeflateOptions,
} from '../protocol/permessage-deflate.js';
import { createDeflateCodec } from './deflate.js';
import type { Logger } from './logger.js';
import type { WebSocketHandlers } from './handlers.js';
import type { ConnectionSettings } from './settings.js';
import { nodeSha1 } from './sha1.js';
import { WebSocket } from './websocket.js';

/** Options of `connect`. */
/** Options of `connect`; the `ConnectionSettings` (limits, keepalive, flow control) apply to the connection. */
export interface ConnectOptions<Data = undefined> extends ConnectionSettings {
  /** Callbacks for this connection. */
  handlers?: WebSocketHandlers<Data>;
  /** Per-connection context available as `ws.data`. */
  data?: Data;
  /** Subprotocols to offer, preferred first. */
  protocols?: readonly string[];
  /** More request headers (e.g. `Authorization`, `Cookie`). */
  headers?: Record<string, string>;
  /** `Origin` header to send. */
  origin?: string;
  /** Offer permessage-deflate (RFC 7692). On by default, as in ws and browsers. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Give up on the handshake after this many ms (default 10 s). */
  handshakeTimeout?: number;
  /** TLS options for `wss://` (e.g. `ca`, `rejectUnauthorized`, `servername`). */
  tls?: TlsOptions;
  /** Where the connection's log lines go (default: nowhere; pass a pino instance or `createConsoleLogger()`). */
  logger?: Logger;
}

const DEFAULT_HANDSHAKE_TIMEOUT = DEFAULTS.client.handshakeTimeout;
/** A refused handshake's body is read up to this size, for the error message. */
const MAX_ERROR_BODY = 4096;

/** Open a WebSocket connection to `url` (`ws://` or `wss://`). */
export function connect<Data = undefined>(url: string | URL, options: ConnectOptions<Data> = {}): Promise<WebSocket<Data>> {
  return new Promise((resolve, reject) => {
    const target = parseWebSocketUrl(url);
    if ('problem' in target) {
      reject(new TypeError(target.problem === 'scheme' ? `Unsupported URL scheme ${target.scheme} (use ws: or wss:)` : `Invalid URL: ${String(url)}`));
      return;
    }
    const { secure } = target;
    const deflate: PerMessageDeflateOptions | undefined =
      options.perMessageDeflate === false ? undefined : options.perMessageDeflate === true || options.perMessageDeflate === undefined ? {} : options.perMessageDeflate;
    const key = generateKey();
    const protocols = options.protocols ?? [];
    const headers = clientRequestHeaders({
      host: target.host,
      path: target.path,
      key,
      protocols,
      extensions: deflate ? formatExtensions([buildClientOffer(deflate)]) : undefined,
      origin: options.origin,
      headers: options.headers,
    });
    const makeRequest = secure ? httpsRequest : httpRequest;
    const req = makeRequest({
      host: target.hostname,
      port: target.port,
      path: target.path,
      method: 'GET',
      headers,
      agent: false,
      ...(secure ? options.tls : {}),
    });
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new HandshakeError(`opening handshake timed out after ${options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT} ms`, 0)),
      options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
    );
    req.on('error', (error) => fail(error));
    req.on('response', (res: IncomingMessage) => {
      // Not an upgrade: read a bounded body so the error says what the server said.
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < MAX_ERROR_BODY) chunks.push(chunk);
        size += chunk.length;
      });
      const done = (): void => {
        const body = Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY).toString('utf8').trim();
        const status = res.statusCode ?? 0;
        // The response headers go with the error (e.g. `Retry-After` on 429/503, `WWW-Authenticate` on 401).
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
        fail(new HandshakeError(`server answered ${status} ${res.statusMessage ?? ''}${body ? `: ${body}` : ''}`, status, headers));
      };
      res.on('end', done);
      res.on('error', done);
    });
    req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      if (settled) {
        socket.destroy();
        return;
      }
      let codec: MessageCodec | undefined;
      let protocol: string | undefined;
      let extensions = '';
      try {
        const validated = validateResponse({ status: res.statusCode ?? 0, headers: res.headers }, { key, protocols, sha1: nodeSha1 });
        protocol = validated.protocol;
        if (validated.extensions.length > 0) {
          // RFC 6455 §9.1: the server may only accept extensions that were offered.
          const unknown = validated.extensions.find((e) => e.name !== PERMESSAGE_DEFLATE);
          if (unknown || !deflate) {
            throw new HandshakeError(`server accepted an extension that was not offered: ${(unknown ?? validated.extensions[0]).name}`, 101);
          }
          const params = acceptServerResponse(validated.extensions, deflate);
          if (params) {
            codec = createDeflateCodec('client', params, deflate);
            extensions = formatExtensions(validated.extensions);
          }
        }
      } catch (error) {
        socket.destroy();
        fail(toError(error));
        return;
      }
      settled = true;
      clearTimeout(timer);
      const ws = new WebSocket<Data>(socket, {
        ...options, // the ConnectionSettings
        side: 'client',
        handlers: options.handlers ?? {},
        data: options.data as Data,
        protocol,
        extensions,
        codec,
        logger: options.logger,
      });
      resolve(ws);
      ws.start(head);
    });
    req.end();
  });
}
