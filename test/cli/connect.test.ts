// `duplex connect` as a user runs it: a subprocess with stdin from a file or a pipe and stdout
// to a pipe, against in-process servers on 127.0.0.1 (the library's WebSocketServer, whose
// `upgrade` hook shows the request headers). Every run is bounded by a kill timer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from '../../src/index.js';
import { selfSignedCertificate } from '../node/server-helpers.js';

const BIN = fileURLToPath(new URL('../../../bin/duplex.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'duplex-connect-'));

interface Exit {
  code: number | null;
  out: Buffer;
  err: string;
  ms: number;
}

/** Run `duplex connect …`; `stdin` is a file to read from, text to pipe in (then EOF), or left open. */
function run(args: string[], stdin: { file: string } | { text: string } | 'open' = 'open', onSpawn?: (child: ChildProcess) => void): Promise<Exit> {
  const started = Date.now();
  const fd = typeof stdin === 'object' && 'file' in stdin ? openSync(stdin.file, 'r') : undefined;
  const child = spawn(process.execPath, [BIN, 'connect', ...args], { stdio: [fd ?? 'pipe', 'pipe', 'pipe'] });
  if (fd !== undefined) closeSync(fd);
  if (typeof stdin === 'object' && 'text' in stdin) child.stdin!.end(stdin.text);
  onSpawn?.(child);
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, out: Buffer.concat(out), err, ms: Date.now() - started });
    }),
  );
}

interface Seen {
  headers: IncomingMessage['headers'];
  messages: Array<{ binary: boolean; hex: string }>;
}

