// What a soak's child process measures about itself each sample: memory (after a forced full GC
// when the process runs with --expose-gc, so "heap" is the live heap and not wherever the GC
// sawtooth happened to be), V8's committed young and old generations, open descriptors, CPU
// time, and the event-loop delay since the previous sample.
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

/** Sampling interval of the event-loop delay histogram, ms. */
export const ELD_RESOLUTION = 10;

/**
 * A histogram value (ns) as a delay in ms. The histogram records the time between two of its
 * timer's ticks, the sampling interval included (an idle loop reads ~10 ms): subtract it.
 */
export function loopDelay(ns: number): number {
  return Math.max(0, ns / 1e6 - ELD_RESOLUTION);
}

/** Open descriptors of this process (entries of /proc/self/fd). */
export function fdCount(): number {
  // The directory listing itself holds one descriptor while it runs.
  return readdirSync('/proc/self/fd').length - 1;
}

/** One sample of a process. Memory in bytes, times in ms, CPU in seconds since the process started. */
export interface ProcessSample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** heapUsed before the forced GC (as the process saw it). */
  heapUsedBeforeGc: number;
  /** Committed size of V8's young generation (new space), bytes: it grows to its maximum under load. */
  newSpace: number;
  /** Committed size of the old generation (old + code + map + large-object spaces), bytes. */
  oldSpaces: number;
  /** Duration of the forced full GC, ms (0 without one). */
  gcMs: number;
  fds: number;
  eldP50: number;
  eldP99: number;
  eldMax: number;
  cpuUser: number;
  cpuSystem: number;
}

/** The event-loop delay monitor and the memory readings of this process. */
export class ProcessProbe {
  readonly #eld: IntervalHistogram = monitorEventLoopDelay({ resolution: ELD_RESOLUTION });
  readonly #gc: (() => void) | undefined;

  /** @param forceGc Run a full GC before reading memory (needs `--expose-gc`; ignored without it). */
  constructor(forceGc: boolean) {
    const gc = (globalThis as { gc?: () => void }).gc;
    this.#gc = forceGc ? gc : undefined;
    this.#eld.enable();
  }

  /** Whether memory is read after a forced full GC. */
  get forcesGc(): boolean {
    return this.#gc !== undefined;
  }

  /** Read everything, and start a new event-loop delay interval. */
  sample(): ProcessSample {
    const eld = this.#eld;
    const eldP50 = loopDelay(eld.percentile(50));
    const eldP99 = loopDelay(eld.percentile(99));
    const eldMax = loopDelay(eld.max);
    const before = process.memoryUsage();
    let gcMs = 0;
    if (this.#gc) {
      const start = performance.now();
      this.#gc();
      gcMs = performance.now() - start;
    }
    const memory = this.#gc ? process.memoryUsage() : before;
    let newSpace = 0;
    let oldSpaces = 0;
    for (const space of getHeapSpaceStatistics()) {
      if (space.space_name === 'new_space') newSpace += space.space_size;
      else oldSpaces += space.space_size;
    }
    const cpu = process.cpuUsage();
    eld.reset();
    // The forced GC blocked the loop; the delay it caused is measured by the histogram's next
    // tick. Reset once more after it, so the ELD figures are the process's own (gcMs is reported).
    if (this.#gc) setTimeout(() => eld.reset(), 25).unref();
    return {
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      arrayBuffers: memory.arrayBuffers,
      heapUsedBeforeGc: before.heapUsed,
      newSpace,
      oldSpaces,
      gcMs,
      fds: fdCount(),
      eldP50,
      eldP99,
      eldMax,
      cpuUser: cpu.user / 1e6,
      cpuSystem: cpu.system / 1e6,
    };
  }
}
