import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Connection, type ConnectionOptions } from '../../src/protocol/connection.js';
import { EventQueue, type ConnectionEvent } from '../../src/protocol/event-queue.js';
import { CloseCode, Opcode, State } from '../../src/protocol/constants.js';
import { InvalidStateError, ProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.js';
import type { MessageCodec } from '../../src/protocol/extension.js';
import { closePayload, decodeFrames, join, parseClose, rawFrame, serverFrame, text, type DecodedFrame } from './engine-helpers.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16)));

function open(options: Partial<ConnectionOptions> = {}): { c: Connection; q: EventQueue } {
  const q = new EventQueue();
  const c = new Connection({ side: 'server', ...options }, q);
  return { c, q };
}

/** Feed copies (the engine unmasks in place) of each chunk. */
function feed(c: Connection, ...chunks: Uint8Array[]): void {
  for (const chunk of chunks) c.receiveData(chunk.slice());
}

function sent(c: Connection): DecodedFrame[] {
  return decodeFrames(join(c.dataToSend()));
}

function messages(events: ConnectionEvent[]): Array<[string, boolean]> {
  return events.map((e) => {
    assert.equal(e.type, 'message');
    if (e.type !== 'message') throw new Error('unreachable');
    return [e.binary ? Buffer.from(e.data).toString('hex') : text(e.data), e.binary];
  });
}

/**
 * Assert the connection failed with `closeCode` / `code`: one error event last, exactly one
 * close frame (with that code) queued, the transport to be closed, and later input ignored.
 */
function assertFailed(c: Connection, q: EventQueue, closeCode: number, code: ProtocolErrorCode): ProtocolError {
  const events = q.take();
  const errors = events.filter((e) => e.type === 'error');
  assert.equal(errors.length, 1, `expected one error event, got ${JSON.stringify(events.map((e) => e.type))}`);
  const last = events[events.length - 1];
  assert.equal(last.type, 'error');
  if (last.type !== 'error') throw new Error('unreachable');
  assert.ok(last.error instanceof ProtocolError);
  assert.equal(last.error.code, code);
  assert.equal(last.error.closeCode, closeCode);
  const frames = sent(c).filter((f) => f.opcode === Opcode.Close);
  assert.equal(frames.length, 1, 'exactly one close frame');
  assert.equal(parseClose(frames[0].payload).code, closeCode);
  assert.equal(frames[0].masked, c.side === 'client');
  assert.equal(c.shouldCloseTransport, true);
  assert.equal(c.closeSentCode, closeCode);
  // Anything after a failure is ignored.
  c.receiveData(rawFrame(Opcode.Text, 'ignored', { mask: c.side === 'server' }));
  c.receiveData(rawFrame(Opcode.Ping, 'p', { mask: c.side === 'server' }));
  assert.deepEqual(q.take(), []);
  assert.equal(c.dataToSend().length, 0);
  return last.error;
}

/** Feed `chunks` to a fresh server and assert it fails. */
function expectFailure(chunks: Uint8Array[], closeCode: number, code: ProtocolErrorCode, options: Partial<ConnectionOptions> = {}): ProtocolError {
  const { c, q } = open(options);
  feed(c, ...chunks);
  return assertFailed(c, q, closeCode, code);
}

describe('data frames', () => {
  test('single text frame', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, 'Hello'));
    assert.deepEqual(messages(q.take()), [['Hello', false]]);
    assert.equal(c.dataToSend().length, 0);
    assert.equal(c.state, State.Open);
  });
  test('single binary frame', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Binary, Uint8Array.of(0, 1, 0xff)));
    assert.deepEqual(messages(q.take()), [['0001ff', true]]);
  });
  test('empty text and binary messages', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, ''), rawFrame(Opcode.Binary, new Uint8Array(0)));
    assert.deepEqual(messages(q.take()), [['', false], ['', true]]);
  });
  test('several whole messages in one chunk (fast lane, back to back)', () => {
    const { c, q } = open();
    feed(c, join([rawFrame(Opcode.Text, 'one'), rawFrame(Opcode.Binary, Uint8Array.of(2)), rawFrame(Opcode.Text, 'three'), rawFrame(Opcode.Text, '')]));
    assert.deepEqual(messages(q.take()), [['one', false], ['02', true], ['three', false], ['', false]]);
  });
  test('several whole messages in separate chunks', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, 'one'), rawFrame(Opcode.Text, 'two'), rawFrame(Opcode.Binary, Uint8Array.of(3)));
    assert.deepEqual(messages(q.take()), [['one', false], ['two', false], ['03', true]]);
  });
  test('16-bit and 64-bit lengths', () => {
    const { c, q } = open();
    const medium = 'x'.repeat(300);
    const big = new Uint8Array(70000).fill(7);
    feed(c, rawFrame(Opcode.Text, medium), rawFrame(Opcode.Binary, big));
    const events = q.take();
    assert.equal(events.length, 2);
    assert.ok(events[0].type === 'message' && text(events[0].data) === medium);
    assert.ok(events[1].type === 'message' && events[1].binary && events[1].data.length === 70000 && events[1].data.every((b) => b === 7));
  });
  test('non-minimal length encodings are accepted (a sender rule only)', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, 'abc', { lengthForm: 16 }), rawFrame(Opcode.Text, 'def', { lengthForm: 64 }));
    assert.deepEqual(messages(q.take()), [['abc', false], ['def', false]]);
  });
  test('a frame split at every byte boundary', () => {
    const frame = rawFrame(Opcode.Text, 'Hello, world, a longer frame than a header');
    for (let cut = 0; cut <= frame.length; cut++) {
      const { c, q } = open();
      feed(c, frame.subarray(0, cut));
      if (cut < frame.length) assert.deepEqual(q.take(), []);
      feed(c, frame.subarray(cut));
      assert.deepEqual(messages(q.take()), [['Hello, world, a longer frame than a header', false]]);
    }
  });
  test('frames fed one byte at a time', () => {
    const { c, q } = open();
    const bytes = join([rawFrame(Opcode.Text, 'ab'), rawFrame(Opcode.Binary, new Uint8Array(200).fill(1)), rawFrame(Opcode.Text, '')]);
    for (let i = 0; i < bytes.length; i++) c.receiveData(bytes.slice(i, i + 1));
    const ms = messages(q.take());
    assert.equal(ms.length, 3);
    assert.equal(ms[0][0], 'ab');
    assert.equal(ms[1][0], '01'.repeat(200));
    assert.equal(ms[2][0], '');
  });
  test('an empty chunk does nothing', () => {
    const { c, q } = open();
    c.receiveData(new Uint8Array(0));
    assert.deepEqual(q.take(), []);
  });
});

