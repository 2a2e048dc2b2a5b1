/**
 * The demo apps in a real browser: headless Chromium (Debian's `chromium`, driven by
 * `playwright-core`) against `duplex serve` run in-process. Two pages chat, see each other in
 * presence and typing; one is cut off (offline, and its socket killed by the server) while the
 * other sends, and receives what it missed when it comes back; the dashboard updates live.
 * Screenshots go to test-output/screenshots/.
 *
 * Without Chromium the test is skipped, except in CI (`CI=true`), where that is a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium, skipWithoutChromium } from './chromium.js';
import { loadConfig } from '../../src/cli/serve-config.js';
import { startServe, type ServeHandle } from '../../src/cli/serve.js';
import { silentLogger } from '../../src/node/logger.js';

const SHOTS = join(process.cwd(), 'test-output', 'screenshots');

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

async function texts(page: Page): Promise<string[]> {
  return page.locator('#messages .msg .text').allTextContents();
}

async function joinChat(browser: Browser, url: string, name: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 640 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (error) => console.error(`[${name}] page error:`, error.message));
  await page.goto(`${url}chat/?room=e2e`);
  await page.fill('#name', name);
  await page.click('#join-button');
  await page.waitForSelector('#state[data-state="open"]');
  await page.waitForSelector('.system:has-text("you joined e2e")');
  return page;
}

test('demo apps in headless Chromium', { skip: skipWithoutChromium, timeout: 60_000 }, async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const handle: ServeHandle = await startServe(loadConfig({ port: '0' }, {}), silentLogger);
  const browser = await launchChromium();
  t.after(async () => {
    await browser.close();
    await handle.close();
  });
  const url = handle.url;

  await t.test('the index page links both demos', async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    await page.goto(url);
    assert.equal(await page.locator('#chat-link').getAttribute('href'), '/chat/');
    assert.equal(await page.locator('#dashboard-link').getAttribute('href'), '/dashboard/');
    assert.match(await page.textContent('.wire') ?? '', /History offsets/);
    await shot(page, 'index');
    await page.close();
  });

  const ada = await joinChat(browser, url, 'Ada');
  const bob = await joinChat(browser, url, 'Bob');

  await t.test('two pages see each other in presence', async () => {
    await ada.waitForSelector('#people li:has-text("Bob")');
    await bob.waitForSelector('#people li:has-text("Ada")');
    assert.equal(await ada.textContent('#online-count'), '2');
  });

  await t.test('messages and typing indicators arrive live in the other page', async () => {
    await ada.fill('#text', 'hello from Ada');
    await bob.waitForSelector('#typing:has-text("Ada is typing")');
    await ada.press('#text', 'Enter');
    await bob.waitForSelector('.msg .text:text-is("hello from Ada")');
    await bob.fill('#text', 'hi Ada, Bob here');
    await bob.press('#text', 'Enter');
    await ada.waitForSelector('.msg .text:text-is("hi Ada, Bob here")');
    await ada.waitForSelector('.msg.mine .text:text-is("hello from Ada")');
    await shot(ada, 'chat-ada');
    await shot(bob, 'chat-bob');
  });

  await t.test('a page cut off catches up on what it missed, in order', async () => {
    // The network goes away (navigator.onLine = false) and the server drops the socket (1006).
    await bob.context().setOffline(true);
    const connId = await bob.evaluate(() => (window as unknown as { duplex: { connId: string } }).duplex.connId);
    let killed = 0;
    for (const ws of handle.server.clients) {
      if (handle.hub.connectionId(ws) === connId) {
        ws.terminate();
        killed++;
      }
    }
    assert.equal(killed, 1, `the server should hold Bob's connection ${connId}`);
    await bob.waitForSelector('#state[data-state="reconnecting"]');
    await ada.waitForSelector('.system:has-text("Bob left")');
    for (const n of [1, 2, 3]) {
      await ada.fill('#text', `missed ${n}`);
      await ada.press('#text', 'Enter');
    }
    // All three acknowledged by the server (no bubble still pending).
    await ada.waitForSelector('.msg.mine .text:text-is("missed 3")');
    await ada.waitForFunction(() => document.querySelectorAll('.msg.pending').length === 0);
    assert.ok(!(await texts(bob)).includes('missed 1'), 'Bob must not get messages while offline');
    await shot(bob, 'chat-bob-offline');

    await bob.context().setOffline(false);
    await bob.waitForSelector('#state[data-state="open"]');
    await bob.waitForSelector('.msg .text:text-is("missed 3")');
    await bob.waitForSelector('.system:has-text("caught up on 3 missed messages")');
    const seen = await texts(bob);
    const missed = seen.filter((text) => text.startsWith('missed '));
    assert.deepEqual(missed, ['missed 1', 'missed 2', 'missed 3'], 'each missed message once, in order');
    assert.equal(await bob.locator('.msg.recovered').count(), 3, 'recovered from history, not live');
    await ada.waitForSelector('#people li:has-text("Bob")');
    // And live traffic goes on.
    await ada.fill('#text', 'welcome back');
    await ada.press('#text', 'Enter');
    await bob.waitForSelector('.msg .text:text-is("welcome back")');
    await shot(bob, 'chat-bob-recovered');
  });

  await t.test('the dashboard shows live updates', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 860 } });
    page.setDefaultTimeout(10_000);
    await page.goto(`${url}dashboard/`);
    await page.waitForSelector('#state[data-state="open"]');
    await page.waitForSelector('#table tr[data-series="DPLX"] td.updated:not(:empty)');
    const first = await page.textContent('#total');
    await page.waitForFunction((before) => document.getElementById('total')?.textContent !== before, first);
    await page.waitForFunction(() => Number(document.getElementById('rate')?.textContent) > 0);
    assert.equal(await page.locator('#table tr').count(), 4);
    await page.waitForTimeout(1500); // let the chart draw a few seconds of data
    await shot(page, 'dashboard');
    await page.close();
  });
});
