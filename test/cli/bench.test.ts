// `duplex bench` as a user runs it: a subprocess against in-process servers (duplex and the npm
// `ws` package), reading its --json report. Runs are 1 s each, on 127.0.0.1 only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocketServer as WsServer, type RawData } from 'ws';
import { WebSocketServer } from '../../src/index.js';
import { Histogram } from '../../src/cli/bench/histogram.js';
import type { BenchReport } from '../../src/cli/bench/report.js';

const BIN = fileURLToPath(new URL('../../../bin/duplex.js', import.meta.url));

interface Exit {
  code: number | null;
  out: string;
  err: string;
}

function run(args: string[], onSpawn?: (child: ChildProcess) => void): Promise<Exit> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  onSpawn?.(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, out, err });
    }),
  );
}

function report(exit: Exit): BenchReport {
  assert.equal(exit.code, 0, `bench exited with ${exit.code}: ${exit.err}`);
  assert.equal(exit.err, '', '--json prints no progress lines');
  return JSON.parse(exit.out) as BenchReport;
}

/** What every clean run must show. */
function assertClean(r: BenchReport, connections: number): void {
  assert.equal(r.connections.opened, connections);
  assert.equal(r.connections.failed, 0);
  assert.equal(r.errors.total, 0, JSON.stringify(r.errors));
  assert.ok(r.sent > 0, 'messages were sent');
  assert.ok(r.messagesPerSecond > 0);
  assert.ok(r.megabytesPerSecond > 0);
  assert.ok(r.seconds > 0.9 && r.seconds < 10, `measured ${r.seconds} s`);
  const l = r.latencyMs;
  assert.equal(l.samples, r.received);
  assert.ok(l.min >= 0 && l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, JSON.stringify(l));
  assert.ok(l.max < 5000, `max latency ${l.max} ms`);
  assert.equal(r.interrupted, false);
}

