/**
 * The one error class of both hub clients, `HubClientError` (`duplex-ws/hub`, `duplex-ws/client`):
 * a `DuplexError`, the root of every duplex error, which the browser client has always exported
 * (`duplex-ws/client`), so `instanceof DuplexError` holds for an error of either client and code
 * shared between Node and browsers needs no mapping.
 *
 * Its one run-time import is the Node-free `protocol/errors.ts`, so browsers load it as it is.
 */
import type { HubErrorCode } from './wire.js';
import { DuplexError } from '../protocol/errors.js';

/**
 * A request refused by the server (its `code`, e.g. E_FORBIDDEN), or failed on the client's side
 * (E_TIMEOUT, E_CONNECTION_LOST, E_QUEUE_FULL, E_CLOSED), by either hub client: a `DuplexError`.
 */
export class HubClientError extends DuplexError {
  /** Always `'HubClientError'` (an own property, so it survives minification and crosses realms). */
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
    override readonly code: HubErrorCode | 'E_TIMEOUT' | 'E_CONNECTION_LOST' | 'E_QUEUE_FULL' | 'E_CLOSED' | (string & {}),
    message: string,
  ) {
    super(code, message);
  }
}
