// The gateway tests' backend: test/gateway/backend.py run with Debian's python3 (standard
// library only), as a team's own backend would run beside `duplex serve`.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startChild, type Child } from '../hub/cluster-helpers.js';

/** Debian's python3: the backend must not depend on anything outside the standard library. */
export const PYTHON = process.env.PYTHON3_PATH ?? '/usr/bin/python3';
/** backend.py, next to the compiled test (copied by the build, or read from the source tree). */
const SCRIPT = [new URL('./backend.py', import.meta.url), new URL('../../../test/gateway/backend.py', import.meta.url)].map((u) => fileURLToPath(u)).find((p) => existsSync(p))!;

/** A hook call the backend saw. */
export interface HookCall {
  readonly hook: string;
  readonly body: Record<string, unknown>;
  readonly cookie: string | null;
}

/** The running backend: its base URL, the hook URLs for `duplex serve`, and its control calls. */
export interface PythonBackend {
  readonly url: string;
  readonly child: Child;
  /** The hook URLs, by kind. */
  readonly hooks: { readonly connect: string; readonly subscribe: string; readonly rpc: string };
  /** Point the backend at a gateway's server API. */
  configure(api: string, key: string): Promise<void>;
  /** Have the backend call the server API: the status and body it got. */
  api(method: string, body: unknown, key?: string): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Every hook call so far. */
  calls(): Promise<HookCall[]>;
  stop(): Promise<void>;
}

async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(response.status, 200, `${url}: ${response.status}`);
  return (await response.json()) as Record<string, unknown>;
}

/** Start backend.py and wait for its `ready <port>` line. */
export async function startPythonBackend(): Promise<PythonBackend> {
  assert.ok(existsSync(PYTHON), `no python3 at ${PYTHON}: apt-get install python3`);
  const child = startChild('python backend', PYTHON, [SCRIPT]);
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`backend.py not ready:\n${child.output()}`)), 10_000);
    child.process.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      const match = /ready (\d+)/.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    void child.exited.then((code) => reject(new Error(`backend.py exited (${String(code)}):\n${child.output()}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    child,
    hooks: { connect: `${url}/duplex/connect`, subscribe: `${url}/duplex/subscribe`, rpc: `${url}/duplex/rpc` },
    configure: async (api, key) => void (await post(`${url}/control/configure`, { api, key })),
    api: async (method, body, key) => (await post(`${url}/control/api`, { method, body, ...(key !== undefined ? { key } : {}) })) as { status: number; body: Record<string, unknown> },
    calls: async () => ((await post(`${url}/control/calls`, {})) as { calls: HookCall[] }).calls,
    stop: () => child.stop('SIGTERM', 3000),
  };
}
