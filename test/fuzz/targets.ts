/**
 * Fuzz targets shared by the short run in `npm test` (fuzz.test.ts) and the long run of
 * `npm run fuzz` (long.ts). Each target has a structure-aware fast-check arbitrary, a byte- or
 * string-level mutator over a seed corpus, and `check(input)`, which runs the code under test
 * on one input and throws an `InvariantViolation` when an invariant breaks:
 *
 * - frame parser (`Connection`, server and client side, with and without a deflate codec):
 *   `receiveData` never throws; only `ProtocolError`s with 1002/1007/1009 are reported; after
 *   an error or a close frame the engine reports nothing more and queues nothing more; no
 *   message is larger than `maxMessageSize`; text messages are valid UTF-8; the bytes queued
 *   are well-formed frames (masked iff client) and end with a close frame carrying the error's
 *   code.
 * - handshake (`validateRequest` + `parseExtensions` + permessage-deflate negotiation): only a
 *   `HandshakeError` with 400/405/426 escapes `validateRequest`; only a `HandshakeError` escapes
 *   the extension parser and `acceptServerResponse`; what the server negotiates from a client
 *   offer, the client accepts, and both ends agree on the parameters.
 * - hub wire decoder (`parseClientRequest`, `parseServerMessage`): never throws; accepted
 *   requests respect the topic, id and depth limits; `Object.prototype` is never touched.
 *
 * Time is bounded by the caller (per-input time is measured and a watchdog guards hangs).
 */
