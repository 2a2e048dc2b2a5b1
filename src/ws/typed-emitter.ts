/**
 * An EventEmitter whose listener methods are typed by an event map, as @types/ws types ws's
 * classes: `ws.on('message', (data, isBinary) => …)` gets its argument types without annotations,
 * and `this` is the emitter. Types only: at run time these are EventEmitter's own methods.
 */
import { EventEmitter } from 'node:events';

/** A listener of `Self`'s event with arguments `A`. */
export type TypedListener<Self, A extends unknown[]> = (this: Self, ...args: A) => void;

/** What EventEmitter's own methods take. */
type AnyListener = (...args: unknown[]) => void;

/** EventEmitter with the listener methods typed by `Events` (event name → argument tuple); other names stay open. */
export class TypedEmitter<Events extends { [K in keyof Events]: unknown[] }> extends EventEmitter {
  /** Add a listener. */
  override on<K extends keyof Events>(event: K, listener: TypedListener<this, Events[K]>): this;
  override on<A extends unknown[]>(event: string | symbol, listener: TypedListener<this, A>): this;
  override on(event: PropertyKey, listener: (...args: never[]) => unknown): this {
    return super.on(event as string | symbol, listener as AnyListener);
  }

  /** Add a listener called once. */
  override once<K extends keyof Events>(event: K, listener: TypedListener<this, Events[K]>): this;
  override once<A extends unknown[]>(event: string | symbol, listener: TypedListener<this, A>): this;
  override once(event: PropertyKey, listener: (...args: never[]) => unknown): this {
    return super.once(event as string | symbol, listener as AnyListener);
  }

  /** Remove a listener. */
  override off<K extends keyof Events>(event: K, listener: TypedListener<this, Events[K]>): this;
  override off<A extends unknown[]>(event: string | symbol, listener: TypedListener<this, A>): this;
  override off(event: PropertyKey, listener: (...args: never[]) => unknown): this {
    return super.off(event as string | symbol, listener as AnyListener);
  }

  /** Add a listener (as `on`). */
  override addListener<K extends keyof Events>(event: K, listener: TypedListener<this, Events[K]>): this;
  override addListener<A extends unknown[]>(event: string | symbol, listener: TypedListener<this, A>): this;
  override addListener(event: PropertyKey, listener: (...args: never[]) => unknown): this {
    return super.addListener(event as string | symbol, listener as AnyListener);
  }

  /** Remove a listener (as `off`). */
  override removeListener<K extends keyof Events>(event: K, listener: TypedListener<this, Events[K]>): this;
  override removeListener<A extends unknown[]>(event: string | symbol, listener: TypedListener<this, A>): this;
  override removeListener(event: PropertyKey, listener: (...args: never[]) => unknown): this {
    return super.removeListener(event as string | symbol, listener as AnyListener);
  }
}
