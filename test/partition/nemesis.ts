// The nemesis of the partition test: a schedule of faults drawn from a seeded PRNG (the same
// seed gives the same schedule: `PARTITION_SEED` replays one), applied to the link emulator one
// after the other, each healed before a quiet spell and the next. The seed fixes the faults and
// their timing, not the fate of each packet nor the processes' scheduling: a replay reproduces
// the conditions, not necessarily the very interleaving.
//
// Faults (the links are those of bed.ts):
//   cut            one link, both ways (a partition between two hosts)
//   cut-one-way    one link, one direction (half-open connections: one side still hears the other)
//   isolate-node   a node from the broker and from its clients at once
//   isolate-broker the broker from both nodes
//   delay          200 ms on one link, order kept
//   loss           5 % on one link
//   slow-lossy     200 ms and 5 % on every link at once
//   cut-slow       every link slow and lossy, and one of them cut
//   flap           one link cut and healed every 0.3–1.5 s for the duration
import type { Direction, Impairment, LinkEmulator } from './emulator.js';
import { LINKS, type LinkName } from './bed.js';

/** A small, fast, seeded PRNG (mulberry32): uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type FaultKind = 'cut' | 'cut-one-way' | 'isolate-node' | 'isolate-broker' | 'delay' | 'loss' | 'slow-lossy' | 'cut-slow' | 'flap';

/** One impairment of one link (direction) that a fault sets. */
export interface LinkSetting {
  readonly link: LinkName;
  readonly dir: Direction;
  readonly impairment: Impairment;
}

/** One fault: when it starts (ms from the start of the nemesis), how long it holds, what it does. */
export interface Fault {
  readonly at: number;
  readonly duration: number;
  readonly kind: FaultKind;
  readonly settings: readonly LinkSetting[];
  /** For `flap`: the link cut and healed in turn, and the spells (ms). */
  readonly flap?: { readonly link: LinkName; readonly spells: readonly number[] };
  readonly description: string;
}

/** The nemesis's impairments: 200 ms of delay and 5 % loss, as the issue asks. */
export const DELAY_MS = 200;
export const LOSS = 0.05;

const WEIGHTS: ReadonlyArray<readonly [FaultKind, number]> = [
  ['cut', 4],
  ['cut-one-way', 2],
  ['isolate-node', 2],
  ['isolate-broker', 1],
  ['delay', 1],
  ['loss', 1],
  ['slow-lossy', 1],
  ['cut-slow', 1],
  ['flap', 1],
];

/** The schedule of faults for `seconds` of nemesis, from `seed`. */
export function schedule(seed: number, seconds: number): Fault[] {
  const random = prng(seed);
  const between = (lo: number, hi: number): number => Math.round(lo + random() * (hi - lo));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const total = WEIGHTS.reduce((n, [, w]) => n + w, 0);
  const kind = (): FaultKind => {
    let r = random() * total;
    for (const [k, w] of WEIGHTS) if ((r -= w) < 0) return k;
    return 'cut';
  };
  const all = LINKS.map((l) => l.name);
  const slowLossy = (link: LinkName): LinkSetting => ({ link, dir: 'both', impairment: { delay: DELAY_MS, loss: LOSS } });
  const faults: Fault[] = [];
  const end = seconds * 1000;
  // A few seconds of clean traffic first, so that every subscriber has a position before any fault.
  let at = 2000;
  while (true) {
    const k = kind();
    // Cuts of 1–20 s: below ~4 s the clients' and TCP's timers ride them out, above ~12 s they break connections.
    let duration = k === 'delay' || k === 'loss' || k === 'slow-lossy' ? between(4000, 15_000) : between(1000, 20_000);
    if (at + duration > end) duration = end - at;
    if (duration < 500) break;
    let fault: Omit<Fault, 'at' | 'duration' | 'kind'>;
    switch (k) {
      case 'cut': {
        const link = pick(all);
        fault = { settings: [{ link, dir: 'both', impairment: { cut: true } }], description: `cut ${link}` };
        break;
      }
      case 'cut-one-way': {
        const name = pick(all);
        const link = LINKS.find((l) => l.name === name)!;
        const dir = pick(['12', '21'] as const);
        const [from, to] = dir === '12' ? link.hosts : [link.hosts[1], link.hosts[0]];
        fault = { settings: [{ link: link.name, dir, impairment: { cut: true } }], description: `cut ${from} → ${to} (${link.name} one way)` };
        break;
      }
      case 'isolate-node': {
        const node = pick(['a', 'b'] as const);
        fault = {
          settings: [
            { link: `${node}-broker`, dir: 'both', impairment: { cut: true } },
            { link: `clients-${node}`, dir: 'both', impairment: { cut: true } },
          ],
          description: `isolate node ${node}`,
        };
        break;
      }
      case 'isolate-broker':
        fault = {
          settings: [
            { link: 'a-broker', dir: 'both', impairment: { cut: true } },
            { link: 'b-broker', dir: 'both', impairment: { cut: true } },
          ],
          description: 'isolate the broker',
        };
        break;
      case 'delay': {
        const link = pick(all);
        fault = { settings: [{ link, dir: 'both', impairment: { delay: DELAY_MS } }], description: `${DELAY_MS} ms on ${link}` };
        break;
      }
      case 'loss': {
        const link = pick(all);
        fault = { settings: [{ link, dir: 'both', impairment: { loss: LOSS } }], description: `${LOSS * 100} % loss on ${link}` };
        break;
      }
      case 'slow-lossy':
        fault = { settings: all.map(slowLossy), description: `${DELAY_MS} ms + ${LOSS * 100} % loss on every link` };
        break;
      case 'cut-slow': {
        const link = pick(all);
        fault = {
          settings: [...all.map(slowLossy), { link, dir: 'both', impairment: { cut: true } }],
          description: `every link slow and lossy, ${link} cut`,
        };
        break;
      }
      case 'flap': {
        const link = pick(all);
        const spells: number[] = [];
        for (let left = duration; left > 0; ) {
          const spell = Math.min(left, between(300, 1500));
          spells.push(spell);
          left -= spell;
        }
        fault = { settings: [], flap: { link, spells }, description: `flap ${link} (${spells.length} spells)` };
        break;
      }
    }
    faults.push({ at, duration, kind: k, ...fault });
    at += duration + between(1000, 4000);
    if (at >= end) break;
  }
  return faults;
}

/** What happened, for the report: each fault with when it actually started and ended. */
export interface AppliedFault extends Fault {
  readonly startedAt: number;
  readonly healedAt: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Apply `faults` in order (each healed at its end); resolves once the last is healed. */
export async function runNemesis(emulator: LinkEmulator, faults: readonly Fault[], onFault?: (f: Fault) => void): Promise<AppliedFault[]> {
  const start = Date.now();
  const applied: AppliedFault[] = [];
  try {
    for (const fault of faults) {
      const wait = start + fault.at - Date.now();
      if (wait > 0) await sleep(wait);
      onFault?.(fault);
      const startedAt = Date.now();
      if (fault.flap) {
        let cut = true;
        for (const spell of fault.flap.spells) {
          await emulator.set(fault.flap.link, 'both', { cut });
          await sleep(spell);
          cut = !cut;
        }
      } else {
        for (const s of fault.settings) await emulator.set(s.link, s.dir, s.impairment);
        await sleep(Math.max(0, startedAt + fault.duration - Date.now()));
      }
      await emulator.heal();
      applied.push({ ...fault, startedAt, healedAt: Date.now() });
    }
  } finally {
    await emulator.heal();
  }
  return applied;
}
