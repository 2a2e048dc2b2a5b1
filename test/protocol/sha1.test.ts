import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';

import { sha1 } from '../../src/protocol/sha1.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const reference = (data: Uint8Array): string => createHash('sha1').update(data).digest('hex');

test('sha1: FIPS 180 test vectors', () => {
  assert.equal(hex(sha1(ascii(''))), 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
  assert.equal(hex(sha1(ascii('abc'))), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  assert.equal(
    hex(sha1(ascii('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))),
    '84983e441c3bd26ebaae4aa1f95129e5e54670f1',
  );
  assert.equal(hex(sha1(ascii('a'.repeat(1_000_000)))), '34aa973cd4c4daa4f61eeb2bdbad27316534016f');
});

test('sha1: returns a fresh 20-byte array each call', () => {
  const a = sha1(ascii('x'));
  const b = sha1(ascii('x'));
  assert.equal(a.length, 20);
  assert.notEqual(a, b);
  assert.deepEqual(a, b);
});

test('sha1: every length around the padding boundaries (0–200 bytes)', () => {
  // 55, 56, 63, 64 and 119/120 are where the length field moves to another block.
  for (let n = 0; n <= 200; n++) {
    const data = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
    assert.equal(hex(sha1(data)), reference(data), `length ${n}`);
  }
});

test('sha1: respects the view of a subarray', () => {
  const backing = new Uint8Array(100).map((_, i) => i);
  const view = backing.subarray(10, 73);
  assert.equal(hex(sha1(view)), reference(view));
});

test('sha1: equals node:crypto for random inputs (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), (data) => {
      assert.equal(hex(sha1(data)), reference(data));
    }),
    { numRuns: 500 },
  );
});
