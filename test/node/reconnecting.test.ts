// The reconnecting client against real servers on loopback: a restart on the same port, backoff
// growth and cap, the beforeConnect hook, the queue's bounds, and when it must not reconnect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  HandshakeError,
  InvalidStateError,
  ReconnectingWebSocket,
  WebSocketServer,
  backoffDelay,
  defaultShouldReconnect,
  reconnecting,
  type ClosedInfo,
  type ConnectOverrides,
  type MessageData,
  type OutgoingMessage,
  type ReconnectingInfo,
  type WebSocket,
} from '../../src/index.js';
import { docExample, runExample } from './readme-example.js';

interface Recorder {
  server: WebSocketServer<string | undefined>;
  port: number;
  url: string;
  received: string[];
  authorizations: string[];
  waitFor(count: number): Promise<void>;
}

/** A duplex server that records every text message and the headers of every handshake. */
async function recordingServer(port = 0, onOpen?: (ws: WebSocket<string | undefined>) => void): Promise<Recorder> {
  const received: string[] = [];
  const authorizations: string[] = [];
  let waiter: { count: number; resolve: () => void } | undefined;
  const server = new WebSocketServer<string | undefined>({
    data: (req) => {
      authorizations.push(`${req.headers.authorization} ${req.headers['x-client']}`);
      return undefined;
    },
    handlers: {
      open: (ws) => onOpen?.(ws),
      message: (_ws, data: MessageData) => {
        received.push(String(data));
        if (waiter && received.length >= waiter.count) waiter.resolve();
      },
    },
  });
  const address = await server.listen(port);
  return {
    server,
    port: address.port,
    url: `ws://127.0.0.1:${address.port}/`,
    received,
    authorizations,
    waitFor: (count) =>
      received.length >= count ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { count, resolve })),
  };
}

