// The soaks' process plumbing: the orchestrator starts the script again as its child roles
// (server, load) with an IPC channel, pinned to one CPU each with `taskset` when it exists and
// optionally inside a network namespace (`ip netns exec`), asks them for samples, stops them,
// and makes sure none outlives the run: a watchdog, and SIGKILL on exit or Ctrl-C.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/** The descriptor limit of this process (`ulimit -n`); children inherit it. */
export function ulimitN(): number {
  const res = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const text = res.stdout.trim();
  return text === 'unlimited' ? Infinity : Number(text);
}

/** Exit with status 2 and a hint unless each process may hold `connections` sockets and some spare. */
export function requireDescriptors(connections: number): void {
  const limit = ulimitN();
  if (!(limit >= connections + 1024)) {
    process.stderr.write(`ulimit -n is ${limit}: each process needs ${connections} descriptors and some spare; raise it (ulimit -n ${connections + 4096}) or lower --connections\n`);
    process.exit(2);
  }
}

/** Whether `taskset` can pin a process here. */
export function canPin(): boolean {
  return spawnSync('taskset', ['-c', '0', 'true']).status === 0;
}

/**
 * The orchestrator's command line minus its own options (output files, pinning…): what the
 * children get, so that they see the same workload options. `withValue` options take the next
 * word unless written `--name=value`.
 */
export function childArgs(argv: readonly string[], withValue: readonly string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]!.split('=')[0]!;
    if (withValue.includes(name)) {
      if (!argv[i]!.includes('=')) i++;
    } else if (!flags.includes(name)) {
      out.push(argv[i]!);
    }
  }
  return out;
}

/** A child's message with a `type`; a sample carries its payload in `sample`. */
interface Typed {
  type: string;
  sample?: unknown;
}

/** Wait for the next message of `type` from `child` (rejects after `timeoutMs`, or if the child exits). */
export function waitFor<T extends Typed>(child: ChildProcess, type: T['type'], timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no ${type} message within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    function onMessage(message: Typed): void {
      if (message.type !== type) return;
      done();
      resolve(message as T);
    }
    function onExit(code: number | null): void {
      done();
      reject(new Error(`the child exited (code ${code}) before sending ${type}`));
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Send `request` and resolve with the `sample` of the child's next `sample` message. */
export async function ask<T>(child: ChildProcess, request: Typed = { type: 'sample' }, timeoutMs = 15_000): Promise<T> {
  const reply = waitFor<Typed>(child, 'sample', timeoutMs);
  child.send(request);
  return (await reply).sample as T;
}

/** Ask `child` to stop (`{ type: 'stop' }`) and wait for it to exit; SIGKILL after `timeoutMs`. */
export function stopChild(child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      child.send({ type: 'stop' });
    } catch {
      child.kill('SIGKILL');
    }
  });
}

/** Exit with status 2 and `why` when the run failed (`why` defined). */
export function exitIfFailed(name: string, why: string | undefined): void {
  if (why === undefined) return;
  process.stderr.write(`${name}: ${why}\n`);
  process.exit(2);
}

/** Sleep until `performance.now()` reaches `at` (ms). */
export function sleepUntil(at: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));
}

/** One sample of both children. */
export interface Sampled<S, L> {
  /** Seconds since the start. */
  t: number;
  /** Seconds since the previous sample. */
  dt: number;
  /** Seconds since the target was first held (negative during the ramp). */
  held: number;
  server: S;
  load: L;
}

/**
 * Every `seconds` after `t0` (a `performance.now()` time), ask the server and the load for a
 * sample and hand both to `each`, until `each` returns true or the run fails (a sample that does
 * not come within 15 s fails it). `heldStart()` is the time the target was first held, seconds
 * after `t0`, or negative while ramping.
 */
export async function sampleEvery<S, L>(
  children: Children,
  [server, load]: readonly [ChildProcess, ChildProcess],
  t0: number,
  seconds: number,
  heldStart: () => number,
  each: (sample: Sampled<S, L>) => boolean,
): Promise<void> {
  let prev = 0;
  for (let n = 1; !children.failure; n++) {
    await sleepUntil(t0 + n * seconds * 1000);
    if (children.failure) return;
    let pair: [S, L];
    try {
      pair = await Promise.all([ask<S>(server), ask<L>(load)]);
    } catch (error) {
      children.fail(`sampling failed: ${(error as Error).message}`);
      return;
    }
    const t = (performance.now() - t0) / 1000;
    const start = heldStart();
    const done = each({ t, dt: t - prev, held: start < 0 ? -1 : t - start, server: pair[0], load: pair[1] });
    prev = t;
    if (done) return;
  }
}

/** The children of one run, and what must happen whatever way the run ends. */
export class Children {
  readonly #list: ChildProcess[] = [];
  readonly #cleanups: Array<() => void> = [];
  #stopping = false;
  /** Why the run failed, if it did: the first `fail()`, or a child that exited before `stop()`. */
  failure: string | undefined;

  /**
   * @param script The script the children run (this one, with `--role`).
   * @param pin Pin each child to its CPU with `taskset`.
   * @param wrapper A command the children run under (e.g. `ip netns exec NAME`), or none.
   */
  constructor(
    private readonly script: string,
    private readonly pin: boolean,
    private readonly wrapper: readonly string[] = [],
  ) {
    const exit = (): void => this.killAll();
    process.on('exit', exit);
    process.on('SIGINT', () => {
      exit();
      process.exit(130);
    });
    process.on('SIGTERM', () => {
      exit();
      process.exit(143);
    });
  }

  /** Start `script --role ROLE ...args` with an IPC channel, pinned to `cpu`. */
  start(role: string, cpu: number, nodeFlags: readonly string[], args: readonly string[]): ChildProcess {
    const node = [process.execPath, ...nodeFlags, this.script, '--role', role, ...args];
    // `ip netns exec` and `taskset` exec the next program with the IPC descriptor and NODE_CHANNEL_FD inherited.
    const argv = [...this.wrapper, ...(this.pin ? ['taskset', '-c', String(cpu)] : []), ...node];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#list.push(child);
    child.once('exit', (code, signal) => {
      if (!this.#stopping) this.fail(`the ${role} process exited early (code ${code}, signal ${signal})`);
    });
    return child;
  }

  /** Mark the run failed (the first reason is kept). */
  fail(why: string): void {
    this.failure ??= why;
  }

  /** Stop `children` one after the other (see `stopChild`); their exits are expected from now on. */
  async stop(...children: ChildProcess[]): Promise<void> {
    this.#stopping = true;
    for (const child of children) await stopChild(child);
  }

  /** Run `fn` once the children are killed, however the run ends (synchronous work only). */
  onCleanup(fn: () => void): void {
    this.#cleanups.push(fn);
  }

  /** Kill every child still running, then run the cleanups (idempotent). */
  killAll(): void {
    for (const child of this.#list) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const fn of this.#cleanups.splice(0)) {
      try {
        fn();
      } catch (error) {
        process.stderr.write(`soak: cleanup failed: ${(error as Error).message}\n`);
      }
    }
  }

  /** Whatever happens, the run ends after `ms`: kill the children and exit with status 2. */
  watchdog(ms: number): void {
    setTimeout(() => {
      process.stderr.write('soak: watchdog expired; killing the children\n');
      this.killAll();
      process.exit(2);
    }, ms).unref();
  }
}
