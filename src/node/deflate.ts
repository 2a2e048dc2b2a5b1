/**
 * The permessage-deflate `MessageCodec` (RFC 7692 §6–§7.2) on Node's zlib.
 *
 * The engine is a synchronous state machine, so this codec is synchronous too. Node's public
 * synchronous zlib API (`deflateRawSync` & co.) is one-shot: it cannot keep the LZ77 window
 * between messages (context takeover, RFC 7692 §7.1.1) nor between the frames of one
 * fragmented message. `SyncZlib` below drives a zlib stream's native handle synchronously
 * instead; see there for why and how.
 *
 * Memory, per connection (zlib's formulas, then RSS measured on Node 20 with 1000 codecs):
 * - deflate context: `(1 << (windowBits + 2)) + (1 << (memLevel + 9))` bytes — 256 KiB at
 *   windowBits 15 / memLevel 8; measured ~218 KiB RSS (about the same at memLevel 5: Node's
 *   Chromium zlib uses a fixed-size hash table), ~104 KiB at windowBits 12. Held only with
 *   outbound context takeover.
 * - inflate context: `(1 << windowBits) + ~7 KiB` — 39 KiB at 15; measured ~20 KiB RSS after
 *   small messages (zlib fills the window lazily). Held only with inbound context takeover, or
 *   while a fragmented message is arriving.
 * - each context also has a ~1.5 KiB JS stream object; an idle codec costs < 1 KiB.
 * - Contexts are created lazily, on the first compressed message in that direction.
 * - Without context takeover nothing is held between messages: outbound messages go through one
 *   deflate context shared by every connection with the same settings (reset after each
 *   message, like uWebSockets' SHARED_COMPRESSOR), and so do inbound single-frame messages.
 *   That is both the smallest (0 bytes per connection) and the fastest choice measured on
 *   Node 20 for an 850-byte JSON message: shared context + reset 5.8 µs, new context per
 *   message 13 µs, `deflateRawSync` 12 µs; with context takeover 2.6 µs. Inflate: shared
 *   context 2.6 µs, `inflateRawSync` 8.4 µs.
 */
import { constants, createDeflateRaw, createInflateRaw } from 'node:zlib';
import { CloseCode, type Side } from '../protocol/constants.js';
import { InvalidStateError, ProtocolError } from '../protocol/errors.js';
import type { MessageCodec } from '../protocol/extension.js';
import {
  DEFAULT_LEVEL,
  DEFAULT_MEM_LEVEL,
  DEFAULT_THRESHOLD,
  validateDeflateOptions,
  type NegotiatedDeflate,
  type PerMessageDeflateOptions,
} from '../protocol/permessage-deflate.js';

/** RFC 7692 §7.2.1: the empty stored block a sync flush ends with; removed when sending, re-added on receipt (§7.2.2). */
const TAIL = new Uint8Array([0x00, 0x00, 0xff, 0xff]);

const EMPTY = new Uint8Array(0);

/** Output is produced into this many bytes at a time (zlib's writes are bounded by it). */
const CHUNK_SIZE = 64 * 1024;

/**
 * The part of the native zlib handle (`node:zlib`'s internal `_handle`, a `ZlibContext`) that
 * we use. Not public API, but stable since Node 10 and what `processChunkSync` (behind every
 * `*Sync` function) uses itself.
 */
interface ZlibHandle {
  /** One `deflate()`/`inflate()` call; leaves [availOut, availIn] in the stream's `_writeState`. */
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    output: Uint8Array,
    outOff: number,
    outLen: number,
  ): void;
  /** `deflateReset()`/`inflateReset()`: forget the window, keep the allocation. */
  reset(): void;
  /** `deflateEnd()`/`inflateEnd()`: free the zlib memory now, not at garbage collection. */
  close(): void;
  /** Called synchronously from `writeSync` when zlib reports an error. */
  onerror: (message: string, errno: number, code?: string) => void;
}

/** The internals of a `node:zlib` stream object that hold the handle and its write state. */
interface ZlibStreamInternals {
  _handle?: ZlibHandle | null;
  _writeState?: Uint32Array;
}

