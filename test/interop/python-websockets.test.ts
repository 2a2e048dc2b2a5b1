// Interop with python-websockets (Debian's python3-websockets, under Debian's /usr/bin/python3),
// a peer nobody here wrote: its client against a duplex server and a duplex client against its
// server, text and binary from 0 B to 1 MiB, with and without permessage-deflate, close codes
// and reasons both ways, pings both ways. The Python side lives in test/interop/python/ and
// reports what it saw as JSON lines on stdout.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, connect, type WebSocket } from '../../src/index.js';

const PYTHON = '/usr/bin/python3';
const SCRIPTS = fileURLToPath(new URL('../../../test/interop/python/', import.meta.url));
const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20];

const available = spawnSync(PYTHON, ['-c', 'import websockets'], { stdio: 'ignore' }).status === 0;
const inCI = process.env.CI === 'true';
// Outside CI a machine without the package may skip; in CI a missing peer must fail, not hide.
const skip = !available && !inCI ? `python3-websockets is not installed for ${PYTHON} (apt-get install -y python3-websockets)` : false;

function requirePython(): void {
  assert.ok(available, `python3-websockets is missing for ${PYTHON}: .ci/run must install it (apt-get install -y python3-websockets)`);
}

/** The same payloads as python/common.py builds: text of exactly `size` UTF-8 bytes, mixed widths. */
function textOf(size: number): string {
  return 'aé€😀'.repeat(Math.floor(size / 10)) + 'a'.repeat(size % 10);
}

function bytesOf(size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + 7) & 0xff;
  return out;
}

type Json = Record<string, unknown>;

/** A Python script run with a deadline; its stdout JSON lines can be awaited one by one. */
class PythonProcess {
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private readonly lines: Json[] = [];
  private waiter: (() => void) | undefined;
  private stderr = '';
  private readonly killTimer: NodeJS.Timeout;

