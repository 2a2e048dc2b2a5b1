// The engine options the ws-compatible module needs: `autoPong` (pings reported, not answered)
// and `skipUtf8Validation` (text and close reasons unchecked), on both the fast lane (a whole
// message in one chunk) and the incremental one (fragments, pieces), plus `sendingFragment`, a
// client's own masking keys (`maskingKeys`, ws's generateMask) and the count limits
// `maxFragments` / `maxFrameChunks` (ws 8.23's maxFragments / maxBufferedChunks).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection, EventQueue, Opcode, type ConnectionOptions } from '../../src/protocol/index.js';
import { closePayload, decodeFrames, join, parseClose, rawFrame, text } from './engine-helpers.js';

const INVALID = Uint8Array.of(0x66, 0xff, 0x6f); // "f", a byte never valid in UTF-8, "o"

function server(options: Partial<ConnectionOptions> = {}): { conn: Connection; events: EventQueue } {
  const events = new EventQueue();
  return { conn: new Connection({ side: 'server', ...options }, events), events };
}

function sentOpcodes(conn: Connection): number[] {
  return decodeFrames(join(conn.dataToSend())).map((frame) => frame.opcode);
}

describe('autoPong', () => {
  test('default: a ping is answered with a pong carrying its data, and reported', () => {
    const { conn, events } = server();
    conn.receiveData(rawFrame(Opcode.Ping, 'hi'));
    const frames = decodeFrames(join(conn.dataToSend()));
    assert.deepEqual(frames.map((f) => [f.opcode, text(f.payload)]), [[Opcode.Pong, 'hi']]);
    assert.deepEqual(events.take().map((e) => e.type), ['ping']);
  });

  test('false: the ping is reported and nothing is queued', () => {
    const { conn, events } = server({ autoPong: false });
    conn.receiveData(rawFrame(Opcode.Ping, 'hi'));
    assert.equal(conn.hasDataToSend, false);
    const [event] = events.take();
    assert.equal(event?.type, 'ping');
    assert.equal(event.type === 'ping' && text(event.data), 'hi');
  });

  test('false: the host can still answer with sendPong', () => {
    const { conn } = server({ autoPong: false });
    conn.receiveData(rawFrame(Opcode.Ping, 'x'));
    conn.sendPong(new TextEncoder().encode('x'));
    assert.deepEqual(sentOpcodes(conn), [Opcode.Pong]);
  });
});

describe('skipUtf8Validation', () => {
  test('default: invalid UTF-8 in a whole text message fails with 1007', () => {
    const { conn, events } = server();
    conn.receiveData(rawFrame(Opcode.Text, INVALID));
    const [event] = events.take();
    assert.equal(event?.type, 'error');
    assert.equal(event.type === 'error' && event.error.closeCode, 1007);
  });

  test('true: a whole text message with invalid UTF-8 is delivered as is', () => {
    const { conn, events } = server({ skipUtf8Validation: true });
    conn.receiveData(rawFrame(Opcode.Text, INVALID));
    const [event] = events.take();
    assert.equal(event?.type, 'message');
    assert.deepEqual(event.type === 'message' && [...event.data], [...INVALID]);
    assert.equal(conn.hasDataToSend, false);
  });

  test('true: a fragmented text message with invalid UTF-8 is delivered as is', () => {
    const { conn, events } = server({ skipUtf8Validation: true });
    conn.receiveData(rawFrame(Opcode.Text, INVALID.subarray(0, 2), { fin: false }));
    conn.receiveData(rawFrame(Opcode.Continuation, INVALID.subarray(2)));
    const [event] = events.take();
    assert.equal(event?.type, 'message');
    assert.deepEqual(event.type === 'message' && [...event.data], [...INVALID]);
  });

  test('true: a text message that ends inside a sequence is delivered too', () => {
    const { conn, events } = server({ skipUtf8Validation: true });
    const truncated = Uint8Array.of(0x61, 0xe2, 0x82); // "a" and 2 of the 3 bytes of "€"
    const frame = rawFrame(Opcode.Text, truncated);
    // In two pieces, so the incremental lane runs.
    conn.receiveData(frame.slice(0, frame.length - 1));
    conn.receiveData(frame.slice(frame.length - 1));
    const [event] = events.take();
    assert.equal(event?.type, 'message');
    assert.deepEqual(event.type === 'message' && [...event.data], [...truncated]);
  });

  test('default: the incremental lane still fails fast, at the first bad fragment', () => {
    const { conn, events } = server();
    conn.receiveData(rawFrame(Opcode.Text, INVALID, { fin: false }));
    const [event] = events.take();
    assert.equal(event?.type, 'error');
  });

  test('true: an invalid close reason is accepted and decoded with U+FFFD', () => {
    const { conn, events } = server({ skipUtf8Validation: true });
    const payload = join([closePayload(1000), INVALID]);
    conn.receiveData(rawFrame(Opcode.Close, payload));
    const [event] = events.take();
    assert.equal(event?.type, 'close');
    assert.equal(event.type === 'close' && event.reason, 'f\ufffdo');
  });

  test('default: an invalid close reason fails with 1007', () => {
    const { conn, events } = server();
    conn.receiveData(rawFrame(Opcode.Close, join([closePayload(1000), INVALID])));
    const [event] = events.take();
    assert.equal(event?.type === 'error' && event.error.closeCode, 1007);
  });

  test('binary messages are never validated either way', () => {
    const { conn, events } = server();
    conn.receiveData(rawFrame(Opcode.Binary, INVALID));
    assert.equal(events.take()[0]?.type, 'message');
  });
});

