// Specification (ws 8 doc/ws.md, createWebSocketStream(websocket[, options])): a Duplex over a
// WebSocket: writes are messages, messages are reads, end() closes, the peer's close ends the
// readable side, errors and destroy() as ws does, backpressure by pausing the socket.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { IMPLS, REF, Scope, T, delay, frame, once, until } from './spec-harness.js';

for (const impl of IMPLS) {
  describe(`createWebSocketStream [${impl.name}]`, () => {
    it('returns a Duplex; writes become messages and messages are read as Buffers', T, async (t) => {
      const scope = new Scope(impl, t);
      const { sut, peer } = await scope.connect('client');
      const duplex = impl.createWebSocketStream(sut);
      assert.ok(duplex instanceof Duplex);
      const got = once(peer, 'message');
      duplex.write('from stream');
      assert.equal(String((await got)[0]), 'from stream');
      peer.send('to stream');
      const [chunk] = await once(duplex, 'data');
      assert.ok(Buffer.isBuffer(chunk));
      assert.equal(String(chunk), 'to stream');
    });

    it('writes made while CONNECTING are sent once open', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({}, REF);
      const received = new Promise<string>((resolve) => wss.on('connection', (ws) => ws.on('message', (d) => resolve(String(d)))));
      const ws = scope.client(url);
      const duplex = impl.createWebSocketStream(ws);
      duplex.write('early');
      assert.equal(await received, 'early');
    });

    it('readableObjectMode gives text messages as strings and binary ones as Buffers', T, async (t) => {
      const scope = new Scope(impl, t);
      const { sut, peer } = await scope.connect('client');
      const duplex = impl.createWebSocketStream(sut, { readableObjectMode: true });
      const chunks: unknown[] = [];
      duplex.on('data', (c) => void chunks.push(c));
      peer.send('text');
      peer.send(Buffer.from([1]));
      await until(() => chunks.length === 2);
      assert.equal(chunks[0], 'text');
      assert.deepEqual(chunks[1], Buffer.from([1]));
    });

    it('end() closes the WebSocket (the peer gets 1005) and the stream closes', T, async (t) => {
      const scope = new Scope(impl, t);
      const { sut, peer } = await scope.connect('client');
      const duplex = impl.createWebSocketStream(sut);
      duplex.resume();
      const peerClosed = once(peer, 'close');
      const got = once(peer, 'message');
      const closed = once(duplex, 'close');
      duplex.end('last');
      assert.equal(String((await got)[0]), 'last');
      assert.equal((await peerClosed)[0], 1005);
      await closed;
      assert.equal(sut.readyState, impl.WebSocket.CLOSED);
    });

    it("the peer closing ends the readable side ('end'), then the stream closes", T, async (t) => {
      const scope = new Scope(impl, t);
      const { sut, peer } = await scope.connect('client');
      const duplex = impl.createWebSocketStream(sut);
      const events: string[] = [];
      duplex.on('end', () => void events.push('end'));
      duplex.resume();
      const closed = once(duplex, 'close');
      peer.close();
      await once(duplex, 'end');
      duplex.end();
      await closed;
      assert.deepEqual(events, ['end']);
    });

    it('destroy() terminates the WebSocket (the peer sees 1006) and emits close', T, async (t) => {
      const scope = new Scope(impl, t);
      const { sut, peer } = await scope.connect('client');
      const duplex = impl.createWebSocketStream(sut);
      const peerClosed = once(peer, 'close');
      const closed = once(duplex, 'close');
      duplex.destroy();
      assert.equal((await peerClosed)[0], 1006);
      await closed;
    });

    it('a WebSocket error destroys the stream with that error', T, async (t) => {
      const scope = new Scope(impl, t);
      const { raw, sut } = await scope.rawServer();
      const duplex = impl.createWebSocketStream(sut);
      const errored = once(duplex, 'error');
      const closed = once(duplex, 'close');
      raw.socket.write(frame(5, '', { mask: false }));
      assert.equal(await raw.closeFrame(), 1002);
      raw.socket.end();
      const [error] = (await errored) as [Error & { code: string }];
      assert.equal(error.code, 'WS_ERR_INVALID_OPCODE');
      await closed;
      assert.equal(duplex.destroyed, true);
    });

    it('backpressure: the socket is paused while the readable buffer is full and resumed on read', T, async (t) => {
      const scope = new Scope(impl, t);
      const { sut, peer } = await scope.connect('client');
      const duplex = impl.createWebSocketStream(sut, { readableHighWaterMark: 16 });
      for (let i = 0; i < 5; i++) peer.send(Buffer.alloc(16, i));
      await until(() => sut.isPaused, 2000, 'the socket to pause');
      const chunks: Buffer[] = [];
      duplex.on('data', (c: Buffer) => void chunks.push(c));
      await until(() => chunks.length === 5, 2000, 'all chunks');
      await delay(10);
      assert.equal(sut.isPaused, false);
    });

    it('a failed handshake errors the stream', T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, port } = await scope.httpServer();
      await new Promise((resolve) => server.close(resolve));
      const ws = scope.client(`ws://127.0.0.1:${port}`);
      const duplex = impl.createWebSocketStream(ws);
      const [error] = (await once(duplex, 'error')) as [NodeJS.ErrnoException];
      assert.equal(error.code, 'ECONNREFUSED');
    });
  });
}