describe('fragmentation (RFC 6455 §5.4)', () => {
  test('text in three fragments', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, 'Hel', { fin: false }));
    assert.deepEqual(q.take(), []);
    feed(c, rawFrame(Opcode.Continuation, 'lo, ', { fin: false }));
    assert.deepEqual(q.take(), []);
    feed(c, rawFrame(Opcode.Continuation, 'world'));
    assert.deepEqual(messages(q.take()), [['Hello, world', false]]);
  });
  test('binary in fragments, including empty ones', () => {
    const { c, q } = open();
    feed(
      c,
      rawFrame(Opcode.Binary, new Uint8Array(0), { fin: false }),
      rawFrame(Opcode.Continuation, Uint8Array.of(1, 2), { fin: false }),
      rawFrame(Opcode.Continuation, new Uint8Array(0), { fin: false }),
      rawFrame(Opcode.Continuation, Uint8Array.of(3)),
    );
    assert.deepEqual(messages(q.take()), [['010203', true]]);
  });
  test('a message after a fragmented one starts clean', () => {
    const { c, q } = open();
    feed(c, join([rawFrame(Opcode.Text, 'a', { fin: false }), rawFrame(Opcode.Continuation, 'b'), rawFrame(Opcode.Binary, Uint8Array.of(9)), rawFrame(Opcode.Text, 'c')]));
    assert.deepEqual(messages(q.take()), [['ab', false], ['09', true], ['c', false]]);
  });
  test('a multibyte character split across fragments', () => {
    const { c, q } = open();
    const euro = hex('e2 82 ac');
    feed(c, rawFrame(Opcode.Text, euro.subarray(0, 1), { fin: false }), rawFrame(Opcode.Continuation, euro.subarray(1)));
    assert.deepEqual(messages(q.take()), [['€', false]]);
  });
  test('ping, pong and close interleaved in a fragmented message', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, 'frag', { fin: false }), rawFrame(Opcode.Ping, 'p1'), rawFrame(Opcode.Continuation, 'ment', { fin: false }), rawFrame(Opcode.Pong, 'p2'), rawFrame(Opcode.Continuation, 'ed'));
    const events = q.take();
    assert.deepEqual(
      events.map((e) => (e.type === 'message' ? `message:${text(e.data)}` : e.type === 'ping' || e.type === 'pong' ? `${e.type}:${text(e.data)}` : e.type)),
      ['ping:p1', 'pong:p2', 'message:fragmented'],
    );
    const out = sent(c);
    assert.equal(out.length, 1);
    assert.equal(out[0].opcode, Opcode.Pong);
    assert.equal(text(out[0].payload), 'p1');
  });
  test('a close inside a fragmented message ends it: the partial message is dropped', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, 'frag', { fin: false }), rawFrame(Opcode.Close, closePayload(1000)), rawFrame(Opcode.Continuation, 'ment'));
    assert.deepEqual(q.take(), [{ type: 'close', code: 1000, reason: '' }]);
  });
  test('fragments split across chunks at every boundary', () => {
    const bytes = join([rawFrame(Opcode.Text, 'ab', { fin: false }), rawFrame(Opcode.Ping, 'x'), rawFrame(Opcode.Continuation, 'cd')]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const { c, q } = open();
      feed(c, bytes.subarray(0, cut), bytes.subarray(cut));
      const events = q.take();
      assert.deepEqual(events.map((e) => e.type), ['ping', 'message']);
      assert.ok(events[1].type === 'message' && text(events[1].data) === 'abcd');
    }
  });
});

describe('control frames (RFC 6455 §5.5)', () => {
  test('ping → pong with the same payload, and a ping event', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Ping, Uint8Array.of(1, 2, 3)));
    const events = q.take();
    assert.equal(events.length, 1);
    assert.ok(events[0].type === 'ping');
    assert.deepEqual(Array.from(events[0].data), [1, 2, 3]);
    const out = sent(c);
    assert.equal(out.length, 1);
    assert.deepEqual(out[0], { fin: true, rsv1: false, opcode: Opcode.Pong, masked: false, payload: Uint8Array.of(1, 2, 3) });
  });
  test('empty ping and ping with 125 bytes', () => {
    const { c, q } = open();
    const big = new Uint8Array(125).map((_, i) => i);
    feed(c, rawFrame(Opcode.Ping), rawFrame(Opcode.Ping, big));
    assert.deepEqual(q.take().map((e) => e.type), ['ping', 'ping']);
    const out = sent(c);
    assert.deepEqual(out.map((f) => f.payload.length), [0, 125]);
    assert.deepEqual(out[1].payload, big);
  });
  test('ping split across chunks', () => {
    const { c, q } = open();
    const frame = rawFrame(Opcode.Ping, 'abcdefghij');
    feed(c, frame.subarray(0, 3), frame.subarray(3, 9), frame.subarray(9, 12), frame.subarray(12));
    const events = q.take();
    assert.ok(events.length === 1 && events[0].type === 'ping' && text(events[0].data) === 'abcdefghij');
    assert.equal(text(sent(c)[0].payload), 'abcdefghij');
  });
  test('unsolicited pong → pong event only', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Pong, 'hb'));
    const events = q.take();
    assert.ok(events.length === 1 && events[0].type === 'pong' && text(events[0].data) === 'hb');
    assert.equal(c.dataToSend().length, 0);
  });
  test('no pong is sent once we sent a close frame, but the ping is reported', () => {
    const { c, q } = open();
    c.sendClose(1000);
    c.dataToSend();
    feed(c, rawFrame(Opcode.Ping, 'late'));
    assert.deepEqual(q.take().map((e) => e.type), ['ping']);
    assert.equal(c.dataToSend().length, 0);
  });
});

