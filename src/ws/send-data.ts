/**
 * What `send`, `ping` and `pong` of the ws-compatible WebSocket take (ws 8's data types and send
 * options), and the one conversion of that data to bytes, without copying where ws does not.
 */

/**
 * Called once a send's bytes reached the kernel (no error: undefined or, as Node's write callbacks
 * give it, null), or with the reason they cannot. Typed as @types/ws types it.
 */
export type SendCallback = (error?: Error) => void;

/** Options of `send`. */
export interface SendOptions {
  /** Send as a binary message (default: true unless `data` is a string). */
  binary?: boolean;
  /** Compress when permessage-deflate was negotiated (default true). */
  compress?: boolean;
  /** The last fragment of the message (default true); false: more `send`s follow as continuations. */
  fin?: boolean;
  /** ws's masking switch (accepted; the engine masks exactly when RFC 6455 says: on the client). */
  mask?: boolean;
}

/**
 * Data `send`, `ping` and `pong` take: as ws, strings, bytes, numbers (sent as their text), Blobs,
 * arrays of byte values, and (so that a 'fragments' message can be sent on) arrays of Buffers.
 */
export type SendData = string | number | Buffer | ArrayBuffer | ArrayBufferView | Blob | readonly number[] | readonly Uint8Array[] | null | undefined;

/** Whether `value` is a Blob (sent once its bytes are read, in order with the sends around it). */
export const isBlob = (value: unknown): value is Blob => typeof Blob !== 'undefined' && value instanceof Blob;

/** The bytes of `data` as ws's `toBuffer`: views over ArrayBuffers and typed arrays, no copy. */
export function toBytes(data: Exclude<SendData, Blob | number | null | undefined>): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data) && data.length > 0 && data[0] instanceof Uint8Array) return Buffer.concat(data as readonly Uint8Array[]);
  return Buffer.from(data as readonly number[]);
}
