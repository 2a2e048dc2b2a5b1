/**
 * What user code hooks into a connection: the handler object (shared by every connection of a
 * route, uWebSockets' "behaviour", so a connection costs no closures), the class style on top
 * of it (`WebSocketHandler`, `fromClass`), and the containment of a handler that fails — it
 * must cost its own connection (1011), never the process or the other connections.
 */
import { toError } from '../protocol/errors.js';
import type { Logger } from './logger.js';
import type { SendOptions, WebSocket } from './websocket.js';

/** A received message: a string for text (unless `textAsBuffer`), a Buffer for binary. */
export type MessageData = string | Buffer;

/** What a handler may return: nothing, or a promise whose rejection is handled like a throw. */
export type HandlerResult = void | Promise<void>;

/**
 * Callbacks for a connection's life, shared by every connection of a route: each gets the
 * connection first. A callback that throws, or returns a promise that rejects, is logged,
 * reported to `error`, and the connection is closed with 1011; the process keeps running.
 */
export interface WebSocketHandlers<Data = unknown> {
  /** The connection is open (handshake done). */
  open?(ws: WebSocket<Data>): HandlerResult;
  /**
   * A complete message arrived. Without this callback, messages wait to be read by async
   * iteration (`for await (const message of ws)`).
   */
  message?(ws: WebSocket<Data>, data: MessageData, isBinary: boolean): HandlerResult;
  /** A ping arrived (the pong is sent automatically). */
  ping?(ws: WebSocket<Data>, data: Buffer): void;
  /** A pong arrived. */
  pong?(ws: WebSocket<Data>, data: Buffer): void;
  /** The send buffer fell below the low watermark after `send()` returned false. */
  drain?(ws: WebSocket<Data>): void;
  /** Something went wrong (protocol violation by the peer, socket error, a handler threw). */
  error?(ws: WebSocket<Data>, error: Error): void;
  /** The connection is closed; `code` is the peer's close code, 1005 if none, 1006 if no close frame came. */
  close?(ws: WebSocket<Data>, code: number, reason: string): void;
}

// ---- failure containment --------------------------------------------------------------------

/** @internal The name of a callback, for log lines. */
export type HandlerName = keyof WebSocketHandlers;

/** @internal A callback as `invokeHandler` calls it: the connection, then up to two arguments. */
export type HandlerCallback<Data, A, B> = (ws: WebSocket<Data>, a: A, b: B) => HandlerResult;

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as Promise<unknown> | undefined)?.then === 'function';
}

/**
 * @internal Call a user callback with the connection first. A throw or a rejected promise is
 * contained: it goes to `ws.handlerFailed` (which reports it and closes that connection).
 */
export function invokeHandler<Data, A, B>(ws: WebSocket<Data>, name: HandlerName, fn: HandlerCallback<Data, A, B> | undefined, a: A, b: B): void {
  if (!fn) return;
  try {
    const result = fn(ws, a, b);
    if (isPromise(result)) result.catch((error: unknown) => ws.handlerFailed(name, error));
  } catch (error) {
    ws.handlerFailed(name, error);
  }
}

/**
 * @internal Report a failed callback: log it, and tell the `error` callback (unless that is the
 * one that failed; an `error` callback that fails is not called again).
 */
export function reportHandlerFailure<Data>(ws: WebSocket<Data>, handlers: WebSocketHandlers<Data>, logger: Logger, name: HandlerName, error: unknown): void {
  const err = toError(error);
  logger.error({ conn: ws.id, handler: name, err: err.message }, 'handler failed');
  if (name !== 'error' && handlers.error) {
    try {
      const result = handlers.error(ws, err);
      if (isPromise(result)) result.catch(() => {});
    } catch {
      // An error handler that throws is not called again.
    }
  }
}

// ---- the class style ------------------------------------------------------------------------

/**
 * The class style of handler (as Tornado's `WebSocketHandler` or Autobahn's protocol
 * classes): one instance per connection, with the connection as `this.ws`. Turn a subclass
 * into a handlers object with `fromClass(MyHandler)`.
 */
export abstract class WebSocketHandler<Data = unknown> {
  /** Created by `fromClass` when the connection opens, just before `open()`. */
  constructor(
    /** The connection this instance handles. */
    readonly ws: WebSocket<Data>,
  ) {}
  /** Shorthand for `this.ws.send`. */
  send(data: string | Uint8Array, options?: SendOptions): boolean {
    return this.ws.send(data, options);
  }
}

/**
 * The methods a `WebSocketHandler` subclass may define (all optional; they are not declared
 * on the base class, so subclasses need no `override`). Without `message`, read with
 * `for await (const message of this.ws)`.
 */
export interface WebSocketHandlerMethods {
  /** The connection is open; `this.ws` is ready to send. */
  open?(): HandlerResult;
  /** A complete message arrived: a string for text (unless `textAsBuffer`), a Buffer for binary. */
  message?(data: MessageData, isBinary: boolean): HandlerResult;
  /** A ping arrived (the pong is sent automatically). */
  ping?(data: Buffer): HandlerResult;
  /** A pong arrived. */
  pong?(data: Buffer): HandlerResult;
  /** The send buffer fell below the low watermark after `send()` returned false. */
  drain?(): HandlerResult;
  /** Something went wrong (protocol violation by the peer, socket error, a method threw). */
  error?(error: Error): HandlerResult;
  /** The connection is closed (1005: no code, 1006: no close frame); the instance is released afterwards. */
  close?(code: number, reason: string): HandlerResult;
}

type HandlerInstance<Data> = WebSocketHandler<Data> & WebSocketHandlerMethods;

/** A constructor of a `WebSocketHandler` subclass. */
export type WebSocketHandlerClass<Data> = new (ws: WebSocket<Data>) => WebSocketHandler<Data> & WebSocketHandlerMethods;

/** Handlers that create one `HandlerClass` instance per connection and forward to its methods. */
export function fromClass<Data = unknown>(HandlerClass: WebSocketHandlerClass<Data>): WebSocketHandlers<Data> {
  const instances = new WeakMap<WebSocket<Data>, HandlerInstance<Data>>();
  const of = (ws: WebSocket<Data>): HandlerInstance<Data> | undefined => instances.get(ws);
  const proto = HandlerClass.prototype as HandlerInstance<Data>;
  const handlers: WebSocketHandlers<Data> = {
    open(ws) {
      const instance = new HandlerClass(ws);
      instances.set(ws, instance);
      return instance.open?.();
    },
    close(ws, code, reason) {
      const result = of(ws)?.close?.(code, reason);
      instances.delete(ws);
      return result;
    },
    ping: (ws, data) => of(ws)?.ping?.(data),
    pong: (ws, data) => of(ws)?.pong?.(data),
    drain: (ws) => of(ws)?.drain?.(),
    error: (ws, error) => of(ws)?.error?.(error),
  };
  // Without a `message` method the class reads with async iteration (e.g. in `open`).
  if (typeof proto.message === 'function') handlers.message = (ws, data, isBinary) => of(ws)?.message?.(data, isBinary);
  return handlers;
}