import { constants, deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { Connection, type ConnectionHandler } from '../../src/protocol/connection.js';
import { CloseCode, isValidCloseCode } from '../../src/protocol/constants.js';
import { HandshakeError, ProtocolError } from '../../src/protocol/errors.js';
import { validateRequest, type HandshakeRequest } from '../../src/protocol/handshake.js';
import { formatExtensions, parseExtensions } from '../../src/protocol/headers.js';
import { isValidUtf8 } from '../../src/protocol/utf8.js';
import {
  acceptServerResponse,
  buildClientOffer,
  negotiateServer,
  type NegotiatedDeflate,
  type PerMessageDeflateOptions,
} from '../../src/protocol/permessage-deflate.js';
import { createDeflateCodec } from '../../src/node/deflate.js';
import { join } from '../protocol/engine-helpers.js';
import { jsonDepthExceeds, parseClientRequest } from '../../src/hub/parse-request.js';
import { parseServerMessage } from '../../src/hub/parse-server-message.js';
import { WIRE_LIMITS } from '../../src/hub/wire.js';

/** An invariant broke: the fuzzer reports it with the input. */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

function violated(message: string): never {
  throw new InvariantViolation(message);
}

/** A small, fast PRNG for the mutators (xorshift32), so mutation costs far less than checking. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (this.s = x >>> 0);
  }
  int(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
}

/** One fuzz target. */
export interface Target<I> {
  readonly name: string;
  /** Structure-aware generation. */
  readonly arbitrary: fc.Arbitrary<I>;
  /** Derive a new input from a seed (a corpus entry or an earlier generated input). */
  mutate(seed: I, rng: Rng): I;
  /** Run the code under test on one input; throws `InvariantViolation` when an invariant breaks. */
  check(input: I): void;
  /** For the corpus: to and from JSON. */
  encode(input: I): unknown;
  decode(json: unknown): I;
}

// ---- byte mutation ----------------------------------------------------------------------------

const INTERESTING = [0x00, 0x01, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x88, 0x89, 0x8a, 0xc1, 0xfe, 0xff];


/** 1–8 random edits: bit flips, interesting bytes, inserts, deletes, duplicated ranges, splices. */
export function mutateBytes(input: Uint8Array, rng: Rng, other?: Uint8Array): Uint8Array {
  let bytes: Uint8Array = input.slice();
  const edits = 1 + rng.int(8);
  for (let e = 0; e < edits; e++) {
    const n = bytes.length;
    switch (rng.int(7)) {
      case 0:
        if (n) bytes[rng.int(n)]! ^= 1 << rng.int(8);
        break;
      case 1:
        if (n) bytes[rng.int(n)] = rng.pick(INTERESTING);
        break;
      case 2: {
        const at = rng.int(n + 1);
        const extra = Uint8Array.from({ length: 1 + rng.int(4) }, () => rng.int(256));
        bytes = join([bytes.subarray(0, at), extra, bytes.subarray(at)]);
        break;
      }
      case 3:
        if (n) {
          const at = rng.int(n);
          bytes = join([bytes.subarray(0, at), bytes.subarray(at + 1 + rng.int(Math.min(16, n)))]);
        }
        break;
      case 4: {
        if (!n) break;
        const from = rng.int(n);
        const piece = bytes.slice(from, from + 1 + rng.int(64));
        const at = rng.int(n + 1);
        bytes = join([bytes.subarray(0, at), piece, bytes.subarray(at)]);
        break;
      }
      case 5:
        if (other && other.length) bytes = join([bytes.subarray(0, rng.int(n + 1)), other.subarray(rng.int(other.length))]);
        break;
      default:
        if (n) bytes = bytes.subarray(0, rng.int(n + 1));
    }
    if (bytes.length > 1 << 16) bytes = bytes.subarray(0, 1 << 16);
  }
  return bytes;
}

// ---- frame parser -----------------------------------------------------------------------------

export interface FrameInput {
  side: 'server' | 'client';
  /** Negotiated deflate parameters, or null for no codec. */
  deflate: NegotiatedDeflate | null;
  maxMessageSize: number;
  maxFrameSize: number;
  /** The bytes from the peer. */
  bytes: Uint8Array;
  /** Chunk boundaries (offsets into `bytes`), so split headers and payloads are exercised. */
  cuts: number[];
}

/** A frame as the generator describes it; serialised by `serialiseFrame`. */
interface FrameSpec {
  opcode: number;
  fin: boolean;
  rsv: number;
  mask: boolean;
  maskKey: Uint8Array;
  lengthForm: 0 | 16 | 64;
  /** Declared length differs from the payload's (a lying header), or -1. */
  lie: number;
  payload: Uint8Array;
}

function serialiseFrame(f: FrameSpec): Uint8Array {
  const length = f.lie >= 0 ? f.lie : f.payload.length;
  const form = f.lengthForm === 0 ? (length < 126 ? 7 : length < 0x10000 ? 16 : 64) : f.lengthForm;
  const header: number[] = [(f.fin ? 0x80 : 0) | (f.rsv << 4) | (f.opcode & 0x0f)];
  const maskBit = f.mask ? 0x80 : 0;
  if (form === 7) header.push(maskBit | (length & 0x7f));
  else if (form === 16) header.push(maskBit | 126, (length >>> 8) & 0xff, length & 0xff);
  else {
    const high = Math.floor(length / 2 ** 32);
    header.push(maskBit | 127, (high >>> 24) & 0xff, (high >>> 16) & 0xff, (high >>> 8) & 0xff, high & 0xff);
    header.push((length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
  }
  if (f.mask) header.push(...f.maskKey);
  const out = new Uint8Array(header.length + f.payload.length);
  out.set(header, 0);
  for (let i = 0; i < f.payload.length; i++) out[header.length + i] = f.mask ? f.payload[i]! ^ f.maskKey[i & 3]! : f.payload[i]!;
  return out;
}

/** A compressed (raw DEFLATE, sync-flushed, tail removed, RFC 7692 §7.2.1) version of `data`. */
function compressed(data: Uint8Array, level = 6): Uint8Array {
  const out = deflateRawSync(data, { level, finishFlush: constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

const encoder = new TextEncoder();

/** Compressed payloads, made once: small texts, binary, and bombs (far larger inflated than sent). */
export const COMPRESSED_POOL: readonly Uint8Array[] = [
  compressed(encoder.encode('hello')),
  compressed(encoder.encode('héllo wörld ✓ '.repeat(50))),
  compressed(new Uint8Array(64 * 1024)), // 64 KiB of zeros: ~100 bytes on the wire
  compressed(new Uint8Array(1024 * 1024)), // 1 MiB of zeros: a bomb for every limit below
  compressed(Uint8Array.from({ length: 3000 }, (_, i) => (i * 7919) & 0xff)),
  compressed(Uint8Array.of(0xff, 0xfe, 0xc0, 0x80)), // invalid UTF-8 inside
  compressed(new Uint8Array(0)),
  Uint8Array.of(0x00), // an empty stored block
  Uint8Array.of(0xff, 0xff, 0xff), // not DEFLATE
];

/** Payloads past the 7- and 16-bit length forms and the limits below (shared, never modified: frames copy them). */
const BIG_PAYLOADS = [126, 1001, 4097, 65_536, 70_000].map((n) => new Uint8Array(n).fill(0x61));

const CLOSE_CODES = [1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1011, 1015, 1016, 2999, 3000, 4999, 5000, 0, 65535];

export const payloadArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 40 }), weight: 4 },
  { arbitrary: fc.string({ maxLength: 40, unit: 'grapheme' }).map((s) => encoder.encode(s)), weight: 4 },
  {
    arbitrary: fc
      .tuple(fc.constantFrom(...CLOSE_CODES), fc.string({ maxLength: 20, unit: 'grapheme' }), fc.uint8Array({ maxLength: 3 }))
      .map(([code, reason, junk]) => {
        const r = encoder.encode(reason);
        const out = new Uint8Array(2 + r.length + junk.length);
        out[0] = code >>> 8;
        out[1] = code & 0xff;
        out.set(r, 2);
        out.set(junk, 2 + r.length);
        return out;
      }),
    weight: 2,
  },
  { arbitrary: fc.constantFrom(...COMPRESSED_POOL), weight: 3 },
  { arbitrary: fc.constantFrom(...BIG_PAYLOADS), weight: 1 },
);

export function frameSpecArb(side: 'server' | 'client'): fc.Arbitrary<FrameSpec> {
  return fc.record({
    opcode: fc.oneof({ arbitrary: fc.constantFrom(0, 1, 2, 8, 9, 10), weight: 9 }, { arbitrary: fc.integer({ min: 0, max: 15 }), weight: 1 }),
    fin: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 2 }),
    rsv: fc.oneof({ arbitrary: fc.constant(0), weight: 6 }, { arbitrary: fc.constant(4), weight: 3 }, { arbitrary: fc.integer({ min: 0, max: 7 }), weight: 1 }),
    // Mostly right for the side (servers need masks, clients forbid them), sometimes wrong.
    mask: fc.oneof({ arbitrary: fc.constant(side === 'server'), weight: 15 }, { arbitrary: fc.boolean(), weight: 1 }),
    maskKey: fc.uint8Array({ minLength: 4, maxLength: 4 }),
    lengthForm: fc.oneof({ arbitrary: fc.constant(0 as const), weight: 8 }, { arbitrary: fc.constantFrom(16 as const, 64 as const), weight: 1 }),
    lie: fc.oneof(
      { arbitrary: fc.constant(-1), weight: 20 },
      { arbitrary: fc.constantFrom(0, 1, 125, 126, 127, 65535, 65536, 2 ** 31, 2 ** 53 - 1, 2 ** 63), weight: 1 },
    ),
    payload: payloadArb,
  });
}

