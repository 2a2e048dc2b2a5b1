// The soaks' arithmetic and text: the flatness verdict over the held samples (2nd-quarter mean
// against last-quarter mean, with a tolerance; the least-squares slope over the second half),
// and the fixed-width Markdown table each sample is printed as.

export const MiB = 1024 * 1024;

/** A sample the verdict can place: seconds since the target was first held (negative in the ramp). */
export interface Held {
  readonly held: number;
}

/** How a figure moved between the 2nd and the last quarter of the held phase. */
export interface Growth {
  metric: string;
  unit: string;
  q2: number;
  q4: number;
  delta: number;
  deltaPct: number;
  /** Least-squares slope over the second half of the held samples, per minute. */
  slopePerMin: number;
  tolerance: number;
  flat: boolean;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Least-squares slope of y over x. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  if (points.length < 2) return 0;
  const mx = mean(points.map((p) => p[0]));
  const my = mean(points.map((p) => p[1]));
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) * (x - mx);
  }
  return den === 0 ? 0 : num / den;
}

/** Why a verdict over `n` held samples means nothing (fewer than 8: quarters of one or two samples), or undefined. */
export function tooFewHeld(n: number): string | undefined {
  return n < 8 ? `too few held samples (${n}); use more --minutes or fewer --sample-seconds` : undefined;
}

/** The samples of the 2nd quarter of `held` (after warm-up). */
export function secondQuarter<T>(held: readonly T[]): T[] {
  return held.slice(Math.floor(held.length / 4), Math.floor(held.length / 2));
}

/** The samples of the last quarter of `held`. */
export function lastQuarter<T>(held: readonly T[]): T[] {
  return held.slice(Math.floor((3 * held.length) / 4));
}

/**
 * The verdict for one figure: flat when the last quarter's mean exceeds the 2nd quarter's by no
 * more than `relTol` of it or `absTol`, whichever is larger (small figures jitter by more than
 * 10 % without meaning anything).
 */
export function growth<R extends Held>(held: readonly R[], metric: string, unit: string, pick: (r: R) => number, relTol: number, absTol: number): Growth {
  const q2 = mean(secondQuarter(held).map(pick));
  const q4 = mean(lastQuarter(held).map(pick));
  const delta = q4 - q2;
  const tolerance = Math.max(relTol * q2, absTol);
  const half = held.slice(Math.floor(held.length / 2)).map((r): [number, number] => [r.held / 60, pick(r)]);
  return { metric, unit, q2, q4, delta, deltaPct: (delta / q2) * 100, slopePerMin: slope(half), tolerance, flat: delta <= tolerance };
}

/** One verdict line, as both soaks print it. */
export function growthLine(g: Growth): string {
  const u = g.unit ? ` ${g.unit}` : '';
  const d = g.unit === 'MiB' ? 1 : 0;
  const sign = (v: number): string => (v >= 0 ? '+' : '');
  return (
    `  ${pad(g.metric, 9)}: ${g.q2.toFixed(d)} → ${g.q4.toFixed(d)}${u}  (${sign(g.delta)}${g.delta.toFixed(d)}${u}, ${sign(g.deltaPct)}${g.deltaPct.toFixed(1)} %; ` +
    `slope ${sign(g.slopePerMin)}${g.slopePerMin.toFixed(2)}${u}/min; tolerance ${g.tolerance.toFixed(d)}${u})  ${g.flat ? 'flat' : 'GROWTH'}`
  );
}

/** Right-align `text` in `width` characters. */
export function pad(text: string, width: number): string {
  return text.length >= width ? text : ' '.repeat(width - text.length) + text;
}

/** A Markdown table with right-aligned fixed-width columns, printed a row at a time. */
export class Table {
  constructor(private readonly columns: ReadonlyArray<readonly [name: string, width: number]>) {}

  header(): string {
    const head = `| ${this.columns.map(([name, width]) => pad(name, width)).join(' | ')} |`;
    const rule = `|${this.columns.map(([, width]) => '-'.repeat(width + 1) + ':').join('|')}|`;
    return `${head}\n${rule}`;
  }

  row(cells: readonly string[]): string {
    return `| ${cells.map((c, i) => pad(c, this.columns[i]![1])).join(' | ')} |`;
  }
}
