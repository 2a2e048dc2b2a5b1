/**
 * The Redis broker's subscriptions: each channel subscribed on the server where it lives now —
 * the one Redis; the master Sentinel names; in a cluster, the master of the channel's hash slot
 * (sharded pub/sub) — over one connection per server, which only listens.
 *
 * A subscription can be lost without anyone saying so (a connection dropped, a master that died
 * and whose replica took over, a slot moved away: Redis then SUNSUBSCRIBEs its channels). From
 * the first loss on, deliveries may have been missed, so the subscriber "heals": it learns where
 * each channel lives now, subscribes there (before leaving the old place, so nothing falls in
 * between), and once every channel is subscribed on a live connection it reports `healed` — the
 * broker then tells its hub to re-check history, which covers what was published meanwhile.
 * node-redis resubscribes a connection's channels when that connection comes back on its own;
 * moving to another server is what this module adds, for the cluster and Sentinel.
 */

/** A message listener, as node-redis calls it. */
export type Listener = (message: string, channel: string) => void;

/** What the subscriber needs of a node-redis client (a structural subset of `RedisClientType`). */
export interface SubscriberClient {
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: Listener): Promise<unknown>;
  unsubscribe(channel: string, listener: Listener): Promise<unknown>;
  sSubscribe(channel: string, listener: Listener): Promise<unknown>;
  sUnsubscribe(channel: string, listener: Listener): Promise<unknown>;
  getPubSubListeners(type: 'CHANNELS' | 'SHARDED'): ReadonlyMap<string, unknown>;
  on(event: 'ready' | 'end' | 'reconnecting', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'sharded-channel-moved', listener: (channel: string) => void): unknown;
  close(): Promise<unknown>;
  destroy(): unknown;
}

/** Where channels live, and how to get there. */
export interface SubscriberPlacement {
  /** SSUBSCRIBE (sharded pub/sub) rather than SUBSCRIBE. */
  readonly sharded: boolean;
  /** The server (an address `client` understands) that `channel` is to be subscribed on now; undefined while nobody knows. */
  where(channel: string): string | undefined;
  /** Learn again where channels live (after a loss, or a MOVED). Rejects when that cannot be learnt now. */
  refresh(): Promise<void>;
  /** A new, unconnected client for `address`. Its first connection must fail rather than retry; later losses it retries. */
  client(address: string): SubscriberClient;
  /**
   * Check this often (ms) that every channel still lives where it is subscribed, even when
   * nothing was lost: Redis announces a slot that moved with SUNSUBSCRIBE, but node-redis can
   * take that push for the reply to a PING in flight and drop it, which would leave the channel
   * deaf. Undefined: never (one server, where channels cannot move).
   */
  readonly checkEvery?: number | undefined;
}

/** What the subscriber tells its broker. */
export interface SubscriberEvents {
  /** A publication or presence message on a subscribed channel. */
  readonly message: Listener;
  /** Health may have changed (see `RedisSubscriber.healthy`). */
  readonly change: () => void;
  /** Every channel is subscribed again after a loss: deliveries may have been missed meanwhile. */
  readonly healed: () => void;
}

interface Connection {
  readonly address: string;
  readonly client: SubscriberClient;
  /** The channels placed on this connection. */
  readonly channels: Set<string>;
  /** Resolves once connected (rejects if the first connection fails). */
  readonly connected: Promise<void>;
  /** Subscribes on their way: a connection is not closed under them. */
  pending: number;
  retired: boolean;
}

/** Retries of a heal that could not finish: 50 ms doubling to this, so a failover is followed within a second. */
const MAX_HEAL_DELAY = 1000;

/** A MOVED or ASK reply: the slot map is stale. */
function isRedirect(error: unknown): boolean {
  return error instanceof Error && /^(MOVED|ASK) /.test(error.message);
}

/** One broker's subscriptions, placed and kept where their channels live. */
export class RedisSubscriber {
  readonly #placement: SubscriberPlacement;
  readonly #events: SubscriberEvents;
  readonly #connections = new Map<string, Connection>();
  /** Subscribed channels → the address of their connection; undefined: to be placed again. */
  readonly #placed = new Map<string, string | undefined>();
  /** Subscribes on their way, by channel. */
  readonly #subscribing = new Map<string, Promise<void>>();
  /** Since the last heal, deliveries may have been missed. */
  #lost = false;
  #healing = false;
  #healAgain = false;
  #healTimer: NodeJS.Timeout | undefined;
  #healRetries = 0;
  #closed = false;
  readonly #listener: Listener;

  #checkTimer: NodeJS.Timeout | undefined;

  constructor(placement: SubscriberPlacement, events: SubscriberEvents) {
    this.#placement = placement;
    this.#events = events;
    this.#listener = (message, channel) => events.message(message, channel);
    if (placement.checkEvery !== undefined) {
      this.#checkTimer = setInterval(() => void this.#check(), placement.checkEvery);
      this.#checkTimer.unref();
    }
  }