/** An echo server (same type and bytes back) that records the handshake headers and every message. */
async function echoServer(options: { tls?: { cert: Buffer; key: Buffer }; onOpen?: (ws: { ping(data?: string): void }) => void } = {}): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = new WebSocketServer<Seen>({
    textAsBuffer: true,
    ...(options.tls ? { tls: options.tls } : {}),
    upgrade: ({ headers }) => {
      const entry: Seen = { headers, messages: [] };
      seen.push(entry);
      return entry;
    },
    handlers: {
      open: (ws) => options.onOpen?.(ws),
      message(ws, data, isBinary) {
        ws.data.messages.push({ binary: isBinary, hex: (data as Buffer).toString('hex') });
        if (isBinary) ws.send(data as Buffer);
        else ws.sendText(data as Buffer);
      },
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { url: `${options.tls ? 'wss' : 'ws'}://127.0.0.1:${port}/`, seen, close: () => server.close() };
}

const hex = (text: string): string => Buffer.from(text).toString('hex');

test('stdin from a file, stdout to a pipe: exactly the echoed lines on stdout, status on stderr, exit 0', { timeout: 20_000 }, async () => {
  const server = await echoServer();
  try {
    const lines = ['first', '{"json": true}', 'ünïcödé', '', 'last line'];
    const input = join(dir, 'in.txt');
    writeFileSync(input, lines.join('\n') + '\n');
    const exit = await run([server.url], { file: input });
    assert.equal(exit.code, 0, exit.err);
    assert.equal(exit.out.toString(), lines.join('\n') + '\n', 'only the received messages, one per line');
    assert.match(exit.err, /^connected to ws:\/\/127\.0\.0\.1:\d+\//m);
    assert.match(exit.err, /^closed: 1000$/m);
    assert.deepEqual(
      server.seen[0]!.messages,
      lines.map((line) => ({ binary: false, hex: hex(line) })),
      'each line went as one text message',
    );
  } finally {
    await server.close();
  }
});

test('many lines through a pipe: every reply arrives before the close, in order', { timeout: 30_000 }, async () => {
  const server = await echoServer();
  try {
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}`);
    const exit = await run([server.url], { text: lines.join('\n') + '\n' });
    assert.equal(exit.code, 0, exit.err);
    assert.equal(exit.out.toString(), lines.join('\n') + '\n');
  } finally {
    await server.close();
  }
});

test('-x a -x b -w 1 sends both once connected, prints both answers, then closes with 1000 and exits 0 (stdin not read)', { timeout: 20_000 }, async () => {
  const server = await echoServer();
  try {
    const exit = await run(['-x', 'a', '-x', 'b', '-w', '1', server.url]); // stdin stays open: -x must not wait for it
    assert.equal(exit.code, 0, exit.err);
    assert.equal(exit.out.toString(), 'a\nb\n');
    assert.match(exit.err, /^closed: 1000$/m);
    assert.ok(exit.ms >= 1000, `waited --wait 1 s before closing (took ${exit.ms} ms)`);
    assert.deepEqual(server.seen[0]!.messages, [
      { binary: false, hex: hex('a') },
      { binary: false, hex: hex('b') },
    ]);
  } finally {
    await server.close();
  }
});

test('-c URL is the URL as a flag; a URL twice or none is a usage error', { timeout: 20_000 }, async () => {
  const server = await echoServer();
  try {
    const exit = await run(['-c', server.url, '-x', 'via -c', '-w', '0']);
    assert.equal(exit.code, 0, exit.err);
    assert.equal(exit.out.toString(), 'via -c\n');
    const [twice, none, scheme] = await Promise.all([run(['-c', server.url, server.url]), run(['-x', 'a']), run(['http://127.0.0.1:1/'])]);
    assert.equal(twice.code, 2);
    assert.match(twice.err, /connect takes one URL, got 2/);
    assert.equal(none.code, 2);
    assert.match(none.err, /connect needs a URL/);
    assert.equal(scheme.code, 2);
    assert.match(scheme.err, /must start with ws:\/\/ or wss:\/\//);
  } finally {
    await server.close();
  }
});

test('-b sends lines as binary messages (the server sees binary) and prints binary replies as raw bytes; without -b they are hex', { timeout: 20_000 }, async () => {
  const server = await echoServer();
  try {
    const withB = await run(['-b', server.url], { text: 'bin one\nbin two\n' });
    assert.equal(withB.code, 0, withB.err);
    assert.deepEqual(server.seen[0]!.messages, [
      { binary: true, hex: hex('bin one') },
      { binary: true, hex: hex('bin two') },
    ]);
    assert.equal(withB.out.toString(), 'bin one\nbin two\n');
    const withX = await run(['-b', '-x', 'x bin', '-w', '0', server.url]);
    assert.equal(withX.code, 0, withX.err);
    assert.deepEqual(server.seen[1]!.messages, [{ binary: true, hex: hex('x bin') }], '-x messages are binary with -b too');
    // A server that sends binary to a client without -b: one hex line per message.
    const binaryServer = new WebSocketServer({ handlers: { open: (ws) => (ws.send(Buffer.from([0, 1, 0xfe, 0xff])), ws.send('text'), ws.close(1000, 'done')) } });
    const { port } = await binaryServer.listen(0, '127.0.0.1');
    try {
      const plain = await run([`ws://127.0.0.1:${port}/`]);
      assert.equal(plain.code, 0, plain.err);
      assert.equal(plain.out.toString(), '0001feff\ntext\n');
      assert.match(plain.err, /closed: 1000 done/);
    } finally {
      await binaryServer.close();
    }
  } finally {
    await server.close();
  }
});

test('-P shows the pong after /ping and the server\'s pings on stderr; without -P neither is printed', { timeout: 20_000 }, async () => {
  const server = await echoServer({ onOpen: (ws) => ws.ping('from server') });
  try {
    const shown = await run(['-P', server.url], { text: '/ping hello\n' });
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.err, /^pong hello$/m);
    assert.match(shown.err, /^ping from server$/m);
    assert.equal(shown.out.toString(), '', 'control frames never go to stdout');
    const hidden = await run([server.url], { text: '/ping hello\n' });
    assert.equal(hidden.code, 0, hidden.err);
    assert.doesNotMatch(hidden.err, /pong|ping/);
    assert.equal(hidden.out.toString(), '');
    assert.deepEqual(server.seen[0]!.messages, [], '/ping is a command, not a message');
  } finally {
    await server.close();
  }
});

