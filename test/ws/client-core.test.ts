// The ws-compatible client handshake (src/ws/client.ts) on its own: initAsClient drives a
// recording stand-in for the WebSocket (the ClientHandshakeSink of src/ws/binding.ts) against
// plain node:http servers that answer what a test needs: broken 101s, refusals, redirects, silence.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { Agent as HttpAgent, createServer, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ws from 'ws';
import { initAsClient } from '../../src/ws/client.js';
import * as ours from '../../src/ws/index.js';
import { selfSignedCertificate } from '../node/server-helpers.js';
import type { SocketBinding } from '../../src/ws/binding.js';
import type { ClientOptions } from '../../src/ws/options.js';
import type { WebSocket } from '../../src/ws/websocket.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const accept = (key: string): string => createHash('sha1').update(key + GUID).digest('base64');

/** What the handshake told the WebSocket, in order. */
type Outcome = { opened: SocketBinding; head: Buffer; socket: Socket } | { failed: Error };

/** Records the calls of the handshake; readyState as ws's WebSocket moves it. */
class Recorder extends EventEmitter {
  readyState = 0;
  url = '';
  request: ClientRequest | null = null;
  readonly calls: string[] = [];
  readonly outcome: Promise<Outcome>;
  private settle!: (outcome: Outcome) => void;

  constructor() {
    super();
    this.outcome = new Promise((resolve) => (this.settle = resolve));
  }
  setUrl(url: string): void {
    this.url = url;
  }
  setRequest(req: ClientRequest | null): void {
    this.request = req;
  }
  setSocket(socket: Socket, head: Buffer, binding: SocketBinding): void {
    this.calls.push('setSocket');
    this.readyState = 1;
    this.settle({ opened: binding, head, socket });
  }
  failHandshake(error: Error): void {
    this.calls.push('failHandshake');
    this.readyState = 2;
    process.nextTick(() => {
      this.readyState = 3;
      this.settle({ failed: error });
    });
  }
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    this.calls.push(String(event));
    return super.emit(event, ...args);
  }
}

/** Starts a handshake with a fresh recorder. */
function open(address: string | URL, protocols?: string | string[], options?: ClientOptions): Recorder {
  const recorder = new Recorder();
  initAsClient(recorder as unknown as WebSocket, address, protocols, options);
  return recorder;
}

async function failure(recorder: Recorder): Promise<Error> {
  const outcome = await recorder.outcome;
  if ('failed' in outcome) return outcome.failed;
  outcome.socket.destroy();
  throw new Error('the handshake succeeded');
}

async function success(recorder: Recorder): Promise<{ binding: SocketBinding; head: Buffer; socket: Socket }> {
  const outcome = await recorder.outcome;
  if ('failed' in outcome) throw outcome.failed;
  return { binding: outcome.opened, head: outcome.head, socket: outcome.socket };
}

type UpgradeHandler = (req: IncomingMessage, socket: Socket, head: Buffer) => void;

const servers: Server[] = [];
after(() => servers.forEach((server) => server.close()));

/** An HTTP server on 127.0.0.1 whose 'upgrade' and 'request' are the test's. */
async function serve(onUpgrade: UpgradeHandler, onRequest?: Parameters<typeof createServer>[1]): Promise<{ port: number; server: Server }> {
  const server = createServer(onRequest ?? ((_req, res) => res.writeHead(404).end()));
  server.on('upgrade', onUpgrade);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, server };
}

