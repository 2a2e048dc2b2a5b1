/**
 * The IPC broker: hub nodes in the worker processes of one machine (`node:cluster`, or children
 * started with `fork()`) share topics, history and presence through their primary process, with
 * no external service. It is what `duplex serve --workers N` uses when no broker is configured.
 *
 * - **Worker side**, {@link IpcBroker}: implements `Broker` by sending each call to the primary
 *   over the worker's IPC channel (`process.send`) and resolving with the answer; the primary
 *   pushes back the publications and presence events of the topics it subscribed to.
 * - **Primary side**, {@link IpcBrokerPrimary}: one in-memory state for every worker — a
 *   `MemoryBroker` per worker's broker, all derived from one with `forNode()`, so offsets,
 *   epochs, history, presence and idempotency keys are exactly the in-memory broker's, and the
 *   broker contract is the same. It does nothing but serve its workers.
 *
 * The primary knows at once when a worker dies: its IPC channel closes. Then the worker's
 * brokers are closed as if it had called `close()`, so its connections' leaves are announced to
 * the other workers immediately — no liveness timeout, unlike Redis and NATS. Messages cross
 * the channel in batches, one per loop pass each way (`ipc-link.ts`).
 *
 * What it cannot do: span machines, or outlive the primary (if the primary dies the workers go
 * too, as `node:cluster` workers do). For several machines use Redis or NATS.
 */
import type { Broker, BrokerNode, HistoryOptions, HistorySlice, PresenceEvent, PresenceMember, Publication } from '../broker.js';
import { MemoryBroker } from './memory.js';
import { IpcBrokerError, IpcLink, type IpcPort, type IpcReply, type IpcRequest } from './ipc-link.js';
import { ConnectionState, assertStartable, assertStarted, throwLater, type IdempotencyOptions } from './shared.js';

export { IpcBrokerError, type IpcPort };

/** ms a worker's broker waits for the primary's answer to `start()`: a primary without an `IpcBrokerPrimary` never answers. */
const START_TIMEOUT = 5000;

/** What a worker's channel delivers to one of its brokers. */
interface BrokerSink {
  publication(publication: Publication): void;
  presence(event: PresenceEvent): void;
  /** The channel to the primary closed. */
  lost(): void;
}

/** The channel to the primary, shared by every `IpcBroker` of this process on the same port. */
class PrimaryChannel {
  static readonly #byPort = new WeakMap<IpcPort, PrimaryChannel>();

  /** The open channel on `port`, made on first use. */
  static of(port: IpcPort): PrimaryChannel {
    let channel = PrimaryChannel.#byPort.get(port);
    if (channel === undefined) {
      channel = new PrimaryChannel(port);
      PrimaryChannel.#byPort.set(port, channel);
    }
    return channel;
  }

  readonly #port: IpcPort;
  readonly #link: IpcLink<IpcReply, IpcRequest>;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  readonly #brokers = new Map<number, BrokerSink>();
  #nextRequest = 1;
  #nextBroker = 1;
  #gone = false;

  private constructor(port: IpcPort) {
    this.#port = port;
    this.#link = new IpcLink(port, (messages) => this.#receive(messages), () => this.#lost());
  }

  /** Register a broker; its id names it in requests and deliveries. */
  add(sink: BrokerSink): number {
    const id = this.#nextBroker++;
    this.#brokers.set(id, sink);
    return id;
  }

