// Specification (ws 8 doc/ws.md): websocket.send(data[, options][, callback]), websocket.ping()
// and websocket.pong(), on both ends of a connection (the other end is a real `ws`): data types,
// options binary/compress/fin/mask, callbacks, the errors while CONNECTING and after close.
//
// Difference from ws, kept on purpose: the `mask` option. ws sends what it is told, so a client
// can send unmasked frames (mask: false) and a server masked ones (mask: true), which the peer must
// refuse (RFC 6455 §5.1: a client MUST mask every frame, a server MUST NOT). duplex ignores the
// option and frames as its side must, so the message arrives.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { IMPLS, SIDES, Scope, T, once, parseFrames, stuckClient, until, type WebSocketLike } from './spec-harness.js';

const NOT_OPEN_0 = 'WebSocket is not open: readyState 0 (CONNECTING)';

/** Collects the next `count` messages of `ws` as [data, isBinary]. */
function messages(ws: WebSocketLike, count: number): Promise<[Buffer, boolean][]> {
  const got: [Buffer, boolean][] = [];
  return new Promise((resolve) =>
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      got.push([data, isBinary]);
      if (got.length === count) resolve(got);
    }),
  );
}

/** The raw bytes `ws` (a real `ws` peer) receives from now on. */
function tap(ws: WebSocketLike): Buffer[] {
  const chunks: Buffer[] = [];
  (ws as unknown as { _socket: EventEmitter })._socket.prependListener('data', (chunk: Buffer) => void chunks.push(chunk));
  return chunks;
}

