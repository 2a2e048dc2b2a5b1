// Module hooks for test/package/lean.test.ts: report every ES module URL the loader resolves to the
// port the test process registered them with.
import type { MessagePort } from 'node:worker_threads';

let port: MessagePort | undefined;

/** Called by `module.register` with the port to report on. */
export function initialize(data: { port: MessagePort }): void {
  port = data.port;
}

type NextResolve = (specifier: string, context: unknown) => Promise<{ url: string }>;

/** Resolve as usual, and report the URL. */
export async function resolve(specifier: string, context: unknown, nextResolve: NextResolve): Promise<{ url: string }> {
  const result = await nextResolve(specifier, context);
  port?.postMessage(result.url);
  return result;
}
