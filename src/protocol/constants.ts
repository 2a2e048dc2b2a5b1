/**
 * Names from RFC 6455 for opcodes, close codes and connection states.
 * Logic compares against these names, never against bare numbers.
 */
import { DEFAULTS } from './defaults.js';

/** Frame opcodes (RFC 6455 §5.2, §11.8). */
export const Opcode = {
  /** 0x0: a further fragment of the message whose first frame was Text or Binary (§5.4). */
  Continuation: 0x0,
  /** 0x1: a text message; the payload of the whole message must be UTF-8 (§5.6). */
  Text: 0x1,
  /** 0x2: a binary message, opaque to the protocol. */
  Binary: 0x2,
  /** 0x8: a close frame, optionally with a 2-byte code and a UTF-8 reason (§5.5.1). */
  Close: 0x8,
  /** 0x9: a ping; the receiver answers with a pong carrying the same payload (§5.5.2). */
  Ping: 0x9,
  /** 0xA: a pong, in answer to a ping or unsolicited as a one-way heartbeat (§5.5.3). */
  Pong: 0xa,
} as const;
/** One of the opcode values of {@link Opcode} (the numbers, not the names). */
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** True for opcodes 0x8–0xF (RFC 6455 §5.5: control frames have the high opcode bit set). */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/** Close status codes (RFC 6455 §7.4.1 and the IANA registry, §11.7). */
export const CloseCode = {
  /** 1000: the purpose of the connection is fulfilled; the ordinary goodbye. */
  NormalClosure: 1000,
  /** 1001: the endpoint is going away (a server shutting down, a page navigated away, an idle timeout). */
  GoingAway: 1001,
  /** 1002: the peer broke the protocol (bad framing, reserved bits, unmasked client frame…). */
  ProtocolError: 1002,
  /** 1003: a kind of data the endpoint cannot accept (e.g. binary sent to a text-only endpoint). */
  UnsupportedData: 1003,
  /** Reserved: never sent on the wire; reported when a close frame carried no code. */
  NoStatusReceived: 1005,
  /** Reserved: never sent on the wire; reported when the connection dropped without a close frame. */
  AbnormalClosure: 1006,
  /** 1007: data inconsistent with the message type, e.g. invalid UTF-8 in a text message or close reason. */
  InvalidFramePayloadData: 1007,
  /** 1008: a policy was violated (rate limit, slow consumer, forbidden); the generic refusal. */
  PolicyViolation: 1008,
  /** 1009: a message or frame larger than the endpoint accepts (`maxMessageSize`). */
  MessageTooBig: 1009,
  /** 1010: sent by a client: the server did not negotiate an extension the client requires. */
  MandatoryExtension: 1010,
  /** 1011: sent by a server: an unexpected condition (here: an application handler threw). */
  InternalError: 1011,
  /** 1012: the server is restarting; reconnect (after a delay). IANA registry. */
  ServiceRestart: 1012,
  /** 1013: the server is overloaded; try again later, ideally with backoff. IANA registry. */
  TryAgainLater: 1013,
  /** 1014: a gateway or proxy got an invalid response from the upstream server. IANA registry. */
  BadGateway: 1014,
  /** Reserved: never sent on the wire; the TLS handshake failed. */
  TlsHandshake: 1015,
} as const;
/** One of the close code values of {@link CloseCode}; close frames may carry other valid codes too (3000–4999). */
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
  /** 0: the opening handshake is in progress; nothing may be sent yet. */
  Connecting: 0,
  /** 1: the handshake succeeded; data and control frames flow both ways. */
  Open: 1,
  /** 2: a close frame was sent or received; no more data frames are sent. */
  Closing: 2,
  /** 3: the transport is closed (after the closing handshake or without one). */
  Closed: 3,
} as const;
/** One of the state values of {@link State}, as in the WHATWG `readyState`. */
export type State = (typeof State)[keyof typeof State];

/** Which end of the connection this engine plays. Decides masking (RFC 6455 §5.1, §5.3). */
export type Side = 'server' | 'client';

/** The GUID appended to Sec-WebSocket-Key before hashing (RFC 6455 §1.3). */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Largest payload a control frame may carry (RFC 6455 §5.5). */
export const MAX_CONTROL_PAYLOAD = 125;

/** Default limit on a reassembled message, in bytes (1 MiB, as python-websockets): `DEFAULTS.connection.maxMessageSize`. */
export const DEFAULT_MAX_MESSAGE_SIZE = DEFAULTS.connection.maxMessageSize;
