/**
 * The `duplex` command line. Thin by design: it parses flags and calls the library; nothing
 * here that a library user cannot do.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MissingPeerDependencyError } from '../node/peer.js';
import { COMMAND_USAGE, MAIN_USAGE } from './usage.js';
// Each command is imported when it runs: `duplex echo` must not load what only `duplex serve` needs
// (pino, prom-client, the hub), which are optional peer dependencies. Flags are parsed, and
// `--help` answered, before that import.

type OptionSpec = NonNullable<Parameters<typeof parseArgs>[0]>['options'];
type Run = (parsed: Parsed) => Promise<number>;

const HELP: OptionSpec = { help: { type: 'boolean', short: 'h' } };

/** The flags of each command, and how to load it. */
const COMMANDS: Record<string, { options: OptionSpec; load: () => Promise<Run> }> = {
  echo: {
    options: { port: { type: 'string', short: 'p' }, host: { type: 'string' }, 'max-message-size': { type: 'string' } },
    load: async () => (await import('./echo.js')).echoCommand,
  },
  connect: {
    options: {
      connect: { type: 'string', short: 'c' },
      execute: { type: 'string', multiple: true, short: 'x' },
      wait: { type: 'string', short: 'w' },
      binary: { type: 'boolean', short: 'b' },
      'show-ping-pong': { type: 'boolean', short: 'P' },
      echo: { type: 'boolean' },
      header: { type: 'string', multiple: true, short: 'H' },
      auth: { type: 'string' },
      origin: { type: 'string', short: 'o' },
      subprotocol: { type: 'string', multiple: true, short: 's' },
      'no-deflate': { type: 'boolean' },
      json: { type: 'boolean', short: 'j' },
      'no-check': { type: 'boolean', short: 'n' },
      insecure: { type: 'boolean', short: 'k' },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      passphrase: { type: 'string' },
    },
    load: async () => (await import('./connect.js')).connectCommand,
  },
  serve: {
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      config: { type: 'string', short: 'c' },
      'json-logs': { type: 'boolean' },
      broker: { type: 'string' },
      anonymous: { type: 'boolean' },
      'auth-public-key': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'allowed-origin': { type: 'string', multiple: true },
      'history-size': { type: 'string' },
      'history-ttl': { type: 'string' },
      'max-message-size': { type: 'string' },
      'max-connections': { type: 'string' },
      'log-level': { type: 'string' },
    },
    load: async () => (await import('./serve.js')).serveCommand,
  },
  bench: {
    options: {
      mode: { type: 'string', short: 'm' },
      connections: { type: 'string', short: 'c' },
      size: { type: 'string', short: 's' },
      window: { type: 'string', short: 'w' },
      duration: { type: 'string', short: 'd' },
      warmup: { type: 'string' },
      text: { type: 'boolean' },
      binary: { type: 'boolean' },
      json: { type: 'boolean', short: 'j' },
    },
    load: async () => (await import('./bench.js')).benchCommand,
  },
};

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
      const usage = COMMAND_USAGE[topic];
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
  const spec = COMMANDS[command];
  if (spec === undefined) {
    process.stderr.write(`duplex: unknown command "${command}"\n\n${MAIN_USAGE}`);
    return 2;
  }
  const usage = COMMAND_USAGE[command]!;
  try {
    let parsed: Parsed;
    try {
      parsed = parse(rest, { ...spec.options, ...HELP });
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

/** A command-line mistake: reported with the usage text and exit code 2. */
export class UsageError extends Error {}

/** Parsed flags and positionals of one command. */
export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

function parse(args: string[], options: OptionSpec): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values, positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A flag that must be an integer in a range. */
export function intFlag(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${String(value)}"`);
  return n;
}
