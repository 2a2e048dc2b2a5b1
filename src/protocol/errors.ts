import { CloseCode } from './constants.js';

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
export class ProtocolError extends Error {
  /** Always `'ProtocolError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'ProtocolError';
  /**
   * Most failures are malformed frames: {@link protocolError} makes those, with close code 1002.
   * @param message What was wrong, for people and logs.
   */
  constructor(
    /** What was wrong, stable across versions: branch on this, not on `message`. */
    readonly code: ProtocolErrorCode,
    /** The close code the connection is failed with: 1002 (protocol), 1007 (bad payload data) or 1009 (too big). */
    readonly closeCode: CloseCode,
    message: string,
  ) {
    super(message);
  }
}

/** The API was used in a way the protocol state forbids (e.g. sending after close). */
export class InvalidStateError extends Error {
  /** Always `'InvalidStateError'` (the DOMException name browsers use for the same mistake). */
  override readonly name = 'InvalidStateError';
}

/**
 * An opening handshake failed. On the server side `status` is the HTTP status to answer with
 * and `headers` any headers that must go with it (e.g. `Sec-WebSocket-Version` for 426);
 * on the client side `status` is the status the server answered (or 0 if the response was
 * not valid HTTP, or never came) and `headers` the response's headers (e.g. `Retry-After`).
 */
export class HandshakeError extends Error {
  /** Always `'HandshakeError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'HandshakeError';
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
    super(message);
  }
}

/** A `ProtocolError` with close code 1002, the common case (the frame itself is malformed). */
export const protocolError = (code: ProtocolErrorCode, message: string): ProtocolError =>
  new ProtocolError(code, CloseCode.ProtocolError, message);
