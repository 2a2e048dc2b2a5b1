/**
 * Fan-out without re-serialising (uWebSockets' "serialise and compress once"): a message framed
 * once, and compressed once per kind of codec, then the same bytes written to every receiver.
 */
import { Opcode } from '../protocol/constants.js';
import type { MessageCodec } from '../protocol/extension.js';
import { encodeFrame } from '../protocol/frame.js';

/**
 * A message framed once for many connections (hub fan-out, broadcast): the same bytes are
 * written to every receiver. Build with `prepareMessage`, send with `ws.sendPrepared`.
 */
export class PreparedMessage {
  /** The complete unmasked frame, uncompressed. */
  readonly frame: Uint8Array;
  /** The payload, for connections that must compress it. */
  readonly payload: Uint8Array;
  /** Whether it goes out as a binary message (else text). */
  readonly binary: boolean;
  /** Compressed frames by codec `shareKey`, made on first use and reused for every receiver. */
  private compressed: Map<string, Uint8Array> | undefined;

  /**
   * Frames `payload` at once; compressed variants are made on first use. Prefer `prepareMessage`.
   * @param payload The message; must be valid UTF-8 when `binary` is false. Not copied: do not change it afterwards.
   */
  constructor(payload: Uint8Array, binary: boolean) {
    this.payload = payload;
    this.binary = binary;
    this.frame = encodeFrame(binary ? Opcode.Binary : Opcode.Text, payload);
  }

  /** The frame to send on a connection with `codec` (compressed once per codec kind). */
  frameFor(codec: MessageCodec | undefined): Uint8Array {
    if (!codec || codec.outboundContextTakeover || this.payload.length < codec.threshold) return this.frame;
    this.compressed ??= new Map();
    let frame = this.compressed.get(codec.shareKey);
    if (!frame) {
      // RFC 7692 §7.1.1: without outbound context takeover the output depends on this message
      // alone, so one compressed frame serves every connection whose codec has this shareKey.
      frame = encodeFrame(this.binary ? Opcode.Binary : Opcode.Text, codec.compress(this.payload), { rsv1: true });
      this.compressed.set(codec.shareKey, frame);
    }
    return frame;
  }
}

/** Frame `data` once for sending to many connections (a string is sent as text). */
export function prepareMessage(data: string | Uint8Array, binary = typeof data !== 'string'): PreparedMessage {
  return new PreparedMessage(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, binary);
}
