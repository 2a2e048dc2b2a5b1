// Specification (ws 8 doc/ws.md, "new WebSocketServer(options[, callback])"): one or more cases
// per documented server option, with ws's defaults. The peer is always a real `ws` client or a
// raw socket, so a failure is the server's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, IncomingMessage, STATUS_CODES, get as httpGet } from 'node:http';
import { IMPLS, REF, Scope, T, delay, frame, once, parseFrames, rawExchange, turn, until, upgradeRequest, type WebSocketLike } from './spec-harness.js';

const ONE_OF = 'One and only one of the "port", "server", or "noServer" options must be specified';

for (const impl of IMPLS) {
  describe(`WebSocketServer options [${impl.name}]`, () => {
    const { WebSocketServer } = impl;

    it('throws a TypeError without options, with {} and with mutually exclusive modes', T, () => {
      const server = createServer();
      for (const options of [undefined, {}, { port: 0, noServer: true, server }, { port: 0, noServer: true }, { port: 0, server }, { noServer: true, server }]) {
        assert.throws(
          () => new WebSocketServer(options as never),
          (error: Error) => error instanceof TypeError && error.message === ONE_OF,
          JSON.stringify(Object.keys(options ?? {})),
        );
      }
    });

    it('port + host: listens itself, calls the callback on listening and exposes options', T, async (t) => {
      const scope = new Scope(impl, t);
      let called = 0;
      const wss = scope.adopt(new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => void called++));
      await once(wss, 'listening');
      assert.equal(called, 1);
      assert.equal(wss.options.port, 0);
      const address = wss.address() as { address: string; port: number; family: string };
      assert.equal(address.address, '127.0.0.1');
      assert.equal(address.family, 'IPv4');
      assert.ok(address.port > 0);
      const client = await scope.open(`ws://127.0.0.1:${address.port}`, undefined, undefined, REF);
      assert.equal(client.readyState, 1);
    });

    it('port: a plain HTTP request gets 426 Upgrade Required (text/plain)', T, async (t) => {
      const scope = new Scope(impl, t);
      const { port } = await scope.server();
      const res = await new Promise<IncomingMessage>((resolve, reject) => httpGet({ port, host: '127.0.0.1', path: '/' }, resolve).on('error', reject));
      let body = '';
      res.setEncoding('utf8');
      for await (const chunk of res) body += chunk;
      assert.equal(res.statusCode, 426);
      assert.equal(body, STATUS_CODES[426]);
      assert.equal(res.headers['content-type'], 'text/plain');
    });

    it('port: backlog is accepted', T, async (t) => {
      const scope = new Scope(impl, t);
      const { url } = await scope.server({ backlog: 16 });
      await scope.open(url, undefined, undefined, REF);
    });

    it('port: a bind failure is emitted as an error (EADDRINUSE)', T, async (t) => {
      const scope = new Scope(impl, t);
      const { port } = await scope.server();
      const second = scope.adopt(new WebSocketServer({ port, host: '127.0.0.1' }));
      const [error] = (await once(second, 'error')) as [NodeJS.ErrnoException];
      assert.equal(error.code, 'EADDRINUSE');
    });

    it('server: attaches to a pre-created http server and forwards its listening event', T, async (t) => {
      const scope = new Scope(impl, t);
      const server = createServer();
      scope.trackHttp(server);
      const wss = scope.adopt(new WebSocketServer({ server }));
      const listening = once(wss, 'listening');
      server.listen(0, '127.0.0.1');
      await listening;
      const { port } = server.address() as { port: number };
      const connection = once(wss, 'connection');
      await scope.open(`ws://127.0.0.1:${port}/x?y=1`, undefined, undefined, REF);
      const [, req] = (await connection) as [WebSocketLike, IncomingMessage];
      assert.equal(req.url, '/x?y=1');
    });

    it("server: the http server's errors are forwarded", T, async (t) => {
      const scope = new Scope(impl, t);
      const server = createServer();
      const wss = scope.adopt(new WebSocketServer({ server }));
      const boom = new Error('boom');
      const errored = once(wss, 'error');
      server.emit('error', boom);
      assert.equal((await errored)[0], boom);
    });

    it('noServer: listens on nothing; handleUpgrade upgrades a request of another server', T, async (t) => {
      const scope = new Scope(impl, t);
      const wss = scope.adopt(new WebSocketServer({ noServer: true }));
      const { server, url } = await scope.httpServer();
      server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.send('hello')));
      const client = scope.client(url, undefined, undefined, REF);
      const [data, isBinary] = await once(client, 'message');
      assert.deepEqual(data, Buffer.from('hello'));
      assert.equal(isBinary, false);
    });

    it('path: accepts the path (with any query) and answers 400 to another path', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, port, url } = await scope.server({ path: '/ws' });
      const connection = once(wss, 'connection');
      await scope.open(`${url}/ws?token=1`, undefined, undefined, REF);
      const [, req] = (await connection) as [WebSocketLike, IncomingMessage];
      assert.equal(req.url, '/ws?token=1');
      const answer = await rawExchange(port, upgradeRequest([], { path: '/other' }));
      assert.equal(answer.status, 400);
      assert.equal(answer.body, STATUS_CODES[400]);
    });

    it('clientTracking (default true): clients holds the open sockets and drops closed ones', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server();
      assert.ok(wss.clients instanceof Set);
      assert.equal(wss.clients.size, 0);
      const connection = once(wss, 'connection');
      const a = await scope.open(url, undefined, undefined, REF);
      const [peer] = (await connection) as [WebSocketLike];
      assert.equal(wss.clients.size, 1);
      assert.ok(wss.clients.has(peer));
      const b = await scope.open(url, undefined, undefined, REF);
      await until(() => wss.clients.size === 2);
      a.terminate();
      b.close();
      await until(() => wss.clients.size === 0, 3000, 'clients to empty');
    });

    it('clientTracking: false leaves clients undefined', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({ clientTracking: false });
      assert.equal(wss.clients, undefined);
      const connection = once(wss, 'connection');
      await scope.open(url, undefined, undefined, REF);
      const [peer] = (await connection) as [WebSocketLike];
      assert.equal(wss.clients, undefined);
      scope.track(peer);
    });

    it('verifyClient (sync): info has origin, secure and req; false answers 401 Unauthorized', T, async (t) => {
      const scope = new Scope(impl, t);
      const seen: { origin: unknown; secure: unknown; req: unknown }[] = [];
      const { wss, port } = await scope.server({
        verifyClient: (info: { origin: string; secure: boolean; req: IncomingMessage }) => {
          seen.push(info);
          return info.origin === 'https://ok.example';
        },
      });
      let connections = 0;
      wss.on('connection', () => void connections++);
      const refused = await rawExchange(port, upgradeRequest(['Origin: https://bad.example']));
      assert.equal(refused.status, 401);
      assert.equal(refused.body, STATUS_CODES[401]);
      assert.equal(seen[0]!.origin, 'https://bad.example');
      assert.equal(seen[0]!.secure, false);
      assert.ok(seen[0]!.req instanceof IncomingMessage);
      await scope.open(`ws://127.0.0.1:${port}`, { origin: 'https://ok.example' }, undefined, REF);
      assert.equal(connections, 1);
    });

    it('verifyClient: the origin of a version 8 request is Sec-WebSocket-Origin', T, async (t) => {
      const scope = new Scope(impl, t);
      let origin: unknown;
      const { url } = await scope.server({ verifyClient: (info: { origin: string }) => ((origin = info.origin), true) });
      await scope.open(url, { origin: 'https://eight.example', protocolVersion: 8 }, undefined, REF);
      assert.equal(origin, 'https://eight.example');
    });

    it('verifyClient (async): cb(true) accepts later', T, async (t) => {
      const scope = new Scope(impl, t);
      const { url } = await scope.server({ verifyClient: (_info, cb) => void setTimeout(() => cb(true), 20) });
      await scope.open(url, undefined, undefined, REF);
    });

    it('verifyClient (async): cb(false) answers 401, cb(false, 404) 404, with message and headers', T, async (t) => {
      const scope = new Scope(impl, t);
      const answers: [boolean, number?, string?, Record<string, string | number>?][] = [
        [false],
        [false, 404],
        [false, 503, 'Come back later', { 'Retry-After': 120 }],
      ];
      let next = 0;
      const { port } = await scope.server({
        verifyClient: (_info, cb) => {
          const [result, code, message, headers] = answers[next++]!;
          process.nextTick(() => cb(result, code, message, headers as never));
        },
      });
      const first = await rawExchange(port, upgradeRequest());
      assert.equal(first.status, 401);
      assert.equal(first.body, STATUS_CODES[401]);
      const second = await rawExchange(port, upgradeRequest());
      assert.equal(second.status, 404);
      assert.equal(second.body, STATUS_CODES[404]);
      const third = await rawExchange(port, upgradeRequest());
      assert.equal(third.status, 503);
      assert.equal(third.body, 'Come back later');
      assert.equal(third.headers['retry-after'], '120');
    });

    it('handleProtocols: gets the offered Set and the request, its choice is the protocol', T, async (t) => {
      const scope = new Scope(impl, t);
      let offered: unknown;
      let request: unknown;
      const { wss, url } = await scope.server({
        handleProtocols: (protocols: Set<string>, req: IncomingMessage) => {
          offered = protocols;
          request = req;
          return [...protocols].pop()!;
        },
      });
      const connection = once(wss, 'connection');
      const client = await scope.open(url, ['foo', 'bar'], undefined, REF);
      const [peer] = (await connection) as [WebSocketLike];
      assert.ok(offered instanceof Set);
      assert.deepEqual([...(offered as Set<string>)], ['foo', 'bar']);
      assert.ok(request instanceof IncomingMessage);
      assert.equal(client.protocol, 'bar');
      assert.equal(peer.protocol, 'bar');
    });

    it('handleProtocols returning false sends no subprotocol (a ws client then fails)', T, async (t) => {
      const scope = new Scope(impl, t);
      const { url } = await scope.server({ handleProtocols: () => false });
      const client = scope.client(url, ['foo'], undefined, REF);
      const [error] = (await once(client, 'error')) as [Error];
      assert.equal(error.message, 'Server sent no subprotocol');
    });

    it('without handleProtocols the first offered subprotocol is chosen', T, async (t) => {
      const scope = new Scope(impl, t);
      const { url } = await scope.server();
      const client = await scope.open(url, ['first', 'second'], undefined, REF);
      assert.equal(client.protocol, 'first');
    });

    it('perMessageDeflate is off by default (an offer is declined)', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server();
      const connection = once(wss, 'connection');
      const client = await scope.open(url, undefined, undefined, REF);
      const [peer, req] = (await connection) as [WebSocketLike, IncomingMessage];
      assert.equal(req.headers['sec-websocket-extensions'], 'permessage-deflate; client_max_window_bits');
      assert.equal(peer.extensions, '');
      assert.equal(client.extensions, '');
    });

    it('perMessageDeflate: true negotiates permessage-deflate and messages round-trip compressed', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({ perMessageDeflate: true });
      wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
      const client = await scope.open(url, { perMessageDeflate: { threshold: 0 } }, undefined, REF);
      assert.equal(client.extensions, 'permessage-deflate');
      const raw: Buffer[] = [];
      (client as unknown as { _socket: NodeJS.EventEmitter })._socket.prependListener('data', (chunk: Buffer) => void raw.push(chunk));
      const text = 'x'.repeat(2048);
      client.send(text);
      const [data] = await once(client, 'message');
      assert.equal(String(data), text);
      assert.equal(raw[0]![0]! & 0x40, 0x40, 'the echo is compressed (RSV1)');
    });

    it('perMessageDeflate options shape the answer: clientMaxWindowBits, serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits', T, async (t) => {
      const scope = new Scope(impl, t);
      const { port } = await scope.server({ perMessageDeflate: { clientMaxWindowBits: 8 } });
      const raw = await scope.raw(port);
      raw.socket.write(upgradeRequest(['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits']));
      await until(() => raw.text().includes('\r\n\r\n'));
      assert.match(raw.text(), /\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=8\r\n/i);

      const other = await scope.server({ perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10 } });
      const raw2 = await scope.raw(other.port);
      raw2.socket.write(upgradeRequest(['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits']));
      await until(() => raw2.text().includes('\r\n\r\n'));
      const line = /\r\nSec-WebSocket-Extensions: ([^\r]*)\r\n/i.exec(raw2.text())?.[1] ?? '';
      const params = line.split(';').map((p) => p.trim());
      assert.equal(params[0], 'permessage-deflate');
      assert.ok(params.includes('server_no_context_takeover'), line);
      assert.ok(params.includes('client_no_context_takeover'), line);
      assert.ok(params.includes('server_max_window_bits=10'), line);
    });

    // ws applies the threshold when the server does not keep its context (server_no_context_takeover).
    it('perMessageDeflate threshold: smaller messages are sent uncompressed', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({ perMessageDeflate: { threshold: 100, serverNoContextTakeover: true } });
      wss.on('connection', (ws) => {
        ws.send('small');
        ws.send('y'.repeat(500));
      });
      const client = scope.client(url, undefined, undefined, REF);
      const raw: Buffer[] = [];
      client.once('open', () => (client as unknown as { _socket: NodeJS.EventEmitter })._socket.prependListener('data', (chunk: Buffer) => void raw.push(chunk)));
      const messages: string[] = [];
      client.on('message', (data) => void messages.push(String(data)));
      await until(() => messages.length === 2);
      const frames = parseFrames(Buffer.concat(raw));
      assert.equal(frames.length, 2);
      assert.equal(frames[0]!.rsv1, false, 'below the threshold: not compressed');
      assert.equal(frames[1]!.rsv1, true, 'above the threshold: compressed');
    });

    it('perMessageDeflate zlibDeflateOptions / zlibInflateOptions / concurrencyLimit are accepted', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({
        perMessageDeflate: { zlibDeflateOptions: { level: 1, memLevel: 8 }, zlibInflateOptions: { chunkSize: 16 * 1024 }, concurrencyLimit: 2, threshold: 0 },
      });
      wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
      const client = await scope.open(url, undefined, undefined, REF);
      assert.equal(client.extensions, 'permessage-deflate');
      client.send(Buffer.alloc(10000, 7));
      const [data] = await once(client, 'message');
      assert.deepEqual(data, Buffer.alloc(10000, 7));
    });

    it('maxPayload defaults to 100 MiB: a frame announcing 100 MiB + 1 closes with 1009', T, async (t) => {
      const scope = new Scope(impl, t);
      const { raw, sut } = await scope.rawClient();
      const errored = once(sut, 'error');
      raw.socket.write(frame(2, Buffer.alloc(0), { length: 100 * 1024 * 1024 + 1 }).subarray(0, 14));
      const [error] = (await errored) as [Error & { code: string }];
      assert.ok(error instanceof RangeError);
      assert.equal(error.message, 'Max payload size exceeded');
      assert.equal(error.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
      assert.equal(await raw.closeFrame(), 1009);
    });

    it('maxPayload: exactly 100 MiB announced is not refused', T, async (t) => {
      const scope = new Scope(impl, t);
      const { raw, sut } = await scope.rawClient();
      let errored = false;
      sut.on('error', () => void (errored = true));
      raw.socket.write(frame(2, Buffer.alloc(0), { length: 100 * 1024 * 1024 }).subarray(0, 14));
      await delay(50);
      assert.equal(errored, false);
      assert.equal(sut.readyState, 1);
    });

    it('maxPayload: a custom limit accepts its size and closes with 1009 one byte beyond', T, async (t) => {
      const scope = new Scope(impl, t);
      const { wss, url } = await scope.server({ maxPayload: 20 });
      const connection = once(wss, 'connection');
      const client = await scope.open(url, undefined, undefined, REF);
      const [peer] = (await connection) as [WebSocketLike];
      const messages: Buffer[] = [];
      peer.on('message', (data: Buffer) => void messages.push(data));
      const errors: Error[] = [];
      peer.on('error', (e) => void errors.push(e));
      client.send(Buffer.alloc(20));
      await until(() => messages.length === 1);
      client.send(Buffer.alloc(21));
      const [code] = await once(client, 'close');
      assert.equal(code, 1009);
      assert.equal(errors.length, 1);
      assert.equal((errors[0] as Error & { code: string }).code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
    });

    it('skipUTF8Validation: false (default) closes with 1007 on invalid UTF-8; true delivers the bytes', T, async (t) => {
      const scope = new Scope(impl, t);
      const strict = await scope.rawClient();
      const errored = once(strict.sut, 'error');
      strict.raw.socket.write(frame(1, Buffer.from([0xff, 0xfe])));
      const [error] = (await errored) as [Error & { code: string }];
      assert.equal(error.code, 'WS_ERR_INVALID_UTF8');
      assert.equal(await strict.raw.closeFrame(), 1007);

      const lax = await scope.rawClient({ skipUTF8Validation: true });
      const message = once(lax.sut, 'message');
      lax.raw.socket.write(frame(1, Buffer.from([0xff, 0xfe])));
      const [data, isBinary] = await message;
      assert.deepEqual(data, Buffer.from([0xff, 0xfe]));
      assert.equal(isBinary, false);
    });

    it('autoPong (default true) answers a ping with its payload; false only emits ping', T, async (t) => {
      const scope = new Scope(impl, t);
      const auto = await scope.connect('server');
      const pinged = once(auto.sut, 'ping');
      auto.peer.ping('abc');
      const [pong] = await once(auto.peer, 'pong');
      assert.deepEqual(pong, Buffer.from('abc'));
      assert.deepEqual((await pinged)[0], Buffer.from('abc'));

      const manual = await scope.connect('server', { autoPong: false });
      let pongs = 0;
      manual.peer.on('pong', () => void pongs++);
      const ping = once(manual.sut, 'ping');
      manual.peer.ping('x');
      assert.deepEqual((await ping)[0], Buffer.from('x'));
      await delay(50);
      assert.equal(pongs, 0);
    });

    it('allowSynchronousEvents: true (default) emits messages of one chunk in the same tick; false does not', T, async (t) => {
      const scope = new Scope(impl, t);
      for (const [option, sameTick] of [[undefined, true], [false, false]] as const) {
        const { raw, sut } = await scope.rawClient(option === undefined ? {} : { allowSynchronousEvents: option });
        let microtaskRan = false;
        const observed: boolean[] = [];
        sut.on('message', () => {
          if (observed.length === 0) queueMicrotask(() => void (microtaskRan = true));
          else observed.push(microtaskRan);
          if (observed.length === 0) observed.push(false);
        });
        raw.socket.write(Buffer.concat([frame(1, 'a'), frame(1, 'b')]));
        await until(() => observed.length === 2);
        assert.equal(observed[1], !sameTick, `allowSynchronousEvents ${String(option)}`);
      }
    });

    it('WebSocket: connections are instances of the given subclass', T, async (t) => {
      const scope = new Scope(impl, t);
      class Custom extends impl.WebSocket {
        get foo(): string {
          return 'foo';
        }
      }
      const { wss, url } = await scope.server({ WebSocket: Custom as never });
      const connection = once(wss, 'connection');
      await scope.open(url, undefined, undefined, REF);
      const [peer] = (await connection) as [WebSocketLike];
      assert.ok(peer instanceof Custom);
      assert.ok(peer instanceof impl.WebSocket);
      assert.equal((peer as unknown as Custom).foo, 'foo');
      await turn();
    });
  });
}
