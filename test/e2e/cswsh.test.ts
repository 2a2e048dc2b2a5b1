/**
 * Cross-site WebSocket hijacking (CSWSH), in a real browser. A WebSocket handshake is not
 * covered by the same-origin policy: any page may open `ws://` to any server, and the browser
 * sends the victim's cookies along. The only thing a server learns of the page is the `Origin`
 * header, which the browser sets and page scripts cannot forge. So the server must check it.
 *
 * Setup, all on loopback: a duplex `WebSocketServer` whose `/secret` route sends a secret on
 * open and echoes; the legitimate app page at http://127.0.0.1:<appPort>/; and an attacker's
 * page served by another server, reached as http://localhost:<evilPort>/ and
 * http://127.0.0.1:<evilPort>/ (another host name, or only another port: both are other origins).
 * Every page runs `new WebSocket('ws://127.0.0.1:<wsPort>/secret')` and records what happened.
 *
 * Headless Chromium (Debian's `chromium`, driven by `playwright-core`), as in browser.test.ts:
 * without Chromium the test is skipped, except in CI (`CI=true`), where that is a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser } from 'playwright-core';
import { launchChromium, skipWithoutChromium } from './chromium.js';
import { WebSocketServer } from '../../src/index.js';
import type { Logger, LogFields } from '../../src/node/logger.js';


const SECRET = 'account-balance:4711';

/** What a page saw of its WebSocket. */
interface Outcome {
  opened: boolean;
  error: boolean;
  messages: string[];
  closeCode: number | null;
  origin: string;
}

/**
 * The page of the app and of the attacker alike: the same script, so that only the origin
 * differs. It opens the socket given in `?ws=`, sends a message once open, and records events
 * until the socket closes (it closes after the echo itself).
 */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>running</title></head>
<body>
<script>
  const url = new URLSearchParams(location.search).get('ws');
  const out = { opened: false, error: false, messages: [], closeCode: null, origin: location.origin };
  const ws = new WebSocket(url);
  ws.onopen = () => { out.opened = true; ws.send('hello from ' + location.origin); };
  ws.onmessage = (event) => {
    out.messages.push(String(event.data));
    if (out.messages.length === 2) ws.close(1000, 'done');
  };
  ws.onerror = () => { out.error = true; };
  ws.onclose = (event) => { out.closeCode = event.code; window.outcome = out; document.title = 'done'; };
