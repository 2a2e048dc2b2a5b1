// Large-message work in slices (`sliceSize`): the engine with Node's permessage-deflate codec
// suspends after a slice of inflating, compressing or joining, keeps its input in order, and
// delivers exactly what it would have delivered at once; limits and failures still hold mid-way.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { WebSocketServer, connect, type WebSocket } from '../../src/index.js';
import { createDeflateCodec } from '../../src/node/deflate.js';
import { CloseCode, Connection, EventQueue, Opcode, type ConnectionEvent, type ConnectionOptions } from '../../src/protocol/index.js';
import type { NegotiatedDeflate } from '../../src/protocol/permessage-deflate.js';
import { closePayload, decodeFrames, join, parseClose, rawFrame } from '../protocol/engine-helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SLICE = 64 * KiB;
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

const params = (p: Partial<NegotiatedDeflate> = {}): NegotiatedDeflate => ({
  serverNoContextTakeover: true,
  clientNoContextTakeover: true,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  ...p,
});

function server(options: Partial<ConnectionOptions> = {}, deflate: Partial<NegotiatedDeflate> = {}): { conn: Connection; events: EventQueue } {
  const events = new EventQueue();
  const codec = createDeflateCodec('server', params(deflate));
  return { conn: new Connection({ side: 'server', codec, validateUtf8: isUtf8, maxMessageSize: 64 * MiB, ...options }, events), events };
}

/** A client's compressed message (one frame, RSV1): the payload of a sync flush without its tail. */
function compressedFrame(opcode: number, data: Uint8Array, fin = true): Uint8Array {
  const out = deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH });
  return rawFrame(opcode, out.subarray(0, out.length - 4), { rsv1: true, fin });
}

/** Resume until the engine has nothing left to do; returns how many calls that took. */
function drain(conn: Connection, limit = 100_000): number {
  let calls = 0;
  while (conn.suspended) {
    conn.resume();
    if (++calls > limit) throw new Error('the engine never finished its work');
  }
  return calls;
}

function messages(events: ConnectionEvent[]): Array<{ size: number; binary: boolean; data: Uint8Array }> {
  return events.flatMap((e) => (e.type === 'message' ? [{ size: e.data.length, binary: e.binary, data: e.data }] : []));
}

/** Inflate a message sent in several frames the way a peer does (RFC 7692 §7.2.2). */
function inflateFrames(payloads: Uint8Array[]): Buffer {
  return inflateRawSync(Buffer.concat([...payloads, TAIL]), { finishFlush: constants.Z_SYNC_FLUSH });
}

