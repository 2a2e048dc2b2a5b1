// Token expiry and refresh on the hub (JWT HS256), for each way a token travels (the `connect`
// message, the `token` query parameter, an `Authorization: Bearer` header):
// - an expired token is refused (401 at the handshake, or E_UNAUTHORIZED + 1008 for `connect`)
//   and the client stops: it does not retry the same token in a loop; with a token *function*
//   and a `shouldReconnect` that retries auth refusals, it asks for a fresh token and gets in;
// - after a server-side disconnect the client calls the token function again, gets in with the
//   fresh token (never re-presenting the expired one) and recovers what was published meanwhile;
//   with a static token that expired meanwhile, the reconnection is refused and the client stops.
// The hub checks `exp` when it verifies a token (handshake or `connect`) only: a connection
// stays up after its token expired (the last test pins that down).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { defaultShouldReconnect, HandshakeError, type Disconnect } from '../../src/index.js';
import { createJwtVerifier, HubClientError, type HubClient, type HubClientOptions, type HubMessageMeta, type Json } from '../../src/hub/index.js';
import { delay, hubClient, startHub, until, type HubServer } from './hub-helpers.js';

const secret = 'a-test-secret-of-at-least-32-bytes!!';
const key = new TextEncoder().encode(secret);
const transports = ['message', 'query', 'header'] as const;
type Transport = (typeof transports)[number];

/** A JWT for `sub` expiring at `exp` (seconds since the epoch). */
function sign(sub: string, exp: number): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(exp).sign(key);
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** A hub whose verifier records every token it is shown (to prove which token each connection used). */
async function startRecordingHub(): Promise<{ env: HubServer; presented: string[] }> {
  const presented: string[] = [];
  const jwt = createJwtVerifier({ secret });
  const env = await startHub({
    auth: {
      verify: (token) => {
        presented.push(token);
        return jwt(token);
      },
    },
  });
  return { env, presented };
}

/**
 * A token function issuing short-lived tokens (`ttl` seconds; jose compares whole seconds, so a
 * token lives between ttl−1 and ttl seconds). `hold()` makes the next calls wait until released,
 * and tells when one is waiting.
 */
function tokenSource(ttl: number, first?: string) {
  const issued: Array<{ token: string; exp: number; at: number }> = [];
  let gate: Promise<void> | undefined;
  let onCall: (() => void) | undefined;
  let calls = 0;
  const fn = async (): Promise<string> => {
    calls++;
    onCall?.();
    if (gate) await gate;
    if (calls === 1 && first !== undefined) return first;
    const exp = nowSeconds() + ttl;
    const token = await sign('ann', exp);
    issued.push({ token, exp, at: Date.now() });
    return token;
  };
  return {
    fn,
    issued,
    get calls() {
      return calls;
    },
    /** Hold the next calls; resolves `waiting` when one is made. Returns the release. */
    hold(): { waiting: Promise<void>; release: () => void } {
      let release!: () => void;
      gate = new Promise<void>((resolve) => (release = resolve));
      const waiting = new Promise<void>((resolve) => (onCall = resolve));
      return {
        waiting,
        release: () => {
          gate = undefined;
          onCall = undefined;
          release();
        },
      };
    },
  };
}

/** Refusals of a token: 401 at the handshake, or the close that follows a refused `connect`. */
function authRefusal(cause: Disconnect): boolean {
  if (cause.type === 'error') return cause.error instanceof HandshakeError && cause.error.status === 401;
  return cause.code === 1008 && cause.reason === 'authentication failed';
}

function clientOptions(transport: Transport, token: HubClientOptions['token'], extra: HubClientOptions = {}): HubClientOptions {
  return { token, tokenTransport: transport, ...extra };
}

/** Kill the server side of `client`'s connection (as a server restart or a network cut would). */
function dropConnection(env: HubServer, client: HubClient): void {
  let killed = 0;
  for (const ws of env.server.clients) {
    if (env.hub.connectionId(ws) === client.connId) {
      ws.terminate();
      killed++;
    }
  }
  assert.equal(killed, 1, 'the server holds the client connection');
}

