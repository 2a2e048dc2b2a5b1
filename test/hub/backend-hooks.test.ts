// Backend hooks over HTTP (docs/backend-hooks.md): a real Hub on a real WebSocketServer asking a
// real HTTP backend on loopback — a Node `http` server per test, whose answers each test picks,
// and the guide's Python backend run as written with Debian's /usr/bin/python3. Connect (who the
// user is, what reaches the backend, refusals, expiry), every way a backend can fail (E_UNAVAILABLE,
// close 1013, one warn line, the hub still serving), retries of the idempotent hooks only and
// within the timeout, subscribe, publish (and its rewrite), rpc, and the options' checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { AddressInfo } from 'node:net';
import type { WebSocketServer } from '../../src/index.js';
import { HubClientError, createBackendHooks, type BackendHooksOptions, type Hub, type HubOptions, type Json } from '../../src/hub/index.js';
import type { LogFields, Logger } from '../../src/node/logger.js';
import { docBlocks, loadExample, prepareExample } from '../node/readme-example.js';
import { delay, hubClient, rawClient, startHub, until, type RawClient, type Received } from './hub-helpers.js';

// ---- a backend in this process --------------------------------------------------------------------

/** A request the backend got. */
interface Seen {
  readonly path: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
  /** When it arrived (Date.now()). */
  readonly at: number;
}

/** What the backend does with a request: answer JSON (or raw text), with a status, or misbehave. */
type Reply =
  | { readonly json: unknown; readonly status?: number }
  | { readonly text: string; readonly status?: number; readonly chunked?: boolean }
  | { readonly status: number; readonly location?: string }
  | { readonly hang: true }
  | { readonly reset: true };

type Route = (body: Record<string, unknown>, seen: Seen, count: number) => Reply;

class Backend {
  readonly seen: Seen[] = [];
  readonly routes = new Map<string, Route>();
  private readonly server: Server;
  private readonly hanging = new Set<ServerResponse>();
  private port = 0;

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const path = req.url ?? '/';
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') as Record<string, unknown>;
        const seen: Seen = { path, method: req.method ?? '', headers: req.headers, body, at: Date.now() };
        this.seen.push(seen);
        const route = this.routes.get(path);
        const reply: Reply = route ? route(body, seen, this.seen.filter((s) => s.path === path).length) : { status: 404 };
        this.reply(res, reply);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** The requests to `path`, in order. */
  to(path: string): Seen[] {
    return this.seen.filter((s) => s.path === path);
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private reply(res: ServerResponse, reply: Reply): void {
    if ('hang' in reply) {
      this.hanging.add(res);
      res.on('close', () => this.hanging.delete(res));
      return;
    }
    if ('reset' in reply) {
      res.socket?.destroy();
      return;
    }
    if ('json' in reply || 'text' in reply) {
      const text = 'json' in reply ? JSON.stringify(reply.json) : reply.text;
      res.statusCode = reply.status ?? 200;
      res.setHeader('content-type', 'application/json');
      if ('chunked' in reply && reply.chunked) {
        // No content-length: the hub can only find out the size by reading.
        for (let i = 0; i < text.length; i += 64 * 1024) res.write(text.slice(i, i + 64 * 1024));
        res.end();
      } else {
        res.end(text);
      }
      return;
    }
    res.statusCode = reply.status;
    if (reply.location) res.setHeader('location', reply.location);
    res.end();
  }
}

async function backend(routes: Record<string, Route> = {}): Promise<Backend> {
  const b = await new Backend().start();
  for (const [path, route] of Object.entries(routes)) b.routes.set(path, route);
  return b;
}

/** A URL nothing listens on. */
async function deadUrl(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return `http://127.0.0.1:${port}/connect`;
}

// ---- hubs, clients and logs ------------------------------------------------------------------

interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: LogFields;
  readonly message: string;
}

function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (fields: LogFields, message: string) => void lines.push({ level, fields, message });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** The warn lines of failed hook calls. */
function failures(logger: { lines: LogLine[] }): LogLine[] {
  return logger.lines.filter((l) => l.level === 'warn' && / hook failed$/.test(l.message));
}

