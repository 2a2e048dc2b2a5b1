// `subscribe(topic, listener, options)` on both clients. The Node `HubClient` used to drop the
// options, so `from` (start from a position: recent history) and `recover: false` (no catch-up
// after a reconnection, for ephemeral topics) worked in browsers only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GapInfo, HubMessageMeta } from '../../src/hub/index.js';
import { CLIENT_KINDS, makeClient } from './client-pair.js';
import { startHub, until, type HubServer } from './hub-helpers.js';

/** Cut the server side of every connection (no close frame), as a network failure would. */
function cutAll(env: HubServer): void {
  for (const ws of env.server.clients) ws.terminate();
}

for (const kind of CLIENT_KINDS) {
  test(`${kind} client: subscribe with from: {epoch, offset} gets the history after it, then live`, { timeout: 10_000 }, async () => {
    const env = await startHub();
    const client = makeClient(kind, env.url);
    try {
      let epoch = '';
      for (let n = 1; n <= 5; n++) epoch = (await env.hub.publish('feed', n)).epoch;
      const got: Array<{ n: unknown } & Pick<HubMessageMeta, 'offset' | 'recovered'>> = [];
      const result = await client.subscribe('feed', (data, meta) => got.push({ n: data, offset: meta.offset, recovered: meta.recovered }), { from: { epoch, offset: 2 } });
      assert.equal(result.recovered, true);
      await env.hub.publish('feed', 6);
      await until(() => got.length === 4, 3000, 'three from history and one live');
      assert.deepEqual(got, [
        { n: 3, offset: 3, recovered: true },
        { n: 4, offset: 4, recovered: true },
        { n: 5, offset: 5, recovered: true },
        { n: 6, offset: 6, recovered: false },
      ]);
    } finally {
      await client.close();
      await env.close();
    }
  });

  test(`${kind} client: recover: false does not catch up after a reconnection (the default does)`, { timeout: 10_000 }, async () => {
    const env = await startHub();
    // A reconnection that waits half a second: the publishes below happen while it surely is
    // disconnected (with the fast default, a loaded machine can see it back before they are made).
    const slow = { minDelay: 500, maxDelay: 500, jitter: false };
    const client = makeClient(kind, env.url, { node: { reconnect: slow }, browser: slow });
    try {
      const ephemeral: unknown[] = [];
      const durable: unknown[] = [];
      const gaps: GapInfo[] = [];
      const errors: unknown[] = [];
      client.on('error', (error) => errors.push(error));
      client.on('gap', (gap) => gaps.push(gap as GapInfo));
      await client.subscribe('typing', (data) => ephemeral.push(data), { recover: false });
      await client.subscribe('chat', (data) => durable.push(data));
      await env.hub.publish('typing', 'live 1');
      await env.hub.publish('chat', 'live 1');
      await until(() => ephemeral.length === 1 && durable.length === 1, 3000, 'the first live messages');

      let connections = 0;
      client.on('connected', () => connections++);
      cutAll(env);
      await until(() => client.state() === 'reconnecting', 3000, 'reconnecting');
      await env.hub.publish('typing', 'missed');
      await env.hub.publish('chat', 'missed');
      await until(() => connections === 1 && client.state() === 'open', 3000, 'reconnected');
      await until(() => durable.length === 2, 3000, 'the durable topic catches up');
      // 'typing' was resubscribed first, afresh (live messages only); the server answers in order,
      // so once 'chat' has caught up, both subscriptions are in place.
      await env.hub.publish('typing', 'live 2');
      await env.hub.publish('chat', 'live 2');
      await until(() => ephemeral.length === 2 && durable.length === 3, 3000, 'the second live messages');
      assert.deepEqual(ephemeral, ['live 1', 'live 2'], 'recover: false: what was missed is not recovered');
      assert.deepEqual(durable, ['live 1', 'missed', 'live 2'], 'the default recovers');
      assert.deepEqual(gaps, [], 'and no gap is reported for a topic that asked not to recover');
      assert.deepEqual(errors, []);
    } finally {
      await client.close();
      await env.close();
    }
  });
}
