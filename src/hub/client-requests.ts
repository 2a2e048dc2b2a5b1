/**
 * A hub client's requests: their ids, the answer each one waits for and its timeout, and the
 * queue of those made while disconnected, sent in order once the next connection is ready.
 * Shared by the Node and browser clients through `client-core.ts`; no Node-only API.
 */
import type { Json } from './broker.js';
import { HubClientError } from './client-errors.js';

/** A request waiting for its answer. */
interface Pending {
  readonly id: number;
  readonly text: string;
  readonly resolve: (result: Record<string, unknown>) => void;
  readonly reject: (error: HubClientError) => void;
  /** ms to wait for the answer once sent: the table's timeout, or the request's own (an RPC's). */
  readonly timeout: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  sent: boolean;
}

/** The requests of one client, over all its connections. */
export class RequestTable {
  /** Every request not yet settled, sent or queued, by id. */
  private readonly pending = new Map<number, Pending>();
  /** Requests waiting for the next connection, oldest first. */
  private queue: Pending[] = [];
  private nextId = 1;

  /**
   * @param timeout ms to wait for an answer, counted from when a request is sent.
   * @param maxQueued Requests kept while disconnected; more fail with E_QUEUE_FULL.
   * @param write Hands a request's text to the current connection.
   */
  constructor(
    private readonly timeout: number,
    private readonly maxQueued: number,
    private readonly write: (text: string) => void,
  ) {}

  /** A fresh request id (a subscription needs its id before its request is built). */
  newId(): number {
    return this.nextId++;
  }

  /**
   * Send `body` with a fresh id and resolve with the answer's result. When not `connected` it
   * waits in the queue if `queue` allows (else fails with E_CONNECTION_LOST), up to the limit.
   * `timeout` (ms, counted from when it is sent) replaces the table's for this request.
   */
  request(body: Record<string, Json>, connected: boolean, queue: boolean, timeout: number = this.timeout): Promise<Record<string, unknown>> {
    const id = this.newId();
    const text = JSON.stringify({ ...body, id });
    return new Promise((resolve, reject) => {
      const request: Pending = { id, text, resolve, reject, timeout, timer: undefined, sent: false };
      if (connected) {
        this.pending.set(id, request);
        this.transmit(request);
      } else if (!queue) {
        reject(new HubClientError('E_CONNECTION_LOST', 'not connected'));
      } else if (this.queue.length >= this.maxQueued) {
        reject(new HubClientError('E_QUEUE_FULL', `more than ${this.maxQueued} requests wait for a connection`));
      } else {
        this.pending.set(id, request);
        this.queue.push(request);
      }
    });
  }

  /** Send a request whose id came from `newId()` and text is built, now, with its own callbacks. */
  send(id: number, text: string, resolve: (result: Record<string, unknown>) => void, reject: (error: HubClientError) => void): void {
    const request: Pending = { id, text, resolve, reject, timeout: this.timeout, timer: undefined, sent: false };
    this.pending.set(id, request);
    this.transmit(request);
  }

  /** The connection is ready: send what waited for it, oldest first. */
  flushQueue(): void {
    const queued = this.queue;
    this.queue = [];
    for (const request of queued) this.transmit(request);
  }

  /** A reply to request `id` came: resolve it. False when nothing waits for that id. */
  resolve(id: unknown, result: Record<string, unknown>): boolean {
    const request = typeof id === 'number' ? this.pending.get(id) : undefined;
    if (!request) return false;
    this.settle(request);
    request.resolve(result);
    return true;
  }

  /** An error answer to request `id` came: reject it. False when nothing waits for that id. */
  reject(id: unknown, error: HubClientError): boolean {
    const request = typeof id === 'number' ? this.pending.get(id) : undefined;
    if (!request) return false;
    this.settle(request);
    request.reject(error);
    return true;
  }

  /** The connection dropped: the answers to what was sent will not come; what was not sent stays queued. */
  connectionLost(): void {
    for (const request of [...this.pending.values()]) {
      if (!request.sent) continue;
      this.settle(request);
      request.reject(new HubClientError('E_CONNECTION_LOST', 'the connection dropped before the server answered'));
    }
  }

  /** The client stopped: reject everything, sent or queued, with `error`. */
  rejectAll(error: HubClientError): void {
    for (const request of [...this.pending.values()]) {
      this.settle(request);
      request.reject(error);
    }
    this.queue = [];
  }

  private transmit(request: Pending): void {
    request.sent = true;
    const timeout = request.timeout;
    request.timer = setTimeout(() => {
      this.settle(request);
      request.reject(new HubClientError('E_TIMEOUT', `no answer within ${timeout} ms`));
    }, timeout);
    this.write(request.text);
  }

  private settle(request: Pending): void {
    if (request.timer) clearTimeout(request.timer);
    this.pending.delete(request.id);
  }
}