describe('closing handshake (RFC 6455 §5.5.1, §7)', () => {
  test('close from the peer → close echoed with the same code and reason, CLOSING, transport to close (server)', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Close, closePayload(1001, 'bye')));
    assert.deepEqual(q.take(), [{ type: 'close', code: 1001, reason: 'bye' }]);
    const out = sent(c);
    assert.equal(out.length, 1);
    assert.equal(out[0].opcode, Opcode.Close);
    assert.deepEqual(parseClose(out[0].payload), { code: 1001, reason: 'bye' });
    assert.equal(c.state, State.Closing);
    assert.equal(c.shouldCloseTransport, true);
    assert.equal(c.closeCode, 1001);
    assert.equal(c.closeReason, 'bye');
    assert.equal(c.closeSentCode, 1001);
    assert.equal(c.closing, true);
  });
  test('close started locally → CLOSING; then the peer close → close event, no second close, transport to close', () => {
    const { c, q } = open();
    c.sendClose(1000, 'done');
    assert.equal(c.state, State.Closing);
    assert.equal(c.closing, true);
    assert.equal(c.shouldCloseTransport, false);
    const out = sent(c);
    assert.equal(out.length, 1);
    assert.deepEqual(parseClose(out[0].payload), { code: 1000, reason: 'done' });
    // Data still arriving before the peer's close is delivered.
    feed(c, rawFrame(Opcode.Text, 'in flight'));
    assert.deepEqual(messages(q.take()), [['in flight', false]]);
    feed(c, rawFrame(Opcode.Close, closePayload(1000)));
    assert.deepEqual(q.take(), [{ type: 'close', code: 1000, reason: '' }]);
    assert.equal(c.dataToSend().length, 0);
    assert.equal(c.shouldCloseTransport, true);
    assert.equal(c.state, State.Closing);
  });
  test('client: the server closes first → echo, but the client waits for the server to close TCP', () => {
    const q = new EventQueue();
    const c = new Connection({ side: 'client' }, q);
    c.receiveData(serverFrame(Opcode.Close, closePayload(1000)));
    assert.deepEqual(q.take(), [{ type: 'close', code: 1000, reason: '' }]);
    const out = sent(c);
    assert.equal(out.length, 1);
    assert.equal(out[0].masked, true);
    assert.equal(parseClose(out[0].payload).code, 1000);
    assert.equal(c.shouldCloseTransport, false);
  });
  test('empty close → 1005 reported and an empty close echoed', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Close));
    assert.deepEqual(q.take(), [{ type: 'close', code: CloseCode.NoStatusReceived, reason: '' }]);
    const out = sent(c);
    assert.equal(out.length, 1);
    assert.equal(out[0].opcode, Opcode.Close);
    assert.equal(out[0].payload.length, 0);
    assert.equal(c.closeCode, 1005);
    assert.equal(c.closeSentCode, 1005);
  });
  test('close with a 1-byte payload → 1002', () => {
    expectFailure([rawFrame(Opcode.Close, Uint8Array.of(0x03))], 1002, 'ERR_INVALID_CLOSE_PAYLOAD');
  });
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    test(`invalid close code ${code} → 1002`, () => {
      expectFailure([rawFrame(Opcode.Close, closePayload(code))], 1002, 'ERR_INVALID_CLOSE_CODE');
    });
  }
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
    test(`valid close code ${code} is accepted and echoed`, () => {
      const { c, q } = open();
      feed(c, rawFrame(Opcode.Close, closePayload(code, 'r')));
      assert.deepEqual(q.take(), [{ type: 'close', code, reason: 'r' }]);
      assert.equal(parseClose(sent(c)[0].payload).code, code);
    });
  }
  test('close reason of 123 bytes with multibyte characters', () => {
    const { c, q } = open();
    const reason = 'é'.repeat(61) + 'x';
    feed(c, rawFrame(Opcode.Close, closePayload(1000, reason)));
    assert.deepEqual(q.take(), [{ type: 'close', code: 1000, reason }]);
  });
  test('close reason keeps a leading U+FEFF', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Close, join([closePayload(1000), hex('ef bb bf 61')])));
    assert.deepEqual(q.take(), [{ type: 'close', code: 1000, reason: '\ufeffa' }]);
  });
  test('close reason with invalid UTF-8 → 1007', () => {
    expectFailure([rawFrame(Opcode.Close, join([closePayload(1000), hex('ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64')]))], 1007, 'ERR_INVALID_UTF8');
  });
  test('close reason ending mid-sequence → 1007', () => {
    expectFailure([rawFrame(Opcode.Close, join([closePayload(1000), hex('61 e2 82')]))], 1007, 'ERR_INVALID_UTF8');
  });
  test('data after a close frame is ignored (same chunk and later chunks)', () => {
    const { c, q } = open();
    feed(c, join([rawFrame(Opcode.Close, closePayload(1000)), rawFrame(Opcode.Text, 'after'), rawFrame(Opcode.Ping, 'p')]));
    assert.deepEqual(q.take(), [{ type: 'close', code: 1000, reason: '' }]);
    feed(c, rawFrame(Opcode.Text, 'later'), hex('ff ff ff'));
    assert.deepEqual(q.take(), []);
    assert.equal(sent(c).length, 1, 'only the echoed close');
  });
  test('an invalid close after we started closing fails without a second close frame', () => {
    const { c, q } = open();
    c.sendClose(1000);
    assert.equal(sent(c).length, 1);
    feed(c, rawFrame(Opcode.Close, closePayload(999)));
    const events = q.take();
    assert.ok(events.length === 1 && events[0].type === 'error' && events[0].error.code === 'ERR_INVALID_CLOSE_CODE');
    assert.equal(c.dataToSend().length, 0);
    assert.equal(c.shouldCloseTransport, true);
  });
  test('receiveEof without a close frame → CLOSED, closeCode 1006', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, 'partial', { fin: false }));
    c.receiveEof();
    assert.equal(c.state, State.Closed);
    assert.equal(c.closeCode, CloseCode.AbnormalClosure);
    assert.deepEqual(q.take(), []);
    feed(c, rawFrame(Opcode.Continuation, 'more'));
    assert.deepEqual(q.take(), []);
    assert.throws(() => c.sendText('x'), InvalidStateError);
    assert.throws(() => c.sendPing(), InvalidStateError);
    assert.throws(() => c.sendClose(), InvalidStateError);
  });
  test('receiveEof after the closing handshake keeps the received code', () => {
    const { c } = open();
    feed(c, rawFrame(Opcode.Close, closePayload(4000, 'app')));
    c.receiveEof();
    assert.equal(c.state, State.Closed);
    assert.equal(c.closeCode, 4000);
    assert.equal(c.closeReason, 'app');
  });
});

