/**
 * The seam between the engine and a per-message compression extension (RFC 7692 §6).
 * The engine knows only this interface; the zlib-backed implementation lives in `src/node/`,
 * so the engine itself stays free of Node-only APIs.
 */

/** One offered or accepted extension: its name and its parameters, in order, duplicates kept. */
export interface ExtensionOffer {
  /** The extension's registered token, e.g. `permessage-deflate` (RFC 6455 §9.1, §11.4). */
  readonly name: string;
  /** `true` for a parameter without a value (e.g. `client_max_window_bits`). */
  readonly params: ReadonlyArray<readonly [name: string, value: string | true]>;
}

/**
 * A negotiated per-message compression codec for one connection (one per connection; it may
 * hold a compression context between messages when context takeover was agreed).
 */
export interface MessageCodec {
  /**
   * Decompress the payload of one frame of a compressed message (RSV1 set on its first frame).
   * With a `budget`, stop after about that many bytes of output (see `decompressing`).
   * `fin` is true for the last frame: the codec appends the 0x00 0x00 0xff 0xff tail
   * (RFC 7692 §7.2.2) and resets its context when no context takeover was agreed.
   * `maxSize` is the limit on the whole message (the same on every frame of it: the codec counts
   * its own output per message). Must throw a `ProtocolError` with close code 1009 as soon as
   * the output of the message would exceed `maxSize` bytes, without allocating much beyond it, and a `ProtocolError`
   * with close code 1007 when the data is not valid DEFLATE.
   */
  decompress(data: Uint8Array, fin: boolean, maxSize: number, budget?: number): Uint8Array;
  /**
   * True when the last `decompress` stopped after about `budget` bytes of output with more to
   * come from the same input: the engine calls `decompress` again (with an empty `data` and the
   * same `fin`) before feeding the next frame. A codec without budgets leaves this undefined.
   */
  readonly decompressing?: boolean;
  /**
   * Compress the next part of a large message (the host's `sliceSize` at a time, so a large
   * message does not hold the event loop): the output of every part is sent as one frame of a
   * fragmented compressed message (RFC 7692 §6.1). `fin` marks the last part: its output ends
   * the message (sync flush, the 0x00 0x00 0xff 0xff tail removed). Optional: without it large
   * messages go through `compress` whole.
   */
  compressPart?(data: Uint8Array, fin: boolean): Uint8Array;
  /**
   * Compress one whole message and return the payload to send with RSV1 set (the tail
   * 0x00 0x00 0xff 0xff already removed, RFC 7692 §7.2.1).
   */
  compress(data: Uint8Array): Uint8Array;
  /** Messages smaller than this many bytes are sent uncompressed (RSV1 clear). */
  readonly threshold: number;
  /**
   * Whether `compress` keeps a context between messages. When false, the output for a given
   * input does not depend on earlier messages, so one compressed payload may be sent to many
   * connections (fan-out compresses once).
   */
  readonly outboundContextTakeover: boolean;
  /**
   * Codecs with the same `shareKey` and no outbound context takeover produce the same bytes
   * for the same message, so a message compressed by one may be sent on the others.
   */
  readonly shareKey: string;
  /** Release the compression contexts; the codec is not used afterwards. */
  close(): void;
}
