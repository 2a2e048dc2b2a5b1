// The switch for a whole app, as docs/migrating-from-ws.md tells it: npm `overrides` map `ws` to
// duplex-ws-compat (packages/ws-compat), and every library of the app that does `require('ws')`
// gets duplex-ws/ws. Here the app is Socket.IO, server and Node client, both of which load `ws`
// themselves (engine.io, engine.io-client). Both packages are packed and installed offline into a
// throwaway project; a user writes `"ws": "npm:duplex-ws-compat@^0.3.0"`, the test its `file:`
// equivalent, because neither package comes from the registry here. (Socket.IO's own tree is
// resolved as npm would for the user: from the local cache where it can, else the registry.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root } from './surface.js';

function run(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, timeout: 180_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function pack(folder: string, into: string): Promise<string> {
  const out = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', into], folder);
  const [info] = JSON.parse(out) as Array<{ filename: string }>;
  return join(into, info!.filename);
}

/** The range this repository's own devDependencies give a package (so the offline cache has it). */
function devVersion(name: string): string {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  return manifest.devDependencies[name]!;
}

let dir = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'duplex-ws-overrides-'));
  const duplex = await pack(root, dir);
  const compat = await pack(join(root, 'packages/ws-compat'), dir);
  const app = {
    name: 'app',
    version: '1.0.0',
    private: true,
    dependencies: { 'duplex-ws': `file:${duplex}`, 'socket.io': devVersion('socket.io'), 'socket.io-client': devVersion('socket.io-client') },
    overrides: { ws: `file:${compat}` },
  };
  await writeFile(join(dir, 'package.json'), JSON.stringify(app, null, 2));
  // --prefer-offline: the tarballs come from npm's cache (this repository's own install put them
  // there); the package documents of Socket.IO's dependency tree may have to come from the registry.
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], dir);
  await writeFile(
    join(dir, 'app.cjs'),
    `
const { createServer } = require('node:http');
const { dirname } = require('node:path');
const { Server } = require('socket.io');
const { io } = require('socket.io-client');
const ours = require('duplex-ws/ws');
// What engine.io (server) and engine.io-client (Node client) get for require('ws').
const serverWs = require(require.resolve('ws', { paths: [dirname(require.resolve('engine.io'))] }));
const clientWs = require(require.resolve('ws', { paths: [dirname(require.resolve('engine.io-client'))] }));
const http = createServer();
const server = new Server(http, { transports: ['websocket'] });
server.on('connection', (socket) => {
  socket.on('hello', (name, ack) => ack({ hi: name, transport: socket.conn.transport.name, ours: socket.conn.transport.socket instanceof ours }));
});
http.listen(0, '127.0.0.1', () => {
  const client = io('http://127.0.0.1:' + http.address().port, { transports: ['websocket'] });
  client.emit('hello', 'app', (reply) => {
    console.log(JSON.stringify({ serverWs: serverWs === ours, clientWs: clientWs === ours, ...reply }));
    client.close();
    server.close();
  });
});
`,
  );
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('with `overrides: { ws: duplex-ws-compat }`, Socket.IO server and client run on duplex-ws/ws unchanged', async () => {
  const out = await run(process.execPath, ['app.cjs'], dir);
  const line = out.trim().split('\n').pop()!;
  assert.deepEqual(JSON.parse(line), { serverWs: true, clientWs: true, hi: 'app', transport: 'websocket', ours: true });
});