describe('protocol violations → fail the connection (RFC 6455 §7.1.7)', () => {
  test('RSV1 without a negotiated extension → 1002', () => {
    expectFailure([rawFrame(Opcode.Text, 'x', { rsv1: true })], 1002, 'ERR_RESERVED_BITS');
  });
  test('RSV2 → 1002', () => {
    expectFailure([rawFrame(Opcode.Text, 'x', { rsv2: true })], 1002, 'ERR_RESERVED_BITS');
  });
  test('RSV3 → 1002', () => {
    expectFailure([rawFrame(Opcode.Binary, 'x', { rsv3: true })], 1002, 'ERR_RESERVED_BITS');
  });
  test('RSV2 on a ping → 1002', () => {
    expectFailure([rawFrame(Opcode.Ping, 'x', { rsv2: true })], 1002, 'ERR_RESERVED_BITS');
  });
  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    test(`reserved opcode 0x${opcode.toString(16)} → 1002`, () => {
      expectFailure([rawFrame(opcode, 'x')], 1002, 'ERR_RESERVED_OPCODE');
    });
    test(`reserved opcode 0x${opcode.toString(16)} inside a fragmented message → 1002, nothing delivered`, () => {
      const { c, q } = open();
      feed(c, rawFrame(Opcode.Text, 'a', { fin: false }), rawFrame(opcode, 'x'));
      assertFailed(c, q, 1002, 'ERR_RESERVED_OPCODE');
    });
  }
  for (const opcode of [Opcode.Ping, Opcode.Pong, Opcode.Close]) {
    test(`fragmented control frame (opcode ${opcode}) → 1002`, () => {
      expectFailure([rawFrame(opcode, '', { fin: false })], 1002, 'ERR_FRAGMENTED_CONTROL');
    });
    test(`control frame (opcode ${opcode}) with 126 bytes → 1002, at the header`, () => {
      const frame = rawFrame(opcode, new Uint8Array(126));
      expectFailure([frame.subarray(0, 2)], 1002, 'ERR_CONTROL_TOO_LONG');
    });
    test(`control frame (opcode ${opcode}) with a 64-bit length → 1002`, () => {
      expectFailure([rawFrame(opcode, new Uint8Array(3), { lengthForm: 64 })], 1002, 'ERR_CONTROL_TOO_LONG');
    });
  }
  test('continuation without a message to continue → 1002', () => {
    expectFailure([rawFrame(Opcode.Continuation, 'x')], 1002, 'ERR_UNEXPECTED_CONTINUATION');
  });
  test('continuation after a complete message → 1002', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, 'a'));
    assert.equal(q.take().length, 1);
    feed(c, rawFrame(Opcode.Continuation, 'b'));
    assertFailed(c, q, 1002, 'ERR_UNEXPECTED_CONTINUATION');
  });
  test('continuation after a fragmented message ended → 1002', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, 'a', { fin: false }), rawFrame(Opcode.Continuation, 'b'));
    assert.equal(q.take().length, 1);
    feed(c, rawFrame(Opcode.Continuation, 'c'));
    assertFailed(c, q, 1002, 'ERR_UNEXPECTED_CONTINUATION');
  });
  for (const [first, second] of [
    [Opcode.Text, Opcode.Text],
    [Opcode.Text, Opcode.Binary],
    [Opcode.Binary, Opcode.Text],
    [Opcode.Binary, Opcode.Binary],
  ]) {
    test(`new data frame (${second}) inside a fragmented message (${first}) → 1002`, () => {
      expectFailure([rawFrame(first, 'a', { fin: false }), rawFrame(second, 'b')], 1002, 'ERR_EXPECTED_CONTINUATION');
    });
  }
  test('unmasked frame at a server → 1002', () => {
    expectFailure([rawFrame(Opcode.Text, 'x', { mask: false })], 1002, 'ERR_MASK_REQUIRED');
  });
  test('unmasked control frame at a server → 1002', () => {
    expectFailure([rawFrame(Opcode.Ping, 'x', { mask: false })], 1002, 'ERR_MASK_REQUIRED');
  });
  test('unmasked frame at a server fails after its second byte', () => {
    expectFailure([rawFrame(Opcode.Text, 'xyz', { mask: false }).subarray(0, 1), rawFrame(Opcode.Text, 'xyz', { mask: false }).subarray(1, 2)], 1002, 'ERR_MASK_REQUIRED');
  });
  test('masked frame at a client → 1002', () => {
    const q = new EventQueue();
    const c = new Connection({ side: 'client' }, q);
    c.receiveData(rawFrame(Opcode.Text, 'x'));
    assertFailed(c, q, 1002, 'ERR_MASK_FORBIDDEN');
  });
  test('64-bit length with the most significant bit set → 1002', () => {
    expectFailure([rawFrame(Opcode.Binary, new Uint8Array(0), { lengthForm: 64, length64Bytes: [0x80, 0, 0, 0, 0, 0, 0, 1] })], 1002, 'ERR_INVALID_LENGTH');
  });
  test('64-bit length 2^63-ish split across chunks → 1002', () => {
    const frame = rawFrame(Opcode.Binary, new Uint8Array(0), { lengthForm: 64, length64Bytes: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] });
    expectFailure([frame.subarray(0, 3), frame.subarray(3, 7), frame.subarray(7)], 1002, 'ERR_INVALID_LENGTH');
  });
  test('huge 64-bit length (2^62) → 1009 at the header with default limits', () => {
    expectFailure([rawFrame(Opcode.Binary, new Uint8Array(0), { lengthForm: 64, length64Bytes: [0x40, 0, 0, 0, 0, 0, 0, 0] })], 1009, 'ERR_FRAME_TOO_BIG');
  });
  test('frame over maxFrameSize → 1009 at the header, before the payload', () => {
    const frame = rawFrame(Opcode.Binary, new Uint8Array(11));
    expectFailure([frame.subarray(0, 6)], 1009, 'ERR_FRAME_TOO_BIG', { maxFrameSize: 10 });
  });
  test('frame at exactly maxFrameSize is accepted', () => {
    const { c, q } = open({ maxFrameSize: 10 });
    feed(c, rawFrame(Opcode.Binary, new Uint8Array(10)));
    assert.equal(q.take().length, 1);
  });
  test('64-bit frame over maxFrameSize → 1009 at the header', () => {
    const frame = rawFrame(Opcode.Binary, new Uint8Array(0), { declaredLength: 2 ** 32 });
    expectFailure([frame], 1009, 'ERR_FRAME_TOO_BIG', { maxFrameSize: 1 << 20 });
  });
  test('single frame over maxMessageSize → 1009 at the header', () => {
    const frame = rawFrame(Opcode.Text, 'x'.repeat(200));
    expectFailure([frame.subarray(0, 8)], 1009, 'ERR_FRAME_TOO_BIG', { maxMessageSize: 100 });
  });
  test('message over maxMessageSize across fragments → 1009 at the header of the fragment that crosses it', () => {
    const { c, q } = open({ maxMessageSize: 10, maxFrameSize: 8 });
    feed(c, rawFrame(Opcode.Binary, new Uint8Array(6), { fin: false }), rawFrame(Opcode.Continuation, new Uint8Array(4), { fin: false }));
    assert.deepEqual(q.take(), []);
    assert.equal(c.dataToSend().length, 0);
    // 6 + 4 = 10 is fine; one more byte is not. Only the header of the next frame is sent.
    feed(c, rawFrame(Opcode.Continuation, new Uint8Array(1)).subarray(0, 6));
    assertFailed(c, q, 1009, 'ERR_MESSAGE_TOO_BIG');
  });
  test('message of exactly maxMessageSize across fragments is accepted; the count restarts per message', () => {
    const { c, q } = open({ maxMessageSize: 10 });
    for (let i = 0; i < 3; i++) {
      feed(c, rawFrame(Opcode.Text, 'abcde', { fin: false }), rawFrame(Opcode.Ping, 'p'), rawFrame(Opcode.Continuation, 'fghij'));
    }
    assert.deepEqual(q.take().map((e) => e.type), ['ping', 'message', 'ping', 'message', 'ping', 'message']);
  });
  test('control frames do not count toward maxMessageSize', () => {
    const { c, q } = open({ maxMessageSize: 4, maxFrameSize: 125 });
    feed(c, rawFrame(Opcode.Ping, 'longer than four'), rawFrame(Opcode.Text, 'abcd'));
    assert.deepEqual(q.take().map((e) => e.type), ['ping', 'message']);
  });
  test('1009 wins over a later UTF-8 problem: the header is checked first', () => {
    expectFailure([rawFrame(Opcode.Text, hex('ff ff ff ff'))], 1009, 'ERR_FRAME_TOO_BIG', { maxFrameSize: 3 });
  });
  test('after a failure, the close frame carries a reason that fits', () => {
    const { c, q } = open();
    feed(c, rawFrame(5, 'x'));
    const events = q.take();
    assert.equal(events.length, 1);
    const [frame] = sent(c);
    const { code, reason } = parseClose(frame.payload);
    assert.equal(code, 1002);
    assert.ok(frame.payload.length <= 125);
    assert.equal(typeof reason, 'string');
  });
  test('events before the bad frame in the same chunk are delivered, nothing after', () => {
    const { c, q } = open();
    feed(c, join([rawFrame(Opcode.Text, 'ok'), rawFrame(Opcode.Ping, 'p'), rawFrame(7, 'bad'), rawFrame(Opcode.Text, 'never')]));
    const events = q.take();
    assert.deepEqual(events.map((e) => e.type), ['message', 'ping', 'error']);
    const out = sent(c);
    assert.deepEqual(out.map((f) => f.opcode), [Opcode.Pong, Opcode.Close]);
    assert.equal(parseClose(out[1].payload).code, 1002);
  });
});

