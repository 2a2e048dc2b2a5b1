/**
 * Token authentication for hub connections: JSON Web Tokens (RFC 7519) verified with `jose`,
 * signed with an HMAC secret (HS256) or a private key whose public half is configured here
 * (RS256, ES256), or by a verifier of your own. `sub` becomes the user id; an optional `info`
 * claim is shown in presence. A token comes in the handshake (`HubAuth.handshake`, the upgrade
 * hook) or in a `connect` message (`HubAuth.verify`).
 */
import { createPublicKey, type JsonWebKey as NodeJwk, type KeyObject } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { Logger } from '../node/logger.js';
import { assertPeersInstalled, importPeer } from '../node/peer.js';
import { HandshakeError } from '../protocol/errors.js';
import type { Json } from './broker.js';
import { errorMessage } from './errors.js';
import { DuplexError } from '../protocol/errors.js';

/** Who a hub connection is: its user id (absent for anonymous connections) and what others see of it. */
export interface HubIdentity {
  /** The user id (a JWT's `sub`): every connection of one user shares it. */
  readonly id?: string | undefined;
  /** Application data shown in presence (a JWT's `info` claim), e.g. `{ name: 'Ada' }`. */
  readonly info?: Json | undefined;
}

/** How to verify JWTs. Give `secret` (HS256) or `publicKey` (RS256/ES256). */
export interface JwtOptions {
  /** The HMAC secret for HS256 (as text, UTF-8, or bytes). Use at least 32 random bytes. */
  secret?: string | Uint8Array;
  /** The verification key for RS256/ES256: a PEM (SPKI) public key, a JWK, or a `KeyObject`. */
  publicKey?: string | NodeJwk | KeyObject;
  /** Accepted algorithms (default: `['HS256']` with a secret; `['RS256']` or `['ES256']` by the key's type). */
  algorithms?: readonly string[];
  /** Required `iss` claim value(s). */
  issuer?: string | readonly string[];
  /** Required `aud` claim value(s). */
  audience?: string | readonly string[];
  /** Seconds of clock skew tolerated for `exp`/`nbf` (default 0). */
  clockTolerance?: number;
  /** Refuse tokens without `exp` (default true: a token that never expires cannot be revoked by time). */
  requireExp?: boolean;
}

/** A token was refused. `status` is the HTTP status for a handshake (401). */
export class AuthError extends DuplexError {
  /** Always `'AuthError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'AuthError';
  /** The hub error code a `connect` with this token is answered with. */
  declare readonly code: 'E_UNAUTHORIZED';
  /** The HTTP status a handshake with this token is refused with (RFC 6750 §3.1: invalid_token). */
  readonly status = 401;
  /**
   * Throw one from a `TokenVerifier` to refuse a token.
   * @param message Why the token was refused, for people and logs.
   * @param options `cause`: the error behind this one, if any.
   */
  constructor(message = '', options?: ErrorOptions) {
    super('E_UNAUTHORIZED', message, options);
  }
}

/** Turns a token into an identity, or throws `AuthError`. */
export type TokenVerifier<User> = (token: string) => Promise<User>;

function isJwk(value: unknown): value is NodeJwk {
  return typeof value === 'object' && value !== null && typeof (value as { kty?: unknown }).kty === 'string';
}

/** The key `jose` verifies with, and the algorithms it may be used with. */
function resolveKey(options: JwtOptions): { key: Uint8Array | KeyObject; algorithms: string[] } {
  if (options.secret !== undefined && options.publicKey !== undefined) throw new TypeError('jwt: give either secret or publicKey, not both');
  if (options.secret !== undefined) {
    const key = typeof options.secret === 'string' ? new TextEncoder().encode(options.secret) : options.secret;
    if (key.length === 0) throw new TypeError('jwt: the secret must not be empty');
    return { key, algorithms: [...(options.algorithms ?? ['HS256'])] };
  }
  if (options.publicKey === undefined) throw new TypeError('jwt: give a secret (HS256) or a publicKey (RS256/ES256)');
  const pk = options.publicKey;
  // `createPublicKey` accepts PEM, JWK and KeyObject alike, and tells the key's type for the default algorithm.
  const key = typeof pk === 'string' ? createPublicKey(pk) : isJwk(pk) ? createPublicKey({ key: pk, format: 'jwk' }) : pk;
  const fallback = key.asymmetricKeyType === 'ec' ? ['ES256'] : ['RS256'];
  return { key, algorithms: [...(options.algorithms ?? fallback)] };
}