/** A 101 from the request's key, with `extra` header lines (or replacing lines given in `lines`). */
function answer101(req: IncomingMessage, socket: Socket, extra: string[] = [], lines?: string[]): void {
  const head = lines ?? [
    'HTTP/1.1 101 Switching Protocols',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${accept(String(req.headers['sec-websocket-key']))}`,
  ];
  socket.on('error', () => {});
  socket.write([...head, ...extra, '', ''].join('\r\n'));
}

/** A server that answers every upgrade with `extra` lines and records the request headers. */
async function server101(extra: string[] = []): Promise<{ url: string; seen: IncomingHttpHeaders[]; paths: string[] }> {
  const seen: IncomingHttpHeaders[] = [];
  const paths: string[] = [];
  const { port } = await serve((req, socket) => {
    seen.push(req.headers);
    paths.push(req.url ?? '');
    answer101(req, socket, extra);
  });
  return { url: `ws://127.0.0.1:${port}`, seen, paths };
}

describe('thrown errors, as ws', () => {
  test('protocolVersion other than 8 or 13 is a RangeError', () => {
    assert.throws(() => open('ws://127.0.0.1:1', undefined, { protocolVersion: 9 }), {
      name: 'RangeError',
      message: 'Unsupported protocol version: 9 (supported versions: 8, 13)',
    });
  });

  test('URL problems are SyntaxErrors with ws messages; the URL is set first', () => {
    assert.throws(() => open('not a url'), { name: 'SyntaxError', message: 'Invalid URL: not a url' });
    const recorder = new Recorder();
    assert.throws(() => initAsClient(recorder as unknown as WebSocket, 'ftp://example.com/', undefined, undefined), {
      name: 'SyntaxError',
      message: 'The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"',
    });
    assert.equal(recorder.url, 'ftp://example.com/');
    assert.throws(() => open('ws+unix:'), { name: 'SyntaxError', message: "The URL's pathname is empty" });
    assert.throws(() => open('ws://example.com/#frag'), { name: 'SyntaxError', message: 'The URL contains a fragment identifier' });
  });

  test('invalid or duplicated subprotocols are SyntaxErrors', () => {
    for (const protocols of [['a b'], ['chat', 'chat'], [''], [42 as unknown as string]]) {
      assert.throws(() => open('ws://127.0.0.1:1', protocols), {
        name: 'SyntaxError',
        message: 'An invalid or duplicated subprotocol was specified',
      });
    }
  });
});

describe('the request', () => {
  test('carries ws defaults: version 13, a fresh key, the deflate offer; http: is mapped to ws:', async () => {
    const { url, seen, paths } = await server101();
    const recorder = open(`${url.replace('ws:', 'http:')}/path?q=1`);
    assert.equal(recorder.url, `${url}/path?q=1`);
    const { socket } = await success(recorder);
    socket.destroy();
    const headers = seen[0]!;
    assert.equal(paths[0], '/path?q=1');
    assert.equal(headers['sec-websocket-version'], '13');
    assert.match(String(headers['sec-websocket-key']), /^[A-Za-z0-9+/]{22}==$/);
    assert.equal(headers['sec-websocket-extensions'], 'permessage-deflate; client_max_window_bits');
    assert.equal(headers['sec-websocket-protocol'], undefined);
    assert.equal(headers.origin, undefined);
    assert.equal(headers.host, url.slice('ws://'.length));
  });

  test('subprotocols, origin, user headers, credentials; no offer with perMessageDeflate false', async () => {
    const { url, seen } = await server101(['Sec-WebSocket-Protocol: b']);
    const at = url.replace('ws://', 'ws://us%3Aer:p%40ss@');
    const { socket, binding } = await success(
      open(at, ['a', 'b'], { perMessageDeflate: false, origin: 'https://example.org', headers: { 'X-Custom': 'yes' } }),
    );
    socket.destroy();
    const headers = seen[0]!;
    assert.equal(headers['sec-websocket-protocol'], 'a,b');
    assert.equal(headers['sec-websocket-extensions'], undefined);
    assert.equal(headers.origin, 'https://example.org');
    assert.equal(headers['x-custom'], 'yes');
    assert.equal(headers.authorization, `Basic ${Buffer.from('us:er:p@ss').toString('base64')}`);
    assert.equal(binding.protocol, 'b');
    assert.equal(binding.extensions, '');
    assert.equal(binding.codec, undefined);
  });

  test('protocolVersion 8 sends Sec-WebSocket-Origin; the auth option gives Basic credentials', async () => {
    const { url, seen } = await server101();
    const { socket } = await success(open(url, undefined, { protocolVersion: 8, origin: 'http://o', auth: 'a:b' }));
    socket.destroy();
    assert.equal(seen[0]!['sec-websocket-version'], '8');
    assert.equal(seen[0]!['sec-websocket-origin'], 'http://o');
    assert.equal(seen[0]!.origin, undefined);
    assert.equal(seen[0]!.authorization, `Basic ${Buffer.from('a:b').toString('base64')}`);
  });

  test('createConnection and finishRequest are used as given', async () => {
    const { url, seen } = await server101();
    let created = 0;
    let finished: [ClientRequest, unknown] | undefined;
    const recorder = open(url, undefined, {
      createConnection: ((options: { host: string; port: number }) => {
        created++;
        return netConnect(options.port, options.host);
      }) as ClientOptions['createConnection'],
      finishRequest: (req: ClientRequest, ws: unknown) => {
        finished = [req, ws];
        req.setHeader('X-Late', 'added');
        req.end();
      },
    });
    const { socket } = await success(recorder);
    socket.destroy();
    assert.equal(created, 1);
    assert.equal(finished![1], recorder);
    assert.equal(seen[0]!['x-late'], 'added');
  });

  test("perMessageDeflate parameters are offered in ws's order and format", async () => {
    const { url, seen } = await server101();
    const perMessageDeflate = { clientNoContextTakeover: true, serverNoContextTakeover: true, clientMaxWindowBits: true, serverMaxWindowBits: 10 };
    const recorder = open(url, undefined, { perMessageDeflate });
    const outcome = await recorder.outcome;
    if ('socket' in outcome) outcome.socket.destroy();
    assert.equal(
      seen[0]!['sec-websocket-extensions'],
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits',
    );
  });

  test('wss: SNI is the host name, empty for an IP address or when servername is ""; tls.connect is looked up at call time', () => {
    const original = tls.connect;
    const names: Array<string | undefined> = [];
    (tls as { connect: unknown }).connect = (options: { servername?: string }) => {
      names.push(options.servername);
      return undefined; // no socket: the request waits, and is destroyed below
    };
    try {
      for (const [url, options] of [
        ['wss://example.com', {}],
        ['wss://127.0.0.1', {}],
        ['wss://example.com', { servername: '' }],
        ['wss://example.com', { servername: 'other.example' }],
      ] as const) {
        const recorder = open(url, undefined, options);
        recorder.request?.destroy();
      }
    } finally {
      (tls as { connect: unknown }).connect = original;
    }
    assert.deepEqual(names, ['example.com', '', '', 'other.example']);
  });

  test('ws+unix: connects to the socket path and requests the path after the colon', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'duplex-ws-'));
    const path = join(dir, 'sock');
    const urls: string[] = [];
    const server = createServer();
    server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
      urls.push(req.url ?? '');
      answer101(req, socket);
    });
    server.listen(path);
    await once(server, 'listening');
    try {
      const { socket } = await success(open(`ws+unix:${path}:/chat?room=1`));
      socket.destroy();
      assert.deepEqual(urls, ['/chat?room=1']);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the server's answer", () => {
  test("a valid 101: 'upgrade' then setSocket with the negotiated binding and the early bytes", async () => {
    const { port } = await serve((req, socket) => {
      answer101(req, socket, ['Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover']);
      socket.write(Buffer.from([0x81, 0x00])); // an empty text frame in the same packet, maybe
    });
    const recorder = open(`ws://127.0.0.1:${port}`, undefined, { maxPayload: 1234, skipUTF8Validation: true, autoPong: false });
    let upgradeResponse: IncomingMessage | undefined;
    recorder.on('upgrade', (res: IncomingMessage) => (upgradeResponse = res));
    const { binding, socket } = await success(recorder);
    socket.destroy();
    assert.equal(upgradeResponse?.statusCode, 101);
    assert.deepEqual(recorder.calls, ['upgrade', 'setSocket']);
    assert.equal(recorder.request, null);
    assert.equal(binding.side, 'client');
    assert.equal(binding.protocol, '');
    assert.equal(binding.extensions, 'permessage-deflate');
    assert.ok(binding.codec !== undefined);
    binding.codec.close();
    assert.equal(binding.maxPayload, 1234);
    assert.equal(binding.skipUTF8Validation, true);
    assert.equal(binding.autoPong, false);
    assert.equal(binding.allowSynchronousEvents, true);
  });

  test('the defaults reach the binding', async () => {
    const { url } = await server101();
    const { binding, socket } = await success(open(url));
    socket.destroy();
    assert.equal(binding.maxPayload, 100 * 1024 * 1024);
    assert.equal(binding.skipUTF8Validation, false);
    assert.equal(binding.autoPong, true);
    assert.equal(binding.allowSynchronousEvents, true);
  });

  const broken: Array<[string, string[] | ((key: string) => string[]), string[] | undefined, string]> = [
    ['a wrong accept value', (_key) => ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Accept: foo'], undefined, 'Invalid Sec-WebSocket-Accept header'],
    ['an Upgrade other than websocket', (key) => ['HTTP/1.1 101 Switching Protocols', 'Upgrade: h2c', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept(key)}`], undefined, 'Invalid Upgrade header'],
    ['a subprotocol none was requested', ['Sec-WebSocket-Protocol: chat'], undefined, 'Server sent a subprotocol but none was requested'],
    ['a subprotocol not offered', ['Sec-WebSocket-Protocol: other'], ['chat'], 'Server sent an invalid subprotocol'],
    ['no subprotocol when some were offered', [], ['chat'], 'Server sent no subprotocol'],
    ['an extension not offered', ['Sec-WebSocket-Extensions: x-webkit-deflate-frame'], undefined, 'Server indicated an extension that was not requested'],
    ['two extensions', ['Sec-WebSocket-Extensions: permessage-deflate, foo'], undefined, 'Server indicated an extension that was not requested'],
    ['an unparsable extension header', ['Sec-WebSocket-Extensions: permessage-deflate;;'], undefined, 'Invalid Sec-WebSocket-Extensions header'],
    ['an unknown deflate parameter', ['Sec-WebSocket-Extensions: permessage-deflate; foo=1'], undefined, 'Invalid Sec-WebSocket-Extensions header'],
    ['a window size out of range', ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=16'], undefined, 'Invalid Sec-WebSocket-Extensions header'],
  ];
  for (const [what, lines, protocols, message] of broken) {
    test(`fails on ${what}: ${message}`, async () => {
      const { port } = await serve((req, socket) => {
        if (typeof lines === 'function') answer101(req, socket, [], lines(String(req.headers['sec-websocket-key'])));
        else answer101(req, socket, lines);
      });
      const recorder = open(`ws://127.0.0.1:${port}`, protocols);
      const error = await failure(recorder);
      assert.equal(error.constructor, Error);
      assert.equal(error.message, message);
      assert.deepEqual(recorder.calls, ['upgrade', 'failHandshake']);
      assert.equal(recorder.readyState, 3);
    });
  }

  test('an extension header when perMessageDeflate is false', async () => {
    const { url } = await server101(['Sec-WebSocket-Extensions: permessage-deflate']);
    const error = await failure(open(url, undefined, { perMessageDeflate: false }));
    assert.equal(error.message, 'Server sent a Sec-WebSocket-Extensions header but no extension was requested');
  });

  test('client_no_context_takeover when the option says false', async () => {
    const { url } = await server101(['Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover']);
    const error = await failure(open(url, undefined, { perMessageDeflate: { clientNoContextTakeover: false } }));
    assert.equal(error.message, 'Invalid Sec-WebSocket-Extensions header');
  });

  test("a refusal without listener: 'Unexpected server response: 401'", async () => {
    const { port } = await serve((_req, socket) => {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
    });
    const recorder = open(`ws://127.0.0.1:${port}`);
    const error = await failure(recorder);
    assert.equal(error.message, 'Unexpected server response: 401');
    assert.deepEqual(recorder.calls, ['unexpected-response', 'failHandshake']);
  });

  test("a refusal with an 'unexpected-response' listener is left to it", async () => {
    const { port } = await serve((_req, socket) => {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno');
    });
    const recorder = open(`ws://127.0.0.1:${port}`);
    const [req, res] = (await once(recorder, 'unexpected-response')) as [ClientRequest, IncomingMessage];
    assert.equal(res.statusCode, 403);
    assert.equal(req, recorder.request);
    assert.equal(recorder.readyState, 0);
    // The listener ends the request with an error: that error fails the handshake.
    req.destroy(new Error('refused by the listener'));
    assert.equal((await failure(recorder)).message, 'refused by the listener');
  });

  test('a connection error fails the handshake with it', async () => {
    const { port, server } = await serve(() => {});
    server.close();
    await once(server, 'close');
    const error = (await failure(open(`ws://127.0.0.1:${port}`))) as NodeJS.ErrnoException;
    assert.equal(error.code, 'ECONNREFUSED');
  });

  test("handshakeTimeout: 'Opening handshake has timed out'", async () => {
    const { port } = await serve(() => {}); // never answers
    const started = Date.now();
    const recorder = open(`ws://127.0.0.1:${port}`, undefined, { handshakeTimeout: 50 });
    const error = await failure(recorder);
    assert.equal(error.message, 'Opening handshake has timed out');
    assert.ok(Date.now() - started < 2000);
    assert.equal(recorder.request, null);
  });

  test('a successful handshake clears the handshake timeout', async () => {
    const { url } = await server101();
    const { socket } = await success(open(url, undefined, { handshakeTimeout: 30 }));
    let timedOut = false;
    socket.on('timeout', () => (timedOut = true));
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(timedOut, false);
    assert.equal(socket.destroyed, false);
    socket.destroy();
  });
});