describe('UTF-8 in text messages (RFC 6455 §8.1)', () => {
  const bad = hex('ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64');
  test('invalid UTF-8 in a single text frame → 1007', () => {
    expectFailure([rawFrame(Opcode.Text, bad)], 1007, 'ERR_INVALID_UTF8');
  });
  test('invalid UTF-8 in a single text frame that arrives in pieces fails at the piece holding the bad byte', () => {
    const frame = rawFrame(Opcode.Text, bad);
    const { c, q } = open();
    const header = 6;
    feed(c, frame.subarray(0, header + 11));
    assert.deepEqual(q.take(), []);
    feed(c, frame.subarray(header + 11, header + 13)); // ED A0: the A0 is invalid
    assertFailed(c, q, 1007, 'ERR_INVALID_UTF8');
  });
  test('invalid UTF-8 in the first fragment fails at once, before later fragments arrive', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, bad, { fin: false }));
    assertFailed(c, q, 1007, 'ERR_INVALID_UTF8');
  });
  test('invalid byte in a continuation frame fails at that frame', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, 'ok', { fin: false }));
    assert.deepEqual(q.take(), []);
    feed(c, rawFrame(Opcode.Continuation, hex('ff'), { fin: false }));
    assertFailed(c, q, 1007, 'ERR_INVALID_UTF8');
  });
  test('a sequence split across fragments that turns out invalid → 1007 at the second fragment', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, hex('61 ed'), { fin: false }));
    assert.deepEqual(q.take(), []);
    feed(c, rawFrame(Opcode.Continuation, hex('a0 80')));
    assertFailed(c, q, 1007, 'ERR_INVALID_UTF8');
  });
  test('a valid sequence split across three fragments is accepted', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Text, hex('f0'), { fin: false }), rawFrame(Opcode.Continuation, hex('9f 98'), { fin: false }), rawFrame(Opcode.Continuation, hex('80')));
    assert.deepEqual(messages(q.take()), [['😀', false]]);
  });
  test('a text message ending mid-sequence → 1007 (fragmented)', () => {
    expectFailure([rawFrame(Opcode.Text, hex('61 e2'), { fin: false }), rawFrame(Opcode.Continuation, hex('82'))], 1007, 'ERR_INVALID_UTF8');
  });
  test('a text message ending mid-sequence → 1007 (single frame)', () => {
    expectFailure([rawFrame(Opcode.Text, hex('61 f0 9f 98'))], 1007, 'ERR_INVALID_UTF8');
  });
  test('a text message ending mid-sequence → 1007 (single frame in pieces)', () => {
    const frame = rawFrame(Opcode.Text, hex('61 f0 9f 98'));
    expectFailure([frame.subarray(0, 7), frame.subarray(7)], 1007, 'ERR_INVALID_UTF8');
  });
  test('a text message ending mid-sequence with an empty final fragment → 1007', () => {
    expectFailure([rawFrame(Opcode.Text, hex('e2 82'), { fin: false }), rawFrame(Opcode.Continuation, '')], 1007, 'ERR_INVALID_UTF8');
  });
  test('binary messages are not checked', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Binary, hex('ff fe')), rawFrame(Opcode.Binary, hex('ed a0'), { fin: false }), rawFrame(Opcode.Continuation, hex('80')));
    assert.deepEqual(messages(q.take()), [['fffe', true], ['eda080', true]]);
  });
  test('ping and pong payloads are not checked', () => {
    const { c, q } = open();
    feed(c, rawFrame(Opcode.Ping, hex('ff')), rawFrame(Opcode.Pong, hex('c0')));
    assert.deepEqual(q.take().map((e) => e.type), ['ping', 'pong']);
  });
  test('the validateUtf8 option is used on the fast lane only', () => {
    const calls: string[] = [];
    const { c, q } = open({
      validateUtf8: (data) => {
        calls.push(text(data));
        return !text(data).includes('reject');
      },
    });
    feed(c, rawFrame(Opcode.Text, 'fast'));
    assert.deepEqual(calls, ['fast']);
    assert.deepEqual(messages(q.take()), [['fast', false]]);
    // Fragmented and split messages go through the incremental validator.
    feed(c, rawFrame(Opcode.Text, 'frag', { fin: false }), rawFrame(Opcode.Continuation, 'ment'));
    const split = rawFrame(Opcode.Text, 'split');
    feed(c, split.subarray(0, 8), split.subarray(8));
    feed(c, rawFrame(Opcode.Binary, 'bin'));
    assert.deepEqual(calls, ['fast']);
    assert.deepEqual(messages(q.take()), [['fragment', false], ['split', false], ['62696e', true]]);
    // Whatever it says on the fast lane is what counts.
    feed(c, rawFrame(Opcode.Text, 'reject me'));
    assertFailed(c, q, 1007, 'ERR_INVALID_UTF8');
  });
});

