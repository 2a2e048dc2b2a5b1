/**
 * `duplex serve --workers 2` as a subprocess: two worker processes on one ephemeral port and the
 * primary as their broker (IPC). Clients speak the hub protocol over raw WebSockets and learn
 * from the `connect` reply which worker (hub node) they landed on; the primary's log lines
 * (`worker started worker=N pid=P … node=ID`) say which process that is. Checked: connections
 * land on both workers, a publish on one reaches subscribers on the other, presence spans both,
 * a worker killed with SIGKILL is replaced and its connections' presence is gone within a
 * second while the other worker's clients carry on, and SIGTERM to the primary closes every
 * client with 1001 and exits 0 once both workers are gone. Then the configuration of `workers`
 * and a primary whose workers cannot start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { HubConn, until } from './hub-conn.js';
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { ConfigError, loadConfig } from '../../src/cli/serve-config.js';
import { serviceCheck } from '../hub/broker-contract.js';

const BIN = join(process.cwd(), 'bin', 'duplex.js');

/** Environment without the caller's DUPLEX_* variables, plus `extra`. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('DUPLEX_') && key !== 'NODE_CLUSTER_SCHED_POLICY'));
  return { ...clean, NO_COLOR: '1', ...extra };
}

interface Running {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Start `duplex serve` and wait for its `listening on …` line. */
async function startServe(args: string[], extraEnv: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { env: env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" line in 20 s; stderr: ${err}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /^listening on (https?:\/\/\S+\/)$/m.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening; stderr: ${err}`));
    });
  });
  return { child, url, stderr: () => err, exited };
}

/** The workers the primary reported started: node id → { slot, pid }, in log order (a replacement overwrites its slot's entry). */
function startedWorkers(stderr: string): Map<string, { slot: number; pid: number }> {
  const workers = new Map<string, { slot: number; pid: number }>();
  for (const match of stderr.matchAll(/INFO\s+worker started worker=(\d+) pid=(\d+) url=\S+ node=(\w+)/g)) {
    workers.set(match[3]!, { slot: Number(match[1]), pid: Number(match[2]) });
  }
  return workers;
}

