import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Connection } from '../../src/protocol/connection.js';
import { EventQueue, type ConnectionEvent } from '../../src/protocol/event-queue.js';
import { Opcode } from '../../src/protocol/constants.js';
import { encodeUtf8 } from '../../src/protocol/utf8.js';
import { decodeFrames, join, rawFrame, type RawFrameOptions } from './engine-helpers.js';

/** A comparable view of an event (data as hex, since views into chunks are not plain arrays). */
type Seen = string;
function seen(e: ConnectionEvent): Seen {
  switch (e.type) {
    case 'message':
      return `${e.binary ? 'binary' : 'text'}:${Buffer.from(e.data).toString('hex')}`;
    case 'ping':
    case 'pong':
      return `${e.type}:${Buffer.from(e.data).toString('hex')}`;
    case 'close':
      return `close:${e.code}:${e.reason}`;
    case 'error':
      return `error:${e.error.code}`;
  }
}

/** Split `bytes` at the given (unsorted, possibly repeated) cut points; each piece is a fresh copy. */
function splitAt(bytes: Uint8Array, cutsRaw: readonly number[]): Uint8Array[] {
  const cuts = [...new Set(cutsRaw.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const c of [...cuts, bytes.length]) {
    pieces.push(bytes.slice(start, c));
    start = c;
  }
  return pieces;
}

function run(side: 'server' | 'client', pieces: readonly Uint8Array[]): { events: Seen[]; conn: Connection } {
  const q = new EventQueue();
  const conn = new Connection({ side }, q);
  for (const p of pieces) conn.receiveData(p);
  return { events: q.take().map(seen), conn };
}

// ---- generators ------------------------------------------------------------------------------

const textArb = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }), // any code point, astral ones included
  fc.constantFrom('', '😀', 'a😀b', '€', 'κόσμε', '\ufeff'),
);

interface Message {
  readonly binary: boolean;
  readonly data: Uint8Array;
  /** Where to cut the payload into frames (positions in the payload). */
  readonly cuts: readonly number[];
  /** Pings to put before fragment i (index into the fragments; clamped). */
  readonly pings: ReadonlyArray<readonly [at: number, data: Uint8Array]>;
}

const messageArb: fc.Arbitrary<Message> = fc.record({
  binary: fc.boolean(),
  text: textArb,
  bytes: fc.oneof({ weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }) }, { weight: 1, arbitrary: fc.integer({ min: 100, max: 700 }).map((n) => new Uint8Array(n).map((_, i) => (i * 13) & 0xff)) }),
  cuts: fc.array(fc.nat(), { maxLength: 4 }),
  pings: fc.array(fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 20 })), { maxLength: 2 }),
}).map(({ binary, text, bytes, cuts, pings }) => ({ binary, data: binary ? bytes : encodeUtf8(text), cuts, pings }));

const frameOptionsArb = fc.record({
  key: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  lengthForm: fc.constantFrom<RawFrameOptions['lengthForm']>(undefined, undefined, undefined, 16, 64),
});

/** Client frames for a list of messages, and the events a server must report for them. */
function serialise(messages: readonly Message[], frameOptions: ReadonlyArray<{ key: Uint8Array; lengthForm: RawFrameOptions['lengthForm'] }>): { bytes: Uint8Array; expected: Seen[] } {
  const frames: Uint8Array[] = [];
  const expected: Seen[] = [];
  let n = 0;
  const opts = (length: number): RawFrameOptions => {
    const o = frameOptions[n++ % frameOptions.length];
    // A 16-bit length form cannot hold more than 65535 bytes; keep it honest for small payloads.
    return { mask: o.key, lengthForm: o.lengthForm === 16 && length > 0xffff ? undefined : o.lengthForm };
  };
  for (const m of messages) {
    const cuts = [...new Set(m.cuts.map((c) => c % (m.data.length + 1)))].sort((a, b) => a - b);
    const bounds = [0, ...cuts, m.data.length];
    const fragments: Uint8Array[] = [];
    for (let i = 0; i + 1 < bounds.length; i++) fragments.push(m.data.subarray(bounds[i], bounds[i + 1]));
    fragments.forEach((fragment, i) => {
      for (const [at, ping] of m.pings) {
        if (at % fragments.length === i && i > 0) {
          frames.push(rawFrame(Opcode.Ping, ping, { mask: opts(ping.length).mask })); // control frames: 7-bit length only
          expected.push(`ping:${Buffer.from(ping).toString('hex')}`);
        }
      }
      const opcode = i === 0 ? (m.binary ? Opcode.Binary : Opcode.Text) : Opcode.Continuation;
      frames.push(rawFrame(opcode, fragment, { ...opts(fragment.length), fin: i === fragments.length - 1 }));
    });
    expected.push(`${m.binary ? 'binary' : 'text'}:${Buffer.from(m.data).toString('hex')}`);
  }
  return { bytes: join(frames), expected };
}

