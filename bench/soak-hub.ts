// Soak of the hub under load: 10,000 subscribers on 100 topics, 1,000 publishes a second spread
// over the topics, for 10 minutes, 5 % of the subscribers reading slowly. It answers: does every
// healthy subscriber get every acknowledged publication, in order, once (delivered/expected must
// be 100 %), how long do deliveries take over time (p50/p99/p999), does the server's memory stay
// flat after warm-up, and what does the slow-consumer policy do to the slow ones.
//
//   npm run soak:hub                                        # the full run
//   npm run soak:hub -- --connections 1000 --minutes 1 --sample-seconds 5     # smoke run
//   npm run soak:hub -- --svg docs/soak-hub.svg --out /tmp/soak-hub.json
//
// Three processes, as in bench/soak.ts (whose modules this shares): this orchestrator; the server
// (`bench/soak-hub-server.ts`, pinned to CPU 0); the load (`bench/soak-hub-load.ts`, CPU 1). By
// default both children run in a network namespace of their own whose TCP buffers are capped at
// `--tcp-buffer-kib` (see bench/soak-netns.ts for why); `--no-netns` uses the host's loopback.
//
// Verdict: as bench/soak.ts for RSS, live heap, external memory and fds (2nd quarter of the held
// phase against the last), plus delivered/expected = 100 % with no missing and no duplicate
// delivery. Exit status 0 when both hold, 1 when one does not, 2 when the run itself failed.
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { COMMON_HELP, OWN_OPTIONS } from './soak-args.js';
import { Children, ask, canPin, childArgs, exitIfFailed, requireDescriptors, sampleEvery, waitFor } from './soak-children.js';
import { config, type FromLoad, type HubLoadFinal, type HubLoadSample, type HubServerSample } from './soak-hub-config.js';
import { hubLoadRole } from './soak-hub-load.js';
import { hubServerRole } from './soak-hub-server.js';
import { createNamespace, namespaceUnavailable, type Namespace } from './soak-netns.js';
import { timeSeriesSvg, type Series } from './soak-plot.js';
import { MiB, Table, growth, growthLine, mean, tooFewHeld } from './soak-stats.js';

interface Row {
  /** Seconds since the load started. */
  t: number;
  /** Seconds since publishing started (negative during the ramp). */
  held: number;
  server: HubServerSample;
  load: HubLoadSample;
  /** Since the previous row: publishes/s sent by the load, deliveries/s written by the hub, server CPU % of one core. */
  publishRate: number;
  deliveryRate: number;
  serverCpuPct: number;
}

const TABLE = new Table([
  ['t min', 6],
  ['phase', 5],
  ['RSS MiB', 7],
  ['heap MiB', 8],
  ['ext MiB', 7],
  ['ELD p99', 7],
  ['srv CPU', 7],
  ['pub/s', 5],
  ['deliv/s', 7],
  ['lat p50', 7],
  ['lat p99', 7],
  ['p999', 6],
  ['lat max', 7],
  ['load CPU', 8],
  ['slow', 4],
  ['policy', 6],
  ['k-alive', 7],
  ['buf MiB', 7],
]);

/** Slow subscribers connected, as the server counts its connections. */
function slowAtServer(r: { server: HubServerSample; load: HubLoadSample }): number {
  return Math.max(0, r.server.connections - r.load.healthyOpen - config.publishers);
}

const kib = (bytes: number): string => (bytes / 1024).toFixed(0);

function tableRow(r: Row): string {
  const { server: s, load: l } = r;
  return TABLE.row([
    (r.t / 60).toFixed(2),
    r.held < 0 ? 'ramp' : 'held',
    (s.rss / MiB).toFixed(1),
    (s.heapUsed / MiB).toFixed(1),
    (s.external / MiB).toFixed(1),
    s.eldP99.toFixed(1),
    `${r.serverCpuPct.toFixed(0)} %`,
    r.publishRate.toFixed(0),
    r.deliveryRate.toFixed(0),
    l.latency.p50.toFixed(1),
    l.latency.p99.toFixed(1),
    l.latency.p999.toFixed(0),
    l.latency.max.toFixed(0),
    `${l.cpuPct.toFixed(0)} %`,
    String(slowAtServer(r)),
    String(s.slowConsumerCloses),
    String(s.keepaliveCloses),
    (s.bufferedTotal / MiB).toFixed(1),
  ]);
}

