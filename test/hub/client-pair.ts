// Both hub clients behind one face, so a test runs the same case against the Node `HubClient` and
// the browser `DuplexClient` (on Node, with duplex's WHATWG `WebSocket` as its socket class): they
// share one core, and these tests pin that they behave alike.
import { WHATWGWebSocket } from '../../src/index.js';
import { HubClient, type HubClientOptions, type Json, type SubscribeResult } from '../../src/hub/index.js';
import { DuplexClient, type DuplexClientOptions, type MessageListener, type SubscribeOptions, type WebSocketConstructor } from '../../src/browser/client.js';

export type ClientKind = 'node' | 'browser';
export const CLIENT_KINDS: readonly ClientKind[] = ['node', 'browser'];

/** What the tests use of either client. */
export interface AnyClient {
  readonly kind: ClientKind;
  /** 'connected' (Node) or 'open' (browser) → 'open'; the other states as they are. */
  state(): string;
  ready(): Promise<void>;
  subscribe(topic: string, listener?: MessageListener, options?: SubscribeOptions): Promise<SubscribeResult>;
  publish(topic: string, data: Json): Promise<unknown>;
  on(event: 'state' | 'error' | 'connected' | 'gap', listener: (arg: unknown) => void): void;
  close(): Promise<void>;
}

/** Backoff fast enough for tests (both clients take `minDelay`/`maxDelay`, in their own places). */
export const FAST = { minDelay: 20, maxDelay: 100 } as const;

/** A client of `kind` for `url` (`ws://…`). */
export function makeClient(
  kind: ClientKind,
  url: string,
  options: { node?: HubClientOptions; browser?: DuplexClientOptions } = {},
): AnyClient {
  if (kind === 'node') {
    const client = new HubClient(url, { requestTimeout: 3000, ...options.node, reconnect: { ...FAST, ...options.node?.reconnect } });
    return {
      kind,
      state: () => (client.state === 'connected' ? 'open' : client.state),
      ready: () => client.connected(),
      subscribe: (topic, listener, subscribeOptions) => client.subscribe(topic, listener, subscribeOptions),
      publish: (topic, data) => client.publish(topic, data),
      on: (event, listener) => void client.on(event, listener as never),
      close: () => client.close(),
    };
  }
  const client = new DuplexClient(url, {
    requestTimeout: 3000,
    ...FAST,
    WebSocket: WHATWGWebSocket as unknown as WebSocketConstructor,
    ...options.browser,
  });
  return {
    kind,
    state: () => client.state,
    ready: () => client.whenOpen(),
    subscribe: (topic, listener, subscribeOptions) => client.subscribe(topic, listener, subscribeOptions),
    publish: (topic, data) => client.publish(topic, data),
    on: (event, listener) => void client.on(event, listener as never),
    close: async () => client.close(),
  };
}
