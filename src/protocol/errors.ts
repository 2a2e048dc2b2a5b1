import { CloseCode } from './constants.js';

/**
 * The root of every error duplex throws or rejects with (protocol, handshake, hub, client and
 * broker errors alike), so `instanceof DuplexError` tells duplex's own failures from others.
 * Each carries a stable `code` to branch on (as Node's `ERR_*` and ws's `WS_ERR_*` codes): the
 * protocol's and the engine's are `ERR_*`, the hub's `E_*` (the codes of its wire protocol).
 * Arguments that cannot be used are still reported with the built-in `TypeError`/`RangeError`,
 * as Node does. Free of Node APIs, so browsers load it as it is.
 */
export class DuplexError extends Error {
  /** The subclass's name (`'ProtocolError'`, `'HubError'`…; an own property, so it survives minification and crosses realms). */
  override readonly name: string = 'DuplexError';
  /**
   * Subclasses name their own codes; a plain `DuplexError` is rarely useful to construct yourself.
   * @param code Stable, for programs: branch on it, not on `message`.
   * @param message What went wrong, for people and logs.
   * @param options `cause`: the error behind this one, if any.
   */
  constructor(
    /** Stable across versions, for programs: branch on this, not on `message`. */
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * A thrown or rejected value as an `Error`: itself if it is one, else an `Error` whose message is
 * its text. The one place that turns an `unknown` caught value into an `Error` (Node-free).
 * @internal
 */
export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Stable machine-readable codes for protocol failures, next to the close code they map to. */
export type ProtocolErrorCode =
  | 'ERR_RESERVED_BITS'
  | 'ERR_RESERVED_OPCODE'
  | 'ERR_FRAGMENTED_CONTROL'
  | 'ERR_CONTROL_TOO_LONG'
  | 'ERR_UNEXPECTED_CONTINUATION'
  | 'ERR_EXPECTED_CONTINUATION'
  | 'ERR_MASK_REQUIRED'
  | 'ERR_MASK_FORBIDDEN'
  | 'ERR_INVALID_CLOSE_CODE'
  | 'ERR_INVALID_CLOSE_PAYLOAD'
  | 'ERR_INVALID_LENGTH'
  | 'ERR_INVALID_UTF8'
  | 'ERR_MESSAGE_TOO_BIG'
  | 'ERR_FRAME_TOO_BIG'
  | 'ERR_INFLATE';

/**
 * The peer broke the protocol. Carries the close code to send (RFC 6455 §7.4) and a stable
 * `code` for programs to branch on; the message says what was wrong.
 */
export class ProtocolError extends DuplexError {
  /** Always `'ProtocolError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'ProtocolError';
  /**
   * Most failures are malformed frames: {@link protocolError} makes those, with close code 1002.
   * @param message What was wrong, for people and logs.
   */
  constructor(
    /** What was wrong, stable across versions: branch on this, not on `message`. */
    override readonly code: ProtocolErrorCode,
    /** The close code the connection is failed with: 1002 (protocol), 1007 (bad payload data) or 1009 (too big). */
    readonly closeCode: CloseCode,
    message: string,
  ) {
    super(code, message);
  }
}

/** The API was used in a way the protocol state forbids (e.g. sending after close). Its code is `ERR_INVALID_STATE`. */
export class InvalidStateError extends DuplexError {
  /** Always `'InvalidStateError'` (the DOMException name browsers use for the same mistake). */
  override readonly name = 'InvalidStateError';
  /** Always `'ERR_INVALID_STATE'`. */
  declare readonly code: 'ERR_INVALID_STATE';
  /**
   * Thrown (or rejected with) by the engine and the Node API.
   * @param message What the state forbade, for people.
   * @param options `cause`: the error behind this one, if any.
   */
  constructor(message = '', options?: ErrorOptions) {
    super('ERR_INVALID_STATE', message, options);
  }
}

/**
 * An opening handshake failed. On the server side `status` is the HTTP status to answer with
 * and `headers` any headers that must go with it (e.g. `Sec-WebSocket-Version` for 426);
 * on the client side `status` is the status the server answered (or 0 if the response was
 * not valid HTTP, or never came) and `headers` the response's headers (e.g. `Retry-After`).
 */
export class HandshakeError extends DuplexError {
  /** Always `'HandshakeError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'HandshakeError';
  /** Always `'ERR_HANDSHAKE'`; `status` says how it failed. */
  declare readonly code: 'ERR_HANDSHAKE';
  /**
   * Throw one from an upgrade hook (`UpgradeHook`) to refuse the handshake with your own status.
   * @param message What was wrong; on the server side it is also the body of the HTTP answer.
   * @param status The HTTP status (see the class description for its meaning on each side).
   * @param headers Headers that go with the status (default none).
   */
  constructor(
    message: string,
    /**
     * Server side: the HTTP status to answer with (400, 403, 426…). Client side: the status the
     * server answered; 101 if it accepted but the response was invalid; 0 if no valid HTTP came.
     */
    readonly status: number,
    /** Server side: headers the answer must carry. Client side: the server's response headers (lower-case names). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super('ERR_HANDSHAKE', message);
  }
}

/** A `ProtocolError` with close code 1002, the common case (the frame itself is malformed). */
export const protocolError = (code: ProtocolErrorCode, message: string): ProtocolError =>
  new ProtocolError(code, CloseCode.ProtocolError, message);