describe('receiving in slices', () => {
  test('a 4 MiB inflate is done a slice per call, then the message and what followed it arrive in order', () => {
    const { conn, events } = server({ sliceSize: SLICE });
    const zeros = new Uint8Array(4 * MiB);
    conn.receiveData(join([compressedFrame(Opcode.Binary, zeros), rawFrame(Opcode.Text, 'after')]));
    assert.equal(conn.suspended, true);
    assert.equal(conn.receiveSuspended, true);
    assert.deepEqual(events.take(), [], 'nothing is delivered before the inflate is done');
    const calls = drain(conn);
    assert.ok(calls >= (4 * MiB) / SLICE - 2, `${calls} resume() calls for 4 MiB in 64 KiB slices`);
    const got = messages(events.take());
    assert.deepEqual(got.map((m) => [m.size, m.binary]), [[4 * MiB, true], [5, false]]);
    assert.ok(got[0]!.data.every((b) => b === 0));
  });

  test('without sliceSize the same input is delivered in the one call (the default)', () => {
    const { conn, events } = server();
    conn.receiveData(join([compressedFrame(Opcode.Binary, new Uint8Array(4 * MiB)), rawFrame(Opcode.Text, 'after')]));
    assert.equal(conn.suspended, false);
    assert.deepEqual(messages(events.take()).map((m) => m.size), [4 * MiB, 5]);
  });

  test('chunks fed while suspended wait behind the work, and a ping after the message is answered after it', () => {
    const { conn, events } = server({ sliceSize: SLICE });
    conn.receiveData(compressedFrame(Opcode.Binary, new Uint8Array(2 * MiB)));
    assert.equal(conn.suspended, true);
    conn.receiveData(rawFrame(Opcode.Ping, 'p'));
    conn.receiveData(rawFrame(Opcode.Text, 'later'));
    assert.equal(conn.hasDataToSend, false, 'the ping is not read before the message is done');
    drain(conn);
    assert.deepEqual(events.take().map((e) => e.type), ['message', 'ping', 'message']);
    assert.deepEqual(decodeFrames(join(conn.dataToSend())).map((f) => f.opcode), [Opcode.Pong]);
  });

  test('a message that inflates past maxMessageSize fails with 1009 part-way, and the rest of the input is dropped', () => {
    const { conn, events } = server({ sliceSize: SLICE, maxMessageSize: 1 * MiB });
    conn.receiveData(join([compressedFrame(Opcode.Binary, new Uint8Array(8 * MiB)), rawFrame(Opcode.Text, 'never')]));
    drain(conn);
    const all = events.take();
    assert.deepEqual(all.map((e) => e.type), ['error']);
    assert.equal(all[0]!.type === 'error' && all[0].error.closeCode, CloseCode.MessageTooBig);
    assert.equal(conn.suspended, false);
    const [close] = decodeFrames(join(conn.dataToSend()));
    assert.equal(parseClose(close!.payload).code, CloseCode.MessageTooBig);
  });

  test('a fragmented compressed message with context takeover inflates in slices across its frames', () => {
    const { conn, events } = server({ sliceSize: SLICE }, { clientNoContextTakeover: false });
    // One DEFLATE stream cut into two frames (RFC 7692 §6.1: RSV1 on the first only).
    const data = new Uint8Array(3 * MiB).map((_, i) => (i >> 12) & 0xff);
    const compressed = deflateRawSync(data, { finishFlush: constants.Z_SYNC_FLUSH });
    const body = compressed.subarray(0, compressed.length - 4);
    const half = body.length >> 1;
    conn.receiveData(rawFrame(Opcode.Binary, body.subarray(0, half), { rsv1: true, fin: false }));
    conn.receiveData(rawFrame(Opcode.Continuation, body.subarray(half)));
    drain(conn);
    const [message] = messages(events.take());
    assert.equal(message?.size, data.length);
    assert.ok(Buffer.from(message!.data).equals(Buffer.from(data)));
  });

  test('an uncompressed message in many frames is joined in slices; fragments of valid UTF-8 split mid-character pass', () => {
    const { conn, events } = server({ sliceSize: SLICE });
    const textBytes = Buffer.from('é€😀a'.repeat(100_000)); // 2-, 3- and 4-byte sequences
    const frames: Uint8Array[] = [];
    const step = 5001; // never a character boundary for long
    for (let at = 0; at < textBytes.length; at += step) {
      const end = Math.min(textBytes.length, at + step);
      frames.push(rawFrame(at === 0 ? Opcode.Text : Opcode.Continuation, textBytes.subarray(at, end), { fin: end === textBytes.length }));
    }
    conn.receiveData(join(frames));
    drain(conn);
    const [message] = messages(events.take());
    assert.equal(message?.binary, false);
    assert.ok(Buffer.from(message!.data).equals(textBytes));
  });

  test('invalid UTF-8 deep inside a large fragmented text message still fails with 1007', () => {
    const { conn, events } = server({ sliceSize: SLICE });
    const textBytes = Buffer.from('a'.repeat(600 * KiB));
    textBytes[400 * KiB] = 0xff;
    const half = 300 * KiB;
    conn.receiveData(rawFrame(Opcode.Text, textBytes.subarray(0, half), { fin: false }));
    conn.receiveData(rawFrame(Opcode.Continuation, textBytes.subarray(half)));
    drain(conn);
    const all = events.take();
    assert.deepEqual(all.map((e) => e.type), ['error']);
    assert.equal(all[0]!.type === 'error' && all[0].error.closeCode, CloseCode.InvalidFramePayloadData);
  });

  test('many tiny fragments are sliced by their count, not only their bytes', () => {
    const { conn, events } = server({ sliceSize: SLICE });
    const frames = Array.from({ length: 5000 }, (_, i) => rawFrame(i === 0 ? Opcode.Binary : Opcode.Continuation, Uint8Array.of(i & 0xff), { fin: i === 4999 }));
    conn.receiveData(join(frames));
    assert.equal(conn.suspended, true, '5,000 frames of 1 byte are more than one slice of work');
    const calls = drain(conn);
    assert.ok(calls >= 50, `${calls} resume() calls`);
    const [message] = messages(events.take());
    assert.equal(message?.size, 5000);
    assert.ok(message!.data.every((b, i) => b === (i & 0xff)));
  });

  test('EOF while suspended drops the work', () => {
    const { conn, events } = server({ sliceSize: SLICE });
    conn.receiveData(compressedFrame(Opcode.Binary, new Uint8Array(2 * MiB)));
    conn.receiveEof();
    assert.equal(conn.suspended, false);
    conn.resume();
    assert.deepEqual(events.take(), []);
  });
});

