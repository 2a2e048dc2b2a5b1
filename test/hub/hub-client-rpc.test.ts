// `rpc` and `connectData` on both hub clients, against a real Hub on loopback (docs/protocol.md,
// "RPC" and "Connecting"): round trips and every error code a call can end with, answers out of
// order, the client's own timeout, a call queued while disconnected then sent (once), one lost
// with its connection (never re-sent), connect data (static, or asked again before each
// connection), a close with 4001 or 1013 followed by a reconnection, and the topic of a
// publication of a topic server code subscribed the connection to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WHATWGWebSocket } from '../../src/index.js';
import { HubClient, HubClientError, HubError, type HubClientOptions, type HubContext, type HubOptions, type Json } from '../../src/hub/index.js';
import { DuplexClient, type DuplexClientOptions, type MessageMeta, type WebSocketConstructor } from '../../src/browser/client.js';
import { HubCloseCode, reconnectsAfterClose } from '../../src/hub/client-reconnect.js';
import { CLIENT_KINDS, FAST, type ClientKind } from './client-pair.js';
import { delay, lastServerSocket, startHub, until, type HubServer } from './hub-helpers.js';

/** The options both clients take alike. */
type CommonOptions = Pick<HubClientOptions & DuplexClientOptions, 'connectData' | 'requestTimeout' | 'maxQueuedRequests'> & {
  /** ms before each reconnection, exactly (default: FAST's short, jittered delays). */
  reconnectDelay?: number;
};

/** What these tests use of either client. */
interface TestClient {
  readonly kind: ClientKind;
  rpc(method: string, params?: Json, options?: { timeout?: number }): Promise<Json>;
  ready(): Promise<void>;
  /** 'connected' (Node) and 'open' (browser) read 'open'. */
  state(): string;
  connId(): string | undefined;
  userId(): string | undefined;
  onMessage(listener: (data: Json, meta: MessageMeta) => void): void;
  onError(listener: (error: Error) => void): void;
  onConnected(listener: () => void): void;
  close(): Promise<void>;
}

function makeClient(kind: ClientKind, url: string, { reconnectDelay, ...options }: CommonOptions = {}): TestClient {
  const delays = reconnectDelay === undefined ? FAST : { minDelay: reconnectDelay, maxDelay: reconnectDelay, jitter: false };
  if (kind === 'node') {
    const client = new HubClient(url, { requestTimeout: 3000, ...options, reconnect: { ...delays } });
    return {
      kind,
      rpc: (method, params, rpcOptions) => client.rpc(method, params, rpcOptions),
      ready: () => client.connected(),
      state: () => (client.state === 'connected' ? 'open' : client.state),
      connId: () => client.connId,
      userId: () => client.userId,
      onMessage: (listener) => void client.on('message', listener),
      onError: (listener) => void client.on('error', listener),
      onConnected: (listener) => void client.on('connected', listener),
      close: () => client.close(),
    };
  }
  const client = new DuplexClient(url, { requestTimeout: 3000, ...delays, ...options, WebSocket: WHATWGWebSocket as unknown as WebSocketConstructor });
  return {
    kind,
    rpc: (method, params, rpcOptions) => client.rpc(method, params, rpcOptions),
    ready: () => client.whenOpen(),
    state: () => client.state,
    connId: () => client.connId,
    userId: () => client.userId,
    onMessage: (listener) => void client.on('message', listener),
    onError: (listener) => void client.on('error', listener),
    onConnected: (listener) => void client.on('connected', listener),
    close: async () => client.close(),
  };
}

