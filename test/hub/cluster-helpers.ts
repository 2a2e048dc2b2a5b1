// Shared by the multi-process cluster and broker-fault tests: hub nodes as child processes
// (node-process.ts), our own redis-server / nats-server processes, a TCP balancer in front of
// nodes (so a client can be cut, held off, or fail over to a surviving node), JWTs, and the
// bookkeeping that kills every child process we started, whatever happens.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { SignJWT } from 'jose';
import { connect as natsConnect } from 'nats';
import { createClient } from 'redis';

/** The secret the node processes verify client JWTs with. */
export const JWT_SECRET = 'cluster-test-secret-0123456789abcdef';

/** A short-lived HS256 token for `sub`. */
export async function token(sub: string): Promise<string> {
  return new SignJWT({ info: { name: sub } })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

/** A prefix no other run uses: keys, subjects, streams and buckets of one run never collide. */
export function runPrefix(label: string): string {
  return `dxc-${label}-${randomBytes(4).toString('hex')}`;
}

/** An executable on PATH (or in the sbin folders, where Debian puts nats-server), if any. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/local/bin', '/usr/bin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      accessSync(path, fsConstants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Where a binary the test needs is, or why the test is skipped. In CI (`CI=true`) a missing
 * binary fails the run: a skipped fault test must never pass for a green one.
 */
export function requireBinary(name: string, install: string): { path: string } | { skip: string } {
  const path = findBinary(name);
  if (path !== undefined) return { path };
  const reason = `${name} is not installed (${install}); this test starts its own ${name}`;
  if (process.env.CI === 'true') throw new Error(`CI: ${reason}`);
  return { skip: reason };
}

/** A TCP port that was free a moment ago (bound to port 0, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resolve once something accepts TCP connections on 127.0.0.1:`port`. */
export async function waitForPort(port: number, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = netConnect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeout} ms`);
    await delay(25);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- child processes ---------------------------------------------------------------------------

/** A child process we started, with its exit as a promise and its output kept for failures. */
export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<number | string | null>;
  /** stdout and stderr so far (the last 20 000 characters). */
  output(): string;
  /** Send `signal` and wait for the exit (SIGKILL after `timeout` ms). */
  stop(signal?: NodeJS.Signals, timeout?: number): Promise<void>;
}

const children = new Set<Child>();

// A test process that dies without running after() must not leave brokers or nodes behind.
process.on('exit', () => {
  for (const child of children) if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
});

/** Start a child process and track it until it exits. */
export function startChild(name: string, command: string, args: readonly string[], extraEnv: Readonly<Record<string, string>> = {}): Child {
  const env = { ...process.env, ...extraEnv };
  // A node:test child context would make a spawned node report as a test file.
  delete env.NODE_TEST_CONTEXT;
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<number | string | null>((resolve) => {
    proc.once('exit', (code, signal) => resolve(signal ?? code));
    proc.once('error', (error) => {
      output += `\nspawn error: ${error.message}`;
      resolve(null);
    });
  });
  const child: Child = {
    name,
    process: proc,
    exited,
    output: () => output,
    async stop(signal = 'SIGTERM', timeout = 3000) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeout);
      await exited;
      clearTimeout(timer);
    },
  };
  children.add(child);
  void exited.then(() => children.delete(child));
  return child;
}

/** SIGKILL every child process still running (for `after()`, whatever the outcome). */
export async function killAll(): Promise<void> {
  await Promise.all([...children].map((child) => child.stop('SIGKILL', 1000)));
}

// ---- hub nodes ---------------------------------------------------------------------------------

const NODE_SCRIPT = fileURLToPath(new URL('./node-process.js', import.meta.url));

/** A hub node running in a process of its own. */
export interface HubNode extends Child {
  readonly nodeId: string;
  readonly port: number;
  /** `ws://127.0.0.1:<port>/ws` */
  readonly url: string;
}

export interface HubNodeOptions {
  readonly broker: string;
  readonly prefix: string;
  readonly nodeId: string;
  readonly presenceRefresh?: number;
  readonly presenceTtl?: number;
  readonly historySize?: number;
  /** Authenticate with JWTs signed with `JWT_SECRET` (default), or admit anonymous connections. */
  readonly anonymous?: boolean;
}