describe('client side', () => {
  function client(): { c: Connection; q: EventQueue } {
    const q = new EventQueue();
    return { c: new Connection({ side: 'client' }, q), q };
  }
  test('receives unmasked server frames', () => {
    const { c, q } = client();
    c.receiveData(join([serverFrame(Opcode.Text, 'hi'), serverFrame(Opcode.Binary, Uint8Array.of(1), { fin: false }), serverFrame(Opcode.Continuation, Uint8Array.of(2))]));
    assert.deepEqual(messages(q.take()), [['hi', false], ['0102', true]]);
  });
  test('sends masked frames that decode to what was sent', () => {
    const { c } = client();
    c.sendText('héllo');
    c.sendBinary(Uint8Array.of(1, 2, 3));
    c.sendPing(Uint8Array.of(9));
    c.sendPong(Uint8Array.of(8));
    c.sendBinary(new Uint8Array(70000).fill(5));
    c.sendClose(1000, 'bye');
    const out = sent(c);
    assert.ok(out.every((f) => f.masked));
    assert.deepEqual(out.map((f) => f.opcode), [Opcode.Text, Opcode.Binary, Opcode.Ping, Opcode.Pong, Opcode.Binary, Opcode.Close]);
    assert.equal(text(out[0].payload), 'héllo');
    assert.deepEqual(Array.from(out[1].payload), [1, 2, 3]);
    assert.deepEqual(Array.from(out[2].payload), [9]);
    assert.deepEqual(Array.from(out[3].payload), [8]);
    assert.ok(out[4].payload.length === 70000 && out[4].payload.every((b) => b === 5));
    assert.deepEqual(parseClose(out[5].payload), { code: 1000, reason: 'bye' });
  });
  test('the caller payload is not modified by masking', () => {
    const { c } = client();
    const data = new Uint8Array(100).fill(0x42);
    c.sendBinary(data);
    assert.ok(data.every((b) => b === 0x42));
  });
  test('pong to a server ping is masked', () => {
    const { c } = client();
    c.receiveData(serverFrame(Opcode.Ping, 'abc'));
    const out = sent(c);
    assert.ok(out.length === 1 && out[0].masked && out[0].opcode === Opcode.Pong && text(out[0].payload) === 'abc');
  });
  test('an empty server frame split after its 2-byte header is processed at once', () => {
    // The 2-byte header of an unmasked empty frame is complete after its second byte.
    const { c, q } = client();
    c.receiveData(Uint8Array.of(0x88));
    c.receiveData(Uint8Array.of(0x00));
    assert.deepEqual(q.take(), [{ type: 'close', code: 1005, reason: '' }]);
    const { c: c2, q: q2 } = client();
    c2.receiveData(Uint8Array.of(0x81));
    c2.receiveData(Uint8Array.of(0x00));
    assert.deepEqual(messages(q2.take()), [['', false]]);
    const { c: c3, q: q3 } = client();
    c3.receiveData(Uint8Array.of(0x89));
    c3.receiveData(Uint8Array.of(0x00));
    assert.deepEqual(q3.take().map((e) => e.type), ['ping']);
  });
  test('server frames fed one byte at a time', () => {
    const { c, q } = client();
    const bytes = join([serverFrame(Opcode.Text, ''), serverFrame(Opcode.Ping), serverFrame(Opcode.Text, 'a'), serverFrame(Opcode.Binary, new Uint8Array(300)), serverFrame(Opcode.Close)]);
    for (let i = 0; i < bytes.length; i++) c.receiveData(bytes.slice(i, i + 1));
    assert.deepEqual(q.take().map((e) => e.type), ['message', 'ping', 'message', 'message', 'close']);
  });
});

