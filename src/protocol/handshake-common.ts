/**
 * What both ends of the opening handshake (RFC 6455 §4) share: the protocol version, the key and
 * its accept value (§4.2.2 item 5.4), and the header helpers of both sides.
 */

import { WEBSOCKET_GUID } from './constants.js';
import { HandshakeError } from './errors.js';
import { type HeaderValue, isToken } from './headers.js';
import { sha1 } from './sha1.js';

/** The only protocol version this engine speaks (RFC 6455 §4.1, §11.6). */
export const WEBSOCKET_VERSION = 13;

/** Header records as Node gives them: lower-case names; repeated lines may be arrays. */
export type HeaderRecord = Readonly<Record<string, HeaderValue>>;

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
export function isValidKey(key: string): boolean {
  // Like ws and python-websockets, the 4 unused bits of the last character are not checked.
  return KEY.test(key);
}

/** The one value of a header that must appear at most once, or a `HandshakeError`. */
export function single(headers: HeaderRecord, name: string, field: string, status: number): string | undefined {
  const value = headers[name];
  if (value === undefined || typeof value === 'string') return value;
  if (value.length === 1) return value[0];
  if (value.length === 0) return undefined;
  throw new HandshakeError(`${field} header must appear exactly once`, status);
}

/** Case-insensitive membership (RFC 7230 §6.1, §6.7: connection options, protocol names). */
export function includesIgnoringCase(list: readonly string[], wanted: string): boolean {
  return list.some((item) => item.toLowerCase() === wanted);
}

/** Runs `parse`, giving any `HandshakeError` it throws another status and headers. */
export function withStatus<T>(status: number, headers: Record<string, string>, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof HandshakeError) throw new HandshakeError(error.message, status, headers);
    throw error;
  }
}

/** `name: value\r\n`, refusing what would let a value split the message (RFC 7230 §3.2). */
export function headerLine(name: string, value: string): string {
  if (!isToken(name)) throw new TypeError(`Invalid header name ${JSON.stringify(name)}`);
  if (/[\r\n\0]/.test(value)) {
    throw new TypeError(`Header ${name} has a value with CR, LF or NUL in it`);
  }
  return `${name}: ${value}\r\n`;
}