/** Start a hub node process and wait for its `ready <port>` line. */
export async function startNode(options: HubNodeOptions, timeout = 15_000): Promise<HubNode> {
  const args = [NODE_SCRIPT, '--broker', options.broker, '--prefix', options.prefix, '--node', options.nodeId];
  if (options.presenceRefresh !== undefined) args.push('--presence-refresh', String(options.presenceRefresh));
  if (options.presenceTtl !== undefined) args.push('--presence-ttl', String(options.presenceTtl));
  if (options.historySize !== undefined) args.push('--history-size', String(options.historySize));
  if (!options.anonymous) args.push('--jwt-secret', JWT_SECRET);
  const child = startChild(`node ${options.nodeId}`, process.execPath, args);
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => fail(new Error(`node ${options.nodeId} not ready after ${timeout} ms:\n${child.output()}`)), timeout);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8');
      const match = /^ready (\d+)/m.exec(seen);
      if (match) {
        clearTimeout(timer);
        child.process.stdout?.off('data', onData);
        resolve(Number(match[1]));
      }
    };
    const fail = (error: Error): void => {
      clearTimeout(timer);
      child.process.stdout?.off('data', onData);
      reject(error);
    };
    child.process.stdout?.on('data', onData);
    void child.exited.then((code) => fail(new Error(`node ${options.nodeId} exited (${String(code)}) before ready:\n${child.output()}`)));
  });
  return { ...child, nodeId: options.nodeId, port, url: `ws://127.0.0.1:${port}/ws` };
}

/**
 * Remove what a run left on a shared broker (the node processes are gone by then): Redis keys
 * under `prefix:`, or the NATS stream and KV buckets named after `prefix` (as the brokers name them).
 */
export async function cleanupBroker(brokerUrl: string, prefix: string): Promise<void> {
  const url = new URL(brokerUrl);
  if (url.protocol === 'redis:') {
    const client = createClient({ url: brokerUrl });
    await client.connect();
    try {
      const keys: string[] = [];
      for await (const batch of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) keys.push(...batch);
      for (let i = 0; i < keys.length; i += 500) await client.del(keys.slice(i, i + 500));
    } finally {
      await client.close();
    }
    return;
  }
  const nc = await natsConnect({ servers: url.host, timeout: 2000 });
  try {
    const jsm = await nc.jetstreamManager();
    const name = prefix.replace(/[^\w-]/g, '_');
    for (const stream of [`${name.toUpperCase()}_HIST`, `KV_${name}-epochs`, `KV_${name}-presence`, `KV_${name}-nodes`, `KV_${name}-idem`]) {
      await jsm.streams.delete(stream).catch(() => false);
    }
  } finally {
    await nc.close();
  }
}

// ---- brokers of our own ------------------------------------------------------------------------

/** A redis-server of our own on `port`, without persistence (a restart loses everything). */
export async function startRedisServer(binary: string, port: number): Promise<Child> {
  const child = startChild(`redis-server :${port}`, binary, [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--protected-mode', 'no',
  ]);
  await Promise.race([waitForPort(port), child.exited.then(() => Promise.reject(new Error(`redis-server exited:\n${child.output()}`)))]);
  return child;
}

/** A nats-server of our own with JetStream on `port`, storing in `storeDir` (kept across restarts). */
export async function startNatsServer(binary: string, port: number, storeDir: string): Promise<Child> {
  const child = startChild(`nats-server :${port}`, binary, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir]);
  await Promise.race([waitForPort(port), child.exited.then(() => Promise.reject(new Error(`nats-server exited:\n${child.output()}`)))]);
  return child;
}

// ---- a TCP balancer in front of nodes ----------------------------------------------------------

/**
 * A TCP proxy that sends each new connection to the first backend (port on 127.0.0.1) that
 * accepts it, in the order given — so when a node dies its clients' reconnections land on the
 * next one, as behind a load balancer. It can cut its connections (a network failure: no close
 * frame) and hold new ones off (`paused`: accepted and dropped at once).
 */
export class Balancer {
  paused = false;
  backends: number[];
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #port = 0;

  constructor(backends: number[]) {
    this.backends = backends;
    this.#server = createServer((client) => this.#accept(client));
  }

  get url(): string {
    return `ws://127.0.0.1:${this.#port}/ws`;
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.#port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  /** Destroy every proxied connection (both sides), like a network cut. */
  cut(): void {
    for (const [client, upstream] of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.#pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    client.on('error', () => {});
    if (this.paused) {
      client.destroy();
      return;
    }
    client.pause();
    const tryBackend = (index: number): void => {
      const port = this.backends[index];
      if (port === undefined) {
        client.destroy();
        return;
      }
      const upstream = netConnect({ host: '127.0.0.1', port });
      upstream.once('error', () => {
        upstream.destroy();
        tryBackend(index + 1);
      });
      upstream.once('connect', () => {
        upstream.removeAllListeners('error');
        upstream.on('error', () => {});
        if (client.destroyed || this.paused) {
          upstream.destroy();
          client.destroy();
          return;
        }
        const pair: [Socket, Socket] = [client, upstream];
        this.#pairs.add(pair);
        const end = (): void => {
          this.#pairs.delete(pair);
          client.destroy();
          upstream.destroy();
        };
        client.on('close', end);
        upstream.on('close', end);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    tryBackend(0);
  }
}
