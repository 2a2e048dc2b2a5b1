/**
 * The EventTarget face of ws's WebSocket: `addEventListener`/`removeEventListener`, the `on<event>`
 * properties, and the event objects they hand to listeners (ws's `Event`, `MessageEvent`,
 * `CloseEvent`, `ErrorEvent`: read-only, enumerable accessors). Listeners are EventEmitter
 * listeners underneath, wrapped once when added: nothing is allocated per event except the event
 * object itself, and only for these listeners.
 */
import type { EventEmitter } from 'node:events';
import { kForOnEventAttribute, kListener } from './constants.js';

const kTarget = Symbol('duplex.ws.target');
const kType = Symbol('duplex.ws.type');
const kData = Symbol('duplex.ws.data');
const kCode = Symbol('duplex.ws.code');
const kReason = Symbol('duplex.ws.reason');
const kWasClean = Symbol('duplex.ws.wasClean');
const kError = Symbol('duplex.ws.error');
const kMessage = Symbol('duplex.ws.message');

/** An event as `addEventListener` listeners receive it. */
export class Event {
  private [kTarget]: unknown = null;
  private readonly [kType]: string;
  /** @param type The event's name, e.g. `'open'`. */
  constructor(type: string) {
    this[kType] = type;
  }
  /** The WebSocket the event is about (null until dispatched). */
  get target(): unknown {
    return this[kTarget];
  }
  /** The event's name. */
  get type(): string {
    return this[kType];
  }
}

/** Options of a {@link MessageEvent}. */
export interface MessageEventInit {
  /** The message: a string for text, the binaryType's form for binary. */
  data?: unknown;
}

/** A `message` event: `data` is a string for a text message, else the `binaryType`'s form. */
export class MessageEvent extends Event {
  private readonly [kData]: unknown;
  /** @param options `data` (default null). */
  constructor(type: string, options: MessageEventInit = {}) {
    super(type);
    this[kData] = options.data === undefined ? null : options.data;
  }
  /** The message. */
  get data(): unknown {
    return this[kData];
  }
}

/** Options of a {@link CloseEvent}. */
export interface CloseEventInit {
  /** The close code (default 0). */
  code?: number;
  /** The close reason (default ''). */
  reason?: string;
  /** Whether close frames went both ways (default false). */
  wasClean?: boolean;
}

/** A `close` event. */
export class CloseEvent extends Event {
  private readonly [kCode]: number;
  private readonly [kReason]: string;
  private readonly [kWasClean]: boolean;
  /** @param options `code`, `reason`, `wasClean`. */
  constructor(type: string, options: CloseEventInit = {}) {
    super(type);
    this[kCode] = options.code === undefined ? 0 : options.code;
    this[kReason] = options.reason === undefined ? '' : options.reason;
    this[kWasClean] = options.wasClean === undefined ? false : options.wasClean;
  }
  /** The peer's close code: 1005 for an empty close frame, 1006 when none came. */
  get code(): number {
    return this[kCode];
  }
  /** The peer's close reason. */
  get reason(): string {
    return this[kReason];
  }
  /** True when close frames were both sent and received. */
  get wasClean(): boolean {
    return this[kWasClean];
  }
}

/** Options of an {@link ErrorEvent}. */
export interface ErrorEventInit {
  /** The error (default null). */
  error?: unknown;
  /** Its message (default ''). */
  message?: string;
}

/** An `error` event. */
export class ErrorEvent extends Event {
  private readonly [kError]: unknown;
  private readonly [kMessage]: string;
  /** @param options `error`, `message`. */
  constructor(type: string, options: ErrorEventInit = {}) {
    super(type);
    this[kError] = options.error === undefined ? null : options.error;
    this[kMessage] = options.message === undefined ? '' : options.message;
  }
  /** The error emitted. */
  get error(): unknown {
    return this[kError];
  }
  /** The error's message. */
  get message(): string {
    return this[kMessage];
  }
}

// ws's event objects show their fields as enumerable accessors (so `{ ...event }` and
// deepStrictEqual see what a browser's show).
for (const [proto, names] of [
  [Event.prototype, ['target', 'type']],
  [MessageEvent.prototype, ['data']],
  [CloseEvent.prototype, ['code', 'reason', 'wasClean']],
  [ErrorEvent.prototype, ['error', 'message']],
] as const) {
  for (const name of names) Object.defineProperty(proto, name, { enumerable: true });
}

/** A listener as the DOM takes it: a function, or an object with `handleEvent`. */
export type EventListenerLike<E> = ((event: E) => void) | { handleEvent(event: E): void };

