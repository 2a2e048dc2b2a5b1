import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createInflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { createDeflateCodec } from '../../src/node/deflate.js';
import { CloseCode } from '../../src/protocol/constants.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import type { NegotiatedDeflate } from '../../src/protocol/permessage-deflate.js';

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (s: string): Uint8Array => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const params = (p: Partial<NegotiatedDeflate> = {}): NegotiatedDeflate => ({
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  ...p,
});
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const BIG = 1 << 30;

/** Inflate a whole message the way a peer does (RFC 7692 §7.2.2). */
const inflateMessage = (payload: Uint8Array, windowBits = 15): Buffer =>
  inflateRawSync(Buffer.concat([payload, TAIL]), { windowBits, finishFlush: constants.Z_SYNC_FLUSH });

// ── RFC 7692 §7.2.3 examples ────────────────────────────────────────────────────────────────

test('§7.2.3.1: "Hello" compresses to f2 48 cd c9 c9 07 00 and inflates back, whole or in fragments', () => {
  const server = createDeflateCodec('server', params({ serverNoContextTakeover: true }));
  assert.equal(hex(server.compress(utf8('Hello'))), 'f248cdc9c90700');
  const client = createDeflateCodec('client', params());
  assert.equal(Buffer.from(client.decompress(fromHex('f248cdc9c90700'), true, BIG)).toString(), 'Hello');
  // Fragmented: f2 48 cd | c9 c9 07 00
  const a = client.decompress(fromHex('f248cd'), false, BIG);
  const b = client.decompress(fromHex('c9c90700'), true, BIG);
  assert.equal(Buffer.concat([a, b]).toString(), 'Hello');
  server.close();
  client.close();
});

test('§7.2.3.2: with context takeover the second "Hello" is shorter (f2 00 11 00 00)', () => {
  const sender = createDeflateCodec('client', params());
  const first = sender.compress(utf8('Hello'));
  const second = sender.compress(utf8('Hello'));
  assert.equal(hex(first), 'f248cdc9c90700');
  assert.ok(second.length < first.length, `${hex(second)} should be shorter than ${hex(first)}`);
  const receiver = createDeflateCodec('server', params());
  assert.equal(Buffer.from(receiver.decompress(first, true, BIG)).toString(), 'Hello');
  assert.equal(Buffer.from(receiver.decompress(second, true, BIG)).toString(), 'Hello');
  // The RFC's own bytes for the second message decode too.
  const rfc = createDeflateCodec('server', params());
  rfc.decompress(fromHex('f248cdc9c90700'), true, BIG);
  assert.equal(Buffer.from(rfc.decompress(fromHex('f200110000'), true, BIG)).toString(), 'Hello');
  // Without context takeover both messages are the same.
  const noCtx = createDeflateCodec('client', params({ clientNoContextTakeover: true }));
  assert.equal(hex(noCtx.compress(utf8('Hello'))), hex(noCtx.compress(utf8('Hello'))));
  for (const c of [sender, receiver, rfc, noCtx]) c.close();
});

test('§7.2.3.3–§7.2.3.6: stored block, BFINAL block, two blocks, empty message', () => {
  const codec = createDeflateCodec('client', params());
  const d = (h: string): string => Buffer.from(codec.decompress(fromHex(h), true, BIG)).toString();
  assert.equal(d('00 05 00 fa ff 48 65 6c 6c 6f 00'), 'Hello'); // §7.2.3.3 no compression
  assert.equal(d('f3 48 cd c9 c9 07 00 00'), 'Hello'); // §7.2.3.4 BFINAL set (stream restarts)
  assert.equal(d('f3 48 cd c9 c9 07 00'), 'Hello'); // … without the padding byte
  assert.equal(d('f2 48 05 00 00 00 ff ff ca c9 c9 07 00'), 'Hello'); // §7.2.3.5 two blocks
  assert.equal(d('00'), ''); // §7.2.3.6 empty
  assert.equal(d('f2 48 cd c9 c9 07 00'), 'Hello'); // still in sync afterwards
  codec.close();
});

