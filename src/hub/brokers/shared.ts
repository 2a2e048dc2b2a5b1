/**
 * What every broker shares, so that a new broker is one file of what is specific to it (its
 * client, its storage layout, its delivery): epochs, history slices, the broker errors and their
 * state checks, connection-state reporting, and the presence liveness loop that Redis and NATS
 * both run (refresh this node's liveness, put its members back after others declared it dead,
 * sweep dead nodes).
 */
import { randomBytes } from 'node:crypto';

import { DEFAULTS } from '../../protocol/defaults.js';
import type { BrokerNode, BrokerState, HistorySlice, PresenceMember, Publication } from '../broker.js';
import { DuplexError } from '../../protocol/errors.js';

/** The defaults of the networked brokers (Redis, NATS): `DEFAULTS.broker`, where each one's unit and reason are. */
export const BROKER_DEFAULTS = DEFAULTS.broker;

/** The option every broker takes for its publish idempotency keys (`Broker.publish`). */
export interface IdempotencyOptions {
  /**
   * How long an idempotency key of a publish is remembered (ms): a second publish with the same
   * key to the same topic within it resolves with the first one's publication and publishes
   * nothing. Default 120 000 (`DEFAULTS.broker.idempotencyWindow`). Nodes of one cluster should
   * agree on it: the Redis keys and NATS records are written with the publishing node's window.
   */
  readonly idempotencyWindow?: number;
}

/**
 * The idempotency window of a broker's options, in whole ms.
 * @throws RangeError when it is not a positive number.
 */
export function idempotencyWindowOf(broker: string, options: IdempotencyOptions): number {
  const window = options.idempotencyWindow ?? BROKER_DEFAULTS.idempotencyWindow;
  // Redis' PX and JetStream's duplicate window both need a positive whole number of ms.
  if (!(window >= 1) || !Number.isFinite(window)) throw new RangeError(`${broker} broker: idempotencyWindow must be a positive number of ms`);
  return Math.floor(window);
}

