/**
 * The topic sequencer: turns what the broker delivers for one topic on this node into an ordered
 * stream for the node's local subscribers — each publication once, in offset order — and fills
 * holes from history. It knows nothing of sockets: it reads history through a function and emits
 * deliveries, gaps and epoch changes to a `TopicOutput`, so it is tested with fakes of both.
 *
 * What "nothing acknowledged is lost" rests on (after Centrifugo): the sequencer tracks the last
 * offset it delivered; a jump, or the broker's `onReconnect`, makes it fetch the missing
 * publications from history first, holding later live ones back — and when history cannot fill
 * the hole, it emits a gap. At the seam between history and live delivery, whatever arrives
 * twice (in history and live) is delivered once: an offset at or below the last delivered one is
 * dropped.
 */
import type { Logger } from '../node/logger.js';
import type { HistorySlice, Publication } from './broker.js';
import { errorMessage } from './errors.js';
import type { GapReason } from './wire.js';

/** Ask the broker for a topic's position only: nothing is retained after this offset. */
export const POSITION_ONLY = Number.MAX_SAFE_INTEGER;

/**
 * How a failed history fetch is retried while filling a gap: `attempts` more times, after
 * `delay`, 2 × `delay`, 4 × `delay` … ms (3.1 s in all by default). The broker is most likely
 * reconnecting (its subscriber connection can be back before its command connection), so what
 * is missing is probably still in history: worth waiting for before declaring it lost.
 */
export const HISTORY_RETRY = { attempts: 5, delay: 100 } as const;

/** Reads a topic's history: publications after `offset` in `epoch` (the broker's `history`). */
export type HistorySource = (topic: string, offset: number, epoch: string | undefined) => Promise<HistorySlice>;

/** What a sequencer emits, in order, for the topic's local subscribers. */
export interface TopicOutput {
  /** The topic moved to another epoch: positions in the previous one mean nothing now. Comes before that epoch's delivery or gap. */
  epochChanged(epoch: string): void;
  /** The next publication, in offset order, each once. */
  deliver(publication: Publication): void;
  /** Publications up to `offset` of `epoch` are lost; live delivery goes on after `offset`. */
  gap(epoch: string, offset: number, reason: GapReason): void;
}

/** Counters a sequencer adds to (the hub's `stats()`). */
export interface SequencerCounters {
  /** Publications fetched from history to fill a jump in offsets. */
  refetched: number;
  /** Gaps emitted. */
  gaps: number;
}

/** What a sequencer is built with. */
export interface SequencerOptions {
  readonly history: HistorySource;
  readonly output: TopicOutput;
  readonly counters: SequencerCounters;
  readonly logger: Logger;
  /** Retries of a failed history fetch (default `HISTORY_RETRY`). */
  readonly retry?: { readonly attempts: number; readonly delay: number };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** One topic's ordering on this node: the position delivered, what waits, and the catch-up from history. */
export class TopicSequencer {
  #epoch = '';
  #offset = 0;
  #known = false;
  readonly #history: HistorySource;
  readonly #output: TopicOutput;
  readonly #counters: SequencerCounters;
  readonly #logger: Logger;
  readonly #retry: { readonly attempts: number; readonly delay: number };
  /** Publications that arrived out of order, or before the position was known, or during a catch-up. */
  #pending: Publication[] = [];
  #catchingUp = false;
  /** Another catch-up was asked for while one ran (broker reconnect). */
  #again = false;
  #closed = false;

  constructor(
    /** The topic's name. */
    readonly name: string,
    options: SequencerOptions,
  ) {
    this.#history = options.history;
    this.#output = options.output;
    this.#counters = options.counters;
    this.#logger = options.logger;
    this.#retry = options.retry ?? HISTORY_RETRY;
  }

  /** The epoch of the last publication delivered (or of the position `start` read). */
  get epoch(): string {
    return this.#epoch;
  }

  /** The offset of the last publication delivered (or gap emitted): the next one expected is one more. */
  get offset(): number {
    return this.#offset;
  }

  /** Whether `start` has read the position (before that, everything waits). */
  get known(): boolean {
    return this.#known;
  }

  /**
   * Read the position to deliver from (publications up to it are history, after it live), then
   * deliver what arrived meanwhile. Call once the broker subscription is made.
   */
  async start(): Promise<void> {
    const slice = await this.#history(this.name, POSITION_ONLY, undefined);
    this.#epoch = slice.epoch;
    this.#offset = slice.offset;
    this.#known = true;
    this.#drainPending();
  }

  /** A publication from the broker. */
  receive(publication: Publication): void {
    if (!this.#known || this.#catchingUp) {
      this.#pending.push(publication);
      return;
    }
    this.#accept(publication);
  }

