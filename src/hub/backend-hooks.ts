/**
 * Backend hooks over HTTP: a hub that asks a team's existing backend (Python, Go, Java…) who a
 * connection is, whether it may subscribe or publish (and what to publish instead), and what an
 * RPC answers. `createBackendHooks` turns hook URLs into the hub options `connect`, `authorize`,
 * `rpcFallback` and `handshakeHeaders`; each hook is one `POST` of JSON, answered with
 * `{"result": …}` or `{"error": {"code", "message"}}` (the contract: `docs/backend-hooks.md`).
 *
 * A backend that is down, slow or broken never hangs or crashes the hub: every failure becomes
 * E_UNAVAILABLE ("not now", the client retries later) and one warn line, within the hook's
 * timeout, retries included. Only the idempotent hooks (connect, subscribe) are retried.
 */
import { silentLogger, type Logger } from '../node/logger.js';
import type { HubIdentity } from './auth.js';
import type { Json } from './broker.js';
import { DEFAULTS } from '../protocol/defaults.js';
import { HubError, errorMessage } from './errors.js';
import type { HubAuthorize, HubConnectAnswer, HubConnectHook, HubConnectRequest, HubContext, HubPublishRewrite, HubRpcFallback } from './hub.js';
import type { HubErrorCode } from './wire.js';

/** How one hook reaches the backend. */
export interface BackendHookConfig {
  /** The `http:` or `https:` URL the hook `POST`s to. */
  readonly url: string;
  /**
   * ms the whole call may take, retries and their backoff included (default 5000). Each
   * attempt may use an equal share of the time left after the backoff still to come, so a
   * refused connection leaves almost all of it to the retry, and a hung backend is given
   * (timeout − backoff) / (retries + 1) per attempt.
   */
  readonly timeout?: number;
  /**
   * Handshake headers (case-insensitive names) sent along as headers of the hook's request:
   * default `cookie`, `authorization`, `origin`, `user-agent` for `connect` (who is this?), none
   * for the others (the connect hook already said who the user is; set them to have a
   * subscribe or publish hook see cookies too). Hop-by-hop headers, `host`, `content-length`
   * and `content-type` are not the client's to forward: naming one is a TypeError.
   */
  readonly headers?: readonly string[];
  /**
   * Attempts after the first on a timeout, a network error or a 5xx status (default 1; never on
   * a 4xx, nor on an `error` answer). Only for `connect` and `subscribe`, which change nothing
   * when asked twice; a retried publish or RPC could act twice, so `publish` and `rpc` take no
   * `retries` (0 only).
   */
  readonly retries?: number;
}

/** Options of `createBackendHooks`: the hooks to ask the backend for (each optional). */
export interface BackendHooksOptions {
  /** Who is a connection that brought no handshake token? Asked when it sends `connect`. */
  readonly connect?: BackendHookConfig;
  /** May a connection subscribe to a topic (or see its presence)? */
  readonly subscribe?: BackendHookConfig;
  /** May a connection publish this data to a topic, and should other data be published instead? */
  readonly publish?: BackendHookConfig;
  /** The answer of an RPC method no `hub.rpc()` handler serves. */
  readonly rpc?: BackendHookConfig;
  /** Where the warn line of each failed call goes (default: nowhere). */
  readonly logger?: Logger;
}

/** The hub options `createBackendHooks` builds, to spread into `new Hub({ ...hooks })`. */
export interface BackendHooks {
  /** Asks the connect hook (present when `connect` was configured). */
  readonly connect?: HubConnectHook;
  /** Asks the subscribe and publish hooks (present when either was configured). */
  readonly authorize?: HubAuthorize;
  /** Asks the rpc hook (present when `rpc` was configured). */
  readonly rpcFallback?: HubRpcFallback;
  /** Every handshake header a hook forwards (lower-case names): the hub keeps only these per connection. */
  readonly handshakeHeaders: readonly string[];
}

