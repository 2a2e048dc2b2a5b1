/**
 * The `net.Socket` transport (plain TCP, and TLS: a `tls.TLSSocket` is a `net.Socket`). A socket
 * is a `Transport` as it is; this wires its events to the WebSocket. The listeners are
 * module-level functions shared by every connection: `this` is the socket and the sink hangs
 * off it, so a connection costs no closures.
 */
import type { Socket } from 'node:net';
import type { TransportSink } from './transport.js';

const kSink = Symbol('duplex.transportSink');
type BoundSocket = Socket & { [kSink]?: TransportSink };

/** @internal Hand `socket`'s events to `sink` (an `AttachTransport` for sockets after the opening handshake). */
export function attachNetSocket(socket: Socket, sink: TransportSink): void {
  (socket as BoundSocket)[kSink] = sink;
  // Frames are written whole and batched per loop pass: Nagle's delay would only add latency.
  socket.setNoDelay(true);
  // No idle timeout from the HTTP exchange the socket served: keepalive and idle checks are ours.
  socket.setTimeout(0);
  socket.on('data', onSocketData);
  socket.on('end', onSocketEnd);
  socket.on('close', onSocketClose);
  socket.on('error', onSocketError);
  socket.on('drain', onSocketDrain);
}

function onSocketData(this: BoundSocket, chunk: Buffer): void {
  this[kSink]?.onTransportData(chunk);
}
function onSocketEnd(this: BoundSocket): void {
  // The peer closed its side; close ours (http sockets allow half-open connections).
  if (this.writable) this.end();
  this[kSink]?.onTransportEnd();
}
function onSocketClose(this: BoundSocket): void {
  this[kSink]?.onTransportClose();
}
function onSocketError(this: BoundSocket, error: Error): void {
  this[kSink]?.onTransportError(error);
  this.destroy();
}
function onSocketDrain(this: BoundSocket): void {
  this[kSink]?.onTransportDrain();
}
