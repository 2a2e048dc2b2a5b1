/**
 * The one error class of both hub clients: the Node `HubClient` exports it as `HubClientError`
 * (`duplex-ws/hub`), the browser `DuplexClient` as `DuplexError` (`duplex-ws/client`). One
 * class under two names, not a class and a subclass, so that `instanceof` with either name holds
 * for an error of either client and code shared between Node and browsers needs no mapping.
 *
 * Free of imports at run time (only a type from `wire.ts`), so browsers load it as it is.
 */
import type { HubErrorCode } from './wire.js';

/**
 * A request refused by the server (its `code`, e.g. E_FORBIDDEN), or failed on the client's side
 * (E_TIMEOUT, E_CONNECTION_LOST, E_QUEUE_FULL, E_CLOSED). The browser client exports this same
 * class as `DuplexError`.
 */
export class HubClientError extends Error {
  /** Always `'HubClientError'`, under either export name (an own property, so it survives minification and crosses realms). */
  override readonly name = 'HubClientError';
  /**
   * Made by the client for refusals and client-side failures; rarely useful to construct yourself.
   * @param message What went wrong, for people: the server's message, or the client's.
   */
  constructor(
    /**
     * Stable, for programs: the server's error code (E_FORBIDDEN, E_UNAVAILABLE…, see
     * `docs/protocol.md`; a string outside `HubErrorCode` may come from a newer server) or a
     * client-side one: E_TIMEOUT, E_CONNECTION_LOST, E_QUEUE_FULL, E_CLOSED.
     */
    readonly code: HubErrorCode | 'E_TIMEOUT' | 'E_CONNECTION_LOST' | 'E_QUEUE_FULL' | 'E_CLOSED' | (string & {}),
    message: string,
  ) {
    super(message);
  }
}
