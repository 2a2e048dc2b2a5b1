// The CLI as a user runs it: `duplex echo` and `duplex connect --echo` as subprocesses,
// driven by the npm `ws` package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { WebSocketServer as WsServer, WebSocket as WsClient, type RawData } from 'ws';

const BIN = fileURLToPath(new URL('../../../bin/duplex.js', import.meta.url));

function run(args: string[]): { child: ChildProcess; exit: Promise<[number | null, string, string]> } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000); // a hung CLI fails the test instead of hanging it
  const exit = new Promise<[number | null, string, string]>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve([code, out, err]);
    }),
  );
  return { child, exit };
}

function firstLine(child: ChildProcess, stream: 'stdout' | 'stderr' = 'stdout'): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    child[stream]!.on('data', (d: Buffer) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing`)));
  });
}

test('duplex echo: prints its URL, echoes text and binary with deflate, and closes clients with 1001 on SIGTERM', async () => {
  const { child, exit } = run(['echo', '--port', '0']);
  const line = await firstLine(child);
  const match = /^listening on (ws:\/\/127\.0\.0\.1:(\d+)\/)$/.exec(line);
  assert.ok(match, `unexpected first line: ${line}`);
  const client = new WsClient(match[1] + 'any/path', { perMessageDeflate: true });
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  assert.match(client.extensions, /permessage-deflate/);
  const echoes: Array<[string, boolean]> = [];
  client.on('message', (data: RawData, isBinary: boolean) => echoes.push([(data as Buffer).toString('hex'), isBinary]));
  const big = 'x'.repeat(100_000);
  client.send('hello');
  client.send(Buffer.from([0, 1, 2, 255]));
  client.send(big);
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (echoes.length === 3) {
        clearInterval(check);
        resolve();
      }
    }, 5);
  });
  assert.deepEqual(echoes, [
    [Buffer.from('hello').toString('hex'), false],
    ['000102ff', true],
    [Buffer.from(big).toString('hex'), false],
  ]);
  const closed = new Promise<number>((resolve) => client.once('close', (code: number) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await closed, 1001);
  const [code] = await exit;
  assert.equal(code, 0);
});

test('duplex echo: a bad flag is a usage error with exit code 2', async () => {
  const { exit } = run(['echo', '--port', 'banana']);
  const [code, , err] = await exit;
  assert.equal(code, 2);
  assert.match(err, /--port must be an integer/);
});

test('duplex connect --echo: echoes until the server closes, then exits 0', async () => {
  const server = new WsServer({ port: 0, host: '127.0.0.1', perMessageDeflate: true });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as { port: number };
  const received: string[] = [];
  server.on('connection', (ws) => {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      received.push(`${isBinary ? 'b' : 't'}:${(data as Buffer).toString('hex')}`);
      if (received.length === 3) ws.close(1000, 'enough');
    });
    ws.send('one');
    ws.send(Buffer.from([9, 8, 7]));
    ws.send('ü'.repeat(3000));
  });
  const { exit } = run(['connect', `ws://127.0.0.1:${port}/`, '--echo']);
  const [code, out, err] = await exit;
  assert.equal(code, 0);
  assert.equal(out, '', '--echo prints nothing on stdout');
  assert.match(err, /closed: 1000 enough/);
  assert.deepEqual(received, [
    `t:${Buffer.from('one').toString('hex')}`,
    'b:090807',
    `t:${Buffer.from('ü'.repeat(3000)).toString('hex')}`,
  ]);
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('duplex connect: a refused handshake exits non-zero with the status and body', async () => {
  const http = createServer((_req, res) => {
    res.writeHead(403, { 'Content-Type': 'text/plain' });
    res.end('no entry');
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
  const { port } = http.address() as { port: number };
  const { exit } = run(['connect', `ws://127.0.0.1:${port}/`, '--echo']);
  const [code, , err] = await exit;
  assert.equal(code, 1);
  assert.match(err, /403/);
  assert.match(err, /no entry/);
  http.close();
});

test('duplex connect: interactive mode sends typed lines; replies on stdout (raw, stdout is a pipe), status on stderr', async () => {
  const server = new WsServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as { port: number };
  server.on('connection', (ws) => ws.on('message', (data: RawData) => ws.send(`echo:${String(data)}`)));
  const { child, exit } = run(['connect', `ws://127.0.0.1:${port}/`]);
  assert.match(await firstLine(child, 'stderr'), /^connected to ws:\/\/127\.0\.0\.1:\d+\/$/);
  child.stdin!.write('hi there\n');
  await firstLine(child);
  child.stdin!.write('/close 1000 bye\n');
  const [code, out, err] = await exit;
  assert.equal(code, 0);
  assert.equal(out, 'echo:hi there\n');
  assert.match(err, /closed: 1000 bye/);
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