/** The hooks' defaults, each with its unit and its reason. */
export const BACKEND_HOOK_DEFAULTS = DEFAULTS.hub.backendHooks;

/** The four hooks, as named in logs and in `BackendHooksOptions`. */
type HookName = 'connect' | 'subscribe' | 'publish' | 'rpc';

/** The error codes a backend may answer with; any other becomes E_FORBIDDEN (and a warn line). */
const BACKEND_CODES: ReadonlySet<HubErrorCode> = new Set<HubErrorCode>(['E_UNAUTHORIZED', 'E_FORBIDDEN', 'E_NOT_FOUND', 'E_BAD_REQUEST', 'E_UNAVAILABLE']);

/**
 * Headers that describe the client's connection to the hub, or the hook request's own body, not
 * the client. RFC 9110 §7.6.1: "intermediaries SHOULD remove or replace fields that are known to
 * require removal before forwarding, whether or not they appear as a connection-option […] This
 * includes but is not limited to: Proxy-Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade";
 * `host` and the body's framing belong to the hook's request.
 */
const NOT_FORWARDABLE: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'host',
  'content-length',
  'content-type',
]);

/** RFC 9110 §5.6.2: a field name is a token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** One hook, its options checked and defaulted. */
interface HookTarget {
  readonly name: HookName;
  readonly url: URL;
  /** The URL as logged: no user info, no query (either may carry a secret). */
  readonly where: string;
  readonly timeout: number;
  readonly headers: readonly string[];
  readonly retries: number;
}

/** An attempt's parsed answer, and the (2xx) status it came with. */
interface Answer {
  readonly status: number;
  readonly answer: unknown;
}

/** Why an attempt failed, and whether another attempt could help. */
interface AttemptFailure {
  readonly failed: true;
  readonly reason: string;
  readonly status?: number | undefined;
  readonly retry: boolean;
}

/**
 * The hub options that ask a backend over HTTP (`docs/backend-hooks.md`):
 *
 * ```ts
 * const hub = new Hub({
 *   ...createBackendHooks({
 *     connect: { url: 'http://127.0.0.1:8000/duplex/connect' },
 *     subscribe: { url: 'http://127.0.0.1:8000/duplex/subscribe' },
 *     logger,
 *   }),
 *   logger,
 * });
 * ```
 *
 * Only the configured hooks' options are returned, so spreading them keeps the hub's others.
 * @throws TypeError for a URL that is not `http:`/`https:` or has user info, a header that cannot be forwarded, or `retries` on `publish`/`rpc`.
 * @throws RangeError for a `timeout` that is not a positive number of ms, a `retries` that is not a whole number ≥ 0, or retries whose backoff alone would use up the timeout.
 */
export function createBackendHooks(options: BackendHooksOptions): BackendHooks {
  const logger = options.logger ?? silentLogger;
  const connect = options.connect && hookTarget('connect', options.connect);
  const subscribe = options.subscribe && hookTarget('subscribe', options.subscribe);
  const publish = options.publish && hookTarget('publish', options.publish);
  const rpc = options.rpc && hookTarget('rpc', options.rpc);
  const targets = [connect, subscribe, publish, rpc].filter((t): t is HookTarget => t !== undefined);
  const hooks: { -readonly [K in keyof BackendHooks]: BackendHooks[K] } = {
    handshakeHeaders: [...new Set(targets.flatMap((t) => t.headers))],
  };
  if (connect) hooks.connect = { authenticate: (request) => askConnect(connect, request, logger) };
  if (subscribe || publish) {
    const authorize: HubAuthorize = {};
    if (subscribe) authorize.subscribe = (ctx, topic) => askSubscribe(subscribe, ctx, topic, logger);
    if (publish) authorize.publish = (ctx, topic, data) => askPublish(publish, ctx, topic, data, logger);
    hooks.authorize = authorize;
  }
  if (rpc) hooks.rpcFallback = (ctx, method, params) => askRpc(rpc, ctx, method, params, logger);
  return hooks;
}

