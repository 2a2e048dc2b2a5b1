// The partition test bed: four hosts on this machine, each a network namespace, joined by
// point-to-point links that run through the user-space link emulator (netem.py):
//
//            clients (the workload: publishers, subscribers, roamers)
//            /  10.77.3.0  \  10.77.4.0
//     clients-a           clients-b
//          /                   \
//      node a                 node b          (duplex hub nodes)
//          \                   /
//      a-broker            b-broker
//           \ 10.77.1.0  / 10.77.2.0
//              broker                         (redis-server or nats-server -js)
//
// Every pair of hosts that talks has its own link, so no host routes for another and every
// fault the nemesis injects is on exactly one wire. Namespaces are named `dxp-<pid>-<host>`;
// those left by a run that died (its PID gone) are removed before a new bed is built, and a
// bed removes its own in `destroy()`, whatever happened.
//
// TCP inside the hosts is tuned the way a deployment that wants to notice a dead peer in
// seconds tunes it (the default gives up after ~15 minutes of retransmissions): a connection
// with unacknowledged data is aborted after `tcp_retries2 = 5` retransmissions (~12.6 s at the
// minimum RTO), an idle one with keepalive on after 5 s + 3 probes 1 s apart. So a short cut is
// ridden out by retransmission and a long one breaks connections: both paths get exercised.
import { accessSync, constants as fsConstants, statSync } from 'node:fs';

import { findBinary } from '../hub/cluster-helpers.js';
import { LinkEmulator } from './emulator.js';
import { alive, run, startProcess, type Proc } from './processes.js';

export type Host = 'broker' | 'a' | 'b' | 'clients';
export const HOSTS: readonly Host[] = ['broker', 'a', 'b', 'clients'];

/** A link between two hosts: its name, its ends (first, second), its /24. */
export interface Link {
  readonly name: LinkName;
  readonly hosts: readonly [Host, Host];
  readonly subnet: string;
}

export type LinkName = 'a-broker' | 'b-broker' | 'clients-a' | 'clients-b';

export const LINKS: readonly Link[] = [
  { name: 'a-broker', hosts: ['a', 'broker'], subnet: '10.77.1' },
  { name: 'b-broker', hosts: ['b', 'broker'], subnet: '10.77.2' },
  { name: 'clients-a', hosts: ['clients', 'a'], subnet: '10.77.3' },
  { name: 'clients-b', hosts: ['clients', 'b'], subnet: '10.77.4' },
];

/** Per-namespace TCP settings (see the header): a dead peer is noticed in seconds, not minutes. */
const TCP_SYSCTLS: Readonly<Record<string, string>> = {
  'net/ipv4/tcp_retries2': '5',
  'net/ipv4/tcp_keepalive_time': '5',
  'net/ipv4/tcp_keepalive_intvl': '1',
  'net/ipv4/tcp_keepalive_probes': '3',
  // No IPv6 on the links: no router solicitations or DAD on the wire, only the test's traffic.
  'net/ipv6/conf/all/disable_ipv6': '1',
  'net/ipv6/conf/default/disable_ipv6': '1',
};

const NAME_PATTERN = /^dxp-(\d+)-/;

/** The address of `host` on `link` (.1 for the link's first host, .2 for its second). */
export function addressOn(link: Link, host: Host): string {
  const index = link.hosts.indexOf(host);
  if (index < 0) throw new Error(`${host} is not on link ${link.name}`);
  return `${link.subnet}.${index + 1}`;
}

export function linkNamed(name: LinkName): Link {
  return LINKS.find((l) => l.name === name)!;
}

/** The Python the emulator runs on: Debian's, whose standard library is all it needs. */
export function pythonPath(): string {
  return process.env.PARTITION_PYTHON ?? '/usr/bin/python3';
}

/** What this machine lacks for the bed (empty: everything is there). */
export function missingCapabilities(brokerBinary: { name: string; install: string }): string[] {
  const missing: string[] = [];
  if (process.platform !== 'linux') missing.push('Linux (network namespaces)');
  if (process.getuid?.() !== 0) missing.push('root (uid 0) for network namespaces and TUN devices');
  try {
    accessSync('/dev/net/tun', fsConstants.R_OK | fsConstants.W_OK);
  } catch {
    missing.push('/dev/net/tun (a kernel with CONFIG_TUN)');
  }
  if (findBinary('ip') === undefined) missing.push('ip (iproute2: apt-get install iproute2)');
  try {
    accessSync(pythonPath(), fsConstants.X_OK);
  } catch {
    missing.push(`${pythonPath()} (apt-get install python3; or set PARTITION_PYTHON)`);
  }
  if (findBinary(brokerBinary.name) === undefined) missing.push(`${brokerBinary.name} (${brokerBinary.install})`);
  return missing;
}

