/**
 * The handshake's SHA-1 in the Node binding: OpenSSL's, through `node:crypto`, injected into the
 * engine's handshake functions (`AcceptOptions.sha1`, `ExpectedResponse.sha1`) as `isUtf8` is
 * into the `Connection`. The engine keeps its plain-TypeScript SHA-1 for other runtimes.
 */
import { hash } from 'node:crypto';

/** @internal SHA-1 of `data` (RFC 6455 §4.2.2: `Sec-WebSocket-Accept`), a 20-byte Buffer. */
export function nodeSha1(data: Uint8Array): Uint8Array {
  // One-shot `hash` (Node ≥ 20.12) rather than `createHash`: no Hash object per handshake.
  return hash('sha1', data, 'buffer');
}
