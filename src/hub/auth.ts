/**
 * Token authentication for hub connections: JSON Web Tokens (RFC 7519) verified with `jose`,
 * signed with an HMAC secret (HS256) or a private key whose public half is configured here
 * (RS256, ES256). `sub` becomes the user id; an optional `info` claim is shown in presence.
 */
import { createPublicKey, type JsonWebKey as NodeJwk, type KeyObject } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { assertPeersInstalled, importPeer } from '../node/peer.js';
import type { Json } from './broker.js';

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
export class AuthError extends Error {
  /** Always `'AuthError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'AuthError';
  /** The hub error code a `connect` with this token is answered with. */
  readonly code = 'E_UNAUTHORIZED';
  /** The HTTP status a handshake with this token is refused with (RFC 6750 §3.1: invalid_token). */
  readonly status = 401;
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
