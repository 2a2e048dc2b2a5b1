/**
 * A large compressed message being sent a slice at a time (`ConnectionOptions.sliceSize`), and
 * the sends made meanwhile, which wait behind it in order. The `Connection` asks it for the next
 * frame of the message per slice and, once the message is out, for the sends that waited; a
 * large one among them starts the next sliced message with the rest still waiting behind it.
 */
import { Opcode } from './constants.js';
import type { MessageCodec } from './extension.js';

/** A waiting send's `kind` for `sendRaw` (data sends use their opcode, the close frame Opcode.Close). */
export const RAW_FRAME = -1;

/** RFC 7692 §7.2.3.6: the payload of an empty compressed message. */
const EMPTY_DEFLATE = Uint8Array.of(0x00);

/** A send made while a sliced message was being sent. */
export interface WaitingSend {
  readonly kind: number;
  readonly data: Uint8Array;
  readonly fin: boolean;
  readonly compress: boolean;
}

/** One frame of the sliced message, and how much of the message it consumed. */
export interface SlicedFrame {
  /** The frame to queue, if the slice produced output (zlib may hold it back until later). */
  readonly payload: Uint8Array | undefined;
  readonly opcode: number;
  readonly rsv1: boolean;
  /** The message is complete with this frame. */
  readonly fin: boolean;
  readonly consumed: number;
}

export class SlicedSend {
  private opcode: number;
  private data: Uint8Array;
  /** How much of `data` was compressed so far. */
  private offset = 0;
  /** No frame of the message was queued yet: the next one carries the opcode and RSV1. */
  private first = true;
  private waiting: WaitingSend[] = [];
  private waitingBytes = 0;
  /** A message is being sent (false once it is out, while the waiting sends are let go). */
  sending = true;

  constructor(opcode: number, data: Uint8Array) {
    this.opcode = opcode;
    this.data = data;
  }

  /** A waiting send, reached while the waiting ones were let go, that is large in its turn. */
  restart(opcode: number, data: Uint8Array): void {
    this.opcode = opcode;
    this.data = data;
    this.offset = 0;
    this.first = true;
    this.sending = true;
  }

  /** Bytes accepted and not framed yet: the rest of the message and everything waiting. */
  get pendingBytes(): number {
    return (this.sending ? this.data.length - this.offset : 0) + this.waitingBytes;
  }

  wait(kind: number, data: Uint8Array, fin: boolean, compress: boolean): void {
    this.waiting.push({ kind, data, fin, compress });
    this.waitingBytes += data.length;
  }

  /** Compress up to `budget` more bytes of the message into its next frame. */
  nextFrame(codec: MessageCodec, budget: number): SlicedFrame {
    const start = this.offset;
    const end = Math.min(this.data.length, start + budget);
    const fin = end === this.data.length;
    const out = codec.compressPart!(this.data.subarray(start, end), fin);
    this.offset = end;
    if (fin) this.sending = false;
    if (out.length === 0 && !fin) return { payload: undefined, opcode: 0, rsv1: false, fin, consumed: end - start };
    // RFC 7692 §6.1: the opcode and RSV1 on the first frame only, continuations after it.
    const first = this.first;
    this.first = false;
    const payload = fin && first && out.length === 0 ? EMPTY_DEFLATE : out;
    return { payload, opcode: first ? this.opcode : Opcode.Continuation, rsv1: first, fin, consumed: end - start };
  }

  /** The next waiting send, once the message is out (undefined while one is being sent). */
  nextWaiting(): WaitingSend | undefined {
    if (this.sending || this.waiting.length === 0) return undefined;
    const send = this.waiting.shift()!;
    this.waitingBytes -= send.data.length;
    return send;
  }

  /** The payload of a close frame among the waiting sends (a failure sends it at once, drops the rest). */
  waitingClose(): Uint8Array | undefined {
    return this.waiting.find((send) => send.kind === Opcode.Close)?.data;
  }
}