describe('sending', () => {
  test('server frames are unmasked and decode to what was sent', () => {
    const { c } = open();
    c.sendText('abc');
    c.sendText(Uint8Array.of(0x64));
    c.sendBinary(Uint8Array.of(1));
    c.sendPing();
    c.sendPong(Uint8Array.of(2));
    const out = sent(c);
    assert.ok(out.every((f) => !f.masked && f.fin && !f.rsv1));
    assert.deepEqual(out.map((f) => [f.opcode, Array.from(f.payload)]), [
      [Opcode.Text, [0x61, 0x62, 0x63]],
      [Opcode.Text, [0x64]],
      [Opcode.Binary, [1]],
      [Opcode.Ping, []],
      [Opcode.Pong, [2]],
    ]);
  });
  test('server sends above 16 KiB are two chunks: header, then the same payload object', () => {
    const { c } = open();
    const payload = new Uint8Array(16 * 1024 + 1).fill(3);
    c.sendBinary(payload);
    const chunks = c.dataToSend();
    assert.equal(chunks.length, 2);
    assert.equal(chunks[1], payload);
    assert.deepEqual(Array.from(chunks[0]), [0x82, 0x7e, 0x40, 0x01]);
    // Small payloads are copied behind their header: one chunk.
    const small = new Uint8Array(100);
    c.sendBinary(small);
    const chunks2 = c.dataToSend();
    assert.equal(chunks2.length, 1);
    assert.notEqual(chunks2[0], small);
  });
  test('dataToSend empties the queue; hasDataToSend tracks it', () => {
    const { c } = open();
    assert.equal(c.hasDataToSend, false);
    c.sendText('a');
    assert.equal(c.hasDataToSend, true);
    assert.equal(c.dataToSend().length, 1);
    assert.equal(c.hasDataToSend, false);
    assert.equal(c.dataToSend().length, 0);
  });
  test('sendText with fin:false, then sendContinuation; control frames may interleave', () => {
    const { c } = open();
    c.sendText('ab', { fin: false });
    assert.throws(() => c.sendText('x'), InvalidStateError);
    assert.throws(() => c.sendBinary(Uint8Array.of(1)), InvalidStateError);
    c.sendPing(Uint8Array.of(7));
    c.sendContinuation(Uint8Array.of(0x63), false);
    c.sendContinuation(Uint8Array.of(0x64), true);
    assert.throws(() => c.sendContinuation(Uint8Array.of(0x65), true), InvalidStateError);
    c.sendText('next');
    const out = sent(c);
    assert.deepEqual(out.map((f) => [f.opcode, f.fin, text(f.payload)]), [
      [Opcode.Text, false, 'ab'],
      [Opcode.Ping, true, '\x07'],
      [Opcode.Continuation, false, 'c'],
      [Opcode.Continuation, true, 'd'],
      [Opcode.Text, true, 'next'],
    ]);
  });
  test('sendContinuation without a fragmented message throws', () => {
    const { c } = open();
    assert.throws(() => c.sendContinuation(Uint8Array.of(1), true), InvalidStateError);
  });
  test('sending after sendClose throws InvalidStateError; sendClose twice throws', () => {
    const { c } = open();
    c.sendClose();
    assert.equal(c.closeSentCode, 1005);
    assert.equal(sent(c)[0].payload.length, 0);
    assert.throws(() => c.sendText('x'), InvalidStateError);
    assert.throws(() => c.sendBinary(Uint8Array.of(1)), InvalidStateError);
    assert.throws(() => c.sendPing(), InvalidStateError);
    assert.throws(() => c.sendPong(), InvalidStateError);
    assert.throws(() => c.sendClose(1000), InvalidStateError);
  });
  test('sending after receiving a close throws InvalidStateError', () => {
    const { c } = open();
    feed(c, rawFrame(Opcode.Close, closePayload(1000)));
    assert.throws(() => c.sendText('x'), InvalidStateError);
    assert.throws(() => c.sendPing(), InvalidStateError);
    assert.throws(() => c.sendClose(1000), InvalidStateError);
  });
  test('sending after a failure throws InvalidStateError', () => {
    const { c } = open();
    feed(c, rawFrame(3, ''));
    assert.throws(() => c.sendText('x'), InvalidStateError);
  });
  test('a fragmented send in progress cannot continue after close', () => {
    const { c } = open();
    c.sendText('a', { fin: false });
    c.sendClose(1000);
    assert.throws(() => c.sendContinuation(Uint8Array.of(1), true), InvalidStateError);
  });
  test('invalid arguments: control payload > 125, bad close code, reason without code, reason > 123 bytes', () => {
    const { c } = open();
    assert.throws(() => c.sendPing(new Uint8Array(126)), RangeError);
    assert.throws(() => c.sendPong(new Uint8Array(126)), RangeError);
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 2999, 5000]) assert.throws(() => c.sendClose(code), RangeError, String(code));
    assert.throws(() => c.sendClose(undefined, 'why'), RangeError);
    assert.throws(() => c.sendClose(1000, 'é'.repeat(62)), RangeError);
    assert.equal(c.dataToSend().length, 0);
    assert.equal(c.state, State.Open);
    c.sendPing(new Uint8Array(125));
    c.sendClose(1000, 'é'.repeat(61) + 'x');
    assert.equal(sent(c).length, 2);
  });
  test('fail() sends one close frame and ignores later input', () => {
    const { c, q } = open();
    c.fail(1011, 'oops');
    const out = sent(c);
    assert.deepEqual(parseClose(out[0].payload), { code: 1011, reason: 'oops' });
    assert.equal(c.shouldCloseTransport, true);
    feed(c, rawFrame(Opcode.Text, 'x'));
    assert.deepEqual(q.take(), []);
    c.fail(1002);
    assert.equal(c.dataToSend().length, 0);
  });
});

