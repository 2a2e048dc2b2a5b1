/**
 * The long fuzz run: `npm run fuzz` (10 million inputs by default, across all targets).
 * Not a test file: under `node --test` it does nothing. Options (env):
 *   DUPLEX_FUZZ_TOTAL   total inputs (default 10,000,000), split by the weights below
 *   DUPLEX_FUZZ_SEED    base seed (default: the time; printed, so a run can be replayed)
 * The fuzz loop runs in a worker thread; the main thread is a watchdog: a batch that makes no
 * progress for 60 s is a hang, reported with its target and seed. Inputs that break an
 * invariant are written to test/fuzz/corpus/ (replayed by fuzz.test.ts from then on).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { TARGETS } from './targets.js';
import { fuzz, saveFailure, type RunStats } from './runner.js';

/** Share of the total per target: the frame parser gets most (4 variants), as it faces every byte. */
const WEIGHTS: Record<string, number> = {
  'frames/server': 0.22,
  'frames/client': 0.16,
  'frames/server+deflate': 0.16,
  'frames/client+deflate': 0.1,
  handshake: 0.18,
  'hub-wire': 0.18,
};
const HANG_MS = 60_000;

interface Job {
  total: number;
  seed: number;
}

type Report = { kind: 'progress'; target: string; done: number } | { kind: 'done'; stats: RunStats; saved: string[] };

function runWorker(job: Job): void {
  for (const target of TARGETS) {
    const count = Math.round(job.total * (WEIGHTS[target.name] ?? 0.1));
    const stats = fuzz(target, count, job.seed, {
      maxFailures: 5,
      generatedShare: 0.2,
      onBatch: (done) => {
        if (done % 20_000 < 500) parentPort!.postMessage({ kind: 'progress', target: target.name, done } satisfies Report);
      },
    });
    const saved = stats.failures.map((failure) => saveFailure(target, failure));
    // Inputs are not sent back (they can be large); the corpus files hold them.
    parentPort!.postMessage({ kind: 'done', stats: { ...stats, failures: stats.failures.map((f) => ({ ...f, input: null })) }, saved } satisfies Report);
  }
}

function main(): void {
  const total = Number(process.env.DUPLEX_FUZZ_TOTAL ?? 10_000_000);
  const seed = Number(process.env.DUPLEX_FUZZ_SEED ?? Date.now() % 2 ** 31);
  console.log(`duplex fuzz: ${total.toLocaleString('en')} inputs, seed ${seed}, node ${process.version}`);
  const worker = new Worker(new URL(import.meta.url), { workerData: { total, seed } satisfies Job });
  const results: RunStats[] = [];
  let failures = 0;
  let lastProgress = Date.now();
  let current = '(start)';
  const started = Date.now();
  const watchdog = setInterval(() => {
    if (Date.now() - lastProgress > HANG_MS) {
      console.error(`HANG: no progress for ${HANG_MS / 1000} s in ${current} (seed ${seed}); terminating`);
      process.exitCode = 2;
      clearInterval(watchdog);
      void worker.terminate();
    }
  }, 1000);
  worker.on('message', (report: Report) => {
    lastProgress = Date.now();
    if (report.kind === 'progress') {
      current = `${report.target} at ${report.done}`;
      return;
    }
    const s = report.stats;
    results.push(s);
    failures += s.failures.length;
    const rate = s.inputs / (s.ms / 1000);
    console.log(
      `${s.target.padEnd(22)} ${s.inputs.toLocaleString('en').padStart(11)} inputs (${s.generated.toLocaleString('en')} generated, ${s.mutated.toLocaleString('en')} mutated) ` +
        `in ${(s.ms / 1000).toFixed(1)} s = ${Math.round(rate).toLocaleString('en')}/s, slowest input ${s.maxInputMs.toFixed(1)} ms, failures ${s.failures.length}`,
    );
    for (const [i, f] of s.failures.entries()) console.log(`  FAIL ${f.message} → test/fuzz/corpus/${report.saved[i]}`);
  });
  worker.on('error', (error) => {
    console.error(`worker crashed in ${current}: ${error.stack ?? error.message}`);
    process.exitCode = 1;
  });
  worker.on('exit', (code) => {
    clearInterval(watchdog);
    const inputs = results.reduce((n, s) => n + s.inputs, 0);
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `total: ${inputs.toLocaleString('en')} inputs in ${seconds.toFixed(1)} s = ${Math.round(inputs / seconds).toLocaleString('en')}/s; ` +
        `failures ${failures}; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
    );
    if (code !== 0 || failures > 0 || results.length !== TARGETS.length) process.exitCode ||= 1;
  });
}

if (!isMainThread && (workerData as Job | undefined)?.total !== undefined) runWorker(workerData as Job);
else if (isMainThread && process.argv.includes('--run')) main();
