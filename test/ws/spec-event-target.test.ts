// Specification (ws 8 doc/ws.md): websocket.addEventListener(type, listener[, options]),
// removeEventListener(), the onopen/onmessage/onclose/onerror attributes, and the fields of the
// Event, MessageEvent, CloseEvent and ErrorEvent objects they receive.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IMPLS, REF, Scope, T, delay, once, stuckClient, type WebSocketLike } from './spec-harness.js';

interface AnyEvent {
  type: string;
  target: unknown;
  data?: unknown;
  code?: number;
  reason?: string;
  wasClean?: boolean;
  error?: unknown;
  message?: string;
}

const NOOP = (): void => undefined;

for (const impl of IMPLS) {
  describe(`event-target API [${impl.name}]`, () => {
    const idle = (): WebSocketLike => {
      const ws = stuckClient(impl);
      ws.on('error', NOOP);
      return ws;
    };

    it('onopen/onmessage/onclose/onerror are null by default and return what was set', T, () => {
      const ws = idle();
      for (const name of ['onopen', 'onmessage', 'onclose', 'onerror'] as const) {
        assert.equal(ws[name], null, name);
        const fn = (): void => undefined;
        ws[name] = fn;
        assert.equal(ws[name], fn, name);
      }
      ws.terminate();
    });

    it('setting an on-attribute again replaces only that listener; a non-function removes it', T, () => {
      const ws = idle();
      const other = (): void => undefined;
      ws.on('close', other);
      ws.onclose = NOOP;
      assert.equal(ws.listenerCount('close'), 2);
      const second = (): void => undefined;
      ws.onclose = second;
      assert.equal(ws.listenerCount('close'), 2);
      assert.equal(ws.onclose, second);
      assert.equal(ws.listeners('close')[0], other);
      ws.onclose = 'not a function' as unknown as null;
      assert.equal(ws.onclose, null);
      assert.equal(ws.listenerCount('close'), 1);
      ws.terminate();
    });

    it('listeners added with on() are not reported by the on-attributes', T, () => {
      const ws = idle();
      ws.on('open', NOOP);
      assert.equal(ws.onopen, null);
      assert.deepEqual(ws.listeners('open'), [NOOP]);
      ws.terminate();
    });

    it('addEventListener ignores a listener already added, and unknown event types', T, () => {
      const ws = idle();
      ws.addEventListener('message', NOOP);
      ws.addEventListener('message', NOOP);
      assert.equal(ws.listenerCount('message'), 1);
      ws.addEventListener('foo' as 'open', NOOP);
      assert.equal(ws.listenerCount('foo'), 0);
      ws.terminate();
    });

    it('removeEventListener removes what addEventListener added (also with once), not on-attributes', T, () => {
      const ws = idle();
      ws.addEventListener('message', NOOP);
      ws.addEventListener('open', NOOP, { once: true });
      ws.onmessage = NOOP;
      ws.removeEventListener('message', (): void => undefined);
      assert.equal(ws.listenerCount('message'), 2);
      ws.removeEventListener('message', NOOP);
      ws.removeEventListener('open', NOOP);
      assert.equal(ws.listenerCount('message'), 1);
      assert.equal(ws.onmessage, NOOP);
      assert.equal(ws.listenerCount('open'), 0);
      ws.terminate();
    });

    it('{ once: true } listeners run once', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({}, REF);
      wss.on('connection', (ws) => {
        ws.send('a');
        ws.send('b');
      });
      const ws = scope.client(url);
      const got: unknown[] = [];
      ws.addEventListener('message', (event) => void got.push(event.data), { once: true });
      await once(ws, 'open');
      await delay(50);
      assert.deepEqual(got, ['a']);
    });

    it('events carry type and target; MessageEvent.data is a string for text and a Buffer for binary', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({}, REF);
      wss.on('connection', (ws) => {
        ws.send('hi');
        ws.send(Buffer.from([1, 2]));
      });
      const ws = scope.client(url);
      const events: AnyEvent[] = [];
      ws.addEventListener('open', (e) => void events.push(e as unknown as AnyEvent));
      ws.addEventListener('message', (e) => void events.push(e as unknown as AnyEvent));
      await new Promise<void>((resolve) => ws.on('message', () => events.length === 3 && resolve()));
      assert.equal(events[0]!.type, 'open');
      assert.equal(events[0]!.target, ws);
      assert.equal(events[1]!.type, 'message');
      assert.equal(events[1]!.target, ws);
      assert.equal(events[1]!.data, 'hi');
      assert.deepEqual(events[2]!.data, Buffer.from([1, 2]));
      assert.ok(Buffer.isBuffer(events[2]!.data));
    });

    it('a CloseEvent has code, reason (a string) and wasClean true after a closing handshake', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({}, REF);
      wss.on('connection', (ws) => ws.close(4000, 'some daft reason'));
      const ws = scope.client(url);
      const closed = new Promise<AnyEvent>((resolve) => ws.addEventListener('close', (e) => resolve(e as unknown as AnyEvent)));
      const event = await closed;
      assert.equal(event.type, 'close');
      assert.equal(event.target, ws);
      assert.equal(event.code, 4000);
      assert.equal(event.reason, 'some daft reason');
      assert.equal(event.wasClean, true);
    });

    it('a CloseEvent after terminate() has code 1006 and wasClean false', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({}, REF);
      wss.on('connection', (ws) => ws.terminate());
      const ws = scope.client(url);
      const event = await new Promise<AnyEvent>((resolve) => (ws.onclose = (e) => resolve(e as unknown as AnyEvent)));
      assert.equal(event.code, 1006);
      assert.equal(event.reason, '');
      assert.equal(event.wasClean, false);
    });

    it('an ErrorEvent has error and message', T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, port } = await scope.httpServer();
      await new Promise((resolve) => server.close(resolve));
      const ws = scope.client(`ws://127.0.0.1:${port}`);
      const event = await new Promise<AnyEvent>((resolve) => ws.addEventListener('error', (e) => resolve(e as unknown as AnyEvent)));
      assert.equal(event.type, 'error');
      assert.equal(event.target, ws);
      assert.ok(event.error instanceof Error);
      assert.equal((event.error as NodeJS.ErrnoException).code, 'ECONNREFUSED');
      assert.equal(event.message, (event.error as Error).message);
    });

    it('an emitted error reaches onerror as an ErrorEvent with that very error', T, () => {
      const ws = idle();
      let event: AnyEvent | undefined;
      ws.onerror = (e) => void (event = e as unknown as AnyEvent);
      const forced = new Error('forced');
      ws.emit('error', forced);
      assert.equal(event?.error, forced);
      assert.equal(event?.message, 'forced');
      ws.terminate();
    });

    it('a listener object with handleEvent is called with the event; a function with this = the socket', T, async (t) => {
      const scope = new Scope(impl, t);
      const { url } = await scope.server({}, REF);
      const ws = scope.client(url);
      let viaObject: AnyEvent | undefined;
      const selves: unknown[] = [];
      ws.addEventListener('open', { handleEvent: (e: unknown) => void (viaObject = e as AnyEvent) } as never);
      ws.addEventListener('open', function (this: unknown) {
        selves.push(this);
      });
      await once(ws, 'open');
      assert.equal(viaObject?.type, 'open');
      assert.deepEqual(selves, [ws]);
    });

    it('onmessage and onopen work like the EventEmitter interface (echo round trip)', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({}, REF);
      wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
      const ws = scope.client(url);
      ws.onopen = () => ws.send('foo');
      const event = await new Promise<AnyEvent>((resolve) => (ws.onmessage = (e) => resolve(e as unknown as AnyEvent)));
      assert.equal(event.data, 'foo');
      const closed = new Promise<AnyEvent>((resolve) => (ws.onclose = (e) => resolve(e as unknown as AnyEvent)));
      ws.close();
      const close = await closed;
      assert.equal(close.code, 1005);
      assert.equal(close.wasClean, true);
    });
  });
}
