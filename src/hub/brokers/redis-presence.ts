/**
 * The Redis broker's presence and node liveness, laid out so that every script touches one hash
 * slot (Redis Cluster refuses the others):
 *
 * - a topic's members: a hash per topic (`<prefix>{topic}:presence`, connId → member), in the
 *   topic's slot;
 * - node liveness: a sorted set of nodes scored with their deadline on the Redis clock
 *   (`<prefix>nodes`) and each node's incarnation (a hash in the same slot);
 * - each node's topics, per incarnation (`<prefix>node:<id>:<incarnation>:topics`), for
 *   removing what a dead node left behind.
 *
 * Members are filtered against liveness in two calls — the topic's slot, then the nodes' — and
 * that gap is what incarnations close (the "incarnation number" of SWIM, which a node bumps to
 * refute its suspected death): each stored member carries its node's incarnation; a node whose
 * deadline passed takes a new one when it refreshes and writes its members again; and dead
 * members are removed by compare-and-delete of exactly what was read. So a node that comes back
 * from a stall just as another node declares it dead keeps its members: they were rewritten
 * under the new incarnation, and the stale copies the other node read no longer match.
 *
 * Within the bounds of `PresenceLiveness` (shared.ts): `presence()` leaves out a dead node's
 * members once its deadline passed, and removes them (announcing their leaves) on the spot;
 * every node's sweep does the same for the nodes it claims as dead, within `ttl + refresh`.
 */
import type { NodeMembers } from './shared.js';
import { newEpoch } from './shared.js';
import type { PresenceMember } from '../broker.js';
import { asArray, asNumber, asString, scripts, type ScriptClient } from './redis-scripts.js';

/** The broker's key and channel names that presence uses. */
export interface PresenceNames {
  /** The presence hash of `topic`. */
  presence(topic: string): string;
  /** The channel `topic`'s publications and presence events go to. */
  channel(topic: string): string;
  /** The sorted set of live nodes. */
  readonly nodes: string;
  /** The hash of node incarnations (in the same slot as `nodes`). */
  readonly incarnations: string;
  /** The set of topics where `node` has members, under `incarnation` ('' for a record without one). */
  nodeTopics(node: string, incarnation: string): string;
}

/** What presence needs of the broker. */
export interface PresenceContext {
  readonly client: ScriptClient;
  readonly names: PresenceNames;
  /** PUBLISH or SPUBLISH. */
  readonly publishCommand: string;
  readonly nodeId: string;
  /** ms a node stays alive without refreshing. */
  readonly ttl: number;
  /** This node's members (kept by the liveness loop). */
  readonly members: NodeMembers;
}

/** A member as stored: its JSON with the incarnation of its node added. */
export function storeMember(member: PresenceMember, incarnation: string): string {
  return JSON.stringify({ ...member, incarnation });
}

/** A stored member (or a pure member JSON, as a presence event or an older node writes it), without the incarnation. */
export function parseMember(text: string): { member: PresenceMember; incarnation: string } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || typeof (value as { node?: unknown }).node !== 'string') return undefined;
  const { incarnation, ...member } = value as PresenceMember & { incarnation?: unknown };
  return { member, incarnation: typeof incarnation === 'string' ? incarnation : '' };
}

interface Entry {
  readonly connId: string;
  readonly stored: string;
  readonly parsed: ReturnType<typeof parseMember>;
}

/** Presence and liveness of one broker node in Redis. */
export class RedisPresence {
  readonly #c: PresenceContext;
  /** This node's incarnation (a new one at start, and after it was found dead). */
  #incarnation = '';
  /** Topics in this incarnation's topic index (or being added to it). */
  readonly #indexed = new Map<string, Promise<void>>();
  /** Previous incarnations of this node that nobody claimed: their leftovers are removed by the next sweep. */
  readonly #stale: string[] = [];

  constructor(context: PresenceContext) {
    this.#c = context;
  }

  /** Add `member` (of this node) to `topic`'s presence and announce its join. */
  async join(topic: string, member: PresenceMember): Promise<void> {
    this.#c.members.add(topic, member);
    await this.rejoin(topic, member);
  }

