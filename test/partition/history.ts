// What a client of the partition workload writes to its log (one JSON object per line, in the
// order the client saw things), and how the checker reads it back. The log is the history in
// Jepsen's sense: the checker judges the run from the logs alone.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A client's role: it publishes, or it subscribes (pinned to one node, or roaming between both). */
export type Role = 'publisher' | 'subscriber' | 'roamer';

/** One line of a client's log; `t` is Date.now() when it happened. */
export type LogEvent =
  | { readonly t: number; readonly ev: 'client'; readonly name: string; readonly role: Role; readonly via: string }
  | { readonly t: number; readonly ev: 'connected'; readonly node: string; readonly connId: string }
  | { readonly t: number; readonly ev: 'disconnected' }
  | { readonly t: number; readonly ev: 'subscribed'; readonly topic: string; readonly epoch: string; readonly offset: number }
  | { readonly t: number; readonly ev: 'msg'; readonly topic: string; readonly key: string; readonly epoch: string; readonly offset: number; readonly recovered: boolean }
  | { readonly t: number; readonly ev: 'gap'; readonly topic: string; readonly epoch: string; readonly offset: number; readonly reason: string }
  | { readonly t: number; readonly ev: 'send'; readonly topic: string; readonly key: string }
  | { readonly t: number; readonly ev: 'ack'; readonly topic: string; readonly key: string; readonly epoch: string; readonly offset: number }
  | { readonly t: number; readonly ev: 'fail'; readonly topic: string; readonly key: string; readonly code: string }
  | { readonly t: number; readonly ev: 'error'; readonly code: string; readonly message: string }
  | { readonly t: number; readonly ev: 'final'; readonly positions: Readonly<Record<string, { readonly epoch: string; readonly offset: number } | null>> };

/** One client's log, parsed. */
export interface ClientLog {
  readonly name: string;
  readonly role: Role;
  /** Which node it connects to: 'a', 'b', or 'roam' (a local balancer alternating between both). */
  readonly via: string;
  readonly events: readonly LogEvent[];
}

/** Parse one log's text (JSONL). A torn last line (the client was killed mid-write) is left out. */
export function parseLog(text: string): ClientLog {
  const events: LogEvent[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      events.push(JSON.parse(line) as LogEvent);
    } catch {
      // torn line
    }
  }
  const head = events[0];
  if (head === undefined || head.ev !== 'client') throw new Error('a client log starts with its "client" line');
  return { name: head.name, role: head.role, via: head.via, events };
}

/** Every `*.jsonl` log in `dir`. */
export function readLogs(dir: string): ClientLog[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .map((f) => parseLog(readFileSync(join(dir, f), 'utf8')));
}