  /** The broker lost its connection and is back: deliveries may have been missed, so check history. */
  resync(): void {
    if (this.#known) void this.#catchUp();
  }

  /** The node no longer serves this topic: a catch-up under way stops at its next step. */
  close(): void {
    this.#closed = true;
  }

  /** In-order delivery: the next offset is delivered, an old one dropped, a jump fetched from history. */
  #accept(publication: Publication): void {
    if (publication.epoch !== this.#epoch) {
      // The broker lost the topic's history (a new epoch): older positions mean nothing now.
      if (publication.offset > 1) {
        // Publications of the new epoch came before this one (e.g. while this node's broker
        // connection was down): fetch them from history rather than declare them lost too.
        this.#pending.push(publication);
        void this.#catchUp();
        return;
      }
      this.#gap(publication.epoch, publication.offset - 1, 'epoch changed');
      this.#deliver(publication);
      return;
    }
    if (publication.offset <= this.#offset) return; // already delivered
    if (publication.offset === this.#offset + 1) {
      this.#deliver(publication);
      return;
    }
    this.#pending.push(publication);
    void this.#catchUp();
  }

  /** Fetch what is missing after `offset` from history, then deliver what waited. */
  async #catchUp(): Promise<void> {
    if (this.#catchingUp) {
      this.#again = true;
      return;
    }
    this.#catchingUp = true;
    let failures = 0;
    let retry = false;
    try {
      do {
        this.#again = false;
        retry = false;
        let slice: HistorySlice | undefined;
        try {
          slice = await this.#history(this.name, this.#offset, this.#epoch);
          failures = 0;
        } catch (error) {
          this.#logger.warn({ topic: this.name, err: errorMessage(error), failures }, 'history fetch failed while filling a gap');
          slice = undefined;
        }
        if (this.#closed) return;
        if (slice === undefined && failures < this.#retry.attempts) {
          // Wait and ask again — holding later publications back — before declaring it lost.
          await delay(this.#retry.delay * 2 ** failures++);
          if (this.#closed) return;
          retry = true;
          continue;
        }
        if (slice === undefined) {
          // Cannot fill the hole: say so, and go on from what is waiting.
          const next = Math.min(...this.#pending.map((p) => p.offset));
          if (Number.isFinite(next)) this.#gap(this.#epoch, next - 1, 'too old');
        } else if (slice.epoch !== this.#epoch || !slice.complete) {
          const first = slice.publications[0]?.offset ?? slice.offset + 1;
          this.#gap(slice.epoch, first - 1, slice.epoch !== this.#epoch ? 'epoch changed' : 'too old');
          for (const p of slice.publications) this.#deliver(p);
        } else {
          for (const p of slice.publications) {
            if (p.offset === this.#offset + 1) {
              this.#counters.refetched++;
              this.#deliver(p);
            }
          }
        }
      } while (retry || this.#drainPending() || this.#again);
    } finally {
      this.#catchingUp = false;
    }
  }

  /**
   * Deliver waiting publications that follow on; drop old ones. True if a jump remains (another
   * history fetch is needed).
   */
  #drainPending(): boolean {
    if (this.#pending.length === 0) return false;
    const waiting = this.#pending.sort((a, b) => a.offset - b.offset);
    this.#pending = [];
    for (let i = 0; i < waiting.length; i++) {
      const p = waiting[i]!;
      if (p.epoch !== this.#epoch) {
        this.#gap(p.epoch, p.offset - 1, 'epoch changed');
        this.#deliver(p);
      } else if (p.offset === this.#offset + 1) {
        this.#deliver(p);
      } else if (p.offset > this.#offset + 1) {
        this.#pending = waiting.slice(i);
        if (!this.#catchingUp) void this.#catchUp();
        return true;
      }
    }
    return false;
  }

  #deliver(publication: Publication): void {
    this.#moveTo(publication.epoch);
    this.#offset = publication.offset;
    this.#output.deliver(publication);
  }

  /** Publications up to `offset` in `epoch` are lost: emit the gap and go on after it. */
  #gap(epoch: string, offset: number, reason: GapReason): void {
    this.#counters.gaps++;
    this.#logger.warn({ topic: this.name, epoch, offset, reason }, 'publications lost: sending gap');
    this.#moveTo(epoch);
    this.#offset = Math.max(0, offset);
    this.#output.gap(epoch, this.#offset, reason);
  }

  #moveTo(epoch: string): void {
    if (epoch === this.#epoch) return;
    this.#epoch = epoch;
    this.#output.epochChanged(epoch);
  }
}
