/**
 * Write batching across connections (uWebSockets corks every socket for a loop pass): while
 * any connection processes its input, or inside `batch()`, sends to other connections are
 * queued and each transport gets one write when the batch ends — a broadcast triggered by a
 * message costs one write per receiver however many messages the read carried. And the write
 * itself: the frames one flush hands over go out as one write, small ones coalesced.
 */
import type { Transport, WriteCallback } from './transport/transport.js';

/** @internal A connection whose writes wait for the end of the current batch. */
export interface DeferredWriter {
  /** Write what was queued during the batch. */
  flushDeferred(): void;
}

/** Nesting depth of batches: reads being processed, `batch()` calls, a corked loop pass. */
let depth = 0;
/** Connections with writes waiting for the outermost batch to end, each once. */
let deferred: DeferredWriter[] = [];
/** Whether `corkLoopPass` holds a batch open until this loop pass's check phase. */
let corked = false;

/** @internal Open a batch (a connection starts processing its input). */
export function beginBatch(): void {
  depth++;
}

/** @internal Close a batch; the outermost one writes what every connection queued meanwhile. */
export function endBatch(): void {
  if (--depth === 0) flushDeferred();
}

/** @internal Whether a batch is open, so that a send should wait for its end (`deferWrite`). */
export function inBatch(): boolean {
  return depth > 0;
}

/** @internal Write `writer`'s queue when the outermost batch ends; the caller queues each writer once. */
export function deferWrite(writer: DeferredWriter): void {
  deferred.push(writer);
}

function flushDeferred(): void {
  // A flush may send (a drain handler, a close frame) and so defer again: loop until quiet.
  while (deferred.length > 0) {
    const list = deferred;
    deferred = [];
    for (const writer of list) writer.flushDeferred();
  }
}

/**
 * Batch every write until the end of this event-loop pass (uWebSockets' cork): sends made from
 * now until the loop's check phase — from broker callbacks, timers, other sockets' reads — are
 * written once per connection then. For fan-out that is driven by something other than a read.
 */
export function corkLoopPass(): void {
  if (corked) return;
  corked = true;
  depth++;
  setImmediate(uncorkLoopPass);
}

function uncorkLoopPass(): void {
  corked = false;
  endBatch();
}

/**
 * Run `fn` with writes batched: every connection sent to inside gets one write at the end.
 * Use it around a loop that sends many messages from a timer or a broker callback.
 */
export function batch<T>(fn: () => T): T {
  depth++;
  try {
    return fn();
  } finally {
    endBatch();
  }
}

/**
 * Small frames of one flush are copied into one buffer and written at once (cheaper than a
 * stream write each); a large payload is never copied for that.
 */
const MAX_COALESCED_CHUNKS = 256;
const MAX_COALESCED_BYTES = 64 * 1024;
const MAX_COALESCED_CHUNK = 2048;

/** Whether every chunk is small and all together fit one coalesced write. */
function isCoalescable(chunks: readonly Uint8Array[]): boolean {
  let n = 0;
  for (const chunk of chunks) {
    if (chunk.length > MAX_COALESCED_CHUNK) return false;
    n += chunk.length;
  }
  return n <= MAX_COALESCED_BYTES;
}

/**
 * @internal Hand `chunks` (at least one) to `transport` as one write: the only chunk as is, many
 * small ones copied into one buffer (a burst of echoes, several broadcasts), else one corked
 * batch (a single writev). `done` goes with the last write.
 */
export function writeChunks(transport: Transport, chunks: readonly Uint8Array[], done: WriteCallback | undefined): void {
  const last = chunks.length - 1;
  if (last === 0) {
    transport.write(chunks[0], done);
  } else if (chunks.length <= MAX_COALESCED_CHUNKS && isCoalescable(chunks)) {
    transport.write(Buffer.concat(chunks), done);
  } else {
    transport.cork();
    for (let i = 0; i < last; i++) transport.write(chunks[i]);
    transport.write(chunks[last], done);
    transport.uncork();
  }
}
