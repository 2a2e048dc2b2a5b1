/**
 * One `duplex bench` connection: a raw socket driven by the sans-I/O engine (`Connection`, side
 * 'client'), not a `WebSocket` object, so one process pushes as hard as it can. Frames are
 * written into the engine's arena; every connection with bytes queued is written once, after
 * the current callback (one write per connection per event-loop pass).
 */
import type { Socket } from 'node:net';
import { Connection, type ConnectionHandler } from '../../protocol/connection.js';
import type { ProtocolError } from '../../protocol/errors.js';
import { stamp, tick } from './payload.js';

/** What a connection reports to the run that owns it. */
export interface PeerOwner {
  /** The payload size: the engine's message limit is set from it. */
  readonly options: { readonly size: number };
  message(peer: Peer, data: Uint8Array, binary: boolean): void;
  error(kind: 'protocol', message: string): void;
  peerClosed(peer: Peer): void;
}

/** Connections with bytes queued, written once the current callback is done. */
const dirty: Peer[] = [];
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  for (let i = 0; i < dirty.length; i++) dirty[i].flush();
  dirty.length = 0;
}

/** One benchmark connection: a socket, the engine, and the sequence bookkeeping. */
export class Peer implements ConnectionHandler {
  readonly conn: Connection;
  /** Next sequence number to send (echo). */
  seq = 0;
  /** Next sequence number expected back (echo) or delivered (broadcast). */
  expect = 0;
  /** Messages sent and not answered yet (echo). */
  inFlight = 0;
  isDirty = false;
  closed = false;
  /** The engine failed the connection (already counted as a protocol error). */
  failed = false;
  /** The close frame the server sent, or the socket error, for the report. */
  closeDetail = '';

  constructor(
    readonly owner: PeerOwner,
    readonly socket: Socket,
  ) {
    this.conn = new Connection({ side: 'client', maxMessageSize: Math.max(owner.options.size * 2, 1 << 20) }, this);
  }

  start(head: Buffer): void {
    const socket = this.socket;
    socket.on('data', (chunk: Buffer) => {
      tick();
      this.conn.receiveData(chunk);
      if (this.conn.hasDataToSend) this.markDirty();
    });
    socket.on('end', () => this.conn.receiveEof());
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!this.closeDetail) this.closeDetail = error.code ?? error.message;
    });
    socket.on('close', () => this.owner.peerClosed(this));
    if (head.length > 0) {
      tick();
      this.conn.receiveData(head);
      if (this.conn.hasDataToSend) this.markDirty();
    }
  }

  markDirty(): void {
    if (this.isDirty) return;
    this.isDirty = true;
    dirty.push(this);
    if (!flushScheduled) {
      flushScheduled = true;
      queueMicrotask(flushAll);
    }
  }

  flush(): void {
    this.isDirty = false;
    const chunks = this.conn.dataToSend();
    if (this.socket.destroyed) return;
    for (let i = 0; i < chunks.length; i++) this.socket.write(chunks[i]);
    if (this.conn.shouldCloseTransport) this.socket.end();
  }

  /** Send the shared payload stamped with the time and `seq`. */
  send(payload: Uint8Array, seq: number, text: boolean): void {
    stamp(payload, seq);
    // The engine copies (and masks) the payload into its own buffer, so it can be reused at once.
    if (text) this.conn.sendText(payload);
    else this.conn.sendBinary(payload);
    this.markDirty();
  }

  onMessage(data: Uint8Array, binary: boolean): void {
    this.owner.message(this, data, binary);
  }
  onPing(): void {
    this.markDirty(); // the engine queued the pong
  }
  onPong(): void {}
  onClose(code: number, reason: string): void {
    if (!this.closeDetail) this.closeDetail = `server sent close ${code}${reason ? ` ${reason}` : ''}`;
    this.markDirty(); // the engine queued the answering close frame
  }
  onProtocolError(error: ProtocolError): void {
    this.owner.error('protocol', `protocol error from the server: ${error.message} (${error.code})`);
    this.failed = true;
    this.markDirty();
  }
}