/** Options of `addEventListener`: `once` removes the listener after its first call. */
export interface AddEventListenerOptions {
  /** Call the listener at most once. */
  once?: boolean;
}

/** What the wrappers need of the WebSocket: its emitter and whether close frames went both ways. */
export interface EventTargetHost extends EventEmitter {
  /** For `CloseEvent.wasClean`. */
  readonly closedCleanly: boolean;
}

/** An EventEmitter listener (its own type), marked with the user's listener. */
type Wrapper = Parameters<EventEmitter['on']>[1] & { [kListener]?: unknown; [kForOnEventAttribute]?: boolean };

function dispatch(listener: EventListenerLike<Event>, target: unknown, event: Event): void {
  (event as unknown as { [kTarget]: unknown })[kTarget] = target;
  if (typeof listener === 'object' && listener !== null && typeof listener.handleEvent === 'function') {
    listener.handleEvent.call(listener, event);
  } else {
    (listener as (event: Event) => void).call(target, event);
  }
}

/** The EventEmitter listener that turns `type`'s arguments into its event object, or undefined for other types. */
function wrap(type: string, handler: EventListenerLike<never>): Wrapper | undefined {
  const listener = handler as EventListenerLike<Event>;
  switch (type) {
    case 'message':
      return function onMessage(this: EventTargetHost, data: Buffer | ArrayBuffer | Buffer[] | Blob, isBinary: boolean): void {
        dispatch(listener, this, new MessageEvent('message', { data: isBinary ? data : String(data) }));
      };
    case 'close':
      return function onClose(this: EventTargetHost, code: number, reason: Buffer): void {
        dispatch(listener, this, new CloseEvent('close', { code, reason: reason.toString(), wasClean: this.closedCleanly }));
      };
    case 'error':
      return function onError(this: EventTargetHost, error: Error): void {
        dispatch(listener, this, new ErrorEvent('error', { error, message: error.message }));
      };
    case 'open':
      return function onOpen(this: EventTargetHost): void {
        dispatch(listener, this, new Event('open'));
      };
    default:
      return undefined;
  }
}

/**
 * ws's `addEventListener`: for `open`, `message`, `close` and `error` only (others are ignored, as
 * in ws); the same listener added twice is added once.
 */
export function addEventListener(
  this: EventTargetHost,
  type: string,
  handler: EventListenerLike<never>,
  options: AddEventListenerOptions & { [kForOnEventAttribute]?: boolean } = {},
): void {
  const forAttribute = options[kForOnEventAttribute] === true;
  if (!forAttribute) {
    for (const existing of this.listeners(type) as Wrapper[]) {
      if (existing[kListener] === handler && !existing[kForOnEventAttribute]) return;
    }
  }
  const wrapper = wrap(type, handler);
  if (wrapper === undefined) return;
  wrapper[kForOnEventAttribute] = forAttribute;
  wrapper[kListener] = handler;
  if (options.once) this.once(type, wrapper);
  else this.on(type, wrapper);
}

/** ws's `removeEventListener`: removes the listener added with `addEventListener` (not an `on<event>` one). */
export function removeEventListener(this: EventTargetHost, type: string, handler: EventListenerLike<never>): void {
  for (const existing of this.listeners(type) as Wrapper[]) {
    if (existing[kListener] === handler && !existing[kForOnEventAttribute]) {
      this.removeListener(type, existing);
      return;
    }
  }
}

/**
 * Define `onopen`, `onmessage`, `onclose` and `onerror` on `proto` with ws's semantics: the getter
 * gives the listener the property set (or null); setting replaces only that one, and a value that
 * is not a function just removes it.
 */
export function defineEventAttributes(proto: object): void {
  for (const type of ['open', 'error', 'close', 'message']) {
    Object.defineProperty(proto, `on${type}`, {
      enumerable: true,
      configurable: true,
      get(this: EventTargetHost): unknown {
        for (const listener of this.listeners(type) as Wrapper[]) {
          if (listener[kForOnEventAttribute]) return listener[kListener];
        }
        return null;
      },
      set(this: EventTargetHost, handler: unknown): void {
        for (const listener of this.listeners(type) as Wrapper[]) {
          if (listener[kForOnEventAttribute]) {
            this.removeListener(type, listener);
            break;
          }
        }
        if (typeof handler !== 'function') return;
        addEventListener.call(this, type, handler as EventListenerLike<never>, { [kForOnEventAttribute]: true });
      },
    });
  }
}