for (const impl of IMPLS) {
  for (const side of SIDES) {
    describe(`send/ping/pong, ${side} side [${impl.name}]`, () => {
      it('a string is a text message; Buffer, ArrayBuffer, typed arrays (with offset) and DataView are binary', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const got = messages(peer, 5);
        const floats = new Float32Array([0, 0.5, 1, 1.5, 2, 2.5]);
        const partial = floats.subarray(2, 5);
        const ab = new Uint8Array([9, 8, 7]).buffer;
        sut.send('héllo');
        sut.send(Buffer.from('buf'));
        sut.send(ab);
        sut.send(partial);
        sut.send(new DataView(new Uint8Array([1, 2, 3, 4]).buffer, 1, 2));
        const [text, buf, array, typed, view] = await got;
        assert.deepEqual(text, [Buffer.from('héllo'), false]);
        assert.deepEqual(buf, [Buffer.from('buf'), true]);
        assert.deepEqual(array, [Buffer.from([9, 8, 7]), true]);
        assert.deepEqual(typed, [Buffer.from(partial.buffer, partial.byteOffset, partial.byteLength), true]);
        assert.deepEqual(view, [Buffer.from([2, 3]), true]);
      });

      it('a number is sent as its string; no data is an empty binary message', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const got = messages(peer, 2);
        sut.send(0 as unknown as string);
        (sut.send as (data?: unknown) => void)();
        const [zero, empty] = await got;
        assert.deepEqual(zero, [Buffer.from('0'), false]);
        assert.deepEqual(empty, [Buffer.alloc(0), true]);
      });

      it('the binary option overrides the type: binary:true for a string, binary:false for a Buffer', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const got = messages(peer, 2);
        sut.send('as binary', { binary: true });
        sut.send(Buffer.from('as text'), { binary: false });
        const [a, b] = await got;
        assert.deepEqual(a, [Buffer.from('as binary'), true]);
        assert.deepEqual(b, [Buffer.from('as text'), false]);
      });

      it('fin:false sends fragments: the peer gets one message when fin:true ends it', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const got = messages(peer, 2);
        const raw = tap(peer);
        sut.send('frag', { fin: false });
        sut.send('ment', { fin: false });
        sut.send('ed', { fin: true });
        sut.send(Buffer.from([1]), { fin: false, binary: true });
        sut.send(Buffer.from([2]), { binary: true });
        const [text, binary] = await got;
        assert.deepEqual(text, [Buffer.from('fragmented'), false]);
        assert.deepEqual(binary, [Buffer.from([1, 2]), true]);
        const frames = parseFrames(Buffer.concat(raw));
        assert.deepEqual(
          frames.map((f) => [f.opcode, f.fin]),
          [
            [1, false],
            [0, false],
            [0, true],
            [2, false],
            [0, true],
          ],
        );
      });

      it('the callback is called once the data is written, without an error', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut } = await scope.connect(side);
        const errors = await Promise.all([
          new Promise((resolve) => sut.send('a', resolve)),
          new Promise((resolve) => sut.send('b', {}, resolve)),
          new Promise((resolve) => sut.ping('c', undefined, resolve)),
          new Promise((resolve) => sut.pong(resolve as () => void)),
        ]);
        for (const error of errors) assert.equal(error ?? undefined, undefined);
      });

      it('a 5 MiB binary message arrives whole', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const big = Buffer.alloc(5 * 1024 * 1024);
        for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
        const got = messages(peer, 1);
        sut.send(big, { compress: false });
        const [[data, isBinary]] = await got;
        assert.equal(isBinary, true);
        assert.ok(data.equals(big));
      });

      it('compress: with permessage-deflate, compress:false sends a frame without RSV1; the default compresses', T, async (t) => {
        const scope = new Scope(impl, t);
        const deflate = { perMessageDeflate: { threshold: 0 } };
        const { sut, peer } = await scope.connect(side, deflate, deflate);
        assert.equal(sut.extensions, 'permessage-deflate');
        const raw = tap(peer);
        const got = messages(peer, 2);
        sut.send('z'.repeat(300));
        sut.send('z'.repeat(300), { compress: false });
        const [a, b] = await got;
        assert.equal(String(a[0]), 'z'.repeat(300));
        assert.equal(String(b[0]), 'z'.repeat(300));
        const frames = parseFrames(Buffer.concat(raw));
        assert.deepEqual(
          frames.map((f) => f.rsv1),
          [true, false],
        );
      });

      it('compress:true without permessage-deflate is ignored', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side, { perMessageDeflate: false }, { perMessageDeflate: false });
        const got = messages(peer, 1);
        sut.send('plain', { compress: true });
        assert.deepEqual((await got)[0], [Buffer.from('plain'), false]);
      });

      it('send() while CONNECTING throws; after close() the callback gets the error and bufferedAmount grows', T, async (t) => {
        const scope = new Scope(impl, t);
        if (side === 'client') {
          const stuck = stuckClient(impl);
          stuck.on('error', () => undefined);
          assert.throws(() => stuck.send('hi'), (e: Error) => e.constructor === Error && e.message === NOT_OPEN_0);
          assert.throws(() => stuck.send('hi', () => undefined), (e: Error) => e.message === NOT_OPEN_0);
          stuck.terminate();
        }
        const { sut } = await scope.connect(side);
        sut.close();
        assert.equal(sut.bufferedAmount, 0);
        let sync = true;
        const closing = new Promise<Error>((resolve) => sut.send('hi', resolve as (e?: Error) => void));
        sync = false;
        const error = await closing;
        assert.equal(sync, false);
        assert.ok(error instanceof Error);
        assert.equal(error.message, 'WebSocket is not open: readyState 2 (CLOSING)');
        assert.equal(sut.bufferedAmount, 2);
        await once(sut, 'close');
        const closed = await new Promise<Error>((resolve) => sut.send('hey', resolve as (e?: Error) => void));
        assert.equal(closed.message, 'WebSocket is not open: readyState 3 (CLOSED)');
        assert.equal(sut.bufferedAmount, 5);
        sut.send('no callback: nothing thrown');
      });

      it('ping/pong with data: the peer gets the payload; numbers become strings', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side, {}, { autoPong: false });
        const pings: Buffer[] = [];
        const pongs: Buffer[] = [];
        peer.on('ping', (d: Buffer) => void pings.push(d));
        peer.on('pong', (d: Buffer) => void pongs.push(d));
        sut.ping('hi');
        sut.ping(0 as unknown as string);
        sut.ping();
        sut.pong(Buffer.from([1, 2]));
        sut.pong(7 as unknown as string);
        sut.pong();
        await until(() => pings.length === 3 && pongs.length === 3);
        assert.deepEqual(pings, [Buffer.from('hi'), Buffer.from('0'), Buffer.alloc(0)]);
        assert.deepEqual(pongs, [Buffer.from([1, 2]), Buffer.from('7'), Buffer.alloc(0)]);
      });

      it('ping/pong data over 125 bytes throws a RangeError', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut } = await scope.connect(side);
        for (const method of ['ping', 'pong'] as const) {
          assert.throws(() => sut[method](Buffer.alloc(126)), (e: Error) => e instanceof RangeError && e.message === 'The data size must not be greater than 125 bytes');
        }
        sut.ping(Buffer.alloc(125));
      });

      it('ping/pong while CONNECTING throw; after close() their callbacks get the error', T, async (t) => {
        const scope = new Scope(impl, t);
        if (side === 'client') {
          const stuck = stuckClient(impl);
          stuck.on('error', () => undefined);
          for (const method of ['ping', 'pong'] as const) {
            assert.throws(() => stuck[method](), (e: Error) => e.message === NOT_OPEN_0);
            assert.throws(() => stuck[method](() => undefined), (e: Error) => e.message === NOT_OPEN_0);
          }
          stuck.terminate();
        }
        const { sut } = await scope.connect(side);
        sut.close();
        const ping = await new Promise<Error>((resolve) => sut.ping('hi', undefined, resolve as (e?: Error) => void));
        assert.equal(ping.message, 'WebSocket is not open: readyState 2 (CLOSING)');
        assert.equal(sut.bufferedAmount, 2);
        await once(sut, 'close');
        const pong = await new Promise<Error>((resolve) => sut.pong(resolve as () => void));
        assert.equal(pong.message, 'WebSocket is not open: readyState 3 (CLOSED)');
      });

      it('mask: ws frames as told (the peer refuses with 1002); duplex ignores it and frames as its side must', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const wrongWay = side === 'server' ? { mask: true } : { mask: false };
        if (impl.name === 'duplex') {
          const got = messages(peer, 1);
          sut.send('hi', wrongWay);
          const [[data, isBinary]] = await got;
          assert.equal(String(data), 'hi');
          assert.equal(isBinary, false);
          return;
        }
        const errored = once(peer, 'error');
        sut.send('hi', wrongWay);
        const [error] = (await errored) as [Error];
        assert.equal(error.message, side === 'server' ? 'Invalid WebSocket frame: MASK must be clear' : 'Invalid WebSocket frame: MASK must be set');
        const [code] = await once(sut, 'close');
        assert.equal(code, 1002);
      });
    });
  }
}
