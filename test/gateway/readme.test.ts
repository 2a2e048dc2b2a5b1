// The README's "Push from your backend in three lines", run as written: the shell block (a
// server with an API key, then curl) and the Python block (standard library, Debian's python3)
// against a server whose subscriber must receive what Python published.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { HubClient, type Json } from '../../src/hub/index.js';
import { silentLogger } from '../../src/node/logger.js';
import { loadConfig } from '../../src/cli/serve-config.js';
import { startServe } from '../../src/cli/serve.js';
import { docBlocks, repoRoot } from '../node/readme-example.js';
import { freePort } from '../hub/cluster-helpers.js';
import { PYTHON } from './python-backend.js';

const run = promisify(execFile);
const HEADING = 'Push from your backend in three lines';

function block(lang: string): string {
  const found = docBlocks('README.md').find((b) => b.lang === lang && b.headings.includes(HEADING));
  assert.ok(found, `README.md has a ${lang} block under "${HEADING}"`);
  return found.code;
}

test('the shell block: a server with an API key, and curl publishes', { timeout: 30_000 }, async () => {
  const port = await freePort();
  // As in a clone (README: `npx duplex` is for where duplex-ws is installed), on a free port.
  const script = block('sh')
    .replaceAll('npx duplex', `node ${repoRoot}bin/duplex.js`)
    .replaceAll('8080', String(port));
  // The server the block starts in the background is stopped however the block ends.
  const wrapped = `set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n${script}\necho\n`;
  const { stdout } = await run('bash', ['-c', wrapped], { timeout: 20_000, env: { ...process.env, DUPLEX_PORT: String(port), DUPLEX_DEMO_FEED: 'false' } });
  const answer = JSON.parse(stdout.split('\n').find((line) => line.startsWith('{"result"'))!) as { result: { offset: number; epoch: string } };
  assert.equal(answer.result.offset, 1);
  assert.equal(typeof answer.result.epoch, 'string');
});

test('the Python block publishes, and a subscriber receives it', { timeout: 30_000 }, async (t) => {
  const key = randomBytes(16).toString('hex');
  const handle = await startServe(loadConfig({ port: '0', 'api-key': [key] }, { DUPLEX_DEMO_FEED: 'false' }), silentLogger);
  const client = new HubClient(handle.wsUrl, { requestTimeout: 5000 });
  t.after(async () => {
    await client.close();
    await handle.close();
  });
  const seen: Json[] = [];
  await client.subscribe('chat:lobby', (data) => void seen.push(data));
  const script = block('python').replaceAll('8080', String(handle.address.port));
  const { stdout } = await run(PYTHON, ['-c', script], { timeout: 20_000, env: { ...process.env, KEY: key } });
  assert.match(stdout, /\{'result': \{'offset': 1, 'epoch': '[^']+'\}\}/);
  for (let i = 0; seen.length === 0 && i < 200; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(seen, [{ name: 'backend', text: 'from Python' }]);
});