async function hubWith(hooks: BackendHooksOptions, extra: HubOptions = {}): Promise<{ env: Awaited<ReturnType<typeof startHub>>; logger: ReturnType<typeof recordingLogger> }> {
  const logger = recordingLogger();
  const env = await startHub({ ...createBackendHooks({ ...hooks, logger }), logger, ...extra });
  return { env, logger };
}

/** A raw connection that sent `connect` (with `extra` fields) and got its answer. */
async function rawConnect(url: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<{ raw: RawClient; answer: Received }> {
  const raw = await rawClient(url, headers);
  const answer = await raw.request({ type: 'connect', ...extra }, 8000);
  return { raw, answer };
}

/** The code of an `error` message (undefined for a reply). */
function errorCode(message: Received): unknown {
  return message.type === 'error' ? message['code'] : undefined;
}

/** A predicate for `assert.rejects`: a `HubClientError` with `code`. */
function withCode(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof HubClientError, `a HubClientError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

const ada: Route = () => ({ json: { result: { user: 'ada', info: { name: 'Ada' } } } });

// ---- connect ---------------------------------------------------------------------------------

test('connect: the backend says who the connection is (id and info in presence); handshake headers, connect data and the token reach it, nothing else', { timeout: 10_000 }, async () => {
  const b = await backend({ '/connect': ada });
  const { env } = await hubWith({ connect: { url: b.url('/connect') } });
  const headers = { cookie: 'session=abc', 'user-agent': 'duplex-test/1', 'x-not-forwarded': 'secret' };
  const client = hubClient(env.url, { connectData: { room: 'lobby' }, reconnect: { headers, origin: 'http://app.example' } });
  try {
    await client.connected();
    assert.equal(client.userId, 'ada');
    await client.subscribe('room');
    assert.deepEqual(await env.hub.presence('room'), [{ connId: client.connId, userId: 'ada', info: { name: 'Ada' }, node: env.hub.nodeId }]);

    const [seen] = b.to('/connect');
    assert.ok(seen);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.headers['content-type'], 'application/json');
    assert.equal(seen.headers.cookie, 'session=abc');
    assert.equal(seen.headers['user-agent'], 'duplex-test/1');
    assert.equal(seen.headers.origin, 'http://app.example');
    assert.equal(seen.headers['x-not-forwarded'], undefined, 'only the named headers are forwarded');
    assert.equal(seen.headers['sec-websocket-key'], undefined);
    assert.notEqual(seen.headers.upgrade, 'websocket', "the handshake's hop-by-hop headers are not the hook's");
    assert.deepEqual(seen.body, { connId: client.connId, remoteAddress: '127.0.0.1', data: { room: 'lobby' } });

    // The token of a `connect` message goes to a hub without `auth` in the body.
    const { raw, answer } = await rawConnect(env.url, { token: 'tok-1', data: [1, 2] });
    assert.equal(answer.type, 'reply');
    assert.deepEqual(b.to('/connect')[1]?.body, { connId: (answer['result'] as { connId: string }).connId, remoteAddress: '127.0.0.1', token: 'tok-1', data: [1, 2] });
    raw.ws.close();
  } finally {
    await client.close();
    await env.close();
    await b.close();
  }
});

test('connect: an anonymous answer (user null) admits the connection without a user id', { timeout: 10_000 }, async () => {
  const b = await backend({ '/connect': () => ({ json: { result: { user: null, info: { guest: true } } } }) });
  const { env } = await hubWith({ connect: { url: b.url('/connect') } });
  try {
    const { raw, answer } = await rawConnect(env.url);
    assert.equal(answer.type, 'reply', JSON.stringify(answer));
    assert.equal((answer['result'] as { user?: unknown }).user, undefined);
    const sub = await raw.request({ type: 'subscribe', topic: 'lobby' });
    assert.equal(sub.type, 'reply');
    const [member] = await env.hub.presence('lobby');
    assert.equal(member?.userId, undefined);
    assert.deepEqual(member?.info, { guest: true });
    raw.ws.close();
  } finally {
    await env.close();
    await b.close();
  }
});

test('connect refused: E_UNAUTHORIZED (the backend’s message) and close 1008, not retried; an unknown code is E_FORBIDDEN and a warn line', { timeout: 10_000 }, async () => {
  const b = await backend({
    '/connect': (body) =>
      (body['data'] as { as?: string }).as === 'stranger'
        ? { json: { error: { code: 'E_UNAUTHORIZED', message: 'sign in first' } } }
        : { json: { error: { code: 'E_NOPE', message: 'typo in the backend' } } },
  });
  const { env, logger } = await hubWith({ connect: { url: b.url('/connect') } });
  try {
    const stranger = await rawConnect(env.url, { data: { as: 'stranger' } });
    assert.equal(errorCode(stranger.answer), 'E_UNAUTHORIZED');
    assert.equal(stranger.answer['message'], 'sign in first');
    assert.equal((await stranger.raw.closed)[0], 1008);
    assert.equal(b.to('/connect').length, 1, 'an error answer is not retried');

    const typo = await rawConnect(env.url, { data: { as: 'typo' } });
    assert.equal(errorCode(typo.answer), 'E_FORBIDDEN');
    assert.equal((await typo.raw.closed)[0], 1008);
    const line = logger.lines.find((l) => l.level === 'warn' && l.fields['code'] === 'E_NOPE');
    assert.ok(line, `a warn line names the unknown code: ${JSON.stringify(logger.lines)}`);
    assert.equal(line.fields['hook'], 'connect');
    assert.equal(failures(logger).length, 0, 'a refusal is not a failure');
  } finally {
    await env.close();
    await b.close();
  }
});

/** Ways a backend fails, and how many attempts the hub makes (connect retries once on timeouts, network errors and 5xx). */
const FAILURES: ReadonlyArray<{ name: string; reply?: Reply; attempts: number; reason: RegExp; status?: number }> = [
  { name: 'backend down (connection refused)', attempts: 2, reason: /ECONNREFUSED/ },
  { name: 'HTTP 500', reply: { status: 500 }, attempts: 2, reason: /500/, status: 500 },
  { name: 'no answer (timeout)', reply: { hang: true }, attempts: 2, reason: /no answer within/ },
  { name: 'connection reset', reply: { reset: true }, attempts: 2, reason: /UND_ERR_SOCKET|ECONNRESET|closed/ },
  { name: 'HTTP 404 (a 4xx is not retried)', reply: { status: 404 }, attempts: 1, reason: /404/, status: 404 },
  { name: 'a redirect (not followed)', reply: { status: 302, location: 'http://127.0.0.1:1/elsewhere' }, attempts: 1, reason: /302/, status: 302 },
  { name: 'a body that is not JSON', reply: { text: '<html>oops</html>' }, attempts: 1, reason: /not JSON/, status: 200 },
  { name: 'JSON with neither result nor error', reply: { json: { ok: true } }, attempts: 1, reason: /neither result nor error/, status: 200 },
  { name: 'a result of the wrong shape', reply: { json: { result: { user: 42 } } }, attempts: 1, reason: /not what a connect hook answers/, status: 200 },
  { name: 'an error without a code', reply: { json: { error: 'no' } }, attempts: 1, reason: /no string code/, status: 200 },
  { name: 'a body over 1 MiB (declared)', reply: { text: JSON.stringify({ result: { user: 'a', info: 'x'.repeat(1 << 21) } }) }, attempts: 1, reason: /larger than/, status: 200 },
  { name: 'a body over 1 MiB (chunked)', reply: { text: JSON.stringify({ result: { user: 'a', info: 'x'.repeat(1 << 21) } }), chunked: true }, attempts: 1, reason: /larger than/, status: 200 },
];

for (const failure of FAILURES) {
  test(`connect, ${failure.name}: E_UNAVAILABLE and close 1013 within the timeout, one warn line, the hub still serves`, { timeout: 10_000 }, async () => {
    const b = await backend(failure.reply ? { '/connect': () => failure.reply! } : {});
    const url = failure.reply ? b.url('/connect') : await deadUrl();
    const timeout = 600;
    // A handshake token admits a connection without the hook: one that was there before the failure.
    const { env, logger } = await hubWith({ connect: { url, timeout } }, { auth: { verify: (token) => ({ id: token }) } });
    try {
      const before = await rawClient(`${env.url}?token=bob`);
      const started = Date.now();
      const { raw, answer } = await rawConnect(env.url);
      const took = Date.now() - started;
      assert.equal(errorCode(answer), 'E_UNAVAILABLE', JSON.stringify(answer));
      assert.equal((await raw.closed)[0], 1013, 'its client is told to come back later');
      assert.ok(took < timeout + 500, `answered within the hook's timeout (${took} ms)`);
      if ('hang' in (failure.reply ?? {})) assert.ok(took >= timeout - 100, `both attempts waited their share (${took} ms)`);

      const lines = failures(logger);
      assert.equal(lines.length, 1, `one warn line: ${JSON.stringify(logger.lines)}`);
      const { fields } = lines[0]!;
      assert.equal(fields['hook'], 'connect');
      assert.equal(fields['url'], url);
      assert.match(String(fields['reason']), failure.reason);
      assert.equal(fields['status'], failure.status);
      assert.equal(typeof fields['ms'], 'number');
      assert.equal(fields['attempts'], failure.attempts);
      if (failure.reply) assert.equal(b.to('/connect').length, failure.attempts);

      // The others are still served: the connection from before, and a new one.
      assert.equal((await before.request({ type: 'ping' })).type, 'reply');
      const after = await rawClient(`${env.url}?token=carol`);
      assert.equal((await after.request({ type: 'connect' })).type, 'reply');
      before.ws.close();
      after.ws.close();
    } finally {
      await env.close();
      await b.close();
    }
  });
}