describe('CONNECTING state', () => {
  test('refuses to send and receive until accept()', () => {
    const { c, q } = open({ connecting: true });
    assert.equal(c.state, State.Connecting);
    assert.throws(() => c.receiveData(rawFrame(Opcode.Text, 'x')), InvalidStateError);
    assert.throws(() => c.sendText('x'), InvalidStateError);
    assert.throws(() => c.sendBinary(Uint8Array.of(1)), InvalidStateError);
    assert.throws(() => c.sendPing(), InvalidStateError);
    assert.throws(() => c.sendPong(), InvalidStateError);
    assert.throws(() => c.sendClose(1000), InvalidStateError);
    assert.equal(c.dataToSend().length, 0);
    c.accept();
    assert.equal(c.state, State.Open);
    assert.throws(() => c.accept(), InvalidStateError);
    feed(c, rawFrame(Opcode.Text, 'x'));
    assert.deepEqual(messages(q.take()), [['x', false]]);
    c.sendText('y');
    assert.equal(sent(c).length, 1);
  });
  test('fail() while CONNECTING queues nothing; receiveEof closes', () => {
    const { c } = open({ connecting: true });
    c.fail(1002);
    assert.equal(c.dataToSend().length, 0);
    assert.equal(c.shouldCloseTransport, true);
    c.receiveEof();
    assert.equal(c.state, State.Closed);
    assert.equal(c.closeCode, 1006);
  });
});

describe('with a negotiated codec (RFC 7692 §6)', () => {
  /** An identity "codec" that records calls, to test how the engine uses RSV1. */
  class FakeCodec implements MessageCodec {
    readonly threshold = 4;
    readonly outboundContextTakeover = false;
    readonly shareKey = 'fake';
    calls: Array<[string, boolean, number]> = [];
    /** Output of the current message: `maxSize` bounds the whole message (MessageCodec contract). */
    private output = 0;
    decompress(data: Uint8Array, fin: boolean, maxSize: number): Uint8Array {
      this.calls.push([text(data), fin, maxSize]);
      this.output += data.length;
      if (this.output > maxSize) throw new ProtocolError('ERR_MESSAGE_TOO_BIG', CloseCode.MessageTooBig, 'too big');
      if (fin) this.output = 0;
      return data.slice();
    }
    compress(data: Uint8Array): Uint8Array {
      return data.slice().reverse();
    }
    close(): void {}
  }
  test('RSV1 on the first frame: every frame of the message is decompressed', () => {
    const codec = new FakeCodec();
    const { c, q } = open({ codec, maxMessageSize: 100 });
    feed(c, rawFrame(Opcode.Text, 'ab', { rsv1: true, fin: false }), rawFrame(Opcode.Continuation, 'cd'));
    assert.deepEqual(messages(q.take()), [['abcd', false]]);
    assert.deepEqual(codec.calls, [
      ['ab', false, 100],
      ['cd', true, 100], // the whole message's limit: the codec counts its own output
    ]);
  });
  test('uncompressed messages bypass the codec', () => {
    const codec = new FakeCodec();
    const { c, q } = open({ codec });
    feed(c, rawFrame(Opcode.Text, 'plain'));
    assert.deepEqual(messages(q.take()), [['plain', false]]);
    assert.deepEqual(codec.calls, []);
  });
  test('RSV1 on a continuation frame → 1002', () => {
    expectFailure([rawFrame(Opcode.Text, 'a', { rsv1: true, fin: false }), rawFrame(Opcode.Continuation, 'b', { rsv1: true })], 1002, 'ERR_RESERVED_BITS', { codec: new FakeCodec() });
  });
  test('RSV1 on a control frame → 1002', () => {
    expectFailure([rawFrame(Opcode.Ping, 'a', { rsv1: true })], 1002, 'ERR_RESERVED_BITS', { codec: new FakeCodec() });
  });
  test('the codec enforcing maxMessageSize → 1009', () => {
    expectFailure([rawFrame(Opcode.Binary, 'abcdef', { rsv1: true, fin: false }), rawFrame(Opcode.Continuation, 'ghijk')], 1009, 'ERR_MESSAGE_TOO_BIG', { codec: new FakeCodec(), maxMessageSize: 10 });
  });
  test('decompressed text is UTF-8 checked → 1007', () => {
    expectFailure([rawFrame(Opcode.Text, hex('ff'), { rsv1: true })], 1007, 'ERR_INVALID_UTF8', { codec: new FakeCodec() });
  });
  test('sends at or above the threshold are compressed with RSV1; fragments and compress:false are not', () => {
    const codec = new FakeCodec();
    const { c } = open({ codec });
    c.sendText('abcd');
    c.sendText('abc');
    c.sendText('abcd', { compress: false });
    c.sendText('abcd', { fin: false });
    c.sendContinuation(Uint8Array.of(0x65), true);
    const out = sent(c);
    assert.deepEqual(out.map((f) => [f.rsv1, text(f.payload)]), [
      [true, 'dcba'],
      [false, 'abc'],
      [false, 'abcd'],
      [false, 'abcd'],
      [false, 'e'],
    ]);
  });
});
