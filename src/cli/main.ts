/**
 * The `duplex` command line. Thin by design: it parses flags and calls the library; nothing
 * here that a library user cannot do.
 */
import { parseArgs } from 'node:util';
import { MissingPeerDependencyError } from '../node/peer.js';
// Each command is imported when it runs: `duplex echo` must not load what only `duplex serve` needs
// (pino, prom-client, the hub), which are optional peer dependencies.

const USAGE = `Usage: duplex <command> [options]

Commands:
  echo     --port P [--host H] [--max-message-size BYTES]
           An echo server on every path of ws://H:P/ (permessage-deflate accepted).
  connect  URL [--echo] [--header "Name: value"]... [--subprotocol P]... [--no-deflate] [--json]
           An interactive client: typed lines are sent, received messages printed.
           /ping [data], /close [code [reason]] and /quit are commands.
           --echo: send every received message back until the server closes.
  serve    [--port 8080] [--host 127.0.0.1] [--config duplex.config.json] [--json-logs]
           [--broker memory|redis://…|nats://…] [--anonymous] [--auth-public-key FILE]
           [--tls-cert FILE --tls-key FILE] [--allowed-origin ORIGIN]... [--history-size N]
           [--history-ttl MS] [--max-message-size BYTES] [--max-connections N] [--log-level L]
           The hub at /ws, the browser client, the demo apps, /healthz and /metrics.
           Flags win over DUPLEX_* environment variables, which win over the config file.
  bench    URL [--mode echo|broadcast] [--connections N] [--size BYTES] [--window N]
           [--duration S] [--warmup S] [--text|--binary] [--json]
           Load for any WebSocket server: messages/s, MB/s, latency p50/p99/p99.9, errors.
  help     This text.
`;

/** Run the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'echo':
        return await (await import('./echo.js')).echoCommand(parse(rest, { port: { type: 'string' }, host: { type: 'string' }, 'max-message-size': { type: 'string' } }));
      case 'connect':
        return await (await import('./connect.js')).connectCommand(
          parse(rest, {
            echo: { type: 'boolean' },
            header: { type: 'string', multiple: true, short: 'H' },
            subprotocol: { type: 'string', multiple: true, short: 's' },
            'no-deflate': { type: 'boolean' },
            json: { type: 'boolean', short: 'j' },
          }),
        );
      case 'serve':
        return await (await import('./serve.js')).serveCommand(
          parse(rest, {
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
          }),
        );
      case 'bench':
        return await (await import('./bench.js')).benchCommand(
          parse(rest, {
            mode: { type: 'string', short: 'm' },
            connections: { type: 'string', short: 'c' },
            size: { type: 'string', short: 's' },
            window: { type: 'string', short: 'w' },
            duration: { type: 'string', short: 'd' },
            warmup: { type: 'string' },
            text: { type: 'boolean' },
            binary: { type: 'boolean' },
            json: { type: 'boolean', short: 'j' },
          }),
        );
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`duplex: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`duplex ${command}: ${error.message}\n\n${USAGE}`);
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

/** A command-line mistake: reported with the usage text and exit code 2. */
export class UsageError extends Error {}

type OptionSpec = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

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
