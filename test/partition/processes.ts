// The processes of the partition bed: spawned by us (a broker, hub nodes, the client workload, the
// link emulator), each tracked by PID until it exits, its output kept for the report of a
// failure, and killed by PID — with SIGKILL when the test process exits without cleaning up.
import { spawn, type ChildProcess } from 'node:child_process';

/** A process we started. */
export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** The exit code or signal. */
  readonly exited: Promise<number | string | null>;
  /** stdout and stderr so far (the last `keep` characters). */
  output(): string;
  /** Resolve with the first match of `pattern` in its output, stdout or stderr (also among lines already printed). */
  waitFor(pattern: RegExp, timeout: number): Promise<RegExpExecArray>;
  /** Write a line to its stdin. */
  send(line: string): void;
  /** Send `signal` and wait for the exit, SIGKILL after `timeout` ms. */
  stop(signal?: NodeJS.Signals, timeout?: number): Promise<void>;
}

const running = new Set<Proc>();

process.on('exit', () => {
  for (const proc of running) if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
});

/** Start `command` with a pipe on each of stdin, stdout and stderr. */
export function startProcess(name: string, command: string, args: readonly string[], keep = 50_000): Proc {
  const env = { ...process.env };
  // Under node:test a spawned node would otherwise report as a test file.
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  let output = '';
  const waiters = new Set<() => void>();
  const keepOutput = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-keep);
    for (const check of [...waiters]) check();
  };
  child.stdout.on('data', keepOutput);
  child.stderr.on('data', keepOutput);
  child.stdin.on('error', () => {}); // the process may be gone before a last command
  const exited = new Promise<number | string | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? code));
    child.once('error', (error) => {
      output += `\nspawn error: ${error.message}`;
      resolve(null);
    });
  });
  const proc: Proc = {
    name,
    child,
    pid: child.pid,
    exited,
    output: () => output,
    waitFor(pattern, timeout) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`${name}: no ${String(pattern)} within ${timeout} ms; output:\n${output.slice(-4000)}`)), timeout);
        const done = (error: Error | undefined, match?: RegExpExecArray): void => {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(error);
          else resolve(match!);
        };
        const check = (): void => {
          const match = pattern.exec(output);
          if (match) done(undefined, match);
        };
        waiters.add(check);
        void exited.then((code) => done(new Error(`${name} exited (${String(code)}); output:\n${output.slice(-4000)}`)));
        check();
      });
    },
    send(line) {
      if (child.stdin.writable) child.stdin.write(line.endsWith('\n') ? line : `${line}\n`);
    },
    async stop(signal = 'SIGTERM', timeout = 5000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(proc);
  void exited.then(() => running.delete(proc));
  return proc;
}

/** Run a command to its end; rejects with its output when it exits non-zero. */
export async function run(command: string, args: readonly string[], timeout = 10_000): Promise<string> {
  const proc = startProcess(command, command, args);
  proc.child.stdin?.end();
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeout);
  const code = await proc.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${String(code)}): ${proc.output().trim()}`);
  return proc.output();
}

/** Whether a process with this PID exists (signal 0 tests for it without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
