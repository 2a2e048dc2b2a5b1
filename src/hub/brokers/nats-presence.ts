/**
 * The NATS broker's presence (`nats.ts` has the design): a KV bucket of members
 * (`<node>.<topic>.<conn>` → member) and a KV bucket of node heartbeats, and the join/leave
 * events on the topics' core subjects. What the liveness loop (`PresenceLiveness`) runs is here:
 * the heartbeat, the sweep of dead nodes, the removal of a member with its leave announced once.
 *
 * Removals delete the entry's exact revision (`deleteMessage` by sequence), which succeeds for
 * one caller only, rather than a KV compare-and-delete: on a replicated bucket, nats-server before
 * 2.9.21 lets every concurrent compare-and-set of one revision through (nats-server#4320), and
 * the leave would be announced by each sweeper.
 */
import type { JetStreamManager, KV, KvEntry, NatsConnection } from 'nats';

import type { PresenceMember } from '../broker.js';
import { encoder, isAlreadyDeleted, presenceHeaders, token, type PresenceRecord } from './nats-format.js';

/** What the presence store is built with. */
export interface PresenceStoreOptions {
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  /** The members bucket and the heartbeats bucket, with their names. */
  readonly members: { readonly kv: KV; readonly bucket: string };
  readonly nodes: { readonly kv: KV; readonly bucket: string };
  /** A node is dead once its heartbeat is this old (ms), `presenceTtl`. */
  readonly ttl: number;
  /** The core subject of a topic's events (`<prefix>.pub.<topic>`). */
  readonly subject: (topic: string) => string;
}

/** One node's view of the shared presence buckets. */
export class NatsPresence {
  readonly #o: PresenceStoreOptions;
  /** Since when this node's heartbeats have been written without a failure (undefined: the last one failed). */
  #writableSince: number | undefined;

  constructor(options: PresenceStoreOptions) {
    this.#o = options;
  }

  /** Store `member` of `topic` and announce its join. */
  async join(topic: string, member: PresenceMember): Promise<void> {
    const record = encoder.encode(JSON.stringify({ topic, member } satisfies PresenceRecord));
    await this.#o.members.kv.put(memberKey(member.node, topic, member.connId), record);
    this.#o.nc.publish(this.#o.subject(topic), record, { headers: presenceHeaders('join') });
  }

  /** Remove a member of `topic` (if present) and announce its leave. */
  async leave(topic: string, member: PresenceMember): Promise<void> {
    await this.#remove(memberKey(member.node, topic, member.connId));
  }

  /** The members of `topic` on live nodes; those of dead nodes are removed (their leaves announced). */
  async members(topic: string): Promise<PresenceMember[]> {
    const kv = this.#o.members.kv;
    const alive = new Map<string, boolean>();
    const members: PresenceMember[] = [];
    for (const key of await keys(kv, `*.${token(topic)}.*`)) {
      const entry = await kv.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      const record = JSON.parse(entry.string()) as PresenceRecord;
      const node = record.member.node;
      let isAlive = alive.get(node);
      if (isAlive === undefined) {
        isAlive = await this.#isAlive(node);
        alive.set(node, isAlive);
      }
      if (isAlive) members.push(record.member);
      else await this.#remove(key, entry);
    }
    return members;
  }

  /** Write this node's heartbeat; true if it had none (others declared it dead while it stalled, or it is new). */
  async heartbeat(nodeId: string): Promise<boolean> {
    const nodes = this.#o.nodes.kv;
    try {
      const mine = await nodes.get(token(nodeId));
      await nodes.put(token(nodeId), encoder.encode(JSON.stringify({ id: nodeId })));
      this.#writableSince ??= Date.now();
      return mine === null || mine.operation !== 'PUT';
    } catch (error) {
      this.#writableSince = undefined;
      throw error;
    }
  }

  /** This node lost its connection: heartbeats written before it say nothing of the others' since. */
  disconnected(): void {
    this.#writableSince = undefined;
  }

  /** Remove this node's heartbeat (on close, after its members). */
  async forget(nodeId: string): Promise<void> {
    await this.#o.nodes.kv.delete(token(nodeId));
  }

  /** Delete the heartbeats older than the ttl (one sweeper each) and their nodes' members. */
  async sweep(): Promise<void> {
    if (!this.#stalenessMeansDeath()) return;
    const nodes = this.#o.nodes.kv;
    for (const key of await keys(nodes, '>')) {
      const entry = await nodes.get(key);
      if (entry === null || entry.operation !== 'PUT' || Date.now() - entry.created.getTime() < this.#o.ttl) continue;
      if (!(await this.#deleteRevision(this.#o.nodes.bucket, entry))) continue; // another node is sweeping it
      for (const member of await keys(this.#o.members.kv, `${key}.>`)) await this.#remove(member);
    }
  }

  /**
   * Whether an old heartbeat means a dead node: only once this node's own heartbeats have been
   * written for a whole ttl. While the heartbeat bucket cannot be written (no server, or a
   * cluster electing the bucket's leader after a server died, for seconds) every heartbeat
   * ages alike; right after, the live nodes' would look as old as a dead one's.
   */
  #stalenessMeansDeath(): boolean {
    return this.#writableSince !== undefined && Date.now() - this.#writableSince >= this.#o.ttl;
  }

  async #isAlive(nodeId: string): Promise<boolean> {
    const entry = await this.#o.nodes.kv.get(token(nodeId));
    if (entry === null || entry.operation !== 'PUT') return false;
    return Date.now() - entry.created.getTime() < this.#o.ttl || !this.#stalenessMeansDeath();
  }

  /** Delete a member entry (its exact revision: one remover) and announce the leave. */
  async #remove(key: string, known?: KvEntry): Promise<void> {
    const entry = known ?? (await this.#o.members.kv.get(key));
    if (entry === null || entry.operation !== 'PUT') return;
    if (!(await this.#deleteRevision(this.#o.members.bucket, entry))) return; // someone else removed (and announced) it
    const record = JSON.parse(entry.string()) as PresenceRecord;
    this.#o.nc.publish(this.#o.subject(record.topic), entry.value, { headers: presenceHeaders('leave') });
  }

  /** Delete exactly `entry`'s revision; false if it is gone already (deleted, or replaced by a newer one). */
  async #deleteRevision(bucket: string, entry: KvEntry): Promise<boolean> {
    try {
      return await this.#o.jsm.streams.deleteMessage(`KV_${bucket}`, entry.revision, false);
    } catch (error) {
      if (isAlreadyDeleted(error)) return false;
      throw error;
    }
  }
}

/** The members bucket's key of a connection in a topic. */
function memberKey(nodeId: string, topic: string, connId: string): string {
  return `${token(nodeId)}.${token(topic)}.${token(connId)}`;
}

async function keys(kv: KV, filter: string): Promise<string[]> {
  const found: string[] = [];
  for await (const key of await kv.keys(filter)) found.push(key);
  return found;
}
