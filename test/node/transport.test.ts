// The transport seam: a WebSocket over a transport that is not a net.Socket (an in-memory one
// here, as a native transport or an HTTP/2 stream will be) writes, reads, flows and ends through
// the Transport interface alone, and releases its codec once whatever order the end events come in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, Opcode, State, WebSocket, batch, createDeflateCodec, type WebSocketHandlers } from '../../src/index.js';
import { encodeFrame } from '../../src/protocol/frame.js';
import type { MessageCodec } from '../../src/protocol/index.js';
import type { AttachTransport, Transport, TransportSink, WriteCallback } from '../../src/node/transport/transport.js';

/** A transport that records what the WebSocket asks of it. */
class MemoryTransport implements Transport {
  sink: TransportSink | undefined;
  readonly writes: Buffer[] = [];
  readonly calls: string[] = [];
  writableLength = 0;
  writable = true;
  readonly remoteAddress = '192.0.2.1';

  write(chunk: Uint8Array, callback?: WriteCallback): void {
    this.writes.push(Buffer.from(chunk));
    if (callback) queueMicrotask(() => callback(null));
  }
  cork(): void {
    this.calls.push('cork');
  }
  uncork(): void {
    this.calls.push('uncork');
  }
  pause(): void {
    this.calls.push('pause');
  }
  resume(): void {
    this.calls.push('resume');
  }
  end(): void {
    this.calls.push('end');
    this.writable = false;
  }
  destroy(): void {
    this.calls.push('destroy');
    this.writable = false;
  }
  /** Everything written so far, as one buffer. */
  written(): Buffer {
    return Buffer.concat(this.writes.splice(0));
  }
}

/** This transport kind's `AttachTransport`: it keeps the sink to report to. */
const attachMemory: AttachTransport = (transport, sink) => {
  const memory = transport as MemoryTransport;
  assert.equal(memory.sink, undefined, 'attached once');
  memory.sink = sink;
};

const MASK = Uint8Array.of(1, 2, 3, 4);
const clientFrame = (opcode: number, payload: string | Uint8Array): Uint8Array =>
  encodeFrame(opcode, typeof payload === 'string' ? Buffer.from(payload) : payload, { maskKey: MASK });

function serverOver(transport: MemoryTransport, handlers: WebSocketHandlers = {}, codec?: MessageCodec): WebSocket {
  const ws = new WebSocket(transport, { side: 'server', handlers, data: undefined, codec, pingInterval: 0 }, attachMemory);
  ws.start();
  return ws;
}

test('a WebSocket over a non-socket transport: data in, frames out, flow control and addresses through the seam', () => {
  const transport = new MemoryTransport();
  const received: string[] = [];
  const ws = serverOver(transport, { message: (peer, data) => void (received.push(String(data)), peer.send(`echo ${String(data)}`)) });
  assert.ok(transport.sink === (ws as unknown as TransportSink), 'the WebSocket is its own sink');
  assert.equal(ws.remoteAddress, '192.0.2.1');

  transport.sink!.onTransportData(Buffer.concat([clientFrame(Opcode.Text, 'a'), clientFrame(Opcode.Text, 'b')]));
  assert.deepEqual(received, ['a', 'b']);
  // Both echoes of one read go out as one (coalesced) write.
  assert.equal(transport.writes.length, 1);
  assert.deepEqual(transport.written(), Buffer.concat([encodeFrame(Opcode.Text, Buffer.from('echo a')), encodeFrame(Opcode.Text, Buffer.from('echo b'))]));

  // Large frames: one corked batch rather than a copy.
  const big = Buffer.alloc(3000, 7);
  batch(() => {
    ws.send(big);
    ws.send(big);
  });
  assert.deepEqual(transport.calls.splice(0), ['cork', 'uncork']);
  assert.equal(transport.written().length, 2 * (4 + 3000));

  transport.writableLength = 12345;
  assert.equal(ws.bufferedAmount, 12345);
  transport.writableLength = 0;
  ws.pause();
  ws.resume();
  assert.deepEqual(transport.calls.splice(0), ['pause', 'resume']);
});

test('over the seam: the closing handshake ends the transport, and close reports once', () => {
  const transport = new MemoryTransport();
  const closes: number[] = [];
  const ws = serverOver(transport, { close: (_ws, code) => void closes.push(code) });
  ws.close(CloseCode.NormalClosure, 'bye');
  assert.deepEqual(transport.written(), Buffer.from(encodeFrame(Opcode.Close, Buffer.from([0x03, 0xe8, ...Buffer.from('bye')]))));
  assert.equal(ws.readyState, State.Closing);
  // The peer answers; the server closes the transport first (RFC 6455 §7.1.1).
  transport.sink!.onTransportData(clientFrame(Opcode.Close, Uint8Array.of(0x03, 0xe8)));
  assert.deepEqual(transport.calls, ['end']);
  transport.sink!.onTransportEnd();
  transport.sink!.onTransportClose();
  assert.deepEqual(closes, [1000]);
  assert.equal(ws.readyState, State.Closed);
});

const ENDINGS: Array<[string, (sink: TransportSink) => void]> = [
  ['end, close', (sink) => (sink.onTransportEnd(), sink.onTransportClose())],
  ['close alone', (sink) => sink.onTransportClose()],
  ['error, close', (sink) => (sink.onTransportError(new Error('EPIPE')), sink.onTransportClose())],
  ['end, error, close, close', (sink) => (sink.onTransportEnd(), sink.onTransportError(new Error('late')), sink.onTransportClose(), sink.onTransportClose())],
];

for (const [name, end] of ENDINGS) {
  test(`the codec is released exactly once whatever the transport reports: ${name}`, () => {
    const codec = createDeflateCodec('server', { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, { threshold: 0 });
    let closes = 0;
    const close = codec.close.bind(codec);
    codec.close = () => {
      closes++;
      close();
    };
    const transport = new MemoryTransport();
    const codes: number[] = [];
    const ws = serverOver(transport, { close: (_ws, code) => void codes.push(code), error: () => {} }, codec);
    ws.send('compressed');
    assert.equal(transport.written()[0] & 0x40, 0x40, 'RSV1: the message went out compressed');
    end(transport.sink!);
    assert.equal(closes, 1);
    assert.deepEqual(codes, [1006]);
    assert.equal(ws.send('after the end'), false);
  });
}
