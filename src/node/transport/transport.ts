/**
 * The seam between a `WebSocket` and the byte stream under it. A `WebSocket` drives its
 * transport only through `Transport`, and hears from it only through `TransportSink`; a
 * transport kind comes with a function that wires its events to the sink (`AttachTransport`).
 * A `net.Socket` (and `tls.TLSSocket`) is the first kind (`./net.ts`); a native transport or an
 * HTTP/2 stream (RFC 8441) plugs in here without the WebSocket changing.
 *
 * `Transport` is the subset of a Node stream's calls that a WebSocket makes, so a socket is one
 * as it is: no wrapper object per connection and no extra call per write. Events go to the
 * sink's methods, as the engine reports to its handler object: nothing allocated per event.
 */

/** @internal Called when a write has been handed to the kernel, or has failed. */
export type WriteCallback = (error?: Error | null) => void;

/** @internal The byte stream under one `WebSocket`: what the WebSocket calls. */
export interface Transport {
  /** Bytes handed to the transport but not yet to the kernel (`ws.bufferedAmount`). */
  readonly writableLength: number;
  /** Whether writes are still taken (false once ended, destroyed or failed). */
  readonly writable: boolean;
  /** The peer's address, if known. */
  readonly remoteAddress?: string | undefined;
  /** Queue `chunk` for writing; `callback` runs once it reached the kernel, or failed. */
  write(chunk: Uint8Array, callback?: WriteCallback): void;
  /** Hold the writes that follow until `uncork()`, to hand them over at once (one writev). */
  cork(): void;
  /** Hand over what was written since `cork()`. */
  uncork(): void;
  /** Stop delivering data (the peer's writes back up: TCP flow control). */
  pause(): void;
  /** Deliver data again after `pause()`. */
  resume(): void;
  /** Close our side once what was written is flushed. */
  end(): void;
  /** Close at once, dropping anything unwritten. */
  destroy(): void;
}

/**
 * @internal What a transport reports to (the `WebSocket`). Each method is called synchronously
 * by the transport and must not throw.
 */
export interface TransportSink {
  /** Bytes arrived; the sink owns `chunk` from now on (the engine unmasks it in place). */
  onTransportData(chunk: Uint8Array): void;
  /** The transport's send buffer has emptied after a write could not be taken at once. */
  onTransportDrain(): void;
  /** The peer closed its side (end of file); our side is being closed too. */
  onTransportEnd(): void;
  /** The transport failed; it is destroyed right after and `onTransportClose` follows. */
  onTransportError(error: Error): void;
  /** The transport is closed both ways; nothing more will come. May follow `onTransportEnd`. */
  onTransportClose(): void;
}

/**
 * @internal Wire `transport`'s events to `sink`, once, when the WebSocket is created (and set up
 * whatever the transport kind needs for a WebSocket, e.g. no Nagle delay).
 */
export type AttachTransport = (transport: Transport, sink: TransportSink) => void;
