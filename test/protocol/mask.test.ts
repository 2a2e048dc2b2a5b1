import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { applyMask, MaskKeySource } from '../../src/protocol/mask.js';

function naiveMask(data: Uint8Array, key: Uint8Array, phase: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ key[(i + phase) % 4];
  return out;
}

describe('applyMask', () => {
  test('equals a naive byte loop for lengths 0..300, any byteOffset and phase', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 3 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (length, byteOffset, phase, key, seed) => {
          // A subarray of a larger buffer, so the word loop sees every alignment; guard bytes around it.
          const backing = new Uint8Array(byteOffset + length + 8);
          let x = seed || 1;
          for (let i = 0; i < backing.length; i++) {
            x ^= x << 13;
            x ^= x >>> 17;
            x ^= x << 5;
            backing[i] = x & 0xff;
          }
          const before = backing.slice();
          const data = backing.subarray(byteOffset, byteOffset + length);
          const expected = naiveMask(data, key, phase);
          applyMask(data, key, phase);
          assert.deepEqual(data, expected);
          // Bytes outside the view are untouched.
          assert.deepEqual(backing.subarray(0, byteOffset), before.subarray(0, byteOffset));
          assert.deepEqual(backing.subarray(byteOffset + length), before.subarray(byteOffset + length));
          // Applying it again restores the original.
          applyMask(data, key, phase);
          assert.deepEqual(data, before.subarray(byteOffset, byteOffset + length));
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('every length 0..300 at every offset 0..3 and phase 0..3 (exhaustive)', () => {
    const key = Uint8Array.of(0x01, 0x23, 0x45, 0x67);
    for (let length = 0; length <= 300; length++) {
      for (let offset = 0; offset < 4; offset++) {
        for (let phase = 0; phase < 4; phase++) {
          const backing = new Uint8Array(length + 4);
          for (let i = 0; i < backing.length; i++) backing[i] = (i * 31 + 7) & 0xff;
          const data = backing.subarray(offset, offset + length);
          const expected = naiveMask(data, key, phase);
          applyMask(data, key, phase);
          assert.deepEqual(data, expected, `length ${length} offset ${offset} phase ${phase}`);
        }
      }
    }
  });

  test('a payload unmasked in pieces with the running offset as phase equals unmasking it whole', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 5 }), (payload, key, cutsRaw) => {
        const whole = payload.slice();
        applyMask(whole, key);
        const pieces = payload.slice();
        const cuts = [...new Set(cutsRaw.map((c) => c % (payload.length + 1)))].sort((a, b) => a - b);
        let start = 0;
        for (const c of [...cuts, payload.length]) {
          applyMask(pieces.subarray(start, c), key, start);
          start = c;
        }
        assert.deepEqual(pieces, whole);
      }),
      { numRuns: 500 },
    );
  });

  test('phase larger than 3 wraps around', () => {
    const key = Uint8Array.of(1, 2, 4, 8);
    const a = new Uint8Array(40);
    const b = new Uint8Array(40);
    applyMask(a, key, 6);
    applyMask(b, key, 2);
    assert.deepEqual(a, b);
  });

  test('a key that is itself a subarray at an odd offset works', () => {
    const pool = Uint8Array.of(9, 0xaa, 0xbb, 0xcc, 0xdd, 9);
    const key = pool.subarray(1, 5);
    const data = new Uint8Array(64).fill(0);
    applyMask(data, key);
    for (let i = 0; i < 64; i++) assert.equal(data[i], key[i & 3]);
  });
});

describe('MaskKeySource', () => {
  test('gives 4-byte keys, fresh across pool refills', () => {
    const source = new MaskKeySource();
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const key = source.next();
      assert.equal(key.length, 4);
      seen.add(Array.from(key).join(','));
    }
    // 3000 keys span three pool refills; random 32-bit keys essentially never repeat.
    assert.ok(seen.size > 2990, `only ${seen.size} distinct keys`);
  });
  test('keys are not all zero', () => {
    const source = new MaskKeySource();
    let nonZero = 0;
    for (let i = 0; i < 100; i++) if (source.next().some((b) => b !== 0)) nonZero++;
    assert.ok(nonZero > 90);
  });
});
