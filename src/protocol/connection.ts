/**
 * The sans-I/O WebSocket connection (RFC 6455 §5–§7): feed it the bytes that arrive with
 * `receiveData`, get messages and control events through a handler, read the bytes to write
 * with `dataToSend`. No sockets, no timers, no Node APIs: the same engine runs in Node, a
 * browser, a worker or another runtime. Modelled on python-websockets' `Protocol`, with a
 * handler object instead of an event list so the hot path allocates nothing per message
 * (`EventQueue` gives the event-list style for those who prefer it).
 */
import {
  CloseCode,
  DEFAULT_MAX_MESSAGE_SIZE,
  MAX_CONTROL_PAYLOAD,
  Opcode,
  State,
  isControlOpcode,
  isValidCloseCode,
  type Side,
} from './constants.js';
import { InvalidStateError, ProtocolError, protocolError } from './errors.js';
import type { MessageCodec } from './extension.js';
import { encodeFrame, encodeFrameHeader, frameHeaderLength, writeFrameHeader } from './frame.js';
import { MaskKeySource, applyMask } from './mask.js';
import { RAW_FRAME, SlicedSend } from './sliced-send.js';
import { Utf8Validator, decodeUtf8, encodeUtf8, isValidUtf8 } from './utf8.js';

/** What the engine reports. Called synchronously from `receiveData`; must not throw. */
export interface ConnectionHandler {
  /**
   * A complete message. `data` may be a view into a chunk passed to `receiveData`; it is not
   * reused by the engine, so it may be kept.
   */
  onMessage(data: Uint8Array, binary: boolean): void;
  /** A ping arrived; the engine has already queued the pong (RFC 6455 §5.5.2), unless `autoPong` is false. */
  onPing(data: Uint8Array): void;
  /** A pong arrived (solicited or not, RFC 6455 §5.5.3). */
  onPong(data: Uint8Array): void;
  /**
   * A close frame arrived (code 1005 when it had no payload). When it started the closing
   * handshake, the engine has already queued the answering close frame (RFC 6455 §5.5.1).
   */
  onClose(code: number, reason: string): void;
  /** The peer broke the protocol; the engine queued a close frame with `error.closeCode`. */
  onProtocolError(error: ProtocolError): void;
}

/** Options of a `Connection`. */
export interface ConnectionOptions {
  /** Which end this is: servers demand masked frames, clients mask what they send. */
  side: Side;
  /** Largest message accepted, after decompression, in bytes (default 1 MiB, `DEFAULTS.connection`); more → 1009. */
  maxMessageSize?: number;
  /** Largest single frame payload accepted, in bytes (default: `maxMessageSize`); more → 1009. */
  maxFrameSize?: number;
  /** The negotiated permessage-deflate codec, if any (enables RSV1, RFC 7692 §6). */
  codec?: MessageCodec | undefined;
  /**
   * A fast whole-buffer UTF-8 validator for text messages that arrive in one piece
   * (e.g. Node's `buffer.isUtf8`). Messages that arrive in pieces are always checked
   * incrementally so invalid data fails fast.
   */
  validateUtf8?: (data: Uint8Array) => boolean;
  /** Start in CONNECTING (until `accept()`), for hosts that run the engine before the handshake ends. */
  connecting?: boolean;
  /**
   * Answer each ping with a pong carrying its data (RFC 6455 §5.5.2), default true. With false
   * pings are only reported (`onPing`) and the host answers them itself, or not (ws's `autoPong`).
   */
  autoPong?: boolean;
  /**
   * Deliver text messages and close reasons without checking that they are UTF-8 (ws's
   * `skipUTF8Validation`), default false. Only for peers that are trusted to send valid UTF-8:
   * RFC 6455 §8.1 requires the check. An invalid close reason is then decoded with U+FFFD.
   */
  skipUtf8Validation?: boolean;
  /**
   * Where a client's masking keys come from (default: the engine's pool of CSPRNG bytes). Only
   * for a host that must choose them, as ws's `generateMask` does, e.g. tests that read the
   * frames on the wire: RFC 6455 §5.3 wants keys an attacker cannot predict. `next()` returns 4
   * bytes that are used at once (before the next call). Ignored on a server (it does not mask).
   */
  maskingKeys?: MaskingKeySource;
  /**
   * The most frames one message may have (default: no limit); one more fails the connection
   * with 1008 (`ERR_MESSAGE_TOO_BIG`): each frame costs a piece held until the message ends.
   */
  maxFragments?: number;
  /**
   * The most transport chunks one frame's payload may arrive in (default: no limit); one more
   * fails the connection with 1008 (`ERR_MESSAGE_TOO_BIG`): a peer trickling a large frame in
   * tiny chunks would otherwise make the engine hold a piece per chunk.
   */
  maxFrameChunks?: number;
  /**
   * Give the close frame of a failure the error's message as its reason (default true, for the
   * peer's logs). False sends the close code alone, as ws does.
   */
  failureReasons?: boolean;
  /**
   * The most bytes of large-message work one call does (default: no limit): bytes inflated,
   * compressed, unmasked or copied to join a message's pieces. Past it the engine suspends: it
   * keeps the rest of its input, `suspended` turns true, and the host calls `resume()` later,
   * after other connections had their turn, until `suspended` is false. One peer's 16 MiB
   * message then costs the others a slice of latency, not the whole inflate (a decompression
   * bomb inflates ~1.5 GB/s: 10 ms per 16 MiB). A large compressed message that is sent goes
   * out as a fragmented message, one frame per slice (RFC 7692 §6.1); later sends wait behind
   * it in order, control frames go between its frames (RFC 6455 §5.4).
   */
  sliceSize?: number;
}

