// What the two hub clients share, pinned: one set of defaults (the request queue's limit, the
// backoff), one backoff function (the same figures as the engine's `ReconnectingWebSocket`), one
// close-code policy, one error class — and the browser client's module graph stays free of Node
// and is served, file by file, by `duplex serve` under /duplex/ (no bundler needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RECONNECT_DEFAULTS, backoffDelay as engineBackoff } from '../../src/index.js';
import { HubClient, HubClientError } from '../../src/hub/index.js';
import { DuplexClient } from '../../src/browser/client.js';
import { HUB_CLIENT_DEFAULTS, HubCloseCode, backoffDelay, hubShouldReconnect, reconnectsAfterClose } from '../../src/hub/client-reconnect.js';
import { loadConfig } from '../../src/cli/serve-config.js';
import { startServe } from '../../src/cli/serve.js';
import { silentLogger } from '../../src/node/logger.js';
import { CLIENT_KINDS, makeClient } from './client-pair.js';

/** Nothing listens there: the clients keep retrying, their requests wait in the queue. */
const NOWHERE = 'ws://127.0.0.1:9/hub';

for (const kind of CLIENT_KINDS) {
  test(`${kind} client: ${HUB_CLIENT_DEFAULTS.maxQueuedRequests} requests wait for a connection by default; one more is E_QUEUE_FULL`, async () => {
    const client = makeClient(kind, NOWHERE);
    const queued = Array.from({ length: HUB_CLIENT_DEFAULTS.maxQueuedRequests }, (_, i) => client.publish('t', i).catch((error: unknown) => error));
    await assert.rejects(client.publish('t', 'one too many'), (e: unknown) => e instanceof HubClientError && e.code === 'E_QUEUE_FULL');
    await client.close();
    for (const error of await Promise.all(queued)) assert.equal((error as HubClientError).code, 'E_CLOSED');
  });
}

test('the default queue limit is what a default hub accepts waiting from one connection', () => {
  assert.equal(HUB_CLIENT_DEFAULTS.maxQueuedRequests, 256); // Hub's maxPendingRequests default (docs/protocol.md, E_BUSY)
});

test('one backoff: the figures and the formula of the engine’s ReconnectingWebSocket', () => {
  for (const key of ['minDelay', 'maxDelay', 'factor', 'jitter', 'maxAttempts', 'resetAfter'] as const) {
    assert.equal(HUB_CLIENT_DEFAULTS[key], RECONNECT_DEFAULTS[key], key);
  }
  const policies = [{}, { minDelay: 10, maxDelay: 100 }, { minDelay: 1000, factor: 3, jitter: false }, { minDelay: 0, maxDelay: 0 }];
  for (const policy of policies) {
    for (const attempt of [1, 2, 3, 6, 7, 50]) {
      for (const r of [0, 0.25, 0.5, 0.999]) {
        assert.equal(backoffDelay(attempt, policy, () => r), engineBackoff(attempt, policy, () => r), JSON.stringify({ policy, attempt, r }));
      }
    }
  }
  assert.equal(backoffDelay(1, {}, () => 0.999), 999); // the first retry: 0–1 s
  assert.equal(backoffDelay(50, {}, () => 0.999), 29_970); // capped at 30 s
});

test('one close-code policy: 1003 and 1008 stop, 4008 and the rest reconnect', () => {
  assert.equal(HubCloseCode.SlowConsumer, 4008);
  const table: Array<[number, boolean]> = [
    [1000, true],
    [1001, true],
    [1003, false],
    [1006, true],
    [1008, false],
    [1011, true],
    [1012, true],
    [4000, true],
    [4008, true],
  ];
  for (const [code, reconnects] of table) {
    assert.equal(reconnectsAfterClose(code), reconnects, String(code));
    assert.equal(hubShouldReconnect({ type: 'close', code, reason: 'slow consumer' }), reconnects, `${code}, whatever the reason`);
  }
  assert.equal(hubShouldReconnect({ type: 'error', error: new Error('ECONNREFUSED') }), true);
  assert.equal(hubShouldReconnect({ type: 'error', error: new TypeError('Invalid URL') }), false);
  assert.equal(hubShouldReconnect({ type: 'error', error: Object.assign(new Error('bad URL'), { name: 'SyntaxError' }) }), false);
});

test('both clients refuse an inconsistent backoff the same way', () => {
  assert.throws(() => new HubClient(NOWHERE, { reconnect: { minDelay: 100, maxDelay: 10 } }), RangeError);
  assert.throws(() => new DuplexClient(NOWHERE, { minDelay: 100, maxDelay: 10, WebSocket: class {} as never }), RangeError);
});

/** The relative imports of a compiled module, recursively, as paths under dist/src; and every other specifier. */
function moduleGraph(entry: string): { files: string[]; external: string[] } {
  const root = fileURLToPath(new URL('../../src/', import.meta.url));
  const files = new Set<string>();
  const external = new Set<string>();
  const visit = (file: string): void => {
    const path = relative(root, file);
    if (files.has(path)) return;
    files.add(path);
    const code = readFileSync(file, 'utf8');
    for (const match of code.matchAll(/^\s*(?:import|export)\s[^;]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
      const specifier = match[1] ?? match[2] ?? match[3]!;
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
      else external.add(specifier);
    }
  };
  visit(join(root, entry));
  return { files: [...files].sort(), external: [...external].sort() };
}

test('the browser client imports nothing of Node, and duplex serve serves every module it imports', async () => {
  const { files, external } = moduleGraph('browser/client.js');
  assert.deepEqual(external, [], 'no bare or node: specifier');
  assert.ok(files.includes('hub/client-core.js') && files.includes('hub/client-reconnect.js') && files.includes('hub/client-errors.js'));
  for (const file of files) {
    const code = readFileSync(fileURLToPath(new URL(`../../src/${file}`, import.meta.url)), 'utf8');
    assert.doesNotMatch(code, /\b(?:process|Buffer|require)\b\s*[.(]/, `${file} uses a Node global`);
  }
  const handle = await startServe(loadConfig({ port: '0' }, {}), silentLogger);
  try {
    for (const file of [...files, 'client.js']) {
      const response = await fetch(new URL(`duplex/${file}`, handle.url));
      assert.equal(response.status, 200, `/duplex/${file}`);
      assert.match(response.headers.get('content-type') ?? '', /^text\/javascript/);
    }
  } finally {
    await handle.close();
  }
});