test('connect: expireAt (Unix seconds) closes the connection with 4001 when it passes', { timeout: 10_000 }, async () => {
  const b = await backend({ '/connect': () => ({ json: { result: { user: 'ada', expireAt: Date.now() / 1000 + 0.4 } } }) });
  const { env } = await hubWith({ connect: { url: b.url('/connect') } });
  try {
    const started = Date.now();
    const { raw, answer } = await rawConnect(env.url);
    assert.equal(answer.type, 'reply', JSON.stringify(answer));
    const [code] = await raw.closed;
    const lasted = Date.now() - started;
    assert.equal(code, 4001);
    assert.ok(lasted >= 300 && lasted < 2000, `closed when the authentication expired (${lasted} ms)`);
  } finally {
    await env.close();
    await b.close();
  }
});

// ---- retries ---------------------------------------------------------------------------------

test('retries: a connect failing once (503) then answering connects, after a short backoff', { timeout: 10_000 }, async () => {
  const b = await backend({ '/connect': (_body, _seen, n) => (n === 1 ? { status: 503 } : ada(_body, _seen, n)) });
  const { env, logger } = await hubWith({ connect: { url: b.url('/connect') } });
  const client = hubClient(env.url);
  try {
    await client.connected();
    assert.equal(client.userId, 'ada');
    const [first, second] = b.to('/connect');
    assert.ok(first && second && b.to('/connect').length === 2);
    assert.ok(second.at - first.at >= 90, `the retry waited the backoff (${second.at - first.at} ms)`);
    assert.equal(failures(logger).length, 0, 'a retried success is no failure');
    assert.ok(logger.lines.some((l) => l.level === 'info' && /retrying/.test(l.message) && l.fields['status'] === 503));
  } finally {
    await client.close();
    await env.close();
    await b.close();
  }
});

