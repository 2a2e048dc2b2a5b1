// A hand-written SVG plot of time series, stacked in panels sharing one time axis: what the soak
// scripts draw their figures with (no plotting dependency, a file any browser or Markdown viewer
// shows). The ramp is shaded and the held phase is cut into quarters by dashed lines, because the
// soaks' verdicts compare the 2nd quarter with the last.

/** One line of a panel. A value that is not finite (NaN: no data in that sample) breaks the line. */
export interface Series {
  readonly name: string;
  readonly color: string;
  readonly values: readonly number[];
}

/** One panel: a y axis from 0 (or a log axis) and its lines. */
export interface Panel {
  /** The y axis' label (the unit). */
  readonly label: string;
  readonly series: readonly Series[];
  /**
   * A logarithmic y axis from `log` upwards (values below it are drawn at it): for latencies,
   * whose p50 and p999 differ by orders of magnitude.
   */
  readonly log?: number;
}

export interface PlotOptions {
  readonly title: string;
  /** The time of each sample, seconds since the start; every series has one value per sample. */
  readonly t: readonly number[];
  /** Seconds: the end of the ramp (shaded before it), or ≤ 0 for none. */
  readonly heldStart: number;
  readonly panels: readonly Panel[];
  /** Under the time axis; says what the shading and the dashed lines are. */
  readonly caption: string;
}

const W = 900;
const PANEL_H = 170;
const LEFT = 70;
const RIGHT = 20;
const TOP = 40;
const GAP = 45;
/** Legend entries are this far apart at most (less when a panel has many lines). */
const LEGEND_STEP = 190;

/** Escape text for an SVG text node. */
function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A tick label: few digits, since the axis says the unit. */
function tickLabel(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 1 || v === 0 ? v.toFixed(1) : v.toPrecision(1);
}

/** The SVG document, as text. */
export function timeSeriesSvg(options: PlotOptions): string {
  const { t, heldStart, panels } = options;
  const plotW = W - LEFT - RIGHT;
  const tMax = Math.max(...t, 1);
  const x = (seconds: number): number => LEFT + (seconds / tMax) * plotW;
  const out: string[] = [];
  const H = TOP + panels.length * (PANEL_H + GAP) + 10;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(options.title)}</text>`);
  panels.forEach((panel, p) => {
    const y0 = TOP + p * (PANEL_H + GAP);
    const finite = panel.series.flatMap((s) => s.values.filter((v) => Number.isFinite(v)));
    const top = Math.max(...finite, panel.log ?? 1) * 1.1;
    let y: (v: number) => number;
    let ticks: number[];
    if (panel.log !== undefined) {
      const lo = Math.log10(panel.log);
      const hi = Math.max(Math.log10(top), lo + 1);
      y = (v) => y0 + PANEL_H - ((Math.log10(Math.max(v, panel.log!)) - lo) / (hi - lo)) * PANEL_H;
      ticks = [];
      for (let e = Math.ceil(lo); e <= hi; e++) ticks.push(10 ** e);
    } else {
      y = (v) => y0 + PANEL_H - (v / top) * PANEL_H;
      ticks = [0, 1, 2, 3, 4].map((i) => (top * i) / 4);
    }
    out.push(`<rect x="${LEFT}" y="${y0}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#999"/>`);
    if (heldStart > 0) out.push(`<rect x="${LEFT}" y="${y0}" width="${(x(heldStart) - LEFT).toFixed(1)}" height="${PANEL_H}" fill="#eee"/>`);
    for (let q = 1; q < 4; q++) {
      const tq = Math.max(heldStart, 0) + ((tMax - Math.max(heldStart, 0)) * q) / 4;
      out.push(`<line x1="${x(tq).toFixed(1)}" y1="${y0}" x2="${x(tq).toFixed(1)}" y2="${y0 + PANEL_H}" stroke="#bbb" stroke-dasharray="4 3"/>`);
    }
    for (const v of ticks) {
      out.push(`<text x="${LEFT - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${tickLabel(v)}</text>`);
      out.push(`<line x1="${LEFT - 3}" y1="${y(v).toFixed(1)}" x2="${LEFT}" y2="${y(v).toFixed(1)}" stroke="#999"/>`);
    }
    out.push(`<text x="16" y="${y0 + PANEL_H / 2}" transform="rotate(-90 16 ${y0 + PANEL_H / 2})" text-anchor="middle">${esc(panel.label)}</text>`);
    const stepMin = tMax > 1200 ? 5 : tMax > 180 ? 1 : 0.25;
    for (let m = 0; m * 60 <= tMax; m += stepMin) {
      out.push(`<text x="${x(m * 60).toFixed(1)}" y="${y0 + PANEL_H + 14}" text-anchor="middle">${String(m)}</text>`);
    }
    const step = Math.min(LEGEND_STEP, (plotW - 20) / panel.series.length);
    panel.series.forEach((s, i) => {
      // One polyline per run of finite values: a sample without data leaves a hole.
      let run: string[] = [];
      const flush = (): void => {
        if (run.length > 0) out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.8" points="${run.join(' ')}"/>`);
        run = [];
      };
      s.values.forEach((v, k) => {
        if (Number.isFinite(v)) run.push(`${x(t[k]!).toFixed(1)},${y(v).toFixed(1)}`);
        else flush();
      });
      flush();
      out.push(`<rect x="${(LEFT + 10 + i * step).toFixed(1)}" y="${y0 + 8}" width="12" height="3" fill="${s.color}"/>`);
      out.push(`<text x="${(LEFT + 26 + i * step).toFixed(1)}" y="${y0 + 13}">${esc(s.name)}</text>`);
    });
  });
  out.push(`<text x="${LEFT + plotW / 2}" y="${H - 6}" text-anchor="middle">${esc(options.caption)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