const deflateParamsArb: fc.Arbitrary<NegotiatedDeflate | null> = fc.oneof(
  { arbitrary: fc.constant(null), weight: 1 },
  {
    arbitrary: fc.record({
      serverNoContextTakeover: fc.boolean(),
      clientNoContextTakeover: fc.boolean(),
      serverMaxWindowBits: fc.integer({ min: 8, max: 15 }),
      clientMaxWindowBits: fc.integer({ min: 8, max: 15 }),
    }),
    weight: 1,
  },
);

/** Turn chunk-size choices into cut offsets. */
function cutsFrom(length: number, sizes: number[]): number[] {
  const cuts: number[] = [];
  let at = 0;
  for (const size of sizes) {
    at += size;
    if (at >= length) break;
    cuts.push(at);
  }
  return cuts;
}

const DEFAULT_DEFLATE: NegotiatedDeflate = { serverNoContextTakeover: true, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };

/** Frame inputs for one side, with a codec (`true`), without (`false`). */
export function frameArbitraryFor(side: 'server' | 'client', withCodec: boolean): fc.Arbitrary<FrameInput> {
  return fc
    .record({
      deflate: withCodec ? deflateParamsArb.map((d) => d ?? DEFAULT_DEFLATE) : fc.constant(null),
      maxMessageSize: fc.constantFrom(0, 1, 125, 1000, 4096, 65536, 100_000),
      frameLimit: fc.constantFrom(-1, -1, 0, 125, 70_000),
      sizes: fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 8 }),
      frames: fc.array(frameSpecArb(side), { minLength: 1, maxLength: 8 }),
    })
    .map((base) => {
      const parts = base.frames.map(serialiseFrame);
      const total = parts.reduce((n, p) => n + p.length, 0);
      const bytes = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        bytes.set(p, at);
        at += p.length;
      }
      return {
        side,
        deflate: base.deflate,
        maxMessageSize: base.maxMessageSize,
        maxFrameSize: base.frameLimit < 0 ? base.maxMessageSize : base.frameLimit,
        bytes,
        cuts: cutsFrom(total, base.sizes),
      };
    });
}

