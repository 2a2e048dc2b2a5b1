// Local Redis deployments for the cluster and Sentinel tests, started by the tests themselves on
// free ports under a temp dir and stopped by PID at the end (every process goes through
// cluster-helpers' startChild, whose bookkeeping also kills what a crashed test left):
//
// - a Redis Cluster: N masters (`redis-server --cluster-enabled yes`, each with its own bus
//   port), optionally one replica per master, joined with `redis-cli --cluster create`;
// - Sentinel: one master, one replica, three sentinels (`redis-server <conf> --sentinel`).
//
// In CI (`CI=true`) a missing redis-server or redis-cli fails the run, never skips it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createClient } from 'redis';

import { delay, freePort, requireBinary, startChild, waitForPort, type Child } from './cluster-helpers.js';

/** The binaries, or why the tests are skipped (outside CI). */
export function redisBinaries(): { server: string; cli: string } | { skip: string } {
  const server = requireBinary('redis-server', 'apt-get install redis-server');
  const cli = requireBinary('redis-cli', 'apt-get install redis-tools');
  if ('skip' in server) return server;
  if ('skip' in cli) return cli;
  return { server: server.path, cli: cli.path };
}

/** Ports that are free now and distinct from each other. */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** One redis-server process of a deployment. */
export interface RedisProcess {
  readonly port: number;
  readonly child: Child;
}

