/**
 * The clock and the messages of `duplex bench`. Every message carries its send time and a
 * sequence number, in ASCII so that text mode works too:
 *   bytes 0–11: send time, µs since this process started, 12 hex digits
 *   bytes 12–19: sequence number (per connection in echo mode, of the sender in broadcast), 8 hex digits
 *   the rest: filler up to --size.
 * One payload buffer is shared by every connection: it is stamped, then copied by the engine.
 */
import { performance } from 'node:perf_hooks';

/** Bytes of send time and sequence number at the start of every payload. */
export const HEADER_SIZE = 20;
const TS_DIGITS = 12;
const SEQ_DIGITS = 8;

/** The time in whole µs, read once per event-loop callback (messages in one chunk arrived together). */
let clock = 0;

/** Read the time (at the start of a callback); returns it. */
export function tick(): number {
  clock = Math.round(performance.now() * 1000);
  return clock;
}

/** The time of the last {@link tick}, µs. */
export function now(): number {
  return clock;
}

const HEX = new Uint8Array(16);
for (let i = 0; i < 16; i++) HEX[i] = '0123456789abcdef'.charCodeAt(i);

function writeHex(target: Uint8Array, at: number, value: number, digits: number): void {
  for (let i = digits - 1; i >= 0; i--) {
    target[at + i] = HEX[value % 16];
    value = Math.floor(value / 16);
  }
}

/** The hex number at `at`, or -1 when a byte is not a lower-case hex digit. */
function readHex(source: Uint8Array, at: number, digits: number): number {
  let value = 0;
  for (let i = 0; i < digits; i++) {
    const c = source[at + i];
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    value = value * 16 + d;
  }
  return value;
}

/** Write the time of the last tick and `seq` into the payload's header. */
export function stamp(payload: Uint8Array, seq: number): void {
  writeHex(payload, 0, clock, TS_DIGITS);
  writeHex(payload, TS_DIGITS, seq, SEQ_DIGITS);
}

/** The send time in a received message, or -1 when it holds none. */
export function sentAt(data: Uint8Array): number {
  return readHex(data, 0, TS_DIGITS);
}

/** The sequence number in a received message (its low 32 bits), or -1 when it holds none. */
export function sequenceOf(data: Uint8Array): number {
  return readHex(data, TS_DIGITS, SEQ_DIGITS);
}

/** The number congruent to `seq32` modulo 2^32 nearest to `near` (sequence numbers travel as 32 bits). */
export function unwrap(seq32: number, near: number): number {
  let delta = (seq32 - near) % 2 ** 32;
  if (delta < -(2 ** 31)) delta += 2 ** 32;
  else if (delta >= 2 ** 31) delta -= 2 ** 32;
  return near + delta;
}

/** A payload of `size` bytes: the header (stamped at each send), then filler. */
export function makePayload(size: number): Uint8Array {
  const payload = new Uint8Array(size);
  const filler = ' duplex bench ';
  for (let i = HEADER_SIZE; i < size; i++) payload[i] = filler.charCodeAt((i - HEADER_SIZE) % filler.length);
  return payload;
}
