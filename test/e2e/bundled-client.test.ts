/**
 * `duplex-ws/client` as a web app gets it: imported by package name, bundled by esbuild for the
 * browser, loaded into headless Chromium, talking to `duplex serve` (in-process): it connects,
 * subscribes, publishes and receives its own publication, and sees itself in presence.
 *
 * Without Chromium the test is skipped, except in CI (`CI=true`), where that is a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { launchChromium, skipWithoutChromium } from './chromium.js';
import { loadConfig } from '../../src/cli/serve-config.js';
import { startServe } from '../../src/cli/serve.js';
import { silentLogger } from '../../src/node/logger.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** A static server for the app: `/` (a page loading the bundle) and `/app.js`. */
async function serveApp(bundle: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url === '/app.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    else if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title><script type="module" src="/app.js"></script>');
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const APP = `
import { DuplexClient } from 'duplex-ws/client';
window.runHub = async (url) => {
  const client = new DuplexClient(url, { params: { name: 'bundled' } });
  const got = new Promise((resolve) => {
    client.subscribe('bundle:test', (data, meta) => resolve({ data, offset: meta.offset }));
  });
  await client.publish('bundle:test', { text: 'from a bundle' });
  const message = await got;
  const members = await client.presence('bundle:test');
  client.close();
  return { message, names: members.map((m) => m.info && m.info.name) };
};
`;

test('duplex-ws/client bundled by esbuild runs in Chromium against duplex serve', { skip: skipWithoutChromium, timeout: 60_000 }, async (t) => {
  // Resolved as a bundler resolves any dependency: by package name, through the exports map.
  const bundle = await build({ stdin: { contents: APP, resolveDir: root, loader: 'js' }, bundle: true, write: false, format: 'esm', platform: 'browser', logLevel: 'silent' });
  const code = bundle.outputFiles[0]?.text ?? '';
  assert.match(code, /DuplexClient = class/);

  const handle = await startServe(loadConfig({ port: '0' }, {}), silentLogger);
  // The web app's own server (another origin on this machine) hosts the page and the bundle.
  const app = await serveApp(code);
  const browser = await launchChromium();
  t.after(async () => {
    await browser.close();
    await handle.close();
    await app.close();
  });
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(app.url);
  await page.waitForFunction(() => typeof (window as unknown as { runHub?: unknown }).runHub === 'function');
  const wsUrl = `${handle.url.replace(/^http/, 'ws')}ws`;
  const result = await page.evaluate((url) => (window as unknown as { runHub(url: string): Promise<unknown> }).runHub(url), wsUrl);
  assert.deepEqual(result, { message: { data: { text: 'from a bundle' }, offset: 1 }, names: ['bundled'] });
  assert.deepEqual(errors, []);
});
