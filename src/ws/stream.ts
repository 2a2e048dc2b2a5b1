/**
 * `createWebSocketStream(ws)`: a WebSocket as a Node `Duplex`, with ws 8's semantics. Each
 * message becomes one chunk of the readable side; each chunk written becomes one binary message
 * (a string written with `decodeStrings: false` a text one). Backpressure pauses the socket while
 * the readable buffer is full; ending the writable side closes the WebSocket, and the WebSocket's
 * `close` ends the readable side; the stream is destroyed once both sides are done.
 *
 * It uses only the public API of a ws-style WebSocket, so it wraps ours and ws's alike.
 */
import { Duplex, type DuplexOptions } from 'node:stream';
import type { WebSocket } from './websocket.js';

/** The readyState values of ws (and of our class), fixed by the WebSocket API. */
const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/** Node's internal stream state, read as ws does: public accessors miss `objectMode` and `endEmitted`. */
interface StreamState {
  readonly objectMode: boolean;
  readonly endEmitted: boolean;
}

/** Emits the stream's own 'close' (it is created with `emitClose: false`, see below). */
function emitClose(stream: Duplex): void {
  stream.emit('close');
}

/**
 * Once both sides are done the stream is destroyed: here when the readable side ends after the
 * writable side finished (`_final` covers the other order). Shared by every stream.
 */
function onDuplexEnd(this: Duplex): void {
  if (!this.destroyed && this.writableFinished) this.destroy();
}

/**
 * An 'error' destroys the stream (autoDestroy is off). If the user has no listener of their
 * own, the error is emitted again so that it throws as an unhandled 'error' does.
 */
function onDuplexError(this: Duplex, error: Error): void {
  this.removeListener('error', onDuplexError);
  this.destroy();
  if (this.listenerCount('error') === 0) this.emit('error', error);
}

/**
 * Wraps a WebSocket in a `Duplex` stream (ws's `createWebSocketStream`).
 *
 * `options` go to the `Duplex` constructor (e.g. `allowHalfOpen`, `readableObjectMode`,
 * `encoding`, `highWaterMark`), except `objectMode`, `writableObjectMode`, `autoDestroy` and
 * `emitClose`, which the stream sets itself: chunks written are bytes, and the stream manages
 * its own destruction and 'close'. With `readableObjectMode`, text messages are read as strings
 * and binary ones as the WebSocket delivers them (Buffers by default).
 *
 * Writes made while the WebSocket is CONNECTING are sent once it is open. Destroying the stream
 * terminates the WebSocket, unless the WebSocket's own error is the cause (the WebSocket then
 * closes itself, sending its close frame first).
 */
export function createWebSocketStream(ws: WebSocket, options?: DuplexOptions): Duplex {
  let terminateOnDestroy = true;
  /** The writable side's `_final` callback, waiting for the WebSocket's 'close'. */
  let pendingFinal: ((error?: Error | null) => void) | null = null;

  const duplex = new Duplex({
    ...options,
    autoDestroy: false,
    emitClose: false,
    objectMode: false,
    writableObjectMode: false,
  });
  const readableState = (duplex as unknown as { _readableState: StreamState })._readableState;

  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
    const chunk = !isBinary && readableState.objectMode ? data.toString() : data;
    // Backpressure: stop reading the socket until the consumer asks for more (`_read`).
    if (!duplex.push(chunk)) ws.pause();
  });

  ws.once('error', (error: Error) => {
    if (duplex.destroyed) return;
    // The WebSocket closes itself after its own error (with a close frame when it can);
    // terminating it from `_destroy` could cut that frame off.
    terminateOnDestroy = false;
    duplex.destroy(error);
  });

  ws.once('close', () => {
    if (duplex.destroyed) return;
    // The writable side is finished first when it waited for this close, so that 'finish'
    // comes before 'end' as with ws (whose `_final` waits for the socket's 'finish').
    const final = pendingFinal;
    pendingFinal = null;
    if (final !== null) final();
    duplex.push(null);
  });

  duplex._destroy = (error, callback) => {
    if (ws.readyState === CLOSED) {
      callback(error);
      process.nextTick(emitClose, duplex);
      return;
    }
    let called = false;
    ws.once('error', (wsError: Error) => {
      called = true;
      callback(wsError);
    });
    ws.once('close', () => {
      if (!called) callback(error);
      process.nextTick(emitClose, duplex);
    });
    if (terminateOnDestroy) ws.terminate();
  };

  duplex._final = (callback) => {
    if (ws.readyState === CONNECTING) {
      // If the handshake fails, 'open' never comes: the WebSocket's 'error' destroys the stream.
      ws.once('open', () => duplex._final(callback));
      return;
    }
    if (ws.readyState === CLOSED) {
      callback();
      if (readableState.endEmitted) duplex.destroy();
      return;
    }
    // OPEN or CLOSING: the writable side is done once the closing handshake is. CLOSING with
    // no socket is a failed handshake: its 'error' destroys the stream first.
    pendingFinal = callback;
    if (ws.readyState === OPEN) ws.close();
  };

  duplex._read = () => {
    if (ws.isPaused) ws.resume();
  };

  duplex._write = (chunk: Buffer | string, encoding, callback) => {
    if (ws.readyState === CONNECTING) {
      ws.once('open', () => duplex._write(chunk, encoding, callback));
      return;
    }
    ws.send(chunk, callback);
  };

  duplex.on('end', onDuplexEnd);
  duplex.on('error', onDuplexError);
  return duplex;
}
