// Shared by the consumer tests (Socket.IO, @fastify/websocket, graphql-ws): the two
// implementations of the `ws` API every scenario runs against, a way to load a CommonJS
// consumer with its `require('ws')` answered by either one, and bounded waits.
//
// The real `ws` runs first in each file: it proves the scenario itself is right, so a failure
// only on the duplex run is a finding about duplex-ws/ws, not about the test.
import Module, { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import * as realWs from 'ws';

/** The shape both implementations export: the `ws` package's module (as its own types describe it). */
export type WsModule = typeof realWs;

/** One implementation of the `ws` API under test. */
export interface Impl {
  /** 'ws' (the npm package, the baseline) or 'duplex' (duplex-ws/ws). */
  readonly name: 'ws' | 'duplex';
  /** The ESM module (`import * as mod from '<specifier>'`). */
  readonly mod: WsModule;
  /** Its WebSocket class (the default export). */
  readonly WebSocket: WsModule['WebSocket'];
  /** Its WebSocketServer class. */
  readonly WebSocketServer: WsModule['WebSocketServer'];
  /** The file a CommonJS `require` of its specifier resolves to (what `require('ws')` must load). */
  readonly cjsPath: string;
}

const require = createRequire(import.meta.url);

/** The specifier a user writes for duplex's module: resolved by package self-reference (package.json "exports"). */
export const DUPLEX_SPECIFIER = 'duplex-ws/ws';

function impl(name: Impl['name'], mod: WsModule, cjsPath: string): Impl {
  return { name, mod, WebSocket: mod.WebSocket, WebSocketServer: mod.WebSocketServer, cjsPath };
}

/** The npm `ws` package. */
export const WS: Impl = impl('ws', realWs, require.resolve('ws'));

/**
 * duplex-ws/ws, loaded the way a user would: `import('duplex-ws/ws')` for ESM and
 * `require.resolve('duplex-ws/ws')` for CommonJS consumers. A load failure is kept (not
 * thrown here) so the baseline still runs and every duplex test fails with the reason.
 */
export const DUPLEX: Impl | Error = await loadDuplex();

async function loadDuplex(): Promise<Impl | Error> {
  try {
    // A variable specifier: the module's own types are not needed here (the scenarios are
    // written against ws's API), and this file compiles before the module exists.
    const specifier: string = DUPLEX_SPECIFIER;
    const mod = (await import(specifier)) as WsModule;
    const cjsPath = require.resolve(specifier);
    // A CommonJS consumer and an ESM one must share the classes, or `instanceof` (and a
    // server's `WebSocket` option) would differ between them.
    const fromRequire = require(cjsPath) as WsModule['WebSocket'];
    if (fromRequire !== mod.WebSocket) throw new Error(`require('${specifier}') is not the class that import() gives`);
    return impl('duplex', mod, cjsPath);
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** The implementations every scenario runs against, baseline first. */
export const IMPL_NAMES: ReadonlyArray<Impl['name']> = ['ws', 'duplex'];

/** The implementation called `name`; for 'duplex', throws the reason it could not be loaded (never skipped). */
export function useImpl(name: Impl['name']): Impl {
  if (name === 'ws') return WS;
  if (DUPLEX instanceof Error) throw new Error(`${DUPLEX_SPECIFIER} could not be loaded: ${DUPLEX.message}`, { cause: DUPLEX });
  return DUPLEX;
}

type Load = (request: string, parent: { filename?: string | null } | undefined, isMain: boolean) => unknown;
interface ModuleInternals {
  _load: Load;
}

/**
 * Require the CommonJS package `consumer` in a private copy whose own `require('ws')` (and
 * that of files inside the package) returns `implementation`'s CommonJS entry — what an npm
 * `overrides` entry for `ws` does for a user. On Node 20 `module.register` hooks do not reach
 * `require`, so this wraps `Module._load` for the load only and restores it. (Not
 * `Module._resolveFilename`: the loader caches a resolution per parent directory and request,
 * so once the real ws was resolved from the package, that hook is never asked again.) The
 * copy gets a fresh require-cache entry; the normal one is put back intact.
 */
export function requireWithWs<T>(consumer: string, implementation: Impl): T {
  if (implementation === WS) return require(consumer) as T;
  const main = require.resolve(consumer);
  const packageDir = dirname(require.resolve(`${consumer}/package.json`)) + sep;
  const internals = Module as unknown as ModuleInternals;
  const original = internals._load;
  const cached = require.cache[main];
  internals._load = function (this: unknown, request, parent, isMain) {
    // Only the consumer's own files are redirected: its other dependencies (and anything
    // else loading meanwhile) still get the real ws.
    if (request === 'ws' && parent?.filename?.startsWith(packageDir)) return original.call(this, implementation.cjsPath, parent, isMain);
    return original.call(this, request, parent, isMain);
  };
  try {
    delete require.cache[main];
    return require(main) as T;
  } finally {
    internals._load = original;
    if (cached) require.cache[main] = cached;
    else delete require.cache[main];
  }
}

/** Settle with `promise`, or reject after `ms` milliseconds naming what was awaited. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** What `next` needs of an emitter: Node's EventEmitter and socket.io's component-emitter both have it. */
interface Listenable {
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

/**
 * The arguments of the next `event` of `emitter` (a Node EventEmitter or socket.io's
 * emitter), within `ms`; an 'error' meanwhile rejects, unless 'error' is the event awaited.
 */
export function next<A extends unknown[] = unknown[]>(emitter: object, event: string, ms = 3000): Promise<A> {
  const target = emitter as Listenable;
  return within(
    new Promise<A>((resolve, reject) => {
      const onEvent = (...args: unknown[]): void => {
        if (event !== 'error') target.off('error', onError);
        resolve(args as A);
      };
      const onError = (error: unknown): void => {
        target.off(event, onEvent);
        reject(error instanceof Error ? error : new Error(String(error)));
      };
      target.once(event, onEvent);
      if (event !== 'error') target.once('error', onError);
    }),
    ms,
    `'${event}'`,
  );
}

/** Poll `predicate` every few milliseconds until it holds, for at most `ms`. */
export async function until(predicate: () => boolean, ms = 3000, what = 'a condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Deterministic bytes (not all zeros, so compression and framing mistakes show). */
export function pattern(length: number, seed = 1): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    // xorshift32: cheap, reproducible, incompressible enough to keep frames large
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}
