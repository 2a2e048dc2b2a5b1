/**
 * UTF-8 validation (RFC 3629 §4, as RFC 6455 §8.1 requires for text messages and close
 * reasons). Incremental, so a text message that arrives in fragments or in pieces is rejected at
 * its first invalid byte (Autobahn 6.4.x, "fail fast"), not when it is complete.
 */

/**
 * Ranges at least this long go through the bulk validator (when there is one): below it the
 * byte loop is as fast as a call into native code.
 */
const BULK_MIN = 1024;

/** An incremental validator: feed byte ranges with `write`, then ask `end` at the message's end. */
export class Utf8Validator {
  /**
   * A validator for one message at a time (`end` resets it for the next).
   * @param bulk a fast whole-buffer validator (e.g. Node's `buffer.isUtf8`, 20–40× the byte
   *   loop) used for the middle of long ranges: a 16 MiB text message that arrives in pieces
   *   then costs well under a millisecond instead of ~14 ms of one loop pass.
   */
  constructor(private readonly bulk?: (bytes: Uint8Array) => boolean) {}

  /** Continuation bytes still expected for the current sequence. */
  private need = 0;
  /** Allowed range of the next continuation byte (narrowed after E0, ED, F0, F4). */
  private lower = 0x80;
  private upper = 0xbf;

  /** Forget any partial sequence. */
  reset(): void {
    this.need = 0;
    this.lower = 0x80;
    this.upper = 0xbf;
  }

  /** Validate `bytes[start:end]` as a continuation of what came before. False at the first invalid byte. */
  write(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    if (this.bulk !== undefined && end - start >= BULK_MIN) return this.writeBulk(bytes, start, end);
    return this.writeBytes(bytes, start, end);
  }

  /**
   * Finish a sequence left open by the previous range byte by byte, validate the middle in bulk,
   * and the last few bytes (a sequence the next range may complete) byte by byte again. The cut
   * is at the start of the last sequence, so the bulk part holds whole sequences only: it is
   * valid UTF-8 on its own exactly when it is valid as part of the message.
   */
  private writeBulk(bytes: Uint8Array, start: number, end: number): boolean {
    let from = start;
    for (; this.need > 0 && from < end; from++) if (!this.writeBytes(bytes, from, from + 1)) return false;
    // Back over at most 3 continuation bytes (10xxxxxx): a lead byte before them starts the last
    // sequence, which goes to the byte loop (it may be incomplete). Anything else (ASCII, or a
    // run of continuation bytes too long) stays in the bulk part, whose check is then exact.
    let lead = end;
    while (lead > from && end - lead < 3 && (bytes[lead - 1] & 0xc0) === 0x80) lead--;
    const cut = lead > from && bytes[lead - 1] >= 0xc0 ? lead - 1 : end;
    if (cut > from && !this.bulk!(bytes.subarray(from, cut))) return false;
    return this.writeBytes(bytes, cut, end);
  }

  private writeBytes(bytes: Uint8Array, start: number, end: number): boolean {
    let need = this.need;
    let lower = this.lower;
    let upper = this.upper;
    let i = start;
    while (i < end) {
      const b = bytes[i++];
      if (need === 0) {
        if (b < 0x80) {
          // ASCII run: the common case, kept in a tight loop.
          while (i < end && bytes[i] < 0x80) i++;
          continue;
        }
        if (b >= 0xc2 && b <= 0xdf) {
          need = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
          need = 2;
          // E0 must not encode an overlong form; ED must not encode a surrogate (U+D800–DFFF).
          if (b === 0xe0) lower = 0xa0;
          else if (b === 0xed) upper = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
          need = 3;
          // F0 must not be overlong; F4 must not go past U+10FFFF.
          if (b === 0xf0) lower = 0x90;
          else if (b === 0xf4) upper = 0x8f;
        } else {
          this.need = need;
          return false; // 80–C1 (continuation or overlong lead) and F5–FF never start a sequence.
        }
      } else {
        if (b < lower || b > upper) {
          this.need = need;
          return false;
        }
        need--;
        lower = 0x80;
        upper = 0xbf;
      }
    }
    this.need = need;
    this.lower = lower;
    this.upper = upper;
    return true;
  }

  /** True when no sequence is left incomplete. Resets the validator for the next message. */
  end(): boolean {
    const complete = this.need === 0;
    this.reset();
    return complete;
  }
}

const scratch = new Utf8Validator();

/** Validate a complete byte sequence. Portable; a Node host may pass a faster one (`buffer.isUtf8`). */
export function isValidUtf8(bytes: Uint8Array): boolean {
  scratch.reset();
  return scratch.write(bytes) && scratch.end();
}

// ignoreBOM: a leading U+FEFF is part of a WebSocket message or close reason, not a byte order mark.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** Decode UTF-8 that has already been validated. */
export function decodeUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Encode a string as UTF-8. */
export function encodeUtf8(text: string): Uint8Array {
  return encoder.encode(text);
}
