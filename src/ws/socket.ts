/**
 * Wires an upgraded socket to the engine's `WebSocket` (the `AttachTransport` of the ws-compatible
 * module). Like `src/node/transport/net.ts`, but for any Duplex (ws's `handleUpgrade` takes one:
 * `setNoDelay`/`setTimeout` are used when present), with ws's socket semantics: socket errors are
 * not re-emitted (the socket is destroyed and `'close'` follows), and `'close'` is emitted once the
 * socket has closed. The listeners are module-level functions shared by every connection: `this`
 * is the socket and the engine's WebSocket hangs off it.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket as Inner } from '../node/websocket.js';
import type { Transport, TransportSink } from '../node/transport/transport.js';

/** What the ws-compatible WebSocket hears from its socket, beyond the engine's events. */
export interface SocketOwner {
  /** The socket closed (the engine has been told): emit `'close'`. */
  onSocketClose(): void;
}

const kInner = Symbol('duplex.ws.inner');
type BoundSocket = Duplex & {
  [kInner]?: Inner<SocketOwner>;
  setNoDelay?: (noDelay?: boolean) => unknown;
  setTimeout?: (ms: number) => unknown;
};

/** Hand `socket`'s events to the engine's WebSocket `sink` (whose `data` is the ws-compatible WebSocket). */
export function attachSocket(transport: Transport, sink: TransportSink): void {
  const socket = transport as unknown as BoundSocket;
  socket[kInner] = sink as Inner<SocketOwner>;
  // No idle timeout left from the HTTP exchange; no Nagle delay (frames are written whole, batched).
  if (typeof socket.setTimeout === 'function') socket.setTimeout(0);
  if (typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
  socket.on('data', onSocketData);
  socket.on('end', onSocketEnd);
  socket.on('close', onSocketClose);
  socket.on('error', onSocketError);
  socket.on('drain', onSocketDrain);
}

function onSocketData(this: BoundSocket, chunk: Buffer): void {
  this[kInner]?.onTransportData(chunk);
}
function onSocketEnd(this: BoundSocket): void {
  // The peer closed its side; close ours once our writes are out (ws does the same).
  if (this.writable) this.end();
  this[kInner]?.onTransportEnd();
}
function onSocketClose(this: BoundSocket): void {
  const inner = this[kInner];
  if (inner === undefined) return;
  this[kInner] = undefined;
  inner.onTransportClose();
  inner.data.onSocketClose();
}
function onSocketError(this: BoundSocket): void {
  // ws does not re-emit socket errors (EPIPE, ECONNRESET…): the connection just closes (1006).
  this.destroy();
}
function onSocketDrain(this: BoundSocket): void {
  this[kInner]?.onTransportDrain();
}