test('an empty message compresses to a single 00, also after earlier messages with context takeover', () => {
  for (const takeover of [true, false]) {
    const tx = createDeflateCodec('client', params({ clientNoContextTakeover: !takeover }));
    const rx = createDeflateCodec('server', params({ clientNoContextTakeover: !takeover }));
    for (const msg of ['', 'abc', '', '', 'abcabc', '']) {
      const payload = tx.compress(utf8(msg));
      if (msg === '') assert.equal(hex(payload), '00');
      assert.equal(Buffer.from(rx.decompress(payload, true, BIG)).toString(), msg);
    }
    tx.close();
    rx.close();
  }
});

// ── round trips ─────────────────────────────────────────────────────────────────────────────

/** Random data with repeats, so that matches (and far-back matches) actually happen. */
const messageArb = fc
  .array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(utf8('{"type":"update","topic":"prices"}'), new Uint8Array(700))), {
    maxLength: 6,
  })
  .map((parts) => Buffer.concat(parts));

test('round trips: every context-takeover and window-bits combination, both directions (fast-check)', () => {
  fc.assert(
    fc.property(
      fc.record({
        serverNoContextTakeover: fc.boolean(),
        clientNoContextTakeover: fc.boolean(),
        serverMaxWindowBits: fc.integer({ min: 8, max: 15 }),
        clientMaxWindowBits: fc.integer({ min: 8, max: 15 }),
      }),
      fc.array(fc.tuple(fc.boolean(), messageArb, fc.integer({ min: 1, max: 5 })), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 0, max: 9 }),
      (negotiated, messages, level) => {
        const server = createDeflateCodec('server', negotiated, { level });
        const client = createDeflateCodec('client', negotiated, { level });
        // An independent zlib inflater per direction with exactly the peer's window (window 8
        // included), kept across messages only when context takeover is allowed.
        for (const [fromServer, message, fragments] of messages) {
          const [tx, rx] = fromServer ? [server, client] : [client, server];
          const payload = tx.compress(message);
          // Split the payload into `fragments` frames at arbitrary points.
          const out: Uint8Array[] = [];
          const step = Math.ceil(payload.length / fragments) || 1;
          for (let off = 0; off < payload.length || off === 0; off += step) {
            const end = Math.min(off + step, payload.length);
            out.push(rx.decompress(payload.subarray(off, end), end >= payload.length, BIG));
            if (end >= payload.length) break;
          }
          assert.deepEqual(Buffer.concat(out), message);
        }
        server.close();
        client.close();
      },
    ),
    { numRuns: 300 },
  );
});

test('our window-8 output inflates with a 256-byte window (zlib deflates with 9, matches ≤ 250 back)', () => {
  const codec = createDeflateCodec('server', params({ serverMaxWindowBits: 8 }));
  const inflater = createInflateRaw({ windowBits: 8 });
  const chunks: Buffer[] = [];
  inflater.on('data', (c: Buffer) => chunks.push(c));
  const expected: Buffer[] = [];
  let seed = 1;
  const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < 200; i++) {
    // Text over a small alphabet with repeats at all distances up to ~600 bytes.
    const msg = Buffer.from(Array.from({ length: 50 + (rand() % 900) }, () => 'abcdefgh'[rand() % 8]!).join(''));
    expected.push(msg);
    inflater.write(Buffer.concat([codec.compress(msg), TAIL]));
  }
  return new Promise<void>((resolve, reject) => {
    inflater.on('error', reject);
    inflater.flush(() => {
      assert.deepEqual(Buffer.concat(chunks), Buffer.concat(expected));
      codec.close();
      inflater.close();
      resolve();
    });
  });
});