test('retries: a subscribe whose first attempt hangs is retried within its timeout, and answered', { timeout: 10_000 }, async () => {
  const b = await backend({ '/connect': ada, '/subscribe': (_body, _seen, n) => (n === 1 ? { hang: true } : { json: { result: {} } }) });
  const timeout = 1000;
  const { env } = await hubWith({ connect: { url: b.url('/connect') }, subscribe: { url: b.url('/subscribe'), timeout } });
  try {
    const { raw } = await rawConnect(env.url);
    const started = Date.now();
    const reply = await raw.request({ type: 'subscribe', topic: 'news' });
    const took = Date.now() - started;
    assert.equal(reply.type, 'reply', JSON.stringify(reply));
    assert.equal(b.to('/subscribe').length, 2);
    // The first attempt had (1000 − 100) / 2 ms, then 100 ms of backoff; all of it inside the timeout.
    assert.ok(took >= 500 && took < timeout, `retried after its share of the timeout (${took} ms)`);
    raw.ws.close();
  } finally {
    await env.close();
    await b.close();
  }
});

test('retries: publish and rpc are never retried (a 503 is E_UNAVAILABLE after one request)', { timeout: 10_000 }, async () => {
  const b = await backend({ '/connect': ada, '/publish': () => ({ status: 503 }), '/rpc': () => ({ status: 503 }) });
  const { env, logger } = await hubWith({ connect: { url: b.url('/connect') }, publish: { url: b.url('/publish') }, rpc: { url: b.url('/rpc') } });
  const client = hubClient(env.url);
  try {
    await client.connected();
    await assert.rejects(client.publish('chat', { text: 'hi' }), withCode('E_UNAVAILABLE'));
    await assert.rejects(client.rpc('charge', { cents: 100 }), withCode('E_UNAVAILABLE'));
    assert.equal(b.to('/publish').length, 1);
    assert.equal(b.to('/rpc').length, 1);
    assert.deepEqual(
      failures(logger).map((l) => [l.fields['hook'], l.fields['status'], l.fields['attempts']]),
      [
        ['publish', 503, 1],
        ['rpc', 503, 1],
      ],
    );
  } finally {
    await client.close();
    await env.close();
    await b.close();
  }
});

