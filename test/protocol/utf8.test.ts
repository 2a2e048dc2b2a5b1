import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer, isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { Utf8Validator, isValidUtf8, decodeUtf8, encodeUtf8 } from '../../src/protocol/utf8.js';

const fatal = new TextDecoder('utf-8', { fatal: true });
function decoderAccepts(bytes: Uint8Array): boolean {
  try {
    fatal.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const hex = (s: string): Uint8Array => Uint8Array.from(s.split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16)));

const valid: Array<[string, string]> = [
  ['empty', ''],
  ['ascii', '48 65 6c 6c 6f'],
  ['NUL', '00'],
  ['DEL', '7f'],
  ['smallest 2-byte C2 80', 'c2 80'],
  ['largest 2-byte DF BF', 'df bf'],
  ['smallest 3-byte E0 A0 80', 'e0 a0 80'],
  ['E1 80 80', 'e1 80 80'],
  ['last before surrogates ED 9F BF', 'ed 9f bf'],
  ['first after surrogates EE 80 80', 'ee 80 80'],
  ['U+FFFF EF BF BF', 'ef bf bf'],
  ['BOM', 'ef bb bf'],
  ['smallest 4-byte F0 90 80 80', 'f0 90 80 80'],
  ['F1 80 80 80', 'f1 80 80 80'],
  ['U+10FFFF F4 8F BF BF', 'f4 8f bf bf'],
  ['kosme', 'ce ba e1 bd b9 cf 83 ce bc ce b5'],
  ['mixed', '61 c3 a9 e2 82 ac f0 9f 98 80 7a'],
];

const invalid: Array<[string, string]> = [
  ['overlong C0 80', 'c0 80'],
  ['overlong C1 BF', 'c1 bf'],
  ['overlong E0 80 80', 'e0 80 80'],
  ['overlong E0 9F BF', 'e0 9f bf'],
  ['overlong F0 80 80 80', 'f0 80 80 80'],
  ['overlong F0 8F BF BF', 'f0 8f bf bf'],
  ['surrogate ED A0 80', 'ed a0 80'],
  ['surrogate ED BF BF', 'ed bf bf'],
  ['surrogate pair ED A0 80 ED B0 80', 'ed a0 80 ed b0 80'],
  ['above U+10FFFF F4 90 80 80', 'f4 90 80 80'],
  ['F5', 'f5 80 80 80'],
  ['F8', 'f8 88 80 80 80'],
  ['FC', 'fc 84 80 80 80 80'],
  ['FE', 'fe'],
  ['FF', 'ff'],
  ['lone continuation 80', '80'],
  ['lone continuation BF after ascii', '61 bf'],
  ['two continuations after a 2-byte char', 'c3 a9 80'],
  ['truncated 2-byte at end', '61 c3'],
  ['truncated 3-byte at end (1 of 3)', 'e2'],
  ['truncated 3-byte at end (2 of 3)', 'e2 82'],
  ['truncated 4-byte at end (3 of 4)', 'f0 9f 98'],
  ['truncated sequence followed by ascii', 'e2 82 61'],
  ['lead byte followed by lead byte', 'c3 c3 a9'],
  ['kosme with a bad byte', 'ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64'],
];

describe('Utf8Validator: fixed cases', () => {
  for (const [name, bytes] of [...valid, ...invalid]) {
    test(name, () => {
      const data = hex(bytes);
      const expected = isUtf8(data);
      assert.equal(expected, decoderAccepts(data), 'reference implementations agree');
      assert.equal(isValidUtf8(data), expected);
      const v = new Utf8Validator();
      assert.equal(v.write(data) && v.end(), expected);
      // Byte at a time gives the same answer.
      const w = new Utf8Validator();
      let ok = true;
      for (let i = 0; i < data.length && ok; i++) ok = w.write(data, i, i + 1);
      assert.equal(ok && w.end(), expected);
    });
  }
  test('the valid list is valid and the invalid list invalid', () => {
    for (const [, b] of valid) assert.ok(isUtf8(hex(b)), b);
    for (const [, b] of invalid) assert.ok(!isUtf8(hex(b)), b);
  });
});