test('inflates what zlib.deflateRawSync and a second, independent codec produce', () => {
  fc.assert(
    fc.property(messageArb, fc.integer({ min: 9, max: 15 }), fc.integer({ min: 1, max: 9 }), (message, windowBits, memLevel) => {
      const payload = deflateRawSync(message, { windowBits, memLevel, finishFlush: constants.Z_SYNC_FLUSH });
      assert.deepEqual(hex(payload.subarray(-4)), '0000ffff');
      const rx = createDeflateCodec('client', params({ serverMaxWindowBits: windowBits, serverNoContextTakeover: true }));
      assert.deepEqual(Buffer.from(rx.decompress(payload.subarray(0, -4), true, BIG)), message);
      // Also with the tail left in (a peer may send it; RFC 7692 §7.2.3.5 style).
      assert.deepEqual(Buffer.from(rx.decompress(payload, true, BIG)), message);
      rx.close();
      // And the other way: zlib inflates our output.
      const tx = createDeflateCodec('server', params({ serverMaxWindowBits: windowBits }), { memLevel });
      assert.deepEqual(inflateMessage(tx.compress(message), windowBits), message);
      tx.close();
    }),
    { numRuns: 200 },
  );
});

test('large messages (several output chunks) round-trip', () => {
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251 ^ (i >> 12);
  const random = Buffer.from(Array.from({ length: 300_000 }, () => Math.floor(Math.random() * 256)));
  for (const msg of [big, random]) {
    const tx = createDeflateCodec('client', params());
    const rx = createDeflateCodec('server', params());
    const payload = tx.compress(msg);
    assert.deepEqual(inflateMessage(payload), msg);
    assert.deepEqual(Buffer.from(rx.decompress(payload, true, BIG)), msg);
    tx.close();
    rx.close();
  }
});

test('threshold, level and outboundContextTakeover come from options and params', () => {
  const a = createDeflateCodec('server', params({ serverNoContextTakeover: true }));
  assert.equal(a.threshold, 1024);
  assert.equal(a.outboundContextTakeover, false);
  const b = createDeflateCodec('client', params({ serverNoContextTakeover: true }), { threshold: 0 });
  assert.equal(b.threshold, 0);
  assert.equal(b.outboundContextTakeover, true);
  const msg = Buffer.from('the quick brown fox jumps over the lazy dog '.repeat(200));
  const stored = createDeflateCodec('client', params(), { level: 0 }).compress(msg);
  assert.ok(stored.length > msg.length, 'level 0 stores');
  assert.ok(createDeflateCodec('client', params(), { level: 9 }).compress(msg).length < 200);
  assert.throws(() => createDeflateCodec('client', params(), { level: 11 }), RangeError);
});

// ── hostile input ───────────────────────────────────────────────────────────────────────────

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes of ArrayBuffer/Buffer memory that `fn` leaves allocated (no GC in between). */
function arrayBufferGrowth(fn: () => void): number {
  gc();
  const before = process.memoryUsage().arrayBuffers;
  try {
    fn();
  } catch {
    // measured either way
  }
  return process.memoryUsage().arrayBuffers - before;
}

