/**
 * The ws-compatible WebSocket's side of its inner socket (the Node binding's `WebSocket`): the
 * settings that make the inner one behave as ws (shared objects, one per combination of options),
 * the one handlers object of every inner socket (it finds the ws-compatible object as `inner.data`
 * and hands it the event), and ws's `generateMask` as the engine's masking-key source.
 */
import type { WebSocketHandlers } from '../node/handlers.js';
import type { ConnectionSettings, EngineSettings } from '../node/settings.js';
import type { MaskingKeySource } from '../protocol/connection.js';
import { ProtocolError } from '../protocol/errors.js';
import type { WebSocket } from './websocket.js';

/** Kinds of events that may be deferred (`allowSynchronousEvents: false`). */
export const MESSAGE = 0;
export const PING = 1;
export const PONG = 2;
export const ERROR = 3;

/** What the inner socket's settings are made of (the options of `setSocket`, resolved). */
export interface Limits {
  maxPayload: number;
  skipUTF8Validation: boolean;
  /** The engine answers pings itself (ws's autoPong without a maxPendingAutoPongs limit). */
  enginePongs: boolean;
  maxFragments: number;
  maxBufferedChunks: number;
}

/** The settings objects of the inner sockets, one per combination of options (shared: resolved once). */
const settingsCache = new Map<string, ConnectionSettings & EngineSettings>();

/** The inner socket's settings for these options, one shared object per combination. */
export function settingsFor(limits: Limits, closeTimeout: number): ConnectionSettings & EngineSettings {
  const key = `${limits.maxPayload}/${limits.skipUTF8Validation}/${limits.enginePongs}/${closeTimeout}/${limits.maxFragments}/${limits.maxBufferedChunks}`;
  let settings = settingsCache.get(key);
  if (settings === undefined) {
    settings = {
      // ws's maxPayload 0 means no limit.
      maxMessageSize: limits.maxPayload > 0 ? limits.maxPayload : Infinity,
      // ws delivers text as Buffers too.
      textAsBuffer: true,
      closeTimeout,
      // ws has no keepalive, no idle timeout, no slow-consumer ceiling, no drain events.
      pingInterval: 0,
      pingTimeout: 0,
      idleTimeout: 0,
      highWaterMark: Infinity,
      maxBufferedAmount: Infinity,
      autoPong: limits.enginePongs,
      skipUtf8Validation: limits.skipUTF8Validation,
      rethrowHandlerErrors: true,
      // ws's `| 0`: 0 (or anything not a number) means no limit.
      maxFragments: limits.maxFragments,
      maxFrameChunks: limits.maxBufferedChunks,
      // ws closes a failed connection with the status code alone.
      failureReasons: false,
    };
    settingsCache.set(key, settings);
  }
  return settings;
}

/** The callbacks of every inner socket: each finds its ws-compatible WebSocket as `inner.data`. */
export const HANDLERS: WebSocketHandlers<WebSocket> = {
  message(inner, data, isBinary) {
    inner.data.receive(MESSAGE, data as Buffer, isBinary);
  },
  ping(inner, data) {
    inner.data.receive(PING, data, false);
  },
  pong(inner, data) {
    inner.data.receive(PONG, data, false);
  },
  error(inner, error) {
    // Only the peer's protocol violations: ws does not re-emit socket errors.
    if (error instanceof ProtocolError) inner.data.receive(ERROR, error, false);
  },
};

/** ws's `generateMask` as the engine's masking-key source: one 4-byte Buffer per connection, filled for each frame. */
export class GeneratedMaskingKeys implements MaskingKeySource {
  private readonly key = Buffer.alloc(4);
  constructor(private readonly generate: (mask: Buffer) => void) {}
  next(): Uint8Array {
    this.generate(this.key);
    return this.key;
  }
}
