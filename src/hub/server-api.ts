/**
 * The server API: a backend in any language pushes to browsers by POSTing JSON to the gateway
 * (`POST /api/publish` …), as with Centrifugo, Pusher or Ably. `createServerApi` gives a Node
 * request handler for an `http.Server` of yours (`duplex serve` mounts it at `/api/`); the
 * methods, their fields and their calls on the hub are `server-api-methods.ts`, the OpenAPI
 * document `server-api-spec.ts`, the guide `docs/server-api.md`.
 *
 * This file is the HTTP side: the path, the API key, the media type, the bounded body, the JSON,
 * and the answer (`{"result": …}` or `{"error": {"code", "message"}}`), with one log line per
 * refused or failed call.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { silentLogger, type Logger, type LogFields } from '../node/logger.js';
import { DEFAULTS } from '../protocol/defaults.js';
import type { Json } from './broker.js';
import { jsonDepthExceeds } from './parse-request.js';
import { SERVER_API_ERRORS, callMethod, failureOf, isServerApiMethod, type ApiFailure, type ServerApiErrorCode, type ServerApiHub } from './server-api-methods.js';
import { serverApiDocument } from './server-api-spec.js';
import { WIRE_LIMITS } from './wire.js';

export { SERVER_API_ERRORS, SERVER_API_LIMITS, SERVER_API_METHODS, type ServerApiErrorCode, type ServerApiHub, type ServerApiMethod } from './server-api-methods.js';
export { serverApiDocument, type ServerApiDocumentOptions } from './server-api-spec.js';

/** Defaults of `createServerApi`'s options. */
export const SERVER_API_DEFAULTS = DEFAULTS.hub.serverApi;

/** Options of `createServerApi`. */
export interface ServerApiOptions {
  /**
   * The API keys: a call must carry one as `Authorization: apikey <key>`. Several keys may be
   * valid at once, to rotate them without downtime. None (an empty list): the API is off, every
   * path under the prefix answers 404.
   */
  keys: readonly string[];
  /** Largest request body, bytes (default 1 MiB); more → 413 E_TOO_LARGE, and the body is not read further. */
  maxBodySize?: number;
  /** Where refused and failed calls are logged (default: nowhere). Keys are never logged. */
  logger?: Logger;
  /** The path the API is mounted at, starting and ending with `/` (default `/api/`). */
  prefix?: string;
}

/**
 * A Node request handler: resolves true when it answered the request (its path is under the
 * prefix), false when the path is not the API's, so the server goes on with its own routes.
 * It never rejects.
 */
export type ServerApiHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** The bytes an API key is compared as: its SHA-256, so the comparison takes the same time whatever the lengths. */
function keyDigest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** The `Authorization: apikey <key>` credentials, or undefined (RFC 9110 §11.1: the scheme is case-insensitive). */
function credentials(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^apikey[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1];
}

/** Whether the body is declared `application/json` (UTF-8: RFC 8259 §8.1 allows no other charset). */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [type, ...parameters] = contentType.split(';');
  if (type!.trim().toLowerCase() !== 'application/json') return false;
  return parameters.every((parameter) => {
    const [name, value] = parameter.split('=');
    return name!.trim().toLowerCase() !== 'charset' || /^"?utf-8"?$/i.test((value ?? '').trim());
  });
}

/** What reading a body came to. */
type Body = { readonly kind: 'read'; readonly bytes: Buffer } | { readonly kind: 'too large' } | { readonly kind: 'aborted' };

/**
 * Read the request's body, at most `max` bytes: beyond that (declared or sent) it stops
 * listening at once, without keeping or waiting for the rest. The connection is then closed
 * after the answer (`Connection: close`), so the rest is never read.
 */