/** Shared output buffer: everything here runs synchronously and never re-enters. */
const scratch = new Uint8Array(CHUNK_SIZE);
/** Copies of the output pieces of the current `run`; one piece in the common case. */
const pieces: Uint8Array[] = [];

/**
 * A zlib deflate or inflate context driven synchronously, keeping its state between calls.
 *
 * Why not `stream._processChunk(chunk, flushFlag)` (synchronous without a callback)? It is
 * built for the one-shot `*Sync` functions: it closes the handle when it returns (so a second
 * call throws) and adds an 'error' listener per call. Instead we take the stream's native
 * handle and call `writeSync` in the same loop `processChunkSync` runs, without closing; the
 * stream object is only used to validate options and initialise the handle.
 */
class SyncZlib {
  private handle: ZlibHandle | undefined;
  private readonly state: Uint32Array;
  private error: string | undefined;
  private ended = false;
  /** Where `run` stopped at its budget with output still to come: `more()` goes on from here. */
  private rest: Uint8Array | undefined;
  private restOffset = 0;
  private restLength = 0;
  private restFlush = 0;

  constructor(
    readonly inflate: boolean,
    windowBits: number,
    level: number,
    memLevel: number,
  ) {
    // chunkSize: the stream's own output buffer is never used (we write into `scratch`), so
    // keep it at the minimum instead of the default 16 KiB per context.
    const chunkSize = constants.Z_MIN_CHUNK;
    const stream = inflate
      ? createInflateRaw({ windowBits, chunkSize })
      : createDeflateRaw({ windowBits, level, memLevel, chunkSize });
    const internals = stream as unknown as ZlibStreamInternals;
    const handle = internals._handle;
    const state = internals._writeState;
    if (handle == null || typeof handle.writeSync !== 'function' || !(state instanceof Uint32Array)) {
      throw new Error(
        `duplex: this Node.js ${process.version} zlib has no synchronous handle; ` +
          'permessage-deflate needs Node 20 or later — disable perMessageDeflate to run here',
      );
    }
    // Take errors ourselves: the stream's own handler would destroy it and emit 'error'
    // asynchronously, which nobody listens to.
    handle.onerror = (message) => {
      this.error = message;
    };
    this.handle = handle;
    this.state = state;
  }

  /**
   * Feed `input` with `flush` and append the output to `pieces`. Returns the bytes produced.
   * Stops and returns as soon as more than `limit` bytes were produced (at most one byte more:
   * each write is capped at what is left), so a decompression bomb costs `limit` bytes.
   * Stops too once `budget` bytes were produced while zlib has more to give (`pending`); `more()`
   * then goes on where it stopped, so a large inflate can be spread over several loop passes.
   * Throws the zlib error message as an `Error`.
   */
  run(input: Uint8Array, flush: number, limit: number, budget = Number.POSITIVE_INFINITY, offset = 0, length = input.length): number {
    const handle = this.handle;
    if (handle === undefined) throw new InvalidStateError('zlib context already closed');
    this.rest = undefined;
    if (this.ended) return 0;
    let inOff = offset;
    let inLen = length;
    let produced = 0;
    // Nothing may be produced: a write with no room would trip a native assertion (abort).
    if (limit < 0) return produced + 1;
    while (true) {
      const outLen = Math.min(CHUNK_SIZE, limit - produced + 1);
      handle.writeSync(flush, input, inOff, inLen, scratch, 0, outLen);
      if (this.error !== undefined) throw new Error(this.error);
      const availOut = this.state[0]!;
      const availIn = this.state[1]!;
      const have = outLen - availOut;
      if (have > 0) {
        pieces.push(scratch.slice(0, have));
        produced += have;
        if (produced > limit) return produced;
      }
      inOff += inLen - availIn;
      inLen = availIn;
      if (availOut === 0) {
        // Output buffer full: zlib has more to give, now or after the budget's pause.
        if (produced < budget) continue;
        this.rest = input;
        this.restOffset = inOff;
        this.restLength = inLen;
        this.restFlush = flush;
        return produced;
      }
      if (inLen > 0) {
        // Input left and room to spare: only inflate stops like that, after a block with BFINAL
        // set (RFC 7692 §7.2.3.4). The rest of the message (padding, the 00 00 ff ff we
        // appended) is ignored, and the next message starts a new DEFLATE stream.
        this.ended = true;
      }
      return produced;
    }
  }

