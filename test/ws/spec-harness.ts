// The specification suite's harness: every spec-*.test.ts case runs once against the npm `ws`
// package (which proves the case itself is right) and once against duplex-ws/ws (ours).
//
// The socket under test ("sut") always talks to a reference peer made with the real `ws`, so a
// failure points at our side: server cases use a `ws` client, client cases a `ws` server, and raw
// cases a node:net socket that writes the bytes a `ws` peer cannot produce.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import type { EventEmitter } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { Duplex, type DuplexOptions } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import type WsWebSocket from 'ws';
import type { ClientOptions, ServerOptions as WsServerOptions, WebSocketServer as WsServerClass } from 'ws';

/** ws's WebSocket class with its statics: the shape both implementations must have. */
export type WebSocketClass = typeof WsWebSocket & {
  readonly WebSocket: typeof WsWebSocket;
  readonly WebSocketServer: typeof WsServerClass;
  readonly Server: typeof WsServerClass;
  readonly createWebSocketStream: StreamFactory;
};
/** createWebSocketStream's signature. */
export type StreamFactory = (websocket: WsWebSocket, options?: DuplexOptions) => Duplex;
/** A WebSocket instance of either implementation. */
export type WebSocketLike = WsWebSocket;
/** ws's WebSocketServer class. */
export type ServerClass = typeof WsServerClass;
/** A WebSocketServer instance of either implementation. */
export type ServerLike = WsServerClass;
/** ws's server options. */
export type ServerOptions = WsServerOptions;
export type { ClientOptions };

/** One implementation under test. */
export interface Impl {
  /** 'ws' (the reference) or 'duplex' (ours). */
  readonly name: 'ws' | 'duplex';
  readonly WebSocket: WebSocketClass;
  readonly WebSocketServer: ServerClass;
  readonly createWebSocketStream: StreamFactory;
  /** The ESM namespace of the entry point. */
  readonly esm: Record<string, unknown>;
  /** What `require()` of the CommonJS entry point returns. */
  readonly cjs: unknown;
  /** The bare specifier a user imports: 'ws' or 'duplex-ws/ws'. */
  readonly specifier: string;
}

const require = createRequire(import.meta.url);

/** Where tsc puts our module (this file runs from dist/test/ws/). */
export const OURS_ESM = new URL('../../src/ws/index.js', import.meta.url);
export const OURS_CJS = new URL('../../src/ws/index.cjs', import.meta.url);
/** Whether our module has been built; the exports spec fails while it is not. */
export const OURS_BUILT = existsSync(fileURLToPath(OURS_ESM));

async function load(): Promise<Impl[]> {
  const wsEsm = (await import('ws')) as unknown as Record<string, unknown>;
  const ws = wsEsm.default as WebSocketClass;
  const impls: Impl[] = [
    {
      name: 'ws',
      WebSocket: ws,
      WebSocketServer: wsEsm.WebSocketServer as ServerClass,
      createWebSocketStream: wsEsm.createWebSocketStream as StreamFactory,
      esm: wsEsm,
      cjs: require('ws'),
      specifier: 'ws',
    },
  ];
  if (OURS_BUILT) {
    // A variable specifier: this file must compile before our module exists, and its types are
    // checked against ws's own declarations (the specification), not against ours.
    const ours = (await import(OURS_ESM.href)) as Record<string, unknown>;
    impls.push({
      name: 'duplex',
      WebSocket: ours.default as WebSocketClass,
      WebSocketServer: ours.WebSocketServer as ServerClass,
      createWebSocketStream: ours.createWebSocketStream as StreamFactory,
      esm: ours,
      cjs: existsSync(fileURLToPath(OURS_CJS)) ? require(fileURLToPath(OURS_CJS)) : undefined,
      specifier: 'duplex-ws/ws',
    });
  }
  return impls;
}

/** The implementations every case runs against. */
export const IMPLS: readonly Impl[] = await load();
/** The reference implementation (the real `ws`), used for peers. */
export const REF: Impl = IMPLS[0]!;

