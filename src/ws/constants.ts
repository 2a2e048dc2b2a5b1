/**
 * The constants of the ws-compatible module: ready states, binary types and ws's defaults, each
 * with its unit and the reason it is what it is (ws 8's values, so code written for ws sees the same).
 */

/** The four ready states, by name, as the WebSocket API numbers them. */
export const READY_STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'] as const;

/** readyState 0: the opening handshake is in progress. */
export const CONNECTING = 0;
/** readyState 1: messages flow both ways. */
export const OPEN = 1;
/** readyState 2: the closing handshake started (or the socket is going). */
export const CLOSING = 2;
/** readyState 3: the socket is closed and `'close'` was emitted. */
export const CLOSED = 3;

/** A ready state value. */
export type ReadyState = typeof CONNECTING | typeof OPEN | typeof CLOSING | typeof CLOSED;

/**
 * What `binaryType` may be: a Buffer (ws's default, for historical reasons), an ArrayBuffer, an
 * array of Buffers ('fragments'), or a Blob where the runtime has one (Node 18+), as ws 8.18.
 */
export const BINARY_TYPES: readonly string[] = typeof Blob === 'undefined'
  ? ['nodebuffer', 'arraybuffer', 'fragments']
  : ['nodebuffer', 'arraybuffer', 'fragments', 'blob'];

/** How binary messages are delivered: see {@link BINARY_TYPES}. */
export type BinaryType = 'nodebuffer' | 'arraybuffer' | 'fragments' | 'blob';

/** ms: ws waits 30 s for the closing handshake before destroying the socket (ws's `closeTimeout`). */
export const CLOSE_TIMEOUT = 30_000;

/** Bytes: ws's `maxPayload`, 100 MiB (more: close 1009). */
export const MAX_PAYLOAD = 100 * 1024 * 1024;

/** ws 8.23's `maxBufferedChunks`: a frame may arrive in 256 Ki chunks (more: close 1008), bounding the pieces held for a trickled frame. */
export const MAX_BUFFERED_CHUNKS = 256 * 1024;

/** ws 8.23's `maxFragments`: a message may have 16 Ki frames (more: close 1008), bounding the pieces held for it. */
export const MAX_FRAGMENTS = 16 * 1024;

/** ws 8.23's `maxPendingAutoPongs`: 60 unwritten automatic pongs, then the next ping terminates the connection. */
export const MAX_PENDING_AUTO_PONGS = 60;

/** The empty Buffer of an empty close reason or an empty ping (shared: never written to). */
export const EMPTY_BUFFER = Buffer.alloc(0);

/** Marks the listener an `on<event>` property added, so setting the property replaces only it. */
export const kForOnEventAttribute = Symbol('duplex.ws.forOnEventAttribute');
/** The user's listener behind a wrapper added by `addEventListener`. */
export const kListener = Symbol('duplex.ws.listener');