/** Decode the frames a Connection queued (our own output), for the output invariants. */
function decodeOutput(chunks: Uint8Array[], side: 'server' | 'client'): Array<{ opcode: number; payload: Uint8Array }> {
  let total = 0;
  for (const c of chunks) total += c.length;
  const buf = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    buf.set(c, at);
    at += c.length;
  }
  const frames: Array<{ opcode: number; payload: Uint8Array }> = [];
  let p = 0;
  while (p < buf.length) {
    if (buf.length - p < 2) violated('output ends inside a frame header');
    const b0 = buf[p]!;
    const b1 = buf[p + 1]!;
    const masked = (b1 & 0x80) !== 0;
    if (masked !== (side === 'client')) violated(`a ${side} queued a frame with mask bit ${masked}`);
    if (b0 & 0x30) violated('output frame with RSV2/RSV3 set');
    let len = b1 & 0x7f;
    p += 2;
    if (len === 126) {
      len = (buf[p]! << 8) | buf[p + 1]!;
      p += 2;
    } else if (len === 127) {
      len = (buf[p + 4]! * 2 ** 24 + ((buf[p + 5]! << 16) | (buf[p + 6]! << 8) | buf[p + 7]!)) + buf[p + 3]! * 2 ** 32;
      p += 8;
    }
    let key: Uint8Array | undefined;
    if (masked) {
      key = buf.subarray(p, p + 4);
      p += 4;
    }
    if (p + len > buf.length) violated('output ends inside a frame payload');
    const payload = buf.slice(p, p + len);
    if (key) for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
    frames.push({ opcode: b0 & 0x0f, payload });
    p += len;
  }
  return frames;
}

const ERROR_CLOSE_CODES: ReadonlySet<number> = new Set([CloseCode.ProtocolError, CloseCode.InvalidFramePayloadData, CloseCode.MessageTooBig]);