describe('sendingFragment and the error details ws reports', () => {
  test('sendingFragment is true between a fin:false frame and the last continuation', () => {
    const { conn } = server();
    assert.equal(conn.sendingFragment, false);
    conn.sendText('a', { fin: false });
    assert.equal(conn.sendingFragment, true);
    conn.sendContinuation(new TextEncoder().encode('b'), true);
    assert.equal(conn.sendingFragment, false);
  });

  test('a new message inside a fragmented one names its opcode', () => {
    const { conn, events } = server();
    conn.receiveData(rawFrame(Opcode.Text, 'a', { fin: false }));
    conn.receiveData(rawFrame(Opcode.Binary, 'b'));
    const [event] = events.take();
    assert.equal(event?.type, 'error');
    assert.equal(event.type === 'error' && event.error.code, 'ERR_EXPECTED_CONTINUATION');
    assert.match(event.type === 'error' ? event.error.message : '', /opcode 2/);
  });

  test('a control frame that is too long names its length', () => {
    const { conn, events } = server();
    conn.receiveData(rawFrame(Opcode.Ping, new Uint8Array(126)));
    const [event] = events.take();
    assert.equal(event?.type === 'error' && event.error.code, 'ERR_CONTROL_TOO_LONG');
    assert.match(event.type === 'error' ? event.error.message : '', /length 126/);
  });
});

describe('maskingKeys (ws\'s generateMask)', () => {
  test('a client masks every frame with the keys of its source, in order', () => {
    const keys = [Uint8Array.of(1, 2, 3, 4), Uint8Array.of(0, 0, 0, 0), Uint8Array.of(0xff, 0, 0xff, 0)];
    let calls = 0;
    const events = new EventQueue();
    const conn = new Connection({ side: 'client', maskingKeys: { next: () => keys[calls++ % keys.length]! } }, events);
    conn.sendText('hello');
    conn.sendBinary(new Uint8Array(3000).fill(7)); // over the arena's copy limit: the other framing path
    conn.sendPing(new TextEncoder().encode('p'));
    const bytes = join(conn.dataToSend());
    assert.equal(calls, 3);
    // The key sits after the 2-byte header (4 more for the 16-bit length of the 3000-byte frame).
    assert.deepEqual([...bytes.subarray(2, 6)], [1, 2, 3, 4]);
    assert.deepEqual([...bytes.subarray(6, 11)], [...new TextEncoder().encode('hello')].map((b, i) => b ^ (i % 4) + 1));
    const second = 11;
    assert.deepEqual([...bytes.subarray(second + 4, second + 8)], [0, 0, 0, 0]);
    assert.equal(bytes[second + 8], 7, 'a zero key leaves the payload as it is');
    const frames = decodeFrames(bytes);
    assert.deepEqual(frames.map((f) => [f.opcode, f.masked, f.payload.length]), [[Opcode.Text, true, 5], [Opcode.Binary, true, 3000], [Opcode.Ping, true, 1]]);
    assert.ok(frames[1]!.payload.every((b) => b === 7));
  });

  test('a server ignores it (servers do not mask)', () => {
    let calls = 0;
    const { conn } = server({ maskingKeys: { next: () => (calls++, Uint8Array.of(1, 1, 1, 1)) } });
    conn.sendText('x');
    assert.equal(calls, 0);
    assert.deepEqual(decodeFrames(join(conn.dataToSend())).map((f) => f.masked), [false]);
  });
});