describe('Utf8Validator: fail fast', () => {
  test('the write() holding the first invalid byte returns false (Autobahn 6.4)', () => {
    // κόσμε, then a surrogate, then more text: pieces before the bad byte are accepted.
    const v = new Utf8Validator();
    assert.equal(v.write(hex('ce ba e1 bd b9 cf 83 ce bc ce b5')), true);
    assert.equal(v.write(hex('ed')), true, 'ED alone may still start a valid sequence');
    assert.equal(v.write(hex('a0 80 65 64')), false, 'A0 after ED is a surrogate');
  });
  test('invalid lead byte fails in the write that holds it, not at end()', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(hex('61 62')), true);
    assert.equal(v.write(hex('f5')), false);
  });
  test('C0 fails immediately, without waiting for its continuation', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(hex('c0')), false);
  });
  test('F4 90 fails at the 90, E0 80 at the 80', () => {
    let v = new Utf8Validator();
    assert.equal(v.write(hex('f4')), true);
    assert.equal(v.write(hex('90')), false);
    v = new Utf8Validator();
    assert.equal(v.write(hex('e0')), true);
    assert.equal(v.write(hex('80')), false);
  });
  test('a truncated sequence is only detected by end()', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(hex('f0 9f 98')), true);
    assert.equal(v.end(), false);
    // end() resets for the next message.
    assert.equal(v.write(hex('80')), false);
  });
  test('end() resets: the next message starts clean', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(hex('61')), true);
    assert.equal(v.end(), true);
    assert.equal(v.write(hex('c3 a9')), true);
    assert.equal(v.end(), true);
  });
  test('reset() forgets a partial sequence', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(hex('e2 82')), true);
    v.reset();
    assert.equal(v.write(hex('61')), true);
    assert.equal(v.end(), true);
  });
  test('write(bytes, start, end) only looks at the range', () => {
    const v = new Utf8Validator();
    const data = hex('ff 61 c3 a9 ff');
    assert.equal(v.write(data, 1, 4), true);
    assert.equal(v.end(), true);
  });
});