/**
 * A verifier for JWTs: checks the signature, `exp` (required unless `requireExp: false`),
 * `nbf`, and `iss`/`aud` when configured; requires `sub`. Its identity is `{ id: sub, info }`.
 * @throws TypeError at creation for an unusable configuration.
 * @throws MissingPeerDependencyError when the `jose` package is not installed.
 */
export function createJwtVerifier(options: JwtOptions): TokenVerifier<HubIdentity> {
  assertPeersInstalled(['jose'], JOSE_FEATURE);
  const { key, algorithms } = resolveKey(options);
  const verifyOptions = {
    algorithms,
    issuer: options.issuer as string | string[] | undefined,
    audience: options.audience as string | string[] | undefined,
    clockTolerance: options.clockTolerance,
    requiredClaims: options.requireExp === false ? ['sub'] : ['sub', 'exp'],
  };
  return async (token: string): Promise<HubIdentity> => {
    const jose = await loadJose();
    let payload: JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, key, verifyOptions));
    } catch (error) {
      throw new AuthError(describeJoseError(jose.errors, error));
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new AuthError('token has no subject (sub)');
    const info = payload['info'];
    return info === undefined ? { id: payload.sub } : { id: payload.sub, info: info as Json };
  };
}

type Jose = typeof import('jose');
const JOSE_FEATURE = 'JWT authentication (createJwtVerifier)';
let jose: Promise<Jose> | undefined;

/** jose is an optional peer dependency, loaded with the first token, so the hub loads without it. */
function loadJose(): Promise<Jose> {
  jose ??= importPeer<Jose>('jose', JOSE_FEATURE);
  // A failed load is not cached: installing jose and retrying works without a restart.
  jose.catch(() => (jose = undefined));
  return jose;
}

/** A short, safe reason for a refused token (no token contents). */
function describeJoseError(joseErrors: Jose['errors'], error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'token expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `token claim check failed: ${error.claim} ${error.reason}`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature is invalid';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm is not allowed';
  if (error instanceof joseErrors.JWTInvalid || error instanceof joseErrors.JWSInvalid) return 'token is malformed';
  return 'token is invalid';
}

/**
 * The bearer token of a handshake: `Authorization: Bearer <token>` (RFC 6750 §2.1), else the
 * `token` query parameter (RFC 6750 §2.3; browsers cannot set headers on a WebSocket).
 */
export function tokenFromRequest(headers: { readonly authorization?: string | undefined }, query: URLSearchParams): string | undefined {
  const header = headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(header);
    if (match) return match[1];
  }
  const fromQuery = query.get('token');
  return fromQuery === null || fromQuery === '' ? undefined : fromQuery;
}

/** How connections authenticate. */
export interface HubAuthOptions<User extends HubIdentity = HubIdentity> {
  /** Verify JWTs (HS256 secret or RS256/ES256 public key). */
  jwt?: JwtOptions;
  /** Or verify tokens yourself: return the identity, throw (e.g. `AuthError`) to refuse. */
  verify?(token: string): User | Promise<User>;
  /**
   * Refuse a handshake that carries no token with 401 (default false: the connection may
   * still authenticate with a `connect` message within `connectTimeout`).
   */
  requireHandshakeToken?: boolean;
}

