/**
 * A hub on every core: {@link runWorkers} runs your program's server in N worker processes on
 * one port (`node:cluster`), with the primary process as their broker ({@link IpcBroker} in
 * the workers, {@link IpcBrokerPrimary} in the primary) unless they use Redis or NATS. It is
 * what `duplex serve --workers N` runs; docs/workers.md has the figures behind its choices.
 *
 * ```ts
 * import { WebSocketServer } from 'duplex-ws';
 * import { Hub } from 'duplex-ws/hub';
 * import { IpcBroker, runWorkers } from 'duplex-ws/hub/workers';
 *
 * await runWorkers({
 *   workers: 'auto', // one per core
 *   async start() {  // runs in each worker
 *     const hub = new Hub({ broker: new IpcBroker(), anonymous: true });
 *     await hub.start();
 *     const server = new WebSocketServer();
 *     server.route('/ws', hub.routeOptions);
 *     await server.listen(8080); // the same port in every worker
 *     return { close: async () => { await server.close(); await hub.close(); } };
 *   },
 * });
 * ```
 *
 * The same program runs in the primary and in each worker (node:cluster re-runs the main
 * script): in the primary `runWorkers` starts the workers and keeps them running; in a worker
 * it calls `start`.
 * @module duplex-ws/hub/workers
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';

import { backoffDelay } from '../protocol/backoff.js';
import { DuplexError } from '../protocol/errors.js';
import { silentLogger, type Logger } from '../node/logger.js';
import type { Json } from './broker.js';
import { IpcBroker, IpcBrokerError, IpcBrokerPrimary, type IpcBrokerOptions, type IpcBrokerPrimaryOptions, type IpcPort } from './brokers/ipc.js';

export { IpcBroker, IpcBrokerError, IpcBrokerPrimary, type IpcBrokerOptions, type IpcBrokerPrimaryOptions, type IpcPort };

/** The defaults of {@link runWorkers}, each with its unit and its reason. */
export const WORKERS_DEFAULTS = Object.freeze({
  /**
   * ms a worker has to stop after the primary asked it to (its clients closed with 1001, its
   * hub and server closed) before it is killed: a server's closing handshakes wait up to 5 s,
   * its hub's leaving up to 1 s more.
   */
  shutdownTimeout: 10_000,
  /** ms before the first restart of a worker that died: at once, nearly, so its share of the clients can reconnect. */
  restartMinDelay: 100,
  /** ms: the longest wait between restarts of a worker that keeps dying (a crash loop must not spin a core). */
  restartMaxDelay: 10_000,
  /** The restart delay doubles with each death of a worker that had not lived `stableAfter`. */
  restartFactor: 2,
  /** ms a worker must have run for its death not to count as a crash loop: the next restart is quick again. */
  stableAfter: 10_000,
  /**
   * How connections are spread over the workers: `'rr'`, the primary accepts and hands them out
   * in turn (node:cluster's default on Linux), or `'none'`, every worker accepts on the shared
   * socket and the kernel decides. Round robin keeps the shares even; the kernel's can be far
   * from even (docs/workers.md has the figures). `NODE_CLUSTER_SCHED_POLICY`, when set, wins
   * over this default, the `scheduling` option over both.
   */
  scheduling: 'rr' as WorkerScheduling,
});

/** How connections are spread over the workers (see `WORKERS_DEFAULTS.scheduling`). */
export type WorkerScheduling = 'rr' | 'none';

/** What a worker's `start` is told. */
export interface WorkerContext {
  /**
   * Which worker this is, 1 … `workers`. A worker that replaces a dead one takes its slot, so
   * work that must run once (a feed, a scheduled job) can go to slot 1.
   */
  readonly slot: number;
  /** How many workers run. */
  readonly workers: number;
}

/** What a worker's `start` resolves with: a running service the worker can stop. */
export interface WorkerService {
  /** Stop gracefully (close the clients with 1001, the hub, the server); the worker exits once it resolves. */
  close(): Promise<void>;
  /** Told to the primary once started (the primary logs it; `WorkersPrimary.workers` lists it), e.g. the URL or the hub's node id. */
  readonly info?: Json;
}

