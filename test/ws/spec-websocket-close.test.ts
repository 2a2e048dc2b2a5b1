// Specification (ws 8 doc/ws.md): websocket.close([code[, reason]]), websocket.terminate(), the
// 'close' event (code, reason: Buffer) and the readyState transitions around them, on both ends
// (the other end is a real `ws`), and close/terminate while the client is still CONNECTING.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IMPLS, REF, SIDES, Scope, T, delay, once, record, stuckClient } from './spec-harness.js';

const EARLY = 'WebSocket was closed before the connection was established';

for (const impl of IMPLS) {
  for (const side of SIDES) {
    describe(`close/terminate, ${side} side [${impl.name}]`, () => {
      it('close() without a code: the peer gets 1005 and an empty reason; so does the closer', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const peerClosed = once(peer, 'close');
        sut.close();
        assert.equal(sut.readyState, impl.WebSocket.CLOSING);
        const [code, reason] = await once(sut, 'close');
        assert.equal(code, 1005);
        assert.ok(Buffer.isBuffer(reason));
        assert.equal((reason as Buffer).length, 0);
        assert.equal(sut.readyState, impl.WebSocket.CLOSED);
        const [peerCode] = await peerClosed;
        assert.equal(peerCode, 1005);
      });

      it('close(code, reason): both ends see the code and the reason (a Buffer)', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const peerClosed = once(peer, 'close');
        sut.close(4000, 'some daft reason');
        const [code, reason] = await once(sut, 'close');
        assert.equal(code, 4000);
        assert.deepEqual(reason, Buffer.from('some daft reason'));
        const [peerCode, peerReason] = await peerClosed;
        assert.equal(peerCode, 4000);
        assert.equal(String(peerReason), 'some daft reason');
      });

      it('close(1000) and a Buffer reason are accepted; 1013 and 1014 too', T, async (t) => {
        const scope = new Scope(impl, t);
        for (const [code, reason] of [
          [1000, undefined],
          [1013, Buffer.from('try again')],
          [1014, ''],
        ] as const) {
          const { sut, peer } = await scope.connect(side);
          const peerClosed = once(peer, 'close');
          sut.close(code, reason as string | undefined);
          const [peerCode, peerReason] = await peerClosed;
          assert.equal(peerCode, code);
          assert.equal(String(peerReason), reason === undefined ? '' : String(reason));
        }
      });

      it('close() with an invalid code throws a TypeError; a reason over 123 bytes a RangeError', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut } = await scope.connect(side);
        for (const code of ['error', 999, 1004, 1005, 1006, 1015, 2999, 5000]) {
          assert.throws(
            () => sut.close(code as number),
            (e: Error) => e instanceof TypeError && e.message === 'First argument must be a valid error code number',
            String(code),
          );
        }
        assert.throws(() => sut.close(1000, 'a'.repeat(124)), (e: Error) => e instanceof RangeError && e.message === 'The message must not be greater than 123 bytes');
        assert.equal(sut.readyState, impl.WebSocket.OPEN);
        sut.close(1000, 'é'.repeat(61));
        await once(sut, 'close');
      });

      it('the peer closing with a code: the socket answers it and emits close(code, reason) once', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const events = record(sut);
        const peerClosed = once(peer, 'close');
        peer.close(4001, 'bye');
        const [code, reason] = await once(sut, 'close');
        assert.equal(code, 4001);
        assert.deepEqual(reason, Buffer.from('bye'));
        assert.equal((await peerClosed)[0], 4001);
        await delay(20);
        assert.deepEqual(events, ['close']);
      });

      it('every message sent before close() is delivered before the close', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const got: string[] = [];
        peer.on('message', (data) => void got.push(String(data)));
        const errors: unknown[] = [];
        const cb = (e?: Error): void => void (e && errors.push(e));
        sut.send('foo', cb);
        sut.send('bar', cb);
        sut.send('baz', cb);
        sut.close();
        sut.close();
        const [code] = await once(peer, 'close');
        assert.equal(code, 1005);
        assert.deepEqual(got, ['foo', 'bar', 'baz']);
        assert.deepEqual(errors, []);
      });

      it('close() and terminate() on a CLOSED socket do nothing', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut } = await scope.connect(side);
        const events = record(sut);
        sut.close();
        await once(sut, 'close');
        sut.close();
        sut.terminate();
        sut.close(1000, 'again');
        await delay(20);
        assert.deepEqual(events, ['close']);
        assert.equal(sut.readyState, impl.WebSocket.CLOSED);
      });

      it('terminate(): CLOSING at once, then close 1006 on both ends, no error', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const events = record(sut);
        const peerClosed = once(peer, 'close');
        sut.terminate();
        assert.equal(sut.readyState, impl.WebSocket.CLOSING);
        const [code, reason] = await once(sut, 'close');
        assert.equal(code, 1006);
        assert.deepEqual(reason, Buffer.alloc(0));
        assert.equal((await peerClosed)[0], 1006);
        assert.deepEqual(events, ['close']);
      });

      it('the peer vanishing (TCP destroyed) gives close 1006 with an empty reason and no error', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const events = record(sut);
        peer.terminate();
        const [code, reason] = await once(sut, 'close');
        assert.equal(code, 1006);
        assert.equal(String(reason), '');
        assert.deepEqual(events, ['close']);
      });

      it('sending to a peer that vanished ends in one close 1006 (socket errors are not re-emitted)', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const events = record(sut);
        peer.terminate();
        sut.send('foo');
        sut.send('bar');
        const [code] = await once(sut, 'close');
        assert.equal(code, 1006);
        await delay(20);
        assert.deepEqual(events, ['close']);
      });
    });
  }

  describe(`close/terminate while CONNECTING [${impl.name}]`, () => {
    for (const method of ['close', 'terminate'] as const) {
      it(`${method}() while CONNECTING: error '${EARLY}', then close 1006; no open`, T, async (t) => {
        const scope = new Scope(impl, t);
        const { url } = await scope.server({}, REF);
        const ws = scope.client(url);
        const events = record(ws);
        let stateAtError = -1;
        ws.on('error', () => void (stateAtError = ws.readyState));
        const errored = once(ws, 'error');
        const closed = once(ws, 'close');
        ws[method]();
        assert.equal(ws.readyState, impl.WebSocket.CLOSING);
        const [error] = (await errored) as [Error];
        assert.equal(error.message, EARLY);
        assert.equal(stateAtError, impl.WebSocket.CLOSING);
        const [code, reason] = await closed;
        assert.equal(code, 1006);
        assert.equal(String(reason), '');
        assert.equal(ws.readyState, impl.WebSocket.CLOSED);
        assert.deepEqual(events, ['error', 'close']);
      });

      it(`${method}() from an 'upgrade' listener aborts the connection with '${EARLY}'`, T, async (t) => {
        const scope = new Scope(impl, t);
        const { url } = await scope.server({}, REF);
        const ws = scope.client(url);
        const events = record(ws);
        ws.on('upgrade', () => ws[method]());
        const closed = once(ws, 'close');
        const [error] = (await once(ws, 'error')) as [Error];
        assert.equal(error.message, EARLY);
        await closed;
        assert.deepEqual(events, ['upgrade', 'error', 'close']);
      });

      it(`${method}() from the error listener of a refused connection is harmless`, T, async (t) => {
        const scope = new Scope(impl, t);
        const { server, port } = await scope.httpServer();
        await new Promise((resolve) => server.close(resolve));
        const ws = scope.client(`ws://127.0.0.1:${port}`);
        const closes: number[] = [];
        ws.on('close', (code: number) => void closes.push(code));
        const [error] = (await once(ws, 'error')) as [NodeJS.ErrnoException];
        assert.equal(error.code, 'ECONNREFUSED');
        ws[method]();
        await delay(20);
        assert.deepEqual(closes, [1006]);
        assert.equal(ws.readyState, impl.WebSocket.CLOSED);
      });
    }

    it('send/ping/pong after a CONNECTING close add to bufferedAmount', T, async () => {
      const ws = stuckClient(impl);
      const seen: number[] = [];
      ws.on('error', () => {
        seen.push(ws.readyState, ws.bufferedAmount);
        ws.send('hi');
        ws.ping('hi');
        ws.pong('hi');
        (ws.send as () => void)();
        seen.push(ws.bufferedAmount);
      });
      const closed = once(ws, 'close');
      ws.close();
      await closed;
      ws.send('hi');
      seen.push(ws.bufferedAmount);
      assert.deepEqual(seen, [impl.WebSocket.CLOSING, 0, 6, 8]);
    });
  });
}
