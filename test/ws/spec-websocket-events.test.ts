// Specification (ws 8 doc/ws.md, "Event: 'error'", "'message'", "'ping'", "'pong'", "'close'",
// "'open'", "'upgrade'", and the WS_ERR_* error codes): what a socket emits, in which order, and
// with which error (type, message, `code`) and close code when the peer breaks the protocol.
// The broken peer is a raw socket (it writes frames a `ws` peer cannot produce).
//
// Difference from ws, kept on purpose (duplex is stricter):
// - Invalid UTF-8 inside a fragmented text message: ws validates when the message is complete
//   (the error comes after the last fragment); duplex fails fast, as soon as a fragment holds a
//   sequence that cannot become valid. Both then emit WS_ERR_INVALID_UTF8 and close with 1007.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IMPLS, REF, SIDES, Scope, T, closePayload, delay, frame, once, record, until, type Side, type WebSocketLike, type RawPeer } from './spec-harness.js';

/** A raw peer connected to the socket under test on `side`; `mask` is what that peer must do. */
async function rawPeer(scope: Scope, side: Side, options: Record<string, unknown> = {}): Promise<{ raw: RawPeer; sut: WebSocketLike; mask: boolean }> {
  if (side === 'server') {
    const { raw, sut } = await scope.rawClient(options);
    return { raw, sut, mask: true };
  }
  const { raw, sut } = await scope.rawServer(options);
  return { raw, sut, mask: false };
}

type Case = [what: string, bytes: (mask: boolean) => Buffer, ctor: ErrorConstructor | RangeErrorConstructor, message: string, code: string, close: number];