/** Run one frame input; see the file comment for the invariants. Returns the number of events. */
export function checkFrames(input: FrameInput): number {
  const codec = input.deflate ? createDeflateCodec(input.side, input.deflate, { threshold: 0 }) : undefined;
  let errors = 0;
  let closes = 0;
  let events = 0;
  let errorCode = 0;
  const after = (what: string): void => {
    events++;
    if (errors > 0) violated(`${what} reported after a protocol error`);
    if (closes > 0) violated(`${what} reported after a close frame`);
  };
  const handler: ConnectionHandler = {
    onMessage(data, binary) {
      after('a message');
      if (data.length > input.maxMessageSize) violated(`message of ${data.length} bytes over maxMessageSize ${input.maxMessageSize}`);
      if (!binary && !isValidUtf8(data)) violated('a text message with invalid UTF-8 was delivered');
    },
    onPing(data) {
      after('a ping');
      if (data.length > 125) violated('ping payload over 125 bytes');
    },
    onPong(data) {
      after('a pong');
      if (data.length > 125) violated('pong payload over 125 bytes');
    },
    onClose(code) {
      after('a close');
      closes++;
      if (code !== CloseCode.NoStatusReceived && !isValidCloseCode(code)) violated(`close code ${code} reported as valid`);
    },
    onProtocolError(error) {
      after('a protocol error');
      errors++;
      if (!(error instanceof ProtocolError)) violated('onProtocolError got something else than a ProtocolError');
      if (!ERROR_CLOSE_CODES.has(error.closeCode)) violated(`unexpected close code ${error.closeCode} for ${error.code}`);
      errorCode = error.closeCode;
    },
  };
  const conn = new Connection(
    { side: input.side, codec, maxMessageSize: input.maxMessageSize, maxFrameSize: input.maxFrameSize },
    handler,
  );
  const bytes = input.bytes.slice(); // receiveData unmasks in place
  const output: Uint8Array[] = [];
  let outputAfterEnd = 0;
  try {
    let from = 0;
    for (const cut of [...input.cuts, bytes.length]) {
      const ended = errors > 0 || closes > 0;
      try {
        conn.receiveData(bytes.subarray(from, cut));
      } catch (error) {
        violated(`receiveData threw ${(error as Error)?.name}: ${(error as Error)?.message}`);
      }
      const out = conn.dataToSend();
      if (ended) outputAfterEnd += out.length;
      output.push(...out);
      from = cut;
    }
  } finally {
    codec?.close();
  }
  if (outputAfterEnd > 0) violated('bytes queued after the connection failed or closed');
  const frames = decodeOutput(output, input.side);
  const last = frames[frames.length - 1];
  if (errors > 0) {
    if (!last || last.opcode !== 0x8) violated('a protocol error without a close frame queued');
    const code = last.payload.length >= 2 ? (last.payload[0]! << 8) | last.payload[1]! : 0;
    if (closes === 0 && code !== errorCode) violated(`close frame carries ${code}, the error said ${errorCode}`);
    if (!conn.shouldCloseTransport) violated('a failed connection does not ask to close the transport');
  }
  if (closes > 0 && frames.filter((f) => f.opcode === 0x8).length !== 1) violated('a received close frame was not answered exactly once');
  for (const f of frames) if (f.opcode !== 0x8 && f.opcode !== 0xa) violated(`the engine queued opcode ${f.opcode} on its own`);
  return events;
}

export const frameTarget: Target<FrameInput> = {
  name: 'frames',
  arbitrary: frameArbitraryFor('server', false),
  mutate(seed, rng) {
    const bytes = mutateBytes(seed.bytes, rng);
    const cuts: number[] = [];
    for (let at = 1 + rng.int(64); at < bytes.length && cuts.length < 16; at += 1 + rng.int(128)) cuts.push(at);
    return { ...seed, bytes, cuts: rng.int(4) === 0 ? [] : cuts };
  },
  check: (input) => void checkFrames(input),
  encode: (input) => ({ ...input, bytes: Buffer.from(input.bytes).toString('base64') }),
  decode: (json) => {
    const j = json as FrameInput & { bytes: string };
    return { ...j, bytes: new Uint8Array(Buffer.from(j.bytes, 'base64')) };
  },
};

// ---- handshake ----------------------------------------------------------------------------------

export interface HandshakeInput {
  request: HandshakeRequest;
  /** The server's and the client's permessage-deflate options (for the negotiation round trip). */
  serverOptions: PerMessageDeflateOptions;
  clientOptions: PerMessageDeflateOptions;
}

const EXT_PIECES = [
  'permessage-deflate', 'PerMessage-Deflate', 'x-webkit-deflate-frame', 'foo', 'server_no_context_takeover',
  'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits', '8', '9', '15', '16', '08', '0x0f',
  '"15"', '"1 5"', '"\\15"', '"', '\\', ';', ';', ',', ',', '=', ' ', '\t', '\r\n', '\u00ff', '\u0100', '', '"a\\"b"',
];
const extensionHeaderArb = fc.array(fc.constantFrom(...EXT_PIECES), { maxLength: 14 }).map((p) => p.join(''));

const validExtensionArb = fc
  .array(
    fc.tuple(
      fc.constantFrom('permessage-deflate', 'foo'),
      fc.array(
        fc.tuple(
          fc.constantFrom('server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits', 'x'),
          fc.option(fc.constantFrom('8', '10', '15', '16', '"12"'), { nil: undefined }),
        ),
        { maxLength: 4 },
      ),
    ),
    { maxLength: 3 },
  )
  .map((offers) => offers.map(([name, params]) => [name, ...params.map(([k, v]) => (v === undefined ? k : `${k}=${v}`))].join('; ')).join(', '));