describe('sending in slices', () => {
  function sentFrames(conn: Connection): ReturnType<typeof decodeFrames> {
    return decodeFrames(join(conn.dataToSend()));
  }

  test('a large compressed message goes out as a fragmented one: RSV1 on the first frame, the payloads one DEFLATE stream', () => {
    const { conn } = server({ sliceSize: SLICE });
    // Incompressible: zlib emits output for every slice (a run of 'x' would come out at the end only).
    const data = randomBytes(1 * MiB);
    conn.sendBinary(data);
    assert.equal(conn.suspended, true);
    assert.equal(conn.receiveSuspended, false);
    assert.equal(conn.pendingSendBytes, data.length);
    assert.equal(conn.hasDataToSend, false);
    drain(conn);
    assert.equal(conn.pendingSendBytes, 0);
    const frames = sentFrames(conn);
    assert.ok(frames.length > 1, `${frames.length} frames`);
    assert.equal(frames[0]!.opcode, Opcode.Binary);
    assert.equal(frames[0]!.rsv1, true);
    for (const frame of frames.slice(1)) {
      assert.equal(frame.opcode, Opcode.Continuation);
      assert.equal(frame.rsv1, false);
    }
    assert.deepEqual(frames.map((f) => f.fin), frames.map((_, i) => i === frames.length - 1));
    assert.ok(inflateFrames(frames.map((f) => f.payload)).equals(data));
  });

  test('sends made meanwhile wait in order behind it, pings go between its frames, and close goes last', () => {
    const { conn } = server({ sliceSize: SLICE });
    conn.sendBinary(new Uint8Array(1 * MiB));
    conn.sendText(Buffer.from('second'));
    conn.sendPing(Buffer.from('p'));
    conn.sendClose(1000, 'bye');
    assert.equal(conn.closing, true, 'closing at once: no more sends are accepted');
    assert.throws(() => conn.sendText(Buffer.from('refused')), /cannot send/);
    drain(conn);
    const frames = sentFrames(conn);
    const opcodes = frames.map((f) => f.opcode);
    assert.equal(opcodes[0], Opcode.Ping, 'the ping did not wait');
    const rest = opcodes.slice(1);
    assert.deepEqual(rest.slice(-2), [Opcode.Text, Opcode.Close]);
    assert.ok(rest.slice(0, -2).every((op, i) => (i === 0 ? op === Opcode.Binary : op === Opcode.Continuation)));
    assert.equal(parseClose(frames.at(-1)!.payload).code, 1000);
  });

  test('the server closes the transport only once its close frame, queued behind the message, is out', () => {
    const { conn } = server({ sliceSize: SLICE });
    conn.sendBinary(new Uint8Array(1 * MiB));
    conn.receiveData(rawFrame(Opcode.Close, closePayload(1000)));
    assert.equal(conn.shouldCloseTransport, false);
    drain(conn);
    assert.equal(conn.shouldCloseTransport, true);
    assert.equal(sentFrames(conn).at(-1)!.opcode, Opcode.Close);
  });

  test('a failure drops the message being compressed and what waits behind it; the close frame goes at once', () => {
    const { conn } = server({ sliceSize: SLICE });
    conn.sendBinary(new Uint8Array(1 * MiB));
    conn.sendText(Buffer.from('dropped'));
    conn.resume(); // one slice out
    conn.fail(CloseCode.PolicyViolation, 'slow consumer');
    assert.equal(conn.suspended, false);
    assert.equal(conn.pendingSendBytes, 0);
    const opcodes = sentFrames(conn).map((f) => f.opcode);
    assert.equal(opcodes.at(-1), Opcode.Close);
    assert.ok(!opcodes.includes(Opcode.Text));
  });

  test('messages under sliceSize are compressed in the send call, as without slices', () => {
    const { conn } = server({ sliceSize: SLICE });
    conn.sendText(Buffer.from('y'.repeat(SLICE)));
    assert.equal(conn.suspended, false);
    const [frame] = sentFrames(conn);
    assert.equal(frame?.rsv1, true);
    assert.equal(frame?.fin, true);
  });

  test('with context takeover the sliced message leaves the context usable for the next one', () => {
    const { conn } = server({ sliceSize: SLICE }, { serverNoContextTakeover: false });
    const first = Buffer.from('abc'.repeat(200_000));
    conn.sendText(first);
    drain(conn);
    conn.sendText(Buffer.from('abc'.repeat(1000))); // over the 1 KiB threshold: compressed too
    const frames = sentFrames(conn);
    const last = frames.at(-1)!;
    // The peer inflates both messages with one context (RFC 7692 §7.1.1).
    const firstPayloads = frames.slice(0, -1).map((f) => f.payload);
    const stream = inflateRawSync(Buffer.concat([...firstPayloads, TAIL, last.payload, TAIL]), { finishFlush: constants.Z_SYNC_FLUSH });
    assert.equal(last.rsv1, true);
    assert.equal(stream.toString(), first.toString() + 'abc'.repeat(1000));
  });
});