/** A source of client masking keys (`ConnectionOptions.maskingKeys`). */
export interface MaskingKeySource {
  /** 4 bytes of masking key, read at once by the engine (the same array may be returned each time). */
  next(): Uint8Array;
}

/** Options of one outgoing data frame. */
export interface SendOptions {
  /** Last frame of the message (default true). Send the rest with `sendContinuation`. */
  fin?: boolean;
  /** Compress when a codec was negotiated and the message reaches its threshold (default true). */
  compress?: boolean;
}

const PARSE_HEADER = 0;
const PARSE_PAYLOAD = 1;

/** What the message being received still has to do before parsing goes on (`sliceSize`). */
const TASK_NONE = 0;
/** Its last piece is still being inflated. */
const TASK_INFLATE = 1;
/** Its pieces are being copied into one buffer. */
const TASK_ASSEMBLE = 2;

/**
 * What a frame outside the fast lane (a fragment, a control frame) and a piece joined into a
 * message cost against `sliceSize`, besides their bytes: 50,000 one-byte fragments are 50 KB of
 * data but ~40 ms of parsing and joining, so they are counted as ~50 MB and sliced as such.
 */
const FRAME_COST = 1024;
const PIECE_COST = 64;

/** Above this size (bytes) a server frame's payload is queued as-is behind its header, not copied. */
const COPY_LIMIT = 2048;

const EMPTY = new Uint8Array(0);
const NO_CHUNKS: Uint8Array[] = [];

const maskKeys = new MaskKeySource();

/** The validator of `skipUtf8Validation`: every text message passes. */
const acceptAnyText = (): boolean => true;
/** Decodes close reasons that were not validated (`skipUtf8Validation`), created on first need. */
let lenientDecoder: TextDecoder | undefined;

/** The masking key of the frame being unmasked, as bytes for `applyMask` (shared: unmasking is synchronous). */
const MASK_BYTES = new Uint8Array(4);
function maskBytes(word: number): Uint8Array {
  MASK_BYTES[0] = word >>> 24;
  MASK_BYTES[1] = (word >>> 16) & 0xff;
  MASK_BYTES[2] = (word >>> 8) & 0xff;
  MASK_BYTES[3] = word & 0xff;
  return MASK_BYTES;
}

/** Length of a frame header given its second byte (RFC 6455 §5.2). */
function headerLength(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
}

/** One WebSocket connection's protocol state. */
export class Connection {
  /** Which end this engine plays: a server requires masked frames, a client masks its own. */
  readonly side: Side;
  private readonly maxMessageSize: number;
  private readonly maxFrameSize: number;
  private readonly codec: MessageCodec | undefined;
  private readonly validateUtf8: (data: Uint8Array) => boolean;
  /** The host's fast validator, used for the bulk of text that arrives in pieces. */
  private readonly bulkUtf8: ((data: Uint8Array) => boolean) | undefined;
  private readonly handler: ConnectionHandler;
  private readonly autoPong: boolean;
  /**
   * The opcode whose messages are validated as UTF-8 as they arrive: Text, or -1 (no opcode)
   * with `skipUtf8Validation`, so skipping costs the slow lane no extra test.
   */
  private readonly validatedOpcode: number;
  /** A custom masking-key source, or undefined for the engine's pool (the usual case, kept monomorphic). */
  private readonly maskingKeys: MaskingKeySource | undefined;
  private readonly maxFragments: number;
  private readonly maxFrameChunks: number;
  private readonly failureReasons: boolean;
  private readonly sliceSize: number;
  /** What is left of `sliceSize` in the current call. */
  private sliceLeft = Number.POSITIVE_INFINITY;
  /** Input not parsed yet: the rest of a chunk when the engine suspended, then chunks fed meanwhile. */
  private backlog: Uint8Array[] = NO_CHUNKS;
  private inboundTask = TASK_NONE;
  /** The piece being inflated ends its message. */
  private inflateEnd = false;
  /** The buffer a large message's pieces are joined into, and how far that got. */
  private assembly: Uint8Array | undefined;
  private assemblyPart = 0;
  private assemblyOffset = 0;
  /** The large compressed message being sent, and the sends that wait behind it. */
  private outbound: SlicedSend | undefined;

  private _state: State;
  private output: Uint8Array[] = [];

  // Frame parser state.
  private parseState = PARSE_HEADER;
  /** Where a header split across chunks is gathered (created on first need). */
  private header: Uint8Array | undefined;
  private headerHave = 0;
  private fin = false;
  private rsv1 = false;
  private opcode = 0;
  private masked = false;
  /** The current frame's masking key as one big-endian word (no typed array per connection). */
  private maskWord = 0;
  private payloadLength = 0;
  private payloadOffset = 0;
  private controlParts: Uint8Array[] = NO_CHUNKS;
  /** Chunks the current frame's payload has arrived in so far (`maxFrameChunks`). */
  private framePieces = 0;

  // Message reassembly state (RFC 6455 §5.4).
  private messageOpcode = 0;
  private messageCompressed = false;
  private messageSize = 0;
  /** Frames of the current message so far (`maxFragments`). */
  private messageFrames = 0;
  private parts: Uint8Array[] = NO_CHUNKS;
  /** Incremental UTF-8 state of a text message that arrives in pieces (created on first need). */
  private utf8: Utf8Validator | undefined;

  // Outgoing fragmentation and closing state.
  private sendingFragmented = false;
  private discarding = false;
  private failed = false;
  private closeSent = false;
  private closeReceivedCode = 0;
  private closeReceivedReason = '';
  private _closeSentCode = 0;