const headerValue = (valid: string, junk: readonly string[]): fc.Arbitrary<string | string[] | undefined> =>
  fc.oneof(
    { arbitrary: fc.constant(valid), weight: 12 },
    { arbitrary: fc.constant(undefined), weight: 1 },
    { arbitrary: fc.constantFrom(...junk), weight: 2 },
    { arbitrary: fc.array(fc.constantFrom(valid, ...junk), { maxLength: 3 }), weight: 1 },
    { arbitrary: fc.string({ maxLength: 12 }), weight: 1 },
  );

const windowBitsArb = fc.option(fc.integer({ min: 8, max: 15 }), { nil: undefined });
const deflateOptionsArb: fc.Arbitrary<PerMessageDeflateOptions> = fc.record(
  {
    serverNoContextTakeover: fc.boolean(),
    clientNoContextTakeover: fc.boolean(),
    serverMaxWindowBits: windowBitsArb,
    clientMaxWindowBits: fc.oneof(windowBitsArb, fc.boolean()),
  },
  { requiredKeys: [] },
);

export const handshakeArbitrary: fc.Arbitrary<HandshakeInput> = fc.record({
  request: fc.record({
    method: fc.oneof({ arbitrary: fc.constant('GET'), weight: 12 }, { arbitrary: fc.constantFrom('POST', 'get', 'CONNECT', ''), weight: 1 }),
    httpVersion: fc.oneof({ arbitrary: fc.constant('1.1'), weight: 12 }, { arbitrary: fc.constantFrom('1.0', '2.0', '0.9', '1.10', '1', '', 'x.y', '01.1'), weight: 1 }),
    url: fc.constantFrom('/', '/chat?x=1', '*', '//evil', 'http://a/b'),
    headers: fc.record(
      {
        host: headerValue('example.com', ['', ' ', 'a:b:c']),
        upgrade: headerValue('websocket', ['WebSocket', 'h2c, websocket', 'websocket/13', 'web socket', ',', '"websocket"', 'websocket,,']),
        connection: headerValue('Upgrade', ['keep-alive, Upgrade', 'upgrade', 'close', 'Up grade', ',,Upgrade,']),
        'sec-websocket-version': headerValue('13', ['8', ' 13 ', '13, 8', '', '0013']),
        'sec-websocket-key': headerValue('dGhlIHNhbXBsZSBub25jZQ==', ['dGhlIHNhbXBsZSBub25jZQ', 'AAAAAAAAAAAAAAAAAAAAAA==', '!!!!', ' dGhlIHNhbXBsZSBub25jZQ== ']),
        'sec-websocket-protocol': headerValue('chat, superchat', ['chat,,x', 'a b', '', 'ch@t']),
        'sec-websocket-extensions': fc.oneof(validExtensionArb, extensionHeaderArb, fc.array(extensionHeaderArb, { maxLength: 3 })),
        origin: headerValue('https://example.com', ['null', '']),
      },
      { requiredKeys: [] },
    ),
  }),
  serverOptions: deflateOptionsArb,
  clientOptions: deflateOptionsArb,
});

const HANDSHAKE_STATUSES: ReadonlySet<number> = new Set([400, 405, 426]);

function sameParams(a: NegotiatedDeflate, b: NegotiatedDeflate): boolean {
  return (
    a.serverNoContextTakeover === b.serverNoContextTakeover &&
    a.clientNoContextTakeover === b.clientNoContextTakeover &&
    a.serverMaxWindowBits === b.serverMaxWindowBits &&
    a.clientMaxWindowBits === b.clientMaxWindowBits
  );
}