  /** Forget a broker; with none left the channel stops listening, so it no longer keeps the process alive. */
  remove(id: number): void {
    this.#brokers.delete(id);
    if (this.#brokers.size > 0 || this.#pending.size > 0) return;
    this.#link.close();
    PrimaryChannel.#byPort.delete(this.#port);
  }

  /**
   * Send the request `make(id)` builds and resolve with the primary's answer; with `timeout`,
   * reject with its message when no answer came within its ms.
   */
  request<T>(make: (id: number) => IpcRequest, timeout?: { readonly ms: number; readonly message: string }): Promise<T> {
    if (this.#gone || !this.#link.open) return Promise.reject(new IpcBrokerError('ipc broker: the channel to the primary process is closed'));
    const id = this.#nextRequest++;
    return new Promise<T>((resolve, reject) => {
      if (timeout === undefined) {
        this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      } else {
        const timer = setTimeout(() => {
          this.#pending.delete(id);
          reject(new IpcBrokerError(timeout.message));
        }, timeout.ms);
        this.#pending.set(id, {
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value as T);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
      }
      this.#link.send(make(id));
    });
  }

  #receive(messages: readonly IpcReply[]): void {
    for (const message of messages) {
      switch (message[0]) {
        case 'ok':
        case 'error': {
          const waiting = this.#pending.get(message[1]);
          if (waiting === undefined) break;
          this.#pending.delete(message[1]);
          if (message[0] === 'ok') waiting.resolve(message[2]);
          else waiting.reject(new IpcBrokerError(`ipc broker: ${message[2]}`));
          break;
        }
        case 'publication':
          this.#brokers.get(message[1])?.publication(message[2]);
          break;
        case 'presence':
          this.#brokers.get(message[1])?.presence(message[2]);
          break;
      }
    }
  }

  #lost(): void {
    this.#gone = true;
    PrimaryChannel.#byPort.delete(this.#port);
    const error = new IpcBrokerError('ipc broker: the primary process is gone (its IPC channel closed)');
    for (const waiting of this.#pending.values()) waiting.reject(error);
    this.#pending.clear();
    for (const sink of this.#brokers.values()) sink.lost();
  }
}

/** Options of {@link IpcBroker}. */
export interface IpcBrokerOptions {
  /**
   * The channel to the primary. Default: `process`, the channel a `node:cluster` worker or a
   * child started with `fork()` has to its parent.
   */
  readonly port?: IpcPort;
}

/**
 * The worker side of the IPC broker: a {@link Broker} whose state lives in the primary process
 * ({@link IpcBrokerPrimary}, which `runWorkers` runs). One per hub node; several in one process
 * share its channel.
 *
 * ```ts
 * const hub = new Hub({ broker: new IpcBroker(), anonymous: true }); // in a worker of runWorkers
 * ```
 */
export class IpcBroker implements Broker {
  readonly name = 'ipc';
  readonly #port: IpcPort | undefined;
  readonly #state = new ConnectionState();
  readonly #topics = new Set<string>();
  #channel: PrimaryChannel | undefined;
  #id = 0;
  #node: BrokerNode | undefined;
  #closed = false;

  /** A broker for one hub node of this worker; nothing is sent before `start()`. */
  constructor(options: IpcBrokerOptions = {}) {
    this.#port = options.port ?? (process.send !== undefined ? (process as unknown as IpcPort) : undefined);
  }

