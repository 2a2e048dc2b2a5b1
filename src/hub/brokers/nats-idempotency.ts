/**
 * The NATS broker's idempotency records (`nats.ts` has the design): a KV bucket holding each
 * publication made with an idempotency key for the window, keyed by its `idempotencyId`. JetStream's
 * dedupe refuses a second message with the id; these records give the first publication back
 * when its message is no longer in the stream (the subject's purge took it), and dedupe a retry
 * after nats-server restarted (it rebuilds its dedupe table from stored messages only).
 */
import type { JetStreamClient, JetStreamManager, KV } from 'nats';

import type { Publication } from '../broker.js';
import { encoder, idempotencyRecord, nanos, parseIdempotencyRecord, sleep } from './nats-format.js';

/** The bucket of idempotency records, with this node's window. */
export class IdempotencyRecords {
  readonly #kv: KV;
  readonly #window: number;

  private constructor(kv: KV, window: number) {
    this.#kv = kv;
    this.#window = window;
  }

  /**
   * Open (or create) the bucket, and give it `window` (ms) as its max age: `js.views.kv` keeps
   * the settings of an existing bucket, so a changed window would otherwise not apply until the
   * bucket was deleted. The node that starts last sets it for the cluster.
   */
  static async open(js: JetStreamClient, jsm: JetStreamManager, bucket: string, window: number, timeout: number): Promise<IdempotencyRecords> {
    const kv = await js.views.kv(bucket, { history: 1, ttl: window, timeout });
    const stream = `KV_${bucket}`;
    const { config } = await jsm.streams.info(stream);
    // The bucket's own duplicate window may not exceed its max age.
    if (config.max_age !== nanos(window) || config.duplicate_window !== nanos(window)) {
      await jsm.streams.update(stream, { max_age: nanos(window), duplicate_window: nanos(window) });
    }
    return new IdempotencyRecords(kv, window);
  }

  /** The publication recorded under `id` within this node's window, if any (rejects with the client's error). */
  async get(topic: string, id: string): Promise<Publication | undefined> {
    const entry = await this.#kv.get(id);
    // The bucket's max age is the window of the node that configured it last; this node's own
    // window decides too, judged by the server's timestamp of the entry.
    if (entry === null || entry.operation !== 'PUT' || !(Date.now() - entry.created.getTime() < this.#window)) return undefined;
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
}
