/**
 * The hub's server-side errors: `HubError` for refusals of the server API, the `Refusal` its
 * parts hand back to be sent as an `error` message or thrown as a `HubError`, and the text of a
 * caught error for log lines.
 */
import type { HubErrorCode } from './wire.js';
import { DuplexError, toError } from '../protocol/errors.js';

/** A refused operation of the server-side API. */
export class HubError extends DuplexError {
  /** Always `'HubError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'HubError';
  /**
   * Thrown by the server-side API (`publish`, `subscribe`, `sendToConnection`…).
   * @param message What was refused and why, for people.
   */
  constructor(
    /** The same code a client would get for the same refusal (e.g. E_BAD_REQUEST, E_FORBIDDEN, E_UNAVAILABLE). */
    override readonly code: HubErrorCode,
    message: string,
  ) {
    super(code, message);
  }
}

/** Why a request was refused: the code and message of the `error` message (or `HubError`). */
export interface Refusal {
  readonly code: HubErrorCode;
  readonly message: string;
}

/** The text of a caught error, for a log line. */
export function errorMessage(error: unknown): string {
  return toError(error).message;
}