// ---- the four hooks: what each sends, and what its result must look like ----------------------

async function askConnect(target: HookTarget, request: HubConnectRequest, logger: Logger): Promise<HubConnectAnswer> {
  const body = { connId: request.connId, remoteAddress: request.remoteAddress ?? null, token: request.token, data: request.data };
  return call(target, body, request.headers, logger, (result) => {
    if (!isObject(result)) return undefined;
    const { user, info, expireAt } = result;
    if (!(user === null || (typeof user === 'string' && user !== ''))) return undefined;
    if (!(expireAt === undefined || expireAt === null || (typeof expireAt === 'number' && Number.isFinite(expireAt)))) return undefined;
    const identity: HubIdentity = { ...(user === null ? {} : { id: user }), ...(info === undefined ? {} : { info: info as Json }) };
    // The backend speaks Unix seconds (as JWT's `exp`); the hub counts ms.
    return { user: identity, ...(typeof expireAt === 'number' ? { expireAt: Math.round(expireAt * 1000) } : {}) };
  });
}

async function askSubscribe(target: HookTarget, ctx: HubContext, topic: string, logger: Logger): Promise<boolean> {
  const body = { connId: ctx.connId, user: ctx.user?.id ?? null, topic };
  return call(target, body, ctx.headers, logger, (result) => (isObject(result) ? true : undefined));
}

async function askPublish(target: HookTarget, ctx: HubContext, topic: string, data: Json, logger: Logger): Promise<boolean | HubPublishRewrite> {
  const body = { connId: ctx.connId, user: ctx.user?.id ?? null, topic, data };
  return call<boolean | HubPublishRewrite>(target, body, ctx.headers, logger, (result) => {
    if (!isObject(result)) return undefined;
    return 'data' in result ? { data: result['data'] as Json } : true;
  });
}

async function askRpc(target: HookTarget, ctx: HubContext, method: string, params: Json, logger: Logger): Promise<Json> {
  const body = { connId: ctx.connId, user: ctx.user?.id ?? null, method, params };
  // A result without `data` answers null, as a handler returning nothing does.
  return call<Json>(target, body, ctx.headers, logger, (result) => (isObject(result) ? ((result['data'] as Json | undefined) ?? null) : undefined));
}

// ---- one call: attempts within the deadline, the answer read and judged ----------------------------

/**
 * POST `body` to the hook and hand its `result` to `accept` (undefined from it: the wrong shape).
 * Resolves with what `accept` made of it; rejects with a `HubError` only: the backend's own
 * refusal, or E_UNAVAILABLE for every way the call can fail (logged once, as a warn line).
 */