export function checkHandshake(input: HandshakeInput): void {
  // 1. The request validator, then the server's negotiation of whatever it offered.
  let validated: ReturnType<typeof validateRequest> | undefined;
  try {
    validated = validateRequest(input.request);
  } catch (error) {
    if (!(error instanceof HandshakeError)) violated(`validateRequest threw ${(error as Error)?.name}: ${(error as Error)?.message}`);
    if (!HANDSHAKE_STATUSES.has(error.status)) violated(`validateRequest answered status ${error.status}`);
  }
  if (validated) {
    let negotiated: ReturnType<typeof negotiateServer>;
    try {
      negotiated = negotiateServer(validated.extensions, input.serverOptions);
    } catch (error) {
      violated(`negotiateServer threw on a parsed offer: ${(error as Error)?.message}`);
    }
    if (negotiated) {
      // The server's answer must itself parse.
      const text = formatExtensions([negotiated.response]);
      const reparsed = parseExtensions(text);
      if (reparsed.length !== 1) violated(`the server's response ${text} does not parse back to one extension`);
    }
  }
  // 2. The extension parser alone, on the raw header.
  try {
    parseExtensions(input.request.headers['sec-websocket-extensions']);
  } catch (error) {
    if (!(error instanceof HandshakeError) || error.status !== 400) violated(`parseExtensions threw ${(error as Error)?.name}: ${(error as Error)?.message}`);
  }
  // 3. Client offer → server negotiation → client acceptance: both ends agree.
  const offer = buildClientOffer(input.clientOptions);
  const offerText = formatExtensions([offer]);
  const server = negotiateServer(parseExtensions(offerText), input.serverOptions);
  if (server) {
    let client: NegotiatedDeflate | undefined;
    try {
      client = acceptServerResponse(parseExtensions(formatExtensions([server.response])), input.clientOptions);
    } catch (error) {
      violated(`the client refused the server's answer to its own offer ${offerText}: ${(error as Error)?.message}`);
    }
    if (!client) violated('the client did not see the deflate the server accepted');
    if (!sameParams(client, server.params)) {
      violated(`the ends disagree: server ${JSON.stringify(server.params)}, client ${JSON.stringify(client)} (offer ${offerText})`);
    }
  }
  // 4. The client's check of an arbitrary response: only HandshakeError.
  try {
    acceptServerResponse(parseExtensions(input.request.headers['sec-websocket-extensions']), input.clientOptions);
  } catch (error) {
    if (!(error instanceof HandshakeError)) violated(`acceptServerResponse threw ${(error as Error)?.name}: ${(error as Error)?.message}`);
  }
}

export const handshakeTarget: Target<HandshakeInput> = {
  name: 'handshake',
  arbitrary: handshakeArbitrary,
  mutate(seed, rng) {
    const headers = { ...seed.request.headers };
    const names = Object.keys(headers);
    const name = names.length > 0 ? rng.pick(names) : 'sec-websocket-extensions';
    const value = headers[name];
    const text = Array.isArray(value) ? value.join(',') : (value ?? '');
    const bytes = mutateBytes(new Uint8Array(Buffer.from(text, 'latin1')), rng);
    headers[name] = Buffer.from(bytes).toString('latin1');
    return { ...seed, request: { ...seed.request, headers } };
  },
  check: checkHandshake,
  encode: (input) => input,
  decode: (json) => json as HandshakeInput,
};

// ---- hub wire decoder ---------------------------------------------------------------------------

const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'type', 'topic', 'data', 'id', 'recover', 'offset', 'epoch', 'token', 'excludeSelf', 'toString', 'hasOwnProperty', 'valueOf', ''];
const TYPES = ['connect', 'subscribe', 'unsubscribe', 'publish', 'presence', 'ping', 'reply', 'error', 'message', 'join', 'leave', 'gap', 'push', 'PUBLISH', '__proto__'];

const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, true, false, 0, -0, 1e308, -1, 2 ** 53, 1.5, '', 'x', '$all', '$user:1', 'a\u0000b', 'a\u0085b', '\ud800', 'x'.repeat(300)),
    fc.constantFrom(...TYPES),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom(...HOSTILE_KEYS), tie('value'), { maxKeys: 5 }),
  ),
})).value;

const requestArb: fc.Arbitrary<string> = fc
  .record(
    {
      type: fc.oneof(fc.constantFrom(...TYPES), hostileJson),
      id: fc.oneof(fc.nat(), fc.string({ maxLength: 70 }), hostileJson),
      topic: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('$all', 'x'.repeat(257), 'a/b', 'é', '\u0007'), hostileJson),
      data: hostileJson,
      recover: fc.oneof(fc.record({ offset: fc.oneof(fc.nat(), hostileJson), epoch: fc.oneof(fc.string({ maxLength: 70 }), hostileJson) }), hostileJson),
      token: fc.oneof(fc.string({ maxLength: 20 }), hostileJson),
      excludeSelf: fc.oneof(fc.boolean(), hostileJson),
      __proto__: hostileJson,
      extra: hostileJson,
    },
    { requiredKeys: [] },
  )
  .map((object) => {
    // JSON.stringify drops a real `__proto__` key of a literal; write it as JSON text instead.
    const { __proto__: proto, ...rest } = object as Record<string, unknown>;
    const text = JSON.stringify(rest);
    return proto === undefined ? text : `{"__proto__":${JSON.stringify(proto) ?? 'null'}${text.length > 2 ? ',' : ''}${text.slice(1)}`;
  });

