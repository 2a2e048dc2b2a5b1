/**
 * The public types of the hub clients (`HubClient`, `DuplexClient`): what a subscriber is given,
 * the states and events every client has, where the core writes. Types only: nothing of it is
 * loaded at run time, by Node or by a browser.
 */
import type { Json, PresenceMember } from './broker.js';
import type { ConnectResult, GapReason, StreamPosition } from './wire.js';

/** What a subscriber learns about each publication. */
export interface MessageMeta {
  /** The topic it was published to. */
  readonly topic: string;
  /** Its offset in `epoch`; remembered per topic, recovery after a reconnection starts after it. */
  readonly offset: number;
  /** The epoch of the topic's history it belongs to. */
  readonly epoch: string;
  /** True if it came from history (on subscribe with `from`, or after a reconnection) rather than live. */
  readonly recovered: boolean;
}

/** Called for each publication of a subscribed topic, in offset order. */
export type MessageListener = (data: Json, meta: MessageMeta) => void;

/** Publications were lost for this client for good (`offset` is the position after the loss). */
export interface GapInfo {
  /** The topic that lost publications. */
  readonly topic: string;
  /** 'epoch changed' (the broker lost the topic's history) or 'too old' (history no longer reaches back). */
  readonly reason: GapReason;
  /** The epoch the client continues in. */
  readonly epoch: string;
  /** The offset the client continues after: what came before it and was not delivered is gone. */
  readonly offset: number;
}

/** Where a client is: `Open` is its name for connected and authenticated ('connected', 'open'). */
export type ClientState<Open extends string> = 'connecting' | Open | 'reconnecting' | 'closed';

/** The events every hub client emits (a client may add its own) and their listeners' arguments. */
export interface CoreEvents<State extends string> {
  /** The state changed. */
  state: [state: State];
  /** Connected and authenticated (first time and after each reconnection); subscriptions are being restored. */
  connected: [info: ConnectResult];
  /** Any publication of any topic (after its topic's listener), including topics subscribed by server code. */
  message: [data: Json, meta: MessageMeta];
  /** A message to this connection, its user, or everyone (`sendToConnection`/`sendToUser`/`broadcast`). */
  push: [data: Json];
  /** A connection joined a subscribed topic's presence (not sent for this client's own join). */
  join: [topic: string, member: PresenceMember];
  /** A connection left a subscribed topic's presence (also when its node died; not sent for this client's own leave). */
  leave: [topic: string, member: PresenceMember];
  /** Publications of a topic were lost (history too short, or the broker lost it). */
  gap: [info: GapInfo];
  /** An error not tied to a request (a server error without id, a failed connect, a listener that threw). */
  error: [error: Error];
}

/** Where the core writes: the current connection of the client's transport. */
export interface HubTransport {
  /** Send a text message on the open connection. */
  send(text: string): void;
  /** Close for good (code 1000), no reconnection. */
  close(): void;
  /** Drop the current connection so that the transport reconnects (e.g. the token could not be had). */
  drop(): void;
}

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /** Start from this position: publications after it are delivered from history first (`recovered: true`). */
  from?: StreamPosition;
  /** Recover what was missed after a reconnection (default true; false for ephemeral topics such as typing indicators). */
  recover?: boolean;
}
