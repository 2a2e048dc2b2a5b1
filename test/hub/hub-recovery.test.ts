// History recovery: a client whose socket is cut gets exactly what was published while it was
// away, in order, before live messages; a position too old or from another epoch gives a gap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GapInfo, HubClient } from '../../src/hub/index.js';
import type { HubServer } from './hub-helpers.js';
import { hubClient, rawClient, startHub, until } from './hub-helpers.js';

/** Cut the server side of a client's connection (no close frame), as a network failure would. */
function cut(env: HubServer, client: HubClient): void {
  for (const ws of env.server.clients) if (env.hub.connectionId(ws) === client.connId) ws.terminate();
}

test('hub recovery: 50 publications while away arrive exactly once, in order, then live ones', { timeout: 10_000 }, async () => {
  const env = await startHub();
  const client = hubClient(env.url, { reconnect: { minDelay: 200, maxDelay: 200, jitter: false } });
  try {
    const got: Array<{ n: number; offset: number; recovered: boolean }> = [];
    const gaps: GapInfo[] = [];
    client.on('gap', (g) => gaps.push(g));
    await client.subscribe('feed', (data, meta) => got.push({ n: data as number, offset: meta.offset, recovered: meta.recovered }));
    for (let n = 1; n <= 5; n++) await env.hub.publish('feed', n);
    await until(() => got.length === 5);
    cut(env, client);
    await until(() => client.state === 'reconnecting', 2000, 'reconnecting');
    for (let n = 6; n <= 55; n++) await env.hub.publish('feed', n);
    await until(() => client.state === 'connected', 3000, 'reconnected');
    // 'connected' comes before the resubscription's catch-up is done: publications made before it
    // is done are (rightly) delivered from history too. The live ones come after it.
    await until(() => got.length >= 55, 3000, 'the 50 missed ones');
    for (let n = 56; n <= 60; n++) await env.hub.publish('feed', n);
    await until(() => got.length >= 60, 3000, 'all 60');
    assert.deepEqual(got.map((g) => g.n), Array.from({ length: 60 }, (_, i) => i + 1));
    assert.deepEqual(got.map((g) => g.offset), Array.from({ length: 60 }, (_, i) => i + 1));
    assert.equal(got.filter((g) => g.recovered).length, 50, 'the 50 missed ones came from history');
    assert.ok(got.slice(5, 55).every((g) => g.recovered));
    assert.deepEqual(gaps, []);
    assert.equal(env.hub.stats().recovered, 1);
  } finally {
    await client.close();
    await env.close();
  }
});

test('hub recovery: publications during the resubscription seam are neither lost nor doubled', { timeout: 10_000 }, async () => {
  const env = await startHub({ anonymous: true, history: { size: 100_000, ttl: 60_000 } });
  const client = hubClient(env.url, { reconnect: { minDelay: 50, maxDelay: 50, jitter: false } });
  try {
    const offsets: number[] = [];
    const gaps: GapInfo[] = [];
    client.on('gap', (g) => gaps.push(g));
    await client.subscribe('seam', (_d, meta) => offsets.push(meta.offset));
    await env.hub.publish('seam', 0);
    await until(() => offsets.length === 1);
    cut(env, client);
    // Publish continuously across the reconnection and recovery.
    let n = 1;
    const deadline = Date.now() + 600;
    while (Date.now() < deadline) {
      await env.hub.publish('seam', n++);
      if (n % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await until(() => offsets.length === n, 3000, `all ${n}`);
    assert.deepEqual(offsets, Array.from({ length: n }, (_, i) => i + 1));
    assert.deepEqual(gaps, []);
  } finally {
    await client.close();
    await env.close();
  }
});

test('hub recovery: history too short → gap event with reason "too old", then live delivery', { timeout: 10_000 }, async () => {
  const env = await startHub({ anonymous: true, history: { size: 10, ttl: 60_000 } });
  const client = hubClient(env.url, { reconnect: { minDelay: 150, maxDelay: 150, jitter: false } });
  try {
    const got: number[] = [];
    const gaps: GapInfo[] = [];
    client.on('gap', (g) => gaps.push(g));
    await client.subscribe('feed', (data) => got.push(data as number));
    await env.hub.publish('feed', 1);
    await until(() => got.length === 1);
    cut(env, client);
    await until(() => client.state === 'reconnecting');
    for (let n = 2; n <= 30; n++) await env.hub.publish('feed', n);
    await until(() => gaps.length === 1, 3000, 'gap');
    assert.equal(gaps[0]!.reason, 'too old');
    assert.equal(gaps[0]!.offset, 30);
    await env.hub.publish('feed', 31);
    await until(() => got.length === 2);
    assert.deepEqual(got, [1, 31]);
    assert.deepEqual(client.position('feed'), { epoch: gaps[0]!.epoch, offset: 31 });
  } finally {
    await client.close();
    await env.close();
  }
});

test('hub recovery: a position from another epoch → recovered false, "epoch changed"', { timeout: 10_000 }, async () => {
  const env = await startHub();
  const raw = await rawClient(env.url);
  try {
    await env.hub.publish('feed', 'a');
    await env.hub.publish('feed', 'b');
    const reply = await raw.request({ type: 'subscribe', topic: 'feed', recover: { offset: 1, epoch: 'not-the-epoch' } });
    assert.equal(reply.type, 'reply');
    const result = reply['result'] as Record<string, unknown>;
    assert.equal(result['recovered'], false);
    assert.equal(result['reason'], 'epoch changed');
    assert.equal(result['offset'], 2);
    // Same epoch, recoverable: the missed publication comes in the reply.
    const raw2 = await rawClient(env.url);
    const ok = await raw2.request({ type: 'subscribe', topic: 'feed', recover: { offset: 1, epoch: result['epoch'] } });
    assert.deepEqual(ok['result'], { topic: 'feed', epoch: result['epoch'], offset: 2, recovered: true, publications: [{ offset: 2, data: 'b' }] });
    // A position beyond the latest offset is not trusted.
    const raw3 = await rawClient(env.url);
    const future = await raw3.request({ type: 'subscribe', topic: 'feed', recover: { offset: 99, epoch: result['epoch'] } });
    assert.equal((future['result'] as Record<string, unknown>)['reason'], 'too old');
    raw2.ws.close();
    raw3.ws.close();
  } finally {
    raw.ws.close();
    await env.close();
  }
});