for (const transport of transports) {
  test(`token refresh (${transport}): an expired token is refused and the client stops instead of retrying it`, { timeout: 10_000 }, async () => {
    const { env, presented } = await startRecordingHub();
    const expired = await sign('ann', nowSeconds() - 60);
    const source = tokenSource(60, expired); // the function hands out the expired token first (a stale cache)
    const client = hubClient(env.url, clientOptions(transport, source.fn));
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    try {
      await assert.rejects(client.connected(), (e: unknown) => e instanceof HubClientError && e.code === 'E_CLOSED' && /not-retryable/.test(e.message));
      assert.equal(client.state, 'closed');
      await delay(300); // minDelay is 20 ms: a retry loop would have shown up by now
      assert.equal(source.calls, 1, 'the token function was asked once');
      assert.deepEqual(presented, [expired], 'the server saw the expired token once');
      const stats = env.server.stats();
      if (transport === 'message') {
        // Refused in `connect`: an E_UNAUTHORIZED error, then the server closes with 1008.
        assert.ok(errors.some((e) => e instanceof HubClientError && e.code === 'E_UNAUTHORIZED' && /token expired/.test(e.message)), 'E_UNAUTHORIZED: token expired');
        assert.equal(stats.connectionsTotal, 1);
        assert.equal(stats.closes[1008], 1);
      } else {
        assert.ok(errors.some((e) => e instanceof HandshakeError && e.status === 401 && /token expired/.test(e.message)), '401: token expired');
        assert.equal(stats.rejections[401], 1);
        assert.equal(stats.connectionsTotal, 0);
      }
    } finally {
      await client.close();
      await env.close();
    }
  });

  test(`token refresh (${transport}): with a shouldReconnect that retries auth refusals, the token function is called again and the fresh token gets in`, { timeout: 10_000 }, async () => {
    const { env, presented } = await startRecordingHub();
    const expired = await sign('ann', nowSeconds() - 60);
    const source = tokenSource(60, expired);
    const client = hubClient(
      env.url,
      clientOptions(transport, source.fn, { reconnect: { maxAttempts: 5, shouldReconnect: (cause) => authRefusal(cause) || defaultShouldReconnect(cause) } }),
    );
    try {
      await client.connected();
      assert.equal(client.userId, 'ann');
      assert.equal(source.calls, 2);
      assert.deepEqual(presented, [expired, source.issued[0]!.token]);
      const stats = env.server.stats();
      assert.equal(transport === 'message' ? stats.closes[1008] : stats.rejections[401], 1, 'one refusal, then in');
      await client.ping();
    } finally {
      await client.close();
      await env.close();
    }
  });

  test(`token refresh (${transport}): after a server-side disconnect the token function is called again; the fresh token gets in and missed messages are recovered`, { timeout: 10_000 }, async () => {
    const { env, presented } = await startRecordingHub();
    const source = tokenSource(2);
    const client = hubClient(env.url, clientOptions(transport, source.fn));
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const got: Array<[Json, boolean]> = [];
    try {
      await client.subscribe('feed', (data, meta: HubMessageMeta) => void got.push([data, meta.recovered]));
      await env.hub.publish('feed', 1);
      await until(() => got.length === 1, 3000, 'the live message');
      const first = source.issued[0]!;
      const firstConn = client.connId;

      // The first token expires while connected (see the last test: the hub lets the connection be).
      await delay(first.exp * 1000 - Date.now() + 20);
      // The connection drops; the client needs a token for the next one, which we hold back
      // while two messages are published: the client is not subscribed anywhere meanwhile.
      const held = source.hold();
      dropConnection(env, client);
      await held.waiting;
      assert.ok(Date.now() >= first.exp * 1000, 'the first token has expired by now');
      await env.hub.publish('feed', 2);
      await env.hub.publish('feed', 3);
      held.release();

      await until(() => got.length === 3, 3000, 'the recovered messages');
      assert.equal(client.state, 'connected');
      assert.notEqual(client.connId, firstConn, 'a new connection');
      assert.equal(client.userId, 'ann');
      assert.equal(source.calls, 2, 'the token function was called again for the reconnection');
      const second = source.issued[1]!;
      assert.ok(second.at >= first.exp * 1000, 'the second token was issued after the first expired');
      assert.deepEqual(presented, [first.token, second.token], 'the expired token was never presented again');
      assert.equal(env.server.stats().rejections[401] ?? 0, 0);
      assert.equal(env.server.stats().closes[1008] ?? 0, 0);

      await env.hub.publish('feed', 4);
      await until(() => got.length === 4, 3000, 'the live message after reconnection');
      assert.deepEqual(got, [[1, false], [2, true], [3, true], [4, false]], 'each message once, in order; 2 and 3 from history');
      assert.deepEqual(errors, []);
    } finally {
      await client.close();
      await env.close();
    }
  });

  test(`token refresh (${transport}): a static token that expired meanwhile is refused on reconnection and the client stops`, { timeout: 10_000 }, async () => {
    const { env, presented } = await startRecordingHub();
    const exp = nowSeconds() + 2; // lives 1–2 s (whole seconds)
    const token = await sign('ann', exp);
    const client = hubClient(env.url, clientOptions(transport, token));
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    try {
      await client.connected();
      await delay(exp * 1000 - Date.now() + 20);
      dropConnection(env, client);
      await until(() => client.state === 'closed', 3000, 'the client to stop');
      await delay(300);
      assert.deepEqual(presented, [token, token], 'presented twice: accepted, then refused as expired; no more');
      assert.ok(errors.some((e) => /token expired/.test(e.message)), 'the refusal says the token expired');
      const stats = env.server.stats();
      assert.equal(transport === 'message' ? stats.closes[1008] : stats.rejections[401], 1);
    } finally {
      await client.close();
      await env.close();
    }
  });
}