function svgPlot(rows: Row[], heldStart: number, title: string): string {
  const line = (name: string, color: string, pick: (r: Row) => number): Series => ({ name, color, values: rows.map(pick) });
  // No latency before the first publish: leave the ramp blank rather than draw zeros.
  const lat = (pick: (r: Row) => number) => (r: Row) => (r.load.latency.count > 0 ? pick(r) : NaN);
  return timeSeriesSvg({
    title,
    t: rows.map((r) => r.t),
    heldStart,
    caption: 'minutes since the load started (grey: ramp and subscribe; dashed: quarters of the publishing phase)',
    panels: [
      {
        label: 'delivery latency, ms (log)',
        log: 0.1,
        series: [
          line('p50', '#2ca02c', lat((r) => r.load.latency.p50)),
          line('p99', '#ff7f0e', lat((r) => r.load.latency.p99)),
          line('p999', '#d62728', lat((r) => r.load.latency.p999)),
          line('max', '#7f7f7f', lat((r) => r.load.latency.max)),
          line('server loop delay p99', '#8c564b', (r) => r.server.eldP99),
        ],
      },
      {
        label: 'server MiB',
        series: [
          line('RSS', '#d62728', (r) => r.server.rss / MiB),
          line('heap used (after GC)', '#1f77b4', (r) => r.server.heapUsed / MiB),
          line('external', '#9467bd', (r) => r.server.external / MiB),
          line('buffered for clients', '#8c564b', (r) => r.server.bufferedTotal / MiB),
        ],
      },
      {
        label: '% of one core',
        series: [line('server CPU (CPU 0)', '#1f77b4', (r) => r.serverCpuPct), line('load CPU (CPU 1)', '#ff7f0e', (r) => r.load.cpuPct)],
      },
      {
        label: 'slow subscribers',
        series: [
          line('connected (server)', '#2ca02c', slowAtServer),
          line('closed: slow consumer', '#d62728', (r) => r.server.slowConsumerCloses),
          line('closed: no pong (keepalive)', '#9467bd', (r) => r.server.keepaliveCloses),
        ],
      },
    ],
  });
}

function help(): string {
  return `npm run soak:hub -- [options]
  --connections N       subscribers (default 10000)
  --topics T            topics; subscriber i is on topic i mod T (default 100)
  --rate R              publishes per second, all topics together, evenly spread (default 1000)
  --publishers P        publisher connections (default 10)
  --payload B           bytes of data per publication (default 1000)
  --minutes M           how long publishing goes on, after every subscriber is subscribed (default 10)
  --sample-seconds S    sample interval (default 10)
  --slow-pct P          % of the subscribers (the same share in every topic) that read slowly (default 5)
  --slow-read B         bytes per second a slow subscriber reads (default 2048)
  --slow-reconnect-ms M a slow subscriber connects again M ms after its connection ended; -1: never (default 1000)
  --max-buffered-kib K  the server's maxBufferedAmount (default 128; the server's own default is 4096)
  --slow-policy P       close (4008, as hub.routeOptions) or drop (default close)
  --tcp-buffer-kib K    tcp_wmem/tcp_rmem ceiling in the soak's network namespace (default 64)
  --no-netns            run on the host's loopback (its kernel buffers ~4 MB per socket first)
  --drain-seconds S     after the last publish, how long to wait for every delivery (default 30)
${COMMON_HELP}  --svg FILE            write the plot to FILE
  --profile DIR         write V8 CPU profiles of the server and the load to DIR (node --cpu-prof)
`;
}

