/**
 * Optional peer dependencies (redis, nats, jose, pino, prom-client): loaded only by the part that
 * needs them, so `import 'duplex-ws'` pulls in none, and reported by name when missing, so the
 * user learns which package to install instead of reading a module-resolution trace.
 */
import { createRequire } from 'node:module';
import { DuplexError } from '../protocol/errors.js';

/** An optional peer dependency that a feature needs is not installed. */
export class MissingPeerDependencyError extends DuplexError {
  override readonly name = 'MissingPeerDependencyError';
  /** Stable code, as Node's own `ERR_*` codes. */
  declare readonly code: 'ERR_DUPLEX_MISSING_PEER';
  /** The npm packages to install. */
  readonly packageNames: readonly string[];
  constructor(
    packageNames: string | readonly string[],
    /** What needs them, e.g. `duplex-ws/hub/redis`. */
    readonly feature: string,
    options?: { cause?: unknown },
  ) {
    const names = typeof packageNames === 'string' ? [packageNames] : [...packageNames];
    const quoted = names.map((name) => `"${name}"`).join(', ');
    const what = names.length === 1 ? `the npm package ${quoted}, which is` : `the npm packages ${quoted}, which are`;
    super('ERR_DUPLEX_MISSING_PEER', `${feature} needs ${what} not installed: npm install ${names.join(' ')}`, options);
    this.packageNames = names;
  }
}

// Resolved from this file, i.e. from duplex-ws's own place in node_modules, exactly as a static
// import in any of its modules would be.
const requireFromHere = createRequire(import.meta.url);

/** True when `error` says that `name` itself (not one of its own dependencies) cannot be found. */
function isNotFound(error: unknown, name: string): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') return false;
  const firstLine = String(message).split('\n', 1)[0] ?? '';
  return firstLine.includes(`'${name}'`) || firstLine.includes(`"${name}"`);
}

/**
 * Load a CommonJS peer (redis, nats, pino, prom-client) synchronously, so the module that needs it
 * can still be `require`d from CommonJS (a top-level `await` would forbid that).
 * @throws MissingPeerDependencyError when it is not installed.
 */
export function requirePeer<Module>(name: string, feature: string): Module {
  try {
    return requireFromHere(name) as Module;
  } catch (error) {
    if (isNotFound(error, name)) throw new MissingPeerDependencyError(name, feature, { cause: error });
    throw error;
  }
}

/**
 * Check that peers are installed without loading them, so a feature fails when it is configured
 * rather than at its first use, naming every missing package at once.
 * @throws MissingPeerDependencyError when one is not installed.
 */
export function assertPeersInstalled(names: readonly string[], feature: string): void {
  const missing: string[] = [];
  let cause: unknown;
  for (const name of names) {
    try {
      requireFromHere.resolve(name);
    } catch (error) {
      if (!isNotFound(error, name)) throw error;
      missing.push(name);
      cause ??= error;
    }
  }
  if (missing.length > 0) throw new MissingPeerDependencyError(missing, feature, { cause });
}

/**
 * Load an ES-module peer (jose) on first use.
 * @throws MissingPeerDependencyError when it is not installed.
 */
export async function importPeer<Module>(name: string, feature: string): Promise<Module> {
  try {
    return (await import(name)) as Module;
  } catch (error) {
    if (isNotFound(error, name)) throw new MissingPeerDependencyError(name, feature, { cause: error });
    throw error;
  }
}