async function call<T>(
  target: HookTarget,
  body: Record<string, unknown>,
  handshake: Readonly<Record<string, string>>,
  logger: Logger,
  accept: (result: unknown) => T | undefined,
): Promise<T> {
  const started = Date.now();
  const deadline = started + target.timeout;
  const unavailable = (failure: Omit<AttemptFailure, 'failed' | 'retry'>, attempts: number): HubError => {
    logger.warn(
      { hook: target.name, url: target.where, ...(failure.status === undefined ? {} : { status: failure.status }), reason: failure.reason, ms: Date.now() - started, attempts },
      `backend ${target.name} hook failed`,
    );
    return new HubError('E_UNAVAILABLE', `the backend's ${target.name} hook is unavailable; retry later`);
  };
  let headers: Headers;
  try {
    headers = requestHeaders(target, handshake);
  } catch (error) {
    throw unavailable({ reason: `a forwarded handshake header cannot be sent: ${errorMessage(error)}` }, 0);
  }
  const text = JSON.stringify(body);
  let answer: unknown;
  let status: number | undefined;
  let attempts = 0;
  for (let attempt = 0; ; attempt++) {
    // An equal share of the time left, less the backoff still to come, for each attempt left.
    const left = target.retries - attempt;
    const ms = Math.floor((deadline - Date.now() - backoffTotal(attempt, target.retries)) / (left + 1));
    const outcome = await post(target.url, headers, text, ms);
    attempts = attempt + 1;
    if (!isFailure(outcome)) {
      ({ answer, status } = outcome);
      break;
    }
    const pause = retryDelay(attempt);
    if (!outcome.retry || left === 0 || deadline - Date.now() - pause <= 0) throw unavailable(outcome, attempts);
    logger.info({ hook: target.name, url: target.where, ...(outcome.status === undefined ? {} : { status: outcome.status }), reason: outcome.reason, attempt: attempts }, `backend ${target.name} hook failed; retrying`);
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
  if (!isObject(answer)) throw unavailable({ status, reason: 'the answer is not a JSON object' }, attempts);
  if ('error' in answer) throw refusal(target, answer['error'], logger, () => unavailable({ status, reason: 'the error has no string code' }, attempts));
  if (!('result' in answer)) throw unavailable({ status, reason: 'the answer has neither result nor error' }, attempts);
  const value = accept(answer['result']);
  if (value === undefined) throw unavailable({ status, reason: `the result is not what a ${target.name} hook answers` }, attempts);
  return value;
}

/** The backend said no: its code (one a backend may use, else E_FORBIDDEN) and message. */
function refusal(target: HookTarget, error: unknown, logger: Logger, malformed: () => HubError): HubError {
  if (!isObject(error) || typeof error['code'] !== 'string') return malformed();
  const code = error['code'];
  const message = typeof error['message'] === 'string' && error['message'] !== '' ? error['message'] : `refused by the backend (${code})`;
  if (BACKEND_CODES.has(code as HubErrorCode)) return new HubError(code as HubErrorCode, message);
  // Fail closed: a code the hub does not know is a "no", and a bug to tell the backend's team about.
  logger.warn({ hook: target.name, url: target.where, code }, `backend ${target.name} hook answered an unknown error code; refusing with E_FORBIDDEN`);
  return new HubError('E_FORBIDDEN', message);
}

/** The hook request's headers: JSON both ways, and the handshake headers this hook forwards. */
function requestHeaders(target: HookTarget, handshake: Readonly<Record<string, string>>): Headers {
  const headers = new Headers({ 'content-type': 'application/json', accept: 'application/json' });
  for (const name of target.headers) {
    const value = handshake[name];
    if (value !== undefined) headers.set(name, value);
  }
  return headers;
}

/**
 * One attempt: POST, then the answer read up to `maxAnswerBytes` and parsed, all within `ms`.
 * Never throws: every failure is described, with whether a retry could help (a timeout, a
 * network error, a 5xx: yes; a 4xx or a body the backend meant: no).
 */
async function post(url: URL, headers: Headers, body: string, ms: number): Promise<Answer | AttemptFailure> {
  if (!(ms > 0)) return { failed: true, reason: 'no time left', retry: false };
  const signal = AbortSignal.timeout(ms);
  const timedOut = (): AttemptFailure => ({ failed: true, reason: `no answer within ${ms} ms`, retry: true });
  let response: Response;
  try {
    // Redirects are not followed: a hook's URL is configuration, and a redirect a misconfiguration.
    response = await fetch(url, { method: 'POST', headers, body, signal, redirect: 'manual' });
  } catch (error) {
    if (signal.aborted) return timedOut();
    return { failed: true, reason: networkReason(error), retry: true };
  }
  const status = response.status;
  if (status < 200 || status > 299) {
    await response.body?.cancel().catch(() => {});
    return { failed: true, status, reason: `HTTP status ${status}`, retry: status >= 500 };
  }
  let bytes: Uint8Array;
  try {
    const read = await readBounded(response, BACKEND_HOOK_DEFAULTS.maxAnswerBytes);
    if (read === undefined) return { failed: true, status, reason: `the answer is larger than ${BACKEND_HOOK_DEFAULTS.maxAnswerBytes} bytes`, retry: false };
    bytes = read;
  } catch (error) {
    if (signal.aborted) return timedOut();
    return { failed: true, status, reason: `the answer could not be read: ${networkReason(error)}`, retry: true };
  }
  try {
    return { status, answer: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown };
  } catch {
    return { failed: true, status, reason: 'the answer is not JSON', retry: false };
  }
}

/** The body, or undefined if it is longer than `max` bytes (then no more of it is read). */
async function readBounded(response: Response, max: number): Promise<Uint8Array | undefined> {
  const declared = Number(response.headers.get('content-length') ?? 0);
  const body = response.body;
  if (declared > max || body === null) {
    await body?.cancel().catch(() => {});
    return declared > max ? undefined : new Uint8Array(0);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size);
}

/** What went wrong on the network, as specific as undici says (`ECONNREFUSED`, `UND_ERR_SOCKET`…). */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: unknown } | null)?.cause;
  const code = (cause as { code?: unknown } | null | undefined)?.code;
  const detail = cause instanceof Error ? cause.message : errorMessage(error);
  return typeof code === 'string' && !detail.includes(code) ? `${code}: ${detail}` : detail;
}