/** Options for every `it`: a bound per case, so that nothing hangs. */
export const T = { timeout: 8000 } as const;

/**
 * Waits for `event` on `emitter`, at most `ms`; resolves with the event's arguments. Unlike
 * events.once it does not reject on an 'error' event: cases assert on errors themselves.
 */
export function once(emitter: EventEmitter, event: string, ms = 3000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.removeListener(event, listener);
      reject(new Error(`timed out after ${ms} ms waiting for '${event}'`));
    }, ms);
    function listener(...args: unknown[]): void {
      clearTimeout(timer);
      resolve(args);
    }
    emitter.once(event, listener);
  });
}

/** Resolves after `ms`. */
export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves after one turn of the event loop (after I/O callbacks). */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Polls `condition` every 5 ms, for at most `ms`. */
export async function until(condition: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** Records the names (and first arguments) of the events a WebSocket emits, in order. */
export function record(ws: EventEmitter, events: readonly string[] = ['open', 'upgrade', 'message', 'ping', 'pong', 'error', 'close']): string[] {
  const seen: string[] = [];
  for (const name of events) ws.on(name, () => void seen.push(name));
  return seen;
}

/** The Sec-WebSocket-Accept value for a key (RFC 6455 §4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** Builds one WebSocket frame (RFC 6455 §5.2). */
export function frame(
  opcode: number,
  payload: Buffer | string = Buffer.alloc(0),
  { fin = true, rsv1 = false, rsv2 = false, rsv3 = false, mask = true, length }: { fin?: boolean; rsv1?: boolean; rsv2?: boolean; rsv3?: boolean; mask?: boolean; length?: number } = {},
): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const size = length ?? data.length;
  const head: number[] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (rsv2 ? 0x20 : 0) | (rsv3 ? 0x10 : 0) | opcode];
  const m = mask ? 0x80 : 0;
  if (size < 126) head.push(m | size);
  else if (size < 65536) head.push(m | 126, size >> 8, size & 0xff);
  else {
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(size));
    head.push(m | 127, ...big);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = randomBytes(4);
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** A close frame's payload: code and reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const buf = Buffer.alloc(2 + Buffer.byteLength(reason));
  buf.writeUInt16BE(code, 0);
  buf.write(reason, 2);
  return buf;
}

/** One parsed (unmasked) frame read from a raw socket. */
export interface ParsedFrame {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Parses the frames in `data` (masked or not); incomplete trailing bytes are ignored. */
export function parseFrames(data: Buffer): ParsedFrame[] {
  const frames: ParsedFrame[] = [];
  let at = 0;
  while (at + 2 <= data.length) {
    const b0 = data[at]!;
    const b1 = data[at + 1]!;
    let len = b1 & 0x7f;
    let pos = at + 2;
    if (len === 126) {
      if (pos + 2 > data.length) break;
      len = data.readUInt16BE(pos);
      pos += 2;
    } else if (len === 127) {
      if (pos + 8 > data.length) break;
      len = Number(data.readBigUInt64BE(pos));
      pos += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const key = masked ? data.subarray(pos, pos + 4) : undefined;
    if (masked) pos += 4;
    if (pos + len > data.length) break;
    const payload = Buffer.from(data.subarray(pos, pos + len));
    if (key) for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i & 3]!;
    frames.push({ fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, opcode: b0 & 0x0f, masked, payload });
    at = pos + len;
  }
  return frames;
}

/** A raw TCP peer: everything it received, and a way to wait for more. */
export class RawPeer {
  received = Buffer.alloc(0);
  closed = false;
  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => void (this.received = Buffer.concat([this.received, chunk])));
    socket.on('close', () => void (this.closed = true));
    socket.on('error', () => undefined);
  }
  /** The frames received after the HTTP response head. */
  frames(): ParsedFrame[] {
    const end = this.received.indexOf('\r\n\r\n');
    return parseFrames(end === -1 ? this.received : this.received.subarray(end + 4));
  }
  /** The received bytes as latin1 text (for HTTP answers). */
  text(): string {
    return this.received.toString('latin1');
  }
  /** Waits until a close frame arrived; resolves with its code (1005 when it has none). */
  async closeFrame(ms = 3000): Promise<number> {
    await until(() => this.frames().some((f) => f.opcode === 8), ms, 'a close frame');
    const close = this.frames().find((f) => f.opcode === 8)!;
    return close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005;
  }
  async waitClosed(ms = 3000): Promise<void> {
    await until(() => this.closed, ms, 'the raw socket to close');
  }
}