/** Options of {@link runWorkers}. */
export interface RunWorkersOptions {
  /** How many worker processes: a positive integer, or `'auto'` for one per core (`os.availableParallelism()`). */
  readonly workers: number | 'auto';
  /** Runs in each worker: start the server (listening on the shared port) and resolve with it. A rejection makes the worker exit with 1. */
  start(context: WorkerContext): Promise<WorkerService>;
  /** Where the primary logs workers starting, dying and being replaced, and a worker that could not start. Default: silent. */
  readonly logger?: Logger;
  /** How connections are spread over the workers. Default `WORKERS_DEFAULTS.scheduling` (or `NODE_CLUSTER_SCHED_POLICY`). */
  readonly scheduling?: WorkerScheduling;
  /** Options of the primary's {@link IpcBrokerPrimary}; `false` runs none (the workers use Redis or NATS). Default `{}`. */
  readonly ipcBroker?: IpcBrokerPrimaryOptions | false;
  /** ms a worker has to stop before it is killed. Default 10 000. */
  readonly shutdownTimeout?: number;
  /** The restart delays of a worker that died: first `minDelay` ms, then × `factor` per quick death, up to `maxDelay`. */
  readonly restart?: {
    /** ms before the first restart. Default 100. */
    readonly minDelay?: number;
    /** ms: the longest delay. Default 10 000. */
    readonly maxDelay?: number;
    /** How much longer each next delay is while the worker keeps dying. Default 2. */
    readonly factor?: number;
  };
  /** ms a worker must have run for its death not to count as a crash loop. Default 10 000. */
  readonly stableAfter?: number;
  /**
   * Stop gracefully on SIGINT and SIGTERM, in the primary (every worker is asked to stop; the
   * primary exits once the last did) and in each worker; a second signal stops at once.
   * Default true.
   */
  readonly handleSignals?: boolean;
}

/** A worker as the primary sees it. */
export interface WorkerSummary {
  /** Its slot (see {@link WorkerContext.slot}). */
  readonly slot: number;
  /** Its process id. */
  readonly pid: number;
  /** What its service reported once started. */
  readonly info: Json | undefined;
}

/** `runWorkers` in the primary: every worker started. */
export interface WorkersPrimary {
  /** Where this is. */
  readonly role: 'primary';
  /** The workers running and started now, by slot. */
  readonly workers: readonly WorkerSummary[];
  /** How many workers died and were replaced so far. */
  readonly restarts: number;
  /** The primary side of the IPC broker (undefined with `ipcBroker: false`). */
  readonly ipcBroker: IpcBrokerPrimary | undefined;
  /** Resolves once every worker has stopped after `close()` (or a signal). */
  readonly closed: Promise<void>;
  /** Ask every worker to stop, kill those still running after `shutdownTimeout`; resolves once all are gone. */
  close(): Promise<void>;
}

/** `runWorkers` in a worker: its service is running. */
export interface WorkersWorker {
  /** Where this is. */
  readonly role: 'worker';
  /** This worker's slot and the number of workers. */
  readonly context: WorkerContext;
  /** What `start` resolved with. */
  readonly service: WorkerService;
}

/** `runWorkers` could not start its workers (one exited before it was started), or was used where it cannot run. */
export class WorkersError extends DuplexError {
  override readonly name = 'WorkersError';
  declare readonly code: 'ERR_WORKERS';
  /**
   * A failure of `runWorkers`; its code is always `ERR_WORKERS`.
   * @param message What failed, for people and logs.
   * @param exitCode The exit code of the worker that failed, if one did.
   */
  constructor(
    message: string,
    /** The exit code of the worker that failed, if one did (e.g. 2 for a configuration error of `duplex serve`). */
    readonly exitCode?: number,
  ) {
    super('ERR_WORKERS', message);
  }
}

/** The environment variables a worker learns its place from. */
const SLOT_ENV = 'DUPLEX_WORKER_SLOT';
const COUNT_ENV = 'DUPLEX_WORKER_COUNT';
/** The key of the primary's and the workers' own messages (the IPC broker has its own envelope). */
const CONTROL = 'duplexWorkers';

type Control = { readonly [CONTROL]: 'ready'; readonly info?: Json } | { readonly [CONTROL]: 'shutdown' };

function control(message: unknown): Control | undefined {
  return typeof message === 'object' && message !== null && CONTROL in message ? (message as Control) : undefined;
}

