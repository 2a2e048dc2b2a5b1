// A local NATS cluster for the tests: three nats-server processes of our own, on free loopback
// ports (client and cluster/route ports), routed to each other, each with JetStream on a store
// dir under one temp dir; a server can be killed (SIGKILL, by its PID) and restarted on the same
// ports and store. The processes are tracked by cluster-helpers.ts, so killAll() (and the exit
// of the test process) ends them whatever happens.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { connect, type NatsConnection } from 'nats';

import { delay, freePort, requireBinary, startChild, waitForPort, type Child } from './cluster-helpers.js';

/** One server of the cluster. */
export interface ClusterServer {
  /** Its server name (`n0`, `n1`, …): what JetStream reports as a stream's leader or peer. */
  readonly name: string;
  /** `127.0.0.1:<client port>` */
  readonly url: string;
  readonly port: number;
  readonly clusterPort: number;
  /** The running process, undefined while it is killed. */
  child: Child | undefined;
}

/** A running local cluster. */
export interface NatsCluster {
  readonly servers: readonly ClusterServer[];
  /** Every server's client URL, comma-separated (the shape `duplex serve` takes). */
  readonly urls: string;
  /** SIGKILL server `index` (its PID) and wait for the exit. */
  kill(index: number): Promise<void>;
  /** Start server `index` again on its ports and store, and wait until it serves clients. */
  restart(index: number): Promise<void>;
  /** Resolve once JetStream can place a stream on `expected` servers (bounded). */
  ready(expected?: number, timeout?: number): Promise<void>;
  /** The server name leading `stream` (waits for one, bounded). */
  leaderOf(stream: string, timeout?: number): Promise<string>;
  /** Ask the leader of `stream` to step down until `wanted` leads it (bounded). */
  moveLeader(stream: string, wanted: string, timeout?: number): Promise<void>;
  /** Stop every server (SIGTERM, then SIGKILL after a second) and remove the store. */
  stop(): Promise<void>;
}

/** Where nats-server is, or why the cluster tests are skipped (in CI a missing one fails the run). */
export function natsServerBinary(): { path: string } | { skip: string } {
  return requireBinary('nats-server', 'apt-get install nats-server, or the release binary');
}

/** Start `size` routed nats-servers with JetStream and wait until JetStream is clustered and ready. */
export async function startNatsCluster(binary: string, size = 3, label = 'dxc'): Promise<NatsCluster> {
  const storeRoot = mkdtempSync(join(tmpdir(), 'duplex-nats-cluster-'));
  const servers: ClusterServer[] = [];
  for (let i = 0; i < size; i++) {
    const port = await freePort();
    const clusterPort = await freePort();
    servers.push({ name: `n${i}`, url: `127.0.0.1:${port}`, port, clusterPort, child: undefined });
  }
  const clusterName = `${label}-${process.pid}`;

  const launch = async (index: number): Promise<void> => {
    const server = servers[index]!;
    const routes = servers.filter((_, j) => j !== index).map((s) => `nats://127.0.0.1:${s.clusterPort}`).join(',');
    const child = startChild(`nats-server ${server.name} :${server.port}`, binary, [
      '-js',
      '-a', '127.0.0.1',
      '-p', String(server.port),
      '-n', server.name,
      '-sd', join(storeRoot, server.name),
      '--cluster_name', clusterName,
      '--cluster', `nats://127.0.0.1:${server.clusterPort}`,
      '--routes', routes,
    ]);
    server.child = child;
    await Promise.race([
      waitForPort(server.port),
      child.exited.then(() => Promise.reject(new Error(`nats-server ${server.name} exited:\n${child.output()}`))),
    ]);
  };

  /** A connection to the first running server (for the cluster's own checks). */
  const admin = async (): Promise<NatsConnection> => {
    const running = servers.filter((s) => s.child !== undefined).map((s) => s.url);
    return connect({ servers: running, timeout: 2000 });
  };

  const cluster: NatsCluster = {
    servers,
    urls: servers.map((s) => `nats://${s.url}`).join(','),
    async kill(index) {
      const child = servers[index]!.child;
      if (child === undefined) return;
      child.process.kill('SIGKILL');
      await child.exited;
      servers[index]!.child = undefined;
    },
    async restart(index) {
      await launch(index);
    },
    async ready(expected = size, timeout = 20_000) {
      const deadline = Date.now() + timeout;
      let last = 'no answer';
      for (;;) {
        const nc = await admin().catch(() => undefined);
        try {
          if (nc !== undefined) {
            // Ready when a stream with `expected` replicas can be placed: JetStream has a meta
            // leader and knows that many servers (the routes alone come up sooner).
            const jsm = await nc.jetstreamManager({ timeout: 2000 });
            const probe = `PROBE_${process.pid}`;
            await jsm.streams.add({ name: probe, subjects: [`probe.${process.pid}`], num_replicas: expected });
            await jsm.streams.delete(probe);
            return;
          }
        } catch (error) {
          last = error instanceof Error ? error.message : String(error);
        } finally {
          await nc?.close().catch(() => undefined);
        }
        if (Date.now() > deadline) throw new Error(`the NATS cluster is not ready after ${timeout} ms (${last})`);
        await delay(100);
      }
    },
    async leaderOf(stream, timeout = 15_000) {
      const deadline = Date.now() + timeout;
      const nc = await admin();
      try {
        // No API check: right after a server died, JetStream may not answer for seconds.
        const jsm = await nc.jetstreamManager({ timeout: 2000, checkAPI: false });
        for (;;) {
          const leader = await jsm.streams.info(stream).then((i) => i.cluster?.leader, () => undefined);
          if (leader !== undefined && leader !== '') return leader;
          if (Date.now() > deadline) throw new Error(`stream ${stream} has no leader after ${timeout} ms`);
          await delay(100);
        }
      } finally {
        await nc.close();
      }
    },
    async moveLeader(stream, wanted, timeout = 20_000) {
      const deadline = Date.now() + timeout;
      for (;;) {
        const leader = await cluster.leaderOf(stream, Math.max(1000, deadline - Date.now()));
        if (leader === wanted) return;
        if (Date.now() > deadline) throw new Error(`stream ${stream} is still led by ${leader}, not ${wanted}, after ${timeout} ms`);
        const nc = await admin();
        try {
          // JetStream's step-down hands the leadership to another peer (chosen by the cluster).
          await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, undefined, { timeout: 2000 }).catch(() => undefined);
        } finally {
          await nc.close();
        }
        await delay(300);
      }
    },
    async stop() {
      await Promise.all(servers.map(async (s) => s.child?.stop('SIGTERM', 1000)));
      for (const s of servers) s.child = undefined;
      rmSync(storeRoot, { recursive: true, force: true });
    },
  };

  try {
    await Promise.all(servers.map((_, i) => launch(i)));
    await cluster.ready();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

// ---- the 0-silent-loss accounting (as broker-restart-suite.ts counts) --------------------------

export { account, type Accounting, type Ack, type Received } from './loss-accounting.js';