  /** True when every subscribed channel is on a live connection and nothing was lost since the last heal. */
  get healthy(): boolean {
    return !this.#lost && this.#settled();
  }

  /** The connections' addresses and their channels (for tests and diagnostics). */
  get placements(): ReadonlyMap<string, readonly string[]> {
    return new Map([...this.#connections].map(([address, c]) => [address, [...c.channels]]));
  }

  /** Subscribe `channel` where it lives. Idempotent. Rejects when it cannot be subscribed now. */
  async subscribe(channel: string): Promise<void> {
    if (this.#placed.has(channel)) return;
    let pending = this.#subscribing.get(channel);
    if (pending === undefined) {
      pending = this.#subscribeNew(channel).finally(() => this.#subscribing.delete(channel));
      this.#subscribing.set(channel, pending);
    }
    await pending;
  }

  async #subscribeNew(channel: string): Promise<void> {
    let address = this.#placement.where(channel);
    if (address === undefined) {
      await this.#placement.refresh();
      address = this.#placement.where(channel);
      if (address === undefined) throw new Error(`nowhere to subscribe ${channel} now`);
    }
    try {
      await this.#subscribeOn(address, channel);
    } catch (error) {
      if (!isRedirect(error)) throw error;
      // The slot moved since the map was learnt: learn it again and go there.
      await this.#placement.refresh();
      address = this.#placement.where(channel);
      if (address === undefined) throw error;
      await this.#subscribeOn(address, channel);
    }
    if (this.#closed) return;
    this.#place(channel, address);
  }

  /** Stop receiving `channel`. Idempotent. */
  async unsubscribe(channel: string): Promise<void> {
    // A subscribe on its way finishes first, so that this one undoes it.
    await this.#subscribing.get(channel)?.catch(() => undefined);
    if (!this.#placed.has(channel)) return;
    const address = this.#placed.get(channel);
    this.#placed.delete(channel);
    const connection = address === undefined ? undefined : this.#connections.get(address);
    if (connection === undefined) return;
    connection.channels.delete(channel);
    if (connection.channels.size === 0 && connection.pending === 0) {
      this.#retire(connection);
      return;
    }
    // A connection that is down forgets the channel when it comes back (heal reconciles it).
    if (connection.client.isReady) await this.#unsubscribeOn(connection, channel).catch(() => undefined);
  }

  /** Close every connection; nothing is delivered afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#healTimer);
    clearInterval(this.#checkTimer);
    this.#placed.clear();
    const connections = [...this.#connections.values()];
    this.#connections.clear();
    await Promise.allSettled(
      connections.map(async (c) => {
        c.retired = true;
        await c.connected.catch(() => undefined);
        if (c.client.isReady) await c.client.close();
        else c.client.destroy();
      }),
    );
  }

  async #subscribeOn(address: string, channel: string): Promise<void> {
    const connection = this.#connectionTo(address);
    connection.pending++;
    try {
      await connection.connected;
      if (connection.retired || !connection.client.isReady) throw new Error(`the connection to ${address} is down`);
      await (this.#placement.sharded ? connection.client.sSubscribe(channel, this.#listener) : connection.client.subscribe(channel, this.#listener));
    } finally {
      connection.pending--;
    }
  }

  #unsubscribeOn(connection: Connection, channel: string): Promise<unknown> {
    return this.#placement.sharded ? connection.client.sUnsubscribe(channel, this.#listener) : connection.client.unsubscribe(channel, this.#listener);
  }

  #place(channel: string, address: string): void {
    this.#placed.set(channel, address);
    this.#connections.get(address)?.channels.add(channel);
  }

  /** The connection to `address` (a new one, connecting, if there is none). */
  #connectionTo(address: string): Connection {
    const existing = this.#connections.get(address);
    if (existing !== undefined) return existing;
    if (this.#closed) throw new Error('subscriber closed');
    const client = this.#placement.client(address);
    const connected = client.connect().then(() => undefined);
    const connection: Connection = { address, client, channels: new Set(), connected, pending: 0, retired: false };
    this.#connections.set(address, connection);
    // The first connection failed: forget it (the subscribe waiting on it rejects).
    connected.catch(() => {
      if (this.#connections.get(address) === connection) this.#connections.delete(address);
      connection.retired = true;
      client.destroy();
    });
    const lost = (): void => {
      if (connection.retired) return;
      if (connection.channels.size > 0) this.#lost = true;
      this.#events.change();
      this.#scheduleHeal();
    };
    client.on('error', lost);
    client.on('reconnecting', lost);
    client.on('end', lost);
    client.on('ready', () => {
      if (connection.retired) return;
      this.#events.change();
      this.#healNow();
    });
    // Redis SUNSUBSCRIBEd the channel (its slot went elsewhere): place it again.
    client.on('sharded-channel-moved', (channel) => {
      if (connection.retired || !connection.channels.delete(channel) || !this.#placed.has(channel)) return;
      this.#placed.set(channel, undefined);
      this.#lost = true;
      this.#events.change();
      this.#healNow();
    });
    return connection;
  }

  #retire(connection: Connection): void {
    connection.retired = true;
    if (this.#connections.get(connection.address) === connection) this.#connections.delete(connection.address);
    void connection.connected
      .then(() => (connection.client.isReady ? connection.client.close() : connection.client.destroy()))
      .catch(() => connection.client.destroy());
  }

  /**
   * Heal at once, not after a pending retry's backoff: a connection is back (node-redis has
   * resubscribed its channels during its handshake), so the hub's catch-up can start now, as
   * deliveries already do.
   */
  #healNow(): void {
    clearTimeout(this.#healTimer);
    this.#healTimer = undefined;
    if (!this.#closed) void this.#heal();
  }

  #scheduleHeal(): void {
    if (this.#closed || this.#healTimer !== undefined) return;
    const wait = Math.min(50 * 2 ** this.#healRetries, MAX_HEAL_DELAY);
    this.#healTimer = setTimeout(() => {
      this.#healTimer = undefined;
      void this.#heal();
    }, wait);
    this.#healTimer.unref();
  }

  /** Place every channel where it lives now; report `healed` once all are on live connections after a loss. */
  async #heal(): Promise<void> {
    if (this.#healing) {
      this.#healAgain = true;
      return;
    }
    this.#healing = true;
    let done = false;
    try {
      do {
        this.#healAgain = false;
        done = await this.#healOnce();
      } while (this.#healAgain && !this.#closed);
    } finally {
      this.#healing = false;
    }
    if (this.#closed) return;
    if (!done) {
      this.#healRetries++;
      this.#scheduleHeal();
      return;
    }
    this.#healRetries = 0;
    if (this.#lost && this.#settled()) {
      this.#lost = false;
      this.#events.change();
      this.#events.healed();
      return;
    }
    this.#events.change();
    if (this.#lost) this.#scheduleHeal();
  }

  /** A channel that does not live where it is subscribed any more was lost: heal. */
  async #check(): Promise<void> {
    if (this.#closed || this.#healing || this.#lost || this.#placed.size === 0) return;
    try {
      await this.#placement.refresh();
    } catch {
      return; // a loss shows up on the connections too
    }
    for (const [channel, at] of this.#placed) {
      if (at === undefined || this.#placement.where(channel) === at) continue;
      this.#lost = true;
      this.#events.change();
      this.#healNow();
      return;
    }
  }

  /** Every subscribed channel is placed on a live connection. */
  #settled(): boolean {
    for (const address of this.#placed.values()) {
      if (address === undefined || this.#connections.get(address)?.client.isReady !== true) return false;
    }
    return true;
  }

  /** One pass; true when every channel is on a live connection where it lives. */
  async #healOnce(): Promise<boolean> {
    if (this.#lost || !this.#settled()) {
      try {
        await this.#placement.refresh();
      } catch {
        return false;
      }
    }
    let settled = true;
    for (const [channel, at] of [...this.#placed]) {
      if (this.#closed) return false;
      const want = this.#placement.where(channel);
      if (want === undefined) {
        settled = false;
        continue;
      }
      const current = at === undefined ? undefined : this.#connections.get(at);
      if (at === want && current !== undefined) {
        // The same server: node-redis resubscribes the channel when that connection is back.
        if (!current.client.isReady) settled = false;
        continue;
      }
      try {
        await this.#subscribeOn(want, channel);
      } catch {
        settled = false;
        continue;
      }
      if (!this.#placed.has(channel) || this.#placed.get(channel) !== at) {
        // Unsubscribed (or placed) meanwhile.
        const moved = this.#connections.get(want);
        if (moved !== undefined && !this.#placed.has(channel)) await this.#unsubscribeOn(moved, channel).catch(() => undefined);
        continue;
      }
      this.#place(channel, want);
      if (current !== undefined) {
        current.channels.delete(channel);
        if (current.channels.size === 0 && current.pending === 0) this.#retire(current);
        else if (current.client.isReady) await this.#unsubscribeOn(current, channel).catch(() => undefined);
      }
    }
    for (const connection of [...this.#connections.values()]) {
      if (connection.pending > 0) continue;
      if (connection.channels.size === 0) {
        // Down and of no use any more (its channels live elsewhere now).
        if (!connection.client.isReady) this.#retire(connection);
        continue;
      }
      // Channels a connection resubscribed on its return but that live elsewhere now: drop them.
      if (!connection.client.isReady) continue;
      const subscribed = connection.client.getPubSubListeners(this.#placement.sharded ? 'SHARDED' : 'CHANNELS');
      for (const channel of [...subscribed.keys()]) {
        if (!connection.channels.has(channel) && !this.#subscribing.has(channel)) await this.#unsubscribeOn(connection, channel).catch(() => undefined);
      }
    }
    return settled;
  }
}