  /**
   * A connection in OPEN state (CONNECTING with `connecting: true`): the opening handshake is
   * the host's (`validateRequest`, `buildAcceptResponse`, `validateResponse`); the engine starts
   * where it ends.
   * @param handler Receives messages and control events synchronously from `receiveData`.
   */
  constructor(options: ConnectionOptions, handler: ConnectionHandler) {
    this.side = options.side;
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.maxFrameSize = options.maxFrameSize ?? this.maxMessageSize;
    this.codec = options.codec;
    const skipUtf8 = options.skipUtf8Validation === true;
    this.validateUtf8 = skipUtf8 ? acceptAnyText : (options.validateUtf8 ?? isValidUtf8);
    this.bulkUtf8 = options.validateUtf8;
    this.validatedOpcode = skipUtf8 ? -1 : Opcode.Text;
    this.autoPong = options.autoPong ?? true;
    this.maskingKeys = options.side === 'client' ? options.maskingKeys : undefined;
    // 0 (or a negative number) means no limit, as ws reads its maxFragments/maxBufferedChunks.
    this.maxFragments = options.maxFragments !== undefined && options.maxFragments > 0 ? options.maxFragments : Infinity;
    this.maxFrameChunks = options.maxFrameChunks !== undefined && options.maxFrameChunks > 0 ? options.maxFrameChunks : Infinity;
    this.failureReasons = options.failureReasons ?? true;
    this.sliceSize = options.sliceSize !== undefined && options.sliceSize > 0 ? options.sliceSize : Number.POSITIVE_INFINITY;
    this.handler = handler;
    this._state = options.connecting ? State.Connecting : State.Open;
  }

  /** CONNECTING, OPEN, CLOSING or CLOSED. */
  get state(): State {
    return this._state;
  }

  /** The code of the close frame received: 1005 if it had none, 1006 if none arrived. */
  get closeCode(): number {
    return this.closeReceivedCode || CloseCode.AbnormalClosure;
  }

  /** The reason in the close frame received ('' if none). */
  get closeReason(): string {
    return this.closeReceivedReason;
  }

  /** The code of the close frame sent (1005 for an empty one, 0 if none was sent). */
  get closeSentCode(): number {
    return this._closeSentCode;
  }

  /** Whether a close frame has been sent. */
  get closing(): boolean {
    return this.closeSent;
  }

  /** Whether a message sent with `fin: false` awaits its last fragment (`sendContinuation`). */
  get sendingFragment(): boolean {
    return this.sendingFragmented;
  }

  /**
   * Whether the host should now close the transport after writing `dataToSend()`: after a
   * failure (RFC 6455 §7.1.7), or on a server once close frames went both ways (§7.1.1: the
   * server closes the TCP connection first). A client waits for the server to close it.
   */
  get shouldCloseTransport(): boolean {
    // A close frame queued behind a sliced message is not written yet (a failure drops both).
    if (this.outbound !== undefined) return false;
    return this.failed || (this.closeSent && this.closeReceivedCode !== 0 && this.side === 'server');
  }

  /**
   * Whether work waits for `resume()` (see `sliceSize`): a large message being inflated, joined or
   * compressed, or input kept meanwhile.
   */
  get suspended(): boolean {
    return this.inboundTask !== TASK_NONE || this.backlog.length > 0 || this.outbound !== undefined;
  }

  /** Whether received input waits for `resume()`: a host should stop reading meanwhile (backpressure). */
  get receiveSuspended(): boolean {
    return this.inboundTask !== TASK_NONE || this.backlog.length > 0;
  }

  /** Bytes of messages accepted by the send methods and not framed yet (a sliced message and what waits behind it). */
  get pendingSendBytes(): number {
    return this.outbound === undefined ? 0 : this.outbound.pendingBytes;
  }

  /** The negotiated compression codec, if any. */
  get messageCodec(): MessageCodec | undefined {
    return this.codec;
  }

  /** Leave CONNECTING once the opening handshake succeeded. */
  accept(): void {
    if (this._state !== State.Connecting) throw new InvalidStateError('accept() is only valid while CONNECTING');
    this._state = State.Open;
  }

  /** Bytes to write to the transport, in order; empties the queue. */
  dataToSend(): Uint8Array[] {
    this.sealArenaRun();
    if (this.output.length === 0) return NO_CHUNKS;
    const out = this.output;
    this.output = [];
    return out;
  }

  /** Whether anything is queued for the transport. */
  get hasDataToSend(): boolean {
    return this.output.length > 0 || (arena.owner === this && arena.pos > arena.runStart);
  }

  /**
   * Feed bytes from the transport. Masked payloads are unmasked in place, so the chunk must
   * not be used by the caller afterwards. Data after a close frame is ignored (RFC 6455 §5.5.1).
   */
  receiveData(chunk: Uint8Array): void {
    if (this._state === State.Connecting) throw new InvalidStateError('data received before the handshake completed');
    if (this.discarding || this._state === State.Closed) return;
    if (this.receiveSuspended) {
      // Kept in order behind the suspended work (a host should have stopped reading).
      if (this.backlog === NO_CHUNKS) this.backlog = [];
      this.backlog.push(chunk);
      return;
    }
    this.sliceLeft = this.sliceSize;
    try {
      this.parse(chunk);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.failWith(error);
    }
  }

