/**
 * What the two modes of `duplex bench` (echo.ts, broadcast.ts) share with the run (run.ts):
 * the phases of a run, what a mode may ask of the run, and what the run asks of a mode.
 */
import type { BenchOptions } from './options.js';
import type { Peer } from './peer.js';

/** The phases of a run, in order. */
export const enum Phase {
  Connecting,
  Warmup,
  Measuring,
  Draining,
  Closing,
  Done,
}

/** The run, as a mode sees it. */
export interface RunState {
  readonly options: BenchOptions;
  /** The payload every connection sends (stamped at each send). */
  readonly payload: Uint8Array;
  readonly peers: readonly Peer[];
  /** Connections still open. */
  readonly live: number;
  readonly phase: Phase;
  /** Warm-up or measuring: messages are being sent. */
  readonly sending: boolean;
  /** A message was sent now: count it if now is inside the measurement window. */
  countSent(): void;
  /** End the current wait early (the drain, once nothing is awaited any more). */
  endPhase(): void;
  /** Stop the run now and report it as interrupted. */
  abort(): void;
}

/** How a mode sends and what it waits for. */
export interface Mode {
  /** Whether answers to messages already sent are still awaited. */
  readonly pending: boolean;
  /** Start sending (the warm-up or the measurement begins). */
  start(): void;
  /** Message `seq` of the run arrived at `peer` (checked and counted by the run). */
  received(peer: Peer, seq: number): void;
  /** `peer` closed before the end of the run. */
  lost(peer: Peer): void;
}
