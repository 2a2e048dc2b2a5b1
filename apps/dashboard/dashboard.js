// The live dashboard: `duplex serve` publishes simulated prices to the `ticker` topic five times a
// second; this page draws them on a canvas (no chart library) and keeps a table of the latest
// values. On load it starts from recent history, so the chart is not empty.
import { clock, connect, showState, subscribeWithHistory } from '/common.js';

const $ = (id) => document.getElementById(id);
const TOPIC = 'ticker';
const KEEP = 150; // points on the chart (30 s at 5 per second)
const COLOURS = ['#4f46e5', '#0891b2', '#d97706', '#db2777', '#16a34a', '#9333ea'];

const client = connect();
showState(client, $('state'));
client.on('error', (error) => console.warn('duplex:', error.message));

const points = []; // { t, values }
const series = new Map(); // name → { first, last, low, high, row cells }
const arrivals = []; // arrival times of live messages, for messages/second
let total = 0;

function rowFor(name) {
  let entry = series.get(name);
  if (entry) return entry;
  const index = series.size;
  const tr = document.createElement('tr');
  tr.dataset.series = name;
  const cells = {};
  for (const key of ['name', 'last', 'change', 'pct', 'low', 'high', 'updated']) {
    const td = document.createElement('td');
    td.className = key;
    cells[key] = td;
    tr.append(td);
  }
  cells.name.textContent = name;
  $('table').append(tr);
  const legend = document.createElement('span');
  legend.className = `s${index % COLOURS.length}`;
  legend.textContent = name;
  $('legend').append(legend);
  entry = { index, first: undefined, last: undefined, low: Infinity, high: -Infinity, cells };
  series.set(name, entry);
  return entry;
}

function onTick(data, meta) {
  if (!data || typeof data !== 'object' || typeof data.values !== 'object') return;
  total++;
  if (!meta.recovered) arrivals.push(performance.now());
  points.push({ t: Number(data.t), values: data.values });
  if (points.length > KEEP) points.shift();
  for (const [name, value] of Object.entries(data.values)) {
    if (typeof value !== 'number') continue;
    const entry = rowFor(name);
    entry.first ??= value;
    const previous = entry.last;
    entry.last = value;
    entry.low = Math.min(entry.low, value);
    entry.high = Math.max(entry.high, value);
    const change = value - entry.first;
    const { cells } = entry;
    cells.last.textContent = value.toFixed(2);
    cells.change.textContent = (change >= 0 ? '+' : '') + change.toFixed(2);
    cells.pct.textContent = (change >= 0 ? '+' : '') + ((change / entry.first) * 100).toFixed(2) + '%';
    cells.change.className = cells.pct.className = change >= 0 ? 'up' : 'down';
    cells.low.textContent = entry.low.toFixed(2);
    cells.high.textContent = entry.high.toFixed(2);
    cells.updated.textContent = clock(Number(data.t));
    if (previous !== undefined && previous !== value && !meta.recovered) {
      cells.last.classList.remove('flash');
      void cells.last.offsetWidth; // restart the animation
      cells.last.classList.add('flash');
    }
  }
  if (!meta.recovered) $('latency').textContent = `${Math.max(0, Date.now() - Number(data.t))} ms`;
  $('offset').textContent = String(meta.offset);
  $('total').textContent = String(total);
  scheduleDraw();
}

// ---- the chart: each series as % change from its first point, on one shared axis ----
const canvas = $('chart');
const ctx = canvas.getContext('2d');
let drawPending = false;
function scheduleDraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    draw();
  });
}
function draw() {
  const ratio = devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const pad = { left: 56, right: 12, top: 10, bottom: 24 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  if (points.length < 2 || plotW <= 0) return;
  const base = points[0].values;
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of points) {
    for (const [name, v] of Object.entries(p.values)) {
      const pct = ((v - base[name]) / base[name]) * 100;
      lo = Math.min(lo, pct);
      hi = Math.max(hi, pct);
    }
  }
  const span = Math.max(hi - lo, 0.2);
  lo -= span * 0.08;
  hi += span * 0.08;
  const x = (i) => pad.left + (i / (KEEP - 1)) * plotW;
  const y = (pct) => pad.top + (1 - (pct - lo) / (hi - lo)) * plotH;
  // Grid and labels.
  ctx.font = '12px system-ui, sans-serif';
  ctx.fillStyle = '#6b7385';
  ctx.strokeStyle = '#e2e5eb';
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const pct = lo + ((hi - lo) * i) / 4;
    const yy = Math.round(y(pct)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.left, yy);
    ctx.lineTo(width - pad.right, yy);
    ctx.stroke();
    ctx.fillText(`${pct >= 0 ? '+' : ''}${pct.toFixed(2)}%`, pad.left - 8, yy);
  }
  ctx.textAlign = 'left';
  ctx.textBaseline = 'top';
  ctx.fillText(clock(points[0].t), pad.left, height - pad.bottom + 6);
  ctx.textAlign = 'right';
  ctx.fillText(clock(points[points.length - 1].t), x(points.length - 1), height - pad.bottom + 6);
  // One line per series.
  ctx.lineWidth = 2;
  ctx.lineJoin = 'round';
  for (const [name, entry] of series) {
    if (base[name] === undefined) continue;
    ctx.strokeStyle = COLOURS[entry.index % COLOURS.length];
    ctx.beginPath();
    points.forEach((p, i) => {
      const pct = ((p.values[name] - base[name]) / base[name]) * 100;
      if (i === 0) ctx.moveTo(x(i), y(pct));
      else ctx.lineTo(x(i), y(pct));
    });
    ctx.stroke();
  }
}
addEventListener('resize', scheduleDraw);

// ---- messages per second, over the last second ----
setInterval(() => {
  const now = performance.now();
  while (arrivals.length > 0 && arrivals[0] < now - 1000) arrivals.shift();
  $('rate').textContent = String(arrivals.length);
}, 250);

await subscribeWithHistory(client, TOPIC, KEEP, onTick);
