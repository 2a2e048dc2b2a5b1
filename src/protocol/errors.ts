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
  | 'ERR_INFLATE'
  | 'ERR_DATA_AFTER_CLOSE';

/**
 * The peer broke the protocol. Carries the close code to send (RFC 6455 §7.4) and a stable
 * `code` for programs to branch on; the message says what was wrong.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    readonly closeCode: CloseCode,
    message: string,
  ) {
    super(message);
  }
}

/** The API was used in a way the protocol state forbids (e.g. sending after close). */
export class InvalidStateError extends Error {
  override readonly name = 'InvalidStateError';
}

/**
 * An opening handshake failed. On the server side `status` is the HTTP status to answer with
 * and `headers` any headers that must go with it (e.g. `Sec-WebSocket-Version` for 426);
 * on the client side `status` is the status the server answered (or 0 if the response was
 * not valid HTTP, or never came) and `headers` the response's headers (e.g. `Retry-After`).
 */
export class HandshakeError extends Error {
  override readonly name = 'HandshakeError';
  constructor(
    message: string,
    readonly status: number,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

export const protocolError = (code: ProtocolErrorCode, message: string): ProtocolError =>
  new ProtocolError(code, CloseCode.ProtocolError, message);