// ---- subscribe, publish, rpc -------------------------------------------------------------------

test('subscribe: allowed ({}), refused (the backend’s code and message), unavailable; presence asks it too; headers only when named', { timeout: 10_000 }, async () => {
  const b = await backend({
    '/connect': ada,
    '/subscribe': (body) => {
      const topic = String(body['topic']);
      if (topic === 'flaky') return { status: 500 };
      if (topic.startsWith('secret')) return { json: { error: { code: 'E_FORBIDDEN', message: `members only: ${topic}` } } };
      return { json: { result: {} } };
    },
  });
  const { env, logger } = await hubWith({ connect: { url: b.url('/connect') }, subscribe: { url: b.url('/subscribe') } });
  try {
    const { raw, answer } = await rawConnect(env.url, {}, { cookie: 'session=abc' });
    const connId = (answer['result'] as { connId: string }).connId;
    assert.equal((await raw.request({ type: 'subscribe', topic: 'news' })).type, 'reply');
    const [seen] = b.to('/subscribe');
    assert.deepEqual(seen?.body, { connId, user: 'ada', topic: 'news' });
    assert.equal(seen?.headers.cookie, undefined, 'the subscribe hook forwards no header by default');

    const refused = await raw.request({ type: 'subscribe', topic: 'secret-room' });
    assert.equal(errorCode(refused), 'E_FORBIDDEN');
    assert.equal(refused['message'], 'members only: secret-room');
    const presence = await raw.request({ type: 'presence', topic: 'secret-plans' });
    assert.equal(errorCode(presence), 'E_FORBIDDEN', "a topic's presence is guarded as the topic is");
    assert.equal(b.to('/subscribe').at(-1)?.body['topic'], 'secret-plans');

    const flaky = await raw.request({ type: 'subscribe', topic: 'flaky' });
    assert.equal(errorCode(flaky), 'E_UNAVAILABLE');
    assert.equal(b.to('/subscribe').filter((s) => s.body['topic'] === 'flaky').length, 2, 'subscribe is retried once');
    assert.equal(failures(logger).length, 1);
    assert.equal((await raw.request({ type: 'ping' })).type, 'reply', 'the connection carries on');
    raw.ws.close();
  } finally {
    await env.close();
    await b.close();
  }

  // Named headers are forwarded to a subscribe hook too; the hub keeps the union of the lists.
  const hooks = { connect: { url: b.url('/connect'), headers: ['Cookie'] }, subscribe: { url: b.url('/subscribe'), headers: ['x-tenant', 'cookie'] } };
  assert.deepEqual([...createBackendHooks(hooks).handshakeHeaders].sort(), ['cookie', 'x-tenant']);
  const b2 = await backend({ '/connect': ada, '/subscribe': () => ({ json: { result: {} } }) });
  const again = await hubWith({ connect: { url: b2.url('/connect'), headers: ['cookie'] }, subscribe: { url: b2.url('/subscribe'), headers: ['x-tenant', 'cookie'] } });
  try {
    const { raw } = await rawConnect(again.env.url, {}, { cookie: 'session=abc', 'x-tenant': 'acme', 'user-agent': 'kept-by-nobody' });
    assert.equal((await raw.request({ type: 'subscribe', topic: 'news' })).type, 'reply');
    const [seen] = b2.to('/subscribe');
    assert.equal(seen?.headers.cookie, 'session=abc');
    assert.equal(seen?.headers['x-tenant'], 'acme');
    assert.notEqual(seen?.headers['user-agent'], 'kept-by-nobody');
    raw.ws.close();
  } finally {
    await again.env.close();
    await b2.close();
  }
});

