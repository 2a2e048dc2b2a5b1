/**
 * The hub's control plane: what one node asks of every node, over the broker. Server-API calls
 * that act on connections wherever they live (`disconnect`, server-side `subscribe` and
 * `unsubscribe`) are commands on the reserved topic `$ctl`, which every node subscribes to; each
 * node applies them to its own connections. Each node also announces itself there every few
 * seconds (its id, version and counts), so every node knows the live nodes (`hub.nodes()`) without
 * a registry of its own, as Centrifugo's nodes do; and `hub.topics()` asks each known node for its
 * topics on the node's own `$ctl:<id>` topic and gathers the answers.
 *
 * Commands are JSON. A node ignores what it cannot read (a newer node's command, say): the
 * control plane must never take a node down.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../node/logger.js';
import type { Broker, HistoryOptions } from './broker.js';
import { errorMessage } from './errors.js';

/** The topic every node subscribes to for commands and announcements. */
export const CONTROL_TOPIC = '$ctl';
/** A node's own control topic (answers to its queries): `$ctl:<node id>`. */
export const CONTROL_NODE_PREFIX = '$ctl:';
/** ms a closing node waits for the broker to carry its leaving. */
const LEAVE_TIMEOUT = 1000;
/** Control messages keep no history. */
const NO_HISTORY: HistoryOptions = { size: 0, ttl: 0 };

/** Which connections a command is for: every connection of a user, or one connection. */
export type ConnectionTarget =
  | {
      /** Every connection of this user id, on every node. */
      readonly user: string;
    }
  | {
      /** The connection with this id (`hub.connectionId(ws)`, a presence member's `connId`). */
      readonly connId: string;
    };

/** What a node says of itself (`hub.nodes()`, the server API's `info`). */
export interface NodeInfo {
  /** The node's id. */
  readonly id: string;
  /** The duplex-ws version it runs. */
  readonly version: string;
  /** Seconds since the node started. */
  readonly uptime: number;
  /** Hub connections on the node. */
  readonly connections: number;
  /** Distinct users among them. */
  readonly users: number;
  /** Topics with subscribers on the node. */
  readonly topics: number;
  /** The broker's name ('memory', 'redis', 'nats'). */
  readonly broker: string;
}

/** A topic with subscribers, and how many (summed over the nodes that answered). */
export interface ActiveTopic {
  /** The topic. */
  readonly topic: string;
  /** Its subscriptions (connections), on the nodes that answered. */
  readonly subscribers: number;
}

/** What a node applies locally when a command reaches it. */
export interface ControlHost {
  /** This node's id. */
  readonly nodeId: string;
  readonly broker: Broker;
  readonly logger: Logger;
  /** This node's own announcement, fresh. */
  info(): NodeInfo;
  /** Close the local connections of `target` with `code` and `reason`. */
  disconnect(target: ConnectionTarget, code: number, reason: string): void;
  /** Subscribe (or unsubscribe) the local connections of `target` to `topic`. */
  setSubscription(target: ConnectionTarget, topic: string, subscribed: boolean): void;
  /** This node's topics with local subscribers, with their counts. */
  topics(): Iterable<ActiveTopic>;
}

/** A control message, as it travels (one JSON object; `op` says which). */
type ControlMessage =
  | { readonly op: 'disconnect'; readonly target: ConnectionTarget; readonly code: number; readonly reason: string }
  | { readonly op: 'subscribe' | 'unsubscribe'; readonly target: ConnectionTarget; readonly topic: string }
  | { readonly op: 'node'; readonly info: NodeInfo; readonly reply?: boolean }
  | { readonly op: 'node-left'; readonly id: string }
  | { readonly op: 'topics'; readonly from: string; readonly req: string }
  | { readonly op: 'topics-answer'; readonly req: string; readonly node: string; readonly topics: readonly ActiveTopic[] };

