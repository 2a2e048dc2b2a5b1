// Specification (ws 8 doc/ws.md, "new WebSocket(address[, protocols][, options])"): the
// constructor's argument forms and checks, and one or more cases per documented client option.
// Request-shaping cases use ws's own trick: an http.Agent whose addRequest keeps the request in
// the process, so its headers can be read without a server.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { selfSignedCertificate } from '../node/server-helpers.js';
import { IMPLS, REF, Scope, T, capturedRequest, frame, once, type WebSocketLike } from './spec-harness.js';

let dir = '';
let cert: Buffer;
let key: Buffer;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'duplex-ws-spec-'));
  ({ cert, key } = await selfSignedCertificate(dir));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const basic = (userinfo: string): string => `Basic ${Buffer.from(userinfo).toString('base64')}`;

for (const impl of IMPLS) {
  describe(`client constructor and options [${impl.name}]`, () => {
    it('an invalid URL throws a SyntaxError', T, () => {
      for (const [address, message] of [
        ['foo', 'Invalid URL: foo'],
        ['ftp://example.com', 'The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"'],
        ['ws://example.com/#frag', 'The URL contains a fragment identifier'],
        ['ws+unix:', "The URL's pathname is empty"],
      ]) {
        assert.throws(() => new impl.WebSocket(address!), (e: Error) => e instanceof SyntaxError && e.message === message, address);
      }
    });

    it('protocolVersion other than 8 or 13 throws a RangeError', T, () => {
      assert.throws(
        () => new impl.WebSocket('ws://localhost', { protocolVersion: 1000 }),
        (e: Error) => e instanceof RangeError && e.message === 'Unsupported protocol version: 1000 (supported versions: 8, 13)',
      );
    });

    it('an invalid or duplicated subprotocol throws a SyntaxError', T, () => {
      for (const protocols of [['a b'], ['a', 'a'], [''], ['ok', 'bad,comma']]) {
        assert.throws(
          () => new impl.WebSocket('ws://localhost', protocols),
          (e: Error) => e instanceof SyntaxError && e.message === 'An invalid or duplicated subprotocol was specified',
          JSON.stringify(protocols),
        );
      }
    });

    it('the handshake request: GET, Upgrade, Connection, a 16-byte base64 key, version 13, the path and query', T, async () => {
      const { req } = await capturedRequest(impl, 'ws://localhost:8080/chat?room=1');
      assert.equal(req.method, 'GET');
      assert.equal(req.path, '/chat?room=1');
      assert.equal(String(req.getHeader('upgrade')).toLowerCase(), 'websocket');
      assert.equal(String(req.getHeader('connection')).toLowerCase(), 'upgrade');
      assert.equal(String(req.getHeader('sec-websocket-version')), '13');
      assert.equal(Buffer.from(String(req.getHeader('sec-websocket-key')), 'base64').length, 16);
      assert.equal(req.getHeader('host'), 'localhost:8080');
      const bare = await capturedRequest(impl, 'ws://localhost?x=1');
      assert.equal(bare.req.path, '/?x=1');
    });

    it('the Host header leaves out default ports', T, async () => {
      for (const [url, host] of [
        ['wss://localhost:8443', 'localhost:8443'],
        ['wss://localhost:443', 'localhost'],
        ['ws://localhost:88', 'localhost:88'],
        ['ws://localhost:80', 'localhost'],
      ]) {
        const { req } = await capturedRequest(impl, url!);
        assert.equal(req.getHeader('host'), host, url);
      }
    });

    it('protocols: a string or an array becomes Sec-WebSocket-Protocol; the options may be the 2nd argument', T, async () => {
      assert.equal((await capturedRequest(impl, 'ws://localhost', 'one')).req.getHeader('sec-websocket-protocol'), 'one');
      assert.equal((await capturedRequest(impl, 'ws://localhost', ['one', 'two'])).req.getHeader('sec-websocket-protocol'), 'one,two');
      assert.equal((await capturedRequest(impl, 'ws://localhost', [])).req.getHeader('sec-websocket-protocol'), undefined);
      let seen = 0;
      const { Agent } = await import('node:http');
      for (const protocols of [undefined, []]) {
        const agent = new Agent();
        (agent as unknown as { addRequest: () => void }).addRequest = () => void seen++;
        const ws = new impl.WebSocket('ws://localhost', protocols as never, { agent });
        ws.on('error', () => undefined);
        ws.terminate();
      }
      const agent = new Agent();
      (agent as unknown as { addRequest: () => void }).addRequest = () => void seen++;
      const ws = new impl.WebSocket('ws://localhost', { agent });
      ws.on('error', () => undefined);
      ws.terminate();
      assert.equal(seen, 3);
    });

    it('a URL object is accepted; an IPv6 host is passed without brackets', T, async () => {
      const { opts, req } = await capturedRequest(impl, new URL('ws://[::1]/v6'));
      assert.equal(opts.host, '::1');
      assert.equal(req.path, '/v6');
    });

    it('perMessageDeflate: offered by default, not with false, with the parameters of an object', T, async () => {
      assert.equal((await capturedRequest(impl, 'ws://localhost')).req.getHeader('sec-websocket-extensions'), 'permessage-deflate; client_max_window_bits');
      assert.equal((await capturedRequest(impl, 'ws://localhost', [], { perMessageDeflate: false })).req.getHeader('sec-websocket-extensions'), undefined);
      const { req } = await capturedRequest(impl, 'ws://localhost', [], {
        perMessageDeflate: { clientNoContextTakeover: true, serverNoContextTakeover: true, clientMaxWindowBits: true as never, serverMaxWindowBits: 10 },
      });
      assert.equal(
        req.getHeader('sec-websocket-extensions'),
        'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits',
      );
    });

    it('origin: the Origin header, or Sec-WebSocket-Origin with protocolVersion 8; none by default', T, async () => {
      assert.equal((await capturedRequest(impl, 'ws://localhost')).req.getHeader('origin'), undefined);
      assert.equal((await capturedRequest(impl, 'ws://localhost', [], { origin: 'https://example.com:8000' })).req.getHeader('origin'), 'https://example.com:8000');
      const eight = await capturedRequest(impl, 'ws://localhost', [], { origin: 'https://example.com:8000', protocolVersion: 8 });
      assert.equal(eight.req.getHeader('sec-websocket-origin'), 'https://example.com:8000');
      assert.equal(String(eight.req.getHeader('sec-websocket-version')), '8');
    });

    it('auth and URL userinfo become Basic authorization; the URL wins; userinfo is percent-decoded', T, async () => {
      assert.equal((await capturedRequest(impl, 'ws://localhost', [], { auth: 'user:pass' } as never)).req.getHeader('authorization'), basic('user:pass'));
      assert.equal((await capturedRequest(impl, 'ws://test:testpass@localhost')).req.getHeader('authorization'), basic('test:testpass'));
      assert.equal((await capturedRequest(impl, 'ws://baz:qux@localhost', [], { auth: 'foo:bar' } as never)).req.getHeader('authorization'), basic('baz:qux'));
      assert.equal((await capturedRequest(impl, 'ws://us%40er:p%3Ass@localhost')).req.getHeader('authorization'), basic('us@er:p:ss'));
    });

    it('headers: custom headers are sent', T, async () => {
      const { req } = await capturedRequest(impl, 'ws://localhost', [], { headers: { Cookie: 'foo=bar', 'X-Any': 'thing' } });
      assert.equal(req.getHeader('cookie'), 'foo=bar');
      assert.equal(req.getHeader('x-any'), 'thing');
    });

    it('finishRequest(req, ws) is called instead of req.end() and can add headers', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({}, REF);
      let args: unknown[] = [];
      const connection = once(wss, 'connection');
      const ws = scope.client(url, [], {
        finishRequest: (req: import('node:http').ClientRequest, socket: WebSocketLike) => {
          args = [req, socket];
          req.setHeader('x-finish', 'yes');
          req.end();
        },
      } as never);
      await once(ws, 'open');
      const [, req] = (await connection) as [unknown, IncomingMessage];
      assert.equal(args[1], ws);
      assert.equal(req.headers['x-finish'], 'yes');
    });

    it('createConnection is used to open the socket', T, async (t) => {
      const scope = new Scope(impl, t);
      const { port } = await scope.server({}, REF);
      let called = 0;
      const ws = scope.client('ws://not-resolved.invalid:1/', [], {
        createConnection: () => {
          called++;
          return netConnect(port, '127.0.0.1');
        },
      } as never);
      await once(ws, 'open');
      assert.equal(called, 1);
    });

    it('other http.request options (lookup, family) are passed through', T, async (t) => {
      const scope = new Scope(impl, t);
      const { port } = await scope.server({}, REF);
      const looked: string[] = [];
      const ws = scope.client(`ws://somewhere.invalid:${port}/`, [], {
        family: 4,
        lookup: (host: string, _o: unknown, cb: (e: null, a: string, f: number) => void) => {
          looked.push(host);
          cb(null, '127.0.0.1', 4);
        },
      } as never);
      await once(ws, 'open');
      assert.deepEqual(looked, ['somewhere.invalid']);
    });

    it('handshakeTimeout: no answer in time gives the error "Opening handshake has timed out", then close 1006', T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, url } = await scope.httpServer();
      server.on('upgrade', () => undefined);
      const ws = scope.client(url, [], { handshakeTimeout: 100 });
      const closed = once(ws, 'close');
      const [error] = (await once(ws, 'error')) as [Error];
      assert.equal(error.message, 'Opening handshake has timed out');
      assert.equal((await closed)[0], 1006);
    });

    it('maxPayload: a client refuses a bigger message with 1009; the default accepts a large one', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({}, REF);
      wss.on('connection', (peer) => peer.send(Buffer.alloc(33)));
      const small = scope.client(url, [], { maxPayload: 32 });
      const [error] = (await once(small, 'error')) as [Error & { code: string }];
      assert.equal(error.message, 'Max payload size exceeded');
      assert.equal(error.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
      const big = scope.client(url);
      const [data] = await once(big, 'message');
      assert.equal((data as Buffer).length, 33);
    });

    it('skipUTF8Validation and autoPong:false on a client', T, async (t) => {
      const scope = new Scope(impl, t);
      const { server, url } = await scope.httpServer();
      const { acceptKey, RawPeer } = await import('./spec-harness.js');
      let raw!: InstanceType<typeof RawPeer>;
      server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
        raw = new RawPeer(socket);
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(req.headers['sec-websocket-key']!)}\r\n\r\n`);
        socket.write(Buffer.concat([frame(1, Buffer.from([0xff]), { mask: false }), frame(9, 'p', { mask: false })]));
      });
      const ws = scope.client(url, [], { skipUTF8Validation: true, autoPong: false });
      const pinged = once(ws, 'ping');
      const [data, isBinary] = await once(ws, 'message');
      assert.deepEqual(data, Buffer.from([0xff]));
      assert.equal(isBinary, false);
      await pinged;
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.equal(raw.frames().filter((f) => f.opcode === 10).length, 0);
    });

    it('ws+unix: connects over a Unix socket, with an optional :path', T, async (t) => {
      const scope = new Scope(impl, t);
      const server = createHttpServer();
      scope.trackHttp(server);
      const socketPath = join(dir, `ws-${impl.name}.sock`);
      const wss = scope.adopt(new REF.WebSocketServer({ server }));
      server.listen(socketPath);
      await once(server, 'listening');
      const urls: string[] = [];
      wss.on('connection', (_ws, req: IncomingMessage) => void urls.push(req.url!));
      await scope.open(`ws+unix:${socketPath}:/foo?bar=bar`);
      await scope.open(`ws+unix:${socketPath}`);
      assert.deepEqual(urls, ['/foo?bar=bar', '/']);
    });

    describe('TLS', () => {
      const secure = async (scope: Scope, options: Record<string, unknown> = {}): Promise<{ port: number; wss: InstanceType<typeof REF.WebSocketServer>; servernames: unknown[] }> => {
        const server = createHttpsServer({ cert, key, ...options });
        scope.trackHttp(server);
        const servernames: unknown[] = [];
        server.on('secureConnection', (s: TLSSocket) => void servernames.push((s as TLSSocket & { servername: unknown }).servername));
        const wss = scope.adopt(new REF.WebSocketServer({ server }));
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        return { port: (server.address() as { port: number }).port, wss, servernames };
      };

      it('a self-signed certificate is refused by default (error then close 1006)', T, async (t) => {
        const scope = new Scope(impl, t);
        const { port } = await secure(scope);
        const ws = scope.client(`wss://localhost:${port}`);
        const closed = once(ws, 'close');
        const [error] = (await once(ws, 'error')) as [NodeJS.ErrnoException];
        assert.ok(error instanceof Error);
        assert.match(String(error.code), /SELF_SIGNED|UNABLE_TO_VERIFY/);
        assert.equal((await closed)[0], 1006);
      });

      it('ca trusts it; rejectUnauthorized:false skips the check; messages flow', T, async (t) => {
        const scope = new Scope(impl, t);
        const { port, wss } = await secure(scope);
        wss.on('connection', (ws) => ws.send('secure'));
        const trusted = scope.client(`wss://localhost:${port}`, [], { ca: cert });
        assert.equal(String((await once(trusted, 'message'))[0]), 'secure');
        const lax = scope.client(`wss://127.0.0.1:${port}`, [], { rejectUnauthorized: false });
        assert.equal(String((await once(lax, 'message'))[0]), 'secure');
      });

      it('servername: the host name by default, none for an IP address, the option when given', T, async (t) => {
        const scope = new Scope(impl, t);
        const { port, servernames } = await secure(scope);
        await scope.open(`wss://localhost:${port}`, [], { ca: cert });
        await scope.open(`wss://127.0.0.1:${port}`, [], { rejectUnauthorized: false });
        await scope.open(`wss://127.0.0.1:${port}`, [], { ca: cert, servername: 'localhost' } as never);
        assert.deepEqual(servernames, ['localhost', false, 'localhost']);
      });

      it('cert and key: a client certificate the server verifies', T, async (t) => {
        const scope = new Scope(impl, t);
        const { port, wss } = await secure(scope, { requestCert: true, ca: [cert] });
        const connection = once(wss, 'connection');
        await scope.open(`wss://localhost:${port}`, [], { ca: cert, cert, key });
        const [, req] = (await connection) as [unknown, IncomingMessage];
        assert.equal((req.socket as TLSSocket).authorized, true);
      });

      it('wss:// to a plain server fails with an error', T, async (t) => {
        const scope = new Scope(impl, t);
        const { url } = await scope.server({}, REF);
        const ws = scope.client(url.replace('ws:', 'wss:'), [], { rejectUnauthorized: false });
        const [error] = await once(ws, 'error');
        assert.ok(error instanceof Error);
      });
    });
  });
}
