/**
 * SHA-1 (FIPS 180-4 §6.1) in plain TypeScript.
 *
 * The opening handshake needs SHA-1 for `Sec-WebSocket-Accept` (RFC 6455 §4.2.2). Web Crypto's
 * `subtle.digest` is asynchronous and `node:crypto` is Node-only, so the engine carries its own
 * synchronous implementation: the default wherever no other is injected (the Node binding passes
 * OpenSSL's as `AcceptOptions.sha1` / `ExpectedResponse.sha1`). SHA-1 is broken for collision
 * resistance; the handshake uses it only to prove that the server understood the WebSocket
 * request, not for security (RFC 6455 §1.3).
 */

/** Round constants K_t for t = 0–19, 20–39, 40–59, 60–79 (FIPS 180-4 §4.2.1). */
const K0 = 0x5a827999;
const K1 = 0x6ed9eba1;
const K2 = 0x8f1bbcdc;
const K3 = 0xca62c1d6;

/** One message schedule, reused across calls: the engine is single-threaded per isolate. */
const W = new Uint32Array(80);

/**
 * A reused padding buffer for short inputs (a handshake key is 60 bytes): a fresh typed array
 * per call, with a DataView over its buffer, costs a malloc'd backing store per handshake.
 */
const SCRATCH = new Uint8Array(128);
const SCRATCH_VIEW = new DataView(SCRATCH.buffer);

/**
 * The SHA-1 digest of `data`.
 *
 * @param data - the bytes to hash; any length up to 2^53 − 1 bytes.
 * @returns a new 20-byte array, the big-endian digest.
 */
export function sha1(data: Uint8Array): Uint8Array {
  // FIPS 180-4 §5.1.1: append 0x80, pad with zeros to 56 mod 64, then the bit length as 64 bits.
  const length = data.length;
  const paddedLength = (((length + 8) >>> 6) + 1) << 6;
  const reuse = paddedLength <= SCRATCH.length;
  const block = reuse ? SCRATCH : new Uint8Array(paddedLength);
  if (reuse) SCRATCH.fill(0, 0, paddedLength);
  block.set(data);
  block[length] = 0x80;
  const view = reuse ? SCRATCH_VIEW : new DataView(block.buffer);
  // The bit length can exceed 2^32: split it without losing the high bits to 32-bit shifts.
  view.setUint32(paddedLength - 8, Math.floor(length / 0x20000000), false);
  view.setUint32(paddedLength - 4, (length << 3) >>> 0, false);

  // FIPS 180-4 §5.3.1: initial hash value.
  let h0 = 0x67452301;
  let h1 = 0xefcdab89;
  let h2 = 0x98badcfe;
  let h3 = 0x10325476;
  let h4 = 0xc3d2e1f0;

  for (let offset = 0; offset < paddedLength; offset += 64) {
    // FIPS 180-4 §6.1.2 step 1: prepare the message schedule.
    for (let t = 0; t < 16; t++) W[t] = view.getUint32(offset + t * 4, false);
    for (let t = 16; t < 80; t++) {
      const x = W[t - 3]! ^ W[t - 8]! ^ W[t - 14]! ^ W[t - 16]!;
      W[t] = (x << 1) | (x >>> 31);
    }

    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    for (let t = 0; t < 80; t++) {
      // FIPS 180-4 §4.1.1: Ch, Parity, Maj, Parity for the four rounds of 20.
      let f: number;
      let k: number;
      if (t < 20) {
        f = (b & c) | (~b & d);
        k = K0;
      } else if (t < 40) {
        f = b ^ c ^ d;
        k = K1;
      } else if (t < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = K2;
      } else {
        f = b ^ c ^ d;
        k = K3;
      }
      const temp = (((a << 5) | (a >>> 27)) + f + e + k + W[t]!) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = temp;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }

  // Written byte by byte: touching `digest.buffer` would move it off the V8 heap.
  const digest = new Uint8Array(20);
  const words = [h0, h1, h2, h3, h4];
  for (let i = 0; i < 5; i++) {
    const word = words[i]!;
    digest[i * 4] = word >>> 24;
    digest[i * 4 + 1] = (word >>> 16) & 0xff;
    digest[i * 4 + 2] = (word >>> 8) & 0xff;
    digest[i * 4 + 3] = word & 0xff;
  }
  return digest;
}