/** A predicate for `assert.rejects`: a `HubClientError` with `code`. */
function withCode(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof HubClientError, `a HubClientError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

/** A promise settled from outside: a handler that answers when the test says so. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Cut the server side of every connection (no close frame), as a network failure would. */
function cutAll(env: Pick<HubServer, 'server'>): void {
  for (const ws of env.server.clients) ws.terminate();
}

for (const kind of CLIENT_KINDS) {
  test(`${kind} client: rpc round trip: the answer's data, params (null when absent), the caller's ctx`, { timeout: 10_000 }, async () => {
    const env = await startHub({ anonymous: true });
    const calls: Array<{ connId: string; params: Json }> = [];
    env.hub.rpc('sum', (ctx: HubContext, params) => {
      calls.push({ connId: ctx.connId, params });
      return (params as number[]).reduce((a, b) => a + b, 0);
    });
    env.hub.rpc('echo', async (_ctx, params) => ({ got: params }));
    env.hub.rpc('nothing', (_ctx, params) => void calls.push({ connId: '', params }));
    const client = makeClient(kind, env.url);
    try {
      assert.equal(await client.rpc('sum', [1, 2, 39]), 42);
      assert.equal(calls[0]?.connId, client.connId(), 'the handler sees the calling connection');
      assert.deepEqual(await client.rpc('echo', { deep: [1, { x: 'y' }] }), { got: { deep: [1, { x: 'y' }] } });
      assert.deepEqual(await client.rpc('echo', null), { got: null });
      assert.equal(await client.rpc('nothing'), null, 'a handler that returns nothing answers null');
      assert.deepEqual(calls[1], { connId: '', params: null }, 'params absent: the handler gets null');
    } finally {
      await client.close();
      await env.close();
    }
  });

  test(`${kind} client: rpc rejects with the server's code: E_NOT_FOUND, E_FORBIDDEN, E_INTERNAL, E_UNAVAILABLE, E_BAD_REQUEST, a handler's own`, { timeout: 10_000 }, async () => {
    const env = await startHub({ anonymous: true, rpcTimeout: 50 });
    const never = gate();
    env.hub.rpc('forbidden', () => {
      throw new HubError('E_FORBIDDEN', 'no');
    });
    env.hub.rpc('broken', () => {
      throw new Error('a bug');
    });
    env.hub.rpc('hang', async () => {
      await never.promise;
      return 'too late';
    });
    env.hub.rpc('custom', () => {
      throw new HubError('E_NOT_SUBSCRIBED', 'subscribe first');
    });
    const client = makeClient(kind, env.url);
    const errors: Error[] = [];
    client.onError((error) => errors.push(error));
    try {
      await assert.rejects(client.rpc('missing', 1), withCode('E_NOT_FOUND'));
      await assert.rejects(client.rpc('forbidden'), (error: unknown) => withCode('E_FORBIDDEN')(error) && (error as Error).message === 'no');
      await assert.rejects(client.rpc('broken'), withCode('E_INTERNAL'));
      await assert.rejects(client.rpc('hang'), withCode('E_UNAVAILABLE'));
      await assert.rejects(client.rpc('m'.repeat(129)), withCode('E_BAD_REQUEST'));
      await assert.rejects(client.rpc('custom'), withCode('E_NOT_SUBSCRIBED'));
      assert.equal(client.state(), 'open', 'a refused call leaves the connection up');
      assert.deepEqual(errors, [], 'each error went to its call, none to the error event');
    } finally {
      never.open();
      await client.close();
      await env.close();
    }
  });

  test(`${kind} client: concurrent rpcs are answered out of order, each to its own call`, { timeout: 10_000 }, async () => {
    const env = await startHub({ anonymous: true });
    const slow = gate();
    let slowStarted = false;
    env.hub.rpc('slow', async (_ctx, params) => {
      slowStarted = true;
      await slow.promise;
      return { slow: params };
    });
    env.hub.rpc('fast', (_ctx, params) => ({ fast: params }));
    const client = makeClient(kind, env.url);
    try {
      await client.ready();
      const settled: string[] = [];
      const first = client.rpc('slow', 1).then((value) => (settled.push('slow'), value));
      await until(() => slowStarted, 3000, 'the slow handler to start');
      const second = client.rpc('fast', 2).then((value) => (settled.push('fast'), value));
      assert.deepEqual(await second, { fast: 2 }, 'the second call is answered while the first still runs');
      assert.deepEqual(settled, ['fast']);
      slow.open();
      assert.deepEqual(await first, { slow: 1 });
      assert.deepEqual(settled, ['fast', 'slow']);
    } finally {
      slow.open();
      await client.close();
      await env.close();
    }
  });

  test(`${kind} client: rpc times out with E_TIMEOUT (its own timeout, else requestTimeout); a late answer is dropped`, { timeout: 10_000 }, async () => {
    const env = await startHub({ anonymous: true, rpcTimeout: 5000 });
    const late = gate();
    let lateAnswered = false;
    env.hub.rpc('late', async () => {
      await late.promise;
      lateAnswered = true;
      return 'late';
    });
    const client = makeClient(kind, env.url, { requestTimeout: 300 });
    const errors: Error[] = [];
    client.onError((error) => errors.push(error));
    try {
      await client.ready();
      const started = Date.now();
      await assert.rejects(client.rpc('late', null, { timeout: 60 }), (error: unknown) => withCode('E_TIMEOUT')(error) && /60 ms/.test((error as Error).message));
      assert.ok(Date.now() - started < 280, 'the call’s own timeout, not requestTimeout');
      await assert.rejects(client.rpc('late'), (error: unknown) => withCode('E_TIMEOUT')(error) && /300 ms/.test((error as Error).message));
      late.open();
      await until(() => lateAnswered, 3000, 'the handlers to answer');
      await delay(50); // the late replies arrive and find no call waiting
      assert.deepEqual(errors, [], 'late replies are ignored');
      assert.equal(await client.rpc('late'), 'late', 'the connection still works');
      for (const timeout of [0, -1, Number.NaN, Infinity, 2 ** 31]) {
        await assert.rejects(client.rpc('late', null, { timeout }), RangeError, String(timeout));
      }
    } finally {
      late.open();
      await client.close();
      await env.close();
    }
  });

  test(`${kind} client: an rpc made while disconnected is queued, then sent once on the next connection`, { timeout: 10_000 }, async () => {
    const env = await startHub({ anonymous: true });
    const callers: string[] = [];
    env.hub.rpc('who', (ctx) => {
      callers.push(ctx.connId);
      return ctx.connId;
    });
    // A reconnection that waits: the calls below are made while the client is surely disconnected.
    const client = makeClient(kind, env.url, { maxQueuedRequests: 1, reconnectDelay: 500 });
    try {
      await client.ready();
      const firstConnection = client.connId();
      cutAll(env);
      await until(() => client.state() === 'reconnecting', 3000, 'reconnecting');
      const queued = client.rpc('who');
      await assert.rejects(client.rpc('who'), withCode('E_QUEUE_FULL'), 'the queue is bounded by maxQueuedRequests');
      const answeredBy = await queued;
      assert.notEqual(answeredBy, firstConnection, 'sent on the new connection');
      assert.equal(answeredBy, client.connId());
      assert.deepEqual(callers, [answeredBy], 'run once');
    } finally {
      await client.close();
      await env.close();
    }
  });

  test(`${kind} client: an rpc whose connection dropped after it was sent fails with E_CONNECTION_LOST and is not sent again`, { timeout: 10_000 }, async () => {
    const env = await startHub({ anonymous: true });
    const hang = gate();
    let calls = 0;
    env.hub.rpc('charge', async () => {
      calls++;
      await hang.promise;
      return 'charged';
    });
    env.hub.rpc('ping', () => 'pong');
    const client = makeClient(kind, env.url);
    let connections = 0;
    client.onConnected(() => connections++);
    try {
      await client.ready();
      const call = client.rpc('charge', { amount: 5 });
      await until(() => calls === 1, 3000, 'the handler to run');
      cutAll(env);
      await assert.rejects(call, withCode('E_CONNECTION_LOST'));
      await until(() => connections === 2 && client.state() === 'open', 3000, 'the reconnection');
      assert.equal(await client.rpc('ping'), 'pong', 'a round trip on the new connection: anything re-sent would have come before');
      assert.equal(calls, 1, 'the lost call was not sent again: it may have run');
    } finally {
      hang.open();
      await client.close();
      await env.close();
    }
  });

  test(`${kind} client: connectData (a value) reaches the connect hook as request.data`, { timeout: 10_000 }, async () => {
    const seen: Array<Json | undefined> = [];
    const options: HubOptions = {
      connect: {
        authenticate: (request) => {
          seen.push(request.data);
          const data = request.data as { name?: string } | undefined;
          return { user: { id: `user-${data?.name ?? 'none'}` } };
        },
      },
    };
    const env = await startHub(options);
    const client = makeClient(kind, env.url, { connectData: { name: 'ada', scopes: ['read'] } });
    try {
      await client.ready();
      assert.deepEqual(seen, [{ name: 'ada', scopes: ['read'] }]);
      assert.equal(client.userId(), 'user-ada', 'the hook decided who the connection is from the data');
    } finally {
      await client.close();
      await env.close();
    }
  });

  test(`${kind} client: connectData as a function is asked again before each connection (one that throws fails that attempt only)`, { timeout: 10_000 }, async () => {
    const seen: Array<Json | undefined> = [];
    const env = await startHub({
      connect: {
        authenticate: (request) => {
          seen.push(request.data);
          return { user: { id: `user-${(request.data as { n: number }).n}` } };
        },
      },
    });
    let asked = 0;
    const client = makeClient(kind, env.url, {
      connectData: async () => {
        asked++;
        if (asked === 2) throw new Error('the session service is down');
        return { n: asked };
      },
    });
    const errors: Error[] = [];
    client.onError((error) => errors.push(error));
    try {
      await client.ready();
      assert.equal(client.userId(), 'user-1');
      cutAll(env);
      // Asked a second time (it throws: that connection is dropped), then a third.
      await until(() => client.state() === 'open' && client.userId() === 'user-3', 5000, 'connected again with fresh data');
      assert.deepEqual(seen, [{ n: 1 }, { n: 3 }], 'the hook saw each connection’s own data');
      assert.ok(errors.some((error) => error.message === 'the session service is down'), 'the failure is reported');
    } finally {
      await client.close();
      await env.close();
    }
  });

  test(`${kind} client: a connection closed with 4001 (authentication expired) reconnects and authenticates afresh`, { timeout: 10_000 }, async () => {
    let hookCalls = 0;
    const env = await startHub({
      connect: {
        authenticate: () => {
          hookCalls++;
          // The first authentication expires at once; the next one lasts.
          return { user: { id: `session-${hookCalls}` }, ...(hookCalls === 1 ? { expireAt: Date.now() + 100 } : {}) };
        },
      },
    });
    let asked = 0;
    const client = makeClient(kind, env.url, { connectData: () => ({ attempt: ++asked }) });
    try {
      await client.ready();
      assert.equal(client.userId(), 'session-1');
      await until(() => client.userId() === 'session-2' && client.state() === 'open', 5000, 'reauthenticated');
      assert.equal(asked, 2, 'connectData was asked again for the new connection');
    } finally {
      await client.close();
      await env.close();
    }
  });

  test(`${kind} client: a connect hook whose backend is unavailable (1013) is retried until it answers`, { timeout: 10_000 }, async () => {
    let hookCalls = 0;
    const env = await startHub({
      connect: {
        authenticate: () => {
          hookCalls++;
          if (hookCalls <= 2) throw new HubError('E_UNAVAILABLE', 'the session store is down');
          return { user: { id: 'ada' } };
        },
      },
    });
    const client = makeClient(kind, env.url);
    const errors: Error[] = [];
    client.onError((error) => errors.push(error));
    try {
      await client.ready();
      assert.equal(client.userId(), 'ada');
      assert.equal(hookCalls, 3, 'two refusals with 1013, each followed by a new attempt');
      assert.deepEqual(
        errors.map((error) => (error as HubClientError).code),
        ['E_UNAVAILABLE', 'E_UNAVAILABLE'],
        'each refused connect is reported',
      );
    } finally {
      await client.close();
      await env.close();
    }
  });

  test(`${kind} client: closed by the server with 1013 (try again later) or 4001, it reconnects`, { timeout: 10_000 }, async () => {
    const env = await startHub({ anonymous: true });
    const client = makeClient(kind, env.url);
    let connections = 0;
    client.onConnected(() => connections++);
    try {
      await client.ready();
      for (const [code, reason] of [
        [HubCloseCode.TryAgainLater, 'try again later'],
        [HubCloseCode.AuthenticationExpired, 'authentication expired'],
      ] as const) {
        const before = connections;
        lastServerSocket(env.server).close(code, reason);
        await until(() => connections === before + 1 && client.state() === 'open', 5000, `reconnected after ${code}`);
      }
      assert.equal(connections, 3);
    } finally {
      await client.close();
      await env.close();
    }
  });

  test(`${kind} client: a message of a topic server code subscribed the connection to carries its topic`, { timeout: 10_000 }, async () => {
    const env = await startHub({ anonymous: true });
    const client = makeClient(kind, env.url);
    const got: Array<{ data: Json; topic: string; offset: number }> = [];
    client.onMessage((data, meta) => got.push({ data, topic: meta.topic, offset: meta.offset }));
    try {
      await client.ready();
      await env.hub.subscribe(lastServerSocket(env.server), 'notifications:ada');
      await env.hub.publish('notifications:ada', { text: 'you have mail' });
      await until(() => got.length === 1, 3000, 'the publication');
      assert.deepEqual(got, [{ data: { text: 'you have mail' }, topic: 'notifications:ada', offset: 1 }]);
    } finally {
      await client.close();
      await env.close();
    }
  });
}

test('the close-code table: 1013 and 4001 reconnect, as 4008; 1003 and 1008 stop', () => {
  assert.equal(HubCloseCode.TryAgainLater, 1013);
  assert.equal(HubCloseCode.AuthenticationExpired, 4001);
  for (const code of [HubCloseCode.TryAgainLater, HubCloseCode.AuthenticationExpired, HubCloseCode.SlowConsumer, HubCloseCode.GoingAway]) {
    assert.equal(reconnectsAfterClose(code), true, String(code));
  }
  for (const code of [HubCloseCode.UnsupportedData, HubCloseCode.PolicyViolation]) assert.equal(reconnectsAfterClose(code), false, String(code));
});
