/**
 * What every command shares about its flags: the shape of a flag's definition (flags.ts holds
 * them), the parsed result a command gets, the usage error, and the checks of numeric values.
 * The commands import this, never main.ts, so that main.ts can import the commands without a
 * cycle.
 */
import { parseArgs } from 'node:util';
import { DuplexError } from '../protocol/errors.js';

/**
 * One flag of one command. The parser's option spec, the usage text and the command's default
 * and range all come from this, so a flag is written down once.
 */
export interface Flag {
  /** The one-letter alias (`-p`), if any. */
  readonly short?: string;
  /** 'boolean': present or absent; 'string': takes a value. */
  readonly type: 'string' | 'boolean';
  /** Repeatable: the values are collected in the order given. */
  readonly multiple?: boolean;
  /** The value's name in the usage text (`--port P`). */
  readonly value?: string;
  /**
   * The line of the usage text. `{default}`, `{min}` and `{max}` stand for those fields (for
   * serve, `{default}` is the config key's default); `\n` starts a continuation line.
   */
  readonly description: string;
  /** Used when the flag is absent (serve's come from its config defaults instead). */
  readonly default?: string | number;
  /** A numeric flag's range, and whether it must be an integer. */
  readonly range?: { readonly min: number; readonly max: number; readonly integer: boolean };
  /**
   * serve: the configuration key the flag sets, e.g. `limits.maxMessageSize`. Its environment
   * variable and its kind belong to the key (serve-config.ts), which keys without a flag have too.
   */
  readonly config?: string;
}

/** The flags of one command, by long name, in the order the usage text lists them. */
export type Flags = Readonly<Record<string, Flag>>;

/** A command-line mistake: reported with the usage text and exit code 2. */
export class UsageError extends DuplexError {
  override readonly name = 'UsageError';
  declare readonly code: 'ERR_DUPLEX_USAGE';
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_DUPLEX_USAGE', message, options);
  }
}

/** Parsed flags and positionals of one command. */
export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

type OptionSpec = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

/** The `node:util` parseArgs options of `flags`. */
export function optionSpec(flags: Flags): OptionSpec {
  const spec: NonNullable<OptionSpec> = {};
  for (const [name, flag] of Object.entries(flags)) {
    spec[name] = { type: flag.type, ...(flag.short !== undefined ? { short: flag.short } : {}), ...(flag.multiple === true ? { multiple: true } : {}) };
  }
  return spec;
}

/** Parse `args` strictly against `flags`; any mistake is a `UsageError` with parseArgs' message. */
export function parse(args: string[], flags: Flags): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options: optionSpec(flags), allowPositionals: true, strict: true });
    return { values, positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The range and default of a numeric flag; a definition without them is a mistake in flags.ts. */
export function rangeOf(name: string, flag: Flag | undefined): NonNullable<Flag['range']> & { fallback: number } {
  if (flag?.range === undefined || typeof flag.default !== 'number' || typeof flag.default !== 'number') throw new TypeError(`--${name} is not defined as a numeric flag with a default`);
  return { ...flag.range, fallback: flag.default };
}

/**
 * An integer flag within its range, or its default when absent. Lenient the way `Number()` is:
 * an empty value reads as 0 (unlike {@link numberFlag}).
 */
export function intFlag<F extends Flags>(values: Parsed['values'], flags: F, name: keyof F & string): number {
  const { min, max, fallback } = rangeOf(name, flags[name]);
  const value = values[name];
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${String(value)}"`);
  return n;
}

/** A number flag (an integer if its range says so) within its range, or its default when absent. */
export function numberFlag<F extends Flags>(values: Parsed['values'], flags: F, name: keyof F & string): number {
  const { min, max, integer, fallback } = rangeOf(name, flags[name]);
  const value = values[name];
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got "${String(value)}"`);
  }
  return n;
}