</script>
</body></html>`;

/** A plain HTTP server serving PAGE at every path, on 127.0.0.1 (ephemeral port). */
async function pageServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

function closeHttp(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A logger that keeps the `warn` lines (a refused handshake logs one). */
function recordingLogger(): { logger: Logger; warnings: Array<{ fields: LogFields; message: string }> } {
  const warnings: Array<{ fields: LogFields; message: string }> = [];
  const noop = (): void => {};
  return { warnings, logger: { debug: noop, info: noop, error: noop, warn: (fields, message) => void warnings.push({ fields, message }) } };
}

/**
 * A server with a `/secret` route that reveals data: the secret on open, then an echo. Each
 * connection's `Origin` (as the upgrade hook saw it) is kept in `origins`.
 */
async function secretServer(options: { origins?: string[]; logger: Logger }): Promise<{ server: WebSocketServer<unknown>; port: number; seen: string[] }> {
  const seen: string[] = [];
  const server = new WebSocketServer<unknown>({ ...(options.origins ? { origins: options.origins } : {}), logger: options.logger, pingInterval: 0 });
  server.route('/secret', {
    upgrade: (ctx) => {
      seen.push(ctx.origin ?? '(none)');
      return undefined;
    },
    handlers: {
      open: (ws) => void ws.send(SECRET),
      message: (ws, data) => void ws.send(`echo:${String(data)}`),
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port, seen };
}

/** Open `pageUrl` in a fresh context (no shared cookies or cache) and wait for the socket's outcome. */
async function visit(browser: Browser, pageUrl: string): Promise<Outcome> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(5000);
    await page.goto(pageUrl);
    await page.waitForFunction(() => document.title === 'done');
    return await page.evaluate(() => (window as unknown as { outcome: Outcome }).outcome);
  } finally {
    await context.close();
  }
}

test('cross-site WebSocket hijacking in headless Chromium: the origin allow-list stops a page on another origin', { skip: skipWithoutChromium, timeout: 20_000 }, async (t) => {
  const app = await pageServer();
  const evil = await pageServer();
  const appOrigin = `http://127.0.0.1:${app.port}`;
  const guardedLog = recordingLogger();
  const openLog = recordingLogger();
  const guarded = await secretServer({ origins: [appOrigin], logger: guardedLog.logger });
  const unguarded = await secretServer({ logger: openLog.logger });
  const browser = await launchChromium();
  t.after(async () => {
    await browser.close();
    await Promise.all([guarded.server.close(1001, 'test over', 500), unguarded.server.close(1001, 'test over', 500)]);
    await Promise.all([closeHttp(app.server), closeHttp(evil.server)]);
  });
  const guardedWs = encodeURIComponent(`ws://127.0.0.1:${guarded.port}/secret`);
  const unguardedWs = encodeURIComponent(`ws://127.0.0.1:${unguarded.port}/secret`);
  const attackerPages = [`http://localhost:${evil.port}/`, `http://127.0.0.1:${evil.port}/`];

  await t.test('origins set: the app page (a listed origin) connects and gets the data', async () => {
    const outcome = await visit(browser, `${appOrigin}/?ws=${guardedWs}`);
    assert.equal(outcome.origin, appOrigin);
    assert.deepEqual(outcome, { opened: true, error: false, messages: [SECRET, `echo:hello from ${appOrigin}`], closeCode: 1000, origin: appOrigin });
    assert.deepEqual(guarded.seen, [appOrigin], 'the browser sent the app origin');
  });

  await t.test('origins set: an attacker page on another origin cannot connect; the server refuses it with 403 and logs it', async () => {
    for (const page of attackerPages) {
      const outcome = await visit(browser, `${page}?ws=${guardedWs}`);
      assert.notEqual(outcome.origin, appOrigin);
      assert.deepEqual(
        { opened: outcome.opened, error: outcome.error, messages: outcome.messages, closeCode: outcome.closeCode },
        { opened: false, error: true, messages: [], closeCode: 1006 },
        `the socket of ${outcome.origin} must fail without any data`,
      );
    }
    const stats = guarded.server.stats();
    assert.equal(stats.rejections[403], attackerPages.length, 'one 403 per attacker page');
    assert.equal(stats.connectionsTotal, 1, 'only the app page ever got a connection');
    assert.deepEqual(guarded.seen, [appOrigin], 'the upgrade hook never ran for the attacker');
    const refusals = guardedLog.warnings.filter((w) => w.fields['status'] === 403);
    assert.deepEqual(
      refusals.map((w) => [w.fields['origin'], w.message]),
      attackerPages.map((p) => [p.slice(0, -1), `handshake rejected: origin ${p.slice(0, -1)} is not allowed`]),
    );
  });

  await t.test('origins not set (the control): the same attacker pages connect and read the secret', async () => {
    for (const page of attackerPages) {
      const origin = page.slice(0, -1);
      const outcome = await visit(browser, `${page}?ws=${unguardedWs}`);
      assert.deepEqual(outcome, { opened: true, error: false, messages: [SECRET, `echo:hello from ${origin}`], closeCode: 1000, origin });
    }
    assert.deepEqual(unguarded.seen, attackerPages.map((p) => p.slice(0, -1)), 'the browser sent the attacker origins');
    assert.equal(unguarded.server.stats().rejections[403] ?? 0, 0);
    assert.equal(openLog.warnings.length, 0);
  });
});
