/**
 * Names from RFC 6455 for opcodes, close codes and connection states.
 * Logic compares against these names, never against bare numbers.
 */

/** Frame opcodes (RFC 6455 §5.2, §11.8). */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** True for opcodes 0x8–0xF (RFC 6455 §5.5: control frames have the high opcode bit set). */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/** Close status codes (RFC 6455 §7.4.1 and the IANA registry, §11.7). */
export const CloseCode = {
  NormalClosure: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Reserved: never sent on the wire; reported when a close frame carried no code. */
  NoStatusReceived: 1005,
  /** Reserved: never sent on the wire; reported when the connection dropped without a close frame. */
  AbnormalClosure: 1006,
  InvalidFramePayloadData: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
  /** Reserved: never sent on the wire; the TLS handshake failed. */
  TlsHandshake: 1015,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * Whether a code may appear in a close frame on the wire (RFC 6455 §7.4.1–§7.4.2):
 * 1000–1003 and 1007–1014 are defined; 1004, 1005, 1006 and 1015 must not be sent;
 * 3000–4999 are for libraries, frameworks and applications; everything else is invalid.
 */
export function isValidCloseCode(code: number): boolean {
  if (code >= 3000 && code <= 4999) return true;
  return (
    (code >= CloseCode.NormalClosure && code <= CloseCode.UnsupportedData) ||
    (code >= CloseCode.InvalidFramePayloadData && code <= CloseCode.BadGateway)
  );
}

/** Connection states (RFC 6455 §4.1, §7.1; the names of the WHATWG `readyState`). */
export const State = {
  Connecting: 0,
  Open: 1,
  Closing: 2,
  Closed: 3,
} as const;
export type State = (typeof State)[keyof typeof State];

/** Which end of the connection this engine plays. Decides masking (RFC 6455 §5.1, §5.3). */
export type Side = 'server' | 'client';

/** The GUID appended to Sec-WebSocket-Key before hashing (RFC 6455 §1.3). */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Largest payload a control frame may carry (RFC 6455 §5.5). */
export const MAX_CONTROL_PAYLOAD = 125;

/** Default limit on a reassembled message, in bytes (the same as ws's `maxPayload`). */
export const DEFAULT_MAX_MESSAGE_SIZE = 100 * 1024 * 1024;
