// `duplex --version`, `duplex help`, `--help` on every command and unknown options, as a user
// runs them: one subprocess each, stdout and stderr apart, with the exit code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/duplex.js', import.meta.url));
const PACKAGE = JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { name: string; version: string };

interface Exit {
  code: number | null;
  out: string;
  err: string;
}

function run(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Exit> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, out, err });
    }),
  );
}

test('--version, -V and version print "duplex <version of package.json>" and exit 0, from any directory', { timeout: 20_000 }, async () => {
  assert.equal(PACKAGE.name, 'duplex-ws');
  const elsewhere = mkdtempSync(join(tmpdir(), 'duplex-cwd-'));
  const exits = await Promise.all([run(['--version']), run(['-V']), run(['version']), run(['--version'], { cwd: elsewhere })]);
  for (const exit of exits) {
    assert.equal(exit.code, 0, exit.err);
    assert.equal(exit.out, `duplex ${PACKAGE.version}\n`);
    assert.equal(exit.err, '');
  }
});

const COMMANDS: Array<[string, RegExp[]]> = [
  ['connect', [/^Usage: duplex connect /, /--execute MSG/, /--wait S/, /--show-ping-pong/, /--binary/, /--no-check/, /--insecure/, /--auth USER:PASS/, /--origin ORIGIN/, /\/close \[code \[reason\]\]/]],
  ['echo', [/^Usage: duplex echo /, /--port/, /--max-message-size/]],
  ['serve', [/^Usage: duplex serve /, /--config FILE/, /--broker URL/, /--tls-cert FILE/, /--allowed-origin/]],
  ['bench', [/^Usage: duplex bench /, /--connections N/, /--window N/, /--duration S/, /--json/]],
];

test('every command: --help and -h print its own usage on stdout and exit 0', { timeout: 30_000 }, async () => {
  const runs = COMMANDS.flatMap(([command]) => [
    [command, '--help'],
    [command, '-h'],
    [command, 'ws://127.0.0.1:1/', '--help'], // after other arguments too
    [command, '--frobnicate', '--help'], // help wins over an unknown option
  ]);
  const exits = await Promise.all(runs.map((args) => run(args)));
  exits.forEach((exit, i) => {
    const args = runs[i]!;
    const [, patterns] = COMMANDS.find(([command]) => command === args[0])!;
    assert.equal(exit.code, 0, `${args.join(' ')}: exit ${exit.code}, stderr ${exit.err}`);
    assert.equal(exit.err, '', args.join(' '));
    for (const pattern of patterns) assert.match(exit.out, pattern, `${args.join(' ')} lists ${pattern}`);
  });
});

test('serve --help does not load the serve command (it works without pino installed)', { timeout: 20_000 }, async () => {
  // A copy of the package whose node_modules has no pino: bin/ and dist/ linked, nothing else.
  const root = mkdtempSync(join(tmpdir(), 'duplex-nopino-'));
  const here = fileURLToPath(new URL('../../../', import.meta.url));
  for (const entry of ['bin', 'dist', 'package.json']) symlinkSync(join(here, entry), join(root, entry));
  const bin = join(root, 'bin', 'duplex.js');
  // Node resolves symlinks to their real path by default; keep the link so `pino` is looked up under `root`.
  const child = (args: string[]): Promise<Exit> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, ['--preserve-symlinks', '--preserve-symlinks-main', bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: root });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d));
      p.stderr.on('data', (d: Buffer) => (err += d));
      const killer = setTimeout(() => p.kill('SIGKILL'), 10_000);
      p.on('close', (code) => {
        clearTimeout(killer);
        resolve({ code, out, err });
      });
    });
  const help = await child(['serve', '--help']);
  assert.equal(help.code, 0, help.err);
  assert.match(help.out, /^Usage: duplex serve /);
  // The control: the same layout really lacks the peers, so running serve says what to install.
  const serve = await child(['serve', '--port', '0']);
  assert.equal(serve.code, 1, `serve without pino: exit ${serve.code}, ${serve.err}`);
  assert.match(serve.err, /npm install .*(pino|prom-client)/);
});

test('duplex help and duplex help <command> print usage on stdout and exit 0', { timeout: 20_000 }, async () => {
  const [top, dashdash, connect, serve, unknown, none] = await Promise.all([
    run(['help']),
    run(['--help']),
    run(['help', 'connect']),
    run(['help', 'serve']),
    run(['help', 'frobnicate']),
    run([]),
  ]);
  for (const exit of [top, dashdash]) {
    assert.equal(exit.code, 0);
    assert.match(exit.out, /^Usage: duplex <command>/);
    for (const command of ['connect', 'echo', 'serve', 'bench', 'help', 'version']) assert.match(exit.out, new RegExp(`^  ${command}\\b`, 'm'));
  }
  assert.equal(connect.code, 0);
  assert.match(connect.out, /^Usage: duplex connect /);
  assert.equal(serve.code, 0);
  assert.match(serve.out, /^Usage: duplex serve /);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command "frobnicate"/);
  assert.equal(none.code, 2, 'no command is a usage error');
  assert.equal(none.out, '');
  assert.match(none.err, /^Usage: duplex <command>/);
});

test('unknown options and commands exit 2 with a clear message on stderr and nothing on stdout', { timeout: 30_000 }, async () => {
  const cases: Array<[string[], RegExp]> = [
    [['connect', 'ws://127.0.0.1:1/', '--frobnicate'], /duplex connect: Unknown option '--frobnicate'/],
    [['connect', '-Z', 'ws://127.0.0.1:1/'], /duplex connect: Unknown option '-Z'/],
    [['echo', '--frobnicate'], /duplex echo: Unknown option '--frobnicate'/],
    [['serve', '--frobnicate'], /duplex serve: Unknown option '--frobnicate'/],
    [['bench', 'ws://127.0.0.1:1/', '--frobnicate'], /duplex bench: Unknown option '--frobnicate'/],
    [['frobnicate'], /duplex: unknown command "frobnicate"/],
  ];
  const exits = await Promise.all(cases.map(([args]) => run(args)));
  exits.forEach((exit, i) => {
    const [args, message] = cases[i]!;
    assert.equal(exit.code, 2, `${args.join(' ')}: exit ${exit.code}`);
    assert.match(exit.err, message);
    assert.equal(exit.out, '', args.join(' '));
    if (args[0] !== 'frobnicate') assert.match(exit.err, new RegExp(`Run "duplex ${args[0]} --help"`));
  });
});
