/**
 * `duplex serve` as a subprocess: started from a config file on an ephemeral port (read from
 * the first line, `listening on http://127.0.0.1:PORT/`), checked over HTTP (/healthz,
 * /metrics, static files, path traversal) and WebSocket (the hub protocol, the browser client
 * module under Node), and stopped with SIGTERM. Then one subprocess per configuration error,
 * each expected to exit with 2 and say what is wrong.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { connect } from '../../src/node/client.js';
import { WHATWGWebSocket } from '../../src/node/whatwg.js';
import { HandshakeError } from '../../src/protocol/errors.js';
import { DuplexClient, type WebSocketConstructor } from '../../src/browser/client.js';
import { ConfigError, loadConfig } from '../../src/cli/serve-config.js';
import { METRIC_NAMES } from '../../src/cli/metrics.js';

const BIN = join(process.cwd(), 'bin', 'duplex.js');
const dir = mkdtempSync(join(tmpdir(), 'duplex-serve-'));

function writeConfig(name: string, content: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** Environment without the caller's DUPLEX_* variables, plus `extra`. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('DUPLEX_')));
  return { ...clean, NO_COLOR: '1', ...extra };
}

interface Running {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Start `duplex serve` and wait for its `listening on …` line. */
async function startServe(args: string[], extraEnv: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { env: env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" line in 20 s; stderr: ${err}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /^listening on (https?:\/\/\S+\/)$/m.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening; stderr: ${err}`));
    });
  });
  return { child, url, stdout: () => out, stderr: () => err, exited };
}

/** Run `duplex serve` expecting it to refuse to start. */
async function runFailing(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], { env: env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  child.stdout!.resume();
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stderr: err };
}

