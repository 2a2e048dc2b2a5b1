// A network namespace of the soak's own, so that its TCP buffers can be sized without touching
// the machine's: on the host's loopback (MTU 65536) the kernel gives every socket a send buffer of
// ~3.9 MB (`ss -m`: tb3939840) before a single byte waits in the process, so a reader that falls
// behind at a few KB/s would take the better part of an hour to reach the hub's slow-consumer
// ceiling. In the namespace `net.ipv4.tcp_wmem`/`tcp_rmem` (per namespace since Linux 4.15) cap
// what the kernel holds per socket; nothing else differs (its own loopback, 127.0.0.1).
// Needs root and iproute2's `ip`. The name carries the creator's pid: leftovers of a run that died
// (pid gone) are removed at the next start; a live run's namespace is never touched.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Every namespace this module creates is called `${PREFIX}<pid>`. */
export const PREFIX = 'duplex-soak-';

/** Kernel TCP buffer limits in bytes: min, default, max (the sysctl's three fields). */
export type TcpBuffers = readonly [min: number, initial: number, max: number];

export interface Namespace {
  readonly name: string;
  /** The command that runs a program inside it (`ip netns exec NAME`). */
  readonly exec: readonly string[];
  /** Delete it (synchronous, idempotent: also called from process exit handlers). */
  remove(): void;
}

function ip(args: readonly string[]): { ok: boolean; out: string } {
  const res = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: res.status === 0, out: `${res.stdout ?? ''}${res.stderr ?? ''}`.trim() };
}

/** Whether process `pid` still exists (namespaces are Linux-only, and so is /proc). */
function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** Delete namespaces of this module whose creating process is gone. */
function removeLeftovers(): void {
  const list = ip(['netns', 'list']);
  if (!list.ok) return;
  for (const line of list.out.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (!name.startsWith(PREFIX)) continue;
    const pid = Number(name.slice(PREFIX.length));
    if (Number.isInteger(pid) && pid > 0 && !alive(pid)) ip(['netns', 'delete', name]);
  }
}

/** Why a namespace cannot be made here, or undefined when it can be tried. */
export function namespaceUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (spawnSync('ip', ['-V']).status !== 0) return "iproute2's ip command is missing";
  return undefined;
}

/**
 * Create the namespace with loopback up and the given TCP buffer limits.
 * @throws Error with `ip`'s or `sysctl`'s own message when a step fails (the namespace is removed).
 */
export function createNamespace(wmem: TcpBuffers, rmem: TcpBuffers): Namespace {
  removeLeftovers();
  const name = `${PREFIX}${process.pid}`;
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    ip(['netns', 'delete', name]);
  };
  const step = (args: readonly string[]): void => {
    const res = ip(args);
    if (!res.ok) {
      remove();
      throw new Error(`ip ${args.join(' ')} failed: ${res.out}`);
    }
  };
  step(['netns', 'add', name]);
  step(['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  step(['netns', 'exec', name, 'sysctl', '-q', '-w', `net.ipv4.tcp_wmem=${wmem.join(' ')}`, `net.ipv4.tcp_rmem=${rmem.join(' ')}`]);
  return { name, exec: ['ip', 'netns', 'exec', name], remove };
}
