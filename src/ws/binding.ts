/**
 * The seam between the ws-compatible `WebSocket` (`./websocket.ts`) and the two handshakes
 * that produce an open connection: the server's `handleUpgrade` (`./server.ts`) and the
 * client's (`./client.ts`). A handshake ends by handing the upgraded socket and what was
 * negotiated to the WebSocket; the client handshake also reports its progress to it.
 */
import type { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import type { MessageCodec } from '../protocol/extension.js';

/** What a successful opening handshake hands to the WebSocket with the socket. */
export interface SocketBinding {
  /** Which end this is (a server unmasks, a client masks). */
  readonly side: 'server' | 'client';
  /** The negotiated subprotocol ('' if none), for `ws.protocol`. */
  readonly protocol: string;
  /** The names of the negotiated extensions, comma-separated, for `ws.extensions` (ws: `'permessage-deflate'` or ''). */
  readonly extensions: string;
  /** The permessage-deflate codec the handshake agreed on, if any. */
  readonly codec: MessageCodec | undefined;
  /** ws's `maxPayload`: the largest message accepted, in bytes (more: 1009). */
  readonly maxPayload: number;
  /** ws's `skipUTF8Validation`. */
  readonly skipUTF8Validation: boolean;
  /** ws's `allowSynchronousEvents`. */
  readonly allowSynchronousEvents: boolean;
  /** ws's `autoPong`. */
  readonly autoPong: boolean;
  /** ws's `generateMask` (a client's masking keys; default: random ones). */
  readonly generateMask?: ((mask: Buffer) => void) | undefined;
  /** ws's `maxBufferedChunks`: the most chunks a frame's payload may arrive in (0 or absent: no limit; more: 1008). */
  readonly maxBufferedChunks?: number | undefined;
  /** ws's `maxFragments`: the most frames a message may have (0 or absent: no limit; more: 1008). */
  readonly maxFragments?: number | undefined;
}

/**
 * The third argument of `setSocket` as ws itself passes it (and as code written for ws's internals
 * does, e.g. @fastify/websocket's `injectWS`): no `side` (ws reads `websocket._isServer`), no
 * negotiation results (ws reads them from the WebSocket), ws's receiver defaults for the rest.
 */
export interface WsSocketOptions {
  /** Default true. */
  readonly allowSynchronousEvents?: boolean;
  /** Default: random masking keys. */
  readonly generateMask?: (mask: Buffer) => void;
  /** Default 0: no limit. */
  readonly maxBufferedChunks?: number;
  /** Default 0: no limit. */
  readonly maxFragments?: number;
  /** Bytes; default 0: no limit. */
  readonly maxPayload?: number;
  /** Default false. */
  readonly skipUTF8Validation?: boolean;
}

/** The WebSocket's side of the client handshake, called by `./client.ts`. */
export interface ClientHandshakeSink {
  /** The address as `ws.url` shows it (set again on each redirect). */
  setUrl(url: string): void;
  /** The request in flight, or null once answered: `close()`/`terminate()` while CONNECTING abort it. */
  setRequest(req: ClientRequest | null): void;
  /** The handshake succeeded: the connection is OPEN and `open` is emitted. */
  setSocket(socket: Socket, head: Buffer, binding: SocketBinding): void;
  /**
   * The handshake failed (or was aborted): readyState becomes CLOSING now, then, on the next
   * tick, CLOSED with `error` (this error) and `close` (1006, an empty reason) emitted, as ws does.
   */
  failHandshake(error: Error): void;
}