/** The number of workers `workers` asks for. @throws RangeError unless it is a positive integer or 'auto'. */
export function workerCount(workers: number | 'auto'): number {
  if (workers === 'auto') return availableParallelism();
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be a positive integer or 'auto', got ${String(workers)}`);
  return workers;
}

/**
 * Run `start` in `workers` processes on one port. In the primary it resolves once every worker
 * is started ({@link WorkersPrimary}), and keeps them running: a worker that dies is replaced in
 * its slot after a delay that grows while it keeps dying, and its connections' presence is
 * removed at once (by the IPC broker). In a worker it resolves once `start` did
 * ({@link WorkersWorker}); the worker exits when asked to stop.
 * @throws WorkersError in the primary when a worker exits before it was started (the others are stopped); in a cluster worker that `runWorkers` did not start.
 */
export async function runWorkers(options: RunWorkersOptions): Promise<WorkersPrimary | WorkersWorker> {
  const count = workerCount(options.workers);
  return cluster.isPrimary ? runPrimary(options, count) : runWorker(options);
}

/** One worker's place, kept across its replacements. */
interface Slot {
  readonly slot: number;
  worker: Worker | undefined;
  pid: number;
  startedAt: number;
  ready: boolean;
  info: Json | undefined;
  /** Deaths in a row of workers that had not lived `stableAfter`. */
  quickDeaths: number;
  restart: NodeJS.Timeout | undefined;
}

async function runPrimary(options: RunWorkersOptions, count: number): Promise<WorkersPrimary> {
  const logger = options.logger ?? silentLogger;
  const shutdownTimeout = options.shutdownTimeout ?? WORKERS_DEFAULTS.shutdownTimeout;
  const stableAfter = options.stableAfter ?? WORKERS_DEFAULTS.stableAfter;
  const backoff = {
    minDelay: options.restart?.minDelay ?? WORKERS_DEFAULTS.restartMinDelay,
    maxDelay: options.restart?.maxDelay ?? WORKERS_DEFAULTS.restartMaxDelay,
    factor: options.restart?.factor ?? WORKERS_DEFAULTS.restartFactor,
    jitter: false,
  };
  // Before the first fork: node:cluster reads it then.
  const scheduling = options.scheduling ?? (process.env.NODE_CLUSTER_SCHED_POLICY === undefined ? WORKERS_DEFAULTS.scheduling : undefined);
  if (scheduling !== undefined) cluster.schedulingPolicy = scheduling === 'rr' ? cluster.SCHED_RR : cluster.SCHED_NONE;
  const ipc = options.ipcBroker === false ? undefined : new IpcBrokerPrimary(options.ipcBroker);

  const slots: Slot[] = Array.from({ length: count }, (_, i) => ({ slot: i + 1, worker: undefined, pid: 0, startedAt: 0, ready: false, info: undefined, quickDeaths: 0, restart: undefined }));
  let started = false;
  let stopping = false;
  let restarts = 0;
  let settleStart: ((error?: WorkersError) => void) | undefined;
  const allStarted = new Promise<void>((resolve, reject) => {
    settleStart = (error) => (error === undefined ? resolve() : reject(error));
  });
  let allGone: (() => void) | undefined;
  const gone = new Promise<void>((resolve) => (allGone = resolve));
  const running = (): Slot[] => slots.filter((s) => s.worker !== undefined);

  const fork = (slot: Slot): void => {
    slot.restart = undefined;
    const worker = cluster.fork({ [SLOT_ENV]: String(slot.slot), [COUNT_ENV]: String(count) });
    slot.worker = worker;
    slot.pid = worker.process.pid ?? 0;
    slot.startedAt = performance.now();
    slot.ready = false;
    slot.info = undefined;
    const detach = ipc?.attach(worker.process as unknown as IpcPort);
    worker.on('message', (message: unknown) => {
      const said = control(message);
      if (said?.[CONTROL] !== 'ready') return;
      slot.ready = true;
      slot.info = said.info;
      logger.info({ worker: slot.slot, pid: slot.pid, ...(isObject(said.info) ? said.info : {}) }, 'worker started');
      if (!started && slots.every((s) => s.ready)) {
        started = true;
        settleStart?.();
      }
      // Asked to stop while it was starting: it is told now.
      if (stopping) send(worker, { [CONTROL]: 'shutdown' });
    });
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      void (async () => {
        // The IPC broker has already closed the worker's brokers when its channel closed; this
        // waits for it and says whether it had any (its connections' presence is gone with them).
        const brokers = detach === undefined ? 0 : await detach();
        if (slot.worker === worker) slot.worker = undefined;
        const how = signal !== null ? { signal } : { code };
        if (stopping) {
          if (running().length === 0) allGone?.();
          return;
        }
        if (!started) {
          logger.error({ worker: slot.slot, pid: slot.pid, ...how }, 'worker exited before it was started: stopping the others');
          settleStart?.(new WorkersError(`worker ${slot.slot} (pid ${slot.pid}) exited with ${signal ?? `code ${code}`} before it was started`, code ?? undefined));
          return;
        }
        const lived = performance.now() - slot.startedAt;
        slot.quickDeaths = lived >= stableAfter ? 1 : slot.quickDeaths + 1;
        const delay = backoffDelay(slot.quickDeaths, backoff);
        restarts++;
        const presence = brokers > 0 ? "its connections' presence cleared" : "its connections' presence goes when the broker's presence TTL runs out";
        logger.warn({ worker: slot.slot, pid: slot.pid, ...how, restartIn: delay }, `worker died: ${presence}; restarting it`);
        slot.restart = setTimeout(() => fork(slot), delay);
      })();
    });
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      stopping = true;
      for (const slot of slots) {
        clearTimeout(slot.restart);
        slot.restart = undefined;
      }
      const live = running();
      for (const slot of live) send(slot.worker!, { [CONTROL]: 'shutdown' });
      if (live.length === 0) allGone?.();
      const kill = setTimeout(() => {
        for (const slot of running()) {
          logger.warn({ worker: slot.slot, pid: slot.pid, after: shutdownTimeout }, 'worker did not stop in time: killing it');
          slot.worker!.process.kill('SIGKILL');
        }
      }, shutdownTimeout);
      await gone;
      clearTimeout(kill);
      await ipc?.close();
      removeSignals();
      logger.info({ workers: count }, 'every worker stopped');
    })();
    return closing;
  };

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (++signals > 1) {
      // A second signal while stopping: now.
      for (const slot of running()) slot.worker!.process.kill('SIGKILL');
      process.exit(1);
    }
    logger.info({ signal }, 'signal received: stopping every worker (clients get 1001)');
    void close();
  };
  const removeSignals = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  if (options.handleSignals !== false) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  for (const slot of slots) fork(slot);
  try {
    await allStarted;
  } catch (error) {
    await close();
    throw error;
  }
  return {
    role: 'primary',
    get workers() {
      return slots.filter((s) => s.worker !== undefined && s.ready).map((s) => ({ slot: s.slot, pid: s.pid, info: s.info }));
    },
    get restarts() {
      return restarts;
    },
    ipcBroker: ipc,
    closed: allStarted.then(() => gone).then(() => closing),
    close,
  };
}

function send(worker: Worker, message: Control): void {
  if (worker.isConnected()) worker.send(message, undefined, () => {});
}

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function runWorker(options: RunWorkersOptions): Promise<WorkersWorker> {
  const slot = Number(process.env[SLOT_ENV]);
  const workers = Number(process.env[COUNT_ENV]);
  if (!Number.isInteger(slot) || slot < 1 || process.send === undefined) {
    throw new WorkersError(`runWorkers: this cluster worker was not started by runWorkers (no ${SLOT_ENV})`);
  }
  const logger = options.logger ?? silentLogger;
  const context: WorkerContext = { slot, workers };
  let service: WorkerService | undefined;
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    if (service !== undefined) void exitAfter(service, logger, slot);
  };
  process.on('message', (message: unknown) => {
    if (control(message)?.[CONTROL] === 'shutdown') stop();
  });
  if (options.handleSignals !== false) {
    // Ctrl+C reaches every process of the group: each worker stops by itself too.
    let signals = 0;
    const onSignal = (): void => {
      if (++signals > 1) process.exit(1);
      stop();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  try {
    service = await options.start(context);
  } catch (error) {
    logger.error({ worker: slot, err: error instanceof Error ? error.message : String(error) }, 'worker could not start');
    process.exit(1);
  }
  process.send({ [CONTROL]: 'ready', ...(service.info !== undefined ? { info: service.info } : {}) });
  if (stopping) void exitAfter(service, logger, slot);
  return { role: 'worker', context, service };
}

/** Close the service, then end the worker (0 once closed, 1 if closing failed). */
async function exitAfter(service: WorkerService, logger: Logger, slot: number): Promise<void> {
  let code = 0;
  try {
    await service.close();
  } catch (error) {
    logger.error({ worker: slot, err: error instanceof Error ? error.message : String(error) }, 'worker could not stop cleanly');
    code = 1;
  }
  process.exit(code);
}
