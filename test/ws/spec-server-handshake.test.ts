// Specification (ws 8 doc/ws.md, server.handleUpgrade and the opening handshake): what the server
// answers to each broken request, with ws's statuses and bodies, and what a good one gets.
//
// Differences from ws, kept on purpose (duplex is stricter on the protocol):
// - A missing or unsupported Sec-WebSocket-Version: ws answers 400 'Missing or invalid
//   Sec-WebSocket-Version header'; duplex answers 426 Upgrade Required (RFC 6455 §4.4), both with
//   a Sec-WebSocket-Version header listing what is supported.
// - An HTTP/1.0 upgrade request and a request without Host: ws upgrades them; duplex refuses them
//   (RFC 6455 §4.1: "The method of the request MUST be GET, and the HTTP version MUST be at
//   least 1.1"; "The request MUST contain a |Host| header field").
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IncomingMessage, STATUS_CODES, type Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { IMPLS, REF, Scope, T, acceptKey, delay, duplexPair, frame, once, parseHttp, rawExchange, until, upgradeRequest, type WebSocketLike } from './spec-harness.js';

for (const impl of IMPLS) {
  describe(`opening handshake, server side [${impl.name}]`, () => {
    const refusals: [string, string, number, string, { deflate?: boolean }?][] = [
      ['a method other than GET', upgradeRequest([], { method: 'POST' }), 405, 'Invalid HTTP method'],
      ['an Upgrade header that is not websocket', upgradeRequest([]).replace('Upgrade: websocket', 'Upgrade: foo'), 400, 'Invalid Upgrade header'],
      ['no Sec-WebSocket-Key', upgradeRequest([], { key: '' }), 400, 'Missing or invalid Sec-WebSocket-Key header'],
      ['a malformed Sec-WebSocket-Key', upgradeRequest([], { key: 'P5l8BJcZwRc=' }), 400, 'Missing or invalid Sec-WebSocket-Key header'],
      ['an invalid Sec-WebSocket-Protocol', upgradeRequest(['Sec-WebSocket-Protocol: foo;bar']), 400, 'Invalid Sec-WebSocket-Protocol header'],
      [
        'an invalid Sec-WebSocket-Extensions (deflate enabled)',
        upgradeRequest(['Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=foo']),
        400,
        'Invalid or unacceptable Sec-WebSocket-Extensions header',
        { deflate: true },
      ],
    ];
    for (const [what, request, status, body, options] of refusals) {
      it(`refuses ${what}: ${status} '${body}'`, T, async (t) => {
        const scope = new Scope(impl, t);
        const { wss, port } = await scope.server(options?.deflate ? { perMessageDeflate: true } : {});
        let connections = 0;
        wss.on('connection', () => void connections++);
        const answer = await rawExchange(port, request);
        assert.equal(answer.status, status);
        assert.equal(answer.body, body);
        assert.equal(answer.headers['content-length'], String(Buffer.byteLength(body)));
        assert.equal(connections, 0);
      });
    }

    it(`refuses a missing or unsupported Sec-WebSocket-Version (${impl.name === 'ws' ? '400' : '426'})`, T, async (t) => {
      const scope = new Scope(impl, t);
      const { port } = await scope.server();
      for (const version of ['', '12']) {
        const answer = await rawExchange(port, upgradeRequest([], { version }));
        if (impl.name === 'ws') {
          assert.equal(answer.status, 400);
          assert.equal(answer.body, 'Missing or invalid Sec-WebSocket-Version header');
        } else {
          assert.equal(answer.status, 426);
        }
        assert.match(answer.headers['sec-websocket-version'] ?? '', /13/);
      }
    });

    it('accepts Sec-WebSocket-Version 8 as well as 13', T, async (t) => {
      const scope = new Scope(impl, t);
      const { port } = await scope.server();
      const answer = await rawExchange(port, upgradeRequest([], { version: '8' }), 200);
      assert.equal(answer.status, 101);
    });

    it(`${impl.name === 'ws' ? 'upgrades' : 'refuses'} an HTTP/1.0 request and one without Host`, T, async (t) => {
      const scope = new Scope(impl, t);
      const { port } = await scope.server();
      const old = await rawExchange(port, upgradeRequest([], { httpVersion: '1.0' }), 200);
      const hostless = await rawExchange(port, upgradeRequest([], { host: false }), 200);
      if (impl.name === 'ws') {
        assert.equal(old.status, 101);
        assert.equal(hostless.status, 101);
      } else {
        assert.ok(old.status >= 400, `HTTP/1.0 answered ${old.status}`);
        assert.ok(hostless.status >= 400, `no Host answered ${hostless.status}`);
      }
    });

    it('a path that shouldHandle refuses gets 400 Bad Request', T, async (t) => {
      const scope = new Scope(impl, t);
      const { port } = await scope.server({ path: '/here' });
      const answer = await rawExchange(port, upgradeRequest([], { path: '/elsewhere?x=1' }));
      assert.equal(answer.status, 400);
      assert.equal(answer.body, STATUS_CODES[400]);
    });

    it('a good request gets 101 with Upgrade, Connection and the right Sec-WebSocket-Accept', T, async (t) => {
      const scope = new Scope(impl, t);
      const { port } = await scope.server();
      const raw = await scope.raw(port);
      raw.socket.write(upgradeRequest());
      await until(() => raw.text().includes('\r\n\r\n'));
      const head = raw.text().slice(0, raw.text().indexOf('\r\n\r\n')).split('\r\n');
      assert.equal(head[0], 'HTTP/1.1 101 Switching Protocols');
      const { headers } = parseHttp(raw.text());
      assert.equal(headers.upgrade?.toLowerCase(), 'websocket');
      assert.equal(headers.connection?.toLowerCase(), 'upgrade');
      assert.equal(headers['sec-websocket-accept'], acceptKey('dGhlIHNhbXBsZSBub25jZQ=='));
      assert.equal(headers['sec-websocket-protocol'], undefined);
      assert.equal(headers['sec-websocket-extensions'], undefined);
    });

    it('an unknown extension offer is ignored and the connection opens without extensions', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, port } = await scope.server({ perMessageDeflate: true });
      const connection = once(wss, 'connection');
      const raw = await scope.raw(port);
      raw.socket.write(upgradeRequest(['Sec-WebSocket-Extensions: foo; bar']));
      const [ws] = (await connection) as [WebSocketLike];
      assert.equal(ws.extensions, '');
      await until(() => raw.text().includes('\r\n\r\n'));
      assert.equal(parseHttp(raw.text()).status, 101);
      assert.equal(parseHttp(raw.text()).headers['sec-websocket-extensions'], undefined);
    });

    it('frames sent right behind the request (same packet) are delivered', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, port } = await scope.server();
      const raw = await scope.raw(port);
      const message = new Promise<unknown[]>((resolve) => wss.on('connection', (ws) => ws.once('message', (...args: unknown[]) => resolve(args))));
      raw.socket.write(Buffer.concat([Buffer.from(upgradeRequest()), frame(1, 'Hello')]));
      const [data, isBinary] = await message;
      assert.deepEqual(data, Buffer.from('Hello'));
      assert.equal(isBinary, false);
    });

    it("'headers' gets the response lines and the request; lines it adds are sent", T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server();
      let lines: string[] = [];
      let request: unknown;
      wss.on('headers', (headers: string[], req: IncomingMessage) => {
        lines = [...headers];
        request = req;
        headers.push('X-Extra: 1');
      });
      const client = scope.client(`${url}/?foo=bar`, undefined, undefined, REF);
      const opened = once(client, 'open');
      const [res] = (await once(client, 'upgrade')) as [IncomingMessage];
      assert.deepEqual(lines.slice(0, 3), ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade']);
      assert.ok(lines.some((l) => l.startsWith('Sec-WebSocket-Accept: ')));
      assert.ok(request instanceof IncomingMessage);
      assert.equal((request as IncomingMessage).url, '/?foo=bar');
      assert.equal(res.headers['x-extra'], '1');
      await opened;
    });

    it("'headers' can add a subprotocol the client did not ask for (the ws client then fails)", T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server();
      wss.on('headers', (headers: string[]) => void headers.push('Sec-WebSocket-Protocol: foo'));
      const client = scope.client(url, undefined, undefined, REF);
      const [error] = (await once(client, 'error')) as [Error];
      assert.equal(error.message, 'Server sent a subprotocol but none was requested');
    });

    it("'wsClientError' with a listener: gets (error, socket, req) and the server does not answer", T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, port } = await scope.server();
      const seen: [Error, Duplex, IncomingMessage][] = [];
      wss.on('wsClientError', (error: Error, socket: Duplex, req: IncomingMessage) => {
        seen.push([error, socket, req]);
        socket.end('HTTP/1.1 418 I\'m a Teapot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      });
      const answer = await rawExchange(port, upgradeRequest([], { method: 'POST' }));
      assert.equal(answer.status, 418);
      assert.equal(seen.length, 1);
      assert.ok(seen[0]![0] instanceof Error);
      assert.equal(seen[0]![0].message, 'Invalid HTTP method');
      assert.ok(seen[0]![2] instanceof IncomingMessage);
      assert.equal(seen[0]![2].method, 'POST');
      const key = await (async () => {
        seen.length = 0;
        return rawExchange(port, upgradeRequest([], { key: 'short' }));
      })();
      assert.equal(key.status, 418);
      assert.equal(seen[0]![0].message, 'Missing or invalid Sec-WebSocket-Key header');
    });

    it('handleUpgrade completes over any Duplex stream, not only a net.Socket', T, async (t) => {
      const scope = new Scope(impl, t);
      const wss = scope.adopt(new impl.WebSocketServer({ noServer: true }));
      const { server, url } = await scope.httpServer();
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        const [near, far] = duplexPair();
        socket.pipe(near);
        near.pipe(socket);
        wss.handleUpgrade(req, far, head, (ws) => {
          ws.send('hello');
          ws.close();
        });
      });
      const client = scope.client(url, undefined, undefined, REF);
      const [data] = await once(client, 'message');
      assert.deepEqual(data, Buffer.from('hello'));
      const [code] = await once(client, 'close');
      assert.equal(code, 1005);
    });

    it('handleUpgrade twice with the same socket throws ws\'s error', T, async (t) => {
      const scope = new Scope(impl, t);
      const wss = scope.adopt(new impl.WebSocketServer({ noServer: true }));
      const { server, url } = await scope.httpServer();
      let thrown: unknown;
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        wss.handleUpgrade(req, socket, head, (ws) => ws.close());
        try {
          wss.handleUpgrade(req, socket, head, () => undefined);
        } catch (error) {
          thrown = error;
        }
      });
      const client = scope.client(url, undefined, undefined, REF);
      await once(client, 'close');
      assert.ok(thrown instanceof Error);
      assert.equal(thrown.message, 'server.handleUpgrade() was called more than once with the same socket, possibly due to a misconfiguration');
    });

    it('handleUpgrade on a closing server answers 503', T, async (t) => {
      const scope = new Scope(impl, t);
      const wss = scope.adopt(new impl.WebSocketServer({ noServer: true }));
      const { server, url } = await scope.httpServer();
      let called = false;
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        wss.close();
        wss.handleUpgrade(req, socket, head, () => void (called = true));
      });
      const client = scope.client(url, undefined, undefined, REF);
      const [, res] = (await once(client, 'unexpected-response')) as [unknown, IncomingMessage];
      assert.equal(res.statusCode, 503);
      res.resume();
      assert.equal(called, false);
    });

    it('a socket the client half-closed before verifyClient answered gets no connection', T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, port } = await scope.httpServer();
      let connections = 0;
      const wss = scope.adopt(
        new impl.WebSocketServer({
          server: server as HttpServer,
          verifyClient: ({ req }: { req: IncomingMessage }, cb: (ok: boolean) => void) => void req.socket.once('end', () => cb(true)),
        }),
      );
      wss.on('connection', () => void connections++);
      const raw = await scope.raw(port);
      raw.socket.end(upgradeRequest());
      await delay(100);
      assert.equal(connections, 0);
    });

    it("'connection' gets (ws, req): an OPEN instance of the module's WebSocket and the request", T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server();
      const connection = once(wss, 'connection');
      scope.client(`${url}/room?id=7`, undefined, { headers: { 'X-Custom': 'v' } }, REF);
      const [ws, req] = (await connection) as [WebSocketLike, IncomingMessage];
      assert.ok(ws instanceof impl.WebSocket);
      assert.equal(ws.readyState, impl.WebSocket.OPEN);
      assert.equal(ws.url, undefined);
      assert.ok(req instanceof IncomingMessage);
      assert.equal(req.url, '/room?id=7');
      assert.equal(req.headers['x-custom'], 'v');
    });
  });
}
