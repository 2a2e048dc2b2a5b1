// The partition test's report: one table row per run, in the columns of the broker-restart
// accounting (each count is subscriber × acknowledged publication), then per-subscriber rows and
// what went wrong, if anything.
import type { RunResult } from './run.js';

const n = (x: number): string => x.toLocaleString('en-US');

export const TABLE_HEADER =
  '| broker | seed | nemesis | faults | acked | delivered | recovered | gap-notified | of which in history | silently lost | undelivered | duplicates | out of order | holes | subs lost | longest silence |\n' +
  '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|';

/** The run's row of the table. */
export function tableRow(r: RunResult): string {
  const t = r.check.totals;
  return (
    `| ${r.broker === 'redis' ? 'Redis' : 'NATS'} | ${r.seed} | ${r.seconds} s | ${r.faults.length} | ${n(r.check.acked)} | ${n(t.delivered)} | ${n(t.recovered)} | ` +
    `${n(t.gapNotified)} | ${n(t.gapNeedless)} | **${n(t.silentlyLost)}** | ${n(t.undelivered)} | ${n(t.duplicates)} | ${n(t.outOfOrder)} | ${n(t.holes)} | ` +
    `${n(t.subscriptionsLost)} | ${(t.maxSilence / 1000).toFixed(1)} s |`
  );
}

/** Everything a reader of a run needs: the row, the faults, each subscriber, the violations. */
export function describeRun(r: RunResult): string {
  const c = r.check;
  const lines: string[] = [];
  lines.push(`[partition ${r.broker}] seed ${r.seed} (PARTITION_SEED=${r.seed} replays the schedule), nemesis ${r.seconds} s, run ${(r.elapsed / 1000).toFixed(1)} s`);
  lines.push(TABLE_HEADER, tableRow(r), '');
  lines.push(
    `gap-notified though still in history: ${n(c.totals.gapNeedless)}; longest delay from acknowledgement to delivery ${(c.totals.maxDelay / 1000).toFixed(1)} s; ` +
      `longest silence (acknowledgement to the next message or gap) ${(c.totals.maxSilence / 1000).toFixed(1)} s; ` +
      `acked ${n(c.acked)}; publish failures ${JSON.stringify(c.publishFailures)}; delivered though not acknowledged ${c.deliveredUnacked}; ` +
      `offsets reused ${c.offsetReused}; divergent ${c.divergent}; publisher order ${c.publisherOrder}; ` +
      `final markers ${r.workload.markers}/${r.workload.markersWanted}; ${r.workload.settled ? `caught up ${(r.workload.settleMs / 1000).toFixed(1)} s after the last marker` : 'NOT caught up'}${r.workload.laggards.length ? ` (laggards ${r.workload.laggards.join(', ')})` : ''}`,
  );
  for (const node of ['a', 'b'] as const) {
    const s = r.nodeStats[node];
    if (s) lines.push(`node ${node}: publications ${n(s.publications)}, refetched ${s.refetched}, gaps ${s.gaps}, recovered ${s.recovered}, not recovered ${s.notRecovered}`);
  }
  lines.push('faults:');
  for (const f of r.faults) lines.push(`  +${(f.at / 1000).toFixed(1)} s ${f.description} for ${(f.duration / 1000).toFixed(1)} s`);
  lines.push('subscribers (acked | delivered | recovered | gap-notified | silently lost | undelivered | dup | disorder | holes | gaps | reconnects | longest delay | longest silence):');
  for (const s of c.subscribers) {
    lines.push(
      `  ${s.name.padEnd(8)} via ${s.via.padEnd(4)} ${s.acked} | ${s.delivered} | ${s.recovered} | ${s.gapNotified} | ${s.silentlyLost} | ${s.undelivered} | ` +
        `${s.duplicates} | ${s.outOfOrder} | ${s.holes} | ${s.gaps} | ${s.reconnects} | ${(s.maxDelay / 1000).toFixed(1)} s | ${(s.maxSilence / 1000).toFixed(1)} s`,
    );
  }
  const packets = Object.entries(r.links)
    .map(([link, dirs]) => `${link} ${dirs['12'].forwarded + dirs['21'].forwarded} fwd / ${dirs['12'].blackholed + dirs['21'].blackholed} cut / ${dirs['12'].lost + dirs['21'].lost} lost`)
    .join('; ');
  lines.push(`packets: ${packets}`);
  if (c.violations.length > 0) {
    lines.push(`VIOLATIONS (${c.violations.length}); logs kept in ${r.runDir}:`);
    for (const v of c.violations.slice(0, 20)) lines.push(`  ${v}`);
  }
  return lines.join('\n');
}
