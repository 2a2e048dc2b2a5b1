// The hub soak's load: every connection a raw `net` socket with the engine's client handshake
// (`src/cli/bench/handshake.ts`) and the engine itself (`Peer`, a `Connection` on the socket, as
// `duplex bench` drives it), so one process can read 100,000 deliveries a second.
//
// - Publishers (`--publishers`): publish k goes to topic k mod T, on the publisher for that topic,
//   at `--rate` per second, evenly over time. Its data is one JSON string: the send time (µs on this
//   process's clock) and the topic's sequence number (1, 2, …), in hex, then filler up to
//   `--payload` bytes (`src/cli/bench/payload.ts`). The hub repeats the string verbatim at the end of
//   each message it fans out, so a subscriber finds both at a fixed distance from the end: no
//   JSON parse per delivery.
// - Healthy subscribers read everything at once and check, per subscriber, that the sequence
//   numbers of their topic come 1, 2, 3… (missing and duplicates counted), and how long each took.
// - Slow subscribers (`--slow-pct`, the same share in every topic) keep their socket paused and
//   take `--slow-read` bytes per second out of it (`socket.read(n)`), so the kernel's buffers fill
//   and then the server's; when their connection ends they count how (a close frame they got to,
//   or none) and connect again after `--slow-reconnect-ms`, subscribing afresh.
// Every subscriber subscribes before the first publish, so at the end each healthy subscriber
// must have received exactly the publishes of its topic the hub acknowledged.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { openWebSocket, parseTarget } from '../src/cli/bench/handshake.js';
import { Histogram } from '../src/cli/bench/histogram.js';
import { makePayload, now, sentAt, sequenceOf, stamp, tick } from '../src/cli/bench/payload.js';
import { Peer, type PeerOwner } from '../src/cli/bench/peer.js';
import { config, isSlow, type FromLoad, type HubLoadFinal, type HubLoadSample, type Latency, type ToLoad } from './soak-hub-config.js';
import { ProcessProbe } from './soak-probe.js';

/** The byte after `{"type":"` in a hub message: enough to tell the kinds apart. */
const TYPE_OFFSET = 9;
const KIND_MESSAGE = 0x6d; // m
const KIND_REPLY = 0x72; // r
const KIND_JOIN = 0x6a; // j
const KIND_LEAVE = 0x6c; // l
const KIND_GAP = 0x67; // g
const KIND_ERROR = 0x65; // e
const QUOTE = 0x22;
const BRACE = 0x7d;

/** How often slow subscribers take their bytes, ms. */
const THROTTLE_MS = 100;
/** How often publishes are sent (the ones due since the last time), ms. */
const PUBLISH_MS = 5;

function send(message: FromLoad): void {
  process.send!(message);
}

/** One subscriber connection and its sequence check. */
class Subscriber extends Peer {
  subscribed = false;
  /** Next sequence number expected; 0 until the first message for a slow one after a (re)connect. */
  next: number;
  delivered = 0;
  missing = 0;
  duplicates = 0;

  constructor(
    owner: PeerOwner,
    socket: Socket,
    readonly index: number,
    readonly topic: number,
    readonly slow: boolean,
  ) {
    super(owner, socket);
    this.next = slow ? 0 : 1;
  }

  /** A publication of its topic, sequence number `seq`. */
  sequence(seq: number): void {
    if (this.next === 0 || seq === this.next) {
      this.delivered++;
      this.next = seq + 1;
    } else if (seq < this.next) {
      this.duplicates++;
    } else {
      this.missing += seq - this.next;
      this.delivered++;
      this.next = seq + 1;
    }
  }

  /** Paused socket: the throttle takes its bytes (see `readSlowly`). */
  startPaused(head: Buffer): void {
    const socket = this.socket;
    socket.pause();
    socket.on('end', () => this.conn.receiveEof());
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!this.closeDetail) this.closeDetail = error.code ?? error.message;
    });
    socket.on('close', () => this.owner.peerClosed(this));
    if (head.length > 0) this.feed(head);
  }

  /** Take at most `budget` bytes from the paused socket; returns how many. */
  readSlowly(budget: number): number {
    const socket = this.socket;
    let taken = 0;
    while (taken < budget) {
      const available = socket.readableLength;
      if (available === 0) {
        socket.read(0); // ask the stream to fetch from the kernel for next time
        break;
      }
      const chunk = socket.read(Math.min(budget - taken, available)) as Buffer | null;
      if (chunk === null) break;
      taken += chunk.length;
      this.feed(chunk);
    }
    return taken;
  }

  private feed(chunk: Buffer): void {
    tick();
    this.conn.receiveData(chunk);
    if (this.conn.hasDataToSend) this.markDirty();
  }
}

