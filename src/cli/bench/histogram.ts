/**
 * A log-linear histogram of non-negative integers (latencies in microseconds), with
 * HdrHistogram's bucketing: values below 2048 are counted exactly; above, each power of two is
 * split into 1024 equal sub-buckets, so any value is known to within 0.1 % (3 significant
 * digits). Recording is two shifts and an increment; the counts live in one fixed array
 * (22,528 slots, 88 KiB), so a run of any length uses the same memory.
 *
 * Written here rather than taken from `hdr-histogram-js`: we need record, percentile, merge and
 * reset for one value range, about 80 lines, while that package brings a WebAssembly build,
 * several bucket-size variants and encodings we would not use.
 */

const SUB_BUCKET_BITS = 11;
const SUB_BUCKET_COUNT = 1 << SUB_BUCKET_BITS; // 2048: values below this are exact
const HALF = SUB_BUCKET_COUNT >>> 1; // 1024 sub-buckets per power of two above
/** Largest value recorded as itself; larger ones are clamped (2^31 µs is about 36 minutes). */
export const MAX_TRACKABLE = 2 ** 31 - 1;
const SLOTS = SUB_BUCKET_COUNT + (31 - SUB_BUCKET_BITS) * HALF;

function indexOf(value: number): number {
  if (value < SUB_BUCKET_COUNT) return value;
  const shift = 31 - Math.clz32(value) - (SUB_BUCKET_BITS - 1);
  return SUB_BUCKET_COUNT + (shift - 1) * HALF + ((value >>> shift) - HALF);
}

/** The highest value that falls in the slot `index` (HdrHistogram's "highest equivalent value"). */
function highestIn(index: number): number {
  if (index < SUB_BUCKET_COUNT) return index;
  const k = index - SUB_BUCKET_COUNT;
  const shift = Math.floor(k / HALF) + 1;
  const sub = (k % HALF) + HALF;
  return (sub + 1) * 2 ** shift - 1;
}

/** Counts of values, with exact count, min, max and sum on the side. */
export class Histogram {
  private readonly counts = new Uint32Array(SLOTS);
  count = 0;
  min = Infinity;
  max = 0;
  sum = 0;

  /** Count one value (rounded to an integer; negative counts as 0, huge ones as `MAX_TRACKABLE`). */
  record(value: number): void {
    const v = value <= 0 ? 0 : value >= MAX_TRACKABLE ? MAX_TRACKABLE : Math.round(value);
    this.counts[indexOf(v)]++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /**
   * The value below or at which `percentile` % of the values fall (0 when empty). Reported as
   * the top of its slot, never above the largest value seen.
   */
  percentile(percentile: number): number {
    if (this.count === 0) return 0;
    const target = Math.max(1, Math.ceil((percentile / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < SLOTS; i++) {
      seen += this.counts[i];
      if (seen >= target) return Math.min(highestIn(i), this.max);
    }
    return this.max;
  }

  /** The mean of the values (0 when empty). */
  get mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  /** Add the counts of `other` to this one. */
  add(other: Histogram): void {
    for (let i = 0; i < SLOTS; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sum += other.sum;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
  }

  /** Forget every value. */
  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.min = Infinity;
    this.max = 0;
    this.sum = 0;
  }
}