/** What the hub keeps as `ws.data`: `hub.authenticate` returns it; any upgrade hook may. */
export interface HubSocketData<User extends HubIdentity = HubIdentity> {
  /** The user the handshake's token authenticated; undefined without one (a `connect` message may still authenticate). */
  readonly user: User | undefined;
  /** The handshake headers kept for the hub's hooks (only the ones `HubOptions.handshakeHeaders` names). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** The user a handshake authenticated, from whatever an upgrade hook left as `ws.data`. */
export function handshakeUser<User extends HubIdentity>(data: unknown): User | undefined {
  const isHubSocketData = typeof data === 'object' && data !== null && 'user' in data;
  return isHubSocketData ? (data as HubSocketData<User>).user : undefined;
}

/** The handshake headers an upgrade hook kept in `ws.data` for the connect hook (none: empty). */
export function handshakeHeaders(data: unknown): Readonly<Record<string, string>> {
  const headers = typeof data === 'object' && data !== null && 'headers' in data ? (data as HubSocketData).headers : undefined;
  return typeof headers === 'object' && headers !== null ? headers : {};
}

/** What the handshake request offers for authentication. */
export interface HandshakeCredentials {
  /** The request's headers (only `authorization` is read). */
  readonly headers: { readonly authorization?: string | undefined };
  /** The request's query (only `token` is read). */
  readonly query: URLSearchParams;
}

/** The hub options `HubAuth` reads. */
interface HubAuthSettings<User extends HubIdentity> {
  readonly auth?: HubAuthOptions<User> | undefined;
  readonly anonymous?: boolean | undefined;
  /** A connect hook authenticates connections without tokens: with one, `auth` is optional. */
  readonly connect?: object | undefined;
}

function reasonOf(error: unknown): string {
  return error instanceof AuthError ? error.message : 'token is invalid';
}

/** A hub's token check, as its options configure it: at the handshake, and for `connect`. */
export class HubAuth<User extends HubIdentity> {
  readonly #verifier: TokenVerifier<User> | undefined;
  /** The hub's options: `requireHandshakeToken` is read when a handshake comes. */
  readonly #options: HubAuthSettings<User>;
  readonly #logger: Logger;

  /**
   * Reads `auth` and `anonymous` once (`requireHandshakeToken` when a handshake comes).
   * @throws TypeError when neither `auth` nor `anonymous` is given, or `auth` has both `jwt` and `verify`.
   * @throws MissingPeerDependencyError with `auth.jwt` when the `jose` package is not installed.
   */
  constructor(options: HubAuthSettings<User>, logger: Logger) {
    const auth = options.auth;
    if (auth?.jwt && auth.verify) throw new TypeError('hub auth: give jwt or verify, not both');
    if (auth?.verify) {
      const verify = auth.verify;
      this.#verifier = async (token) => verify(token);
    } else if (auth?.jwt) {
      // The JWT identity is { id, info }; a hub with a richer User type supplies `verify` instead.
      this.#verifier = createJwtVerifier(auth.jwt) as TokenVerifier<User>;
    }
    if (!this.#verifier && !(options.anonymous ?? false) && options.connect === undefined) {
      throw new TypeError('hub: configure auth (jwt or verify) or a connect hook, or set anonymous: true to admit connections without a token');
    }
    this.#options = options;
    this.#logger = logger;
  }

  /** Whether this hub verifies tokens at all (an anonymous hub without `auth` does not). */
  get acceptsTokens(): boolean {
    return this.#verifier !== undefined;
  }

  /**
   * The work of the upgrade hook: no token → no user (or 401 with `requireHandshakeToken`); a
   * bad token → 401, with the reason (RFC 6750 §3.1 `invalid_token`).
   */
  async handshake(request: HandshakeCredentials): Promise<HubSocketData<User>> {
    const token = tokenFromRequest(request.headers, request.query);
    const challenge = { 'WWW-Authenticate': 'Bearer' };
    if (token === undefined) {
      if (this.#options.auth?.requireHandshakeToken) throw new HandshakeError('a bearer token is required', 401, challenge);
      return { user: undefined };
    }
    if (!this.#verifier) {
      // A connect hook decides instead: it sees the Authorization header (if it keeps it).
      if (this.#options.connect !== undefined) return { user: undefined };
      throw new HandshakeError('this hub does not accept tokens', 401, challenge);
    }
    try {
      return { user: await this.#verifier(token) };
    } catch (error) {
      if (!(error instanceof AuthError)) this.#logger.warn({ err: errorMessage(error) }, 'token verifier failed');
      throw new HandshakeError(reasonOf(error), 401, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    }
  }

  /**
   * Verify the token of a `connect` message: the user, or an `AuthError` saying why not (sent to
   * the client as is). Only for a hub that `acceptsTokens`.
   */
  async verify(token: string): Promise<{ readonly user: User } | { readonly refused: AuthError }> {
    try {
      return { user: await this.#verifier!(token) };
    } catch (error) {
      return { refused: error instanceof AuthError ? error : new AuthError(reasonOf(error)) };
    }
  }
}