function readBody(req: IncomingMessage, max: number): Promise<Body> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) return Promise.resolve({ kind: 'too large' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (body: Body): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onAbort);
      resolve(body);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        req.pause();
        finish({ kind: 'too large' });
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = (): void => finish({ kind: 'read', bytes: Buffer.concat(chunks, size) });
    const onAbort = (): void => finish({ kind: 'aborted' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onAbort);
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The server API over HTTP, for `hub`: `POST <prefix><method>` with a JSON body, authenticated
 * with `Authorization: apikey <key>`; `GET <prefix>openapi.json`, the OpenAPI 3.1 document (no
 * key needed). Mount it first in your request listener:
 *
 * ```ts
 * const api = createServerApi(hub, { keys: [process.env.API_KEY!] });
 * createServer(async (req, res) => {
 *   if (await api(req, res)) return;
 *   res.writeHead(404).end();
 * });
 * ```
 *
 * @throws TypeError for a prefix that does not start and end with `/`, or a key that is not printable ASCII without spaces.
 * @throws RangeError for a `maxBodySize` that is not a positive integer.
 */
export function createServerApi(hub: ServerApiHub, options: ServerApiOptions): ServerApiHandler {
  const prefix = options.prefix ?? SERVER_API_DEFAULTS.prefix;
  if (!prefix.startsWith('/') || !prefix.endsWith('/')) throw new TypeError(`server API prefix must start and end with "/" (got ${JSON.stringify(prefix)})`);
  const maxBodySize = options.maxBodySize ?? SERVER_API_DEFAULTS.maxBodySize;
  if (!Number.isSafeInteger(maxBodySize) || maxBodySize <= 0) throw new RangeError(`server API maxBodySize must be a positive integer of bytes (got ${maxBodySize})`);
  for (const key of options.keys) {
    // A header value is Latin-1 text and ends at whitespace here: any other key could never match.
    if (typeof key !== 'string' || !/^[\x21-\x7e]+$/.test(key)) throw new TypeError('a server API key must be a non-empty string of printable ASCII characters without spaces');
  }
  const logger = options.logger ?? silentLogger;
  const digests = options.keys.map(keyDigest);
  const document = JSON.stringify(serverApiDocument({ prefix, maxBodySize }));
  const root = prefix.slice(0, -1);

  /** Whether the header carries a configured key: every key compared, in constant time each. */
  const authorized = (header: string | undefined): boolean => {
    const key = credentials(header);
    if (key === undefined) return false;
    const digest = keyDigest(key);
    let ok = false;
    for (const expected of digests) ok = timingSafeEqual(digest, expected) || ok;
    return ok;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, name: string, fields: LogFields): Promise<void> => {
    /** Answer with an error, and log it: warn when refused (4xx), error when it failed here (5xx). */
    const refuse = (failure: ApiFailure, headers: Record<string, string> = {}, bodyRead = true): void => {
      const status = SERVER_API_ERRORS[failure.code];
      const line = { ...fields, status, code: failure.code, err: failure.detail ?? failure.message };
      if (status >= 500) logger.error(line, 'server API call failed');
      else logger.warn(line, 'server API call refused');
      // A body not read (a refusal before it, or past the limit) is not read after the answer either.
      send(res, status, { error: { code: failure.code, message: failure.message } }, bodyRead ? headers : { ...headers, Connection: 'close' });
    };
    const fail = (code: ServerApiErrorCode, message: string, headers?: Record<string, string>, bodyRead?: boolean): void => refuse({ code, message }, headers, bodyRead);

    if (digests.length === 0) return fail('E_NOT_FOUND', 'the server API is off (no API keys are configured)', {}, false);
    if (name === 'openapi.json') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return fail('E_METHOD_NOT_ALLOWED', `${prefix}openapi.json answers GET`, { Allow: 'GET, HEAD' }, false);
      return sendText(res, 200, document);
    }
    if (!isServerApiMethod(name)) return fail('E_NOT_FOUND', `no server API method ${JSON.stringify(name)} (see GET ${prefix}openapi.json)`, {}, false);
    if (req.method !== 'POST') return fail('E_METHOD_NOT_ALLOWED', `server API methods are called with POST, not ${req.method ?? '?'}`, { Allow: 'POST' }, false);
    if (!authorized(req.headers.authorization)) {
      return fail('E_UNAUTHORIZED', 'send a configured API key as Authorization: apikey <key>', { 'WWW-Authenticate': 'apikey' }, false);
    }
    if (!isJson(req.headers['content-type'])) return fail('E_UNSUPPORTED_MEDIA_TYPE', 'the body must be Content-Type: application/json (UTF-8)', {}, false);
    const body = await readBody(req, maxBodySize);
    if (body.kind === 'aborted') return;
    if (body.kind === 'too large') return fail('E_TOO_LARGE', `the body is larger than ${maxBodySize} bytes`, {}, false);
    let parsed: unknown;
    try {
      parsed = JSON.parse(utf8.decode(body.bytes));
    } catch {
      return fail('E_BAD_REQUEST', 'the body is not valid JSON (UTF-8)');
    }
    // The body's own level, then `data` as deep as the hub lets a client's go.
    if (jsonDepthExceeds(parsed, WIRE_LIMITS.maxDataDepth + 1)) return fail('E_BAD_REQUEST', `the body is nested deeper than ${WIRE_LIMITS.maxDataDepth + 1} levels (data may nest ${WIRE_LIMITS.maxDataDepth})`);
    let result: Json;
    try {
      result = await callMethod(hub, name, parsed, { logger, fields });
    } catch (error) {
      return refuse(failureOf(error));
    }
    send(res, 200, { result });
  };

  return async (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (!path.startsWith(prefix) && path !== root) return false;
    const name = path.slice(prefix.length);
    // The method asked for (as sent, cut short: it is the caller's text) and who asked; never the key.
    const fields: LogFields = { method: name.slice(0, 64), remote: req.socket.remoteAddress };
    try {
      await handle(req, res, name, fields);
    } catch (error) {
      // Only a bug gets here: answer if still possible, never reject into the server.
      logger.error({ ...fields, err: failureOf(error).detail }, 'server API handler failed');
      if (!res.headersSent) send(res, 500, { error: { code: 'E_INTERNAL', message: 'internal error' } }, { Connection: 'close' });
      else res.destroy();
    }
    return true;
  };
}

/** Answer with a JSON value. */
function send(res: ServerResponse, status: number, body: Json, headers: Record<string, string> = {}): void {
  sendText(res, status, JSON.stringify(body), headers);
}

/** Answer with JSON text (no body for HEAD). Answers are not cached: each reflects the cluster now. */
function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