/** A new random epoch: 8 bytes, hex (like Centrifugo's short random epochs). */
export function newEpoch(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Answer a history query from retained publications (shared by every broker so they agree on
 * what `complete` means). With a different epoch the offset is meaningless: every retained
 * publication is returned and `complete` is false.
 */
export function historySlice(
  epoch: string,
  latest: number,
  retained: readonly Publication[],
  offset: number,
  wantedEpoch: string | undefined,
): HistorySlice {
  const sameEpoch = wantedEpoch === undefined || wantedEpoch === epoch;
  if (!sameEpoch) return { publications: [...retained], epoch, offset: latest, complete: false };
  const publications = retained.filter((p) => p.offset > offset);
  // Complete when nothing after `offset` is missing: either nothing was published since, or
  // the oldest publication returned is exactly the next one. An offset beyond the latest one
  // cannot happen within one epoch, so it is reported as a gap rather than trusted.
  const complete =
    offset === latest || (offset < latest && publications.length > 0 && publications[0]!.offset === offset + 1);
  return { publications, epoch, offset: latest, complete };
}

/** Thrown when a broker is used before `start` or after `close`. */
export class BrokerStateError extends DuplexError {
  override readonly name = 'BrokerStateError';
  declare readonly code: 'ERR_BROKER_STATE';
  constructor(
    message: string,
    /** The broker's name ('memory', 'redis', 'nats'). */
    readonly broker: string,
  ) {
    super('ERR_BROKER_STATE', message);
  }
}

/** Throws `BrokerStateError` unless the broker may start now (`hint` says what to do instead). */
export function assertStartable(broker: string, started: boolean, closed: boolean, hint = ''): void {
  if (closed) throw new BrokerStateError(`${broker} broker: start() after close()`, broker);
  if (started) throw new BrokerStateError(`${broker} broker: already started${hint}`, broker);
}

/** Throws `BrokerStateError` unless the broker was started and is not closed. */
export function assertStarted(broker: string, started: boolean, closed: boolean): void {
  if (!started) throw new BrokerStateError(`${broker} broker: call start(node) first`, broker);
  if (closed) throw new BrokerStateError(`${broker} broker: closed`, broker);
}

/**
 * The common shape of the networked brokers' errors (`RedisBrokerError`, `NatsBrokerError`): a
 * message for people and the client library's error as `cause`. Each broker names its own
 * subclass, so a log or a `catch` tells which backend failed. Its code is `ERR_BROKER`.
 */
export class BrokerError extends DuplexError {
  /** Each broker's subclass names itself (`'RedisBrokerError'`, `'NatsBrokerError'`). */
  override readonly name: string = 'BrokerError';
  /** Always `'ERR_BROKER'`: the hub answers the client E_UNAVAILABLE. */
  declare readonly code: 'ERR_BROKER';
  /**
   * The rejection of the broker's methods; the hub logs it and answers the client E_UNAVAILABLE.
   * @param options `cause`: the client library's error behind it, if there was one.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_BROKER', message, options);
  }
}

/**
 * Report a hub callback's throw as an uncaught exception, outside the broker's delivery: one
 * throwing callback must not stop delivery to the rest, nor kill a connection's parser.
 */
export function throwLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

/** A broker's connection state, told to its node on each change (not on repeats). */
export class ConnectionState {
  #state: BrokerState = 'disconnected';

  /** Record `state`; tell `node` if it changed. */
  set(state: BrokerState, node: BrokerNode | undefined): void {
    if (state === this.#state) return;
    this.#state = state;
    node?.onState?.(state);
  }
}

/** This node's presence members, per topic: removed on close, announced again after a stall. */
export class NodeMembers {
  readonly #byTopic = new Map<string, Map<string, PresenceMember>>();

  /** Remember a member of `topic`. */
  add(topic: string, member: PresenceMember): void {
    let members = this.#byTopic.get(topic);
    if (members === undefined) {
      members = new Map();
      this.#byTopic.set(topic, members);
    }
    members.set(member.connId, member);
  }

  /**
   * Forget a member. Returns the members of `topic` this node has left (the live set: a join
   * made meanwhile shows in it), undefined if it had none; the caller `drop`s an empty one.
   */
  remove(topic: string, connId: string): ReadonlyMap<string, PresenceMember> | undefined {
    const members = this.#byTopic.get(topic);
    members?.delete(connId);
    return members;
  }

  /** Forget `topic` (once it has no members of this node left). */
  drop(topic: string): void {
    this.#byTopic.delete(topic);
  }

  /** Every member with its topic (live: members added while iterating are visited too). */
  *entries(): IterableIterator<[string, PresenceMember]> {
    for (const [topic, members] of this.#byTopic) {
      for (const member of members.values()) yield [topic, member];
    }
  }

  /** Forget every member. */
  clear(): void {
    this.#byTopic.clear();
  }
}

/** Options of the presence liveness loop (the brokers' `presenceTtl` and `presenceRefresh`). */
export interface LivenessOptions {
  /** A node is dead once it has not refreshed its liveness for this long (ms). Default 10 000. */
  readonly presenceTtl?: number;
  /** How often a node refreshes its liveness and sweeps dead nodes (ms). Default 3 000. */
  readonly presenceRefresh?: number;
}

/** What a broker does for the liveness loop, in its own storage. */
export interface LivenessStore {
  /** Whether the broker's connection can run commands now; a tick (or the leave on close) is skipped otherwise. */
  reachable(): boolean;
  /**
   * Push this node's liveness deadline forward. True when the node was absent: others declared
   * it dead while it stalled (and removed its members), or it was never there.
   */
  refresh(): Promise<boolean>;
  /** Announce a member of this node again (others removed it while this node stalled). */
  rejoin(topic: string, member: PresenceMember): Promise<void>;
  /** Remove the members of nodes past their deadline and announce their leaves, each once across nodes. */
  sweep(): Promise<void>;
  /** Remove a member of this node and announce its leave (on close). */
  leave(topic: string, member: PresenceMember): Promise<void>;
  /** Remove this node's liveness record (on close, after its members). */
  forget(): Promise<void>;
}

/**
 * The presence liveness loop of a networked broker: every `refresh` ms it refreshes this node's
 * liveness (putting its members back if others had declared it dead) and sweeps dead nodes. So
 * a node that dies without `close()` has its leaves announced within `ttl + refresh` ms.
 */
export class PresenceLiveness {
  /** This node's members, per topic. */
  readonly members = new NodeMembers();
  /** A node is dead once it has not refreshed its liveness for this long (ms). */
  readonly ttl: number;
  /** How often the loop runs (ms). */
  readonly refresh: number;
  readonly #store: LivenessStore;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  /** @throws RangeError when `presenceRefresh` is not shorter than `presenceTtl`. */
  constructor(broker: string, options: LivenessOptions, store: LivenessStore) {
    this.ttl = options.presenceTtl ?? BROKER_DEFAULTS.presenceTtl;
    this.refresh = options.presenceRefresh ?? BROKER_DEFAULTS.presenceRefresh;
    this.#store = store;
    if (this.refresh >= this.ttl) throw new RangeError(`${broker} broker: presenceRefresh must be shorter than presenceTtl`);
  }

  /** Refresh this node's liveness now; rejoin its members if others had declared it dead. */
  async refreshNow(): Promise<void> {
    if (!(await this.#store.refresh())) return;
    for (const [topic, member] of this.members.entries()) await this.#store.rejoin(topic, member);
  }

  /** Run the loop every `refresh` ms (without keeping the process alive). */
  start(): void {
    this.#timer = setInterval(() => void this.#tick(), this.refresh);
    this.#timer.unref();
  }

  /** Stop the loop (the broker is closing). */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  /**
   * Take this node's presence away as it closes: each member's leave announced, then its
   * liveness record. Best effort: what the server could not be told, the other nodes' sweeps
   * remove once this node's deadline passes.
   */
  async leave(): Promise<void> {
    this.stop();
    try {
      if (this.#store.reachable()) {
        for (const [topic, member] of this.members.entries()) await this.#store.leave(topic, member);
        await this.#store.forget();
      }
    } catch {
      // Best effort, as said.
    }
    this.members.clear();
  }

  async #tick(): Promise<void> {
    if (this.#stopped || !this.#store.reachable()) return;
    try {
      await this.refreshNow();
      await this.#store.sweep();
    } catch {
      // The server is unreachable: the next tick tries again (and the broker reports the state).
    }
  }
}