describe('maxFragments and maxFrameChunks', () => {
  function failure(events: EventQueue): { code: string; closeCode: number; message: string } | undefined {
    const event = events.take().find((e) => e.type === 'error');
    return event?.type === 'error' ? { code: event.error.code, closeCode: event.error.closeCode, message: event.error.message } : undefined;
  }

  test('maxFragments: a message of that many frames passes; one more fails with 1008', () => {
    const { conn, events } = server({ maxFragments: 3 });
    conn.receiveData(join([rawFrame(Opcode.Text, 'a', { fin: false }), rawFrame(Opcode.Continuation, 'b', { fin: false }), rawFrame(Opcode.Continuation, 'c')]));
    assert.deepEqual(events.take().map((e) => e.type === 'message' && text(e.data)), ['abc']);
    // The count starts again with each message; interleaved control frames do not count.
    conn.receiveData(rawFrame(Opcode.Binary, 'a', { fin: false }));
    conn.receiveData(rawFrame(Opcode.Ping, 'p'));
    conn.receiveData(rawFrame(Opcode.Continuation, 'b', { fin: false }));
    conn.receiveData(rawFrame(Opcode.Continuation, 'c', { fin: false }));
    assert.deepEqual(events.take().map((e) => e.type), ['ping']);
    conn.receiveData(rawFrame(Opcode.Continuation, 'd'));
    const error = failure(events);
    assert.equal(error?.code, 'ERR_MESSAGE_TOO_BIG');
    assert.equal(error?.closeCode, 1008);
    assert.match(error?.message ?? '', /more than 3 fragments/);
    const frames = decodeFrames(join(conn.dataToSend()));
    assert.equal(parseClose(frames.at(-1)!.payload).code, 1008);
  });

  test('maxFrameChunks: a payload may arrive in that many chunks; one more fails with 1008', () => {
    const frame = rawFrame(Opcode.Binary, new Uint8Array(20).fill(1)); // a 6-byte header, then 20 bytes
    const ok = server({ maxFrameChunks: 3 });
    ok.conn.receiveData(frame.subarray(0, 1)); // half a header: not a piece of the payload
    ok.conn.receiveData(frame.subarray(1, 6));
    ok.conn.receiveData(frame.subarray(6, 10));
    ok.conn.receiveData(frame.subarray(10, 20));
    ok.conn.receiveData(frame.subarray(20));
    assert.deepEqual(ok.events.take().map((e) => e.type === 'message' && e.data.length), [20]);
    // The next frame counts afresh; the chunk its header is in counts if it holds payload too.
    ok.conn.receiveData(join([frame, frame.subarray(0, 8)]));
    ok.conn.receiveData(frame.subarray(8, 12));
    ok.conn.receiveData(frame.subarray(12));
    assert.deepEqual(ok.events.take().map((e) => e.type === 'message' && e.data.length), [20, 20]);

    const tooMany = server({ maxFrameChunks: 3 });
    tooMany.conn.receiveData(frame.subarray(0, 8));
    for (let at = 8; at < frame.length; at += 4) tooMany.conn.receiveData(frame.subarray(at, at + 4));
    const error = failure(tooMany.events);
    assert.equal(error?.code, 'ERR_MESSAGE_TOO_BIG');
    assert.equal(error?.closeCode, 1008);
    assert.match(error?.message ?? '', /more than 3 chunks/);
  });

  test('failureReasons: false sends a failure\'s close code alone', () => {
    for (const [failureReasons, reason] of [[undefined, 'reserved opcode 5'], [false, '']] as const) {
      const { conn } = server({ failureReasons });
      conn.receiveData(rawFrame(5));
      const [close] = decodeFrames(join(conn.dataToSend()));
      assert.deepEqual(parseClose(close!.payload), { code: 1002, reason });
    }
  });

  test('0 or absent: no limit', () => {
    const { conn, events } = server({ maxFragments: 0, maxFrameChunks: 0 });
    const frame = rawFrame(Opcode.Text, 'x'.repeat(50), { fin: false });
    for (const byte of frame) conn.receiveData(Uint8Array.of(byte));
    conn.receiveData(rawFrame(Opcode.Continuation, 'y'));
    assert.deepEqual(events.take().map((e) => e.type), ['message']);
  });
});
