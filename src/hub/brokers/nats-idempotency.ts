/**
 * The NATS broker's idempotency records (`nats.ts` has the design): a KV bucket holding each
 * publication made with an idempotency key for the window, keyed by its `idempotencyId`. On one
 * server, JetStream's dedupe refuses a second message with the id; these records give the first
 * publication back when its message is no longer in the stream (the subject's purge took it),
 * and dedupe a retry after nats-server restarted (it rebuilds its dedupe table from stored
 * messages only). On a replicated stream the message id claims the topic's slot instead, and
 * the key is claimed here first (`publishOnce`).
 */
import type { JetStreamClient, JetStreamManager, KV, KvEntry } from 'nats';

import type { Publication } from '../broker.js';
import { NatsBrokerError, encoder, idempotencyRecord, isAlreadyDeleted, isCasConflict, nanos, parseIdempotencyRecord, sleep } from './nats-format.js';
import { openBucket } from './nats-streams.js';

/** What a replicated keyed publish does besides the claim (`IdempotencyRecords.publishOnce`). */
export interface KeyedPublish {
  /** Store the publication, carrying the key's id; no send after `deadline` (ms). */
  publish(deadline: number): Promise<Publication>;
  /** The publication carrying the key's id, stored at or after `since` (ms), if there is one. */
  find(since: number): Promise<Publication | undefined>;
}

/** The claim of a key: its record, still empty (a record always has its JSON head). */
const CLAIM = new Uint8Array(0);

/** The bucket of idempotency records, with this node's window. */
export class IdempotencyRecords {
  readonly #kv: KV;
  readonly #window: number;
  readonly #jsm: JetStreamManager;
  readonly #stream: string;

  private constructor(kv: KV, window: number, jsm: JetStreamManager, bucket: string) {
    this.#kv = kv;
    this.#window = window;
    this.#jsm = jsm;
    this.#stream = `KV_${bucket}`;
  }

  /**
   * Open (or create) the bucket with `replicas` copies, and give it `window` (ms) as its max age:
   * `js.views.kv` keeps the settings of an existing bucket, so a changed window would otherwise
   * not apply until the bucket was deleted. The node that starts last sets it for the cluster.
   */
  static async open(js: JetStreamClient, jsm: JetStreamManager, bucket: string, window: number, replicas: number, timeout: number): Promise<IdempotencyRecords> {
    // The bucket's own duplicate window may not exceed its max age.
    const reconcile = { max_age: nanos(window), duplicate_window: nanos(window) };
    const kv = await openBucket(js, jsm, bucket, { ttl: window, replicas, timeout, reconcile });
    return new IdempotencyRecords(kv, window, jsm, bucket);
  }

  /** The publication recorded under `id` within this node's window, if any (rejects with the client's error). */
  async get(topic: string, id: string): Promise<Publication | undefined> {
    const entry = await this.#kv.get(id);
    // The bucket's max age is the window of the node that configured it last; this node's own
    // window decides too, judged by the server's timestamp of the entry.
    if (entry === null || entry.operation !== 'PUT' || !this.#fresh(entry) || entry.value.length === 0) return undefined;
    return parseIdempotencyRecord(topic, entry.string());
  }

  /** Record `publication` as the one made with `id`. */
  async put(id: string, publication: Publication): Promise<void> {
    await this.#kv.put(id, encoder.encode(idempotencyRecord(publication)));
  }

  /** The record under `id`, waited for up to `timeout` ms (its publisher writes it right after its acknowledgement). */
  async waitFor(topic: string, id: string, timeout: number): Promise<Publication | undefined> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const first = await this.get(topic, id);
      if (first !== undefined || Date.now() >= deadline) return first;
      await sleep(20);
    }
  }

  /**
   * Publish once per key on a replicated stream. The key is claimed first, by creating its
   * record empty: KV create is one creator per key, concurrent ones included (it is the
   * expected-sequence-0 check, which nats-server applies with the write, unlike a later
   * sequence's). The claimer publishes, the publication carrying the key's id, and fills the
   * record in; the others wait for the record, up to `timeout` ms. A claim still empty twice
   * `timeout` after it was made belongs to a publisher that stopped or failed (its sends end
   * `timeout` after the claim): the publication is looked for in the topic, and if it is not
   * there the claim is deleted by its revision (which succeeds once) and made again.
   */
  async publishOnce(topic: string, id: string, timeout: number, steps: KeyedPublish): Promise<Publication> {
    const giveUp = Date.now() + timeout;
    for (let attempt = 0; attempt < 1000; attempt++) {
      const entry = await this.#kv.get(id);
      if (entry !== null && entry.operation === 'PUT') {
        if (!this.#fresh(entry)) {
          // Older than this node's window (the bucket's max age is another node's): forget it.
          await this.#drop(entry);
          continue;
        }
        if (entry.value.length > 0) return parseIdempotencyRecord(topic, entry.string());
        const claimedAt = entry.created.getTime();
        if (Date.now() - claimedAt < 2 * timeout) {
          if (Date.now() >= giveUp) {
            throw new NatsBrokerError(`nats broker: a publish to ${topic} with this idempotency key is under way on another node; retry`);
          }
          await sleep(20);
          continue;
        }
        const stored = await steps.find(claimedAt - timeout);
        if (stored !== undefined) {
          await this.put(id, stored).catch(() => undefined);
          return stored;
        }
        await this.#drop(entry);
        continue;
      }
      try {
        await this.#kv.create(id, CLAIM);
      } catch (error) {
        if (isCasConflict(error)) continue; // claimed by another publish a moment ago
        throw error;
      }
      // Claimed. A failed publish leaves the claim: whether it was stored is unknown until its
      // sends are over, and the stale-claim path above finds out.
      const publication = await steps.publish(Date.now() + timeout);
      // Published either way; without the record, a retry finds it in the topic (`find`).
      await this.put(id, publication).catch(() => undefined);
      return publication;
    }
    throw new NatsBrokerError(`nats broker: could not settle the idempotency key of a publish to ${topic}`);
  }

  /** Whether `entry` is within this node's window, judged by the server's timestamp of it. */
  #fresh(entry: KvEntry): boolean {
    return Date.now() - entry.created.getTime() < this.#window;
  }

  /** Delete exactly this revision of a record (a newer claim or record is left alone). */
  async #drop(entry: KvEntry): Promise<void> {
    await this.#jsm.streams.deleteMessage(this.#stream, entry.revision, false).catch((error: unknown) => {
      if (!isAlreadyDeleted(error)) throw error;
    });
  }
}
