import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, encodeFrameHeader, frameHeaderLength, writeFrameHeader } from '../../src/protocol/frame.js';
import { Opcode } from '../../src/protocol/constants.js';
import { decodeFrames } from './engine-helpers.js';

function payloadOf(length: number): Uint8Array {
  const p = new Uint8Array(length);
  for (let i = 0; i < length; i++) p[i] = (i * 7 + 3) & 0xff;
  return p;
}

describe('encodeFrame: length forms (RFC 6455 §5.2)', () => {
  const cases: Array<[number, number[]]> = [
    [0, [0x82, 0x00]],
    [1, [0x82, 0x01]],
    [125, [0x82, 0x7d]],
    [126, [0x82, 0x7e, 0x00, 0x7e]],
    [127, [0x82, 0x7e, 0x00, 0x7f]],
    [65535, [0x82, 0x7e, 0xff, 0xff]],
    [65536, [0x82, 0x7f, 0, 0, 0, 0, 0x00, 0x01, 0x00, 0x00]],
    [2 ** 20, [0x82, 0x7f, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x00]],
  ];
  for (const [length, header] of cases) {
    test(`length ${length}: header ${header.map((b) => b.toString(16).padStart(2, '0')).join(' ')}`, () => {
      const payload = payloadOf(length);
      const frame = encodeFrame(Opcode.Binary, payload);
      assert.equal(frame.length, header.length + length);
      assert.deepEqual(Array.from(frame.subarray(0, header.length)), header);
      assert.deepEqual(frame.subarray(header.length), payload);
      assert.equal(frameHeaderLength(length, false), header.length);
      assert.equal(frameHeaderLength(length, true), header.length + 4);
      assert.deepEqual(Array.from(encodeFrameHeader(Opcode.Binary, length)), header);
    });
  }
});

describe('encodeFrame: flags and masking', () => {
  test('fin false, text opcode', () => {
    assert.deepEqual(Array.from(encodeFrame(Opcode.Text, Uint8Array.of(0x61), { fin: false })), [0x01, 0x01, 0x61]);
  });
  test('continuation with fin', () => {
    assert.deepEqual(Array.from(encodeFrame(Opcode.Continuation, Uint8Array.of(0x61))), [0x80, 0x01, 0x61]);
  });
  test('rsv1', () => {
    assert.deepEqual(Array.from(encodeFrame(Opcode.Text, new Uint8Array(0), { rsv1: true })), [0xc1, 0x00]);
    assert.deepEqual(Array.from(encodeFrame(Opcode.Text, new Uint8Array(0), { rsv1: true, fin: false })), [0x41, 0x00]);
  });
  test('control opcodes', () => {
    assert.deepEqual(Array.from(encodeFrame(Opcode.Ping, Uint8Array.of(1, 2))), [0x89, 0x02, 1, 2]);
    assert.deepEqual(Array.from(encodeFrame(Opcode.Pong, new Uint8Array(0))), [0x8a, 0x00]);
    assert.deepEqual(Array.from(encodeFrame(Opcode.Close, Uint8Array.of(0x03, 0xe8))), [0x88, 0x02, 0x03, 0xe8]);
  });
  test('masked: RFC 6455 §5.7 example "Hello"', () => {
    const key = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);
    const frame = encodeFrame(Opcode.Text, new TextEncoder().encode('Hello'), { maskKey: key });
    assert.deepEqual(Array.from(frame), [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
  });
  test('masked with each length form, and the caller payload is not modified', () => {
    const key = Uint8Array.of(0xde, 0xad, 0xbe, 0xef);
    for (const length of [0, 125, 126, 65535, 65536, 2 ** 20]) {
      const payload = payloadOf(length);
      const copy = payload.slice();
      const frame = encodeFrame(Opcode.Binary, payload, { maskKey: key, rsv1: true, fin: false });
      assert.deepEqual(payload, copy);
      assert.equal(frame.length, frameHeaderLength(length, true) + length);
      assert.equal(frame[1] & 0x80, 0x80);
      const [decoded] = decodeFrames(frame);
      assert.equal(decoded.fin, false);
      assert.equal(decoded.rsv1, true);
      assert.equal(decoded.masked, true);
      assert.equal(decoded.opcode, Opcode.Binary);
      assert.deepEqual(decoded.payload, payload);
    }
  });
  test('encodeFrameHeader with fin false and rsv1', () => {
    assert.deepEqual(Array.from(encodeFrameHeader(Opcode.Text, 70000, false, true)), [0x41, 0x7f, 0, 0, 0, 0, 0x00, 0x01, 0x11, 0x70]);
  });
  test('writeFrameHeader at an offset, with a 64-bit length above 2^32', () => {
    const target = new Uint8Array(20).fill(0xee);
    const n = writeFrameHeader(target, 3, Opcode.Binary, 2 ** 32 + 5, true, false, Uint8Array.of(1, 2, 3, 4));
    assert.equal(n, 14);
    assert.deepEqual(Array.from(target.subarray(0, 3)), [0xee, 0xee, 0xee]);
    assert.deepEqual(Array.from(target.subarray(3, 17)), [0x82, 0xff, 0, 0, 0, 1, 0, 0, 0, 5, 1, 2, 3, 4]);
    assert.equal(target[17], 0xee);
  });
});
