/**
 * Test helpers for the protocol engine: build raw frames (valid or deliberately broken) and
 * decode what a `Connection` queued for the transport. Independent of `frame.ts`, so the
 * engine's own encoder is checked against this one rather than against itself.
 */

/** How to build one raw frame. Every bit can be set by hand, including invalid ones. */
export interface RawFrameOptions {
  fin?: boolean;
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** true: mask with a fixed key; a Uint8Array: mask with it; false: unmasked. Default true. */
  mask?: boolean | Uint8Array;
  /** Force the length form: 7, 16 or 64 bits (default: the minimal one). */
  lengthForm?: 7 | 16 | 64;
  /** Write this length in the header instead of the payload's (for lying headers). */
  declaredLength?: number;
  /** Raw 8 bytes for a 64-bit length (overrides the computed one). */
  length64Bytes?: readonly number[];
}

const DEFAULT_KEY = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);

/** Build a frame as a client would send it (masked by default). */
export function rawFrame(opcode: number, payload: Uint8Array | string = new Uint8Array(0), options: RawFrameOptions = {}): Uint8Array {
  const data = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  const { fin = true, rsv1 = false, rsv2 = false, rsv3 = false, mask = true } = options;
  const key = mask === true ? DEFAULT_KEY : mask === false ? undefined : mask;
  const length = options.declaredLength ?? data.length;
  const form = options.lengthForm ?? (length < 126 ? 7 : length < 0x10000 ? 16 : 64);
  const header: number[] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (rsv2 ? 0x20 : 0) | (rsv3 ? 0x10 : 0) | (opcode & 0x0f)];
  const maskBit = key ? 0x80 : 0;
  if (form === 7) {
    header.push(maskBit | length);
  } else if (form === 16) {
    header.push(maskBit | 126, (length >>> 8) & 0xff, length & 0xff);
  } else {
    header.push(maskBit | 127);
    if (options.length64Bytes) {
      header.push(...options.length64Bytes);
    } else {
      const high = Math.floor(length / 2 ** 32);
      const low = length >>> 0;
      header.push((high >>> 24) & 0xff, (high >>> 16) & 0xff, (high >>> 8) & 0xff, high & 0xff);
      header.push((low >>> 24) & 0xff, (low >>> 16) & 0xff, (low >>> 8) & 0xff, low & 0xff);
    }
  }
  if (key) header.push(key[0], key[1], key[2], key[3]);
  const out = new Uint8Array(header.length + data.length);
  out.set(header, 0);
  for (let i = 0; i < data.length; i++) out[header.length + i] = key ? data[i] ^ key[i & 3] : data[i];
  return out;
}

/** A server→client frame (unmasked). */
export function serverFrame(opcode: number, payload: Uint8Array | string = new Uint8Array(0), options: RawFrameOptions = {}): Uint8Array {
  return rawFrame(opcode, payload, { ...options, mask: false });
}

/** The payload of a close frame. */
export function closePayload(code: number, reason = ''): Uint8Array {
  const r = new TextEncoder().encode(reason);
  const out = new Uint8Array(2 + r.length);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  out.set(r, 2);
  return out;
}

/** Join byte arrays into one fresh buffer. */
export function join(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** One decoded frame. */
export interface DecodedFrame {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
}

/** Decode a byte stream that holds whole frames only (throws if it ends mid-frame). */
export function decodeFrames(bytes: Uint8Array): DecodedFrame[] {
  const frames: DecodedFrame[] = [];
  let p = 0;
  while (p < bytes.length) {
    if (bytes.length - p < 2) throw new Error('truncated frame header');
    const b0 = bytes[p];
    const b1 = bytes[p + 1];
    p += 2;
    let length = b1 & 0x7f;
    if (length === 126) {
      length = (bytes[p] << 8) | bytes[p + 1];
      p += 2;
    } else if (length === 127) {
      let n = 0;
      for (let i = 0; i < 8; i++) n = n * 256 + bytes[p + i];
      length = n;
      p += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let key: Uint8Array | undefined;
    if (masked) {
      key = bytes.slice(p, p + 4);
      p += 4;
    }
    if (bytes.length - p < length) throw new Error('truncated frame payload');
    const payload = bytes.slice(p, p + length);
    p += length;
    if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
    frames.push({ fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, opcode: b0 & 0x0f, masked, payload });
  }
  return frames;
}

/** Decode a close frame's payload. */
export function parseClose(payload: Uint8Array): { code: number; reason: string } {
  if (payload.length === 0) return { code: 1005, reason: '' };
  return { code: (payload[0] << 8) | payload[1], reason: new TextDecoder().decode(payload.subarray(2)) };
}

/** UTF-8 text of bytes (for assertions). */
export function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}
