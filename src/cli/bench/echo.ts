/**
 * `duplex bench --mode echo`: every connection keeps --window messages in flight; each answer
 * is a round trip measured, and sends the next message.
 */
import { State } from '../../protocol/constants.js';
import { Phase, type Mode, type RunState } from './mode.js';
import type { Peer } from './peer.js';

export class EchoMode implements Mode {
  /** Answers outstanding over all connections. */
  private inFlight = 0;

  constructor(private readonly run: RunState) {}

  get pending(): boolean {
    return this.inFlight > 0;
  }

  start(): void {
    for (const peer of this.run.peers) {
      if (peer.closed) continue;
      for (let i = 0; i < this.run.options.window; i++) this.send(peer);
    }
  }

  private send(peer: Peer): void {
    if (peer.conn.state !== State.Open || peer.conn.closing) return;
    peer.send(this.run.payload, peer.seq, this.run.options.text);
    peer.seq++;
    peer.inFlight++;
    this.inFlight++;
    this.run.countSent();
  }

  received(peer: Peer): void {
    if (peer.inFlight > 0) {
      peer.inFlight--;
      this.inFlight--;
    }
    if (this.run.sending) this.send(peer);
    else if (this.run.phase === Phase.Draining && this.inFlight === 0) this.run.endPhase();
  }

  /** Its answers will never come: stop waiting for them. */
  lost(peer: Peer): void {
    this.inFlight -= peer.inFlight;
    peer.inFlight = 0;
    if (this.run.phase === Phase.Draining && this.inFlight === 0) this.run.endPhase();
  }
}