  /** Whether the last `run` stopped at its budget with more output to come (see `more`). */
  get pending(): boolean {
    return this.rest !== undefined;
  }

  /** Go on with the input the last `run` stopped in (same `limit` and `budget` rules). */
  more(limit: number, budget: number): number {
    const rest = this.rest;
    if (rest === undefined) return 0;
    return this.run(rest, this.restFlush, limit, budget, this.restOffset, this.restLength);
  }

  /** An inflated DEFLATE stream reached its final block; `reset()` before the next message. */
  get finished(): boolean {
    return this.ended;
  }

  reset(): void {
    this.handle?.reset();
    this.ended = false;
    this.rest = undefined;
  }

  close(): void {
    this.handle?.close();
    this.handle = undefined;
    this.rest = undefined;
  }
}

/** Join the pieces of the last `run`s into one buffer (no copy when there is one piece). */
function takeOutput(total: number): Uint8Array {
  if (pieces.length === 1) return pieces.pop()!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  pieces.length = 0;
  return out;
}

/**
 * Contexts without context takeover, shared by all connections with the same settings: a
 * context is reset after every message, so nothing of one connection leaks into another.
 */
const sharedContexts = new Map<string, SyncZlib>();

function sharedContext(inflate: boolean, windowBits: number, level: number, memLevel: number): SyncZlib {
  const key = `${inflate ? 'i' : 'd'}${windowBits}/${level}/${memLevel}`;
  let context = sharedContexts.get(key);
  if (context === undefined) {
    context = new SyncZlib(inflate, windowBits, level, memLevel);
    sharedContexts.set(key, context);
  }
  return context;
}

function dropShared(context: SyncZlib): void {
  unshare(context);
  context.close();
}

/**
 * A shared context that stays in the middle of a message across calls (a large message done in
 * slices) becomes the connection's own: the next message of any connection gets a new one.
 */
function unshare(context: SyncZlib): void {
  for (const [key, value] of sharedContexts) if (value === context) sharedContexts.delete(key);
}

/** A context taken with `unshare` goes back to the pool after its message (or is freed if the pool has one). */
function giveBack(context: SyncZlib, inflate: boolean, windowBits: number, level: number, memLevel: number): void {
  const key = `${inflate ? 'i' : 'd'}${windowBits}/${level}/${memLevel}`;
  if (sharedContexts.has(key)) {
    context.close();
  } else {
    context.reset();
    sharedContexts.set(key, context);
  }
}

/**
 * zlib refuses windowBits 8 for raw deflate (and Node silently turns it into 9). That is still
 * safe for a peer that asked for 8 (RFC 7692 §7.1.2.1/§7.1.2.2): zlib never matches further
 * back than `w_size - MIN_LOOKAHEAD` = 512 - 262 = 250 bytes, inside a 256-byte window. ws does
 * the same; the tests inflate our window-8 output with a window-8 inflater to prove it.
 */
const deflateWindowBits = (bits: number): number => Math.max(bits, 9);

/**
 * The permessage-deflate codec for one connection.
 *
 * @param side which end we are: the server compresses with the server_* parameters and
 *   inflates with the client_* ones, the client the other way round (RFC 7692 §7.1).
 * @param params what the handshake agreed (`negotiateServer` / `acceptServerResponse`).
 * @param options `threshold`, `level` and `memLevel` are used here.
 */
export function createDeflateCodec(
  side: Side,
  params: NegotiatedDeflate,
  options: PerMessageDeflateOptions = {},
): MessageCodec {
  validateDeflateOptions(options);
  return new DeflateCodec(side, params, options);
}