describe('redirects', () => {
  /** A server that redirects `/hop/N` to `/hop/N-1`, and upgrades `/hop/0`. */
  async function hops(): Promise<{ port: number; seen: Array<{ url: string; headers: IncomingHttpHeaders }> }> {
    const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
    const redirect = (req: IncomingMessage, socket: Socket): void => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      const n = Number((req.url ?? '').split('/')[2]);
      if (n === 0) answer101(req, socket);
      else socket.end(`HTTP/1.1 302 Found\r\nLocation: /hop/${n - 1}\r\nContent-Length: 0\r\n\r\n`);
    };
    const { port } = await serve(redirect);
    return { port, seen };
  }

  test("not followed by default: the 3xx is an unexpected response", async () => {
    const { port } = await hops();
    const error = await failure(open(`ws://127.0.0.1:${port}/hop/1`));
    assert.equal(error.message, 'Unexpected server response: 302');
  });

  test("followed with followRedirects: 'redirect' (url, req) for each hop, then the upgrade", async () => {
    const { port, seen } = await hops();
    const recorder = open(`ws://127.0.0.1:${port}/hop/2`, undefined, { followRedirects: true });
    const redirects: string[] = [];
    recorder.on('redirect', (url: string, req: ClientRequest) => {
      assert.equal(req, recorder.request);
      redirects.push(url);
    });
    const { socket } = await success(recorder);
    socket.destroy();
    assert.deepEqual(redirects, [`ws://127.0.0.1:${port}/hop/1`, `ws://127.0.0.1:${port}/hop/0`]);
    assert.deepEqual(seen.map((s) => s.url), ['/hop/2', '/hop/1', '/hop/0']);
    assert.equal(recorder.url, `ws://127.0.0.1:${port}/hop/0`);
  });

  test("more than maxRedirects: 'Maximum redirects exceeded'", async () => {
    const { port } = await hops();
    const error = await failure(open(`ws://127.0.0.1:${port}/hop/3`, undefined, { followRedirects: true, maxRedirects: 2 }));
    assert.equal(error.message, 'Maximum redirects exceeded');
  });

  test('a Location that is no WebSocket URL fails (not thrown)', async () => {
    const { port } = await serve((_req, socket) => {
      socket.end('HTTP/1.1 301 Moved\r\nLocation: ftp://example.com/\r\nContent-Length: 0\r\n\r\n');
    });
    const error = await failure(open(`ws://127.0.0.1:${port}`, undefined, { followRedirects: true }));
    assert.equal(error.name, 'SyntaxError');
    assert.match(error.message, /The URL's protocol must be one of/);
  });

  test('credentials and cookies go to the same host only', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const target = await serve((req, socket) => {
      seen.push(req.headers);
      answer101(req, socket);
    });
    const origin = await serve((req, socket) => {
      seen.push(req.headers);
      const to = req.url === '/same' ? `ws://127.0.0.1:${originPort}/final` : `ws://localhost:${target.port}/final`;
      if (req.url === '/final') answer101(req, socket);
      else socket.end(`HTTP/1.1 302 Found\r\nLocation: ${to}\r\nContent-Length: 0\r\n\r\n`);
    });
    const originPort = origin.port;
    const options: ClientOptions = { followRedirects: true, headers: { Cookie: 'a=1', Authorization: 'Bearer t', 'X-Other': 'kept' } };

    const same = await success(open(`ws://127.0.0.1:${originPort}/same`, undefined, options));
    same.socket.destroy();
    assert.equal(seen[1]!.cookie, 'a=1');
    assert.equal(seen[1]!.authorization, 'Bearer t');

    seen.length = 0;
    const elsewhere = await success(open(`ws://user:pw@127.0.0.1:${originPort}/elsewhere`, undefined, options));
    elsewhere.socket.destroy();
    assert.equal(seen[0]!.authorization, 'Bearer t'); // the header wins over the URL's credentials
    assert.equal(seen[1]!.cookie, undefined);
    assert.equal(seen[1]!.authorization, undefined);
    assert.equal(seen[1]!['x-other'], 'kept');
  });

  test("with a 'redirect' listener the headers are left to it", async () => {
    const seen: IncomingHttpHeaders[] = [];
    const target = await serve((req, socket) => {
      seen.push(req.headers);
      answer101(req, socket);
    });
    const { port } = await serve((_req, socket) => {
      socket.end(`HTTP/1.1 307 Temporary Redirect\r\nLocation: ws://localhost:${target.port}/\r\nContent-Length: 0\r\n\r\n`);
    });
    const recorder = open(`ws://127.0.0.1:${port}/`, undefined, { followRedirects: true, headers: { Cookie: 'a=1' } });
    recorder.on('redirect', (_url: string, req: ClientRequest) => req.setHeader('X-Hop', '1'));
    const { socket } = await success(recorder);
    socket.destroy();
    assert.equal(seen[0]!.cookie, 'a=1');
    assert.equal(seen[0]!['x-hop'], '1');
  });
});