test('publish: allowed as sent ({}), rewritten ({"data": X}, null included), refused', { timeout: 10_000 }, async () => {
  const b = await backend({
    '/connect': (body) => ({ json: { result: { user: String((body['data'] as { as: string }).as) } } }),
    '/publish': (body) => {
      const topic = String(body['topic']);
      if (topic === 'chat:plain') return { json: { result: {} } };
      if (topic === 'chat:rewrite') return { json: { result: { data: { text: String((body['data'] as { text: string }).text).toUpperCase(), from: body['user'] } } } };
      if (topic === 'chat:null') return { json: { result: { data: null } } };
      return { json: { error: { code: 'E_FORBIDDEN', message: 'read-only topic' } } };
    },
  });
  const { env } = await hubWith({ connect: { url: b.url('/connect') }, publish: { url: b.url('/publish') } });
  try {
    const reader = (await rawConnect(env.url, { data: { as: 'reader' } })).raw;
    const { raw: writer, answer } = await rawConnect(env.url, { data: { as: 'ada' } });
    for (const topic of ['chat:plain', 'chat:rewrite', 'chat:null', 'news']) assert.equal((await reader.request({ type: 'subscribe', topic })).type, 'reply');

    const message = (topic: string) => reader.next((m) => m.type === 'message' && m['topic'] === topic);
    assert.equal((await writer.request({ type: 'publish', topic: 'chat:plain', data: { text: 'hi' } })).type, 'reply');
    assert.deepEqual((await message('chat:plain'))['data'], { text: 'hi' });
    assert.deepEqual(b.to('/publish')[0]?.body, { connId: (answer['result'] as { connId: string }).connId, user: 'ada', topic: 'chat:plain', data: { text: 'hi' } });

    assert.equal((await writer.request({ type: 'publish', topic: 'chat:rewrite', data: { text: 'hi' } })).type, 'reply');
    assert.deepEqual((await message('chat:rewrite'))['data'], { text: 'HI', from: 'ada' });
    assert.equal((await writer.request({ type: 'publish', topic: 'chat:null', data: { text: 'gone' } })).type, 'reply');
    assert.equal((await message('chat:null'))['data'], null);

    const refused = await writer.request({ type: 'publish', topic: 'news', data: { text: 'spam' } });
    assert.equal(errorCode(refused), 'E_FORBIDDEN');
    assert.equal(refused['message'], 'read-only topic');
    await delay(50);
    assert.ok(!reader.messages.some((m) => m.type === 'message' && m['topic'] === 'news'), 'nothing was published');
    reader.ws.close();
    writer.ws.close();
  } finally {
    await env.close();
    await b.close();
  }
});

test('rpc: answered ({"data": X}), refused, E_NOT_FOUND, unavailable; a hub.rpc() handler is not sent to the backend', { timeout: 10_000 }, async () => {
  const b = await backend({
    '/connect': ada,
    '/rpc': (body) => {
      switch (body['method']) {
        case 'sum':
          return { json: { result: { data: (body['params'] as number[]).reduce((a, n) => a + n, 0) } } };
        case 'nothing':
          return { json: { result: {} } };
        case 'admin':
          return { json: { error: { code: 'E_FORBIDDEN', message: 'admins only' } } };
        case 'slow':
          return { hang: true };
        default:
          return { json: { error: { code: 'E_NOT_FOUND', message: `no method ${String(body['method'])}` } } };
      }
    },
  });
  const { env, logger } = await hubWith({ connect: { url: b.url('/connect') }, rpc: { url: b.url('/rpc'), timeout: 300 } });
  env.hub.rpc('local', () => 'from the hub');
  const client = hubClient(env.url);
  try {
    await client.connected();
    assert.equal(await client.rpc('sum', [1, 2, 3]), 6);
    assert.deepEqual(b.to('/rpc')[0]?.body, { connId: client.connId, user: 'ada', method: 'sum', params: [1, 2, 3] });
    assert.equal(await client.rpc('nothing'), null);
    assert.equal(b.to('/rpc')[1]?.body['params'], null, 'absent params are null');
    await assert.rejects(client.rpc('admin'), withCode('E_FORBIDDEN'));
    await assert.rejects(client.rpc('missing'), withCode('E_NOT_FOUND'));
    const started = Date.now();
    await assert.rejects(client.rpc('slow'), withCode('E_UNAVAILABLE'));
    assert.ok(Date.now() - started < 1000, 'the hook timed out, not the client');
    assert.equal(failures(logger).length, 1);
    const before = b.to('/rpc').length;
    assert.equal(await client.rpc('local'), 'from the hub');
    assert.equal(b.to('/rpc').length, before);
  } finally {
    await client.close();
    await env.close();
    await b.close();
  }
});

