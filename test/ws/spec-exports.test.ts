// Specification (ws 8 README and doc/ws.md): the module's exports, the statics on the WebSocket
// class, the ready-state constants on class and prototype, and the attribute descriptors.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { IMPLS, OURS_BUILT, OURS_ESM, T, stuckClient } from './spec-harness.js';

const require = createRequire(import.meta.url);

it('our module is built (dist/src/ws/index.js): the suite runs against it', () => {
  assert.ok(OURS_BUILT, `${OURS_ESM.href} is missing: the spec suite ran against ws only`);
});

for (const impl of IMPLS) {
  describe(`exports [${impl.name}]`, () => {
    const { WebSocket, WebSocketServer } = impl;

    it('the ESM default export is the WebSocket class, also exported by name', T, () => {
      assert.equal(typeof impl.esm.default, 'function');
      assert.equal(impl.esm.WebSocket, impl.esm.default);
      assert.equal(typeof impl.esm.WebSocketServer, 'function');
      assert.equal(typeof impl.esm.createWebSocketStream, 'function');
    });

    it('the WebSocket class carries WebSocket, WebSocketServer, Server and createWebSocketStream', T, () => {
      assert.equal(WebSocket.WebSocket, WebSocket);
      assert.equal(WebSocket.WebSocketServer, WebSocketServer);
      assert.equal(WebSocket.Server, WebSocketServer);
      assert.equal(WebSocket.createWebSocketStream, impl.createWebSocketStream);
    });

    it('require() of the CommonJS entry returns the WebSocket class itself', T, () => {
      const cjs = impl.cjs as typeof WebSocket;
      assert.equal(cjs, WebSocket);
      assert.equal(cjs.WebSocketServer, WebSocketServer);
      assert.equal(cjs.Server, WebSocketServer);
      assert.equal(cjs.createWebSocketStream, impl.createWebSocketStream);
    });

    it('the bare specifier resolves, for import and for require, to the same classes', T, async () => {
      const esm = (await import(impl.specifier)) as Record<string, unknown>;
      assert.equal(esm.default, WebSocket);
      assert.equal(esm.WebSocketServer, WebSocketServer);
      assert.equal(require(impl.specifier), WebSocket);
    });

    it('WebSocket and WebSocketServer are EventEmitters', T, () => {
      assert.ok(WebSocket.prototype instanceof EventEmitter);
      assert.ok(WebSocketServer.prototype instanceof EventEmitter);
      const wss = new WebSocketServer({ noServer: true });
      assert.ok(wss instanceof EventEmitter);
      wss.close();
    });

    const states = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
    for (const [state, value] of Object.entries(states)) {
      it(`${state} is a read-only enumerable constant ${value} on the class and on the prototype`, T, () => {
        const expected = { configurable: false, enumerable: true, value, writable: false };
        assert.deepEqual(Object.getOwnPropertyDescriptor(WebSocket, state), expected);
        assert.deepEqual(Object.getOwnPropertyDescriptor(WebSocket.prototype, state), expected);
        assert.throws(() => {
          (WebSocket as unknown as Record<string, number>)[state] = 9;
        }, TypeError);
      });
    }

    it('an instance shows the constants too', T, () => {
      const ws = stuckClient(impl);
      ws.on('error', () => undefined);
      assert.equal(ws.CONNECTING, 0);
      assert.equal(ws.OPEN, 1);
      assert.equal(ws.CLOSING, 2);
      assert.equal(ws.CLOSED, 3);
      ws.terminate();
    });

    for (const attribute of ['bufferedAmount', 'extensions', 'isPaused', 'protocol', 'readyState', 'url']) {
      it(`${attribute} is an enumerable, configurable read-only accessor of the prototype`, T, () => {
        const descriptor = Object.getOwnPropertyDescriptor(WebSocket.prototype, attribute);
        assert.ok(descriptor, `${attribute} is not on the prototype`);
        assert.equal(descriptor.configurable, true);
        assert.equal(descriptor.enumerable, true);
        assert.equal(typeof descriptor.get, 'function');
        assert.equal(descriptor.set, undefined);
      });
    }

    for (const attribute of ['binaryType', 'onopen', 'onclose', 'onerror', 'onmessage']) {
      it(`${attribute} is an enumerable, configurable accessor with a setter`, T, () => {
        const descriptor = Object.getOwnPropertyDescriptor(WebSocket.prototype, attribute);
        assert.ok(descriptor, `${attribute} is not on the prototype`);
        assert.equal(descriptor.configurable, true);
        assert.equal(descriptor.enumerable, true);
        assert.equal(typeof descriptor.get, 'function');
        assert.equal(typeof descriptor.set, 'function');
      });
    }

    it('the methods of doc/ws.md are on the prototypes', T, () => {
      for (const method of ['addEventListener', 'removeEventListener', 'close', 'ping', 'pong', 'pause', 'resume', 'send', 'terminate']) {
        assert.equal(typeof (WebSocket.prototype as unknown as Record<string, unknown>)[method], 'function', method);
      }
      for (const method of ['address', 'close', 'handleUpgrade', 'shouldHandle']) {
        assert.equal(typeof (WebSocketServer.prototype as unknown as Record<string, unknown>)[method], 'function', method);
      }
    });

    it('a subclass of WebSocket can be instantiated as a client', T, () => {
      class Custom extends WebSocket {
        get foo(): string {
          return 'foo';
        }
      }
      const ws = new Custom('ws://stuck.invalid', { lookup: (() => undefined) as never });
      ws.on('error', () => undefined);
      assert.ok(ws instanceof WebSocket);
      assert.equal(ws.foo, 'foo');
      assert.equal(ws.readyState, WebSocket.CONNECTING);
      ws.terminate();
    });
  });
}