function isFailure(outcome: Answer | AttemptFailure): outcome is AttemptFailure {
  return 'failed' in outcome;
}

/** ms to wait before attempt `attempt + 2`: 100, 200, 400… */
function retryDelay(attempt: number): number {
  return BACKEND_HOOK_DEFAULTS.retryDelay * 2 ** attempt;
}

/** ms of backoff between attempt `from + 1` and the last one. */
function backoffTotal(from: number, retries: number): number {
  let total = 0;
  for (let i = from; i < retries; i++) total += retryDelay(i);
  return total;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---- options ---------------------------------------------------------------------------------

/** A hook's options, checked, with their defaults. */
function hookTarget(name: HookName, config: BackendHookConfig): HookTarget {
  const what = `backend hooks: ${name}`;
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new TypeError(`${what}.url is not a URL: ${String(config.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${what}.url must be http: or https:, not ${url.protocol}`);
  // fetch refuses a URL with credentials (WHATWG Fetch); a secret belongs in the query, which logs leave out.
  if (url.username !== '' || url.password !== '') throw new TypeError(`${what}.url has user info, which fetch refuses: put a shared secret in the query instead`);
  const timeout = config.timeout ?? BACKEND_HOOK_DEFAULTS.timeout;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) throw new RangeError(`${what}.timeout must be a positive number of ms, not ${String(timeout)}`);
  const idempotent = name === 'connect' || name === 'subscribe';
  if (!idempotent && config.retries !== undefined && config.retries !== 0) {
    throw new TypeError(`${what}.retries: a ${name} hook is never retried (a second attempt could ${name} twice)`);
  }
  const retries = idempotent ? (config.retries ?? BACKEND_HOOK_DEFAULTS.retries) : 0;
  if (!Number.isInteger(retries) || retries < 0) throw new RangeError(`${what}.retries must be a whole number ≥ 0, not ${String(retries)}`);
  if (backoffTotal(0, retries) >= timeout) {
    throw new RangeError(`${what}: ${retries} retries wait ${backoffTotal(0, retries)} ms between attempts, which leaves nothing of the ${timeout} ms timeout`);
  }
  const headers = (config.headers ?? (name === 'connect' ? BACKEND_HOOK_DEFAULTS.connectHeaders : [])).map((header) => {
    const lower = String(header).toLowerCase();
    if (!TOKEN.test(lower)) throw new TypeError(`${what}.headers: ${JSON.stringify(header)} is not a header name`);
    if (NOT_FORWARDABLE.has(lower)) throw new TypeError(`${what}.headers: ${lower} describes the client's connection to the hub, not the client; it cannot be forwarded`);
    return lower;
  });
  return { name, url, where: `${url.origin}${url.pathname}`, timeout, headers: [...new Set(headers)], retries };
}