describe("through our WebSocket class, against ws's server", () => {
  const wsServers: ws.WebSocketServer[] = [];
  after(() => wsServers.forEach((server) => server.close()));

  async function wsServer(options: ws.ServerOptions = {}): Promise<{ url: string; server: ws.WebSocketServer }> {
    const server = new ws.WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
    wsServers.push(server);
    await once(server, 'listening');
    return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
  }

  /** The client's events until 'close', with the error message and the close code. */
  function settle(client: ours.WebSocket): Promise<{ events: string[]; error?: Error; code?: number }> {
    const events: string[] = [];
    let error: Error | undefined;
    for (const name of ['upgrade', 'open', 'unexpected-response', 'redirect']) client.on(name, () => events.push(name));
    client.on('error', (e: Error) => {
      events.push('error');
      error = e;
    });
    return new Promise((resolve) =>
      client.on('close', (code: number) => {
        events.push('close');
        resolve({ events, error, code });
      }),
    );
  }

  test('negotiates subprotocol and permessage-deflate, exchanges compressed messages, closes cleanly', async () => {
    const { url, server } = await wsServer({ perMessageDeflate: { threshold: 0 } });
    server.on('connection', (peer: ws.WebSocket) => peer.on('message', (data: Buffer, isBinary: boolean) => peer.send(data, { binary: isBinary })));
    const client = new ours.WebSocket(url, ['one', 'two']);
    const outcome = settle(client);
    await once(client, 'open');
    assert.equal(client.protocol, 'one');
    assert.equal(client.extensions, 'permessage-deflate');
    const big = 'x'.repeat(50_000);
    client.send(big);
    const [data, isBinary] = (await once(client, 'message')) as [Buffer, boolean];
    assert.equal(isBinary, false);
    assert.equal(data.toString(), big);
    client.close(1000, 'bye');
    const { events, code } = await outcome;
    assert.deepEqual(events, ['upgrade', 'open', 'close']);
    assert.equal(code, 1000);
  });

  test("a broken 101 gives 'error' then 'close' (1006), as ws", async () => {
    const { port } = await serve((req, socket) => answer101(req, socket, ['Sec-WebSocket-Protocol: chat']));
    const client = new ours.WebSocket(`ws://127.0.0.1:${port}`);
    const { events, error, code } = await settle(client);
    assert.deepEqual(events, ['upgrade', 'error', 'close']);
    assert.equal(error?.message, 'Server sent a subprotocol but none was requested');
    assert.equal(code, 1006);
    assert.equal(client.readyState, client.CLOSED);
  });

  test("close() from an 'upgrade' listener aborts the handshake", async () => {
    const { url } = await wsServer();
    const client = new ours.WebSocket(url);
    client.on('upgrade', () => client.close());
    const { events, error } = await settle(client);
    assert.deepEqual(events, ['upgrade', 'error', 'close']);
    assert.equal(error?.message, 'WebSocket was closed before the connection was established');
  });

  test("close() after reading an unexpected response: ws's abort error", async () => {
    const { port } = await serve((_req, socket) => {
      socket.on('error', () => {});
      socket.write('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nfoo');
    });
    const client = new ours.WebSocket(`ws://127.0.0.1:${port}`);
    client.on('unexpected-response', (_req: ClientRequest, res: IncomingMessage) => {
      res.resume();
      res.on('end', () => client.close());
    });
    const { events, error, code } = await settle(client);
    assert.deepEqual(events, ['unexpected-response', 'error', 'close']);
    assert.equal(error?.message, 'WebSocket was closed before the connection was established');
    assert.equal(code, 1006);
  });

  test('_redirects and _req as ws keeps them; a request aborted in a redirect listener fails with its error', async () => {
    const { port } = await serve((_req, socket) => socket.end('HTTP/1.1 302 Found\r\nLocation: /foo\r\n\r\n'));
    const client = new ours.WebSocket(`ws://foo:bar@127.0.0.1:${port}`, { followRedirects: true });
    const internals = client as unknown as { _redirects: number; _req: ClientRequest | null };
    assert.equal(internals._redirects, 0);
    assert.equal(internals._req?.getHeader('Authorization'), 'Basic Zm9vOmJhcg==');
    client.on('redirect', (url: string, req: ClientRequest) => {
      assert.equal(internals._redirects, 1);
      assert.equal(url, `ws://foo:bar@127.0.0.1:${port}/foo`);
      assert.equal(req.getHeader('Authorization'), 'Basic Zm9vOmJhcg==');
      req.on('socket', () => req.destroy());
    });
    const { events, error, code } = await settle(client);
    assert.deepEqual(events, ['redirect', 'error', 'close']);
    assert.equal(error?.message, 'socket hang up');
    assert.equal(code, 1006);
  });

  test('an agent receives the request with the host without brackets and the port', async () => {
    const agent = new HttpAgent();
    const seen = new Promise<[ClientRequest, { host: string; port: number | string }]>((resolve) => {
      (agent as unknown as { addRequest: (req: ClientRequest, opts: { host: string; port: number }) => void }).addRequest = (req, opts) =>
        resolve([req, opts]);
    });
    const client = new ours.WebSocket(new URL('ws://[::1]'), { agent });
    const [req, opts] = await seen;
    assert.equal(opts.host, '::1');
    assert.equal(opts.port, 80);
    assert.equal(req.path, '/');
    const outcome = settle(client);
    client.terminate();
    assert.equal((await outcome).error?.message, 'WebSocket was closed before the connection was established');
  });

  test('wss: TLS options pass through (ca), SNI defaults to the host name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'duplex-ws-tls-'));
    try {
      const { cert, key } = await selfSignedCertificate(dir);
      const https = createHttpsServer({ cert, key });
      let servername: string | undefined;
      https.on('secureConnection', (socket: { servername?: string | false }) => (servername = socket.servername || undefined));
      const server = new ws.WebSocketServer({ server: https });
      server.on('connection', (peer: ws.WebSocket) => peer.send('secure'));
      https.listen(0, '127.0.0.1');
      await once(https, 'listening');
      const port = (https.address() as AddressInfo).port;
      try {
        const refused = new ours.WebSocket(`wss://localhost:${port}`);
        const failed = await settle(refused);
        assert.match(failed.error?.message ?? '', /self[- ]signed/i);

        const client = new ours.WebSocket(`wss://localhost:${port}`, { ca: cert });
        const [data] = (await once(client, 'message')) as [Buffer];
        assert.equal(data.toString(), 'secure');
        assert.equal(servername, 'localhost');
        client.close();
        await once(client, 'close');
      } finally {
        server.close();
        https.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
