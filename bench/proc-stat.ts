// Host CPU use from /proc/stat, for the benchmarks that report how busy the machine was while
// they measured (bench/deflate.ts, bench/attack-core.ts): a shared 2-core machine is often not
// quiet, and a figure says little without that.
import { readFileSync } from 'node:fs';

/** Per-CPU [busy, total] jiffies from /proc/stat (empty where there is no /proc). */
export function cpuTimes(): Array<[number, number]> {
  try {
    return readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .filter((l) => /^cpu\d/.test(l))
      .map((l) => {
        const v = l.split(/\s+/).slice(1).map(Number);
        const idle = (v[3] ?? 0) + (v[4] ?? 0);
        const total = v.reduce((a, b) => a + b, 0);
        return [total - idle, total];
      });
  } catch {
    return [];
  }
}

/** Per-CPU busy % between two `cpuTimes()` readings, to one decimal. */
export function hostBusy(before: Array<[number, number]>, after: Array<[number, number]>): Array<{ busy: number }> {
  return after.map(([busy, total], i) => ({ busy: Math.round((1000 * (busy - before[i]![0])) / Math.max(1, total - before[i]![1])) / 10 }));
}