/** A pair of connected in-memory Duplex streams (what ws's tests use to upgrade over any stream). */
export function duplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (other: number): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        ends[other]!.push(chunk);
        callback();
      },
      final(callback) {
        ends[other]!.push(null);
        callback();
      },
    });
  ends.push(make(1), make(0));
  return [ends[0]!, ends[1]!];
}

/** Everything a case opened, closed when the case ends (passing or not). */
export class Scope {
  private readonly servers: ServerLike[] = [];
  private readonly sockets: WebSocketLike[] = [];
  private readonly httpServers: HttpServer[] = [];
  private readonly raws: Socket[] = [];
  private readonly cleanups: (() => unknown)[] = [];

  constructor(
    readonly impl: Impl,
    t: TestContext,
  ) {
    t.after(() => this.dispose());
  }

  /** Registers a cleanup to run at the end of the case. */
  defer(fn: () => unknown): void {
    this.cleanups.push(fn);
  }

  /** A WebSocketServer of `impl` listening on 127.0.0.1 (port mode unless `server`/`noServer` is given). */
  async server(options: ServerOptions = {}, impl: Impl = this.impl): Promise<{ wss: ServerLike; port: number; url: string }> {
    const standalone = options.server === undefined && !options.noServer;
    const wss = new impl.WebSocketServer(standalone ? { port: 0, host: '127.0.0.1', ...options } : options);
    this.servers.push(wss);
    if (standalone) await once(wss, 'listening');
    const address = options.noServer ? null : options.server ? options.server.address() : wss.address();
    const port = address && typeof address === 'object' ? address.port : 0;
    return { wss, port, url: `ws://127.0.0.1:${port}` };
  }