  constructor(script: string, args: string[], deadline = 9000) {
    this.child = spawn(PYTHON, [SCRIPTS + script, ...args], {
      cwd: SCRIPTS,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, // no __pycache__ in the source tree
    });
    let partial = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      partial += chunk;
      let nl: number;
      while ((nl = partial.indexOf('\n')) !== -1) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        if (line.trim()) this.lines.push(JSON.parse(line) as Json);
      }
      this.wake();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => {
      clearTimeout(this.killTimer);
      this.wake();
      resolve(code);
    }));
    // The scripts bound themselves; this is the backstop for a hung interpreter.
    this.killTimer = setTimeout(() => this.child.kill('SIGKILL'), deadline);
  }

  /** The next JSON line, or a failure carrying the script's stderr. */
  async next(timeout = 8000): Promise<Json> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const line = this.lines.shift();
      if (line) return line;
      if (this.child.exitCode !== null || this.child.signalCode !== null || Date.now() >= deadline) {
        throw new Error(`no more output from ${PYTHON} (exit ${this.child.exitCode ?? this.child.signalCode}); stderr:\n${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Wait for a clean exit (status 0). */
  async finish(): Promise<void> {
    const code = await this.exited;
    assert.equal(code, 0, `${PYTHON} exited with ${code}; stderr:\n${this.stderr}`);
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}

/**
 * A duplex echo server (as `duplex echo`), which also closes on request: the text
 * `close:CODE:REASON` makes it close with that code and reason.
 */
async function duplexServer(deflate: boolean): Promise<{ server: WebSocketServer; url: string; closes: Array<[number, string]>; pings: string[] }> {
  const closes: Array<[number, string]> = [];
  const pings: string[] = [];
  const server = new WebSocketServer({
    perMessageDeflate: deflate,
    textAsBuffer: true,
    handlers: {
      message(ws, data, isBinary) {
        const bytes = data as Buffer;
        if (isBinary) {
          ws.send(bytes);
          return;
        }
        const command = /^close:(\d+):(.*)$/s.exec(bytes.toString('utf8'));
        if (command) ws.close(Number(command[1]), command[2]);
        else ws.sendText(bytes);
      },
      ping: (_ws, data) => void pings.push(data.toString()),
      close: (_ws, code, reason) => void closes.push([code, reason]),
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, url: `ws://127.0.0.1:${port}/echo`, closes, pings };
}

for (const deflate of [false, true]) {
  describe(`python-websockets client → duplex server (deflate ${deflate})`, { skip }, () => {
    test(`text and binary of ${SIZES.join(', ')} bytes echoed; ping answered; close codes both ways`, async () => {
      requirePython();
      const { server, url, closes, pings } = await duplexServer(deflate);
      const python = new PythonProcess('client.py', [url, JSON.stringify({ compression: deflate, sizes: SIZES, close: [4000, 'bye — ciao 👋'] })]);
      try {
        const echo = await python.next();
        assert.equal(echo.case, 'echo');
        // Deflate is python-websockets' default offer: prove it was negotiated, or not offered.
        if (deflate) {
          assert.match(String(echo.extensions), /^permessage-deflate\b/, 'the 101 must accept permessage-deflate');
          assert.deepEqual(echo.negotiated, ['PerMessageDeflate']);
        } else {
          assert.equal(echo.extensions, null);
          assert.deepEqual(echo.negotiated, []);
        }
        const results = echo.results as Array<{ kind: string; size: number; type_ok: boolean; equal: boolean }>;
        assert.equal(results.length, SIZES.length * 2);
        for (const r of results) {
          assert.ok(r.type_ok, `${r.kind} of ${r.size} bytes came back as the wrong message type`);
          assert.ok(r.equal, `${r.kind} of ${r.size} bytes came back different`);
        }
        assert.equal(echo.pong, true, '`await ws.ping()` must resolve');
        assert.deepEqual(pings, ['python ping']);
        // The client's close code and reason reached duplex, and duplex echoed them.
        assert.deepEqual([echo.close_code, echo.close_reason], [4000, 'bye — ciao 👋']);

        const serverClose = await python.next();
        assert.deepEqual(serverClose, { case: 'server-close', received: 'closed', close_code: 4001, close_reason: 'go away' });
        assert.deepEqual(await python.next(), { done: true });
        await python.finish();
        assert.deepEqual(closes, [
          [4000, 'bye — ciao 👋'],
          [4001, 'go away'],
        ]);
      } finally {
        python.kill();
        await server.close();
      }
    });
  });

  describe(`duplex client → python-websockets server (deflate ${deflate})`, { skip }, () => {
    let python: PythonProcess | undefined;
    after(() => python?.kill());

    test(`text and binary of ${SIZES.join(', ')} bytes echoed; ping answered; close codes both ways`, async () => {
      requirePython();
      python = new PythonProcess('server.py', [JSON.stringify({ compression: deflate, connections: 2 })]);
      const { port } = (await python.next()) as { port: number };
      const url = `ws://127.0.0.1:${port}/`;

      let pending: ((value: [string | Buffer, boolean]) => void) | undefined;
      let pong: ((data: string) => void) | undefined;
      let closed!: (value: [number, string]) => void;
      const closedP = new Promise<[number, string]>((resolve) => (closed = resolve));
      const ws: WebSocket<undefined> = await connect(url, {
        perMessageDeflate: deflate,
        maxMessageSize: 8 << 20,
        handlers: {
          message: (_ws, data, isBinary) => pending?.([data, isBinary]),
          pong: (_ws, data) => pong?.(data.toString()),
          close: (_ws, code, reason) => closed([code, reason]),
        },
      });
      // python-websockets' server answers deflate offers with its own parameters
      // (server_max_window_bits=12 by default in 10.x): duplex must accept them.
      assert.equal(ws.extensions.startsWith('permessage-deflate'), deflate, `negotiated: ${ws.extensions}`);
      for (const size of SIZES) {
        for (const text of [true, false]) {
          const sent = text ? textOf(size) : bytesOf(size);
          const reply = new Promise<[string | Buffer, boolean]>((resolve) => (pending = resolve));
          ws.send(sent);
          const [data, isBinary] = await reply;
          assert.equal(isBinary, !text, `${text ? 'text' : 'binary'} of ${size} bytes: wrong type`);
          if (text) assert.equal(data, sent, `text of ${size} bytes differs`);
          else assert.ok((data as Buffer).equals(sent as Buffer), `binary of ${size} bytes differs`);
        }
      }
      const pongP = new Promise<string>((resolve) => (pong = resolve));
      ws.ping('duplex ping');
      assert.equal(await pongP, 'duplex ping', 'python-websockets must answer our ping');

      ws.close(4002, 'client done');
      assert.deepEqual(await closedP, [4002, 'client done'], 'python echoes the close code and reason');
      const first = await python.next();
      assert.equal(first.event, 'closed');
      assert.deepEqual([first.close_code, first.close_reason, first.messages], [4002, 'client done', SIZES.length * 2]);
      if (deflate) assert.match(String(first.extensions), /^permessage-deflate\b/);
      else assert.equal(first.extensions, null);

      // The server closes: duplex reports its code and reason.
      const serverClosed = await new Promise<[number, string]>((resolve, reject) => {
        connect(url, { perMessageDeflate: deflate, handlers: { close: (_ws, code, reason) => resolve([code, reason]) } })
          .then((ws2) => ws2.send('close:4003:python says bye'))
          .catch(reject);
      });
      assert.deepEqual(serverClosed, [4003, 'python says bye']);
      const second = await python.next();
      assert.deepEqual([second.event, second.close_code, second.close_reason], ['closed', 4003, 'python says bye']);
      await python.finish();
    });
  });
}