/** Deep nesting written as text (a recursive walk over this would overflow the stack). */
const deepArb: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"a":', '{"__proto__":'), fc.boolean())
  .map(([depth, open, closed]) => {
    const close = open === '[' ? ']' : '}';
    const body = open.repeat(depth) + '1' + (closed ? close.repeat(depth) : '');
    return `{"type":"publish","topic":"t","data":${body}}`;
  });

export const wireArbitrary: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: requestArb, weight: 8 },
  { arbitrary: deepArb, weight: 1 },
  { arbitrary: fc.string({ maxLength: 40 }), weight: 1 },
  { arbitrary: fc.json({ maxDepth: 4 }), weight: 1 },
);

/** Whether `Object.prototype` still has only its own built-in keys. */
const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).join(',');

export function checkWire(text: string): void {
  let result: ReturnType<typeof parseClientRequest>;
  try {
    result = parseClientRequest(text);
  } catch (error) {
    violated(`parseClientRequest threw ${(error as Error)?.name}: ${(error as Error)?.message}`);
  }
  if (result.ok) {
    const r = result.value;
    if (Object.getPrototypeOf(r) !== Object.prototype) violated('a request object with a foreign prototype');
    if ('topic' in r) {
      if (typeof r.topic !== 'string' || r.topic.length === 0 || r.topic.length > WIRE_LIMITS.maxTopicLength) violated(`accepted topic ${JSON.stringify(r.topic)}`);
      for (const ch of r.topic) {
        const c = ch.charCodeAt(0);
        if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) violated('accepted a topic with control characters');
      }
    }
    if (r.id !== undefined && !(typeof r.id === 'number' ? Number.isSafeInteger(r.id) && r.id >= 0 : r.id.length > 0 && r.id.length <= WIRE_LIMITS.maxIdLength)) {
      violated(`accepted id ${JSON.stringify(r.id)}`);
    }
    if (r.type === 'publish' && jsonDepthExceeds(r.data, WIRE_LIMITS.maxDataDepth)) violated('accepted data deeper than maxDataDepth');
    if (!['connect', 'subscribe', 'unsubscribe', 'publish', 'presence', 'ping'].includes(r.type)) violated(`accepted type ${String(r.type)}`);
  } else if (typeof result.error.message !== 'string' || typeof result.error.code !== 'string') {
    violated('a malformed WireError');
  }
  try {
    parseServerMessage(text);
  } catch (error) {
    violated(`parseServerMessage threw ${(error as Error)?.name}: ${(error as Error)?.message}`);
  }
  if (Object.getOwnPropertyNames(Object.prototype).join(',') !== PROTO_KEYS) violated('Object.prototype was modified');
}

export const wireTarget: Target<string> = {
  name: 'hub-wire',
  arbitrary: wireArbitrary,
  mutate(seed, rng) {
    const bytes = mutateBytes(new Uint8Array(Buffer.from(seed, 'utf8')), rng);
    return Buffer.from(bytes).toString('utf8');
  },
  check: checkWire,
  encode: (input) => input,
  decode: (json) => json as string,
};

// ---- all of them -----------------------------------------------------------------------------

/** The frame target split by side and codec, so each gets its own count and rate. */
function frameVariant(name: string, side: 'server' | 'client', withCodec: boolean): Target<FrameInput> {
  return { ...frameTarget, name, arbitrary: frameArbitraryFor(side, withCodec) };
}

export const TARGETS: ReadonlyArray<Target<unknown>> = [
  frameVariant('frames/server', 'server', false),
  frameVariant('frames/client', 'client', false),
  frameVariant('frames/server+deflate', 'server', true),
  frameVariant('frames/client+deflate', 'client', true),
  handshakeTarget,
  wireTarget,
] as unknown as ReadonlyArray<Target<unknown>>;
