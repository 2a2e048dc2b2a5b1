// Specification (ws 8 doc/ws.md): websocket.binaryType, bufferedAmount, extensions, isPaused,
// protocol, readyState, url, and pause()/resume(), on both ends (the other end is a real `ws`).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IMPLS, REF, SIDES, Scope, T, delay, once, stuckClient, until } from './spec-harness.js';

for (const impl of IMPLS) {
  describe(`attributes of a new client [${impl.name}]`, () => {
    it('defaults: CONNECTING, binaryType nodebuffer, bufferedAmount 0, no protocol or extensions, not paused', T, () => {
      const ws = stuckClient(impl);
      ws.on('error', () => undefined);
      assert.equal(ws.readyState, impl.WebSocket.CONNECTING);
      assert.equal(ws.binaryType, 'nodebuffer');
      assert.equal(ws.bufferedAmount, 0);
      assert.equal(ws.protocol, '');
      assert.equal(ws.extensions, '');
      assert.equal(ws.isPaused, false);
      assert.equal(ws.url, 'ws://stuck.invalid/');
      ws.terminate();
    });

    it('binaryType accepts nodebuffer, arraybuffer, fragments and blob; other values are ignored', T, () => {
      const ws = stuckClient(impl);
      ws.on('error', () => undefined);
      for (const [set, expected] of [
        ['arraybuffer', 'arraybuffer'],
        ['foo', 'arraybuffer'],
        ['fragments', 'fragments'],
        ['', 'fragments'],
        ['blob', 'blob'],
        ['nodebuffer', 'nodebuffer'],
      ]) {
        ws.binaryType = set as 'nodebuffer';
        assert.equal(ws.binaryType, expected, `after setting '${set}'`);
      }
      ws.terminate();
    });

    it('url is the normalized address; http: and https: become ws: and wss:', T, () => {
      for (const [address, url] of [
        ['ws://stuck.invalid', 'ws://stuck.invalid/'],
        ['ws://stuck.invalid:8080/a?b=c', 'ws://stuck.invalid:8080/a?b=c'],
        ['http://stuck.invalid/x', 'ws://stuck.invalid/x'],
        ['https://stuck.invalid/x', 'wss://stuck.invalid/x'],
      ]) {
        const ws = new impl.WebSocket(address!, { lookup: () => undefined } as never);
        ws.on('error', () => undefined);
        assert.equal(ws.url, url);
        ws.terminate();
      }
      const fromUrl = new impl.WebSocket(new URL('ws://stuck.invalid/u'), { lookup: () => undefined } as never);
      fromUrl.on('error', () => undefined);
      assert.equal(fromUrl.url, 'ws://stuck.invalid/u');
      fromUrl.terminate();
    });
  });

  for (const side of SIDES) {
    describe(`attributes, ${side} side [${impl.name}]`, () => {
      it('readyState goes OPEN, then CLOSING on close(), then CLOSED at the close event', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut } = await scope.connect(side);
        assert.equal(sut.readyState, impl.WebSocket.OPEN);
        sut.close(1001);
        assert.equal(sut.readyState, impl.WebSocket.CLOSING);
        let atClose = -1;
        sut.on('close', () => void (atClose = sut.readyState));
        await once(sut, 'close');
        assert.equal(atClose, impl.WebSocket.CLOSED);
      });

      it('protocol is the negotiated subprotocol', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut } = await scope.connect(side, {}, {}, ['chat', 'superchat']);
        assert.equal(sut.protocol, 'chat');
      });

      it("extensions is '' without and 'permessage-deflate' with the extension", T, async (t) => {
        const scope = new Scope(impl, t);
        const plain = await scope.connect(side, { perMessageDeflate: false }, { perMessageDeflate: false });
        assert.equal(plain.sut.extensions, '');
        const deflate = await scope.connect(side, { perMessageDeflate: true }, { perMessageDeflate: true });
        assert.equal(deflate.sut.extensions, 'permessage-deflate');
      });

      it('bufferedAmount is 0 when open and grows while the socket cannot write', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        assert.equal(sut.bufferedAmount, 0);
        (peer as unknown as { _socket: { pause(): void } })._socket.pause();
        const chunk = Buffer.alloc(64 * 1024, 61);
        for (let i = 0; i < 200 && sut.bufferedAmount === 0; i++) sut.send(chunk);
        assert.ok(sut.bufferedAmount > 0, 'bufferedAmount never grew');
        (peer as unknown as { _socket: { resume(): void } })._socket.resume();
        await until(() => sut.bufferedAmount === 0, 5000, 'the buffer to drain');
      });

      it('bufferedAmount counts a message not yet written, and falls to 0 in its callback', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut } = await scope.connect(side);
        const at = await new Promise<number>((resolve) => sut.send('foo', () => resolve(sut.bufferedAmount)));
        assert.equal(at, 0);
      });

      it("binaryType 'arraybuffer', 'fragments', 'blob' and 'nodebuffer' shape binary messages; text stays a Buffer", T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        sut.binaryType = 'arraybuffer';
        peer.send(Buffer.from('ab'));
        const [ab, isBinary] = await once(sut, 'message');
        assert.ok(ab instanceof ArrayBuffer);
        assert.deepEqual(Buffer.from(ab), Buffer.from('ab'));
        assert.equal(isBinary, true);
        peer.send('text');
        const [text] = await once(sut, 'message');
        assert.ok(Buffer.isBuffer(text));
        sut.binaryType = 'fragments';
        peer.send(Buffer.from('fr'), { fin: false });
        peer.send(Buffer.from('ag'), { fin: true });
        const [fragments] = await once(sut, 'message');
        assert.ok(Array.isArray(fragments));
        assert.deepEqual(Buffer.concat(fragments as Buffer[]), Buffer.from('frag'));
        assert.ok((fragments as Buffer[]).every((f) => Buffer.isBuffer(f)));
        sut.binaryType = 'blob' as 'nodebuffer';
        peer.send(Buffer.from('blob'));
        const [blob] = await once(sut, 'message');
        assert.ok(blob instanceof Blob);
        assert.equal(await (blob as Blob).text(), 'blob');
        sut.binaryType = 'nodebuffer';
        peer.send(Buffer.from('nb'));
        const [nb] = await once(sut, 'message');
        assert.ok(Buffer.isBuffer(nb));
      });

      it('pause() stops message events and sets isPaused; resume() delivers what waited', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut, peer } = await scope.connect(side);
        const got: string[] = [];
        sut.on('message', (d) => void got.push(String(d)));
        sut.pause();
        assert.equal(sut.isPaused, true);
        peer.send('one');
        peer.send('two');
        await delay(50);
        assert.deepEqual(got, []);
        sut.resume();
        assert.equal(sut.isPaused, false);
        await until(() => got.length === 2);
        assert.deepEqual(got, ['one', 'two']);
      });

      it('pause() and resume() do nothing on a CLOSED socket', T, async (t) => {
        const scope = new Scope(impl, t);
        const { sut } = await scope.connect(side);
        sut.terminate();
        await once(sut, 'close');
        sut.pause();
        assert.equal(sut.isPaused, false);
        sut.resume();
        assert.equal(sut.isPaused, false);
      });
    });
  }

  describe(`attributes, server side only [${impl.name}]`, () => {
    it('a server-side socket has no url', T, async (t) => {
      const scope = new Scope(impl, t);
      const { sut } = await scope.connect('server');
      assert.equal(sut.url, undefined);
    });

    it('a client url keeps its path and query once open', T, async (t) => {
      const scope = new Scope(impl, t);
      const { url } = await scope.server({}, REF);
      const ws = await scope.open(`${url}/p?q=1`);
      assert.equal(ws.url, `${url}/p?q=1`);
    });
  });
}
