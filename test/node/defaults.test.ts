/**
 * The one defaults object: its values are today's (a redesign that moved them must not have
 * changed one), it is frozen, and every part reads its defaults from it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { DEFAULTS, DEFAULT_SETTINGS, RECONNECT_DEFAULTS, WebSocketServer } from '../../src/index.js';
import { DEFAULT_HISTORY } from '../../src/hub/index.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../../src/protocol/constants.js';
import { resolveSettings } from '../../src/node/settings.js';
import { DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_HEADERS_TIMEOUT, DEFAULT_MAX_HEADER_SIZE, MAX_EARLY_DATA, RETRY_AFTER_SECONDS } from '../../src/node/server/options.js';
import { HUB_CLIENT_DEFAULTS } from '../../src/hub/client-reconnect.js';
import { BROKER_DEFAULTS } from '../../src/hub/brokers/shared.js';
import { BACKEND_HOOK_DEFAULTS } from '../../src/hub/backend-hooks.js';
import { SERVER_API_DEFAULTS } from '../../src/hub/server-api.js';
import { defaultConfig } from '../../src/cli/serve-config.js';

const KiB = 1024;
const MiB = 1024 * KiB;

test('DEFAULTS holds the values the parts had before they were gathered (changed since: 1 MiB messages, sliceSize)', () => {
  assert.deepEqual(DEFAULTS, {
    connection: {
      // 0.4.0: 1 MiB (was 100 MiB, as ws), see docs/security.md "Fairness".
      maxMessageSize: MiB,
      closeTimeout: 10_000,
      pingInterval: 25_000,
      pingTimeout: 20_000,
      idleTimeout: 0,
      highWaterMark: 64 * KiB,
      lowWaterMark: 16 * KiB,
      maxBufferedAmount: 4 * MiB,
      maxQueuedMessages: 16,
      sliceSize: 256 * KiB,
    },
    server: { handshakeTimeout: 10_000, headersTimeout: 10_000, maxHeaderSize: 16 * KiB, retryAfterSeconds: '5', maxEarlyData: 64 * KiB },
    client: { handshakeTimeout: 10_000 },
    reconnect: {
      minDelay: 1000,
      maxDelay: 30_000,
      factor: 2,
      jitter: true,
      maxAttempts: Infinity,
      resetAfter: 5000,
      maxQueuedMessages: 1000,
      maxQueuedBytes: MiB,
      queueOverflow: 'reject',
    },
    hub: {
      maxMessageSize: 64 * KiB,
      maxSubscriptions: 1000,
      maxPendingRequests: 256,
      maxInvalidMessages: 100,
      connectTimeout: 10_000,
      // 0.4.0: the gateway (RPC, node announcements, backend hooks, the server API).
      rpcTimeout: 10_000,
      nodeAnnounceInterval: 3000,
      backendHooks: { timeout: 5000, retries: 1, retryDelay: 100, maxAnswerBytes: MiB, connectHeaders: ['cookie', 'authorization', 'origin', 'user-agent'] },
      serverApi: { prefix: '/api/', maxBodySize: MiB },
      history: { size: 100, ttl: 300_000 },
    },
    broker: { presenceTtl: 10_000, presenceRefresh: 3000, metaTtl: 30 * 24 * 3600 * 1000, idempotencyWindow: 120_000 },
    hubClient: { requestTimeout: 10_000, maxQueuedRequests: 256, minDelay: 1000, maxDelay: 30_000, factor: 2, jitter: true, maxAttempts: Infinity, resetAfter: 5000 },
    serve: { port: 8080, host: '127.0.0.1', maxMessageSize: MiB, ephemeralPrefixes: ['typing:'] },
  });
});

test('DEFAULTS is frozen all the way down', () => {
  const visit = (value: unknown, path: string): void => {
    if (typeof value !== 'object' || value === null) return;
    assert.ok(Object.isFrozen(value), `${path} is frozen`);
    for (const [key, inner] of Object.entries(value)) visit(inner, `${path}.${key}`);
  };
  visit(DEFAULTS, 'DEFAULTS');
});

test('the exported defaults of each part are views of DEFAULTS', () => {
  const { maxMessageSize, ...perConnection } = DEFAULTS.connection;
  assert.deepEqual(DEFAULT_SETTINGS, perConnection);
  assert.equal(DEFAULT_MAX_MESSAGE_SIZE, maxMessageSize);
  assert.deepEqual(RECONNECT_DEFAULTS, DEFAULTS.reconnect);
  assert.deepEqual(DEFAULT_HISTORY, DEFAULTS.hub.history);
  assert.equal(HUB_CLIENT_DEFAULTS, DEFAULTS.hubClient);
  assert.equal(BROKER_DEFAULTS, DEFAULTS.broker);
  assert.equal(BACKEND_HOOK_DEFAULTS, DEFAULTS.hub.backendHooks);
  assert.equal(SERVER_API_DEFAULTS, DEFAULTS.hub.serverApi);
  assert.deepEqual(
    [DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_HEADERS_TIMEOUT, DEFAULT_MAX_HEADER_SIZE, RETRY_AFTER_SECONDS, MAX_EARLY_DATA],
    [DEFAULTS.server.handshakeTimeout, DEFAULTS.server.headersTimeout, DEFAULTS.server.maxHeaderSize, DEFAULTS.server.retryAfterSeconds, DEFAULTS.server.maxEarlyData],
  );
});

test('a connection without settings uses DEFAULTS.connection', () => {
  const resolved = resolveSettings({});
  const c = DEFAULTS.connection;
  assert.deepEqual(
    [resolved.closeTimeout, resolved.pingInterval, resolved.pingTimeout, resolved.idleTimeout, resolved.highWaterMark, resolved.lowWaterMark, resolved.maxBufferedAmount, resolved.maxQueuedMessages],
    [c.closeTimeout, c.pingInterval, c.pingTimeout, c.idleTimeout, c.highWaterMark, c.lowWaterMark, c.maxBufferedAmount, c.maxQueuedMessages],
  );
});

test('duplex serve: its own defaults from DEFAULTS.serve, the library\'s elsewhere; 1 MiB messages, as the library now', () => {
  const config = defaultConfig();
  assert.equal(config.port, DEFAULTS.serve.port);
  assert.equal(config.host, DEFAULTS.serve.host);
  assert.equal(config.limits.maxMessageSize, DEFAULTS.serve.maxMessageSize);
  assert.equal(config.limits.maxMessageSize, MiB);
  assert.equal(DEFAULTS.connection.maxMessageSize, MiB);
  assert.equal(config.limits.maxHubMessageSize, DEFAULTS.hub.maxMessageSize);
  assert.equal(config.limits.maxSubscriptions, DEFAULTS.hub.maxSubscriptions);
  assert.equal(config.limits.maxBufferedAmount, DEFAULTS.connection.maxBufferedAmount);
  assert.equal(config.limits.idleTimeout, DEFAULTS.connection.idleTimeout);
  assert.deepEqual(config.history, { ...DEFAULTS.hub.history, ephemeralPrefixes: [...DEFAULTS.serve.ephemeralPrefixes] });
  config.history.ephemeralPrefixes.push('x:');
  assert.deepEqual(defaultConfig().history.ephemeralPrefixes, ['typing:'], 'each config gets its own list');
});

/** The status line a raw HTTP request with `padding` bytes of one header gets from `port`. */
async function statusLine(port: number, padding: number): Promise<string> {
  const socket = createConnection(port, '127.0.0.1');
  socket.write(`GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: ${'a'.repeat(padding)}\r\n\r\n`);
  let text = '';
  for await (const chunk of socket) {
    text += String(chunk);
    if (text.includes('\r\n')) break;
  }
  socket.destroy();
  return text.slice(0, text.indexOf('\r\n'));
}

test('a fresh WebSocketServer allows DEFAULTS.server.maxHeaderSize bytes of headers, and answers 431 beyond', async () => {
  const server = new WebSocketServer();
  const { port } = await server.listen(0);
  try {
    assert.match(await statusLine(port, DEFAULTS.server.maxHeaderSize - 1024), /^HTTP\/1\.1 426 /, 'within the limit: a plain request gets 426');
    assert.match(await statusLine(port, DEFAULTS.server.maxHeaderSize + 1024), /^HTTP\/1\.1 431 /);
  } finally {
    await server.close();
  }
});
