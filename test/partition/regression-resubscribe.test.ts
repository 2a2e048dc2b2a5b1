// Regression of the first bug the partition checker found (docs/partitions.md, bug 1): a node cut
// off from its broker answers a client's resubscription after a reconnection with E_UNAVAILABLE
// ("the broker could not subscribe; retry") — or not in time (E_TIMEOUT) — and the client core
// dropped the subscription for good: no more messages, `position()` undefined, while the
// application still believed it was subscribed. Now the subscription is kept and made again, with
// recovery, on a new connection; nothing published meanwhile is lost.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MemoryBroker, type HubClient } from '../../src/hub/index.js';
import type { HistorySlice } from '../../src/hub/broker.js';
import { hubClient, startHub, until, type HubServer } from '../hub/hub-helpers.js';

/** A memory broker whose next history reads fail or hang, as a broker behind a cut link does. */
class FlakyBroker extends MemoryBroker {
  failures = 0;
  hangs = 0;
  hangFor = 0;

  override async history(topic: string, offset: number, epoch: string | undefined): Promise<HistorySlice> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('broker unreachable');
    }
    if (this.hangs > 0) {
      this.hangs--;
      await new Promise((resolve) => setTimeout(resolve, this.hangFor));
    }
    return super.history(topic, offset, epoch);
  }
}

/** Cut the server side of a client's connection (no close frame), as a network failure would. */
function cut(env: HubServer, client: HubClient): void {
  for (const ws of env.server.clients) if (env.hub.connectionId(ws) === client.connId) ws.terminate();
}

for (const mode of ['E_UNAVAILABLE', 'E_TIMEOUT'] as const) {
  test(`a resubscription refused with ${mode} is made again on a new connection, and what was missed is recovered`, { timeout: 15_000 }, async () => {
    const broker = new FlakyBroker();
    const env = await startHub({ anonymous: true, broker });
    const client = hubClient(env.url, { requestTimeout: 500, reconnect: { minDelay: 50, maxDelay: 100 } });
    try {
      const got: Array<{ n: number; offset: number }> = [];
      const errors: string[] = [];
      client.on('error', (error) => errors.push(String((error as { code?: unknown }).code)));
      await client.subscribe('feed', (data, meta) => got.push({ n: data as number, offset: meta.offset }));
      for (let n = 1; n <= 3; n++) await env.hub.publish('feed', n);
      await until(() => got.length === 3, 3000, 'the first three');

      // The next resubscription reaches a node whose broker fails (or stalls past the client's timeout).
      if (mode === 'E_UNAVAILABLE') broker.failures = 2;
      else {
        broker.hangs = 1;
        broker.hangFor = 1500;
      }
      cut(env, client);
      await until(() => client.state === 'reconnecting', 2000, 'reconnecting');
      for (let n = 4; n <= 6; n++) await env.hub.publish('feed', n);
      await until(() => errors.includes(mode), 5000, `the resubscription refused with ${mode}`);

      // Still subscribed: it comes back, recovers 4–6 and gets what follows.
      await until(() => got.length >= 6, 8000, 'the three published while away');
      assert.notEqual(client.position('feed'), undefined, 'still subscribed');
      await env.hub.publish('feed', 7);
      await until(() => got.length >= 7, 3000, 'a live one after');
      assert.deepEqual(got.map((g) => g.n), [1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual(got.map((g) => g.offset), [1, 2, 3, 4, 5, 6, 7]);
    } finally {
      await client.close();
      await env.close();
    }
  });
}