/** Run a command against one server, with a short-lived connection. */
export async function redisCommand(port: number, args: string[]): Promise<unknown> {
  const client = createClient({ socket: { host: '127.0.0.1', port, connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.sendCommand(args);
  } finally {
    client.destroy();
  }
}

async function info(port: number, section: string): Promise<string> {
  return String(await redisCommand(port, ['INFO', section]));
}

/** Resolve once `check()` is true (polling every 100 ms); fail after `timeout` ms naming `what`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeout = 20_000): Promise<void> {
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await delay(100);
  }
}

const NO_PERSISTENCE = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];

async function startServer(binary: string, port: number, args: readonly string[], name = `redis-server :${port}`): Promise<RedisProcess> {
  const child = startChild(name, binary, ['--port', String(port), ...NO_PERSISTENCE, ...args]);
  await Promise.race([waitForPort(port), child.exited.then(() => Promise.reject(new Error(`${name} exited:\n${child.output()}`)))]);
  return { port, child };
}

// ---- Redis Cluster -----------------------------------------------------------------------------

/** A running local Redis Cluster. */
export interface RedisClusterHandle {
  readonly nodes: readonly RedisProcess[];
  /** `127.0.0.1:<port>` of every node, for `rootNodes`. */
  readonly rootNodes: readonly string[];
  /** The node currently serving `slot` as master. */
  masterOf(slot: number): Promise<RedisProcess>;
  /** The master `slot` is on, and its replica, once both are known. */
  shard(slot: number): Promise<{ master: RedisProcess; replicas: RedisProcess[] }>;
  /** Stop every process (SIGTERM, then SIGKILL) and remove the temp dir. */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  readonly masters: number;
  /** Replicas per master (0 or 1). */
  readonly replicas?: number;
  /** `cluster-node-timeout` (ms): how long a master may be unreachable before its replica takes over. */
  readonly nodeTimeout?: number;
}

/** CLUSTER SLOTS as (from, to, master port, replica ports). */
async function slotRanges(port: number): Promise<Array<{ from: number; to: number; master: number; replicas: number[] }>> {
  const reply = (await redisCommand(port, ['CLUSTER', 'SLOTS'])) as Array<[number, number, ...Array<[string, number, ...unknown[]]>]>;
  return reply.map(([from, to, master, ...replicas]) => ({ from, to, master: Number(master[1]), replicas: replicas.map((r) => Number(r[1])) }));
}

/** Start `masters` (+ replicas) cluster nodes on free ports and join them into one cluster. */
export async function startRedisCluster(binaries: { server: string; cli: string }, options: ClusterOptions): Promise<RedisClusterHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'duplex-redis-cluster-'));
  const count = options.masters * (1 + (options.replicas ?? 0));
  // Data ports and bus ports both chosen free: port + 10000, Redis' default bus port, may be taken or out of range.
  const ports = await freePorts(2 * count);
  const nodes: RedisProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.allSettled(nodes.map((n) => n.child.stop('SIGTERM', 2000)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < count; i++) {
      const port = ports[i]!;
      nodes.push(
        await startServer(binaries.server, port, [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', join(dir, `nodes-${port}.conf`),
          '--cluster-port', String(ports[count + i]!),
          '--cluster-node-timeout', String(options.nodeTimeout ?? 2000),
          '--dir', dir,
        ]),
      );
    }
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    const create = startChild('redis-cli --cluster create', binaries.cli, [
      '--cluster', 'create', ...addresses, '--cluster-replicas', String(options.replicas ?? 0), '--cluster-yes',
    ]);
    const code = await create.exited;
    if (code !== 0) throw new Error(`redis-cli --cluster create exited ${String(code)}:\n${create.output()}`);
    // Every node agrees the cluster is up, knows every other node, and every replica is in sync.
    await waitFor('the cluster to be ok on every node', async () => {
      for (const node of nodes) {
        const text = String(await redisCommand(node.port, ['CLUSTER', 'INFO']));
        if (!text.includes('cluster_state:ok') || !text.includes(`cluster_known_nodes:${count}`)) return false;
      }
      const ranges = await slotRanges(nodes[0]!.port);
      if (ranges.reduce((n, r) => n + r.to - r.from + 1, 0) !== 16384) return false;
      if (ranges.some((r) => r.replicas.length !== (options.replicas ?? 0))) return false;
      for (const node of nodes) {
        const replication = await info(node.port, 'replication');
        if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false;
      }
      return true;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  const byPort = (port: number): RedisProcess => nodes.find((n) => n.port === port)!;
  const live = (): RedisProcess => nodes.find((n) => n.child.process.exitCode === null && n.child.process.signalCode === null)!;
  return {
    nodes,
    rootNodes: nodes.map((n) => `127.0.0.1:${n.port}`),
    async masterOf(slot) {
      const range = (await slotRanges(live().port)).find((r) => r.from <= slot && slot <= r.to)!;
      return byPort(range.master);
    },
    async shard(slot) {
      const range = (await slotRanges(live().port)).find((r) => r.from <= slot && slot <= r.to)!;
      return { master: byPort(range.master), replicas: range.replicas.map(byPort) };
    },
    stop,
  };
}

// ---- Sentinel ----------------------------------------------------------------------------------

/** A running master + replica watched by three sentinels. */
export interface SentinelHandle {
  /** The name the sentinels monitor the master by. */
  readonly name: string;
  readonly master: RedisProcess;
  readonly replica: RedisProcess;
  readonly sentinels: readonly RedisProcess[];
  /** `127.0.0.1:<port>` of every sentinel, for `sentinelRootNodes`. */
  readonly sentinelRootNodes: readonly string[];
  /** The port of the master the sentinels name now. */
  currentMaster(): Promise<number>;
  stop(): Promise<void>;
}

export interface SentinelOptions {
  /** `down-after-milliseconds`: how long the master may not answer before the sentinels act. */
  readonly downAfter?: number;
}

/** Start a master, its replica and three sentinels (quorum 2) on free ports. */
export async function startRedisSentinel(binaries: { server: string }, options: SentinelOptions = {}): Promise<SentinelHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'duplex-redis-sentinel-'));
  const name = 'duplexmaster';
  const [masterPort, replicaPort, ...sentinelPorts] = await freePorts(5);
  const processes: RedisProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.allSettled(processes.map((p) => p.child.stop('SIGTERM', 2000)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const master = await startServer(binaries.server, masterPort!, ['--dir', dir]);
    processes.push(master);
    const replica = await startServer(binaries.server, replicaPort!, ['--dir', dir, '--replicaof', '127.0.0.1', String(masterPort)]);
    processes.push(replica);
    await waitFor('the replica to sync', async () => (await info(replicaPort!, 'replication')).includes('master_link_status:up'));
    const sentinels: RedisProcess[] = [];
    for (const port of sentinelPorts) {
      // A sentinel rewrites its config file (what it learnt): one file each, in the temp dir.
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          'protected-mode no',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${name} ${options.downAfter ?? 1000}`,
          `sentinel failover-timeout ${name} 10000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const child = startChild(`redis-sentinel :${port}`, binaries.server, [conf, '--sentinel']);
      await Promise.race([waitForPort(port), child.exited.then(() => Promise.reject(new Error(`sentinel exited:\n${child.output()}`)))]);
      const sentinel = { port, child };
      sentinels.push(sentinel);
      processes.push(sentinel);
    }
    // Sentinels find each other through the master's hello channel (every 2 s): a failover needs
    // a majority of them to agree, so wait until each knows the other two and the replica.
    await waitFor(
      'the sentinels to know each other and the replica',
      async () => {
        for (const s of sentinels) {
          const fields = (await redisCommand(s.port, ['SENTINEL', 'MASTER', name])) as unknown;
          const map = fieldMap(fields);
          if (map.get('num-other-sentinels') !== '2' || map.get('num-slaves') !== '1') return false;
        }
        return true;
      },
      15_000,
    );
    return {
      name,
      master,
      replica,
      sentinels,
      sentinelRootNodes: sentinels.map((s) => `127.0.0.1:${s.port}`),
      async currentMaster() {
        for (const s of sentinels) {
          try {
            const reply = (await redisCommand(s.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name])) as [string, string];
            return Number(reply[1]);
          } catch {
            // that sentinel is gone: ask the next
          }
        }
        throw new Error('no sentinel answers');
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A reply of field/value pairs (a flat array, or a RESP3 map) as a Map of strings. */
function fieldMap(reply: unknown): Map<string, string> {
  if (Array.isArray(reply)) {
    const map = new Map<string, string>();
    for (let i = 0; i + 1 < reply.length; i += 2) map.set(String(reply[i]), String(reply[i + 1]));
    return map;
  }
  if (reply instanceof Map) return new Map([...reply].map(([k, v]) => [String(k), String(v)]));
  return new Map(Object.entries(reply as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
}
