// Specification (ws 8 doc/ws.md): server.address(), server.clients, server.close([callback]),
// server.handleUpgrade(), server.shouldHandle(), and the server events 'listening', 'close',
// 'error' and 'connection' around them. ws 8's close() stops accepting but does NOT close the
// clients; 'close' comes once the server is closed and, with clientTracking, the clients gone.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { IMPLS, REF, Scope, T, delay, once, rawExchange, upgradeRequest, type WebSocketLike } from './spec-harness.js';

for (const impl of IMPLS) {
  describe(`WebSocketServer methods [${impl.name}]`, () => {
    const { WebSocketServer } = impl;

    it('address() returns the bound address in port mode', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, port } = await scope.server();
      assert.deepEqual(wss.address(), { address: '127.0.0.1', family: 'IPv4', port });
    });

    it("address() returns the given server's address in server mode", T, async (t) => {
      const scope = new Scope(impl, t);
      const { server } = await scope.httpServer();
      const wss = scope.adopt(new WebSocketServer({ server }));
      assert.deepEqual(wss.address(), server.address());
    });

    it('address() throws in noServer mode', T, () => {
      const wss = new WebSocketServer({ noServer: true });
      assert.throws(() => wss.address(), (error: Error) => error.constructor === Error && error.message === 'The server is operating in "noServer" mode');
      wss.close();
    });

    it('address() returns null after close', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss } = await scope.server();
      await new Promise((resolve) => wss.close(resolve));
      assert.equal(wss.address(), null);
    });

    it('close(cb) in port mode closes the http server: cb and one close event, new connections refused', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, port } = await scope.server();
      let closes = 0;
      wss.on('close', () => void closes++);
      const done = new Promise<unknown>((resolve) => wss.close(resolve));
      wss.close();
      wss.close();
      assert.equal(await done, undefined);
      await delay(10);
      assert.equal(closes, 1);
      const refused = await new Promise<NodeJS.ErrnoException>((resolve) => netConnect(port, '127.0.0.1').on('error', resolve));
      assert.equal(refused.code, 'ECONNREFUSED');
    });

    it('close() does not close the connected clients; close comes after they are gone', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server();
      const connection = once(wss, 'connection');
      const client = await scope.open(url, undefined, undefined, REF);
      const [peer] = (await connection) as [WebSocketLike];
      let closed = false;
      wss.close(() => void (closed = true));
      await delay(50);
      assert.equal(closed, false);
      assert.equal(client.readyState, 1);
      assert.equal(peer.readyState, 1);
      peer.send('still here');
      const [data] = await once(client, 'message');
      assert.equal(String(data), 'still here');
      client.close();
      await once(wss, 'close');
      assert.equal(closed, true);
    });

    it('close(cb) when already closed calls cb with "The server is not running" and emits close again', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss } = await scope.server();
      await new Promise((resolve) => wss.close(resolve));
      const again = once(wss, 'close');
      const error = await new Promise<Error | undefined>((resolve) => wss.close(resolve));
      assert.ok(error instanceof Error);
      assert.equal(error.message, 'The server is not running');
      await again;
    });

    it('close() in noServer mode emits close (without clients, and without client tracking)', T, async () => {
      for (const clientTracking of [true, false]) {
        const wss = new WebSocketServer({ noServer: true, clientTracking });
        const closed = once(wss, 'close');
        const cb = new Promise<unknown>((resolve) => wss.close(resolve));
        await closed;
        assert.equal(await cb, undefined);
      }
    });

    it('close() in noServer mode with tracked clients waits for them', T, async (t) => {
      const scope = new Scope(impl, t);
      const wss = scope.adopt(new WebSocketServer({ noServer: true }));
      const { server, url } = await scope.httpServer();
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
      const connection = once(wss, 'connection');
      const client = await scope.open(url, undefined, undefined, REF);
      await connection;
      let closed = false;
      wss.close(() => void (closed = true));
      await delay(30);
      assert.equal(closed, false);
      client.terminate();
      await once(wss, 'close');
    });

    it('close() in server mode leaves the http server open and removes its listeners', T, async (t) => {
      const scope = new Scope(impl, t);
      const server = createServer();
      scope.trackHttp(server);
      const before = { listening: server.listenerCount('listening'), upgrade: server.listenerCount('upgrade'), error: server.listenerCount('error') };
      const wss = new WebSocketServer({ server });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      await new Promise((resolve) => wss.close(resolve));
      assert.equal(server.listening, true);
      assert.equal(server.listenerCount('listening'), before.listening);
      assert.equal(server.listenerCount('upgrade'), before.upgrade);
      assert.equal(server.listenerCount('error'), before.error);
    });

    it('handleUpgrade(req, socket, head, cb) calls cb(ws, req) and emits no connection by itself', T, async (t) => {
      const scope = new Scope(impl, t);
      const wss = scope.adopt(new WebSocketServer({ noServer: true }));
      const { server, url } = await scope.httpServer();
      let connections = 0;
      wss.on('connection', () => void connections++);
      const upgraded = new Promise<[WebSocketLike, IncomingMessage, IncomingMessage]>((resolve) =>
        server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => wss.handleUpgrade(req, socket, head, (ws, request) => resolve([ws, request, req]))),
      );
      await scope.open(`${url}/path`, undefined, undefined, REF);
      const [ws, request, req] = await upgraded;
      assert.ok(ws instanceof impl.WebSocket);
      assert.equal(request, req);
      assert.equal(connections, 0);
      assert.ok(wss.clients.has(ws));
    });

    it('shouldHandle(req) matches the path option, ignoring the query; without path it is true', T, () => {
      const wss = new WebSocketServer({ noServer: true, path: '/foo' });
      assert.equal(wss.shouldHandle({ url: '/foo' } as IncomingMessage), true);
      assert.equal(wss.shouldHandle({ url: '/foo?bar=baz' } as IncomingMessage), true);
      assert.equal(wss.shouldHandle({ url: '/bar' } as IncomingMessage), false);
      assert.equal(wss.shouldHandle({ url: '/foo/' } as IncomingMessage), false);
      const any = new WebSocketServer({ noServer: true });
      assert.equal(any.shouldHandle({ url: '/whatever?x' } as IncomingMessage), true);
      wss.close();
      any.close();
    });

    it('shouldHandle is what handleUpgrade consults: a subclass can override it', T, async (t) => {
      const scope = new Scope(impl, t);
      class Picky extends WebSocketServer {
        override shouldHandle(req: IncomingMessage): boolean {
          return req.headers['x-let-me-in'] === 'yes';
        }
      }
      const wss = scope.adopt(new Picky({ port: 0, host: '127.0.0.1' }));
      await once(wss, 'listening');
      const { port } = wss.address() as { port: number };
      const refused = await rawExchange(port, upgradeRequest());
      assert.equal(refused.status, 400);
      const accepted = await rawExchange(port, upgradeRequest(['X-Let-Me-In: yes']), 200);
      assert.equal(accepted.status, 101);
    });

    it("'listening' is emitted in port mode, then 'connection' for each client", T, async (t) => {
      const scope = new Scope(impl, t);
      const wss = scope.adopt(new WebSocketServer({ port: 0, host: '127.0.0.1' }));
      const events: string[] = [];
      wss.on('listening', () => void events.push('listening'));
      wss.on('connection', () => void events.push('connection'));
      await once(wss, 'listening');
      const { port } = wss.address() as { port: number };
      const connection = once(wss, 'connection');
      await scope.open(`ws://127.0.0.1:${port}`, undefined, undefined, REF);
      await connection;
      assert.deepEqual(events, ['listening', 'connection']);
    });
  });
}