// ---- properties ------------------------------------------------------------------------------

describe('property: parsing does not depend on how the stream is split', () => {
  test('random messages, fragments and pings parse the same whole, split at random, and byte by byte', () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { minLength: 1, maxLength: 6 }),
        fc.array(frameOptionsArb, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (messages, frameOptions, cuts) => {
          const { bytes, expected } = serialise(messages, frameOptions);
          const whole = run('server', [bytes.slice()]);
          assert.deepEqual(whole.events, expected);
          const split = run('server', splitAt(bytes, cuts));
          assert.deepEqual(split.events, expected);
          // Pongs answer pings, in order, with the same payloads, however the input was split.
          const pongs = (c: Connection): string[] => decodeFrames(join(c.dataToSend())).map((f) => `${f.opcode}:${Buffer.from(f.payload).toString('hex')}`);
          const wholePongs = pongs(whole.conn);
          assert.deepEqual(pongs(split.conn), wholePongs);
          assert.deepEqual(
            wholePongs,
            expected.filter((e) => e.startsWith('ping:')).map((e) => `${Opcode.Pong}:${e.slice(5)}`),
          );
          if (bytes.length <= 400) {
            const bytewise: Uint8Array[] = [];
            for (let i = 0; i < bytes.length; i++) bytewise.push(bytes.slice(i, i + 1));
            assert.deepEqual(run('server', bytewise).events, expected);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  test('many frames in one chunk, then the same frames one chunk each', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { minLength: 10, maxLength: 30 }), frameOptionsArb, (messages, options) => {
        const { bytes, expected } = serialise(messages, [options]);
        assert.deepEqual(run('server', [bytes]).events, expected);
      }),
      { numRuns: 60 },
    );
  });
});

