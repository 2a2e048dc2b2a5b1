/**
 * `duplex bench --mode broadcast`: connection 0 sends, keeping --window messages in flight until
 * every other connection has received them; every connection (the sender too, if the server
 * sends it a copy) counts deliveries and their latency from the embedded send time.
 */
import { State } from '../../protocol/constants.js';
import { Phase, type Mode, type RunState } from './mode.js';
import type { Peer } from './peer.js';

export class BroadcastMode implements Mode {
  private sender: Peer | undefined;
  /** The sender's next sequence number, and the first one not yet delivered everywhere. */
  private nextSeq = 0;
  private doneSeq = 0;
  /** A ring, by sequence number modulo the window: deliveries still awaited per message. */
  private readonly remaining: Int32Array;
  private receivers = 0;

  constructor(private readonly run: RunState) {
    this.remaining = new Int32Array(run.options.window);
  }

  get pending(): boolean {
    return this.nextSeq > this.doneSeq;
  }

  start(): void {
    this.sender = this.run.peers.find((peer) => !peer.closed);
    this.receivers = this.run.live - 1;
    this.pump();
  }

  private pump(): void {
    const sender = this.sender!;
    const window = this.run.options.window;
    while (this.run.sending && this.nextSeq - this.doneSeq < window && sender.conn.state === State.Open && !sender.conn.closing) {
      // Done when every other connection has it; alone, when the sender gets its own copy.
      this.remaining[this.nextSeq % window] = this.receivers || 1;
      sender.send(this.run.payload, this.nextSeq, this.run.options.text);
      this.nextSeq++;
      this.run.countSent();
    }
  }

  /** Message `seq` reached one more receiver (or lost one): advance the window. */
  private delivered(seq: number): void {
    const window = this.run.options.window;
    if (seq < this.doneSeq || seq >= this.nextSeq) return;
    this.remaining[seq % window]--;
    while (this.doneSeq < this.nextSeq && this.remaining[this.doneSeq % window] <= 0) this.doneSeq++;
    if (this.run.sending) this.pump();
    else if (this.run.phase === Phase.Draining && this.doneSeq === this.nextSeq) this.run.endPhase();
  }

  received(peer: Peer, seq: number): void {
    if (peer !== this.sender || this.receivers === 0) this.delivered(seq);
  }

  /** Without the sender the run is over; a receiver will never get what it has not received yet. */
  lost(peer: Peer): void {
    if (this.run.phase === Phase.Connecting) return;
    if (peer === this.sender) {
      this.run.abort();
      return;
    }
    this.receivers--;
    const end = this.nextSeq;
    for (let seq = Math.max(peer.expect, this.doneSeq); seq < end; seq++) this.delivered(seq);
  }
}
