// The close codes of docs/protocol.md, as both clients read them: 4008 (slow consumer) means
// "reconnect and recover", 1008 (policy) means "stop" — by the code alone, so each case closes
// with the same reason text, "slow consumer", that the browser client used to match on.
//
// The server is a plain WebSocketServer speaking just enough of the hub protocol: it answers
// `connect` and `subscribe`, sends two publications, then closes with the code under test. On a
// second connection it expects the resubscription to recover from offset 2 and answers with
// publication 3 from "history", then 4 live.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer, type WebSocket } from '../../src/index.js';
import { HubClientError } from '../../src/hub/index.js';
import { DuplexError, HubClientError as BrowserHubClientError } from '../../src/browser/client.js';
import { DuplexError as RootError } from '../../src/index.js';
import { CLIENT_KINDS, makeClient, type ClientKind } from './client-pair.js';
import { delay, until } from './hub-helpers.js';

const EPOCH = 'e1';

interface RawHub {
  url: string;
  /** The `subscribe` requests received, per connection (1-based). */
  subscribes: Array<{ connection: number; request: Record<string, unknown> }>;
  connections(): number;
  close(): Promise<void>;
}

async function rawHub(closeCode: number, closeReason: string): Promise<RawHub> {
  let connections = 0;
  const subscribes: RawHub['subscribes'] = [];
  const numbers = new WeakMap<WebSocket<unknown>, number>();
  const send = (ws: WebSocket<unknown>, message: unknown): void => void ws.send(JSON.stringify(message));
  const server = new WebSocketServer<unknown>({
    pingInterval: 0,
    handlers: {
      open: (ws) => void numbers.set(ws, ++connections),
      message: (ws, data) => {
        const n = numbers.get(ws)!;
        const request = JSON.parse(String(data)) as Record<string, unknown>;
        const id = request['id'];
        if (request['type'] === 'connect') {
          send(ws, { type: 'reply', id, result: { connId: `c${n}`, node: 'raw', version: 1 } });
        } else if (request['type'] === 'subscribe') {
          subscribes.push({ connection: n, request });
          const topic = request['topic'];
          if (n === 1) {
            send(ws, { type: 'reply', id, result: { topic, epoch: EPOCH, offset: 0 } });
            send(ws, { type: 'message', topic, epoch: EPOCH, offset: 1, data: 'one' });
            send(ws, { type: 'message', topic, epoch: EPOCH, offset: 2, data: 'two' });
            ws.close(closeCode, closeReason);
          } else {
            send(ws, { type: 'reply', id, result: { topic, epoch: EPOCH, offset: 3, recovered: true, publications: [{ offset: 3, data: 'three' }] } });
            send(ws, { type: 'message', topic, epoch: EPOCH, offset: 4, data: 'four' });
          }
        } else {
          send(ws, { type: 'reply', id, result: {} });
        }
      },
    },
  });
  const { port } = await server.listen(0);
  return { url: `ws://127.0.0.1:${port}/hub`, subscribes, connections: () => connections, close: () => server.close(1001, 'test over', 500) };
}

for (const kind of CLIENT_KINDS) {
  test(`${kind} client: closed with 4008 (slow consumer), it reconnects and recovers from where it was`, { timeout: 10_000 }, async () => {
    const server = await rawHub(4008, 'slow consumer');
    const client = makeClient(kind, server.url);
    const states: unknown[] = [];
    const errors: unknown[] = [];
    client.on('state', (state) => states.push(state));
    client.on('error', (error) => errors.push(error));
    try {
      const got: Array<[unknown, number, boolean]> = [];
      await client.subscribe('feed', (data, meta) => got.push([data, meta.offset, meta.recovered]));
      await until(() => got.length === 4, 5000, 'four publications');
      assert.deepEqual(got, [
        ['one', 1, false],
        ['two', 2, false],
        ['three', 3, true],
        ['four', 4, false],
      ]);
      assert.equal(server.connections(), 2);
      assert.deepEqual(
        server.subscribes.map((s) => [s.connection, s.request['recover']]),
        [
          [1, undefined],
          [2, { epoch: EPOCH, offset: 2 }],
        ],
        'the resubscription recovers from the last offset seen',
      );
      assert.equal(client.state(), 'open');
      assert.ok(states.includes('reconnecting'));
      assert.ok(!states.includes('closed'));
      assert.deepEqual(errors, []);
    } finally {
      await client.close();
      await server.close();
    }
  });

  test(`${kind} client: closed with 1008 (even with the reason "slow consumer"), it stops`, { timeout: 10_000 }, async () => {
    const server = await rawHub(1008, 'slow consumer');
    const client = makeClient(kind, server.url);
    const errors: unknown[] = [];
    client.on('error', (error) => errors.push(error));
    try {
      await client.subscribe('feed', () => {});
      await until(() => client.state() === 'closed', 3000, 'closed');
      await delay(300); // minDelay is 20 ms: a retry would have come by now
      assert.equal(server.connections(), 1, 'no reconnection');
      const stopped = (e: unknown): boolean => e instanceof HubClientError && e.code === 'E_CLOSED';
      assert.ok(
        errors.some((e) => stopped(e) && /not-retryable\): closed with 1008 slow consumer/.test((e as Error).message)),
        `an error event says why: ${errors.map(String).join('; ')}`,
      );
      await assert.rejects(client.publish('feed', 'after'), stopped);
      await assert.rejects(client.ready(), stopped);
    } finally {
      await client.close();
      await server.close();
    }
  });
}

test('the errors of both clients are one class, a DuplexError', async () => {
  assert.equal(BrowserHubClientError, HubClientError);
  assert.equal(DuplexError, RootError);
  assert.ok(HubClientError.prototype instanceof DuplexError);
  const rejections = await Promise.all(
    (['node', 'browser'] as ClientKind[]).map(async (kind) => {
      const client = makeClient(kind, 'ws://127.0.0.1:9/unreachable');
      await client.close();
      return client.publish('t', 1).catch((error: unknown) => error);
    }),
  );
  for (const error of rejections) {
    assert.ok(error instanceof HubClientError && error instanceof DuplexError);
    assert.equal((error as HubClientError).code, 'E_CLOSED');
    assert.equal((error as HubClientError).name, 'HubClientError');
  }
});
