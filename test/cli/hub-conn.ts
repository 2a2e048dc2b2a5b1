// A hub client over a raw WebSocket for the multi-process tests (test/cli/serve-workers.test.ts,
// test/hub/docs-workers.test.ts): it learns from the `connect` reply which hub node (worker) it
// landed on, sends requests by id, and keeps every message for `next`.
import { performance } from 'node:perf_hooks';

import { connect } from '../../src/node/client.js';
import type { WebSocket } from '../../src/node/websocket.js';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll `check` every 10 ms until it holds; fail naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export type Message = Record<string, unknown>;

/** A hub client over a raw WebSocket: requests by id, and every message kept for `next`. */
export class HubConn {
  readonly messages: Message[] = [];
  node = '';
  connId = '';
  closeCode: number | undefined;
  #nextId = 1;

  private constructor(readonly ws: WebSocket) {}

  static async open(wsUrl: string, name: string): Promise<HubConn> {
    // Messages may arrive before `connect` resolves: kept until the HubConn exists.
    const holder: { conn?: HubConn; early: Message[] } = { early: [] };
    const ws = await connect(`${wsUrl}?name=${encodeURIComponent(name)}`, {
      handlers: {
        message(_ws, data) {
          (holder.conn?.messages ?? holder.early).push(JSON.parse(String(data)) as Message);
        },
        close(_ws, code) {
          if (holder.conn !== undefined) holder.conn.closeCode = code;
        },
      },
    });
    const conn = new HubConn(ws);
    holder.conn = conn;
    conn.messages.push(...holder.early);
    const result = (await conn.request('connect', {})) as { node: string; connId: string };
    conn.node = result.node;
    conn.connId = result.connId;
    return conn;
  }

  /** Send a request and resolve with its reply's result (reject on an error reply). */
  async request(type: string, fields: Message): Promise<unknown> {
    const id = this.#nextId++;
    this.ws.send(JSON.stringify({ type, id, ...fields }));
    const reply = await this.next(`the reply to ${type} #${id}`, (m) => m.id === id);
    if (reply.type !== 'reply') throw new Error(`${type}: ${JSON.stringify(reply)}`);
    return reply.result;
  }

  /** The first message (kept or to come) matching `match`. */
  async next(what: string, match: (m: Message) => boolean, timeoutMs = 5000): Promise<Message> {
    let found: Message | undefined;
    await until(what, () => (found = this.messages.find(match)) !== undefined, timeoutMs);
    return found!;
  }
}