// ---- options ---------------------------------------------------------------------------------

test('options: only the configured hooks are returned; the header lists are defaulted, lower-cased and joined', () => {
  const url = 'http://127.0.0.1:9/hook';
  assert.deepEqual(Object.keys(createBackendHooks({})), ['handshakeHeaders']);
  assert.deepEqual(createBackendHooks({}).handshakeHeaders, []);
  const connectOnly = createBackendHooks({ connect: { url } });
  assert.deepEqual(Object.keys(connectOnly).sort(), ['connect', 'handshakeHeaders']);
  assert.deepEqual(connectOnly.handshakeHeaders, ['cookie', 'authorization', 'origin', 'user-agent']);
  const publishOnly = createBackendHooks({ publish: { url } });
  assert.deepEqual(Object.keys(publishOnly.authorize ?? {}), ['publish'], 'no subscribe check when only publish is configured');
  assert.deepEqual(publishOnly.handshakeHeaders, [], 'the other hooks forward nothing by default');
  assert.deepEqual(createBackendHooks({ connect: { url, headers: ['X-Tenant', 'x-tenant'] }, rpc: { url, headers: ['Cookie'] } }).handshakeHeaders, ['x-tenant', 'cookie']);
  assert.equal(typeof createBackendHooks({ rpc: { url } }).rpcFallback, 'function');
});

test('options: bad ones are refused at once (TypeError, RangeError)', () => {
  const url = 'http://127.0.0.1:9/hook';
  assert.throws(() => createBackendHooks({ publish: { url, retries: 1 } }), TypeError, 'a publish could act twice');
  assert.throws(() => createBackendHooks({ rpc: { url, retries: 2 } }), TypeError);
  assert.doesNotThrow(() => createBackendHooks({ rpc: { url, retries: 0 } }));
  assert.throws(() => createBackendHooks({ connect: { url, retries: -1 } }), RangeError);
  assert.throws(() => createBackendHooks({ connect: { url, retries: 1.5 } }), RangeError);
  assert.throws(() => createBackendHooks({ subscribe: { url, timeout: 250, retries: 2 } }), RangeError, '300 ms of backoff leave nothing of 250 ms');
  assert.throws(() => createBackendHooks({ connect: { url, timeout: 0 } }), RangeError);
  assert.throws(() => createBackendHooks({ connect: { url, timeout: Number.NaN } }), RangeError);
  assert.throws(() => createBackendHooks({ connect: { url: 'ftp://127.0.0.1/hook' } }), TypeError);
  assert.throws(() => createBackendHooks({ connect: { url: 'not a url' } }), TypeError);
  assert.throws(() => createBackendHooks({ connect: { url: 'http://user:pass@127.0.0.1/hook' } }), TypeError, 'fetch refuses credentials in URLs');
  for (const header of ['connection', 'Upgrade', 'transfer-encoding', 'host', 'content-length', 'content-type', 'bad header']) {
    assert.throws(() => createBackendHooks({ connect: { url, headers: [header] } }), TypeError, header);
  }
});

// ---- the guide's Python backend ------------------------------------------------------------------

const PYTHON = '/usr/bin/python3';
const pythonThere = spawnSync(PYTHON, ['-c', 'import http.server'], { stdio: 'ignore' }).status === 0;
const inCI = process.env.CI === 'true';