  /** Store and announce a member of this node (again, after a stall: under the new incarnation). */
  async rejoin(topic: string, member: PresenceMember): Promise<void> {
    // The topic goes into the index first: a member is never stored where a sweep would not find it.
    await this.#index(topic);
    const { client, names, publishCommand } = this.#c;
    await scripts.join.run(client, [names.presence(topic)], [member.connId, storeMember(member, this.#incarnation), names.channel(topic), publishCommand]);
  }

  /** Remove `member` (of this node) from `topic`'s presence and announce its leave. */
  async leave(topic: string, member: PresenceMember): Promise<void> {
    const left = this.#c.members.remove(topic, member.connId);
    await this.announceLeave(topic, member);
    // `left` is live: a join made while the leave was on its way shows in it, and keeps the index.
    if (left?.size === 0) {
      this.#c.members.drop(topic);
      this.#indexed.delete(topic);
      const key = this.#c.names.nodeTopics(this.#c.nodeId, this.#incarnation);
      await this.#c.client.call(key, ['SREM', key, topic]);
    }
  }

  /** Remove a member and announce its leave, once (also used on close, for every member). */
  async announceLeave(topic: string, member: PresenceMember): Promise<void> {
    const { client, names, publishCommand } = this.#c;
    await scripts.leave.run(client, [names.presence(topic)], [member.connId, names.channel(topic), publishCommand]);
  }

  /** The members of live nodes; those of dead ones are removed (their leaves announced) on the way. */
  async presence(topic: string): Promise<PresenceMember[]> {
    const entries = await this.#entries(topic);
    const alive = await this.#alive(entries);
    const live: PresenceMember[] = [];
    const dead: Entry[] = [];
    for (const entry of entries) {
      if (entry.parsed !== undefined && alive.has(entry.parsed.member.node)) live.push(entry.parsed.member);
      else dead.push(entry);
    }
    if (dead.length > 0) await this.#evict(topic, dead);
    return live;
  }

  /**
   * Push this node's deadline forward. True when the node was found dead (or is starting): it has
   * a new incarnation then, and its members must be written again.
   */
  async refresh(): Promise<boolean> {
    const { client, names, nodeId, ttl } = this.#c;
    // The first refresh takes an incarnation whatever the record says: a node with this id that
    // ran before and died within the ttl still looks alive there, and its members are not ours.
    const starting = this.#incarnation === '';
    const next = newEpoch();
    const reply = asArray('refresh', await scripts.refresh.run(client, [names.nodes, names.incarnations], [nodeId, String(ttl), next, starting ? '1' : '0']));
    if (asNumber('refresh', reply[0]) !== 1) return false;
    this.#incarnation = next;
    this.#indexed.clear();
    // Nobody claimed the previous incarnation (a stall shorter than the others' sweep, or this
    // node id restarting): the next sweep removes what is left of it.
    const previous = asString('refresh', reply[1]);
    if (previous !== '') this.#stale.push(previous);
    return true;
  }

  /**
   * Remove what dead nodes left: this node's unclaimed previous incarnations, then every node
   * past its deadline, each claimed by exactly one sweeper.
   */
  async sweep(): Promise<void> {
    const { client, names, nodeId } = this.#c;
    while (this.#stale.length > 0) {
      const incarnation = this.#stale[0]!;
      await this.#sweepIndex(nodeId, incarnation, (e) => e.parsed?.member.node === nodeId && e.parsed.incarnation === incarnation);
      this.#stale.shift();
    }
    const claimed = asArray('claim', await scripts.claim.run(client, [names.nodes, names.incarnations], []));
    for (let i = 0; i + 1 < claimed.length; i += 2) {
      const dead = asString('claim', claimed[i]);
      const incarnation = asString('claim', claimed[i + 1]);
      // Everything of a node that is not alive goes: the claimed one's members, and those of any
      // other node found dead there (one that never registered, or whose sweeper failed).
      await this.#sweepIndex(dead, incarnation, undefined);
    }
  }

  /** This node leaves: its liveness record and topic index go (its members were announced leaving before). */
  async forget(): Promise<void> {
    const { client, names, nodeId } = this.#c;
    await scripts.forget.run(client, [names.nodes, names.incarnations], [nodeId]);
    const key = names.nodeTopics(nodeId, this.#incarnation);
    await client.call(key, ['DEL', key]);
  }

  #index(topic: string): Promise<void> {
    let indexed = this.#indexed.get(topic);
    if (indexed === undefined) {
      const key = this.#c.names.nodeTopics(this.#c.nodeId, this.#incarnation);
      indexed = this.#c.client.call(key, ['SADD', key, topic]).then(() => undefined);
      this.#indexed.set(topic, indexed);
      const added = indexed;
      added.catch(() => {
        if (this.#indexed.get(topic) === added) this.#indexed.delete(topic);
      });
    }
    return indexed;
  }

  /** For each topic in a node's index: remove the members `doomed` picks (default: those of nodes not alive); then the index. */
  async #sweepIndex(node: string, incarnation: string, doomed: ((entry: Entry) => boolean) | undefined): Promise<void> {
    const { client, names } = this.#c;
    const index = names.nodeTopics(node, incarnation);
    const topics = asArray('smembers', await client.call(index, ['SMEMBERS', index])).map((t) => asString('smembers', t));
    for (const topic of topics) {
      const entries = await this.#entries(topic);
      let dead: Entry[];
      if (doomed !== undefined) dead = entries.filter(doomed);
      else {
        const alive = await this.#alive(entries);
        dead = entries.filter((e) => e.parsed === undefined || !alive.has(e.parsed.member.node));
      }
      if (dead.length > 0) await this.#evict(topic, dead);
    }
    await client.call(index, ['DEL', index]);
  }

  async #entries(topic: string): Promise<Entry[]> {
    const flat = asArray('presence', await scripts.members.run(this.#c.client, [this.#c.names.presence(topic)], []));
    const entries: Entry[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const stored = asString('presence', flat[i + 1]);
      entries.push({ connId: asString('presence', flat[i]), stored, parsed: parseMember(stored) });
    }
    return entries;
  }

  /** The nodes of `entries` that are alive now (Redis clock of the nodes' slot). */
  async #alive(entries: readonly Entry[]): Promise<Set<string>> {
    const nodes = [...new Set(entries.flatMap((e) => (e.parsed === undefined ? [] : [e.parsed.member.node])))];
    if (nodes.length === 0) return new Set();
    const flags = asArray('status', await scripts.status.run(this.#c.client, [this.#c.names.nodes], nodes));
    return new Set(nodes.filter((_, i) => asNumber('status', flags[i]) === 1));
  }

  /** Compare-and-delete `entries` (as read) and announce their leaves. */
  async #evict(topic: string, entries: readonly Entry[]): Promise<void> {
    const { client, names, publishCommand } = this.#c;
    await scripts.evict.run(client, [names.presence(topic)], [names.channel(topic), publishCommand, ...entries.flatMap((e) => [e.connId, e.stored])]);
  }
}