/** A GET with the path sent exactly as given (no URL normalisation). */
function get(base: string, path: string): Promise<{ status: number; type: string; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One metric sample's value from Prometheus text (0 if absent). */
function sample(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

test('duplex serve from a config file', { timeout: 60_000 }, async (t) => {
  const config = writeConfig('good.json', {
    port: 0,
    host: '127.0.0.1',
    history: { size: 50, ttl: 60_000 },
    limits: { maxMessageSize: 65536, maxConnections: 100 },
    broker: 'memory',
    logLevel: 'info',
  });
  const server = await startServe(['--config', config]);
  t.after(() => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  });
  const { url } = server;
  const wsUrl = url.replace(/^http/, 'ws') + 'ws';

  await t.test('the banner says where to point a browser and that anonymous mode is unsafe', async () => {
    assert.match(server.stdout(), new RegExp(`Open ${url.replace(/[.]/g, '\\.')} in a browser`));
    assert.match(server.stdout(), /UNSAFE FOR PRODUCTION/);
    // stderr is another pipe: its lines may trail stdout's.
    for (let i = 0; i < 100 && !/anonymous mode/.test(server.stderr()); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(server.stderr(), /WARN\s+anonymous mode/);
  });

  await t.test('GET /healthz', async () => {
    const res = await get(url, '/healthz');
    assert.equal(res.status, 200);
    assert.match(res.type, /^application\/json/);
    const body = JSON.parse(res.body) as { status: string; uptime: number; connections: number; broker: { name: string; state: string } };
    assert.equal(body.status, 'ok');
    assert.equal(typeof body.uptime, 'number');
    assert.equal(body.connections, 0);
    assert.deepEqual(body.broker, { name: 'memory', state: 'connected' });
  });

  let before = '';
  await t.test('GET /metrics lists every metric', async () => {
    const res = await get(url, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    for (const name of METRIC_NAMES) assert.match(res.body, new RegExp(`^# TYPE ${name} `, 'm'), name);
    assert.equal(sample(res.body, 'duplex_broker_up', '{broker="memory"}'), 1);
    before = res.body;
  });

  await t.test('a hub round trip: subscribe, publish, receive', async () => {
    const received: Array<Record<string, unknown>> = [];
    let wake: (() => void) | undefined;
    const ws = await connect(wsUrl, {
      handlers: {
        message(_ws, data) {
          received.push(JSON.parse(String(data)) as Record<string, unknown>);
          wake?.();
        },
      },
    });
    const next = async (match: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
      for (;;) {
        const found = received.find(match);
        if (found) return found;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    };
    ws.send(JSON.stringify({ type: 'connect', id: 1 }));
    const connected = await next((m) => m.id === 1);
    assert.equal(connected.type, 'reply');
    ws.send(JSON.stringify({ type: 'subscribe', id: 2, topic: 'room:test' }));
    assert.equal((await next((m) => m.id === 2)).type, 'reply');
    ws.send(JSON.stringify({ type: 'publish', id: 3, topic: 'room:test', data: { text: 'round trip' } }));
    const ack = await next((m) => m.id === 3);
    assert.equal(ack.type, 'reply');
    assert.equal((ack.result as { offset: number }).offset, 1);
    const message = await next((m) => m.type === 'message');
    assert.deepEqual(message.data, { text: 'round trip' });
    assert.equal(message.topic, 'room:test');
    ws.close();
  });

  await t.test('handshakes refused with 401 and 404 are counted', async () => {
    await assert.rejects(connect(`${wsUrl}?token=not-accepted-here`), (error: unknown) => error instanceof HandshakeError && error.status === 401);
    await assert.rejects(connect(url.replace(/^http/, 'ws') + 'nope'), (error: unknown) => error instanceof HandshakeError && error.status === 404);
  });

  await t.test('the browser client module works with any WHATWG WebSocket, history included', async () => {
    const client = new DuplexClient(wsUrl, { WebSocket: WHATWGWebSocket as unknown as WebSocketConstructor, params: { name: 'Node' } });
    // The demos' history RPC: the newest publications, oldest first, and the topic's position.
    const recent = (await client.rpc('duplex.history', { topic: 'room:test', limit: 10 })) as { publications: Array<{ offset: number; data: unknown }>; epoch: string; offset: number };
    assert.deepEqual(recent.publications.map((p) => [p.offset, p.data]), [[1, { text: 'round trip' }]]);
    assert.equal(recent.offset, 1);
    await assert.rejects(client.rpc('duplex.history', { topic: '$all' }), (error: unknown) => (error as { code?: string }).code === 'E_FORBIDDEN');
    await assert.rejects(client.rpc('duplex.history', { topic: 'room:test', limit: 0 }), (error: unknown) => (error as { code?: string }).code === 'E_BAD_REQUEST');
    const seen: unknown[] = [];
    await client.subscribe('room:test', (data, meta) => seen.push([meta.offset, meta.recovered, data]), { from: { epoch: recent.epoch, offset: 0 } });
    assert.equal(client.state, 'open');
    assert.deepEqual(seen, [[1, true, { text: 'round trip' }]]);
    const ack = await client.publish('room:test', { text: 'from the browser client' });
    assert.equal(ack.offset, 2);
    const members = await client.presence('room:test');
    assert.deepEqual(members.map((m) => m.info), [{ name: 'Node' }]);
    while (seen.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(seen[1], [2, false, { text: 'from the browser client' }]);
    client.close();
  });

  await t.test('/metrics changes after traffic', async () => {
    const after = (await get(url, '/metrics')).body;
    for (const name of ['duplex_connections_opened_total', 'duplex_messages_received_total', 'duplex_messages_sent_total', 'duplex_bytes_received_total', 'duplex_bytes_sent_total', 'duplex_hub_deliveries_total']) {
      assert.ok(sample(after, name) > sample(before, name), `${name} grew`);
    }
    assert.ok(sample(after, 'duplex_publishes_total', '{outcome="accepted"}') > sample(before, 'duplex_publishes_total', '{outcome="accepted"}'));
    assert.equal(sample(after, 'duplex_handshake_rejections_total', '{status="401"}'), 1);
    assert.equal(sample(after, 'duplex_handshake_rejections_total', '{status="404"}'), 1);
    assert.ok(sample(after, 'duplex_closes_total', '{code="1000"}') >= 1);
  });

  await t.test('static files: demo pages, client module, content types', async () => {
    const index = await get(url, '/');
    assert.equal(index.status, 200);
    assert.match(index.type, /^text\/html/);
    assert.match(index.body, /What happens on the wire/);
    assert.match((await get(url, '/chat/')).body, /duplex chat/);
    assert.equal((await get(url, '/chat')).status, 301);
    assert.match((await get(url, '/style.css')).type, /^text\/css/);
    const client = await get(url, '/duplex/client.js');
    assert.equal(client.status, 200);
    assert.match(client.type, /^text\/javascript/);
    assert.match((await get(url, '/duplex/browser/client.js')).body, /export class DuplexClient/);
    assert.equal((await get(url, '/duplex/hub/wire.js')).status, 200);
    assert.equal((await get(url, '/duplex/hub/hub.js')).status, 404, 'only the client and its imports');
    assert.equal((await get(url, '/no-such-page.html')).status, 404);
  });

  await t.test('no path traversal', async () => {
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/%2E%2E%2Fpackage.json', '/chat/../../package.json', '/..%2f..%2fpackage.json', '/duplex/../../../package.json', '/%2e%2e%5cpackage.json']) {
      const res = await get(url, path);
      assert.ok(res.status === 404 || res.status === 400, `${path} → ${res.status}`);
      assert.doesNotMatch(res.body, /"devDependencies"/, path);
    }
    assert.equal((await get(url, '/%00')).status, 400);
    assert.equal((await get(url, '/%zz')).status, 400);
  });

  await t.test('SIGTERM: clients get 1001, the process exits with 0', async () => {
    const closed = new Promise<number>((resolve) => {
      void connect(wsUrl, { handlers: { close: (_ws, code) => resolve(code) } });
    });
    // The connection is open once the server counts it.
    for (let i = 0; i < 100 && !(await get(url, '/healthz')).body.includes('"connections": 1'); i++) await new Promise((r) => setTimeout(r, 20));
    server.child.kill('SIGTERM');
    assert.equal(await closed, 1001);
    assert.equal(await server.exited, 0);
  });
});

test('configuration precedence: flags over environment over file over defaults', () => {
  const file = writeConfig('layers.json', { port: 1111, host: '127.0.0.2', history: { size: 7 } });
  const config = loadConfig({ config: file, port: '3333' }, { DUPLEX_PORT: '2222', DUPLEX_HOST: '127.0.0.3' });
  assert.equal(config.port, 3333);
  assert.equal(config.host, '127.0.0.3');
  assert.equal(config.history.size, 7);
  assert.equal(config.history.ttl, 300_000);
  assert.equal(config.broker, 'memory');
  assert.equal(config.auth.anonymous, true, 'no auth configured: the anonymous demo mode');
  const secured = loadConfig({}, { DUPLEX_AUTH_SECRET: 'x'.repeat(32) });
  assert.equal(secured.auth.anonymous, false);
  assert.throws(() => loadConfig({}, { DUPLEX_PORT: 'eighty' }), ConfigError);
});

const ERRORS: Array<{ name: string; args?: string[]; env?: Record<string, string>; file?: unknown; message: RegExp }> = [
  { name: 'an unknown key', file: { prot: 8080 }, message: /unknown key "prot"/ },
  { name: 'an unknown key in a section', file: { limits: { maxMesageSize: 1 } }, message: /unknown key "limits\.maxMesageSize"/ },
  { name: 'a wrong type', file: { port: '8080' }, message: /port \(from config file .*\) must be an integer/ },
  { name: 'a section that is not an object', file: { auth: 'secret' }, message: /auth \(from config file .*\) must be an object/ },
  { name: 'a config file that is not JSON', file: '{ port: 80 ', message: /is not valid JSON/ },
  { name: 'a missing config file', args: ['--config', '/nonexistent/duplex.json'], message: /cannot read the config file .*ENOENT/ },
  { name: 'a port out of range (environment)', env: { DUPLEX_PORT: '70000' }, message: /DUPLEX_PORT\) must be a port number from 0 to 65535/ },
  { name: 'a port out of range (flag)', args: ['--port', '65536'], message: /flag --port\) must be a port number/ },
  { name: 'a TLS certificate without a key', file: { tls: { cert: '/etc/hostname' } }, message: /tls\.cert is set but tls\.key is not/ },
  { name: 'unreadable TLS files', file: { tls: { cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' } }, message: /tls\.cert: the certificate file \/nonexistent\/cert\.pem cannot be read: ENOENT/ },
  { name: 'a broker URL of an unknown kind', env: { DUPLEX_BROKER: 'kafka://localhost:9092' }, message: /broker must be "memory", "redis:\/\/host:port"/ },
  { name: 'a negative history size', file: { history: { size: -1 } }, message: /history\.size .* must not be negative, got -1/ },
  { name: 'a short auth secret', env: { DUPLEX_AUTH_SECRET: 'too-short' }, message: /auth\.secret must be at least 32 characters/ },
  { name: 'both a secret and a public key', file: { auth: { secret: 'x'.repeat(40), publicKey: '/etc/hostname' } }, message: /either secret .* or publicKey/ },
  { name: 'a public key file that is not a key', file: { auth: { publicKey: '/etc/hostname' } }, message: /auth\.publicKey: \/etc\/hostname is not a PEM public key/ },
  { name: 'anonymous off without any auth', file: { auth: { anonymous: false } }, message: /anonymous is false but neither auth\.secret nor auth\.publicKey/ },
  { name: 'a bad log level', args: ['--log-level', 'loud'], message: /logLevel .* must be one of debug, info, warn, error/ },
  { name: 'a bad allowed origin', args: ['--allowed-origin', 'https://ok.example,not an origin'], message: /allowedOrigins: "not an origin" is not an origin/ },
  { name: 'a zero connection limit', env: { DUPLEX_MAX_CONNECTIONS: '0' }, message: /limits\.maxConnections .* must be a positive integer/ },
  { name: 'an unknown flag', args: ['--prot', '80'], message: /Unknown option '--prot'/ },
  { name: 'a hook URL that is not http(s)', file: { hooks: { connect: { url: 'ftp://backend/connect' } } }, message: /hooks\.connect\.url .* must be an http:\/\/ or https:\/\/ URL/ },
  { name: 'an unknown hook', file: { hooks: { connnect: { url: 'http://backend/connect' } } }, message: /unknown key "hooks\.connnect" .*known hooks keys: connect, subscribe, publish, rpc/ },
  { name: 'a hook without its URL', env: { DUPLEX_HOOK_CONNECT_TIMEOUT: '100' }, message: /hooks\.connect: url is required/ },
  { name: 'retries on a publish hook', file: { hooks: { publish: { url: 'http://backend/publish', retries: 1 } } }, message: /a publish hook is never retried/ },
  { name: 'anonymous with a connect hook', args: ['--anonymous', '--hook-connect', 'http://backend/connect'], message: /auth\.anonymous and hooks\.connect/ },
  { name: 'a short API key', env: { DUPLEX_API_KEYS: 'short' }, message: /api\.keys: each key must be at least 16 characters/ },
  { name: 'a broker prefix that is not a subject token', env: { DUPLEX_BROKER_PREFIX: 'a.b' }, message: /brokerPrefix must be letters, digits/ },
  { name: 'replicas for a Redis broker', env: { DUPLEX_BROKER: 'redis://127.0.0.1:6379', DUPLEX_BROKER_REPLICAS: '3' }, message: /brokerReplicas is for a NATS broker/ },
];

test('the server API and hook keys: from the file, the environment and flags, nested', () => {
  const file = writeConfig('gateway.json', { api: { keys: ['k'.repeat(16)], maxBodySize: 4096 }, hooks: { connect: { url: 'http://backend/connect', headers: ['cookie'] } } });
  const config = loadConfig({ config: file, 'hook-rpc': 'https://backend/rpc', 'api-key': ['f'.repeat(16), 'g'.repeat(16)] }, { DUPLEX_HOOK_CONNECT_TIMEOUT: '1500', DUPLEX_HOOK_SUBSCRIBE_URL: 'http://backend/subscribe', DUPLEX_HOOK_SUBSCRIBE_RETRIES: '0' });
  assert.deepEqual(config.api, { keys: ['f'.repeat(16), 'g'.repeat(16)], maxBodySize: 4096 });
  assert.deepEqual(config.hooks.connect, { url: 'http://backend/connect', timeout: 1500, headers: ['cookie'], retries: undefined });
  assert.deepEqual(config.hooks.subscribe, { url: 'http://backend/subscribe', timeout: undefined, headers: undefined, retries: 0 });
  assert.deepEqual(config.hooks.rpc, { url: 'https://backend/rpc', timeout: undefined, headers: undefined, retries: undefined });
  assert.equal(config.hooks.publish, undefined);
  assert.equal(config.auth.anonymous, false, 'a connect hook decides who connects: not the anonymous demo mode');
  const nats = loadConfig({ 'broker-replicas': '3' }, { DUPLEX_BROKER: 'nats://127.0.0.1:4222,127.0.0.1:4223,127.0.0.1:4224' });
  assert.deepEqual([nats.broker, nats.brokerReplicas], ['nats://127.0.0.1:4222,127.0.0.1:4223,127.0.0.1:4224', 3], 'a NATS cluster: a list of servers');
  assert.equal(loadConfig({}, { DUPLEX_BROKER: 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001' }).broker, 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001');
  const plain = loadConfig({}, {});
  assert.deepEqual(plain.api.keys, [], 'no key: the API is off');
  assert.equal(plain.auth.anonymous, true);
});

for (const [i, bad] of ERRORS.entries()) {
  test(`config error, exit 2: ${bad.name}`, { timeout: 30_000 }, async () => {
    const args = [...(bad.args ?? [])];
    if (bad.file !== undefined) args.push('--config', writeConfig(`bad-${i}.json`, bad.file));
    const { code, stderr } = await runFailing(args, bad.env);
    assert.equal(code, 2, stderr);
    assert.match(stderr, bad.message);
  });
}