/** GET `path` as JSON. */
function getJson(base: string, path: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    request(new URL(path, base), (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
    })
      .on('error', reject)
      .end();
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('duplex serve --workers 2: one port, one hub across two processes', { timeout: 60_000 }, async (t) => {
  const server = await startServe(['--workers', '2', '--port', '0', '--host', '127.0.0.1']);
  const conns: HubConn[] = [];
  t.after(async () => {
    for (const conn of conns) conn.ws.terminate();
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
    // The workers are the primary's children: a primary killed takes them along (their IPC channel closes).
    for (const { pid } of startedWorkers(server.stderr()).values()) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  const wsUrl = server.url.replace(/^http/, 'ws') + 'ws';
  await until('two "worker started" lines', () => startedWorkers(server.stderr()).size === 2);
  const workers = startedWorkers(server.stderr());
  const [nodeA, nodeB] = [...workers.keys()];

  await t.test('connections land on both workers', async () => {
    for (let i = 0; i < 8; i++) conns.push(await HubConn.open(wsUrl, `user ${i}`));
    const perNode = new Map<string, number>();
    for (const conn of conns) perNode.set(conn.node, (perNode.get(conn.node) ?? 0) + 1);
    assert.deepEqual([...perNode.keys()].sort(), [nodeA, nodeB].sort(), 'every connection is on one of the two workers');
    // Round robin (the chosen scheduling) hands them out in turn: 4 and 4, or 5 and 3 when a
    // worker's receipt of the previous connection reached the primary after the next one.
    const counts = [...perNode.values()].sort();
    assert.ok(counts[0]! >= 3, `connections per worker: ${JSON.stringify([...perNode])}`);
    const health = await getJson(server.url, '/healthz');
    assert.deepEqual(health.broker, { name: 'ipc', state: 'connected' });
    const worker = health.worker as { slot: number; workers: number; pid: number };
    assert.equal(worker.workers, 2);
    assert.ok([...workers.values()].some((w) => w.slot === worker.slot && w.pid === worker.pid), `/healthz names the worker that answered: ${JSON.stringify(worker)}`);
  });

  const onA = (): HubConn[] => conns.filter((c) => c.node === nodeA);
  const onB = (): HubConn[] => conns.filter((c) => c.node === nodeB);

  await t.test('a publish on one worker reaches subscribers on the other, in one offset order', async () => {
    for (const conn of conns) await conn.request('subscribe', { topic: 'room:workers' });
    const fromB = (await onB()[0]!.request('publish', { topic: 'room:workers', data: { from: 'B' } })) as { offset: number };
    const fromA = (await onA()[0]!.request('publish', { topic: 'room:workers', data: { from: 'A' } })) as { offset: number };
    assert.deepEqual([fromB.offset, fromA.offset], [1, 2], 'offsets are the one hub’s, across workers');
    for (const conn of conns) {
      const first = await conn.next('the publication from B', (m) => m.type === 'message' && m.offset === 1);
      const second = await conn.next('the publication from A', (m) => m.type === 'message' && m.offset === 2);
      assert.deepEqual([first.data, second.data], [{ from: 'B' }, { from: 'A' }], `connection on ${conn.node}`);
    }
  });

  await t.test('presence spans both workers', async () => {
    const members = (await onA()[0]!.request('presence', { topic: 'room:workers' })) as { members: Array<{ connId: string; node: string; info: { name: string } }> };
    assert.deepEqual(members.members.map((m) => m.connId).sort(), conns.map((c) => c.connId).sort());
    assert.deepEqual(new Set(members.members.map((m) => m.node)), new Set([nodeA, nodeB]));
  });

  await t.test('a worker killed with SIGKILL: its presence goes within a second, it is replaced, the other worker carries on', async () => {
    const victim = workers.get(nodeB)!;
    const survivors = onA();
    const killedConns = onB().map((c) => c.connId);
    const killedAt = performance.now();
    process.kill(victim.pid, 'SIGKILL');
    // Every survivor is told each killed connection left (presence events come with the subscription).
    for (const conn of survivors) {
      for (const connId of killedConns) {
        await conn.next(`the leave of ${connId}`, (m) => m.type === 'leave' && (m.member as { connId: string }).connId === connId, 1000);
      }
    }
    const took = performance.now() - killedAt;
    assert.ok(took < 1000, `leaves seen ${took.toFixed(0)} ms after the kill`);
    const members = (await survivors[0]!.request('presence', { topic: 'room:workers' })) as { members: Array<{ connId: string }> };
    assert.deepEqual(members.members.map((m) => m.connId).sort(), survivors.map((c) => c.connId).sort(), 'only the survivors are present');
    assert.match(server.stderr(), new RegExp(`WARN\\s+worker died: its connections' presence cleared; restarting it worker=${victim.slot} pid=${victim.pid} signal=SIGKILL`));

    // The survivors' connections were untouched and still get publications.
    const more = (await survivors[1]!.request('publish', { topic: 'room:workers', data: 'after the kill' })) as { offset: number };
    for (const conn of survivors) {
      assert.equal(conn.closeCode, undefined, 'still open');
      await conn.next('the publication after the kill', (m) => m.type === 'message' && m.offset === more.offset);
    }
    for (const conn of onB()) await until('the killed worker’s clients to see their connection drop', () => conn.closeCode !== undefined);

    // The replacement takes the slot, with a new process and a new hub node, and serves.
    const replacementOf = (): [string, { slot: number; pid: number }] | undefined => [...startedWorkers(server.stderr())].find(([node, w]) => w.slot === victim.slot && node !== nodeB);
    await until('the replacement', () => replacementOf() !== undefined);
    const replacement = replacementOf()!;
    assert.notEqual(replacement[1].pid, victim.pid);
    workers.set(replacement[0], replacement[1]);
    const fresh: HubConn[] = [];
    for (let i = 0; i < 2; i++) fresh.push(await HubConn.open(wsUrl, `fresh ${i}`));
    conns.push(...fresh);
    assert.ok(fresh.some((c) => c.node === replacement[0]), `a new connection lands on the replacement (${fresh.map((c) => c.node).join(', ')})`);
    const onReplacement = fresh.find((c) => c.node === replacement[0])!;
    await onReplacement.request('subscribe', { topic: 'room:workers' });
    const last = (await survivors[0]!.request('publish', { topic: 'room:workers', data: 'to the replacement' })) as { offset: number };
    await onReplacement.next('a publication made on the other worker', (m) => m.type === 'message' && m.offset === last.offset);
  });

  await t.test('SIGTERM to the primary: every client gets 1001, the workers stop, the primary exits 0', async () => {
    const open = conns.filter((c) => c.closeCode === undefined);
    assert.ok(new Set(open.map((c) => c.node)).size === 2, 'clients on both workers');
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0);
    for (const conn of open) assert.equal(conn.closeCode, 1001, `client on ${conn.node}`);
    for (const { pid } of workers.values()) assert.equal(processAlive(pid), false, `worker ${pid} is gone`);
    assert.match(server.stderr(), /INFO\s+every worker stopped workers=2/);
  });
});

test('workers: a number, "auto" (one per core), from flags, the environment or the file; 1 by default', () => {
  assert.equal(loadConfig({}, {}).workers, 1);
  assert.equal(loadConfig({ workers: '3' }, {}).workers, 3);
  assert.equal(loadConfig({ workers: 'auto' }, {}).workers, availableParallelism());
  assert.equal(loadConfig({}, { DUPLEX_WORKERS: '2' }).workers, 2);
  for (const bad of ['0', '-1', '1.5', 'many']) {
    assert.throws(() => loadConfig({ workers: bad }, {}), (error: unknown) => error instanceof ConfigError && /workers \(from flag --workers\) must be a positive integer or "auto"/.test(error.message), bad);
  }
});

test('duplex serve --workers 2 on a port in use: the workers cannot start, the primary exits 1 and says why', { timeout: 30_000 }, async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const { port } = taken.address() as AddressInfo;
  try {
    const child = spawn(process.execPath, [BIN, 'serve', '--workers', '2', '--port', String(port)], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout!.resume();
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(timer);
    assert.equal(code, 1, err);
    assert.match(err, new RegExp(`port ${port} is in use`));
    assert.match(err, /worker \d \(pid \d+\) exited with code 1 before it was started/);
  } finally {
    taken.close();
  }
});

const redisSkip = await serviceCheck('Redis', '127.0.0.1', 6379, '.ci/run starts it (redis-server --daemonize yes --port 6379) when installed');

test('duplex serve --workers 2 --broker redis://…: the workers share Redis, the primary serves no broker', { timeout: 30_000, skip: redisSkip }, async (t) => {
  const prefix = `duplex-test-workers-${randomBytes(4).toString('hex')}`;
  const server = await startServe(['--workers', '2', '--port', '0', '--broker', 'redis://127.0.0.1:6379'], { DUPLEX_BROKER_PREFIX: prefix });
  const conns: HubConn[] = [];
  t.after(async () => {
    for (const conn of conns) conn.ws.terminate();
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
    const admin = createClient({ url: 'redis://127.0.0.1:6379' });
    await admin.connect();
    const keys: string[] = [];
    for await (const batch of admin.scanIterator({ MATCH: `${prefix}:*` })) keys.push(...(Array.isArray(batch) ? batch : [batch]));
    if (keys.length > 0) await admin.del(keys);
    await admin.close();
  });
  const wsUrl = server.url.replace(/^http/, 'ws') + 'ws';
  for (let i = 0; i < 2; i++) conns.push(await HubConn.open(wsUrl, `user ${i}`));
  const [a, b] = conns as [HubConn, HubConn];
  assert.notEqual(a.node, b.node, 'one connection on each worker');
  assert.deepEqual((await getJson(server.url, '/healthz')).broker, { name: 'redis', state: 'connected' });
  await b.request('subscribe', { topic: 'room:redis' });
  const ack = (await a.request('publish', { topic: 'room:redis', data: 'through Redis' })) as { offset: number };
  const message = await b.next('the publication from the other worker', (m) => m.type === 'message');
  assert.deepEqual([message.offset, message.data], [ack.offset, 'through Redis']);
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0);
});