async function main(): Promise<void> {
  if (config.help) {
    process.stdout.write(help());
    return;
  }
  const log = (line: string): void => {
    (config.json ? process.stderr : process.stdout).write(line + '\n');
  };
  requireDescriptors(config.connections + config.publishers);
  let ns: Namespace | undefined;
  if (config.netns) {
    const missing = namespaceUnavailable();
    if (missing) {
      process.stderr.write(`soak: ${missing}; run with --no-netns to use the host's loopback, where the kernel holds ~4 MB per socket before the slow-consumer policy sees a byte\n`);
      process.exit(2);
    }
    const cap = config.tcpBuffer;
    ns = createNamespace([4096, Math.min(16384, cap), cap], [4096, Math.min(65536, cap), cap]);
  }
  const pin = config.pin && canPin();
  const passOn = childArgs(process.argv.slice(2), ...OWN_OPTIONS);
  const profile = config.profile ? ['--cpu-prof', `--cpu-prof-dir=${config.profile}`] : [];
  const children = new Children(fileURLToPath(import.meta.url), pin, ns?.exec ?? []);
  if (ns) children.onCleanup(ns.remove);
  const rampAllowance = Math.max(120, (config.connections / config.openRate) * 10) * 1000;
  children.watchdog(rampAllowance + config.minutes * 60_000 + config.drainSeconds * 1000 + 180_000);

  const server = children.start('server', 0, [...(config.forceGc ? ['--expose-gc'] : []), ...profile], passOn);
  const { port } = await waitFor<{ type: 'listening'; port: number }>(server, 'listening', 20_000);
  const load = children.start('load', 1, profile, [...passOn, '--port', String(port)]);
  const t0 = performance.now();
  let heldStart = -1;
  log(
    `soak:hub: ${config.connections} subscribers on ${config.topics} topics, ${config.rate} publishes/s of ${config.payload} B, ${config.slowPct} % slow ` +
      `(${config.slowRead} B/s), maxBufferedAmount ${config.maxBuffered / 1024} KiB (${config.slowPolicy}), ${config.minutes} min; ` +
      `${ns ? `namespace ${ns.name}, TCP buffers ≤ ${config.tcpBuffer / 1024} KiB` : "host's loopback"}; ` +
      `${pin ? 'server on CPU 0, load on CPU 1' : 'not pinned'}; node ${process.version}`,
  );
  load.on('message', (message: FromLoad) => {
    if (message.type !== 'ready' || heldStart >= 0) return;
    heldStart = (performance.now() - t0) / 1000;
    log(`soak:hub: ${message.subscribed} subscribed after ${heldStart.toFixed(1)} s; publishing for ${config.minutes} min`);
  });

  const rows: Row[] = [];
  log('');
  log(TABLE.header());
  let prev = { published: 0, deliveries: 0, cpu: 0 };
  await sampleEvery<HubServerSample, HubLoadSample>(children, [server, load], t0, config.sampleSeconds, () => heldStart, ({ dt, ...sampled }) => {
    const { server: s, load: l } = sampled;
    const cpu = s.cpuUser + s.cpuSystem;
    const row: Row = {
      ...sampled,
      publishRate: (l.published - prev.published) / dt,
      deliveryRate: (s.deliveries - prev.deliveries) / dt,
      serverCpuPct: ((cpu - prev.cpu) / dt) * 100,
    };
    prev = { published: l.published, deliveries: s.deliveries, cpu };
    rows.push(row);
    log(tableRow(row));
    for (const e of l.firstErrors) log(`  load: ${e}`);
    if (heldStart < 0 && row.t * 1000 > rampAllowance) {
      children.fail(`the subscribers were not all subscribed within ${(rampAllowance / 1000).toFixed(0)} s`);
      return true;
    }
    return heldStart >= 0 && row.held >= config.minutes * 60 - config.sampleSeconds / 2;
  });

  let final: HubLoadFinal | undefined;
  let lastServer: HubServerSample | undefined;
  if (!children.failure) {
    try {
      const reply = waitFor<{ type: 'final'; sample: HubLoadFinal }>(load, 'final', (config.drainSeconds + 60) * 1000);
      load.send({ type: 'finish' });
      final = (await reply).sample;
      lastServer = await ask<HubServerSample>(server);
    } catch (error) {
      children.fail(`the final count failed: ${(error as Error).message}`);
    }
  }
  await children.stop(load, server);
  children.killAll(); // and remove the namespace

  const held = rows.filter((r) => r.held >= 0);
  exitIfFailed('soak:hub', children.failure ?? tooFewHeld(held.length));
  // Nothing failed, so the final count and the last server sample are there.
  if (!final || !lastServer) return;
  const growths = [
    growth(held, 'RSS', 'MiB', (r) => r.server.rss / MiB, 0.1, 8),
    growth(held, 'heap used', 'MiB', (r) => r.server.heapUsed / MiB, 0.1, 4),
    growth(held, 'external', 'MiB', (r) => r.server.external / MiB, 0.1, 4),
    // Slow subscribers come and go (closed, then reconnecting): descriptors beyond the open
    // connections are what a leak would grow.
    growth(held, 'fds − conns', '', (r) => r.server.fds - r.server.connections, 0.02, 50),
  ];
  const flat = growths.every((g) => g.flat);
  const complete = final.delivered === final.expected && final.missing === 0 && final.duplicates === 0 && final.complete === final.healthy && final.healthyClosed === 0;
  const steady = held.slice(1); // the first held sample still holds the ramp's interval
  const summary = {
    config: { ...config, role: undefined, port: undefined, json: undefined, out: undefined, svg: undefined, help: undefined, pinned: pin, namespace: ns?.name, node: process.version },
    rampSeconds: heldStart,
    heldSamples: held.length,
    verdict: { complete, flat },
    delivery: {
      expected: final.expected,
      delivered: final.delivered,
      missing: final.missing,
      duplicates: final.duplicates,
      completeSubscribers: final.complete,
      healthySubscribers: final.healthy,
      healthyClosed: final.healthyClosed,
      published: final.published,
      acked: final.acked,
      publishErrors: final.publishErrors,
      drainSeconds: final.drainSeconds,
      incomplete: final.incomplete,
      latencyAll: final.latencyAll,
      worstIntervalP99: Math.max(...steady.map((r) => r.load.latency.p99)),
      worstIntervalP999: Math.max(...steady.map((r) => r.load.latency.p999)),
    },
    growth: growths,
    policy: {
      slowConsumerCloses: lastServer.slowConsumerCloses,
      keepaliveCloses: lastServer.keepaliveCloses,
      closeCodes: lastServer.closeCodes,
      dropped: lastServer.dropped,
      slowEnded: final.slowEnded,
      slowReconnects: final.slowReconnects,
      slowMessages: final.slowMessages,
      slowBytes: final.slowBytes,
      slowMissing: final.slowMissing,
      bufferedTotalMaxMiB: Math.max(...rows.map((r) => r.server.bufferedTotal)) / MiB,
      logs: lastServer.logs,
    },
    server: {
      cpuSeconds: lastServer.cpuUser + lastServer.cpuSystem,
      publications: lastServer.publications,
      deliveries: lastServer.deliveries,
      messagesOut: lastServer.messagesOut,
      bytesOut: lastServer.bytesOut,
      gaps: lastServer.gaps,
      errors: lastServer.serverErrors,
      connectionsTotal: lastServer.connectionsTotal,
      eldP99Mean: mean(steady.map((r) => r.server.eldP99)),
      eldMax: Math.max(...steady.map((r) => r.server.eldMax)),
    },
    load: {
      cpuPctMean: mean(steady.map((r) => r.load.cpuPct)),
      cpuPctMax: Math.max(...steady.map((r) => r.load.cpuPct)),
      eldP99Max: Math.max(...steady.map((r) => r.load.eldP99)),
      publishRateMean: mean(steady.map((r) => r.publishRate)),
      deliveryRateMean: mean(steady.map((r) => r.deliveryRate)),
      presence: final.presence,
      hubErrors: final.hubErrors,
      gaps: final.gaps,
      openFailed: final.openFailed,
    },
    rows: rows.map((r) => ({ ...r, load: { ...r.load, firstErrors: undefined } })),
  };

  const pct = final.expected === 0 ? 0 : (final.delivered / final.expected) * 100;
  const l = summary.delivery.latencyAll;
  log('');
  log(`delivery to the ${final.healthy} healthy subscribers: ${final.delivered} / ${final.expected} = ${pct.toFixed(4)} % (${final.missing} missing, ${final.duplicates} duplicates, ${final.complete} subscribers complete, ${final.healthyClosed} closed); drained in ${final.drainSeconds.toFixed(1)} s`);
  log(`  publishes: ${final.published} sent, ${final.acked} acknowledged, ${final.publishErrors} refused; ${summary.load.publishRateMean.toFixed(0)}/s; ${summary.load.deliveryRateMean.toFixed(0)} deliveries/s (hub)`);
  log(`  latency over the run: p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, p999 ${l.p999.toFixed(1)} ms, max ${l.max.toFixed(0)} ms (${l.count} deliveries); worst interval p99 ${summary.delivery.worstIntervalP99.toFixed(1)} ms, p999 ${summary.delivery.worstIntervalP999.toFixed(1)} ms`);
  if (final.incomplete.length > 0) log(`  incomplete: ${final.incomplete.join('; ')}`);
  log(`memory over ${held.length} held samples (2nd quarter mean → last quarter mean):`);
  for (const g of growths) log(growthLine(g));
  const lines = Object.entries(lastServer.logs)
    .map(([message, e]) => `"${message}" × ${e.count}${e.buffered[2] > 0 ? ` (buffered ${kib(e.buffered[0])}/${kib(e.buffered[1])}/${kib(e.buffered[2])} KiB min/median/max)` : ''}`)
    .join('; ');
  log(
    `slow consumers: ${lastServer.slowConsumerCloses} closed by the policy, ${lastServer.keepaliveCloses} by the keepalive (no pong in time), ${lastServer.dropped} sends refused; ` +
      `buffered for all clients at most ${summary.policy.bufferedTotalMaxMiB.toFixed(1)} MiB; closes at the server by code ${JSON.stringify(lastServer.closeCodes)}`,
  );
  log(`  server log lines: ${lines}`);
  log(
    `  the slow readers saw ${JSON.stringify(final.slowEnded)}, reconnected ${final.slowReconnects} times, read ${final.slowMessages} messages (${(final.slowBytes / MiB).toFixed(1)} MiB), ` +
      `${final.slowMissing} missing (the 'drop' policy's)`,
  );
  log(
    `server: CPU ${summary.server.cpuSeconds.toFixed(0)} s, ELD p99 mean ${summary.server.eldP99Mean.toFixed(1)} ms, max ${summary.server.eldMax.toFixed(0)} ms, ${lastServer.gaps} gaps, ${lastServer.serverErrors} errors; ` +
      `load: CPU ${summary.load.cpuPctMean.toFixed(0)} % mean, ${summary.load.cpuPctMax.toFixed(0)} % max, ELD p99 max ${summary.load.eldP99Max.toFixed(0)} ms, ${final.openFailed} failed opens, ${final.hubErrors} hub errors`,
  );
  log(`verdict: ${complete ? 'COMPLETE' : 'INCOMPLETE'} delivery, memory ${flat ? 'FLAT' : 'GROWTH'}`);
  if (config.svg) {
    const title = `duplex hub soak: ${config.connections} subscribers, ${config.topics} topics, ${config.rate} publishes/s, ${config.slowPct} % slow, ${config.minutes} min`;
    writeFileSync(config.svg, svgPlot(rows, heldStart, title));
    log(`plot written to ${config.svg}`);
  }
  if (config.out) writeFileSync(config.out, JSON.stringify(summary, null, 2) + '\n');
  if (config.json) process.stdout.write(JSON.stringify(summary) + '\n');
  process.exitCode = complete && flat ? 0 : 1;
}

if (config.role === 'server') await hubServerRole();
else if (config.role === 'load') await hubLoadRole();
else
  await main().catch((error: unknown) => {
    process.stderr.write(`soak:hub: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(2);
  });