const CASES: Case[] = [
  ['an unknown opcode', (mask) => frame(5, '', { mask }), RangeError, 'Invalid WebSocket frame: invalid opcode 5', 'WS_ERR_INVALID_OPCODE', 1002],
  ['RSV2/RSV3 set', (mask) => frame(1, 'x', { mask, rsv2: true }), RangeError, 'Invalid WebSocket frame: RSV2 and RSV3 must be clear', 'WS_ERR_UNEXPECTED_RSV_2_3', 1002],
  ['RSV1 without permessage-deflate', (mask) => frame(1, 'x', { mask, rsv1: true }), RangeError, 'Invalid WebSocket frame: RSV1 must be clear', 'WS_ERR_UNEXPECTED_RSV_1', 1002],
  ['a fragmented control frame', (mask) => frame(9, '', { mask, fin: false }), RangeError, 'Invalid WebSocket frame: FIN must be set', 'WS_ERR_EXPECTED_FIN', 1002],
  ['a control frame over 125 bytes', (mask) => frame(9, Buffer.alloc(126), { mask }), RangeError, 'Invalid WebSocket frame: invalid payload length 126', 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', 1002],
  ['a continuation without a first fragment', (mask) => frame(0, 'x', { mask }), RangeError, 'Invalid WebSocket frame: invalid opcode 0', 'WS_ERR_INVALID_OPCODE', 1002],
  [
    'a new data frame inside a fragmented message',
    (mask) => Buffer.concat([frame(1, 'a', { mask, fin: false }), frame(1, 'b', { mask })]),
    RangeError,
    'Invalid WebSocket frame: invalid opcode 1',
    'WS_ERR_INVALID_OPCODE',
    1002,
  ],
  ['invalid UTF-8 in a text message', (mask) => frame(1, Buffer.from([0xce, 0xba, 0xe1, 0xbd]), { mask }), Error, 'Invalid WebSocket frame: invalid UTF-8 sequence', 'WS_ERR_INVALID_UTF8', 1007],
  ['a close frame with a 1-byte payload', (mask) => frame(8, Buffer.from([3]), { mask }), RangeError, 'Invalid WebSocket frame: invalid payload length 1', 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', 1002],
  ['a close frame with an invalid code', (mask) => frame(8, closePayload(1005), { mask }), RangeError, 'Invalid WebSocket frame: invalid status code 1005', 'WS_ERR_INVALID_CLOSE_CODE', 1002],
  ['a close reason that is not UTF-8', (mask) => frame(8, Buffer.concat([closePayload(1000), Buffer.from([0xff])]), { mask }), Error, 'Invalid WebSocket frame: invalid UTF-8 sequence', 'WS_ERR_INVALID_UTF8', 1007],
  [
    'a 64-bit length over 2^53 - 1',
    // A complete header: the 8-byte length (2^53), then the masking key when masked.
    (mask) => Buffer.concat([Buffer.from([0x82, (mask ? 0x80 : 0) | 127]), Buffer.from([0x00, 0x20, 0, 0, 0, 0, 0, 0]), Buffer.alloc(mask ? 4 : 0, 1)]),
    RangeError,
    'Unsupported WebSocket frame: payload length > 2^53 - 1',
    'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH',
    1009,
  ],
];

for (const impl of IMPLS) {
  for (const side of SIDES) {
    describe(`events, ${side} side [${impl.name}]`, () => {
      for (const [what, bytes, ctor, message, code, closeCode] of CASES) {
        it(`${what}: error ${code} '${message}', close ${closeCode} sent, then one close 1006`, T, async (t) => {
          const scope = new Scope(impl, t);
          const { raw, sut, mask } = await rawPeer(scope, side);
          const events = record(sut);
          const errors: (Error & { code?: string })[] = [];
          sut.on('error', (e: Error) => void errors.push(e));
          const closed = once(sut, 'close', 5000);
          raw.socket.write(bytes(mask));
          assert.equal(await raw.closeFrame(), closeCode);
          raw.socket.end();
          const [localCode] = await closed;
          assert.equal(errors.length, 1);
          assert.ok(errors[0] instanceof ctor, `${errors[0]!.constructor.name} is not a ${ctor.name}`);
          assert.equal(errors[0]!.message, message);
          assert.equal(errors[0]!.code, code);
          assert.equal(localCode, 1006);
          assert.deepEqual(events, ['error', 'close']);
        });
      }

      it(`a frame masked the wrong way: ${side === 'server' ? 'MASK must be set' : 'MASK must be clear'}`, T, async (t) => {
        const scope = new Scope(impl, t);
        const { raw, sut, mask } = await rawPeer(scope, side);
        const errored = once(sut, 'error');
        raw.socket.write(frame(1, 'x', { mask: !mask }));
        const [error] = (await errored) as [Error & { code: string }];
        assert.ok(error instanceof RangeError);
        if (side === 'server') {
          assert.equal(error.message, 'Invalid WebSocket frame: MASK must be set');
          assert.equal(error.code, 'WS_ERR_EXPECTED_MASK');
        } else {
          assert.equal(error.message, 'Invalid WebSocket frame: MASK must be clear');
          assert.equal(error.code, 'WS_ERR_UNEXPECTED_MASK');
        }
        assert.equal(await raw.closeFrame(), 1002);
      });

      it(`invalid UTF-8 in a first fragment: ${impl.name === 'ws' ? 'reported when the message ends' : 'reported at once (fail-fast)'}`, T, async (t) => {
        const scope = new Scope(impl, t);
        const { raw, sut, mask } = await rawPeer(scope, side);
        const errors: (Error & { code?: string })[] = [];
        sut.on('error', (e: Error) => void errors.push(e));
        raw.socket.write(frame(1, Buffer.from([0x61, 0xff]), { mask, fin: false }));
        await delay(50);
        assert.equal(errors.length, impl.name === 'ws' ? 0 : 1);
        raw.socket.write(frame(0, 'b', { mask }));
        assert.equal(await raw.closeFrame(), 1007);
        assert.equal(errors.length, 1);
        assert.equal(errors[0]!.code, 'WS_ERR_INVALID_UTF8');
      });

      it("'message' gives (Buffer, false) for text and (Buffer, true) for binary", T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const got: unknown[][] = [];
        sut.on('message', (...args: unknown[]) => void got.push(args));
        peer.send('text');
        peer.send(Buffer.from([1, 2, 3]));
        await new Promise<void>((resolve) => sut.on('message', () => got.length === 2 && resolve()));
        assert.deepEqual(got, [
          [Buffer.from('text'), false],
          [Buffer.from([1, 2, 3]), true],
        ]);
        assert.ok(Buffer.isBuffer(got[0]![0]));
      });

      it("'ping' and 'pong' give the payload as a Buffer", T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side, {}, { autoPong: false });
        const ping = once(sut, 'ping');
        const pong = once(sut, 'pong');
        peer.ping('ping-data');
        peer.pong('pong-data');
        assert.deepEqual((await ping)[0], Buffer.from('ping-data'));
        assert.deepEqual((await pong)[0], Buffer.from('pong-data'));
      });

      it('control frames between fragments are handled and the message still arrives', T, async (t) => {
        const scope = new Scope(impl, t);
        const { raw, sut, mask } = await rawPeer(scope, side);
        const events = record(sut);
        const message = once(sut, 'message');
        raw.socket.write(Buffer.concat([frame(1, 'frag', { mask, fin: false }), frame(9, 'p', { mask }), frame(0, 'ment', { mask })]));
        const [data] = await message;
        assert.equal(String(data), 'fragment');
        assert.deepEqual(events, ['ping', 'message']);
        await until(() => raw.frames().some((f) => f.opcode === 10), 2000, 'the pong');
        assert.deepEqual(
          raw.frames().filter((f) => f.opcode === 10).map((f) => String(f.payload)),
          ['p'],
        );
      });

      it('a close frame from the peer: the socket echoes the code and emits close once', T, async (t) => {
        const scope = new Scope(impl, t);
        const { raw, sut, mask } = await rawPeer(scope, side);
        const events = record(sut);
        const closed = once(sut, 'close');
        raw.socket.write(frame(8, closePayload(4321, 'done'), { mask }));
        assert.equal(await raw.closeFrame(), 4321);
        raw.socket.end();
        const [code, reason] = await closed;
        assert.equal(code, 4321);
        assert.deepEqual(reason, Buffer.from('done'));
        await delay(10);
        assert.deepEqual(events, ['close']);
      });

      it('an empty close frame from the peer: close 1005 and an empty close frame back', T, async (t) => {
        const scope = new Scope(impl, t);
        const { raw, sut, mask } = await rawPeer(scope, side);
        const closed = once(sut, 'close');
        raw.socket.write(frame(8, '', { mask }));
        assert.equal(await raw.closeFrame(), 1005);
        raw.socket.end();
        const [code] = await closed;
        assert.equal(code, 1005);
      });
    });
  }

  describe(`event order [${impl.name}]`, () => {
    it("a client emits 'upgrade' (an IncomingMessage) before 'open', then messages, then one 'close'", T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({}, REF);
      wss.on('connection', (ws) => {
        ws.send('hello');
        ws.close(1000);
      });
      const ws = scope.client(url);
      const events = record(ws);
      let upgradeArg: unknown;
      ws.on('upgrade', (res: unknown) => void (upgradeArg = res));
      let stateAtOpen = -1;
      ws.on('open', () => void (stateAtOpen = ws.readyState));
      await once(ws, 'close');
      assert.deepEqual(events, ['upgrade', 'open', 'message', 'close']);
      const { IncomingMessage } = await import('node:http');
      assert.ok(upgradeArg instanceof IncomingMessage);
      assert.equal(stateAtOpen, impl.WebSocket.OPEN);
    });

    it('a server-side socket is OPEN in the connection listener and emits no open event', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server();
      const seen = new Promise<[number, string[]]>((resolve) =>
        wss.on('connection', (ws) => {
          const events = record(ws);
          setTimeout(() => resolve([ws.readyState, events]), 30);
        }),
      );
      await scope.open(url, undefined, undefined, REF);
      assert.deepEqual(await seen, [impl.WebSocket.OPEN, []]);
    });

    it('allowSynchronousEvents:false on a client spreads message events over ticks', T, async (t) => {
      const scope = new Scope(impl, t);
      const { raw, sut } = await scope.rawServer({ allowSynchronousEvents: false });
      const ticks: boolean[] = [];
      let microtask = false;
      sut.on('message', () => {
        ticks.push(microtask);
        if (ticks.length === 1) queueMicrotask(() => void (microtask = true));
      });
      raw.socket.write(Buffer.concat([frame(1, 'a', { mask: false }), frame(1, 'b', { mask: false })]));
      await new Promise<void>((resolve) => sut.on('message', () => ticks.length === 2 && resolve()));
      assert.deepEqual(ticks, [false, true]);
    });
  });
}