describe('Utf8Validator: properties', () => {
  const bytesArb = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    // Mostly valid text with a few random bytes spliced in hits the interesting edges far more often.
    fc
      .tuple(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.uint8Array({ maxLength: 3 }), fc.nat())
      .map(([s, junk, at]) => {
        const t = encodeUtf8(s);
        const i = t.length === 0 ? 0 : at % (t.length + 1);
        const out = new Uint8Array(t.length + junk.length);
        out.set(t.subarray(0, i), 0);
        out.set(junk, i);
        out.set(t.subarray(i), i + junk.length);
        return out;
      }),
    fc.array(fc.constantFrom(0x61, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5), { maxLength: 12 }).map((a) => Uint8Array.from(a)),
  );

  test('split at random points, the result equals isUtf8 of the whole', () => {
    fc.assert(
      fc.property(bytesArb, fc.array(fc.nat(), { maxLength: 6 }), (data, cutsRaw) => {
        const cuts = [...new Set(cutsRaw.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
        const v = new Utf8Validator();
        let ok = true;
        let start = 0;
        for (const c of [...cuts, data.length]) {
          if (!ok) break;
          ok = v.write(data, start, c);
          start = c;
        }
        const result = ok && v.end();
        assert.equal(result, isUtf8(data));
        assert.equal(isValidUtf8(data), isUtf8(data));
      }),
      { numRuns: 3000 },
    );
  });

  test('fed byte by byte, the first false is at the first byte no valid text could continue from', () => {
    fc.assert(
      fc.property(bytesArb, (data) => {
        const v = new Utf8Validator();
        let failedAt = -1;
        for (let i = 0; i < data.length; i++) {
          if (!v.write(data, i, i + 1)) {
            failedAt = i;
            break;
          }
        }
        if (failedAt === -1) return;
        // The prefix before the bad byte is a valid prefix; the prefix including it is not.
        const before = data.subarray(0, failedAt);
        const through = data.subarray(0, failedAt + 1);
        const canComplete = (prefix: Uint8Array): boolean =>
          [[], [0x80], [0x80, 0x80], [0x80, 0x80, 0x80], [0x90, 0x80, 0x80], [0xa0, 0x80], [0x8f, 0x80, 0x80]].some((tail) => {
            const all = new Uint8Array(prefix.length + tail.length);
            all.set(prefix);
            all.set(tail, prefix.length);
            return isUtf8(all);
          });
        assert.ok(canComplete(before), 'the bytes before the failure could still be valid');
        assert.ok(!canComplete(through), 'the byte that failed cannot be part of valid text');
      }),
      { numRuns: 2000 },
    );
  });

  test('valid strings (incl. astral characters) are accepted however they are split', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.nat(), (s, cut) => {
        const data = encodeUtf8(s);
        const c = cut % (data.length + 1);
        const v = new Utf8Validator();
        assert.ok(v.write(data.subarray(0, c)));
        assert.ok(v.write(data.subarray(c)));
        assert.ok(v.end());
        assert.equal(decodeUtf8(data), Buffer.from(s, 'utf8').toString('utf8'));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('decodeUtf8 / encodeUtf8', () => {
  test('round trip', () => {
    assert.equal(decodeUtf8(encodeUtf8('héllo 😀')), 'héllo 😀');
  });
  test('a leading byte order mark is kept (it is data, not a BOM, in a WebSocket message)', () => {
    assert.equal(decodeUtf8(hex('ef bb bf 61')), '\ufeffa');
  });
});

describe('Utf8Validator with a bulk validator (long ranges in native code)', () => {
  // Long inputs (the bulk path starts at 1 KiB) built from valid characters with, sometimes,
  // one byte broken; split at random points, as text arrives in pieces.
  const chars = ['a', 'é', '€', '😀', '\u07ff', '\ud7ff', '\ue000', '\u{10ffff}'].map((c) => [...Buffer.from(c)]);
  const longText = fc
    .tuple(
      fc.array(fc.constantFrom(...chars), { minLength: 300, maxLength: 1500 }),
      fc.option(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }))),
      fc.array(fc.nat(), { maxLength: 6 }),
    )
    .map(([parts, corrupt, cuts]) => {
      const bytes = Uint8Array.from(parts.flat());
      if (corrupt !== null) bytes[corrupt[0] % bytes.length] = corrupt[1];
      return { bytes, cuts: [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b) };
    });

  test('agrees with the byte loop and with isUtf8 on the whole, however the input is split', () => {
    fc.assert(
      fc.property(longText, ({ bytes, cuts }) => {
        const bulk = new Utf8Validator(isUtf8);
        const loop = new Utf8Validator();
        let from = 0;
        let bulkOk = true;
        let loopOk = true;
        for (const cut of [...cuts, bytes.length]) {
          bulkOk &&= bulk.write(bytes, from, cut);
          loopOk &&= loop.write(bytes, from, cut);
          from = cut;
        }
        bulkOk &&= bulk.end();
        loopOk &&= loop.end();
        assert.equal(bulkOk, loopOk);
        assert.equal(bulkOk, isUtf8(bytes));
      }),
      { numRuns: 500 },
    );
  });

  test('a range that ends inside a 4-byte sequence leaves it open for the next range', () => {
    const bytes = Buffer.from('a'.repeat(2000) + '😀');
    const v = new Utf8Validator(isUtf8);
    assert.equal(v.write(bytes, 0, bytes.length - 2), true);
    assert.equal(v.write(bytes, bytes.length - 2, bytes.length), true);
    assert.equal(v.end(), true);
    const cutShort = new Utf8Validator(isUtf8);
    assert.equal(cutShort.write(bytes, 0, bytes.length - 1), true);
    assert.equal(cutShort.end(), false, 'the message ends inside the sequence');
  });

  test('more than 3 continuation bytes at the end of a long range are invalid', () => {
    const bytes = Buffer.concat([Buffer.from('a'.repeat(2000)), Buffer.from([0xf0, 0x9f, 0x98, 0x80, 0x80])]);
    assert.equal(new Utf8Validator(isUtf8).write(bytes), false);
  });
});
