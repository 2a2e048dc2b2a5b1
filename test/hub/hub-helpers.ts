// Shared by the hub-*.test.ts files: a hub behind a WebSocketServer on loopback, a raw protocol
// client that records every server message, and small waits.
import { connect, WebSocketServer, type WebSocket } from '../../src/index.js';
import { Hub, HubClient, type HubClientOptions, type HubIdentity, type HubOptions } from '../../src/hub/index.js';

/** A hub served on 127.0.0.1 (ephemeral port). */
export interface HubServer<User extends HubIdentity = HubIdentity> {
  hub: Hub<User>;
  server: WebSocketServer<unknown>;
  url: string;
  close(): Promise<void>;
}

export async function startHub<User extends HubIdentity = HubIdentity>(options: HubOptions<User> = { anonymous: true }): Promise<HubServer<User>> {
  const hub = new Hub<User>(options);
  await hub.start();
  const server = new WebSocketServer<unknown>({ ...hub.routeOptions, pingInterval: 0 });
  const address = await server.listen(0);
  const url = `ws://127.0.0.1:${address.port}/hub`;
  return {
    hub,
    server,
    url,
    async close() {
      await server.close(1001, 'test over', 500);
      await hub.close();
    },
  };
}

/** A parsed server message (loosely typed, for assertions). */
export type Received = Record<string, unknown> & { type: string };

/** A protocol-level client: sends raw text, records every server message in order. */
export interface RawClient {
  ws: WebSocket<undefined>;
  messages: Received[];
  texts: string[];
  closed: Promise<[number, string]>;
  send(message: unknown): void;
  sendText(text: string): void;
  /** Wait for the first recorded message (from `from` on) matching `match`. */
  next(match: (m: Received) => boolean, timeout?: number, from?: number): Promise<Received>;
  /** Send a request with an id and wait for its reply or error. */
  request(message: Record<string, unknown>, timeout?: number): Promise<Received>;
}

let rawIds = 1_000_000;

export async function rawClient(url: string, headers: Record<string, string> = {}): Promise<RawClient> {
  const messages: Received[] = [];
  const texts: string[] = [];
  const waiters = new Set<() => void>();
  let resolveClosed!: (value: [number, string]) => void;
  const closed = new Promise<[number, string]>((resolve) => (resolveClosed = resolve));
  const ws = await connect(url, {
    headers,
    perMessageDeflate: false,
    handlers: {
      message: (_ws, data) => {
        const text = String(data);
        texts.push(text);
        messages.push(JSON.parse(text) as Received);
        for (const wake of [...waiters]) wake();
      },
      close: (_ws, code, reason) => resolveClosed([code, reason]),
    },
  });
  const client: RawClient = {
    ws,
    messages,
    texts,
    closed,
    send: (message) => void ws.send(JSON.stringify(message)),
    sendText: (text) => void ws.send(text),
    next(match, timeout = 3000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          for (let i = from; i < messages.length; i++) {
            if (match(messages[i]!)) {
              waiters.delete(wake);
              clearTimeout(timer);
              resolve(messages[i]!);
              return true;
            }
          }
          return false;
        };
        const wake = (): void => void check();
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`timed out waiting for a message; got ${JSON.stringify(messages.slice(-5))}`));
        }, timeout);
        waiters.add(wake);
        check();
      });
    },
    request(message, timeout) {
      const id = rawIds++;
      ws.send(JSON.stringify({ ...message, id }));
      return client.next((m) => m['id'] === id && (m.type === 'reply' || m.type === 'error'), timeout);
    },
  };
  return client;
}

/** A HubClient that reconnects fast (tests must not wait for real backoff). */
export function hubClient(url: string, options: HubClientOptions = {}): HubClient {
  return new HubClient(url, {
    requestTimeout: 3000,
    ...options,
    reconnect: { minDelay: 20, maxDelay: 100, ...options.reconnect },
  });
}

/** Wait until `condition()` holds (polling), or fail after `timeout` ms. */
export async function until(condition: () => boolean, timeout = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The server-side WebSocket of the most recent connection. */
export function lastServerSocket(server: WebSocketServer<unknown>): WebSocket<unknown> {
  const all = [...server.clients];
  return all[all.length - 1]!;
}