describe('over sockets (the Node binding runs the slices)', () => {
  test('a large compressed send counts in bufferedAmount until framed, sendAsync resolves after it, and order holds', { timeout: 20_000 }, async () => {
    const big = randomBytes(4 * MiB);
    let opened!: (ws: WebSocket) => void;
    const serverSide = new Promise<WebSocket>((resolve) => (opened = resolve));
    const server = new WebSocketServer({ perMessageDeflate: true, maxMessageSize: 16 * MiB, handlers: { open: (ws) => opened(ws as WebSocket) } });
    const { port } = await server.listen(0, '127.0.0.1');
    const received: Buffer[] = [];
    let gotAll!: () => void;
    const all = new Promise<void>((resolve) => (gotAll = resolve));
    const client = await connect(`ws://127.0.0.1:${port}/`, {
      perMessageDeflate: true,
      maxMessageSize: 16 * MiB,
      handlers: {
        message(_ws, data) {
          received.push(data as Buffer);
          if (received.length === 2) gotAll();
        },
      },
    });
    try {
      const ws = await serverSide;
      const sent = ws.sendAsync(big);
      assert.ok(ws.bufferedAmount >= big.length, `bufferedAmount ${ws.bufferedAmount} counts the message waiting for compression`);
      ws.send(Buffer.from('small'));
      await sent;
      assert.ok(ws.bufferedAmount < big.length, 'framed and handed to the socket once sendAsync resolved');
      await all;
      assert.ok(received[0]!.equals(big), 'the large message arrives whole, first');
      assert.equal(received[1]!.toString(), 'small');
    } finally {
      client.terminate();
      await server.close();
    }
  });
});
