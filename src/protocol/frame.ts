/**
 * Frame serialisation (RFC 6455 §5.2). Parsing is incremental and lives in `connection.ts`;
 * this module builds frames, for the engine and for code that frames a message once and writes
 * the same bytes to many connections (hub fan-out).
 */
import { applyMask } from './mask.js';

/** Header flags of a frame to build. */
export interface FrameFlags {
  /** Last frame of the message (default true). */
  fin?: boolean;
  /** RSV1: the message is compressed (RFC 7692 §6). */
  rsv1?: boolean;
  /** Masking key; clients must mask every frame (RFC 6455 §5.3), servers never do. */
  maskKey?: Uint8Array | undefined;
}

/** Header length for a payload of `length` bytes (RFC 6455 §5.2: 7-, 16- or 64-bit length). */
export function frameHeaderLength(length: number, masked: boolean): number {
  const base = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  return masked ? base + 4 : base;
}

/** Write a frame header into `target` at `offset`; returns the number of bytes written. */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  opcode: number,
  length: number,
  fin: boolean,
  rsv1: boolean,
  maskKey: Uint8Array | undefined,
): number {
  let p = offset;
  target[p++] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = maskKey ? 0x80 : 0;
  if (length < 126) {
    target[p++] = maskBit | length;
  } else if (length < 0x10000) {
    target[p++] = maskBit | 126;
    target[p++] = length >>> 8;
    target[p++] = length & 0xff;
  } else {
    target[p++] = maskBit | 127;
    // 64-bit big-endian length; JS numbers are exact up to 2^53, far above any allowed frame.
    const high = Math.floor(length / 0x100000000);
    target[p++] = 0;
    target[p++] = 0;
    target[p++] = (high >>> 8) & 0xff;
    target[p++] = high & 0xff;
    target[p++] = (length >>> 24) & 0xff;
    target[p++] = (length >>> 16) & 0xff;
    target[p++] = (length >>> 8) & 0xff;
    target[p++] = length & 0xff;
  }
  if (maskKey) {
    target[p++] = maskKey[0];
    target[p++] = maskKey[1];
    target[p++] = maskKey[2];
    target[p++] = maskKey[3];
  }
  return p - offset;
}

/**
 * Build one frame in one allocation: header followed by the payload (masked when a key is
 * given; the caller's payload is never modified).
 */
export function encodeFrame(opcode: number, payload: Uint8Array, flags: FrameFlags = {}): Uint8Array {
  const { fin = true, rsv1 = false, maskKey } = flags;
  const headerLength = frameHeaderLength(payload.length, maskKey !== undefined);
  const frame = new Uint8Array(headerLength + payload.length);
  writeFrameHeader(frame, 0, opcode, payload.length, fin, rsv1, maskKey);
  frame.set(payload, headerLength);
  if (maskKey) applyMask(frame.subarray(headerLength), maskKey);
  return frame;
}

/** Build only the header of an unmasked frame (to write before a large payload without copying it). */
export function encodeFrameHeader(opcode: number, length: number, fin = true, rsv1 = false): Uint8Array {
  const header = new Uint8Array(frameHeaderLength(length, false));
  writeFrameHeader(header, 0, opcode, length, fin, rsv1, undefined);
  return header;
}
