// The gateway as a team would deploy it: `duplex serve` beside a backend written in Python
// (standard library only, test/gateway/backend.py). The backend authenticates every connection
// through the connect hook (from the browser's session cookie), refuses members-only rooms in the
// subscribe hook, answers an RPC, and publishes through the server API; the browser chat demo in
// Chromium receives what the backend published.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { silentLogger } from '../../src/node/logger.js';
import { loadConfig } from '../../src/cli/serve-config.js';
import { startServe, type ServeHandle } from '../../src/cli/serve.js';
import { launchChromium, skipWithoutChromium } from '../e2e/chromium.js';
import { startPythonBackend, type PythonBackend } from './python-backend.js';

const KEY = 'gateway-test-key-0123456789abcdef';

async function openChat(browser: Browser, url: string, room: string, session: string | undefined): Promise<Page> {
  const context = await browser.newContext();
  if (session !== undefined) await context.addCookies([{ name: 'session', value: session, url }]);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (error) => console.error(`[${room}] page error:`, error.message));
  await page.goto(`${url}chat/?room=${room}`);
  await page.fill('#name', 'ignored: the backend names the user');
  await page.click('#join-button');
  return page;
}

test('a Python backend drives the gateway: connect hook, subscribe hook, RPC, server API → Chromium', { skip: skipWithoutChromium, timeout: 90_000 }, async (t) => {
  const backend: PythonBackend = await startPythonBackend();
  const handle: ServeHandle = await startServe(
    loadConfig(
      { port: '0', 'api-key': [KEY], 'hook-connect': backend.hooks.connect, 'hook-subscribe': backend.hooks.subscribe, 'hook-rpc': backend.hooks.rpc },
      { DUPLEX_DEMO_FEED: 'false' },
    ),
    silentLogger,
  );
  const browser = await launchChromium();
  t.after(async () => {
    await browser.close();
    await handle.close();
    await backend.stop();
  });
  await backend.configure(handle.url.replace(/\/$/, ''), KEY);

  const ada = await openChat(browser, handle.url, 'lobby', 's-ada');
  await ada.waitForSelector('#state[data-state="open"]');
  await ada.waitForSelector('.system:has-text("you joined lobby")');

  await t.test('the connect hook got the cookie and named the user: presence shows "Ada"', async () => {
    await ada.waitForSelector('#people :text("Ada")');
    const connects = (await backend.calls()).filter((c) => c.hook === 'connect');
    assert.equal(connects.length, 1);
    assert.equal(connects[0]!.cookie, 'session=s-ada');
    assert.equal(typeof connects[0]!.body['connId'], 'string');
    assert.equal(connects[0]!.body['remoteAddress'], '127.0.0.1');
  });

  await t.test('the backend publishes through the server API and the page shows it', async () => {
    const message = { id: 'py-1', name: 'Backend', text: 'hello from Python', ts: Date.now(), from: 'backend' };
    const { status, body } = await backend.api('publish', { topic: 'chat:lobby', data: message, idempotency_key: 'py-1' });
    assert.equal(status, 200, JSON.stringify(body));
    const result = body['result'] as { offset: number; epoch: string };
    assert.ok(result.offset >= 1);
    await ada.waitForSelector('.msg .text:has-text("hello from Python")');
    // The same idempotency key again: the same publication, not a second message.
    const again = await backend.api('publish', { topic: 'chat:lobby', data: message, idempotency_key: 'py-1' });
    assert.deepEqual(again.body['result'], result);
    await backend.api('publish', { topic: 'chat:lobby', data: { ...message, id: 'py-2', text: 'second' } });
    await ada.waitForSelector('.msg .text:has-text("second")');
    assert.equal(await ada.locator('.msg .text:has-text("hello from Python")').count(), 1);
  });

  await t.test('a wrong API key is refused with 401 and the stable code', async () => {
    const { status, body } = await backend.api('publish', { topic: 'chat:lobby', data: 1 }, 'not-the-key-at-all-000');
    assert.equal(status, 401);
    assert.equal((body['error'] as { code: string }).code, 'E_UNAUTHORIZED');
  });

  await t.test('presence through the server API lists the browser user', async () => {
    const { body } = await backend.api('presence', { topic: 'chat:lobby' });
    const members = (body['result'] as { members: Array<{ user_id: string; info: unknown }> }).members;
    assert.deepEqual(members.map((m) => [m.user_id, m.info]), [['ada', { name: 'Ada' }]]);
  });

  await t.test('an RPC from the page reaches the backend, with the user the connect hook named', async () => {
    const answer = await ada.evaluate(() => (window as unknown as { duplex: { rpc(m: string, p: unknown): Promise<unknown> } }).duplex.rpc('whoami', { n: 1 }));
    assert.deepEqual(answer, { user: 'ada', params: { n: 1 } });
    // The chat's history comes from the built-in RPC, served in-process.
    const history = (await ada.evaluate(() => (window as unknown as { duplex: { rpc(m: string, p: unknown): Promise<unknown> } }).duplex.rpc('duplex.history', { topic: 'chat:lobby', limit: 5 }))) as { publications: unknown[] };
    assert.equal(history.publications.length, 2);
  });

  await t.test('a members-only room is refused by the subscribe hook, and the page says so', async () => {
    const bob = await openChat(browser, handle.url, 'secret', 's-bob');
    await bob.waitForSelector('.system.bad:has-text("members only")');
    // Asked for the history RPC (reading is reading) and for the subscribe itself.
    const subscribes = (await backend.calls()).filter((c) => c.hook === 'subscribe' && c.body['topic'] === 'chat:secret');
    assert.equal(subscribes.length, 2);
    assert.deepEqual(subscribes.map((c) => c.body['user']), ['bob', 'bob']);
    await bob.context().close();
  });

  await t.test('a browser without a session is refused by the connect hook and stops (1008)', async () => {
    const stranger = await openChat(browser, handle.url, 'lobby', undefined);
    await stranger.waitForSelector('#state[data-state="closed"]');
    await stranger.context().close();
  });

  await t.test('disconnect through the server API closes the user with the code given', async () => {
    const { status } = await backend.api('disconnect', { user: 'ada', code: 4000, reason: 'logged out' });
    assert.equal(status, 200);
    await ada.waitForSelector('.system:has-text("connection lost (4000)")');
  });
});