/** The guide's Python backend, run as written on a free port; resolves with its base URL once it listens. */
async function startPythonBackend(dir: string): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const [block] = docBlocks('docs/backend-hooks.md').filter((b) => b.lang === 'python' && b.headings.includes('A complete backend in Python'));
  assert.ok(block, 'docs/backend-hooks.md has the Python backend');
  const file = join(dir, 'backend.py');
  writeFileSync(file, block.code);
  const child = spawn(PYTHON, [file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PORT: '0', PYTHONDONTWRITEBYTECODE: '1' } });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<{ value: undefined }>((resolve) => (timer = setTimeout(() => resolve({ value: undefined }), 5000)));
  const first = await Promise.race([lines.next(), deadline]);
  clearTimeout(timer);
  const match = /^backend on (http:\/\/127\.0\.0\.1:\d+)$/.exec(String(first.value ?? ''));
  if (!match) {
    child.kill();
    throw new Error(`the Python backend did not start: ${String(first.value)}\n${err}`);
  }
  return { child, url: match[1]!, stderr: () => err };
}

test(
  'docs/backend-hooks.md: the Python backend (Debian python3, standard library) behind the guide’s hub: cookie sign-in, private topics, rewritten publishes, rpc',
  { timeout: 20_000, skip: !pythonThere && !inCI ? `${PYTHON} is not installed` : false },
  async () => {
    assert.ok(pythonThere, `${PYTHON} is missing: CI must have Debian's python3`);
    const dir = mkdtempSync(join(tmpdir(), 'duplex-backend-'));
    const python = await startPythonBackend(dir);
    let loaded: { hub: Hub; server: WebSocketServer<unknown> } | undefined;
    const clients: Array<{ close(): Promise<void> }> = [];
    try {
      const [example] = docBlocks('docs/backend-hooks.md').filter((b) => b.lang === 'ts' && b.code.includes('server.listen(8080)'));
      assert.ok(example);
      const replacements = { 'http://127.0.0.1:8000/duplex': `${python.url}/duplex`, 'server.listen(8080)': 'server.listen(0)' };
      prepareExample(example.code, replacements); // every replacement applies
      loaded = await loadExample<{ hub: Hub; server: WebSocketServer<unknown> }>(example.code, ['hub', 'server'], replacements);
      const url = `ws://127.0.0.1:${loaded.server.address()!.port}/hub`;

      const client = hubClient(url, { reconnect: { headers: { cookie: 'theme=dark; session=s3cret-ada' } } });
      clients.push(client);
      await client.connected();
      assert.equal(client.userId, 'ada');
      const got: Json[] = [];
      await client.subscribe('chat:lobby', (data) => void got.push(data));
      await client.subscribe('private:ada');
      await assert.rejects(client.subscribe('private:bob'), withCode('E_FORBIDDEN'));
      await client.publish('chat:lobby', { text: 'hello', from: 'mallory' });
      await until(() => got.length === 1, 3000, 'the rewritten publication');
      assert.deepEqual(got, [{ text: 'hello', from: 'ada' }], 'the author is the backend’s, not the client’s');
      await assert.rejects(client.publish('news', { text: 'spam' }), withCode('E_FORBIDDEN'));
      await assert.rejects(client.publish('chat:lobby', 'not an object'), withCode('E_BAD_REQUEST'));
      assert.equal(await client.rpc('sum', [1, 2, 3.5]), 6.5);
      await assert.rejects(client.rpc('divide', [1, 0]), withCode('E_NOT_FOUND'));
      const [member] = await loaded.hub.presence('chat:lobby');
      assert.deepEqual(member?.info, { name: 'Ada Lovelace' });

      // Without the session cookie: refused, and closed with 1008.
      const { raw, answer } = await rawConnect(url);
      assert.equal(errorCode(answer), 'E_UNAUTHORIZED');
      assert.equal((await raw.closed)[0], 1008);
    } finally {
      for (const client of clients) await client.close();
      if (loaded) {
        await loaded.server.close(1001, 'test over', 500);
        await loaded.hub.close();
      }
      const exited = new Promise((resolve) => python.child.once('exit', resolve));
      python.child.kill();
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