  async start(node: BrokerNode): Promise<void> {
    assertStartable(this.name, this.#node !== undefined, this.#closed);
    const port = this.#port;
    if (port === undefined || !port.connected) {
      throw new IpcBrokerError('ipc broker: this process has no IPC channel to a primary; run it as a worker of runWorkers (node:cluster) or a child started with fork(), or pass { port }');
    }
    const channel = PrimaryChannel.of(port);
    const id = channel.add({
      publication: (publication) => this.#deliver(publication.topic, () => node.onPublication(publication)),
      presence: (event) => this.#deliver(event.topic, () => node.onPresence(event)),
      lost: () => this.#state.set('disconnected', node),
    });
    this.#node = node;
    this.#channel = channel;
    this.#id = id;
    const timeout = {
      ms: START_TIMEOUT,
      message: `ipc broker: the primary process did not answer within ${START_TIMEOUT} ms; does it run an IpcBrokerPrimary (runWorkers does)?`,
    };
    try {
      await channel.request<null>((r) => ['start', r, id, node.id], timeout);
    } catch (error) {
      channel.remove(id);
      this.#node = undefined;
      this.#channel = undefined;
      throw error;
    }
    this.#state.set('connected', node);
  }

  async subscribe(topic: string): Promise<void> {
    const channel = this.#started();
    this.#topics.add(topic);
    await channel.request((r) => ['sub', r, this.#id, topic]);
  }

  async unsubscribe(topic: string): Promise<void> {
    // Local first: nothing more is delivered for the topic, even what is already on its way.
    this.#topics.delete(topic);
    if (this.#channel === undefined || this.#closed) return;
    await this.#channel.request((r) => ['unsub', r, this.#id, topic]);
  }

  async publish(topic: string, data: string, history: HistoryOptions, publisher?: string, idempotencyKey?: string): Promise<Publication> {
    const channel = this.#started();
    return channel.request((r) => ['publish', r, this.#id, topic, data, history.size, history.ttl, publisher ?? null, idempotencyKey ?? null]);
  }

  async history(topic: string, offset: number, epoch: string | undefined): Promise<HistorySlice> {
    const channel = this.#started();
    return channel.request((r) => ['history', r, this.#id, topic, offset, epoch ?? null]);
  }

  async join(topic: string, member: PresenceMember): Promise<void> {
    const channel = this.#started();
    await channel.request((r) => ['join', r, this.#id, topic, member]);
  }

  async leave(topic: string, member: PresenceMember): Promise<void> {
    const channel = this.#started();
    await channel.request((r) => ['leave', r, this.#id, topic, member]);
  }

  async presence(topic: string): Promise<PresenceMember[]> {
    const channel = this.#started();
    return channel.request((r) => ['presence', r, this.#id, topic]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const node = this.#node;
    const channel = this.#channel;
    this.#topics.clear();
    if (node === undefined || channel === undefined) return;
    try {
      // The primary removes this node's presence and announces the leaves to the other workers.
      await channel.request((r) => ['close', r, this.#id]);
    } catch {
      // The primary is gone: there is nobody left to tell.
    }
    channel.remove(this.#id);
    this.#state.set('disconnected', node);
  }

  #deliver(topic: string, call: () => void): void {
    if (this.#closed || !this.#topics.has(topic)) return;
    try {
      call();
    } catch (error) {
      // A throwing hub callback must not stop delivery to the rest.
      throwLater(error);
    }
  }

  #started(): PrimaryChannel {
    assertStarted(this.name, this.#node !== undefined, this.#closed);
    return this.#channel!;
  }
}

/** Options of {@link IpcBrokerPrimary}. */
export interface IpcBrokerPrimaryOptions extends IdempotencyOptions {
  /**
   * How long an idempotency key of a publish is remembered (ms), for every worker: a second
   * publish with the same key to the same topic within it, from any worker, resolves with the
   * first one's publication. Default 120 000 (`DEFAULTS.broker.idempotencyWindow`).
   */
  readonly idempotencyWindow?: number;
}

/** One worker's end, in the primary: its brokers by id, each a `MemoryBroker` of the shared state. */
class WorkerEnd {
  readonly #link: IpcLink<IpcRequest, IpcReply>;
  readonly #root: MemoryBroker;
  readonly #brokers = new Map<number, MemoryBroker>();
  #detached: Promise<number> | undefined;

  constructor(port: IpcPort, root: MemoryBroker, onGone: () => void) {
    this.#root = root;
    this.#link = new IpcLink(port, (requests) => {
      for (const request of requests) this.#handle(request);
    }, () => {
      void this.detach();
      onGone();
    });
  }

  /** Close this worker's brokers (announcing its members' leaves); resolves with how many it had. Idempotent. */
  detach(): Promise<number> {
    this.#detached ??= (async () => {
      this.#link.close();
      const brokers = [...this.#brokers.values()];
      this.#brokers.clear();
      await Promise.all(brokers.map((broker) => broker.close()));
      return brokers.length;
    })();
    return this.#detached;
  }

  #handle(request: IpcRequest): void {
    const id = request[1];
    const b = request[2];
    if (request[0] === 'start') {
      if (this.#brokers.has(b)) return this.#fail(id, `broker ${b} of this worker is already started`);
      const broker = this.#root.forNode();
      this.#brokers.set(b, broker);
      const node: BrokerNode = {
        id: request[3],
        onPublication: (publication) => this.#link.send(['publication', b, publication]),
        onPresence: (event) => this.#link.send(['presence', b, event]),
        // The in-memory state loses nothing: never called.
        onReconnect: () => {},
      };
      this.#answer(id, broker.start(node).then(() => null));
      return;
    }
    const broker = this.#brokers.get(b);
    if (broker === undefined) return this.#fail(id, `broker ${b} of this worker is not started`);
    switch (request[0]) {
      case 'sub':
        return this.#answer(id, broker.subscribe(request[3]).then(() => null));
      case 'unsub':
        return this.#answer(id, broker.unsubscribe(request[3]).then(() => null));
      case 'publish': {
        const [, , , topic, data, size, ttl, publisher, key] = request;
        return this.#answer(id, broker.publish(topic, data, { size, ttl }, publisher ?? undefined, key ?? undefined));
      }
      case 'history':
        return this.#answer(id, broker.history(request[3], request[4], request[5] ?? undefined));
      case 'join':
        return this.#answer(id, broker.join(request[3], request[4]).then(() => null));
      case 'leave':
        return this.#answer(id, broker.leave(request[3], request[4]).then(() => null));
      case 'presence':
        return this.#answer(id, broker.presence(request[3]));
      case 'close':
        this.#brokers.delete(b);
        return this.#answer(id, broker.close().then(() => null));
    }
  }

  #answer(id: number, result: Promise<Publication | HistorySlice | PresenceMember[] | null>): void {
    result.then(
      (value) => this.#link.send(['ok', id, value]),
      (error: unknown) => this.#fail(id, error instanceof Error ? error.message : String(error)),
    );
  }

  #fail(id: number, message: string): void {
    this.#link.send(['error', id, message]);
  }
}

/**
 * The primary side of the IPC broker: serves the {@link IpcBroker}s of the workers attached to
 * it from one in-memory state (the in-memory broker's behaviour, in the primary).
 *
 * ```ts
 * const primary = new IpcBrokerPrimary();
 * const worker = cluster.fork();
 * const detach = primary.attach(worker.process); // also detached by itself when the worker exits
 * ```
 *
 * `runWorkers` does this for every worker it starts.
 */
export class IpcBrokerPrimary {
  readonly #root: MemoryBroker;
  readonly #workers = new Set<WorkerEnd>();

  /** @throws RangeError when `idempotencyWindow` is not a positive number. */
  constructor(options: IpcBrokerPrimaryOptions = {}) {
    this.#root = new MemoryBroker(options.idempotencyWindow !== undefined ? { idempotencyWindow: options.idempotencyWindow } : {});
  }

  /**
   * Serve the worker at the other end of `port`. Returns its detach: close the worker's brokers
   * (its members' leaves are announced to the other workers) and stop listening; it resolves
   * with the number of brokers the worker had (0: it did not use the IPC broker). The same
   * happens by itself when the channel closes (the worker exited or was killed); calling detach
   * after that resolves with the same number.
   */
  attach(port: IpcPort): () => Promise<number> {
    const end = new WorkerEnd(port, this.#root, () => this.#workers.delete(end));
    this.#workers.add(end);
    return () => {
      this.#workers.delete(end);
      return end.detach();
    };
  }

  /** The workers attached now. */
  get workers(): number {
    return this.#workers.size;
  }

  /** How many idempotency keys the shared state remembers now. */
  get idempotencyKeys(): number {
    return this.#root.idempotencyKeys;
  }

  /** Detach every worker. */
  async close(): Promise<void> {
    const ends = [...this.#workers];
    this.#workers.clear();
    await Promise.all(ends.map((end) => end.detach()));
  }
}
