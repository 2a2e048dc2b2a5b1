// The package as a stranger gets it: `npm pack`, then `npm install <tarball>` in a throwaway
// project (from the local registry cache; duplex-ws has no dependencies to fetch). The project
// imports every subpath in ESM and CommonJS, type-checks against the published `.d.ts` with
// `strict`, bundles the browser client with esbuild, and runs the `duplex` command. First with
// duplex-ws alone (the optional peers missing: clear errors), then with redis and nats present.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from './surface.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, timeout = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(command: string, args: string[], cwd: string): Promise<string> {
  const result = await run(command, args, cwd);
  assert.equal(result.code, 0, `${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let dir = '';
let tarball = '';
let packed: { files: Array<{ path: string }>; size: number; unpackedSize: number } | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'duplex-consumer-'));
  // The build already ran (npm test builds first): pack what is there, without re-running prepare.
  const out = await ok(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], root);
  const [info] = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }>; size: number; unpackedSize: number }>;
  assert.ok(info);
  packed = info;
  tarball = join(dir, info.filename);
  const app = join(dir, 'app');
  await cp(join(root, 'test/package/consumer'), app, { recursive: true });
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  await ok(npm, ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', tarball], app);
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const app = (): string => join(dir, 'app');

test('the tarball holds what users need and nothing else', () => {
  const files = packed!.files.map((f) => f.path);
  for (const required of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'bin/duplex.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'apps/index.html']) {
    assert.ok(files.includes(required), `${required} is packed`);
  }
  const unwanted = files.filter((f) => /\.map$|\.ts$(?<!\.d\.ts)|^dist\/(test|bench)\/|^src\/|^test\/|^bench\/|^\.ci\//.test(f));
  assert.deepEqual(unwanted, []);
});

test('installing duplex-ws installs no other package', async () => {
  const installed = (await readdir(join(app(), 'node_modules'))).filter((name) => !name.startsWith('.'));
  assert.deepEqual(installed, ['duplex-ws']);
});

test('ESM: every subpath but the brokers imports without any optional peer, and a server and client talk', async () => {
  assert.equal((await ok(process.execPath, ['esm.mjs'], app())).trim(), 'echo esm');
});

test('CommonJS: require() of every subpath but the brokers, and a server and client talk', async () => {
  assert.equal((await ok(process.execPath, ['cjs.cjs'], app())).trim(), 'echo cjs');
});

test("duplex-ws/ws: require() gives the WebSocket class as require('ws') does, and ws-style code runs", async () => {
  assert.equal((await ok(process.execPath, ['ws-cjs.cjs'], app())).trim(), 'ws cjs false');
});

test("duplex-ws/ws: import WebSocket, { WebSocketServer } as from ws's ESM wrapper, and ws-style code runs", async () => {
  assert.equal((await ok(process.execPath, ['ws-esm.mjs'], app())).trim(), 'ws esm false');
});

for (const [subpath, peer] of [
  ['duplex-ws/hub/redis', 'redis'],
  ['duplex-ws/hub/nats', 'nats'],
] as const) {
  test(`${subpath} without ${peer} fails with an error naming the package to install`, async () => {
    for (const [flag, code] of [
      ['--input-type=module', `await import('${subpath}')`],
      ['--input-type=commonjs', `require('${subpath}')`],
    ] as const) {
      const result = await run(process.execPath, [flag, '-e', code], app());
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, new RegExp(`${subpath} needs the npm package "${peer}", which is not installed: npm install ${peer}`));
      assert.match(result.stderr, /ERR_DUPLEX_MISSING_PEER/);
    }
  });
}

test('createJwtVerifier without jose says to install jose', async () => {
  const result = await run(process.execPath, ['--input-type=module', '-e', "import { createJwtVerifier } from 'duplex-ws/hub'; createJwtVerifier({ secret: 'x'.repeat(32) });"], app());
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /needs the npm package "jose", which is not installed: npm install jose/);
});

test('the duplex command: --version, and serve without its peers says what to install', async () => {
  const version = await ok(npm, ['exec', '--offline', '--', 'duplex', '--version'], app());
  const { version: expected } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
  assert.equal(version.trim(), `duplex ${expected}`);
  const serve = await run(join(app(), 'node_modules/.bin/duplex'), ['serve', '--port', '0'], app());
  assert.equal(serve.code, 1);
  assert.match(serve.stderr, /duplex serve needs the npm packages "pino", "prom-client", which are not installed: npm install pino prom-client/);
});

test('the browser client bundles with esbuild for the browser, with no Node built-in', async () => {
  const esbuild = join(root, 'node_modules/.bin/esbuild');
  const out = await ok(esbuild, ['bundle-entry.mjs', '--bundle', '--format=esm', '--platform=browser', '--log-level=warning'], app());
  assert.match(out, /window\.DuplexClient = DuplexClient/);
  assert.match(out, /DuplexClient = class/);
  assert.doesNotMatch(out, /from\s*["']node:|require\(["']node:/);
});

test('with redis and nats installed: every subpath in ESM and CommonJS, and strict type checks in .mts and .cts', async () => {
  // The peers as the user would have them, beside duplex-ws (linked from this repo's node_modules).
  for (const peer of ['redis', 'nats']) await symlink(join(root, 'node_modules', peer), join(app(), 'node_modules', peer), 'dir');
  assert.equal((await ok(process.execPath, ['esm.mjs', '--brokers'], app())).trim(), 'echo esm');
  assert.equal((await ok(process.execPath, ['cjs.cjs', '--brokers'], app())).trim(), 'echo cjs');
  await writeFile(
    join(app(), 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['es2022', 'dom'],
        noEmit: true,
        types: ['node'],
        typeRoots: [join(root, 'node_modules/@types')],
        // Check the published declarations themselves, not only their use.
        skipLibCheck: false,
      },
      files: ['types.mts', 'types.cts', 'ws-types.mts', 'ws-types.cts'],
    }),
  );
  const tsc = await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], app());
  assert.equal(tsc.code, 0, `tsc found errors:\n${tsc.stdout}${tsc.stderr}`);
});
