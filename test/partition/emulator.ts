// The test's handle on the link emulator (netem.py): starts it, sends it the nemesis's commands
// over its stdin and waits for each answer, reads its packet counters.
import { fileURLToPath } from 'node:url';

import { startProcess, type Proc } from './processes.js';

/** netem.py stays in the source tree (tsc copies no .py into dist/): found from dist/test/partition/. */
export const NETEM_SCRIPT = fileURLToPath(new URL('../../../test/partition/netem.py', import.meta.url));

/** Which way along a link: from its first host to its second ('12'), back ('21'), or both. */
export type Direction = 'both' | '12' | '21';

/** What a direction of a link does to packets; fields left out keep their value. */
export interface Impairment {
  /** Fixed delay, ms (order kept). */
  readonly delay?: number;
  /** Probability of dropping a packet, 0–1. */
  readonly loss?: number;
  /** Drop every packet (a partition). */
  readonly cut?: boolean;
  /** Drop TCP segments that carry data, let pure ACKs and control segments through. */
  readonly dropData?: boolean;
}

/** Counters of one direction of one link. */
export interface DirectionStats {
  /** Written to the far end. */
  readonly forwarded: number;
  /** Dropped at random (loss). */
  readonly lost: number;
  /** Dropped by a cut. */
  readonly blackholed: number;
  /** TCP segments with data dropped by `dropData`. */
  readonly dataDropped: number;
  readonly overflow: number;
  readonly errors: number;
  readonly queued: number;
}

export type EmulatorStats = Record<string, Record<'12' | '21', DirectionStats>>;

/** A link as the emulator makes it: a name and the TUN devices of its two ends. */
export interface LinkDevices {
  readonly name: string;
  readonly first: string;
  readonly second: string;
}

interface Answer {
  readonly id?: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly links?: EmulatorStats;
}

export class LinkEmulator {
  readonly #proc: Proc;
  readonly #waiting = new Map<number, (answer: Answer) => void>();
  #nextId = 1;
  #buffer = '';

  private constructor(proc: Proc) {
    this.#proc = proc;
    proc.child.stdout?.on('data', (chunk: Buffer) => this.#read(chunk.toString('utf8')));
  }

  /** Start the emulator with its links' TUN devices created (still in this namespace). */
  static async start(python: string, seed: number, links: readonly LinkDevices[]): Promise<LinkEmulator> {
    const args = [NETEM_SCRIPT, '--seed', String(seed), ...links.map((l) => `${l.name}=${l.first},${l.second}`)];
    const proc = startProcess('netem', python, args);
    await proc.waitFor(/"ready": true/, 10_000);
    return new LinkEmulator(proc);
  }

  get pid(): number {
    return this.#proc.pid;
  }

  /** Impair one link (one direction, or both). */
  async set(link: string, dir: Direction, impairment: Impairment): Promise<void> {
    await this.#command({ op: 'set', link, dir, ...impairment });
  }

  /** Every link back to a clean wire. */
  async heal(): Promise<void> {
    await this.#command({ op: 'heal' });
  }

  async stats(): Promise<EmulatorStats> {
    return (await this.#command({ op: 'stats' })).links ?? {};
  }

  /** Stop it: its TUN devices disappear with it. */
  async close(): Promise<void> {
    this.#proc.send(JSON.stringify({ id: 0, op: 'quit' }));
    this.#proc.child.stdin?.end();
    await this.#proc.stop('SIGTERM', 2000);
  }

  async #command(body: Record<string, unknown>): Promise<Answer> {
    const id = this.#nextId++;
    const answer = await new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`netem: no answer to ${JSON.stringify(body)}; output:\n${this.#proc.output().slice(-2000)}`));
      }, 5000);
      this.#waiting.set(id, (a) => {
        clearTimeout(timer);
        resolve(a);
      });
      this.#proc.send(JSON.stringify({ id, ...body }));
    });
    if (!answer.ok) throw new Error(`netem refused ${JSON.stringify(body)}: ${answer.error ?? '?'}`);
    return answer;
  }

  #read(text: string): void {
    this.#buffer += text;
    let newline: number;
    while ((newline = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, newline);
      this.#buffer = this.#buffer.slice(newline + 1);
      let answer: Answer;
      try {
        answer = JSON.parse(line) as Answer;
      } catch {
        continue;
      }
      if (answer.id === undefined) continue;
      const waiter = this.#waiting.get(answer.id);
      this.#waiting.delete(answer.id);
      waiter?.(answer);
    }
  }
}