/** A port with nothing listening on it (connections are refused). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A plain HTTP server that answers every upgrade request with `status`. */
async function refusingServer(status: number, extraHeaders = ''): Promise<{ url: string; server: Server; requests: () => number }> {
  let requests = 0;
  const server = createServer();
  server.on('upgrade', (_req, socket) => {
    requests++;
    socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n${extraHeaders}Connection: close\r\n\r\nno`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `ws://127.0.0.1:${port}/`, server, requests: () => requests };
}

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('survives a server restart on the same port and sends its queue in order, exactly once', { timeout: 5000 }, async () => {
  const first = await recordingServer();
  const opened = deferred();
  const dropped = deferred<[number, string]>();
  const reconnected = deferred<{ attempt: number; downtime: number }>();
  const retries: ReconnectingInfo[] = [];
  let opens = 0;
  const client = new ReconnectingWebSocket(first.url, {
    minDelay: 10,
    maxDelay: 50,
    resetAfter: 0, // the first connection counts as having stayed up: retries start at attempt 1
    handlers: {
      open(_client, ws) {
        opens++;
        if (opens === 1) opened.resolve();
        else ws.send('hello again'); // goes before the queue
      },
      close: (_client, code, reason) => dropped.resolve([code, reason]),
      reconnecting: (_client, info) => retries.push(info),
      reconnected: (_client, info) => reconnected.resolve(info),
    },
  });
  await opened.promise;
  assert.equal(client.state, 'open');
  assert.equal(client.send('before'), 'sent');
  await first.waitFor(1);

  await first.server.close();
  assert.deepEqual(await dropped.promise, [1001, 'server shutting down']);
  const queued = Array.from({ length: 20 }, (_, i) => `queued ${i}`);
  for (const message of queued) assert.equal(client.send(message), 'queued');
  assert.equal(client.queuedMessages, 20);
  assert.equal(client.queuedBytes, queued.reduce((n, m) => n + m.length, 0));
  await new Promise((resolve) => setTimeout(resolve, 60)); // a few refused attempts

  const second = await recordingServer(first.port);
  const info = await reconnected.promise;
  assert.ok(info.attempt >= 1 && info.downtime > 0);
  assert.equal(client.queuedMessages, 0);
  assert.equal(client.send('after'), 'sent');
  await second.waitFor(22);
  await client.close();
  await second.server.close();

  assert.deepEqual(first.received, ['before']);
  assert.deepEqual(second.received, ['hello again', ...queued, 'after']);
  assert.ok(retries.length >= 2, 'retried while the server was down');
  assert.deepEqual(retries[0].cause, { type: 'close', code: 1001, reason: 'server shutting down' });
  assert.ok(retries.slice(1).every((r) => r.cause.type === 'error'));
  assert.deepEqual(
    retries.map((r) => r.attempt),
    retries.map((_, i) => i + 1),
  );
});

test('backoff delays grow by the factor, are capped, and the client gives up after maxAttempts', { timeout: 5000 }, async () => {
  const port = await closedPort();
  const delays: number[] = [];
  const attempts: number[] = [];
  const hooked: number[] = [];
  let errors = 0;
  const started = performance.now();
  const client = reconnecting(`ws://127.0.0.1:${port}/`, {
    minDelay: 10,
    maxDelay: 100,
    jitter: false,
    maxAttempts: 6,
    beforeConnect: (attempt) => void hooked.push(attempt),
    handlers: {
      reconnecting: (_client, { attempt, delay }) => {
        attempts.push(attempt);
        delays.push(delay);
      },
      error: () => errors++,
    },
  });
  const info = await client.finished;
  assert.equal(info.reason, 'gave-up');
  assert.equal(info.attempts, 6);
  assert.equal(info.cause?.type, 'error');
  assert.deepEqual(hooked, [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(attempts, [2, 3, 4, 5, 6]);
  assert.deepEqual(delays, [20, 40, 80, 100, 100]);
  assert.equal(errors, 6);
  assert.ok(performance.now() - started >= 330, 'the delays were waited');
  assert.equal(client.state, 'closed');
});

test('with full jitter each delay lies between 0 and its ceiling', { timeout: 5000 }, async () => {
  assert.equal(backoffDelay(1, { minDelay: 10, maxDelay: 100 }, () => 0.5), 5);
  assert.equal(backoffDelay(4, { minDelay: 10, maxDelay: 100 }, () => 0.5), 40);
  assert.equal(backoffDelay(9, { minDelay: 10, maxDelay: 100 }, () => 0.999), 100);
  assert.equal(backoffDelay(3, { minDelay: 10, maxDelay: 100 }, () => 0), 0);
  assert.equal(backoffDelay(3, { minDelay: 1000, factor: 3, jitter: false }), 9000);
  assert.ok(backoffDelay(50) <= 30_000); // the default cap
  const port = await closedPort();
  const delays: number[] = [];
  const client = reconnecting(`ws://127.0.0.1:${port}/`, {
    minDelay: 10,
    maxDelay: 40,
    maxAttempts: 8,
    handlers: { reconnecting: (_client, { delay }) => delays.push(delay) },
  });
  await client.finished;
  const ceilings = [20, 40, 40, 40, 40, 40, 40];
  assert.equal(delays.length, ceilings.length);
  delays.forEach((delay, i) => assert.ok(delay >= 0 && delay <= ceilings[i], `delay ${delay} over ${ceilings[i]}`));
});

test('beforeConnect runs before each attempt and its headers are used (merged over the base ones)', { timeout: 5000 }, async () => {
  let connections = 0;
  const recorder = await recordingServer(0, (ws) => {
    // The first connection is dropped at once by the server: the client must come back.
    if (++connections === 1) ws.close(1012, 'restarting');
  });
  const secondOpen = deferred();
  const hooked: number[] = [];
  let opens = 0;
  const client: ReconnectingWebSocket = new ReconnectingWebSocket(recorder.url, {
    minDelay: 5,
    headers: { 'X-Client': 'test-suite', Authorization: 'Bearer stale' },
    beforeConnect: async (attempt, self): Promise<ConnectOverrides> => {
      assert.equal(self, client); // the hook may use the client: it runs after construction
      hooked.push(attempt);
      await new Promise((resolve) => setTimeout(resolve, 1)); // e.g. a token endpoint
      return { headers: { Authorization: `Bearer token-${attempt}` } };
    },
    handlers: {
      open: () => {
        if (++opens === 2) secondOpen.resolve();
      },
    },
  });
  await secondOpen.promise;
  await client.close();
  await recorder.server.close();
  // The dropped connection did not stay up for resetAfter: the second try is attempt 2.
  assert.deepEqual(hooked, [1, 2]);
  assert.deepEqual(recorder.authorizations, ['Bearer token-1 test-suite', 'Bearer token-2 test-suite']);
});

test('the queue is bounded: reject refuses new messages, drop-oldest evicts and reports', { timeout: 5000 }, async () => {
  const port = await closedPort();
  const url = `ws://127.0.0.1:${port}/`;
  const rejecting = new ReconnectingWebSocket(url, { minDelay: 10_000, maxQueuedMessages: 3, maxQueuedBytes: 10 });
  assert.equal(rejecting.send('aaaaaa'), 'queued'); // 6 bytes
  assert.equal(rejecting.send('bbbbb'), 'rejected'); // 11 > 10
  assert.equal(rejecting.send(new Uint8Array([1, 2, 3])), 'queued'); // 9
  assert.equal(rejecting.send('c'), 'queued'); // 10, 3 messages
  assert.equal(rejecting.send(''), 'rejected'); // a 4th message
  assert.equal(rejecting.send('x'.repeat(11)), 'rejected'); // larger than the whole queue
  assert.equal(rejecting.queuedMessages, 3);
  assert.equal(rejecting.queuedBytes, 10);
  const rejected: ClosedInfo = await rejecting.close();
  assert.equal(rejected.reason, 'closed');
  assert.deepEqual(
    rejected.unsent.map((m) => m.data),
    ['aaaaaa', Buffer.from([1, 2, 3]), 'c'],
  );
  assert.throws(() => rejecting.send('late'), InvalidStateError);

  const evicted: OutgoingMessage[][] = [];
  const dropping = new ReconnectingWebSocket(url, {
    minDelay: 10_000,
    maxQueuedMessages: 3,
    queueOverflow: 'drop-oldest',
    handlers: { dropped: (_client, messages) => evicted.push([...messages]) },
  });
  for (let i = 1; i <= 5; i++) assert.equal(dropping.send(`m${i}`), 'queued');
  assert.deepEqual(
    evicted.map((batch) => batch.map((m) => m.data)),
    [['m1'], ['m2']],
  );
  const dropped = await dropping.close();
  assert.deepEqual(
    dropped.unsent.map((m) => m.data),
    ['m3', 'm4', 'm5'],
  );
});

test('after close() nothing reconnects, and a pending retry is cancelled', { timeout: 5000 }, async () => {
  const closes: [number, string][] = [];
  let opens = 0;
  const opened = deferred();
  const server = new WebSocketServer({
    handlers: {
      open: () => {
        opens++;
        opened.resolve();
      },
      close: (_ws, code, reason) => closes.push([code, reason]),
    },
  });
  const { port } = await server.listen(0);
  let retries = 0;
  const client = new ReconnectingWebSocket(`ws://127.0.0.1:${port}/`, { minDelay: 1, handlers: { reconnecting: () => retries++ } });
  await opened.promise;
  const info = await client.close(4000, 'bye');
  assert.equal(info.reason, 'closed');
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(opens, 1);
  assert.equal(retries, 0);
  assert.deepEqual(closes, [[4000, 'bye']]);
  assert.equal(client.state, 'closed');
  await server.close();

  // Closing while a retry waits for its timer.
  const waiting = new ReconnectingWebSocket(`ws://127.0.0.1:${await closedPort()}/`, {
    minDelay: 10_000,
    handlers: { reconnecting: (self) => void self.close() },
  });
  const stopped = await waiting.finished;
  assert.equal(stopped.reason, 'closed');
  assert.equal(stopped.cause?.type, 'error');

  // Closing before the first attempt even started.
  const early = new ReconnectingWebSocket(`ws://127.0.0.1:${port}/`);
  assert.equal((await early.close()).reason, 'closed');
  assert.equal(early.attempts, 0);
});

test('close code 1008 and a 401 handshake are not retried; 503 is', { timeout: 5000 }, async () => {
  const server = new WebSocketServer({ handlers: { open: (ws) => ws.close(1008, 'not allowed') } });
  const { port } = await server.listen(0);
  const policy = await new ReconnectingWebSocket(`ws://127.0.0.1:${port}/`, { minDelay: 1 }).finished;
  assert.equal(policy.reason, 'not-retryable');
  assert.deepEqual(policy.cause, { type: 'close', code: 1008, reason: 'not allowed' });
  await server.close();

  const unauthorized = await refusingServer(401);
  const refused = await new ReconnectingWebSocket(unauthorized.url, { minDelay: 1 }).finished;
  assert.equal(refused.reason, 'not-retryable');
  assert.ok(refused.cause?.type === 'error' && refused.cause.error instanceof HandshakeError);
  assert.equal((refused.cause.error as HandshakeError).status, 401);
  assert.equal(unauthorized.requests(), 1);
  // …unless the application says otherwise (e.g. its beforeConnect refreshes the token).
  const insisted = await new ReconnectingWebSocket(unauthorized.url, { minDelay: 1, maxAttempts: 3, shouldReconnect: () => true }).finished;
  assert.equal(insisted.reason, 'gave-up');
  assert.equal(unauthorized.requests(), 4);
  unauthorized.server.close();

  const unavailable = await refusingServer(503);
  const retried = await new ReconnectingWebSocket(unavailable.url, { minDelay: 1, maxAttempts: 3 }).finished;
  assert.equal(retried.reason, 'gave-up');
  assert.equal(unavailable.requests(), 3);
  unavailable.server.close();

  // A 503 with Retry-After: the next attempt waits at least that long.
  const busy = await refusingServer(503, 'Retry-After: 2\r\n');
  const delays: number[] = [];
  const patient = new ReconnectingWebSocket(busy.url, {
    minDelay: 1,
    handlers: {
      reconnecting: (self, { delay }) => {
        delays.push(delay);
        void self.close();
      },
    },
  });
  assert.equal((await patient.finished).reason, 'closed');
  assert.deepEqual(delays, [2000]);
  busy.server.close();

  assert.equal(defaultShouldReconnect({ type: 'close', code: 1006, reason: '' }), true);
  assert.equal(defaultShouldReconnect({ type: 'close', code: 1003, reason: '' }), false);
  assert.equal(defaultShouldReconnect({ type: 'error', error: new HandshakeError('x', 429) }), true);
  assert.equal(defaultShouldReconnect({ type: 'error', error: new HandshakeError('x', 408) }), true);
  assert.equal(defaultShouldReconnect({ type: 'error', error: new HandshakeError('x', 403) }), false);
  assert.equal(defaultShouldReconnect({ type: 'error', error: new TypeError('Invalid URL') }), false);
  assert.equal(defaultShouldReconnect({ type: 'error', error: new Error('connect ECONNREFUSED') }), true);
});

test('the example of the reconnecting client in docs/clients.md runs', { timeout: 5000 }, async () => {
  const server = new WebSocketServer({ handlers: { message: (ws, data) => void ws.send(data) } });
  const { port } = await server.listen(0);
  try {
    const code = docExample('docs/clients.md', 'A client that reconnects', 'ReconnectingWebSocket');
    const lines = await runExample(code, { 'ws://127.0.0.1:8080/': `ws://127.0.0.1:${port}/` });
    assert.deepEqual(lines, ['queued', 'got hello', 'got queued while connecting', 'stopped: closed (0 unsent)']);
  } finally {
    await server.close();
  }
});
