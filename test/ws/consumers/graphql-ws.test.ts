// graphql-ws 6 on the ws API: its server (`useServer` from 'graphql-ws/use/ws') on each
// implementation's WebSocketServer, its client (`createClient`) with each implementation's
// WebSocket as `webSocketImpl` — all four pairs, the ws ↔ ws one first as the baseline.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { buildSchema, type FormattedExecutionResult } from 'graphql';
import { createClient, type Client, type ClientOptions, type SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { WebSocket as WsWebSocket, WebSocketServer as WsWebSocketServer } from 'ws';
import { IMPL_NAMES, useImpl, next, until, within, type Impl } from './impls.js';

const TEST_TIMEOUT = 15_000;

const schema = buildSchema(`
  type Query { hello: String!, whoami: String, big(size: Int!): String! }
  type Mutation { add(a: Int!, b: Int!): Int! }
  type Subscription { countdown(from: Int!, every: Int): Int! }
`);

interface Context {
  user: string | undefined;
}

/** How many countdown generators are running, to see unsubscription reach the server. */
let activeCountdowns = 0;

const roots = {
  query: {
    hello: () => 'world',
    whoami: (_args: unknown, context: Context) => context.user ?? null,
    big: ({ size }: { size: number }) => 'x'.repeat(size),
  },
  mutation: {
    add: ({ a, b }: { a: number; b: number }) => a + b,
  },
  subscription: {
    // graphql-js calls the root's field as the subscribe resolver; each yielded value is
    // the root of one result, hence `{ countdown: n }`.
    countdown: async function* ({ from, every = 5 }: { from: number; every?: number }) {
      activeCountdowns++;
      try {
        for (let n = from; n >= 0; n--) {
          await new Promise((resolve) => setTimeout(resolve, every));
          yield { countdown: n };
        }
      } finally {
        activeCountdowns--;
      }
    },
  },
};

interface GraphqlFixture {
  url: string;
  wss: WsWebSocketServer;
  /** The server sockets, in connection order. */
  sockets: WsWebSocket[];
  /** A graphql-ws client on `clientImpl`'s WebSocket (disposed by close()). */
  client(options?: Partial<ClientOptions>): Client;
  /** Dispose the clients and the graphql-ws server, close the WebSocketServer. */
  close(): Promise<void>;
  dispose(): Promise<void>;
}

async function startGraphql(serverImpl: Impl, clientImpl: Impl, keepAlive = 12_000): Promise<GraphqlFixture> {
  const wss = new serverImpl.WebSocketServer({ port: 0, host: '127.0.0.1', path: '/graphql' });
  await next(wss, 'listening');
  const sockets: WsWebSocket[] = [];
  const server = useServer<{ token?: string; user?: string }>(
    {
      schema,
      roots,
      context: (ctx): Context => ({ user: ctx.connectionParams?.user }),
      onConnect: (ctx) => {
        sockets.push(ctx.extra.socket);
        return ctx.connectionParams?.token === 'secret';
      },
    },
    wss,
    keepAlive,
  );
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/graphql`;
  const clients: Client[] = [];
  let disposed = false;
  const dispose = async (): Promise<void> => {
    if (disposed) return;
    disposed = true;
    await within(Promise.resolve(server.dispose()), 5000, 'the graphql-ws server to dispose');
  };
  return {
    url,
    wss,
    sockets,
    client(options = {}) {
      const client = createClient({
        url,
        webSocketImpl: clientImpl.WebSocket,
        connectionParams: { token: 'secret', user: 'ada' },
        retryAttempts: 0,
        ...options,
      });
      clients.push(client);
      return client;
    },
    dispose,
    async close() {
      await Promise.all(clients.map((client) => client.dispose()));
      await dispose();
    },
  };
}

/** The arguments of the client's next `event` ('connected', 'closed', …), within `ms`. */
function clientEvent<A extends unknown[]>(client: Client, event: 'connected' | 'closed', ms = 3000): Promise<A> {
  let off: () => void = () => {};
  return within(
    new Promise<A>((resolve) => {
      off = client.on(event, (...args: unknown[]) => {
        off();
        resolve(args as A);
      });
    }),
    ms,
    `the client's '${event}'`,
  ).finally(() => off());
}