  /** A plain node:http server on 127.0.0.1, port 0. */
  async httpServer(listener?: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: HttpServer; port: number; url: string }> {
    const server = createHttpServer(listener);
    this.trackHttp(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    return { server, port, url: `ws://127.0.0.1:${port}` };
  }

  /** Tracks a WebSocketServer created elsewhere (its clients terminated, it closed, at the end). */
  adopt<S extends ServerLike>(wss: S): S {
    this.servers.push(wss);
    return wss;
  }

  /** Tracks an http(s) server created elsewhere. */
  trackHttp(server: HttpServer): void {
    this.httpServers.push(server);
    // Upgraded sockets leave the http server's bookkeeping but keep it from closing: track them.
    server.on('connection', (socket: Socket) => void this.raws.push(socket));
    server.on('secureConnection', (socket: Socket) => void this.raws.push(socket));
  }

  /** A client WebSocket of `impl` (not waited for). */
  client(url: string | URL, protocols?: string | string[] | ClientOptions, options?: ClientOptions, impl: Impl = this.impl): WebSocketLike {
    const ws =
      options !== undefined
        ? new impl.WebSocket(url, protocols as string | string[] | undefined, options)
        : protocols !== undefined
          ? new impl.WebSocket(url, protocols as string | string[])
          : new impl.WebSocket(url);
    this.sockets.push(ws);
    return ws;
  }

  /** Tracks a WebSocket created elsewhere (terminated at the end). */
  track(ws: WebSocketLike): WebSocketLike {
    this.sockets.push(ws);
    return ws;
  }

  /** A client of `impl`, resolved once open. */
  async open(url: string | URL, protocols?: string | string[] | ClientOptions, options?: ClientOptions, impl: Impl = this.impl): Promise<WebSocketLike> {
    const ws = this.client(url, protocols, options, impl);
    await once(ws, 'open');
    return ws;
  }

  /**
   * A connected pair whose socket under test is `impl`'s, on `side`; the peer is the real ws.
   * `sutOptions` go to the side under test (server options or client options), `peerOptions`
   * to the other.
   */
  async connect(
    side: Side,
    sutOptions: ServerOptions & ClientOptions = {},
    peerOptions: ServerOptions & ClientOptions = {},
    protocols?: string | string[],
  ): Promise<{ sut: WebSocketLike; peer: WebSocketLike; req: IncomingMessage; wss: ServerLike }> {
    const serverImpl = side === 'server' ? this.impl : REF;
    const clientImpl = side === 'client' ? this.impl : REF;
    const { wss, url } = await this.server(side === 'server' ? sutOptions : peerOptions, serverImpl);
    const connection = once(wss, 'connection');
    const client = this.client(url, protocols ?? [], side === 'client' ? sutOptions : peerOptions, clientImpl);
    const [[accepted, req]] = await Promise.all([connection, once(client, 'open')]);
    const server = accepted as WebSocketLike;
    this.sockets.push(server);
    return side === 'server'
      ? { sut: server, peer: client, req: req as IncomingMessage, wss }
      : { sut: client, peer: server, req: req as IncomingMessage, wss };
  }

  /** A raw TCP connection to 127.0.0.1:port, resolved once connected. */
  async raw(port: number): Promise<RawPeer> {
    const socket = netConnect(port, '127.0.0.1');
    this.raws.push(socket);
    await once(socket, 'connect');
    return new RawPeer(socket);
  }

  /**
   * A raw client that completed the opening handshake with `impl`'s server (given options);
   * resolves with the raw peer (frames it sends must be masked) and the server-side WebSocket.
   */
  async rawClient(
    options: ServerOptions = {},
    extraHeaders: string[] = [],
  ): Promise<{ raw: RawPeer; sut: WebSocketLike; wss: ServerLike; port: number }> {
    const { wss, port } = await this.server(options);
    const raw = await this.raw(port);
    const connection = once(wss, 'connection');
    raw.socket.write(upgradeRequest(extraHeaders));
    const [sut] = (await connection) as [WebSocketLike];
    this.sockets.push(sut);
    await until(() => raw.text().includes('\r\n\r\n'), 3000, 'the 101 response');
    return { raw, sut, wss, port };
  }

  /**
   * A raw server that answers one upgrade with a valid 101 (plus `extraHeaders`), then hands
   * its socket over; resolves with the connected `impl` client and the raw server socket.
   */
  async rawServer(
    clientOptions: ClientOptions = {},
    extraHeaders: string[] = [],
    protocols?: string | string[],
  ): Promise<{ raw: RawPeer; sut: WebSocketLike }> {
    const { server, url } = await this.httpServer();
    let raw!: RawPeer;
    server.once('upgrade', (req: IncomingMessage, socket: Socket) => {
      this.raws.push(socket);
      raw = new RawPeer(socket);
      socket.write(
        ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptKey(req.headers['sec-websocket-key']!)}`, ...extraHeaders, '', ''].join(
          '\r\n',
        ),
      );
    });
    const sut = this.client(url, protocols ?? [], clientOptions);
    await once(sut, 'open');
    return { raw, sut };
  }

  async dispose(): Promise<void> {
    for (const ws of this.sockets.splice(0)) {
      ws.removeAllListeners('error');
      ws.on('error', () => undefined);
      ws.terminate();
    }
    for (const socket of this.raws.splice(0)) socket.destroy();
    // Bounded: a cleanup that waits on something the case left open must not hang the run.
    for (const fn of this.cleanups.splice(0)) await Promise.race([fn(), delay(1000)]);
    const closing: Promise<unknown>[] = [];
    for (const wss of this.servers.splice(0)) {
      if (wss.clients) for (const c of wss.clients) c.terminate();
      closing.push(new Promise((resolve) => wss.close(() => resolve(undefined))));
    }
    for (const server of this.httpServers.splice(0)) {
      server.closeAllConnections();
      if (server.listening) closing.push(new Promise((resolve) => server.close(() => resolve(undefined))));
    }
    await Promise.race([Promise.all(closing), delay(1000)]);
  }
}

/** Which end of a connection is under test. */
export type Side = 'server' | 'client';
export const SIDES: readonly Side[] = ['server', 'client'];

/** A valid HTTP/1.1 upgrade request for "/" (with `extraHeaders` appended). */
export function upgradeRequest(extraHeaders: string[] = [], { path = '/', method = 'GET', version = '13', key = 'dGhlIHNhbXBsZSBub25jZQ==', httpVersion = '1.1', host = true } = {}): string {
  const lines = [`${method} ${path} HTTP/${httpVersion}`];
  if (host) lines.push('Host: 127.0.0.1');
  lines.push('Upgrade: websocket', 'Connection: Upgrade');
  if (key) lines.push(`Sec-WebSocket-Key: ${key}`);
  if (version) lines.push(`Sec-WebSocket-Version: ${version}`);
  lines.push(...extraHeaders, '', '');
  return lines.join('\r\n');
}

/** Sends raw bytes to port and collects the answer until the server closes (or `ms` passes). */
export async function rawExchange(port: number, request: string | Buffer, ms = 2000): Promise<{ status: number; headers: Record<string, string>; body: string; text: string }> {
  const socket = netConnect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  let data = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => void (data = Buffer.concat([data, chunk])));
  socket.write(request);
  await Promise.race([once(socket, 'close', ms + 1000), delay(ms)]);
  socket.destroy();
  return parseHttp(data.toString('latin1'));
}

/** Splits an HTTP response into status, lower-cased headers and body. */
export function parseHttp(text: string): { status: number; headers: Record<string, string>; body: string; text: string } {
  const end = text.indexOf('\r\n\r\n');
  const head = end === -1 ? text : text.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body: end === -1 ? '' : text.slice(end + 4), text };
}

/** An http.Agent whose requests never leave the process: ws's own trick to inspect a request. */
export async function capturedRequest(impl: Impl, url: string | URL, protocols?: string | string[], options: ClientOptions = {}): Promise<{ req: import('node:http').ClientRequest; opts: Record<string, unknown>; ws: WebSocketLike }> {
  const { Agent } = String(url).startsWith('wss:') ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const agent = new Agent();
    let ws!: WebSocketLike;
    (agent as unknown as { addRequest: (req: import('node:http').ClientRequest, opts: Record<string, unknown>) => void }).addRequest = (req, opts) => {
      // addRequest runs inside the constructor; hand over after it returned.
      setImmediate(() => {
        resolve({ req, opts, ws });
        ws.removeAllListeners('error');
        ws.on('error', () => undefined);
        ws.terminate();
      });
    };
    try {
      ws = new impl.WebSocket(url, protocols ?? [], { ...options, agent });
    } catch (error) {
      reject(error);
    }
  });
}

/** A client that stays CONNECTING forever (its DNS lookup never answers), as ws's tests make. */
export function stuckClient(impl: Impl, options: ClientOptions = {}): WebSocketLike {
  return new impl.WebSocket('ws://stuck.invalid', { ...options, lookup: () => undefined } as ClientOptions);
}

/** Describes `body` once per implementation: `describe('<title> [ws]')`, `describe('<title> [duplex]')`. */
export function forEachImpl(title: string, body: (impl: Impl) => void, describeFn: (name: string, fn: () => void) => void): void {
  for (const impl of IMPLS) describeFn(`${title} [${impl.name}]`, () => body(impl));
}
