/**
 * Fairness between connections: the work of large messages (inflating, compressing, joining
 * pieces) is done a slice at a time (the engine's `sliceSize`), and the slices of every
 * connection that has such work are run here, round-robin, in `setImmediate` passes of at most
 * `PASS_BUDGET_MS`. Between two passes the event loop polls the sockets, so a connection that
 * sends 16 MiB-inflating messages back to back delays the others' small messages by about a
 * pass, not by the whole inflate (10 ms per 16 MiB of zeros on this machine, more for the
 * compression of the echo). The engine itself stays synchronous and free of timers: this is
 * the Node host's part of the contract (`Connection.suspended` / `resume()`).
 *
 * Why not zlib's thread pool: inflating in the pool frees the loop too, but a sliced inflate
 * also caps the memory and the CPU one connection can claim per pass, keeps the message order
 * and the limits in one synchronous place, and needs no second copy of the codec. The slices
 * cost ~2 % on a 16 MiB message (one `setImmediate` per pass), nothing below `sliceSize`.
 */
import { performance } from 'node:perf_hooks';

/** Something with suspended work: runs one slice of it, true while more remains. */
export interface SliceWorker {
  runSlice(): boolean;
}

/**
 * The most time one pass spends on slices before it lets the loop poll again. With 256 KiB
 * slices (~0.2–0.5 ms each) a pass runs a few of them: one attacker gets most of an otherwise
 * idle loop, and everybody else waits at most about this long.
 */
export const PASS_BUDGET_MS = 2;

/** The engine's `sliceSize` on Node: 256 KiB of inflate, deflate or copying at a time. */
export const DEFAULT_SLICE_SIZE = 256 * 1024;

const waiting: SliceWorker[] = [];
let scheduled = false;

/** Queue `worker` for the next pass (the caller makes sure it is not queued already). */
export function scheduleSlices(worker: SliceWorker): void {
  waiting.push(worker);
  if (!scheduled) {
    scheduled = true;
    setImmediate(runPass);
  }
}

/** How many connections wait for a slice (for tests and metrics). */
export function slicesWaiting(): number {
  return waiting.length;
}

function runPass(): void {
  scheduled = false;
  const start = performance.now();
  try {
    // Round-robin: a worker with more to do goes to the back of the line.
    while (waiting.length > 0) {
      const worker = waiting.shift()!;
      if (worker.runSlice()) waiting.push(worker);
      if (performance.now() - start >= PASS_BUDGET_MS) break;
    }
  } finally {
    // Also after a throwing handler (the ws module rethrows them): the others keep their turn.
    if (waiting.length > 0 && !scheduled) {
      scheduled = true;
      setImmediate(runPass);
    }
  }
}
