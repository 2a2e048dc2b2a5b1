/**
 * The fuzz loop shared by the short and the long run: batches of generated inputs (fast-check
 * samples from a structure-aware arbitrary, seeded, so a batch can be replayed) alternating
 * with batches of mutations of a seed pool (the corpus plus recent generated inputs).
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { InvariantViolation, Rng, type Target } from './targets.js';

/** An input that broke an invariant (or took too long). */
export interface Failure {
  target: string;
  message: string;
  input: unknown;
}

export interface RunStats {
  target: string;
  inputs: number;
  generated: number;
  mutated: number;
  ms: number;
  /** Slowest single input, in ms. */
  maxInputMs: number;
  failures: Failure[];
}

/** One input slower than this is reported as a failure (a near-hang). */
export const SLOW_INPUT_MS = 2000;
const BATCH = 500;
const POOL = 256;

/** Where the inputs that found bugs are kept (the source tree, not dist). */
export function corpusDir(): string {
  // dist/test/fuzz → test/fuzz/corpus
  return join(new URL('.', import.meta.url).pathname, '..', '..', '..', 'test', 'fuzz', 'corpus');
}

/** The corpus entries of a target: `{ target, note, input }` JSON files. */
export function loadCorpus(target: Target<unknown>): unknown[] {
  let files: string[];
  try {
    files = readdirSync(corpusDir()).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const out: unknown[] = [];
  for (const file of files) {
    const entry = JSON.parse(readFileSync(join(corpusDir(), file), 'utf8')) as { target: string; input: unknown };
    if (entry.target === target.name || (target.name.startsWith(entry.target) && entry.target.length > 0)) out.push(target.decode(entry.input));
  }
  return out;
}

/** Save a failing input to the corpus (named by its hash, so a rerun does not duplicate it). */
export function saveFailure(target: Target<unknown>, failure: Failure): string {
  const json = JSON.stringify({ target: target.name, note: failure.message, input: target.encode(failure.input) }, null, 1);
  const name = `${target.name.replace(/[^a-z0-9]+/gi, '-')}-${createHash('sha1').update(json).digest('hex').slice(0, 10)}.json`;
  mkdirSync(corpusDir(), { recursive: true });
  writeFileSync(join(corpusDir(), name), json + '\n');
  return name;
}

/**
 * Run `count` inputs of `target` (`generatedShare` of the batches generated, the rest mutated), from `seed`.
 * `onBatch` is called after every batch (progress, watchdog heartbeat).
 */
export function fuzz(
  target: Target<unknown>,
  count: number,
  seed: number,
  options: { maxFailures?: number; onBatch?: (done: number) => void; /** Share of batches that are generated (default 0.5). */ generatedShare?: number } = {},
): RunStats {
  const maxFailures = options.maxFailures ?? 5;
  const every = Math.max(1, Math.round(1 / (options.generatedShare ?? 0.5)));
  const stats: RunStats = { target: target.name, inputs: 0, generated: 0, mutated: 0, ms: 0, maxInputMs: 0, failures: [] };
  const pool: unknown[] = loadCorpus(target);
  const fixed = pool.length;
  let poolNext = 0;
  const rng = new Rng(seed ^ 0x5bd1e995);
  const start = performance.now();
  const one = (input: unknown): void => {
    const t0 = performance.now();
    try {
      target.check(input);
    } catch (error) {
      const message = error instanceof InvariantViolation ? error.message : `harness error: ${(error as Error)?.stack ?? String(error)}`;
      if (stats.failures.length < maxFailures) stats.failures.push({ target: target.name, message, input });
    }
    const dt = performance.now() - t0;
    if (dt > stats.maxInputMs) stats.maxInputMs = dt;
    if (dt > SLOW_INPUT_MS && stats.failures.length < maxFailures) {
      stats.failures.push({ target: target.name, message: `one input took ${dt.toFixed(0)} ms`, input });
    }
    stats.inputs++;
  };
  let batch = 0;
  while (stats.inputs < count && stats.failures.length < maxFailures) {
    const n = Math.min(BATCH, count - stats.inputs);
    if (batch % every === 0 || pool.length === 0) {
      for (const input of fc.sample(target.arbitrary, { numRuns: n, seed: seed + batch })) {
        one(input);
        stats.generated++;
        // Keep some generated inputs as mutation seeds (the corpus entries stay).
        if (rng.int(8) === 0) {
          if (pool.length < fixed + POOL) pool.push(input);
          else pool[fixed + (poolNext++ % POOL)] = input;
        }
      }
    } else {
      for (let i = 0; i < n; i++) {
        one(target.mutate(pool[rng.int(pool.length)], rng));
        stats.mutated++;
      }
    }
    batch++;
    options.onBatch?.(stats.inputs);
  }
  stats.ms = performance.now() - start;
  return stats;
}