/**
 * Remove namespaces named like ours whose run is gone (its PID is not alive) and that are older
 * than this process: kill what still runs in them (by PID: processes an earlier run started), then
 * delete them. Returns the names removed.
 */
export async function removeLeftovers(): Promise<string[]> {
  const listed = await run('ip', ['netns', 'list']);
  const names = listed
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => NAME_PATTERN.test(name));
  const startedAt = Date.now() - process.uptime() * 1000;
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(NAME_PATTERN.exec(name)![1]);
    if (pid === process.pid || alive(pid)) continue;
    let mtime = 0;
    try {
      mtime = statSync(`/run/netns/${name}`).mtimeMs;
    } catch {
      // not under /run/netns: let `ip` find it
    }
    if (mtime > startedAt) continue;
    await killAllIn(name);
    await run('ip', ['netns', 'delete', name]).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

/** SIGKILL every process still in namespace `name` (what `ip netns pids` lists). */
async function killAllIn(name: string): Promise<void> {
  const pids = (await run('ip', ['netns', 'pids', name]).catch(() => ''))
    .split('\n')
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid > 0);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** Four namespaces, four emulated links, and the processes started in them. */
export class Bed {
  readonly emulator: LinkEmulator;
  readonly prefix: string;
  readonly #procs: Proc[] = [];

  private constructor(prefix: string, emulator: LinkEmulator) {
    this.prefix = prefix;
    this.emulator = emulator;
  }

  /** The namespace of `host` in a bed with this prefix. */
  static namespace(prefix: string, host: Host): string {
    return `${prefix}-${host}`;
  }

  /** Build the bed (after removing leftovers of dead runs); on any failure, what was built is removed. */
  static async create(seed: number): Promise<Bed> {
    await removeLeftovers();
    const prefix = `dxp-${process.pid}`;
    const created: string[] = [];
    let emulator: LinkEmulator | undefined;
    try {
      for (const host of HOSTS) {
        const ns = Bed.namespace(prefix, host);
        await run('ip', ['netns', 'add', ns]);
        created.push(ns);
        await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        const writes = Object.entries(TCP_SYSCTLS).map(([key, value]) => `echo ${value} > /proc/sys/${key}`);
        await run('ip', ['netns', 'exec', ns, 'sh', '-c', writes.join(' && ')]);
      }
      // TUN names are global until moved: the PID keeps concurrent runs apart (≤ 15 characters).
      const devices = LINKS.map((link, i) => ({ name: link.name, first: `dxp${process.pid}-${i}a`, second: `dxp${process.pid}-${i}b` }));
      emulator = await LinkEmulator.start(pythonPath(), seed, devices);
      for (const [i, link] of LINKS.entries()) {
        const ends = [devices[i]!.first, devices[i]!.second];
        for (const [side, host] of link.hosts.entries()) {
          const ns = Bed.namespace(prefix, host);
          const peer = link.hosts[1 - side]!;
          const local = `${link.subnet}.${side + 1}`;
          const remote = `${link.subnet}.${2 - side}`;
          const inside = `to-${peer}`;
          await run('ip', ['link', 'set', 'dev', ends[side]!, 'netns', ns]);
          await run('ip', ['-n', ns, 'link', 'set', 'dev', ends[side]!, 'name', inside]);
          await run('ip', ['-n', ns, 'addr', 'add', local, 'peer', remote, 'dev', inside]);
          await run('ip', ['-n', ns, 'link', 'set', inside, 'up']);
        }
      }
      return new Bed(prefix, emulator);
    } catch (error) {
      await emulator?.close().catch(() => undefined);
      for (const ns of created) await run('ip', ['netns', 'delete', ns]).catch(() => undefined);
      throw error;
    }
  }

  /** Start `command` inside `host`'s namespace (`ip netns exec` execs it: the PID is the command's own). */
  spawn(host: Host, name: string, command: string, args: readonly string[]): Proc {
    const proc = startProcess(name, 'ip', ['netns', 'exec', Bed.namespace(this.prefix, host), command, ...args]);
    this.#procs.push(proc);
    return proc;
  }

  /** Stop every process of the bed, the emulator (its devices go with it), and delete the namespaces. */
  async destroy(): Promise<void> {
    await Promise.allSettled(this.#procs.map((p) => p.stop('SIGKILL', 2000)));
    await this.emulator.close().catch(() => undefined);
    for (const host of HOSTS) {
      const ns = Bed.namespace(this.prefix, host);
      await killAllIn(ns);
      await run('ip', ['netns', 'delete', ns]).catch(() => undefined);
    }
  }
}
