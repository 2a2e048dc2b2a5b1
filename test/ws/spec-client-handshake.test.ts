// Specification (ws 8 doc/ws.md, client events 'upgrade', 'unexpected-response', 'redirect',
// and options followRedirects/maxRedirects): how a client judges the server's answer. The server
// is a plain node:http server writing the answer by hand, so it can be wrong on purpose.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { IMPLS, REF, Scope, T, acceptKey, frame, once, record } from './spec-harness.js';

/** A 101 answer for `req`, with `extra` header lines (and an optionally wrong accept). */
function switching(req: IncomingMessage, extra: string[] = [], accept = acceptKey(req.headers['sec-websocket-key']!), upgrade = 'websocket'): string {
  return ['HTTP/1.1 101 Switching Protocols', `Upgrade: ${upgrade}`, 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`, ...extra, '', ''].join('\r\n');
}

for (const impl of IMPLS) {
  describe(`opening handshake, client side [${impl.name}]`, () => {
    const failures: [string, (req: IncomingMessage) => string, string, (string | string[])?, Record<string, unknown>?][] = [
      ['a wrong Sec-WebSocket-Accept', (req) => switching(req, [], 'CxYS6+NgJSBG74mdgLvGscRvpns='), 'Invalid Sec-WebSocket-Accept header'],
      ['an Upgrade header that is not websocket', (req) => switching(req, [], undefined, 'foo'), 'Invalid Upgrade header'],
      ['a subprotocol none was requested', (req) => switching(req, ['Sec-WebSocket-Protocol: foo']), 'Server sent a subprotocol but none was requested'],
      ['a subprotocol not offered', (req) => switching(req, ['Sec-WebSocket-Protocol: baz']), 'Server sent an invalid subprotocol', ['foo', 'bar']],
      ['no subprotocol when some were offered', (req) => switching(req), 'Server sent no subprotocol', ['foo', 'bar']],
      [
        'an extension when none was offered',
        (req) => switching(req, ['Sec-WebSocket-Extensions: permessage-deflate']),
        'Server sent a Sec-WebSocket-Extensions header but no extension was requested',
        [],
        { perMessageDeflate: false },
      ],
      ['an unparsable Sec-WebSocket-Extensions', (req) => switching(req, ['Sec-WebSocket-Extensions: foo;=']), 'Invalid Sec-WebSocket-Extensions header'],
      ['an extension that was not offered', (req) => switching(req, ['Sec-WebSocket-Extensions: foo']), 'Server indicated an extension that was not requested'],
      [
        'invalid permessage-deflate parameters',
        (req) => switching(req, ['Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=foo']),
        'Invalid Sec-WebSocket-Extensions header',
      ],
    ];
    for (const [what, answer, message, protocols, options] of failures) {
      it(`refuses ${what}: '${message}', then close 1006, no open`, T, async (t) => {
        const scope = new Scope(impl, t);
        const { server, url } = await scope.httpServer();
        server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
          socket.on('error', () => undefined);
          socket.write(answer(req));
        });
        const ws = scope.client(url, protocols ?? [], options ?? {});
        const events = record(ws, ['open', 'upgrade', 'error', 'close']);
        const closed = once(ws, 'close');
        const [error] = (await once(ws, 'error')) as [Error];
        assert.ok(error instanceof Error);
        assert.equal(error.message, message);
        const [code] = await closed;
        assert.equal(code, 1006);
        assert.deepEqual(events, ['upgrade', 'error', 'close']);
      });
    }

    it("a non-101 answer without an 'unexpected-response' listener: error 'Unexpected server response: 401'", T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, url } = await scope.httpServer();
      server.on('upgrade', (_req, socket: Socket) => socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'));
      const ws = scope.client(url);
      const closed = once(ws, 'close');
      const [error] = (await once(ws, 'error')) as [Error];
      assert.equal(error.message, 'Unexpected server response: 401');
      assert.equal((await closed)[0], 1006);
    });

    it("'unexpected-response' (req, res): no error, the body is readable, close() then ends it", T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, url } = await scope.httpServer();
      server.on('upgrade', (_req, socket: Socket) => {
        socket.on('error', () => undefined);
        socket.write('HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\nfoo');
      });
      const ws = scope.client(url);
      const events = record(ws, ['open', 'error', 'close']);
      const [req, res] = (await once(ws, 'unexpected-response')) as [ClientRequest, IncomingMessage];
      assert.equal(typeof req.setHeader, 'function');
      assert.equal(res.statusCode, 502);
      let body = '';
      for await (const chunk of res) body += String(chunk);
      assert.equal(body, 'foo');
      assert.deepEqual(events, []);
      const closed = once(ws, 'close');
      ws.close();
      await closed;
      assert.equal(events[0], 'error');
    });

    it("'upgrade' receives the 101 response; 'open' follows with the protocol set", T, async (t) => {
      const scope = new Scope(impl, t);
      const { url } = await scope.server({}, REF);
      const ws = scope.client(url, ['chat']);
      const opened = once(ws, 'open');
      const [res] = (await once(ws, 'upgrade')) as [IncomingMessage];
      assert.equal(res.statusCode, 101);
      assert.equal(res.headers['sec-websocket-protocol'], 'chat');
      await opened;
      assert.equal(ws.protocol, 'chat');
    });

    it('data sent right behind the 101 is delivered as a message', T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, url } = await scope.httpServer();
      server.on('upgrade', (req: IncomingMessage, socket: Socket) => socket.write(Buffer.concat([Buffer.from(switching(req)), frame(1, 'early', { mask: false })])));
      const ws = scope.client(url);
      const [data] = await once(ws, 'message');
      assert.equal(String(data), 'early');
    });

    it('a server that ends right after the 101 gives close 1006', T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, url } = await scope.httpServer();
      server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
        socket.resume();
        socket.end(switching(req));
      });
      const ws = scope.client(url);
      const [code, reason] = await once(ws, 'close');
      assert.equal(code, 1006);
      assert.equal(String(reason), '');
    });

    it('redirects are not followed by default: "Unexpected server response: 301"', T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, url } = await scope.httpServer();
      server.on('upgrade', (_req, socket: Socket) => socket.end('HTTP/1.1 301 Moved Permanently\r\nLocation: ws://localhost:1\r\n\r\n'));
      const ws = scope.client(url);
      const [error] = (await once(ws, 'error')) as [Error];
      assert.equal(error.message, 'Unexpected server response: 301');
    });

    it("followRedirects: follows a relative Location, emits 'redirect' (url, req) and updates url", T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, url } = await scope.httpServer();
      const wss = scope.adopt(new REF.WebSocketServer({ noServer: true, path: '/foo' }));
      server.once('upgrade', (_req, socket: Socket) => {
        socket.end('HTTP/1.1 302 Found\r\nLocation: /foo\r\n\r\n');
        server.once('upgrade', (req, sock, head) => wss.handleUpgrade(req, sock, head, () => undefined));
      });
      const ws = scope.client(url, [], { followRedirects: true });
      const redirects: unknown[][] = [];
      ws.on('redirect', (...args: unknown[]) => void redirects.push(args));
      await once(ws, 'open');
      assert.equal(ws.url, `${url}/foo`);
      assert.equal(redirects.length, 1);
      assert.equal(redirects[0]![0], `${url}/foo`);
      assert.equal(typeof (redirects[0]![1] as ClientRequest).setHeader, 'function');
    });

    it('maxRedirects: one redirect too many fails with "Maximum redirects exceeded"', T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, url } = await scope.httpServer();
      let requests = 0;
      server.on('upgrade', (_req, socket: Socket) => {
        requests++;
        socket.end('HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n');
      });
      const ws = scope.client(url, [], { followRedirects: true, maxRedirects: 1 });
      const closed = once(ws, 'close');
      const [error] = (await once(ws, 'error')) as [Error];
      assert.equal(error.message, 'Maximum redirects exceeded');
      await closed;
      assert.equal(requests, 2);
    });

    it('a redirect to another host drops Authorization and Cookie (without a redirect listener)', T, async (t) => {
      const scope = new Scope(impl, t);
      const target = await scope.server({}, REF);
      const connection = once(target.wss, 'connection');
      const { server, url } = await scope.httpServer();
      server.once('upgrade', (req: IncomingMessage, socket: Socket) => {
        assert.equal(req.headers.authorization, 'Basic Zm9vOmJhcg==');
        socket.end(`HTTP/1.1 302 Found\r\nLocation: ws://localhost:${target.port}/\r\n\r\n`);
      });
      scope.client(url, [], { followRedirects: true, auth: 'foo:bar', headers: { Cookie: 'a=b', 'X-Keep': 'kept' } } as never);
      const [, req] = (await connection) as [unknown, IncomingMessage];
      assert.equal(req.headers.authorization, undefined);
      assert.equal(req.headers.cookie, undefined);
      assert.equal(req.headers['x-keep'], 'kept');
    });

    it('a redirect to an invalid scheme is emitted as a SyntaxError, not thrown', T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, url } = await scope.httpServer();
      server.on('upgrade', (_req, socket: Socket) => socket.end('HTTP/1.1 302 Found\r\nLocation: ftp://example.com/\r\n\r\n'));
      const ws = scope.client(url, [], { followRedirects: true });
      const closed = once(ws, 'close');
      const [error] = (await once(ws, 'error')) as [Error];
      assert.ok(error instanceof SyntaxError);
      assert.equal(error.message, 'The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"');
      await closed;
    });

    it('a refused TCP connection: the socket error (ECONNREFUSED), then close 1006', T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, port } = await scope.httpServer();
      await new Promise((resolve) => server.close(resolve));
      const ws = scope.client(`ws://127.0.0.1:${port}`);
      const events = record(ws, ['open', 'error', 'close']);
      const closed = once(ws, 'close');
      const [error] = (await once(ws, 'error')) as [NodeJS.ErrnoException];
      assert.equal(error.code, 'ECONNREFUSED');
      assert.equal((await closed)[0], 1006);
      assert.deepEqual(events, ['error', 'close']);
    });
  });
}
