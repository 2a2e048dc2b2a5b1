// The command-line options both soaks take (their roles parse the same line: the orchestrator
// passes its workload options on to the children), how a number option is read, and their help.
import type { ParseArgsConfig } from 'node:util';

/** Options of every soak, with the defaults both use. */
export const COMMON_OPTIONS = {
  role: { type: 'string', default: 'main' },
  port: { type: 'string', default: '0' },
  connections: { type: 'string', default: '10000' },
  minutes: { type: 'string', default: '10' },
  'sample-seconds': { type: 'string', default: '10' },
  'open-rate': { type: 'string', default: '500' },
  'open-concurrency': { type: 'string', default: '100' },
  'no-gc': { type: 'boolean', default: false },
  'no-presence': { type: 'boolean', default: false },
  'no-pin': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  out: { type: 'string' },
  svg: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

/** The orchestrator's own options, not passed on to the children: [with a value, flags]. */
export const OWN_OPTIONS: readonly [readonly string[], readonly string[]] = [
  ['--out', '--svg', '--profile'],
  ['--json', '--no-pin'],
];

/** `raw` as a number ≥ `min`, or exit with status 2 saying what `--name` must be. */
export function numberArg(name: string, raw: unknown, min: number): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) {
    process.stderr.write(`--${name} must be a number ≥ ${min} (got ${String(raw)})\n`);
    process.exit(2);
  }
  return n;
}

/** The help lines of COMMON_OPTIONS that both soaks describe alike. */
export const COMMON_HELP = `  --open-rate R         handshakes started per second at most (default 500)
  --open-concurrency C  handshakes in flight at most (default 100)
  --no-gc               do not force a full GC before each memory reading
  --no-presence         hub without presence
  --no-pin              do not pin the processes to CPUs with taskset
  --json                one JSON object on stdout (the table goes to stderr)
  --out FILE            write the JSON summary to FILE
`;