test('token expiry: the hub checks exp only when it verifies a token, not during a connection (no disconnect at exp)', { timeout: 10_000 }, async () => {
  const { env, presented } = await startRecordingHub();
  const source = tokenSource(2);
  const client = hubClient(env.url, clientOptions('message', source.fn));
  const got: Json[] = [];
  try {
    await client.subscribe('feed', (data) => void got.push(data));
    const { exp } = source.issued[0]!;
    const connId = client.connId;
    await delay(exp * 1000 - Date.now() + 300);
    assert.ok(Date.now() > exp * 1000);
    await client.ping();
    await env.hub.publish('feed', 'after exp');
    await until(() => got.length === 1, 3000, 'a message after exp');
    assert.equal(client.state, 'connected');
    assert.equal(client.connId, connId, 'the same connection');
    assert.equal(source.calls, 1);
    assert.equal(presented.length, 1);
  } finally {
    await client.close();
    await env.close();
  }
});

// A token function that fails once (the auth service is briefly down) is retried with the next
// attempt for the query and header transports (it runs in `beforeConnect`, a failed attempt).
// With the `connect` message transport it runs after the socket opened: the client drops that
// connection (1006, retried) instead of waiting unauthenticated for the hub's 1008.
for (const transport of transports) {
  test(`token refresh (${transport}): a token function that throws once is called again on the next attempt`, { timeout: 10_000 }, async () => {
    const env = await startHub({ auth: { jwt: { secret } }, connectTimeout: 1000 });
    let calls = 0;
    const client = hubClient(
      env.url,
      clientOptions(transport, async () => {
        calls++;
        if (calls === 1) throw new Error('auth service unavailable');
        return sign('ann', nowSeconds() + 60);
      }),
    );
    client.on('error', () => {});
    try {
      await client.connected();
      assert.equal(calls, 2);
      assert.equal(client.userId, 'ann');
    } finally {
      await client.close();
      await env.close();
    }
  });
}
