/**
 * The `duplex` command line. Thin by design: it parses flags and calls the library; nothing
 * here that a library user cannot do.
 */
import { readFileSync } from 'node:fs';
import { MissingPeerDependencyError } from '../node/peer.js';
import { parse, UsageError, type Flags, type Parsed } from './args.js';
import { BENCH_FLAGS, CONNECT_FLAGS, ECHO_FLAGS, HELP_FLAGS, SERVE_FLAGS } from './flags.js';
import { BENCH_USAGE, CONNECT_USAGE, ECHO_USAGE, MAIN_USAGE, SERVE_USAGE } from './usage.js';

type Run = (parsed: Parsed) => Promise<number>;

/**
 * The commands: their flags, their usage text, and how to load each. A command is imported only
 * when it runs: `duplex echo` must not load what only `duplex serve` needs (pino, prom-client,
 * the hub), which are optional peer dependencies. Flags are parsed, and `--help` answered,
 * before that import.
 */
const COMMANDS: Readonly<Record<string, { flags: Flags; usage: string; load: () => Promise<Run> }>> = {
  echo: { flags: ECHO_FLAGS, usage: ECHO_USAGE, load: async () => (await import('./echo.js')).echoCommand },
  connect: { flags: CONNECT_FLAGS, usage: CONNECT_USAGE, load: async () => (await import('./connect.js')).connectCommand },
  serve: { flags: SERVE_FLAGS, usage: SERVE_USAGE, load: async () => (await import('./serve.js')).serveCommand },
  bench: { flags: BENCH_FLAGS, usage: BENCH_USAGE, load: async () => (await import('./bench/command.js')).benchCommand },
};

/** The command called `name`; own properties only, so `duplex constructor` is an unknown command. */
function commandNamed(name: string): (typeof COMMANDS)[string] | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

/** The version in the package's package.json (dist/src/cli/main.js → ../../../package.json). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
  if (pkg.name !== 'duplex-ws' || typeof pkg.version !== 'string') throw new Error('package.json of duplex-ws not found next to the CLI');
  return pkg.version;
}

/** Run the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      process.stderr.write(MAIN_USAGE);
      return 2;
    case 'help':
    case '--help':
    case '-h': {
      const topic = rest[0];
      if (topic === undefined) {
        process.stdout.write(MAIN_USAGE);
        return 0;
      }
      const usage = commandNamed(topic)?.usage;
      if (usage === undefined) {
        process.stderr.write(`duplex help: unknown command "${topic}"\n\n${MAIN_USAGE}`);
        return 2;
      }
      process.stdout.write(usage);
      return 0;
    }
    case 'version':
    case '--version':
    case '-V':
      try {
        process.stdout.write(`duplex ${version()}\n`);
        return 0;
      } catch (error) {
        process.stderr.write(`duplex: ${(error as Error).message}\n`);
        return 1;
      }
  }
  const spec = commandNamed(command);
  if (spec === undefined) {
    process.stderr.write(`duplex: unknown command "${command}"\n\n${MAIN_USAGE}`);
    return 2;
  }
  const { usage } = spec;
  try {
    let parsed: Parsed;
    try {
      parsed = parse(rest, { ...spec.flags, ...HELP_FLAGS });
    } catch (error) {
      // `duplex connect --bogus --help` still gets the help it asked for.
      if (wantsHelp(rest)) parsed = { values: { help: true }, positionals: [] };
      else throw error;
    }
    if (parsed.values.help === true) {
      process.stdout.write(usage);
      return 0;
    }
    delete parsed.values.help;
    return await (await spec.load())(parsed);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`duplex ${command}: ${error.message}\n${synopsis(usage)}Run "duplex ${command} --help" for every option.\n`);
      return 2;
    }
    if (error instanceof MissingPeerDependencyError) {
      // e.g. `duplex serve` without pino: say what to install, without a stack trace.
      process.stderr.write(`duplex ${command}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/** `--help` or `-h` before a `--` terminator. */
function wantsHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((arg) => arg === '--help' || arg === '-h');
}

/** The "Usage:" lines at the top of a usage text. */
function synopsis(usage: string): string {
  const blank = usage.indexOf('\n\n');
  return blank < 0 ? usage : usage.slice(0, blank + 1);
}
