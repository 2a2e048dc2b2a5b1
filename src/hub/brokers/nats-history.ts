/**
 * The NATS broker's history reads (`nats.ts` has the design): a topic's last stored message, a
 * message by its stream sequence, the walk back through the `Duplex-Prev` chain that answers
 * `history()`, and the epoch of a topic that has no stored message (its KV bucket).
 */
import type { JetStreamManager, KV, StoredMsg } from 'nats';
import { requirePeer } from '../../node/peer.js';

import type { HistorySlice, Publication } from '../broker.js';
import { H, NatsBrokerError, encoder, isAlreadyDeleted, isNotFound, parseStored, token, type EpochRecord } from './nats-format.js';
import { historySlice, newEpoch } from './shared.js';

// nats.js is an optional peer dependency, loaded by `duplex-ws/hub/nats` only (see nats.ts).
const { NatsError } = requirePeer<typeof import('nats')>('nats', 'duplex-ws/hub/nats');

/** What the history reader is built with. */
export interface HistoryStreamOptions {
  readonly jsm: JetStreamManager;
  /** The history stream's name. */
  readonly stream: string;
  /** The subject of a topic in it (`<prefix>.hist.<topic>`). */
  readonly subject: (topic: string) => string;
  /** The epochs bucket, with its name. */
  readonly epochs: { readonly kv: KV; readonly bucket: string };
}

/** Reads the history stream and the epochs bucket. */
export class HistoryStream {
  readonly #o: HistoryStreamOptions;

  constructor(options: HistoryStreamOptions) {
    this.#o = options;
  }

  /** The topic's newest stored message, if any. */
  async last(topic: string): Promise<StoredMsg | undefined> {
    try {
      return await this.#o.jsm.streams.getMessage(this.#o.stream, { last_by_subj: this.#o.subject(topic) });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new NatsBrokerError(`nats broker: could not read the history of ${topic}`, { cause: error });
    }
  }

  /** The message at stream sequence `seq`, if it is still stored. */
  async at(seq: number): Promise<StoredMsg | undefined> {
    try {
      return await this.#o.jsm.streams.getMessage(this.#o.stream, { seq });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new NatsBrokerError('nats broker: could not read history', { cause: error });
    }
  }

  /** `Broker.history`: the retained publications of `topic` after `offset` in `epoch`. */
  async slice(topic: string, offset: number, epoch: string | undefined): Promise<HistorySlice> {
    const last = await this.last(topic);
    if (last === undefined) return historySlice(await this.epochForEmpty(topic, false), 0, [], offset, epoch);
    const newest = parseStored(topic, last);
    const size = Number(last.header.get(H.size));
    const ttl = Number(last.header.get(H.ttl));
    const sameEpoch = epoch === undefined || epoch === newest.epoch;
    const now = Date.now();
    const retained: Publication[] = [];
    // Walk back from the newest message through each message's predecessor (its Duplex-Prev
    // header), stopping at the requested offset or where size/ttl retention ends.
    let msg: StoredMsg | undefined = last;
    let pub = newest;
    while (msg !== undefined) {
      if ((sameEpoch && pub.offset <= offset) || newest.offset - pub.offset >= size || !(now - pub.time < ttl)) break;
      retained.push(pub);
      const prev: number = Number(msg.header.get(H.prev));
      msg = prev > 0 ? await this.at(prev) : undefined;
      if (msg !== undefined) pub = parseStored(topic, msg);
    }
    retained.reverse();
    return historySlice(newest.epoch, newest.offset, retained, offset, epoch);
  }

  /**
   * The publication of `topic` carrying idempotency id `id` in its `Duplex-Key` header, stored at
   * or after `since` (ms, by its publisher's clock), walked back from the newest message: for a
   * keyed publish whose publisher stopped between storing it and writing its record.
   */
  async findKeyed(topic: string, id: string, since: number): Promise<Publication | undefined> {
    let msg = await this.last(topic);
    while (msg !== undefined) {
      const pub = parseStored(topic, msg);
      if (pub.time < since) return undefined;
      if (msg.header.get(H.key) === id) return pub;
      const prev = Number(msg.header.get(H.prev));
      msg = prev > 0 ? await this.at(prev) : undefined;
    }
    return undefined;
  }

  /** The epoch for a topic that has no stored message; `forPublish` claims it for a first publication. */
  async epochForEmpty(topic: string, forPublish: boolean): Promise<string> {
    const kv = this.#o.epochs.kv;
    const key = token(topic);
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        const entry = await kv.get(key);
        if (entry === null || entry.operation !== 'PUT') {
          const epoch = newEpoch();
          await kv.create(key, encoder.encode(JSON.stringify({ epoch, used: forPublish } satisfies EpochRecord)));
          return epoch;
        }
        const record = JSON.parse(entry.string()) as EpochRecord;
        if (!record.used) {
          if (!forPublish) return record.epoch;
          // Concurrent markings write the same epoch, so they agree however many get through.
          await kv.update(key, encoder.encode(JSON.stringify({ epoch: record.epoch, used: true } satisfies EpochRecord)), entry.revision);
          return record.epoch;
        }
        // The epoch was used and its messages are gone: offsets restart, so the epoch changes.
        // Delete this revision and create the next one, rather than a compare-and-set update:
        // on a replicated bucket nats-server before 2.9.21 lets every concurrent update of one
        // revision through (nats-server#4320), while create lets one through.
        await this.#o.jsm.streams.deleteMessage(`KV_${this.#o.epochs.bucket}`, entry.revision, false).catch((error: unknown) => {
          if (!isAlreadyDeleted(error)) throw error;
        });
      } catch (error) {
        if (!(error instanceof NatsError)) throw error;
        // Another node created or rotated it first: read again.
      }
    }
    throw new NatsBrokerError(`nats broker: could not settle the epoch of ${topic}`);
  }
}
