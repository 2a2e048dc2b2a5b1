// `import 'duplex-ws'` loads what a WebSocket needs and nothing else: none of the optional peers
// (jose, pino, prom-client, redis, nats) — all installed here as devDependencies, so a static
// import of one anywhere in the graph would load it — and each subpath loads only its own peer.
// Each case runs in a fresh `node`, with module hooks reporting every ES module resolved, plus
// CommonJS's module cache (the brokers `require` their peer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { root, specifier } from './surface.js';

const hooks = new URL('./import-hooks.js', import.meta.url).href;
const PEERS = ['jose', 'pino', 'prom-client', 'redis', 'nats'];

/** The module URLs and files a fresh process loads for `import(spec)`. */
function loadedBy(spec: string): Promise<string[]> {
  const script = `
    import { register, createRequire } from 'node:module';
    import { MessageChannel } from 'node:worker_threads';
    const { port1, port2 } = new MessageChannel();
    const urls = [];
    port1.on('message', (url) => urls.push(url));
    register(${JSON.stringify(hooks)}, { data: { port: port2 }, transferList: [port2] });
    await import(${JSON.stringify(spec)});
    await new Promise((resolve) => setTimeout(resolve, 100)); // the hooks' last messages
    port1.close();
    const cjs = Object.keys(createRequire(process.cwd() + '/').cache);
    process.stdout.write(JSON.stringify([...urls, ...cjs]));
  `;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: root, timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${spec}: ${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as string[]);
    });
  });
}

/** The peers among `loaded`, by package name. */
function peersIn(loaded: string[]): string[] {
  const found = new Set<string>();
  for (const entry of loaded) {
    for (const peer of PEERS) {
      if (entry.includes(`/node_modules/${peer}/`) || (peer === 'redis' && entry.includes('/node_modules/@redis/'))) found.add(peer);
    }
  }
  return [...found].sort();
}

const cases: Array<[subpath: string, peers: string[]]> = [
  ['.', []],
  ['./protocol', []],
  ['./whatwg', []],
  ['./hub', []],
  ['./client', []],
  ['./hub/redis', ['redis']],
  ['./hub/nats', ['nats']],
  ['./hub/workers', []],
];

for (const [subpath, peers] of cases) {
  test(`${specifier(subpath)} loads ${peers.length === 0 ? 'no optional peer' : `only ${peers.join(', ')}`}`, async () => {
    const loaded = await loadedBy(specifier(subpath));
    assert.ok(loaded.some((entry) => entry.includes('/dist/src/')), 'the hooks saw the package load');
    assert.deepEqual(peersIn(loaded), peers);
  });
}

test('duplex-ws loads no hub module and no CLI module', async () => {
  const loaded = await loadedBy('duplex-ws');
  assert.deepEqual(
    loaded.filter((entry) => /\/dist\/src\/(hub|cli|browser)\//.test(entry)),
    [],
  );
});

test('duplex-ws/protocol loads no Node built-in (the engine is sans-I/O)', async () => {
  const loaded = await loadedBy('duplex-ws/protocol');
  assert.deepEqual(
    loaded.filter((entry) => entry.startsWith('node:')),
    [],
  );
});