test('a decompression bomb fails with 1009 as soon as maxSize is passed, with bounded memory', () => {
  const MiB = 1024 * 1024;
  const inflated = 50 * MiB;
  const bomb = deflateRawSync(Buffer.alloc(inflated), { level: 9, finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
  assert.ok(bomb.length < 60 * 1024, `bomb is ${bomb.length} bytes`); // ≈ 50 KiB (deflate's best is ~1030:1)
  const maxSize = MiB;
  const rssBefore = process.memoryUsage().rss;
  for (const takeover of [true, false]) {
    const codec = createDeflateCodec('server', params({ clientNoContextTakeover: !takeover }));
    for (let i = 0; i < 10; i++) {
      assert.throws(
        () => codec.decompress(bomb, true, maxSize),
        (e: unknown) =>
          e instanceof ProtocolError && e.code === 'ERR_MESSAGE_TOO_BIG' && e.closeCode === CloseCode.MessageTooBig,
      );
    }
    // What one refused bomb leaves behind: the ~1 MiB inflated before the limit, not 50 MiB.
    const growth = arrayBufferGrowth(() => codec.decompress(bomb, true, maxSize));
    assert.ok(growth < 2 * MiB, `one bomb allocated ${(growth / MiB).toFixed(2)} MiB`);
    // Fragmented: the limit spans the frames of one message.
    const third = Math.ceil(bomb.length / 3);
    let got = 0;
    assert.throws(() => {
      for (let off = 0; off < bomb.length; off += third) {
        got += codec.decompress(bomb.subarray(off, off + third), off + third >= bomb.length, maxSize).length;
      }
    }, ProtocolError);
    assert.ok(got <= maxSize);
    // The codec still works for the next, honest message (for `takeover` the connection would
    // be closed anyway; without it, the shared context must be clean).
    if (!takeover) {
      const ok = createDeflateCodec('client', params({ clientNoContextTakeover: true })).compress(utf8('after'));
      assert.equal(Buffer.from(codec.decompress(ok, true, maxSize)).toString(), 'after');
    }
    codec.close();
  }
  gc();
  const rssGrowth = process.memoryUsage().rss - rssBefore;
  assert.ok(rssGrowth < 16 * MiB, `RSS grew by ${(rssGrowth / MiB).toFixed(1)} MiB`);
  // Control: the measure does see an unbounded inflate.
  const unbounded = arrayBufferGrowth(() =>
    inflateRawSync(Buffer.concat([bomb, TAIL]), { finishFlush: constants.Z_SYNC_FLUSH }),
  );
  assert.ok(unbounded >= 40 * MiB, `control allocated ${(unbounded / MiB).toFixed(1)} MiB`);
});

test('exactly maxSize is allowed, one byte more is not', () => {
  const msg = Buffer.alloc(100_000, 0x61);
  const payload = createDeflateCodec('client', params()).compress(msg);
  const rx = (): ReturnType<typeof createDeflateCodec> => createDeflateCodec('server', params());
  assert.equal(rx().decompress(payload, true, 100_000).length, 100_000);
  assert.throws(() => rx().decompress(payload, true, 99_999), /more than the 99999-byte limit/);
});

test('invalid DEFLATE data fails with ERR_INFLATE / 1007; the shared context recovers', () => {
  const invalid = [
    'ff ff ff ff', // BTYPE 11 is reserved (RFC 1951 §3.2.3)
    '00 05 00 00 00 48 65 6c 6c 6f', // stored block with LEN/NLEN mismatch
    'f2 48 cd c9 c9 07 00 fa', // garbage after a valid block
    'f2 00 11 00 00', // §7.2.3.2's second message without the first: distance too far back
  ];
  for (const h of invalid) {
    for (const takeover of [true, false]) {
      const codec = createDeflateCodec('client', params({ serverNoContextTakeover: !takeover }));
      assert.throws(
        () => codec.decompress(fromHex(h), true, BIG),
        (e: unknown) =>
          e instanceof ProtocolError &&
          e.code === 'ERR_INFLATE' &&
          e.closeCode === CloseCode.InvalidFramePayloadData &&
          /Invalid compressed data/.test(e.message),
        h,
      );
      codec.close();
    }
  }
  const after = createDeflateCodec('client', params({ serverNoContextTakeover: true }));
  assert.equal(Buffer.from(after.decompress(fromHex('f248cdc9c90700'), true, BIG)).toString(), 'Hello');
});

test('close() frees the contexts; the codec is not usable afterwards', () => {
  const codec = createDeflateCodec('client', params());
  codec.compress(utf8('x'.repeat(100)));
  codec.decompress(fromHex('f248cd'), false, BIG);
  codec.close();
  codec.close(); // idempotent
  assert.throws(() => codec.compress(utf8('x')), /after close/);
  assert.throws(() => codec.decompress(fromHex('00'), true, BIG), /after close/);
});