class DeflateCodec implements MessageCodec {
  readonly threshold: number;
  readonly outboundContextTakeover: boolean;
  readonly shareKey: string;
  private readonly inboundContextTakeover: boolean;
  private readonly outboundBits: number;
  private readonly inboundBits: number;
  private readonly level: number;
  private readonly memLevel: number;
  /** Our own deflate context, only with outbound context takeover. */
  private deflater: SyncZlib | undefined;
  /** Our own inflate context: with inbound context takeover, or during a fragmented message. */
  private inflater: SyncZlib | undefined;
  /** The deflate context of a message compressed in parts (`compressPart`), without context takeover. */
  private partDeflater: SyncZlib | undefined;
  /** Bytes inflated so far for the message being received (limit checks span its frames). */
  private inflated = 0;
  /** The last `decompress` stopped at its budget: the next call goes on with the same input. */
  private resuming = false;
  /** The 00 00 ff ff of the message's last frame is still to be inflated (RFC 7692 §7.2.2). */
  private tailDue = false;
  private closed = false;

  constructor(side: Side, params: NegotiatedDeflate, options: PerMessageDeflateOptions) {
    const server = side === 'server';
    this.threshold = options.threshold ?? DEFAULT_THRESHOLD;
    this.level = options.level ?? DEFAULT_LEVEL;
    this.memLevel = options.memLevel ?? DEFAULT_MEM_LEVEL;
    this.outboundContextTakeover = !(server ? params.serverNoContextTakeover : params.clientNoContextTakeover);
    this.inboundContextTakeover = !(server ? params.clientNoContextTakeover : params.serverNoContextTakeover);
    this.outboundBits = deflateWindowBits(server ? params.serverMaxWindowBits : params.clientMaxWindowBits);
    this.inboundBits = server ? params.clientMaxWindowBits : params.serverMaxWindowBits;
    this.shareKey = `deflate:${this.outboundBits}:${this.level}:${this.memLevel}`;
  }

  get decompressing(): boolean {
    return this.resuming;
  }

  compressPart(data: Uint8Array, fin: boolean): Uint8Array {
    if (this.closed) throw new InvalidStateError('permessage-deflate codec used after close()');
    let context = this.deflater ?? this.partDeflater;
    if (context === undefined) {
      if (this.outboundContextTakeover) {
        context = this.deflater = new SyncZlib(false, this.outboundBits, this.level, this.memLevel);
      } else {
        // The context stays in the middle of this message between parts: take it out of the pool.
        context = this.partDeflater = sharedContext(false, this.outboundBits, this.level, this.memLevel);
        unshare(context);
      }
    }
    let total: number;
    try {
      // Z_NO_FLUSH between parts: zlib keeps what it has not emitted yet; the last part ends the
      // message with a sync flush (RFC 7692 §7.2.1), as `compress` does.
      total = context.run(data, fin ? constants.Z_SYNC_FLUSH : constants.Z_NO_FLUSH, Number.POSITIVE_INFINITY);
    } catch (error) {
      pieces.length = 0;
      this.releasePartDeflater(false);
      throw error;
    }
    if (fin) this.releasePartDeflater(true);
    if (total === 0) return EMPTY;
    const out = takeOutput(total);
    // §7.2.1: remove the 00 00 ff ff that the sync flush ended with.
    return fin && out.length >= TAIL.length ? out.subarray(0, out.length - TAIL.length) : out;
  }

  compress(data: Uint8Array): Uint8Array {
    if (this.closed) throw new InvalidStateError('permessage-deflate codec used after close()');
    let context = this.deflater;
    if (context === undefined && this.outboundContextTakeover) {
      context = this.deflater = new SyncZlib(false, this.outboundBits, this.level, this.memLevel);
    }
    const shared = context === undefined;
    if (context === undefined) context = sharedContext(false, this.outboundBits, this.level, this.memLevel);
    let total: number;
    try {
      // RFC 7692 §7.2.1: compress, then flush so the message ends on a byte boundary.
      total = context.run(data, constants.Z_SYNC_FLUSH, Number.POSITIVE_INFINITY);
    } catch (error) {
      pieces.length = 0;
      if (shared) dropShared(context);
      throw error;
    }
    if (shared) context.reset(); // §7.1.1: no context takeover — the next message starts afresh
    // zlib emits nothing for an empty message right after a flush (context takeover). An empty
    // payload would make the peer read its appended 00 00 ff ff as a block header with a bogus
    // length; send the single 0x00 byte RFC 7692 §7.2.3.6 gives for an empty message instead.
    if (total === 0) return Uint8Array.of(0x00);
    const out = takeOutput(total);
    // §7.2.1: remove the 00 00 ff ff that a sync flush always ends with.
    return out.subarray(0, out.length - TAIL.length);
  }

