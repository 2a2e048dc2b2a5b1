/**
 * The one small interface every broker implements (in-memory, Redis, NATS). A broker carries a
 * hub's publications between nodes, assigns each publication its place in the topic's history
 * (offset + epoch, as Centrifugo does), keeps that history, and shares presence. One file per
 * broker under `brokers/`; the in-memory broker is the reference the others are tested against
 * (`test/hub/broker-contract.ts`).
 */

/** A JSON-encodable value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A publication as stored and delivered. */
export interface Publication {
  /** The topic it was published to. */
  readonly topic: string;
  /**
   * Its place in the topic's history: starts at 1 and grows by exactly 1 per publication within
   * one epoch, across every node, so a gap is visible as a jump.
   */
  readonly offset: number;
  /** Identifies one lifetime of the topic's history; a new epoch means older offsets are meaningless. */
  readonly epoch: string;
  /** The published data, already serialised as JSON text (serialised once, never per subscriber). */
  readonly data: string;
  /** Publication time, ms since the epoch (broker clock or publishing node's clock). */
  readonly time: number;
  /** Connection id of the publisher, if a client published it (for `excludeSelf`). */
  readonly publisher?: string | undefined;
}

/** What a topic's history can give back from a position. */
export interface HistorySlice {
  /** Publications after the requested offset, in order (possibly empty). */
  readonly publications: Publication[];
  /** The topic's current epoch. */
  readonly epoch: string;
  /** The topic's latest offset in `epoch` (0 if nothing was published in it): live delivery continues after it. */
  readonly offset: number;
  /**
   * True when every publication after the requested offset is in `publications` (same epoch,
   * nothing expired or trimmed in between); false means the client missed messages that are
   * gone and must be told so.
   */
  readonly complete: boolean;
}

/** A connection present in a topic. */
export interface PresenceMember {
  /** The connection's id (unique across nodes). */
  readonly connId: string;
  /** The user the connection authenticated as, if any. */
  readonly userId?: string | undefined;
  /** Application data shown to others (e.g. a display name). */
  readonly info?: Json | undefined;
  /** The node the connection lives on. */
  readonly node: string;
}

/** A change in a topic's presence, delivered to every node subscribed to the topic. */
export interface PresenceEvent {
  /** The topic whose presence changed. */
  readonly topic: string;
  /** Whether `member` entered the topic's presence or left it (a leave is also announced for a dead node's members). */
  readonly kind: 'join' | 'leave';
  /** The connection that joined or left. */
  readonly member: PresenceMember;
}

/** History retention of a topic: the last `size` publications and/or the last `ttl` ms (0 = keep none). */
export interface HistoryOptions {
  /** How many of the latest publications to keep (the hub's default: 100); 0 keeps none. */
  readonly size: number;
  /** How long to keep a publication, in ms (the hub's default: 5 minutes); 0 keeps none. */
  readonly ttl: number;
}

/** What a broker calls back into its hub node. */
export interface BrokerNode {
  /** This node's id (unique across the cluster). */
  readonly id: string;
  /** A publication on a topic this node subscribed to (its own publications included). */
  onPublication(publication: Publication): void;
  /** A presence change on a topic this node subscribed to (its own included). */
  onPresence(event: PresenceEvent): void;
  /**
   * The broker lost and regained its connection: deliveries may have been missed, so the hub
   * re-checks each topic's history from the last offset it delivered. Brokers that cannot
   * lose messages (in-memory) never call it.
   */
  onReconnect(): void;
  /** The broker's connection state changed (for metrics and health). */
  onState?(state: BrokerState): void;
}

/** Connection state of a broker. */
export type BrokerState = 'connected' | 'disconnected';

/** Moves publications, history and presence between the nodes of a hub cluster. */
export interface Broker {
  /** A short name for logs and metrics: 'memory', 'redis', 'nats'. */
  readonly name: string;
  /** Connect, and start calling `node` back. Rejects if the broker cannot be reached. */
  start(node: BrokerNode): Promise<void>;
  /** Receive this topic's publications and presence events on this node. Idempotent. */
  subscribe(topic: string): Promise<void>;
  /** Stop receiving this topic. Idempotent. */
  unsubscribe(topic: string): Promise<void>;
  /**
   * Publish: assign the next offset in the topic's epoch, store it in history (per `history`),
   * deliver it to every subscribed node. Resolves once the broker has accepted it (the hub
   * acknowledges the publisher then); rejects if it could not.
   *
   * With an `idempotencyKey`, a second publish with the same key to the same topic within the
   * broker's idempotency window (`DEFAULTS.broker.idempotencyWindow`, 2 minutes), from any node,
   * is not published again: it resolves with the first one's publication (same offset and
   * epoch) and nothing is delivered. This is what makes a retried server-API POST safe.
   */
  publish(topic: string, data: string, history: HistoryOptions, publisher?: string, idempotencyKey?: string): Promise<Publication>;
  /** Publications of `topic` after `offset` in `epoch` (all retained ones if `epoch` is undefined). */
  history(topic: string, offset: number, epoch: string | undefined): Promise<HistorySlice>;
  /** Add a member to a topic's presence and announce a join. */
  join(topic: string, member: PresenceMember): Promise<void>;
  /** Remove a connection from a topic's presence and announce a leave. */
  leave(topic: string, member: PresenceMember): Promise<void>;
  /**
   * Members of a topic across all live nodes. Members of a node that stopped refreshing its
   * liveness are left out (and their leave announced) within a bounded time.
   */
  presence(topic: string): Promise<PresenceMember[]>;
  /** Remove this node's presence, stop delivering, disconnect. */
  close(): Promise<void>;
}