/** Every result of one operation, until it completes; rejects with what the client's sink got. */
function run<T = unknown>(client: Client, payload: SubscribePayload): Promise<Array<FormattedExecutionResult<T, unknown>>> {
  return within(
    new Promise((resolve, reject) => {
      const results: Array<FormattedExecutionResult<T, unknown>> = [];
      client.subscribe<T>(payload, {
        next: (result) => void results.push(result),
        // The sink gets a CloseEvent (socket closed), GraphQL errors (validation) or an Error.
        error: (error: unknown) => reject(error instanceof Error ? error : Object.assign(new Error('the operation failed'), { event: error })),
        complete: () => resolve(results),
      });
    }),
    5000,
    `the operation ${payload.query.trim().split('\n')[0]}`,
  );
}

for (const serverName of IMPL_NAMES) {
  for (const clientName of IMPL_NAMES) {
    describe(`graphql-ws: ${clientName} client (webSocketImpl) → ${serverName} WebSocketServer`, () => {
      let serverImpl: Impl;
      let clientImpl: Impl;
      before(() => {
        serverImpl = useImpl(serverName);
        clientImpl = useImpl(clientName);
      });

      test('a query, on sockets of these implementations, with the graphql-transport-ws subprotocol', { timeout: TEST_TIMEOUT }, async (t) => {
        const g = await startGraphql(serverImpl, clientImpl);
        t.after(() => g.close());
        const client = g.client({ lazy: false });
        const [socket] = await clientEvent<[unknown]>(client, 'connected');
        assert.ok(socket instanceof clientImpl.WebSocket, 'the client socket is an instance of webSocketImpl');
        assert.equal((socket as WsWebSocket).protocol, 'graphql-transport-ws');
        assert.deepEqual(await run(client, { query: '{ hello }' }), [{ data: { hello: 'world' } }]);
        assert.equal(g.sockets.length, 1);
        assert.ok(g.sockets[0] instanceof serverImpl.WebSocket, 'the server socket is an instance of the server implementation');
        assert.equal(g.sockets[0]!.protocol, 'graphql-transport-ws', 'useServer’s handleProtocols (set on wss.options) was used');
      });

      test('a mutation, and connectionParams reaching the context', { timeout: TEST_TIMEOUT }, async (t) => {
        const g = await startGraphql(serverImpl, clientImpl);
        t.after(() => g.close());
        const client = g.client({ lazy: false });
        assert.deepEqual(await run(client, { query: 'mutation ($a: Int!) { add(a: $a, b: 40) }', variables: { a: 2 } }), [{ data: { add: 42 } }]);
        assert.deepEqual(await run(client, { query: '{ whoami }' }), [{ data: { whoami: 'ada' } }]);
        // A validation error is an 'error' message for the operation, not a closed socket.
        await assert.rejects(run(client, { query: '{ nope }' }), (error: Error & { event?: Array<{ message: string }> }) => {
          assert.match(error.event?.[0]?.message ?? '', /Cannot query field "nope"/);
          return true;
        });
        assert.deepEqual(await run(client, { query: '{ hello }' }), [{ data: { hello: 'world' } }], 'the connection is still usable');
        assert.equal(g.sockets.length, 1);
      });

      test('a subscription streams every event then completes; two run side by side on one socket', { timeout: TEST_TIMEOUT }, async (t) => {
        const g = await startGraphql(serverImpl, clientImpl);
        t.after(() => g.close());
        const client = g.client({ lazy: false });
        const [a, b] = await Promise.all([
          run<{ countdown: number }>(client, { query: 'subscription { countdown(from: 5) }' }),
          run<{ countdown: number }>(client, { query: 'subscription { countdown(from: 3, every: 2) }' }),
        ]);
        assert.deepEqual(
          a.map((result) => result.data?.countdown),
          [5, 4, 3, 2, 1, 0],
        );
        assert.deepEqual(
          b.map((result) => result.data?.countdown),
          [3, 2, 1, 0],
        );
        assert.equal(g.sockets.length, 1, 'both operations on one connection');
      });

      test('unsubscribing stops the server’s generator', { timeout: TEST_TIMEOUT }, async (t) => {
        const g = await startGraphql(serverImpl, clientImpl);
        t.after(() => g.close());
        const client = g.client({ lazy: false });
        const seen: number[] = [];
        const before = activeCountdowns;
        const unsubscribe = client.subscribe<{ countdown: number }>(
          { query: 'subscription { countdown(from: 1000, every: 2) }' },
          { next: (result) => void seen.push(result.data!.countdown), error: () => {}, complete: () => {} },
        );
        await until(() => seen.length >= 3, 3000, 'three events');
        assert.equal(activeCountdowns, before + 1);
        unsubscribe();
        await until(() => activeCountdowns === before, 3000, 'the generator to be returned');
        assert.deepEqual(seen.slice(0, 3), [1000, 999, 998]);
      });

      test('a large result (1 MiB) arrives whole', { timeout: TEST_TIMEOUT }, async (t) => {
        const g = await startGraphql(serverImpl, clientImpl);
        t.after(() => g.close());
        const client = g.client();
        const [result] = await run<{ big: string }>(client, { query: '{ big(size: 1048576) }' });
        assert.equal(result?.data?.big.length, 1 << 20);
      });

      test('onConnect refusing: the close code 4403 Forbidden reaches the client', { timeout: TEST_TIMEOUT }, async (t) => {
        const g = await startGraphql(serverImpl, clientImpl);
        t.after(() => g.close());
        const client = g.client({ connectionParams: { token: 'wrong' } });
        const closed = clientEvent<[{ code: number; reason: string }]>(client, 'closed');
        const failure = await run(client, { query: '{ hello }' }).then(
          () => assert.fail('the operation should fail'),
          (error: Error & { event?: { code: number; reason: string } }) => error,
        );
        assert.equal(failure.event?.code, 4403);
        assert.equal(failure.event?.reason, 'Forbidden');
        const [event] = await closed;
        assert.equal(event.code, 4403);
      });

      test('keepAlive pings from the server are answered (pongs), the connection stays usable', { timeout: TEST_TIMEOUT }, async (t) => {
        const g = await startGraphql(serverImpl, clientImpl, 20);
        t.after(() => g.close());
        const client = g.client({ lazy: false });
        await clientEvent(client, 'connected');
        await until(() => g.sockets.length === 1, 3000, 'the server socket');
        let pongs = 0;
        g.sockets[0]!.on('pong', () => void pongs++);
        await until(() => pongs >= 3, 3000, 'three pongs');
        assert.equal(g.sockets[0]!.readyState, serverImpl.WebSocket.OPEN, 'not terminated by the keepAlive check');
        assert.deepEqual(await run(client, { query: '{ hello }' }), [{ data: { hello: 'world' } }]);
      });

      test('dispose(): clients are closed with 1001 Going away and the server closes', { timeout: TEST_TIMEOUT }, async (t) => {
        const g = await startGraphql(serverImpl, clientImpl);
        t.after(() => g.close());
        const client = g.client({ lazy: false });
        await clientEvent(client, 'connected');
        const closed = clientEvent<[{ code: number; reason: string }]>(client, 'closed');
        await g.dispose();
        const [event] = await closed;
        assert.equal(event.code, 1001);
        assert.equal(event.reason, 'Going away');
        // dispose() resolved from wss.close()'s callback: the server made by the
        // WebSocketServer (the port option) is closed, new connections are refused.
        const late = new clientImpl.WebSocket(g.url, 'graphql-transport-ws');
        const [error] = await next<[Error & { code?: string }]>(late, 'error');
        assert.equal(error.code, 'ECONNREFUSED');
      });
    });
  }
}