async function duplexServer(broadcast: boolean): Promise<{ server: WebSocketServer; url: string }> {
  const server: WebSocketServer = new WebSocketServer({
    textAsBuffer: true,
    handlers: {
      message(ws, data, isBinary) {
        const targets = broadcast ? server.clients : [ws];
        for (const client of targets) {
          if (isBinary) client.send(data as Buffer);
          else client.sendText(data as Buffer);
        }
      },
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, url: `ws://127.0.0.1:${port}/bench` };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

test('Histogram: percentiles within 0.1 %, exact below 2048, merge and reset', () => {
  const h = new Histogram();
  for (let v = 1; v <= 100_000; v++) h.record(v);
  assert.equal(h.count, 100_000);
  assert.equal(h.min, 1);
  assert.equal(h.max, 100_000);
  for (const [p, exact] of [
    [50, 50_000],
    [99, 99_000],
    [99.9, 99_900],
  ] as const) {
    const got = h.percentile(p);
    assert.ok(got >= exact && got <= exact * 1.001, `p${p}: ${got}`);
  }
  assert.equal(h.percentile(1), 1000); // exact range
  assert.equal(h.percentile(100), 100_000);
  const other = new Histogram();
  other.record(5e9); // clamped, not lost
  h.add(other);
  assert.equal(h.count, 100_001);
  assert.equal(h.percentile(100), 2 ** 31 - 1);
  h.reset();
  assert.equal(h.percentile(50), 0);
});

test('bench echo against a duplex server: binary, 20 connections, window 4', async (t) => {
  const { server, url } = await duplexServer(false);
  t.after(() => server.close(1001, '', 1000));
  const r = report(await run(['bench', url, '--connections', '20', '--window', '4', '--size', '128', '--duration', '1', '--warmup', '0.2', '--json']));
  assertClean(r, 20);
  assert.equal(r.mode, 'echo');
  assert.equal(r.type, 'binary');
  assert.equal(r.received, r.sent, 'every measured message came back');
  assert.equal(r.expected, r.sent);
});

test('bench echo against a ws echo server: text, 10 connections', async (t) => {
  const wss = new WsServer({ port: 0, host: '127.0.0.1' });
  t.after(() => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', (ws) => ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary })));
  const { port } = wss.address() as AddressInfo;
  const r = report(await run(['bench', `ws://127.0.0.1:${port}/`, '-c', '10', '--text', '--size', '1000', '-d', '1', '--warmup', '0', '--json']));
  assertClean(r, 10);
  assert.equal(r.type, 'text');
  assert.equal(r.received, r.sent);
});

test('bench broadcast against a broadcasting duplex server: deliveries = connections × sent', async (t) => {
  const { server, url } = await duplexServer(true);
  t.after(() => server.close(1001, '', 1000));
  const r = report(await run(['bench', url, '--mode', 'broadcast', '-c', '25', '-w', '8', '-d', '1', '--warmup', '0.2', '--json']));
  assertClean(r, 25);
  assert.equal(r.expected, r.sent * 25);
  assert.ok(r.received >= r.expected * 0.99 && r.received <= r.expected, `${r.received} of ${r.expected} delivered`);
  assert.ok(r.messagesPerSecond > r.sentPerSecond * 20, 'the rate counts deliveries');
});

test('bench: the human report and progress lines', async (t) => {
  const { server, url } = await duplexServer(false);
  t.after(() => server.close(1001, '', 1000));
  const { code, out, err } = await run(['bench', url, '-c', '2', '-d', '1.2', '--warmup', '0']);
  assert.equal(code, 0);
  assert.match(out, /^duplex bench ws:\/\/127\.0\.0\.1:\d+\/bench: echo, 2 connections, 64 B binary messages/);
  assert.match(out, /throughput +[\d,]+ msg\/s, [\d.]+ MB\/s received/);
  assert.match(out, /latency +p50 [\d.]+ ms {2}p90 [\d.]+ ms {2}p99 [\d.]+ ms {2}p99\.9 [\d.]+ ms {2}max [\d.]+ ms/);
  assert.match(out, /errors +0\n/);
  assert.match(err, /^ +1s measuring: [\d,]+ msg\/s/m, 'a plain progress line once a second (stderr is not a TTY)');
});

test('bench: connections the server closes mid-run are counted, the run completes', async (t) => {
  let count = 0;
  const server = new WebSocketServer({
    textAsBuffer: true,
    handlers: {
      open(ws) {
        if (count++ === 1) setTimeout(() => ws.close(1011, 'going down'), 300);
      },
      message(ws, data) {
        ws.send(data as Buffer);
      },
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  t.after(() => server.close(1001, '', 1000));
  const r = report(await run(['bench', `ws://127.0.0.1:${port}/`, '-c', '3', '-d', '1', '--warmup', '0', '--json']));
  assert.equal(r.connections.opened, 3);
  assert.equal(r.errors.unexpectedClose, 1);
  assert.ok(r.errors.examples.some((e) => /server sent close 1011 going down/.test(e.message)), JSON.stringify(r.errors));
  assert.ok(r.received > 0);
  assert.equal(r.interrupted, false);
});

test('bench: a refused handshake exits 1 with the status and body', async (t) => {
  const http = createServer((_req, res) => res.writeHead(403, { 'Content-Type': 'text/plain' }).end('no load tests here'));
  http.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\nno load tests here'));
  const port = await listen(http);
  t.after(() => http.close());
  const human = await run(['bench', `ws://127.0.0.1:${port}/`, '-d', '1']);
  assert.equal(human.code, 1);
  assert.match(human.err, /could not connect to ws:\/\/127\.0\.0\.1:\d+\/: handshake failed: server answered 403 Forbidden: no load tests here/);
  const json = await run(['bench', `ws://127.0.0.1:${port}/`, '-d', '1', '--json']);
  assert.equal(json.code, 1);
  const r = JSON.parse(json.out) as BenchReport;
  assert.equal(r.connections.opened, 0);
  assert.deepEqual(r.errors.handshake, { '403': 1 });
});

test('bench: nothing listening exits 1 with the socket error', async () => {
  // Find a free port, then close it so that nothing listens there.
  const closed = createServer();
  const free = await listen(closed);
  closed.close();
  const { code, err } = await run(['bench', `ws://127.0.0.1:${free}/`, '-d', '1']);
  assert.equal(code, 1);
  assert.match(err, /could not connect to .*ECONNREFUSED/);
});

test('bench: bad flags are usage errors with exit code 2', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['bench'], /needs a URL/],
    [['bench', 'http://127.0.0.1:1/'], /unsupported URL scheme/],
    [['bench', 'ws://127.0.0.1:1/', '--mode', 'fanout'], /--mode must be echo or broadcast/],
    [['bench', 'ws://127.0.0.1:1/', '--connections', '0'], /--connections must be an integer from 1 to 20000/],
    [['bench', 'ws://127.0.0.1:1/', '--connections', '20001'], /--connections must be an integer from 1 to 20000/],
    [['bench', 'ws://127.0.0.1:1/', '--size', '4'], /--size must be an integer from 20/],
    [['bench', 'ws://127.0.0.1:1/', '--duration', '0'], /--duration must be a number from 0.1 to 3600/],
    [['bench', 'ws://127.0.0.1:1/', '--window', '1.5'], /--window must be an integer/],
    [['bench', 'ws://127.0.0.1:1/', '--text', '--binary'], /one of --text and --binary/],
    [['bench', 'ws://127.0.0.1:1/', '--frobnicate'], /Unknown option '--frobnicate'/],
  ];
  const exits = await Promise.all(cases.map(([args]) => run(args)));
  exits.forEach(({ code, err }, i) => {
    assert.equal(code, 2, `${cases[i][0].join(' ')}: exit ${code}`);
    assert.match(err, cases[i][1]);
    assert.match(err, /Usage: duplex/);
  });
});