type Op =
  | { readonly kind: 'text'; readonly text: string; readonly cuts: readonly number[] }
  | { readonly kind: 'binary'; readonly data: Uint8Array; readonly cuts: readonly number[] }
  | { readonly kind: 'ping'; readonly data: Uint8Array };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('text' as const), text: textArb, cuts: fc.array(fc.nat(), { maxLength: 3 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('binary' as const),
      data: fc.oneof({ weight: 5, arbitrary: fc.uint8Array({ maxLength: 80 }) }, { weight: 1, arbitrary: fc.integer({ min: 2000, max: 70000 }).map((n) => new Uint8Array(n).map((_, i) => i & 0xff)) }),
      cuts: fc.array(fc.nat(), { maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ping' as const), data: fc.uint8Array({ maxLength: 125 }) }) },
);

/** Send `ops` through `sender` (fragmenting as told) and return the events a receiver must see. */
function sendAll(sender: Connection, ops: readonly Op[]): Seen[] {
  const expected: Seen[] = [];
  for (const op of ops) {
    if (op.kind === 'ping') {
      sender.sendPing(op.data);
      expected.push(`ping:${Buffer.from(op.data).toString('hex')}`);
      continue;
    }
    const data = op.kind === 'text' ? encodeUtf8(op.text) : op.data;
    const cuts = [...new Set(op.cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
    const bounds = [0, ...cuts, data.length];
    for (let i = 0; i + 1 < bounds.length; i++) {
      const piece = data.subarray(bounds[i], bounds[i + 1]);
      const fin = i + 2 === bounds.length;
      if (i === 0) {
        if (op.kind === 'text') sender.sendText(piece, { fin });
        else sender.sendBinary(piece, { fin });
      } else {
        sender.sendContinuation(piece, fin);
      }
    }
    expected.push(`${op.kind}:${Buffer.from(data).toString('hex')}`);
  }
  return expected;
}

describe('property: round trip between two engines', () => {
  for (const [from, to] of [
    ['server', 'client'],
    ['client', 'server'],
  ] as const) {
    test(`${from} → ${to}: messages and pings come out identical, however the bytes are split`, () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), fc.boolean(), (ops, cuts, close) => {
          const sender = new Connection({ side: from }, new EventQueue());
          const expected = sendAll(sender, ops);
          if (close) {
            sender.sendClose(1000, 'bye');
            expected.push('close:1000:bye');
          }
          const chunks = sender.dataToSend();
          for (const chunk of chunks) assert.ok(chunk.length > 0);
          const bytes = join(chunks);
          // Every frame a client sends is masked, none a server sends.
          assert.ok(decodeFrames(bytes).every((f) => f.masked === (from === 'client')));
          const { events, conn } = run(to, splitAt(bytes, cuts));
          assert.deepEqual(events, expected);
          // The receiver answered every ping, and echoed the close.
          const answers = decodeFrames(join(conn.dataToSend()));
          assert.equal(answers.filter((f) => f.opcode === Opcode.Pong).length, ops.filter((o) => o.kind === 'ping').length);
          assert.equal(answers.filter((f) => f.opcode === Opcode.Close).length, close ? 1 : 0);
        }),
        { numRuns: 400 },
      );
    });
  }
});

describe('property: arbitrary input never throws', () => {
  /** Bytes that look like frames often enough to get past the first checks. */
  const frameishArb = (side: 'server' | 'client'): fc.Arbitrary<Uint8Array> =>
    fc
    .array(
      fc.record({
        b0: fc.oneof(fc.constantFrom(0x81, 0x82, 0x01, 0x02, 0x00, 0x80, 0x88, 0x89, 0x8a, 0xc1, 0x83, 0x8b), fc.integer({ min: 0, max: 255 })),
        // Mostly the masking this side expects, so parsing gets past the mask check.
        masked: fc.integer({ min: 0, max: 9 }).map((n) => (side === 'server' ? n !== 0 : n === 0)),
        len: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.constantFrom(1, 2, 125, 126, 127)),
        ext: fc.uint8Array({ minLength: 8, maxLength: 8 }),
        key: fc.uint8Array({ minLength: 4, maxLength: 4 }),
        payload: fc.uint8Array({ maxLength: 12 }),
      }),
      { maxLength: 8 },
    )
    .map((frames) =>
      join(
        frames.map(({ b0, masked, len, ext, key, payload }) => {
          const header = [b0, (masked ? 0x80 : 0) | len];
          if (len === 126) header.push(0, ext[1] & 0x0f);
          if (len === 127) header.push(ext[0] & 0x80, 0, 0, 0, 0, 0, 0, ext[7] & 0x0f);
          if (masked) header.push(...key);
          return join([Uint8Array.from(header), payload]);
        }),
      ),
    );

  for (const side of ['server', 'client'] as const) {
    test(`${side}: random bytes give events, then at most one error, then nothing`, () => {
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), frameishArb(side)), fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
          const q = new EventQueue();
          const conn = new Connection({ side, maxMessageSize: 1 << 16 }, q);
          const all: ConnectionEvent[] = [];
          for (const piece of splitAt(bytes, cuts)) {
            conn.receiveData(piece); // must not throw
            all.push(...q.take());
          }
          conn.receiveData(Uint8Array.of(0x81, 0x80, 0, 0, 0, 0)); // more input after whatever happened
          all.push(...q.take());
          const errors = all.filter((e) => e.type === 'error').length;
          const closes = all.filter((e) => e.type === 'close').length;
          assert.ok(errors <= 1);
          assert.ok(errors + closes <= 1, 'nothing after a close or an error');
          const terminal = all.findIndex((e) => e.type === 'error' || e.type === 'close');
          if (terminal !== -1) assert.equal(terminal, all.length - 1, 'a close or error is the last event');
          const out = decodeFrames(join(conn.dataToSend()));
          assert.equal(out.filter((f) => f.opcode === Opcode.Close).length, errors + closes);
          assert.ok(out.every((f) => f.masked === (side === 'client')));
          if (errors === 1) assert.equal(conn.shouldCloseTransport, true);
        }),
        { numRuns: 3000 },
      );
    });
  }
});