  decompress(data: Uint8Array, fin: boolean, maxSize: number, budget = Number.POSITIVE_INFINITY): Uint8Array {
    if (this.closed) throw new InvalidStateError('permessage-deflate codec used after close()');
    let context = this.inflater;
    const resuming = this.resuming;
    // A whole message in one frame from a peer without context takeover needs no context of
    // its own; anything else (a fragment, or context takeover) does.
    const shared = context === undefined && fin && !this.inboundContextTakeover;
    if (context === undefined) {
      context = shared
        ? sharedContext(true, this.inboundBits, 0, 0)
        : (this.inflater = new SyncZlib(true, this.inboundBits, 0, 0));
    }
    const limit = maxSize - this.inflated;
    let total = 0;
    try {
      if (resuming) {
        total = context.more(limit, budget);
      } else {
        total = context.run(data, constants.Z_SYNC_FLUSH, limit, budget);
        this.tailDue = fin;
      }
      // §7.2.2: append 00 00 ff ff to the end of the message's payload, then inflate. No budget
      // check: once zlib took all the input with room to spare, the empty block adds nothing.
      if (this.tailDue && !context.pending && total <= limit) {
        this.tailDue = false;
        total += context.run(TAIL, constants.Z_SYNC_FLUSH, limit - total, budget - total);
      }
    } catch (error) {
      pieces.length = 0;
      this.failInflate(context, shared);
      throw new ProtocolError(
        'ERR_INFLATE',
        // 1007, as ws does: the payload is not valid DEFLATE, i.e. inconsistent with the
        // message type (RFC 6455 §7.4.1); the frame itself was well formed.
        CloseCode.InvalidFramePayloadData,
        `Invalid compressed data in a permessage-deflate message: ${(error as Error).message} ` +
          '(RFC 7692 §7.2.2)',
      );
    }
    if (total > limit) {
      pieces.length = 0;
      this.failInflate(context, shared);
      throw new ProtocolError(
        'ERR_MESSAGE_TOO_BIG',
        CloseCode.MessageTooBig,
        `Message inflates to more than the ${maxSize}-byte limit; raise maxMessageSize to accept it`,
      );
    }
    this.resuming = context.pending || this.tailDue;
    if (this.resuming) {
      // Stopped at the budget: the context holds this message's state until the next call.
      if (shared) {
        unshare(context);
        this.inflater = context;
      }
      this.inflated += total;
      return takeOutput(total);
    }
    if (fin) {
      this.inflated = 0;
      if (shared || context.finished) context.reset();
      if (!shared && !this.inboundContextTakeover) {
        // Nothing to keep between messages: the context of a fragmented (or sliced) message goes
        // to the pool, or is freed if the pool has one.
        giveBack(context, true, this.inboundBits, 0, 0);
        this.inflater = undefined;
      }
    } else {
      this.inflated += total;
    }
    return takeOutput(total);
  }

  close(): void {
    this.closed = true;
    this.deflater?.close();
    this.deflater = undefined;
    this.partDeflater?.close();
    this.partDeflater = undefined;
    this.closeInflater();
  }

  /** The message compressed in parts ended (`reuse`) or failed: its pooled context goes back or is freed. */
  private releasePartDeflater(reuse: boolean): void {
    const context = this.partDeflater;
    if (context === undefined) return;
    this.partDeflater = undefined;
    if (reuse) giveBack(context, false, this.outboundBits, this.level, this.memLevel);
    else context.close();
  }

  /** After an error the zlib state is unusable: free it (the connection is failing anyway). */
  private failInflate(context: SyncZlib, shared: boolean): void {
    this.inflated = 0;
    this.resuming = false;
    this.tailDue = false;
    if (shared) dropShared(context);
    else this.closeInflater();
  }

  private closeInflater(): void {
    this.inflater?.close();
    this.inflater = undefined;
  }
}
