/**
 * What both ends of the IPC broker share: the end of a Node IPC channel they talk through, the
 * messages they exchange, and the link that batches them.
 *
 * Node's IPC (`process.send`, a cluster worker's or a child process's `send`) costs one JSON
 * serialisation and one write per call, which dominates the cost of a small message. So neither
 * end sends a message at once: messages are queued and the queue goes out as one envelope per
 * loop pass (`setImmediate`), however many publications, replies and presence events it holds.
 * Within one link the order is kept, which is what gives each node its topics' publications in
 * offset order.
 */
import type { HistorySlice, PresenceEvent, PresenceMember, Publication } from '../broker.js';
import { BrokerError } from './shared.js';

/**
 * One end of a Node IPC channel: `process` in a worker (or any child started with an IPC
 * channel), `worker.process` of a `node:cluster` worker or a `ChildProcess` in the parent.
 */
export interface IpcPort {
  /** Send one message (Node serialises it); the callback reports a closed channel instead of an `'error'` event. */
  send(message: object, sendHandle: undefined, options: undefined, callback: (error: Error | null) => void): boolean;
  /** Whether the channel is still open. */
  readonly connected: boolean;
  /** Subscribe to the channel's messages (`'message'`) or its closing (`'disconnect'`). */
  on(event: 'message', listener: (message: unknown) => void): unknown;
  /** Subscribe to the channel's closing. */
  on(event: 'disconnect', listener: () => void): unknown;
  /** Remove a `'message'` listener (an IPC channel with no listener left no longer keeps its process alive). */
  off(event: 'message', listener: (message: unknown) => void): unknown;
  /** Remove a `'disconnect'` listener. */
  off(event: 'disconnect', listener: () => void): unknown;
}

/** The rejection of an IPC broker's methods (the primary refused, or is gone); the hub answers the client E_UNAVAILABLE. */
export class IpcBrokerError extends BrokerError {
  /** Always `'IpcBrokerError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'IpcBrokerError';
}

/** The key of the envelope object: other messages on the same channel (the application's own) are left alone. */
export const ENVELOPE = 'duplexIpcBroker';

/** A request from a worker's broker (`b`: its id in the worker) to the primary, with an id for its answer. */
export type IpcRequest =
  | readonly [op: 'start', id: number, b: number, nodeId: string]
  | readonly [op: 'sub' | 'unsub' | 'presence', id: number, b: number, topic: string]
  | readonly [op: 'publish', id: number, b: number, topic: string, data: string, size: number, ttl: number, publisher: string | null, key: string | null]
  | readonly [op: 'history', id: number, b: number, topic: string, offset: number, epoch: string | null]
  | readonly [op: 'join' | 'leave', id: number, b: number, topic: string, member: PresenceMember]
  | readonly [op: 'close', id: number, b: number];

/** What the primary sends a worker: an answer (`ok` / `error`), or a delivery to one of its brokers. */
export type IpcReply =
  | readonly [kind: 'ok', id: number, result: Publication | HistorySlice | PresenceMember[] | null]
  | readonly [kind: 'error', id: number, message: string]
  | readonly [kind: 'publication', b: number, publication: Publication]
  | readonly [kind: 'presence', b: number, event: PresenceEvent];

/** The envelope of one batch, as it crosses the channel. */
type Envelope<T> = { readonly [ENVELOPE]: T[] };

function isEnvelope<T>(message: unknown): message is Envelope<T> {
  return typeof message === 'object' && message !== null && Array.isArray((message as Record<string, unknown>)[ENVELOPE]);
}

/**
 * Both directions of one channel: `send` queues, one envelope per loop pass goes out; every
 * envelope that comes in is handed to `receive` as its list of messages.
 */
export class IpcLink<In, Out> {
  #outbox: Out[] = [];
  #scheduled = false;
  #closed = false;
  readonly #onMessage = (message: unknown): void => {
    if (isEnvelope<In>(message)) this.receive(message[ENVELOPE]);
  };
  readonly #onDisconnect = (): void => {
    this.close();
    this.disconnected();
  };
  readonly #flush = (): void => {
    this.#scheduled = false;
    const batch = this.#outbox;
    this.#outbox = [];
    if (this.#closed || batch.length === 0 || !this.port.connected) return;
    // A send that fails means the channel closed: 'disconnect' follows and says so.
    this.port.send({ [ENVELOPE]: batch }, undefined, undefined, () => {});
  };

  constructor(
    /** The channel. */
    readonly port: IpcPort,
    /** Called with the messages of each envelope received, in order. */
    private readonly receive: (messages: readonly In[]) => void,
    /** Called once when the channel closes (the other process exited or disconnected). */
    private readonly disconnected: () => void,
  ) {
    port.on('message', this.#onMessage);
    port.on('disconnect', this.#onDisconnect);
  }

  /** Whether the channel is usable: open, and this link not closed. */
  get open(): boolean {
    return !this.#closed && this.port.connected;
  }

  /** Queue a message; the queue goes out once this loop pass is over. */
  send(message: Out): void {
    if (this.#closed) return;
    this.#outbox.push(message);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** Send what is queued now, then stop listening (the channel itself stays open for its other users). */
  close(): void {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    this.port.off('message', this.#onMessage);
    this.port.off('disconnect', this.#onDisconnect);
  }
}
