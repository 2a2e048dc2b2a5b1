/**
 * What adopting the package costs, side by side with `ws` in the same run:
 *
 * - **import time**: a fresh `node` imports the package (`import('duplex-ws')`, `import('ws')`),
 *   timed inside the process around the `import()` (module resolution, loading, evaluation), and
 *   as the whole process's wall time, alternating A B A B …; medians and the same-round ratio.
 * - **installed size** for a core-only user: `npm install <packed tarball>` in an empty project
 *   against `npm install ws`, both from the local npm cache: packages and bytes in node_modules.
 * - **the tarball**: files, packed and unpacked size (`npm pack --json`).
 *
 * ```sh
 * npx tsc -p tsconfig.json && node dist/bench/footprint.js [--rounds 21] [--json]
 * ```
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('../../', import.meta.url));
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '21' }, json: { type: 'boolean', default: false } } });
const rounds = Number(values.rounds);

/** One fresh process importing `spec`: ms inside around `import()`, and the process's wall ms. */
function importOnce(spec: string): Promise<{ inside: number; wall: number }> {
  const script = `const t = performance.now(); await import(${JSON.stringify(spec)}); process.stdout.write(String(performance.now() - t));`;
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: root }, (error, stdout) => {
      if (error) reject(error);
      else resolve({ inside: Number(stdout), wall: Number(process.hrtime.bigint() - start) / 1e6 });
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] ?? NaN;
};

/** Bytes and package count of a folder tree's node_modules. */
function installed(dir: string): { packages: number; bytes: number } {
  let bytes = 0;
  const walk = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) bytes += statSync(full).size;
    }
  };
  const modules = join(dir, 'node_modules');
  walk(modules);
  let packages = 0;
  for (const name of readdirSync(modules)) {
    if (name.startsWith('.')) continue;
    packages += name.startsWith('@') ? readdirSync(join(modules, name)).length : 1;
  }
  return { packages, bytes };
}

function install(what: string): { packages: number; bytes: number } {
  const dir = mkdtempSync(join(tmpdir(), 'duplex-footprint-'));
  try {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'footprint', version: '1.0.0', private: true }));
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', what], { cwd: dir, stdio: 'ignore' });
    return installed(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const importTimes: Record<'duplex' | 'ws' | 'none', { inside: number[]; wall: number[] }> = {
  duplex: { inside: [], wall: [] },
  ws: { inside: [], wall: [] },
  none: { inside: [], wall: [] },
};
const ratios: number[] = [];
for (let round = 0; round < rounds; round++) {
  const order: Array<['duplex' | 'ws' | 'none', string]> = [
    ['duplex', 'duplex-ws'],
    ['ws', 'ws'],
    ['none', 'node:os'],
  ];
  if (round % 2 === 1) order.reverse();
  const got: Record<string, number> = {};
  for (const [name, spec] of order) {
    const t = await importOnce(spec);
    importTimes[name].inside.push(t.inside);
    importTimes[name].wall.push(t.wall);
    got[name] = t.inside;
  }
  ratios.push(got['duplex']! / got['ws']!);
}

const packDir = mkdtempSync(join(tmpdir(), 'duplex-pack-'));
const [pack] = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: root, encoding: 'utf8' })) as Array<{ filename: string; size: number; unpackedSize: number; entryCount: number }>;
const tarball = join(packDir, pack!.filename);
const sizes = { duplex: install(tarball), ws: install('ws') };
rmSync(packDir, { recursive: true, force: true });

const result = {
  node: process.version,
  rounds,
  importMs: {
    duplex: { inside: median(importTimes.duplex.inside), wall: median(importTimes.duplex.wall) },
    ws: { inside: median(importTimes.ws.inside), wall: median(importTimes.ws.wall) },
    emptyProcessWall: median(importTimes.none.wall),
    ratioInside: { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) },
  },
  installed: sizes,
  tarball: { files: pack!.entryCount, packedBytes: pack!.size, unpackedBytes: pack!.unpackedSize },
};

if (values.json) {
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} else {
  const kib = (n: number): string => `${(n / 1024).toFixed(0)} KiB`;
  const ms = (n: number): string => `${n.toFixed(1)} ms`;
  const r = result.importMs;
  process.stdout.write(
    [
      `node ${result.node}, ${rounds} alternating rounds, medians`,
      '',
      '| | duplex-ws | ws | ratio |',
      '|---|--:|--:|--:|',
      `| import() time | ${ms(r.duplex.inside)} | ${ms(r.ws.inside)} | ${r.ratioInside.median.toFixed(2)}× (${r.ratioInside.min.toFixed(2)}–${r.ratioInside.max.toFixed(2)}) |`,
      `| process wall time (empty: ${ms(r.emptyProcessWall)}) | ${ms(r.duplex.wall)} | ${ms(r.ws.wall)} | ${(r.duplex.wall / r.ws.wall).toFixed(2)}× |`,
      `| installed packages | ${sizes.duplex.packages} | ${sizes.ws.packages} | |`,
      `| installed size | ${kib(sizes.duplex.bytes)} | ${kib(sizes.ws.bytes)} | ${(sizes.duplex.bytes / sizes.ws.bytes).toFixed(2)}× |`,
      '',
      `tarball: ${result.tarball.files} files, ${kib(result.tarball.packedBytes)} packed, ${kib(result.tarball.unpackedBytes)} unpacked`,
      '',
    ].join('\n'),
  );
}