test('slash commands: /close CODE REASON closes with them; //text sends "/text"; other lines are sent as they are', { timeout: 20_000 }, async () => {
  let closed: [number, string] | undefined;
  const server = new WebSocketServer({
    textAsBuffer: true,
    handlers: {
      message: (ws, data) => void ws.sendText(data as Buffer),
      close: (_ws, code, reason) => (closed = [code, reason]),
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  try {
    const exit = await run([`ws://127.0.0.1:${port}/`], { text: '//text\n/pingpong\n/close 4000 see you\nafter close\n' });
    assert.equal(exit.code, 0, exit.err);
    assert.equal(exit.out.toString(), '/text\n/pingpong\n');
    assert.match(exit.err, /closed: 4000 see you/);
    assert.deepEqual(closed, [4000, 'see you']);
  } finally {
    await server.close();
  }
});

test('--auth user:pass arrives as Authorization: Basic, -o as Origin, -H and -s as given', { timeout: 20_000 }, async () => {
  const server = await echoServer();
  try {
    const exit = await run(['--auth', 'alice:s3cr:et', '-o', 'https://app.example', '-H', 'X-Trace: 42', server.url, '-x', 'hi', '-w', '0']);
    assert.equal(exit.code, 0, exit.err);
    const { headers } = server.seen[0]!;
    assert.equal(headers.authorization, `Basic ${Buffer.from('alice:s3cr:et').toString('base64')}`);
    assert.equal(headers.origin, 'https://app.example');
    assert.equal(headers['x-trace'], '42');
    // Without the flags, no such headers.
    const bare = await run([server.url, '-x', 'hi', '-w', '0']);
    assert.equal(bare.code, 0, bare.err);
    assert.equal(server.seen[1]!.headers.authorization, undefined);
    assert.equal(server.seen[1]!.headers.origin, undefined);
    // -H "Origin: …" is the same as -o (as in wscat).
    const viaHeader = await run([server.url, '-H', 'Origin: https://other.example', '-x', 'hi', '-w', '0']);
    assert.equal(viaHeader.code, 0, viaHeader.err);
    assert.equal(server.seen[2]!.headers.origin, 'https://other.example');
    const [badAuth, both, host] = await Promise.all([
      run([server.url, '--auth', 'no-colon']),
      run([server.url, '--auth', 'a:b', '-H', 'Authorization: Bearer x']),
      run([server.url, '-H', 'Host: example.com']),
    ]);
    assert.equal(badAuth.code, 2);
    assert.match(badAuth.err, /--auth must look like "user:password"/);
    assert.equal(both.code, 2);
    assert.match(both.err, /one of --auth and -H "Authorization/);
    assert.equal(host.code, 2);
    assert.match(host.err, /cannot set the Host header/);
    assert.equal(server.seen.length, 3, 'usage errors never connect');
  } finally {
    await server.close();
  }
});

test('a refused handshake: exit 1 with the status and body on stderr, nothing on stdout', { timeout: 20_000 }, async () => {
  const http = createServer((_req, res) => {
    res.writeHead(401, { 'Content-Type': 'text/plain' });
    res.end('who are you');
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
  try {
    const { port } = http.address() as AddressInfo;
    const exit = await run([`ws://127.0.0.1:${port}/`], { text: 'never sent\n' });
    assert.equal(exit.code, 1);
    assert.match(exit.err, /handshake failed: server answered 401.*who are you/);
    assert.equal(exit.out.length, 0);
  } finally {
    http.close();
  }
});

test('-w bounds the wait for the closing handshake after stdin ends: a server that never answers → 1006, exit 1', { timeout: 20_000 }, async () => {
  // Accepts the upgrade, then ignores every frame (no close reply).
  const sockets: Socket[] = [];
  const http = createServer();
  http.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    sockets.push(socket);
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.resume();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
  try {
    const { port } = http.address() as AddressInfo;
    const exit = await run(['-w', '1', '--no-deflate', `ws://127.0.0.1:${port}/`], { text: 'hello\n' });
    assert.equal(exit.code, 1);
    assert.match(exit.err, /closed: 1006/);
    assert.ok(exit.ms < 6000, `gave up after about 1 s, not the library's 10 s (took ${exit.ms} ms)`);
  } finally {
    for (const socket of sockets) socket.destroy();
    http.close();
  }
});

// ---- wss:// with a certificate made at test time --------------------------------------------

let certFile = '';
let cert: Buffer;
let key: Buffer;

before(async () => {
  ({ cert, key, certFile } = await selfSignedCertificate(dir));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('wss:// with a self-signed certificate: refused with a clear message (exit 1); -n, -k or --ca FILE connect', { timeout: 30_000 }, async () => {
  const server = await echoServer({ tls: { cert, key } });
  try {
    const refused = await run([server.url, '-x', 'hi', '-w', '0']);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /cannot connect to wss:\/\/127\.0\.0\.1:\d+\/: .*self[- ]signed/i);
    assert.match(refused.err, /-n\/--no-check/);
    assert.equal(refused.out.length, 0);
    assert.equal(server.seen.length, 0);
    for (const flags of [['-n'], ['--no-check'], ['-k'], ['--insecure'], ['--ca', certFile]]) {
      const exit = await run([...flags, server.url, '-x', `over tls ${flags[0]}`, '-w', '0']);
      assert.equal(exit.code, 0, `${flags.join(' ')}: ${exit.err}`);
      assert.equal(exit.out.toString(), `over tls ${flags[0]}\n`);
    }
    const missing = await run(['--ca', join(dir, 'nope.pem'), server.url]);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /cannot read --ca .*nope\.pem: ENOENT/);
  } finally {
    await server.close();
  }
});