let version: string | undefined;
/** The version of the duplex-ws package this file belongs to (dist/src/hub/ → ../../../package.json). */
export function packageVersion(): string {
  if (version === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      version = pkg.name === 'duplex-ws' && typeof pkg.version === 'string' ? pkg.version : 'unknown';
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

function isTarget(value: unknown): value is ConnectionTarget {
  if (typeof value !== 'object' || value === null) return false;
  const target = value as Record<string, unknown>;
  return typeof target['user'] === 'string' || typeof target['connId'] === 'string';
}

/** Read a control message, or undefined for anything this node does not understand. */
function readControl(text: string): ControlMessage | undefined {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as Record<string, unknown>;
  switch (m['op']) {
    case 'disconnect':
      return isTarget(m['target']) && typeof m['code'] === 'number' && typeof m['reason'] === 'string' ? (m as ControlMessage) : undefined;
    case 'subscribe':
    case 'unsubscribe':
      return isTarget(m['target']) && typeof m['topic'] === 'string' ? (m as ControlMessage) : undefined;
    case 'node': {
      const info = m['info'] as Record<string, unknown> | null;
      return typeof info === 'object' && info !== null && typeof info['id'] === 'string' ? (m as ControlMessage) : undefined;
    }
    case 'node-left':
      return typeof m['id'] === 'string' ? (m as ControlMessage) : undefined;
    case 'topics':
      return typeof m['from'] === 'string' && typeof m['req'] === 'string' ? (m as ControlMessage) : undefined;
    case 'topics-answer':
      return typeof m['req'] === 'string' && typeof m['node'] === 'string' && Array.isArray(m['topics']) ? (m as ControlMessage) : undefined;
    default:
      return undefined;
  }
}

/** A topics query in flight: the nodes still to answer, and what came. */
interface TopicsQuery {
  readonly waiting: Set<string>;
  readonly found: Map<string, number>;
  readonly done: () => void;
}

/** One node's part of the control plane. */
export class ControlPlane {
  readonly #host: ControlHost;
  readonly #interval: number;
  /** Other live nodes: their last announcement and when it came. */
  readonly #nodes = new Map<string, { info: NodeInfo; seen: number }>();
  readonly #queries = new Map<string, TopicsQuery>();
  #timer: NodeJS.Timeout | undefined;

  /**
   * @param interval ms between two announcements of this node; a node not heard of for three
   *   intervals is taken as gone.
   */
  constructor(host: ControlHost, interval: number) {
    this.#host = host;
    this.#interval = interval;
  }

  /** The topics to subscribe at the broker: `$ctl` and this node's own. */
  get topics(): readonly string[] {
    return [CONTROL_TOPIC, CONTROL_NODE_PREFIX + this.#host.nodeId];
  }

  /** Whether `topic` is a control topic (its publications are not the application's). */
  static isControlTopic(topic: string): boolean {
    return topic === CONTROL_TOPIC || topic.startsWith(CONTROL_NODE_PREFIX);
  }

  /** Announce this node now and every interval. */
  start(): void {
    this.#announce();
    this.#timer = setInterval(() => this.#announce(), this.#interval);
    this.#timer.unref();
  }

  /** Stop announcing; tell the others this node is leaving. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const query of this.#queries.values()) query.done();
    // A broker that is down must not hold up the node's shutdown: the others then forget this
    // node when its announcements stop (three intervals).
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<void>((resolve) => (timer = setTimeout(resolve, LEAVE_TIMEOUT)));
    await Promise.race([this.#send(CONTROL_TOPIC, { op: 'node-left', id: this.#host.nodeId }).catch(() => {}), bounded]);
    clearTimeout(timer);
  }

  /** Send a command to every node (this one included); resolves once the broker accepted it. */
  command(message: Extract<ControlMessage, { op: 'disconnect' | 'subscribe' | 'unsubscribe' }>): Promise<void> {
    return this.#send(CONTROL_TOPIC, message);
  }

  /** The live nodes, this one first (its info fresh, the others' as last announced). */
  nodes(): NodeInfo[] {
    const now = Date.now();
    const others: NodeInfo[] = [];
    for (const [id, { info, seen }] of this.#nodes) {
      if (now - seen > 3 * this.#interval) this.#nodes.delete(id);
      else others.push(info);
    }
    others.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return [this.#host.info(), ...others];
  }

  /**
   * Every node's topics with subscribers, gathered: this node's at once, each other live node's
   * as it answers, until all answered or `timeout` ms passed (`partial` then says so).
   */
  async activeTopics(timeout: number): Promise<{ topics: ActiveTopic[]; nodes: number; partial: boolean }> {
    const found = new Map<string, number>();
    for (const { topic, subscribers } of this.#host.topics()) found.set(topic, subscribers);
    const others = this.nodes().slice(1).map((n) => n.id);
    const waiting = new Set(others);
    if (waiting.size > 0) {
      const req = randomBytes(6).toString('hex');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeout);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.#queries.set(req, { waiting, found, done });
        this.#send(CONTROL_TOPIC, { op: 'topics', from: this.#host.nodeId, req }).catch((error: unknown) => {
          this.#host.logger.warn({ err: errorMessage(error) }, 'topics query could not be sent');
          done();
        });
      }).finally(() => this.#queries.delete(req));
    }
    const topics = [...found].map(([topic, subscribers]) => ({ topic, subscribers })).sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
    return { topics, nodes: 1 + others.length - waiting.size, partial: waiting.size > 0 };
  }

  /** A publication on a control topic reached this node. */
  receive(data: string): void {
    const message = readControl(data);
    if (!message) return;
    const host = this.#host;
    try {
      switch (message.op) {
        case 'disconnect':
          return host.disconnect(message.target, message.code, message.reason);
        case 'subscribe':
        case 'unsubscribe':
          return host.setSubscription(message.target, message.topic, message.op === 'subscribe');
        case 'node':
          return this.#heard(message.info, message.reply === true);
        case 'node-left':
          this.#nodes.delete(message.id);
          return;
        case 'topics':
          if (message.from === host.nodeId) return;
          this.#send(CONTROL_NODE_PREFIX + message.from, { op: 'topics-answer', req: message.req, node: host.nodeId, topics: [...host.topics()] }).catch(() => {});
          return;
        case 'topics-answer': {
          const query = this.#queries.get(message.req);
          if (!query || !query.waiting.delete(message.node)) return;
          for (const entry of message.topics) {
            if (typeof entry?.topic === 'string' && typeof entry.subscribers === 'number') query.found.set(entry.topic, (query.found.get(entry.topic) ?? 0) + entry.subscribers);
          }
          if (query.waiting.size === 0) query.done();
          return;
        }
      }
    } catch (error) {
      host.logger.error({ op: message.op, err: errorMessage(error) }, 'control command failed');
    }
  }

  /** Another node announced itself; a node new to us learns of this one at once (on its own topic). */
  #heard(info: NodeInfo, isReply: boolean): void {
    if (info.id === this.#host.nodeId) return;
    const known = this.#nodes.has(info.id);
    this.#nodes.set(info.id, { info, seen: Date.now() });
    if (!known && !isReply) this.#send(CONTROL_NODE_PREFIX + info.id, { op: 'node', info: this.#host.info(), reply: true }).catch(() => {});
  }

  #announce(): void {
    this.#send(CONTROL_TOPIC, { op: 'node', info: this.#host.info() }).catch((error: unknown) => {
      this.#host.logger.debug({ err: errorMessage(error) }, 'node announcement failed');
    });
  }

  #send(topic: string, message: ControlMessage): Promise<void> {
    return this.#host.broker.publish(topic, JSON.stringify(message), NO_HISTORY).then(() => undefined);
  }
}