/** One publisher connection. */
class Publisher extends Peer {}

function latency(h: Histogram): Latency {
  const ms = (us: number): number => us / 1000;
  return { count: h.count, p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), p999: ms(h.percentile(99.9)), max: ms(h.max) };
}

export async function hubLoadRole(): Promise<void> {
  const { topics, payload: size, rate } = config;
  const url = parseTarget(`ws://127.0.0.1:${config.port}/hub`);
  const probe = new ProcessProbe(false);
  const subscribers = new Array<Subscriber | undefined>(config.connections);
  const publishers: Publisher[] = [];
  const healthyTotal = Array.from({ length: config.connections }, (_, i) => i).filter((i) => !isSlow(i)).length;
  /** Per topic: publishes sent, and acknowledged by the hub. */
  const sentPerTopic = new Array<number>(topics).fill(0);
  const ackedPerTopic = new Array<number>(topics).fill(0);
  const lat = new Histogram();
  const latAll = new Histogram();
  const slowLag = new Histogram();
  const firstErrors: string[] = [];
  const counts = { published: 0, acked: 0, publishErrors: 0, healthyClosed: 0, slowMessages: 0, slowBytes: 0, slowReconnects: 0, presence: 0, hubErrors: 0, gaps: 0, openFailed: 0 };
  const slowEnded: Record<string, number> = {};
  let stopping = false;
  let publishing = false;
  const note = (text: string): void => {
    if (firstErrors.length < 5) firstErrors.push(text);
  };

  const owner: PeerOwner = {
    options: { size },
    message(peer, data) {
      const kind = data[TYPE_OFFSET];
      if (kind === KIND_MESSAGE && peer instanceof Subscriber) {
        const end = data.length;
        const at = end - 2 - size;
        if (at < 0 || data[end - 1] !== BRACE || data[end - 2] !== QUOTE) {
          note(`unexpected message: ${Buffer.from(data).toString('utf8', 0, 120)}`);
          return;
        }
        const stamped = data.subarray(at);
        const seq = sequenceOf(stamped);
        const delay = now() - sentAt(stamped);
        if (peer.slow) {
          // A slow subscriber's missing messages are the 'drop' policy at work, not a fault.
          peer.sequence(seq);
          counts.slowMessages++;
          slowLag.record(delay);
        } else {
          peer.sequence(seq);
          lat.record(delay);
          if (publishing) latAll.record(delay);
        }
      } else if (kind === KIND_REPLY) {
        if (peer instanceof Subscriber) {
          peer.subscribed = true;
        } else {
          const reply = JSON.parse(Buffer.from(data).toString('utf8')) as { id: number };
          ackedPerTopic[reply.id % topics]!++;
          counts.acked++;
        }
      } else if (kind === KIND_JOIN || kind === KIND_LEAVE) {
        counts.presence++;
      } else if (kind === KIND_GAP) {
        counts.gaps++;
      } else if (kind === KIND_ERROR) {
        counts.hubErrors++;
        if (peer instanceof Publisher) counts.publishErrors++;
        note(`hub error: ${Buffer.from(data).toString('utf8', 0, 200)}`);
      }
    },
    error(_kind, message) {
      note(message);
    },
    peerClosed(peer) {
      if (stopping) return;
      if (peer instanceof Publisher) {
        note(`a publisher was closed: ${peer.closeDetail}`);
        return;
      }
      const sub = peer as Subscriber;
      if (subscribers[sub.index] === sub) subscribers[sub.index] = undefined;
      if (!sub.slow) {
        counts.healthyClosed++;
        note(`healthy subscriber ${sub.index} closed: ${sub.closeDetail || 'no close frame'}`);
        return;
      }
      // How did the server end it, as far as this reader got? A close frame it read, or none
      // (the server destroyed the socket with the close frame still in its own buffer).
      const code = sub.conn.closeCode;
      const how = /^server sent close/.test(sub.closeDetail) ? `close frame ${code}` : `no close frame${sub.closeDetail ? ` (${sub.closeDetail})` : ''}`;
      slowEnded[how] = (slowEnded[how] ?? 0) + 1;
      if (config.slowReconnectMs >= 0) {
        setTimeout(() => {
          counts.slowReconnects++;
          toOpen.push(sub.index);
        }, config.slowReconnectMs);
      }
    },
  };

  const encoder = new TextEncoder();
  const subscribeRequest = (topic: number): Uint8Array => encoder.encode(`{"type":"subscribe","id":1,"topic":"t${topic}"}`);

  async function open(): Promise<{ socket: Socket; head: Buffer } | undefined> {
    try {
      return await openWebSocket(url, 10_000);
    } catch (error) {
      counts.openFailed++;
      note(`open failed: ${(error as Error).message}`);
      return undefined;
    }
  }

  /** Open subscriber `index` and subscribe it; false if the handshake failed. */
  async function openSubscriber(index: number): Promise<boolean> {
    const opened = await open();
    if (!opened) return false;
    if (stopping) {
      opened.socket.destroy();
      return true;
    }
    const topic = index % topics;
    const sub = new Subscriber(owner, opened.socket, index, topic, isSlow(index));
    subscribers[index] = sub;
    if (sub.slow) sub.startPaused(opened.head);
    else sub.start(opened.head);
    sub.conn.sendText(subscribeRequest(topic));
    sub.markDirty();
    return true;
  }

  // Publishers first, then the subscribers at ≤ `openRate` handshakes per second, ≤ `openConcurrency`
  // at once; a handshake that fails (a busy machine can time it out) is tried again. Slow
  // subscribers that reconnect queue up here too.
  for (let p = 0; p < config.publishers; p++) {
    const opened = await open();
    if (!opened) throw new Error('a publisher could not connect');
    const publisher = new Publisher(owner, opened.socket);
    publisher.start(opened.head);
    publishers.push(publisher);
  }
  let publishTimer: NodeJS.Timeout | undefined;
  const toOpen: number[] = Array.from({ length: config.connections }, (_, i) => i);
  let inFlight = 0;
  let budget = 0;
  const PUMP_MS = 50;
  const pump = setInterval(() => {
    if (stopping) return;
    budget = Math.min(budget + (config.openRate * PUMP_MS) / 1000, config.openRate);
    while (budget >= 1 && inFlight < config.openConcurrency && toOpen.length > 0) {
      budget--;
      inFlight++;
      const index = toOpen.shift()!;
      void openSubscriber(index).then((ok) => {
        inFlight--;
        if (!ok) toOpen.push(index);
      });
    }
    if (!publishing && publishTimer === undefined && toOpen.length === 0 && inFlight === 0) {
      let subscribed = 0;
      for (const sub of subscribers) if (sub?.subscribed) subscribed++;
      if (subscribed === config.connections) startPublishing();
    }
  }, PUMP_MS);

  // Publishing: publish k → topic k mod T, its publisher (T mod P), evenly at `rate` per second.
  const data = makePayload(size);
  const tail = encoder.encode('"}');
  function publishOne(k: number): void {
    const topic = k % topics;
    const seq = ++sentPerTopic[topic]!;
    stamp(data, seq);
    const head = encoder.encode(`{"type":"publish","id":${k},"topic":"t${topic}","data":"`);
    const message = new Uint8Array(head.length + data.length + tail.length);
    message.set(head, 0);
    message.set(data, head.length);
    message.set(tail, head.length + data.length);
    const publisher = publishers[topic % publishers.length]!;
    publisher.conn.sendText(message);
    publisher.markDirty();
    counts.published++;
  }
  function startPublishing(): void {
    publishing = true;
    send({ type: 'ready', subscribed: config.connections });
    const t0 = performance.now();
    publishTimer = setInterval(() => {
      tick();
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      while (counts.published < due) publishOne(counts.published);
    }, PUBLISH_MS);
  }

  // Slow subscribers take their share of bytes every THROTTLE_MS.
  const slowBudget = Math.max(1, Math.round((config.slowRead * THROTTLE_MS) / 1000));
  const throttle = setInterval(() => {
    for (const sub of subscribers) {
      if (sub?.slow && !sub.socket.destroyed) counts.slowBytes += sub.readSlowly(slowBudget);
    }
  }, THROTTLE_MS);

  let lastCpu = process.cpuUsage();
  let lastWall = performance.now();
  function sample(): HubLoadSample {
    let healthyOpen = 0;
    let slowOpen = 0;
    let delivered = 0;
    let missing = 0;
    let duplicates = 0;
    let slowMissing = 0;
    for (const sub of subscribers) {
      if (!sub) continue;
      if (sub.slow) {
        if (sub.subscribed) slowOpen++;
        slowMissing += sub.missing;
      } else {
        if (sub.subscribed) healthyOpen++;
        delivered += sub.delivered;
        missing += sub.missing;
        duplicates += sub.duplicates;
      }
    }
    const cpu = process.cpuUsage(lastCpu);
    const wall = performance.now();
    const cpuPct = ((cpu.user + cpu.system) / 1000 / (wall - lastWall)) * 100;
    lastCpu = process.cpuUsage();
    lastWall = wall;
    const own = probe.sample();
    const result: HubLoadSample = {
      healthyOpen,
      slowOpen,
      publishing,
      published: counts.published,
      acked: counts.acked,
      publishErrors: counts.publishErrors,
      publishBacklog: counts.published - counts.acked - counts.publishErrors,
      delivered,
      missing,
      duplicates,
      healthyClosed: counts.healthyClosed,
      latency: latency(lat),
      slowMessages: counts.slowMessages,
      slowBytes: counts.slowBytes,
      slowLagMax: slowLag.max / 1000,
      slowLagP50: slowLag.percentile(50) / 1000,
      slowMissing,
      slowEnded: { ...slowEnded },
      slowReconnects: counts.slowReconnects,
      presence: counts.presence,
      hubErrors: counts.hubErrors,
      gaps: counts.gaps,
      openFailed: counts.openFailed,
      firstErrors: firstErrors.splice(0),
      rss: own.rss,
      eldP99: own.eldP99,
      cpuPct,
    };
    lat.reset();
    slowLag.reset();
    return result;
  }

  /** Stop publishing, wait until every healthy subscriber has what was acknowledged (or the limit), report. */
  async function finish(): Promise<HubLoadFinal> {
    clearInterval(publishTimer);
    publishing = false;
    const start = performance.now();
    const complete = (): number => {
      let n = 0;
      for (const sub of subscribers) if (sub && !sub.slow && sub.delivered === ackedPerTopic[sub.topic] && sub.missing === 0 && sub.duplicates === 0) n++;
      return n;
    };
    while (performance.now() - start < config.drainSeconds * 1000) {
      const answered = counts.acked + counts.publishErrors === counts.published;
      if (answered && complete() === healthyTotal) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const drainSeconds = (performance.now() - start) / 1000;
    let expected = 0;
    const incomplete: string[] = [];
    for (let i = 0; i < config.connections; i++) {
      if (isSlow(i)) continue;
      const sub = subscribers[i];
      const topic = i % topics;
      expected += ackedPerTopic[topic]!;
      if (!sub) {
        if (incomplete.length < 5) incomplete.push(`subscriber ${i} (t${topic}): connection gone`);
      } else if (sub.delivered !== ackedPerTopic[topic] || sub.missing > 0 || sub.duplicates > 0) {
        if (incomplete.length < 5) incomplete.push(`subscriber ${i} (t${topic}): ${sub.delivered}/${ackedPerTopic[topic]} delivered, ${sub.missing} missing, ${sub.duplicates} duplicates`);
      }
    }
    return { ...sample(), expected, complete: complete(), healthy: healthyTotal, drainSeconds, latencyAll: latency(latAll), incomplete };
  }

  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: ToLoad) => {
    if (message.type === 'sample') {
      send({ type: 'sample', sample: sample() });
    } else if (message.type === 'finish') {
      void finish().then((final) => send({ type: 'final', sample: final }));
    } else if (message.type === 'stop') {
      stopping = true;
      clearInterval(pump);
      clearInterval(publishTimer);
      clearInterval(throttle);
      for (const sub of subscribers) sub?.socket.destroy();
      for (const publisher of publishers) publisher.socket.destroy();
      setTimeout(() => process.exit(0), 200);
    }
  });
}
