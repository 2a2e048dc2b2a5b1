/** The flags of `duplex bench`, checked: what to run. */
import { numberFlag, UsageError, type Parsed } from '../args.js';
import { BENCH_FLAGS } from '../flags.js';
import { parseTarget } from './handshake.js';

/** What to run. */
export interface BenchOptions {
  url: string;
  mode: 'echo' | 'broadcast';
  connections: number;
  /** Payload bytes per message (at least `HEADER_SIZE`). */
  size: number;
  /** Messages in flight per connection (echo) or from the sender (broadcast). */
  window: number;
  /** Seconds measured, after the warm-up. */
  duration: number;
  /** Seconds of load before measuring. */
  warmup: number;
  text: boolean;
  /** Print a progress line to stderr once a second. */
  progress: boolean;
}

/** Check the flags of `duplex bench`; throws a `UsageError` for anything wrong. */
export function benchOptions({ values, positionals }: Parsed): BenchOptions & { json: boolean } {
  const url = positionals[0];
  if (!url) throw new UsageError('bench needs a URL, e.g. duplex bench ws://127.0.0.1:8080/');
  if (positionals.length > 1) throw new UsageError(`bench takes one URL, got ${positionals.length} arguments`);
  try {
    parseTarget(url);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const mode = values.mode ?? BENCH_FLAGS.mode.default;
  if (mode !== 'echo' && mode !== 'broadcast') throw new UsageError(`--mode must be echo or broadcast, got "${String(mode)}"`);
  if (values.text === true && values.binary === true) throw new UsageError('choose one of --text and --binary');
  return {
    url,
    mode,
    connections: numberFlag(values, BENCH_FLAGS, 'connections'),
    size: numberFlag(values, BENCH_FLAGS, 'size'),
    window: numberFlag(values, BENCH_FLAGS, 'window'),
    duration: numberFlag(values, BENCH_FLAGS, 'duration'),
    warmup: numberFlag(values, BENCH_FLAGS, 'warmup'),
    text: values.text === true,
    json: values.json === true,
    progress: values.json !== true,
  };
}
