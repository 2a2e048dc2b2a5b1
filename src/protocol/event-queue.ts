/**
 * The event-list style of driving a `Connection` (python-websockets' `events_received()`): a
 * handler that records what the engine reports, for hosts and tests that prefer to read a list
 * after each `receiveData` over callbacks.
 */
import type { ConnectionHandler } from './connection.js';
import type { ProtocolError } from './errors.js';

/** An event, for the event-list style of driving a `Connection`. */
export type ConnectionEvent =
  | {
      /** A complete message (`onMessage`). */
      readonly type: 'message';
      /** The whole message, reassembled and decompressed; text is validated UTF-8. */
      readonly data: Uint8Array;
      /** True for a binary message, false for text. */
      readonly binary: boolean;
    }
  | {
      /** A ping; its pong is already queued (`onPing`). */
      readonly type: 'ping';
      /** The ping's application data, at most 125 bytes. */
      readonly data: Uint8Array;
    }
  | {
      /** A pong (`onPong`). */
      readonly type: 'pong';
      /** The pong's application data, at most 125 bytes. */
      readonly data: Uint8Array;
    }
  | {
      /** A close frame arrived (`onClose`). */
      readonly type: 'close';
      /** The peer's close code; 1005 when its close frame had no payload. */
      readonly code: number;
      /** The peer's close reason ('' if none). */
      readonly reason: string;
    }
  | {
      /** The peer broke the protocol; a close frame is queued (`onProtocolError`). */
      readonly type: 'error';
      /** What the peer did wrong, with the close code sent for it. */
      readonly error: ProtocolError;
    };

/**
 * A handler that records events in order, for the python-websockets style:
 * `conn.receiveData(bytes); for (const e of queue.take()) …`.
 */
export class EventQueue implements ConnectionHandler {
  private events: ConnectionEvent[] = [];
  onMessage(data: Uint8Array, binary: boolean): void {
    this.events.push({ type: 'message', data, binary });
  }
  onPing(data: Uint8Array): void {
    this.events.push({ type: 'ping', data });
  }
  onPong(data: Uint8Array): void {
    this.events.push({ type: 'pong', data });
  }
  onClose(code: number, reason: string): void {
    this.events.push({ type: 'close', code, reason });
  }
  onProtocolError(error: ProtocolError): void {
    this.events.push({ type: 'error', error });
  }
  /** The events received since the last call, oldest first. */
  take(): ConnectionEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }
}