  /**
   * Go on with suspended work (see `sliceSize`): a slice of the large message being sent, then a
   * slice of the message being received and of the input kept meanwhile. Events are reported as
   * from `receiveData`; call it again while `suspended` is true.
   */
  resume(): void {
    if (this._state === State.Connecting) throw new InvalidStateError('resume() before the handshake completed');
    // The message being sent first, with a slice of its own: an echo of large messages then
    // frames as fast as it receives, instead of piling up sends behind the inbound work.
    this.sliceLeft = this.sliceSize;
    if (this.outbound !== undefined) this.continueOutbound();
    this.sliceLeft = this.sliceSize;
    try {
      if (this.inboundTask !== TASK_NONE && !this.discarding) this.continueInbound();
      while (this.inboundTask === TASK_NONE && this.backlog.length > 0 && this.sliceLeft > 0 && !this.discarding) {
        this.parse(this.backlog.shift()!);
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.failWith(error);
    }
  }

  /** The transport reached end of file or closed: the connection is CLOSED. */
  receiveEof(): void {
    this._state = State.Closed;
    this.discarding = true;
    this.releaseMessage();
    this.abandonSends();
  }

  /** Send a text message (or its first fragment). A Uint8Array must hold valid UTF-8. */
  sendText(data: string | Uint8Array, options?: SendOptions): void {
    this.sendData(Opcode.Text, typeof data === 'string' ? encodeUtf8(data) : data, options);
  }

  /** Send a binary message (or its first fragment). */
  sendBinary(data: Uint8Array, options?: SendOptions): void {
    this.sendData(Opcode.Binary, data, options);
  }

  /** Send the next fragment of a message started with `fin: false`. */
  sendContinuation(data: Uint8Array, fin: boolean): void {
    this.assertCanSendData();
    if (!this.sendingFragmented) throw new InvalidStateError('no fragmented message is being sent');
    this.sendingFragmented = !fin;
    if (this.outbound !== undefined) this.outbound.wait(Opcode.Continuation, data, fin, false);
    else this.queueFrame(Opcode.Continuation, data, fin, false);
  }

  /**
   * Queue a complete, already-encoded data frame (a server frame built once for many
   * connections, e.g. with `encodeFrame`). The caller vouches for its validity; RSV1 must only
   * be set if this connection negotiated compression with no outbound context takeover.
   */
  sendRaw(frame: Uint8Array): void {
    this.assertCanSendData();
    if (this.sendingFragmented) throw new InvalidStateError('a fragmented message is being sent: finish it first');
    if (this.side === 'client') throw new InvalidStateError('clients must mask each frame: sendRaw is for servers');
    if (this.outbound !== undefined) this.outbound.wait(RAW_FRAME, frame, true, false);
    else this.pushChunk(frame);
  }

  /** Send a ping (payload at most 125 bytes, RFC 6455 §5.5). */
  sendPing(data: Uint8Array = EMPTY): void {
    this.assertCanSendControl(data);
    this.queueFrame(Opcode.Ping, data, true, false);
  }

  /** Send a pong (payload at most 125 bytes; an unsolicited pong is a heartbeat, §5.5.3). */
  sendPong(data: Uint8Array = EMPTY): void {
    this.assertCanSendControl(data);
    this.queueFrame(Opcode.Pong, data, true, false);
  }

  /**
   * Start (or answer) the closing handshake (RFC 6455 §5.5.1, §7.1.2). Without a code the
   * close frame is empty. A reason needs a code and must fit 123 bytes of UTF-8.
   */
  sendClose(code?: number, reason = ''): void {
    if (this._state === State.Connecting || this._state === State.Closed) {
      throw new InvalidStateError('cannot close a connection that is not open');
    }
    if (this.closeSent) throw new InvalidStateError('a close frame was already sent');
    this.queueClose(code, reason);
  }

  /**
   * Fail the connection (RFC 6455 §7.1.7): send a close frame with `code` if none was sent,
   * ignore anything that arrives afterwards, and ask the host to close the transport.
   */
  fail(code: number, reason = ''): void {
    if (this._state === State.Closed) return;
    // What waits behind a sliced message is dropped (the close frame goes out at once instead).
    const deferredClose = this.abandonSends();
    if (deferredClose !== undefined) this.queueFrame(Opcode.Close, deferredClose, true, false);
    else if (!this.closeSent && this._state !== State.Connecting) this.queueClose(code, reason);
    this.failed = true;
    this.discarding = true;
    this.releaseMessage();
  }

  private failWith(error: ProtocolError): void {
    // A reason is at most 123 bytes (RFC 6455 §5.5); the engine's messages are ASCII.
    this.fail(error.closeCode, this.failureReasons && error.message.length <= 123 ? error.message : '');
    this.handler.onProtocolError(error);
  }

  // ---- receiving ---------------------------------------------------------------------------

  private parse(chunk: Uint8Array): void {
    const length = chunk.length;
    let pos = 0;
    // One more chunk of a payload that already arrived in the most chunks allowed.
    if (this.parseState === PARSE_PAYLOAD && this.framePieces >= this.maxFrameChunks) {
      throw new ProtocolError('ERR_MESSAGE_TOO_BIG', CloseCode.PolicyViolation, `frame payload in more than ${this.maxFrameChunks} chunks`);
    }
    while (pos < length) {
      if (this.parseState === PARSE_HEADER) {
        let src: Uint8Array;
        let at: number;
        if (this.headerHave === 0 && length - pos >= 2 && length - pos >= headerLength(chunk[pos + 1])) {
          // The whole header is in this chunk: read it in place.
          src = chunk;
          at = pos;
          pos += headerLength(chunk[pos + 1]);
        } else {
          // The header is split across chunks: gather it in `header`.
          const header = (this.header ??= new Uint8Array(14));
          if (this.headerHave < 2) {
            header[this.headerHave++] = chunk[pos++];
            if (this.headerHave < 2) continue;
            this.checkFirstBytes(header[0], header[1]);
            // Fall through: a 2-byte header (unmasked, length < 126) is already complete.
          }
          const need = headerLength(header[1]);
          const take = Math.min(need - this.headerHave, length - pos);
          header.set(chunk.subarray(pos, pos + take), this.headerHave);
          this.headerHave += take;
          pos += take;
          if (this.headerHave < need) return;
          src = header;
          at = 0;
          this.headerHave = 0;
        }
        if (src === chunk) this.checkFirstBytes(chunk[at], chunk[at + 1]);
        this.readLengthAndMask(src, at);

        if (this.payloadLength === 0) {
          this.sliceLeft -= FRAME_COST;
          this.endFrame(EMPTY);
        } else if (
          this.fin &&
          !this.rsv1 &&
          this.opcode !== Opcode.Continuation &&
          !isControlOpcode(this.opcode) &&
          length - pos >= this.payloadLength
        ) {
          // Fast lane: a whole unfragmented, uncompressed message in this chunk.
          const payload = chunk.subarray(pos, pos + this.payloadLength);
          pos += this.payloadLength;
          this.sliceLeft -= this.payloadLength;
          if (this.masked) applyMask(payload, maskBytes(this.maskWord));
          this.messageOpcode = 0; // the message ends with this frame
          this.deliverWhole(payload);
        } else {
          this.parseState = PARSE_PAYLOAD;
          this.payloadOffset = 0;
          this.framePieces = 0;
          this.sliceLeft -= FRAME_COST;
        }
      } else {
        const take = Math.min(this.payloadLength - this.payloadOffset, length - pos);
        const piece = chunk.subarray(pos, pos + take);
        pos += take;
        this.sliceLeft -= take;
        this.framePieces++;
        if (this.masked) applyMask(piece, maskBytes(this.maskWord), this.payloadOffset);
        this.payloadOffset += take;
        const last = this.payloadOffset === this.payloadLength;
        if (last) this.parseState = PARSE_HEADER;
        if (isControlOpcode(this.opcode)) {
          if (this.controlParts === NO_CHUNKS) this.controlParts = [];
          this.controlParts.push(piece);
          if (last) this.endFrame(concat(this.controlParts, this.payloadLength));
        } else {
          this.receivePiece(piece, last && this.fin);
        }
      }
      if (this.discarding) return;
      if (this.inboundTask !== TASK_NONE || this.sliceLeft <= 0) {
        // Suspended (`sliceSize`): the rest of the chunk waits for `resume()`.
        if (pos < length) this.keepInput(chunk.subarray(pos));
        return;
      }
    }
  }

  /** Input that waits for `resume()`, ahead of anything fed later. */
  private keepInput(rest: Uint8Array): void {
    if (this.backlog === NO_CHUNKS) this.backlog = [];
    this.backlog.unshift(rest);
  }

  /** Checks that need only the first two header bytes, so a bad frame fails at once. */
  private checkFirstBytes(b0: number, b1: number): void {
    const fin = (b0 & 0x80) !== 0;
    const rsv1 = (b0 & 0x40) !== 0;
    const opcode = b0 & 0x0f;
    // RFC 6455 §5.2: RSV2 and RSV3 must be 0 (no extension we negotiate uses them).
    if (b0 & 0x30) throw protocolError('ERR_RESERVED_BITS', 'RSV2 and RSV3 must be clear');
    if (isControlOpcode(opcode)) {
      if (opcode > Opcode.Pong) throw protocolError('ERR_RESERVED_OPCODE', `reserved opcode ${opcode}`);
      // RFC 6455 §5.5: control frames must not be fragmented and carry at most 125 bytes.
      if (!fin) throw protocolError('ERR_FRAGMENTED_CONTROL', 'control frames must not be fragmented');
      if ((b1 & 0x7f) > MAX_CONTROL_PAYLOAD) {
        throw protocolError('ERR_CONTROL_TOO_LONG', `control frame payload length ${b1 & 0x7f} exceeds 125 bytes`);
      }
      // RFC 7692 §6.1: RSV1 belongs to data frames only.
      if (rsv1) throw protocolError('ERR_RESERVED_BITS', 'RSV1 must be clear on control frames');
    } else {
      if (opcode > Opcode.Binary) throw protocolError('ERR_RESERVED_OPCODE', `reserved opcode ${opcode}`);
      if (opcode === Opcode.Continuation) {
        if (this.messageOpcode === 0) {
          throw protocolError('ERR_UNEXPECTED_CONTINUATION', 'continuation frame without a message to continue');
        }
        // RFC 7692 §6.1: RSV1 is set on the first frame of a compressed message only.
        if (rsv1) throw protocolError('ERR_RESERVED_BITS', 'RSV1 must be clear on continuation frames');
      } else {
        if (this.messageOpcode !== 0) {
          throw protocolError('ERR_EXPECTED_CONTINUATION', `new message (opcode ${opcode}) started before the previous one ended`);
        }
        if (rsv1 && !this.codec) throw protocolError('ERR_RESERVED_BITS', 'RSV1 set but no extension was negotiated');
      }
    }
    // RFC 6455 §5.1: clients mask every frame, servers none.
    const masked = (b1 & 0x80) !== 0;
    if (this.side === 'server' && !masked) throw protocolError('ERR_MASK_REQUIRED', 'client frames must be masked');
    if (this.side === 'client' && masked) throw protocolError('ERR_MASK_FORBIDDEN', 'server frames must not be masked');
  }

  private readLengthAndMask(src: Uint8Array, at: number): void {
    const b0 = src[at];
    const b1 = src[at + 1];
    this.fin = (b0 & 0x80) !== 0;
    this.rsv1 = (b0 & 0x40) !== 0;
    this.opcode = b0 & 0x0f;
    this.masked = (b1 & 0x80) !== 0;
    let p = at + 2;
    let length = b1 & 0x7f;
    if (length === 126) {
      length = (src[p] << 8) | src[p + 1];
      p += 2;
    } else if (length === 127) {
      // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
      if (src[p] & 0x80) throw protocolError('ERR_INVALID_LENGTH', 'the most significant bit of a 64-bit length must be 0');
      const high = ((src[p] << 24) | (src[p + 1] << 16) | (src[p + 2] << 8) | src[p + 3]) >>> 0;
      const low = ((src[p + 4] << 24) | (src[p + 5] << 16) | (src[p + 6] << 8) | src[p + 7]) >>> 0;
      length = high * 0x100000000 + low;
      p += 8;
    }
    if (this.masked) {
      this.maskWord = ((src[p] << 24) | (src[p + 1] << 16) | (src[p + 2] << 8) | src[p + 3]) >>> 0;
    }
    if (length > this.maxFrameSize) {
      throw new ProtocolError('ERR_FRAME_TOO_BIG', CloseCode.MessageTooBig, `frame of ${length} bytes exceeds the limit of ${this.maxFrameSize}`);
    }
    this.payloadLength = length;
    if (!isControlOpcode(this.opcode)) {
      if (this.opcode !== Opcode.Continuation) {
        this.messageOpcode = this.opcode;
        this.messageCompressed = this.rsv1;
        this.messageFrames = 1;
      } else if (++this.messageFrames > this.maxFragments) {
        throw new ProtocolError('ERR_MESSAGE_TOO_BIG', CloseCode.PolicyViolation, `message of more than ${this.maxFragments} fragments`);
      }
      // Uncompressed sizes are known now: refuse before reading the payload.
      if (!this.messageCompressed && this.messageSize + length > this.maxMessageSize) {
        throw new ProtocolError('ERR_MESSAGE_TOO_BIG', CloseCode.MessageTooBig, `message exceeds the limit of ${this.maxMessageSize} bytes`);
      }
    } else {
      this.controlParts = NO_CHUNKS;
    }
  }

  /** A frame whose payload is complete (`payload` is the whole of it). */
  private endFrame(payload: Uint8Array): void {
    if (isControlOpcode(this.opcode)) this.receiveControl(this.opcode, payload);
    else this.receivePiece(payload, this.fin);
  }

  /** A piece of a data frame's payload; `messageEnd` when it is the last byte of the message. */
  private receivePiece(piece: Uint8Array, messageEnd: boolean): void {
    let data = piece;
    let end = messageEnd;
    if (this.messageCompressed) {
      // RFC 7692 §7.2.2: decompress the concatenated payloads as one stream; the codec enforces the
      // limit on the whole message (it counts what it inflated of this message itself).
      const codec = this.codec!;
      data = codec.decompress(piece, messageEnd, this.maxMessageSize, this.sliceLeft);
      this.sliceLeft -= data.length;
      if (codec.decompressing === true) {
        // More output to come from this piece: the rest after `resume()`.
        this.inboundTask = TASK_INFLATE;
        this.inflateEnd = messageEnd;
        end = false;
      }
    }
    this.takeData(data, end);
  }

  /** Go on with the message being received: its inflate, then its assembly. */
  private continueInbound(): void {
    while (this.inboundTask !== TASK_NONE && this.sliceLeft > 0 && !this.discarding) {
      if (this.inboundTask === TASK_ASSEMBLE) {
        this.continueAssembly();
        continue;
      }
      const codec = this.codec!;
      const data = codec.decompress(EMPTY, this.inflateEnd, this.maxMessageSize, this.sliceLeft);
      this.sliceLeft -= data.length;
      const done = codec.decompressing !== true;
      if (done) this.inboundTask = TASK_NONE;
      this.takeData(data, done && this.inflateEnd);
    }
  }

  /** Data of the message being received (inflated if it was compressed). */
  private takeData(data: Uint8Array, messageEnd: boolean): void {
    this.messageSize += data.length;
    // RFC 6455 §8.1 and Autobahn 6.4: validate text as it arrives and fail at the first bad byte.
    if (this.messageOpcode === this.validatedOpcode && !(this.utf8 ??= new Utf8Validator(this.bulkUtf8)).write(data)) {
      throw new ProtocolError('ERR_INVALID_UTF8', CloseCode.InvalidFramePayloadData, 'invalid UTF-8 in a text message');
    }
    if (data.length > 0) {
      if (this.parts === NO_CHUNKS) this.parts = [];
      this.parts.push(data);
    }
    if (messageEnd) this.endMessage();
  }

  /** The last byte of a message arrived: join its pieces (in slices when large) and deliver it. */
  private endMessage(): void {
    if (this.messageOpcode === this.validatedOpcode && !this.utf8!.end()) {
      throw new ProtocolError('ERR_INVALID_UTF8', CloseCode.InvalidFramePayloadData, 'text message ends inside a UTF-8 sequence');
    }
    if (this.parts.length > 1 && this.messageSize + this.parts.length * PIECE_COST > this.sliceLeft) {
      // Copying 16 MiB into a new buffer takes 4–10 ms (page faults): more than a slice.
      this.assembly = new Uint8Array(this.messageSize);
      this.assemblyPart = 0;
      this.assemblyOffset = 0;
      this.inboundTask = TASK_ASSEMBLE;
      this.continueAssembly();
      return;
    }
    this.deliver(concat(this.parts, this.messageSize));
  }

  private continueAssembly(): void {
    const out = this.assembly!;
    const parts = this.parts;
    let part = this.assemblyPart;
    let offset = this.assemblyOffset;
    while (part < parts.length && this.sliceLeft > 0) {
      const piece = parts[part++];
      out.set(piece, offset);
      offset += piece.length;
      this.sliceLeft -= piece.length + PIECE_COST;
    }
    this.assemblyPart = part;
    this.assemblyOffset = offset;
    if (part === parts.length) this.deliver(out);
  }

  private deliver(message: Uint8Array): void {
    const binary = this.messageOpcode === Opcode.Binary;
    this.releaseMessage();
    this.handler.onMessage(message, binary);
  }

  /** The fast lane's message: one frame, uncompressed, complete. */
  private deliverWhole(payload: Uint8Array): void {
    if (this.opcode === Opcode.Text && !this.validateUtf8(payload)) {
      throw new ProtocolError('ERR_INVALID_UTF8', CloseCode.InvalidFramePayloadData, 'invalid UTF-8 in a text message');
    }
    this.handler.onMessage(payload, this.opcode === Opcode.Binary);
  }

  private releaseMessage(): void {
    this.messageOpcode = 0;
    this.messageCompressed = false;
    this.messageSize = 0;
    this.parts = NO_CHUNKS;
    this.utf8?.reset();
    this.inboundTask = TASK_NONE;
    this.assembly = undefined;
    if (this.discarding) this.backlog = NO_CHUNKS; // nothing more is parsed
  }

  private receiveControl(opcode: number, payload: Uint8Array): void {
    if (opcode === Opcode.Ping) {
      // RFC 6455 §5.5.2: answer with a pong carrying the same data, unless we are closing.
      if (!this.closeSent && this.autoPong) this.queueFrame(Opcode.Pong, payload, true, false);
      this.handler.onPing(payload);
    } else if (opcode === Opcode.Pong) {
      this.handler.onPong(payload);
    } else {
      this.receiveClose(payload);
    }
  }

  private receiveClose(payload: Uint8Array): void {
    let code: number = CloseCode.NoStatusReceived;
    let reason = '';
    if (payload.length === 1) {
      throw protocolError('ERR_INVALID_CLOSE_PAYLOAD', 'a close frame payload cannot be 1 byte long');
    }
    if (payload.length >= 2) {
      code = (payload[0] << 8) | payload[1];
      if (!isValidCloseCode(code)) throw protocolError('ERR_INVALID_CLOSE_CODE', `invalid close code ${code}`);
      const reasonBytes = payload.subarray(2);
      if (this.validatedOpcode === -1) {
        reason = (lenientDecoder ??= new TextDecoder('utf-8', { ignoreBOM: true })).decode(reasonBytes);
      } else if (!isValidUtf8(reasonBytes)) {
        throw new ProtocolError('ERR_INVALID_UTF8', CloseCode.InvalidFramePayloadData, 'invalid UTF-8 in the close reason');
      } else {
        reason = decodeUtf8(reasonBytes);
      }
    }
    this.closeReceivedCode = code;
    this.closeReceivedReason = reason;
    // RFC 6455 §5.5.1: nothing follows a close frame; answer it (echoing code and reason, as ws and
    // python-websockets do) if we did not start.
    this.discarding = true;
    this.releaseMessage();
    // RFC 6455 §5.5.1: the answer may wait for the message being sent (queued behind it).
    if (!this.closeSent) this.queueClose(code === CloseCode.NoStatusReceived ? undefined : code, reason);
    this._state = State.Closing;
    this.handler.onClose(code, reason);
  }

  // ---- sending -----------------------------------------------------------------------------

  private sendData(opcode: number, data: Uint8Array, options: SendOptions | undefined): void {
    this.assertCanSendData();
    if (this.sendingFragmented) throw new InvalidStateError('a fragmented message is being sent: finish it first');
    const fin = options?.fin ?? true;
    const compress = options?.compress !== false;
    this.sendingFragmented = !fin;
    if (this.outbound !== undefined) this.outbound.wait(opcode, data, fin, compress);
    else this.emitData(opcode, data, fin, compress);
  }

  /** Frame a data send now (compressed when it should be), or start sending it in slices. */
  private emitData(opcode: number, data: Uint8Array, fin: boolean, compress: boolean): void {
    const codec = this.codec;
    if (fin && codec && compress && data.length >= codec.threshold) {
      if (data.length > this.sliceSize && codec.compressPart !== undefined) {
        // Compressed a slice per `resume()`: the host sees `suspended` and calls it.
        if (this.outbound === undefined) this.outbound = new SlicedSend(opcode, data);
        else this.outbound.restart(opcode, data); // a waiting send, let go after the last one
        return;
      }
      this.queueFrame(opcode, codec.compress(data), true, true);
      return;
    }
    this.queueFrame(opcode, data, fin, false);
  }

  /** Compress the next slices of the large message being sent, each one frame of it. */
  private continueOutbound(): void {
    const codec = this.codec!;
    while (this.outbound !== undefined && this.sliceLeft > 0) {
      const outbound = this.outbound;
      const frame = outbound.nextFrame(codec, this.sliceLeft);
      this.sliceLeft -= frame.consumed;
      if (frame.payload !== undefined) this.queueFrame(frame.opcode, frame.payload, frame.fin, frame.rsv1);
      if (frame.fin) this.sendWaiting(outbound);
    }
  }

  /** The sliced message is out: frame what waited behind it, until another large one starts. */
  private sendWaiting(outbound: SlicedSend): void {
    for (let send = outbound.nextWaiting(); send !== undefined; send = outbound.nextWaiting()) {
      if (send.kind === RAW_FRAME) this.pushChunk(send.data);
      else if (send.kind === Opcode.Close) this.queueFrame(Opcode.Close, send.data, true, false);
      else this.emitData(send.kind, send.data, send.fin, send.compress);
    }
    if (!outbound.sending) this.outbound = undefined;
  }

  /** Drop the sliced message and what waits behind it; returns the payload of a close frame among them. */
  private abandonSends(): Uint8Array | undefined {
    const close = this.outbound?.waitingClose();
    this.outbound = undefined;
    return close;
  }

  private assertCanSendData(): void {
    if (this._state !== State.Open || this.closeSent) {
      // RFC 6455 §5.5.1: after sending a close frame, no more data frames.
      throw new InvalidStateError(`cannot send: the connection is ${stateName(this._state)}`);
    }
  }

  private assertCanSendControl(data: Uint8Array): void {
    if (this._state === State.Connecting || this._state === State.Closed || this.closeSent) {
      throw new InvalidStateError(`cannot send: the connection is ${stateName(this._state)}`);
    }
    if (data.length > MAX_CONTROL_PAYLOAD) throw new RangeError('control frame payload must be at most 125 bytes');
  }

  private queueClose(code: number | undefined, reason: string): void {
    let payload = EMPTY;
    if (code !== undefined) {
      if (!isValidCloseCode(code)) throw new RangeError(`invalid close code ${code}`);
      const reasonBytes = encodeUtf8(reason);
      if (reasonBytes.length > MAX_CONTROL_PAYLOAD - 2) throw new RangeError('close reason must be at most 123 bytes of UTF-8');
      payload = new Uint8Array(2 + reasonBytes.length);
      payload[0] = code >>> 8;
      payload[1] = code & 0xff;
      payload.set(reasonBytes, 2);
    } else if (reason !== '') {
      throw new RangeError('a close reason needs a close code');
    }
    if (this.outbound !== undefined) this.outbound.wait(Opcode.Close, payload, true, false);
    else this.queueFrame(Opcode.Close, payload, true, false);
    this.closeSent = true;
    this._closeSentCode = code ?? CloseCode.NoStatusReceived;
    this._state = State.Closing;
  }

  private queueFrame(opcode: number, payload: Uint8Array, fin: boolean, rsv1: boolean): void {
    const maskKey = this.side === 'client' ? (this.maskingKeys === undefined ? maskKeys.next() : this.maskingKeys.next()) : undefined;
    if (payload.length <= COPY_LIMIT) {
      this.writeToArena(opcode, payload, fin, rsv1, maskKey);
    } else if (maskKey) {
      this.pushChunk(encodeFrame(opcode, payload, { fin, rsv1, maskKey }));
    } else {
      // Large server payloads go out behind their header without a copy.
      this.pushChunk(encodeFrameHeader(opcode, payload.length, fin, rsv1));
      this.output.push(payload);
    }
  }

  /** Queue a chunk after whatever this connection has in the arena (keeps the order). */
  private pushChunk(chunk: Uint8Array): void {
    this.sealArenaRun();
    this.output.push(chunk);
  }

  /**
   * Write a small frame into the shared arena. Consecutive frames of one connection form one
   * run, handed out as a single view: a burst of small messages becomes one buffer to write.
   */
  private writeToArena(opcode: number, payload: Uint8Array, fin: boolean, rsv1: boolean, maskKey: Uint8Array | undefined): void {
    const headerLength = frameHeaderLength(payload.length, maskKey !== undefined);
    const size = headerLength + payload.length;
    if (arena.owner !== this || arena.pos + size > arena.bytes.length) {
      arena.owner?.sealArenaRun();
      if (arena.pos + size > arena.bytes.length) {
        // Views already handed out keep the old buffer alive; it is never written again.
        arena.bytes = new Uint8Array(ARENA_SIZE);
        arena.pos = 0;
      }
      arena.owner = this;
      arena.runStart = arena.pos;
    }
    const at = arena.pos;
    writeFrameHeader(arena.bytes, at, opcode, payload.length, fin, rsv1, maskKey);
    arena.bytes.set(payload, at + headerLength);
    if (maskKey) applyMask(arena.bytes.subarray(at + headerLength, at + size), maskKey);
    arena.pos = at + size;
  }

  /** Move this connection's open arena run (if any) into its output queue. */
  private sealArenaRun(): void {
    if (arena.owner !== this) return;
    if (arena.pos > arena.runStart) this.output.push(arena.bytes.subarray(arena.runStart, arena.pos));
    arena.owner = undefined;
    arena.runStart = arena.pos;
  }
}

/**
 * Small frames of every connection are written into one shared buffer (the "arena") rather than
 * a fresh allocation each: the engine is single-threaded, bytes once handed out are never
 * rewritten, and a full arena is replaced, not reused. An idle connection holds none of it.
 */
const ARENA_SIZE = 64 * 1024;
const arena: { bytes: Uint8Array; pos: number; owner: Connection | undefined; runStart: number } = {
  bytes: new Uint8Array(ARENA_SIZE),
  pos: 0,
  owner: undefined,
  runStart: 0,
};

function stateName(state: State): string {
  return ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'][state];
}

/** Join pieces into one buffer (or return the only piece as is). */
function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  if (parts.length === 0) return EMPTY;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
