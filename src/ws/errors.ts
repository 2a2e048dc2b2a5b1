/**
 * The errors ws emits for a peer's protocol violation, made from the engine's `ProtocolError`:
 * ws's class (RangeError or Error), message and `code` string, so code that branches on
 * `err.code === 'WS_ERR_INVALID_UTF8'` works unchanged. Created only when a connection fails.
 */
import { CloseCode } from '../protocol/constants.js';
import type { ProtocolError } from '../protocol/errors.js';

/** An error as ws emits it: a stable `code` (`WS_ERR_*`, or zlib's `Z_*` for bad compressed data). */
export interface WsError extends Error {
  /** ws's code, e.g. `'WS_ERR_INVALID_OPCODE'`. */
  code: string;
}

function make(range: boolean, message: string, code: string): WsError {
  const error = (range ? new RangeError(message) : new Error(message)) as WsError;
  error.code = code;
  return error;
}

function unsupportedLength(): WsError {
  return make(true, 'Unsupported WebSocket frame: payload length > 2^53 - 1', 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH');
}

/** ws prefixes the messages of malformed frames (not of size limits). */
const FRAME = 'Invalid WebSocket frame: ';

/** The number in the engine's message (an opcode, a length, a close code), as text. */
function numberIn(message: string): string {
  return /\d+/.exec(message)?.[0] ?? '';
}

/**
 * The error ws would emit for what the engine reports. The close code sent is the engine's, which
 * is ws's too (1002 malformed, 1007 bad data, 1009 too big), except a 64-bit length with its high
 * bit set: 1002 here, where ws says 1009 ("payload length > 2^53 - 1").
 */
export function toWsError(error: ProtocolError): WsError {
  const message = error.message;
  switch (error.code) {
    case 'ERR_RESERVED_BITS':
      return message.startsWith('RSV2')
        ? make(true, `${FRAME}RSV2 and RSV3 must be clear`, 'WS_ERR_UNEXPECTED_RSV_2_3')
        : make(true, `${FRAME}RSV1 must be clear`, 'WS_ERR_UNEXPECTED_RSV_1');
    case 'ERR_RESERVED_OPCODE':
    case 'ERR_EXPECTED_CONTINUATION':
      return make(true, `${FRAME}invalid opcode ${numberIn(message)}`, 'WS_ERR_INVALID_OPCODE');
    case 'ERR_UNEXPECTED_CONTINUATION':
      return make(true, `${FRAME}invalid opcode 0`, 'WS_ERR_INVALID_OPCODE');
    case 'ERR_FRAGMENTED_CONTROL':
      return make(true, `${FRAME}FIN must be set`, 'WS_ERR_EXPECTED_FIN');
    case 'ERR_CONTROL_TOO_LONG':
      return make(true, `${FRAME}invalid payload length ${numberIn(message)}`, 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH');
    case 'ERR_INVALID_CLOSE_PAYLOAD':
      return make(true, `${FRAME}invalid payload length 1`, 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH');
    case 'ERR_MASK_REQUIRED':
      return make(true, `${FRAME}MASK must be set`, 'WS_ERR_EXPECTED_MASK');
    case 'ERR_MASK_FORBIDDEN':
      return make(true, `${FRAME}MASK must be clear`, 'WS_ERR_UNEXPECTED_MASK');
    case 'ERR_INVALID_CLOSE_CODE':
      return make(true, `${FRAME}invalid status code ${numberIn(message)}`, 'WS_ERR_INVALID_CLOSE_CODE');
    case 'ERR_INVALID_UTF8':
      return make(false, `${FRAME}invalid UTF-8 sequence`, 'WS_ERR_INVALID_UTF8');
    case 'ERR_INVALID_LENGTH':
      return unsupportedLength();
    case 'ERR_FRAME_TOO_BIG':
      // ws checks the 53-bit ceiling (a JavaScript integer) before its limit.
      if (Number(/frame of (\S+) bytes/.exec(message)?.[1]) > Number.MAX_SAFE_INTEGER) return unsupportedLength();
      return make(true, 'Max payload size exceeded', 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
    case 'ERR_MESSAGE_TOO_BIG':
      // The engine's count limits (ws 8.23's maxFragments and maxBufferedChunks) close with 1008.
      if (error.closeCode === CloseCode.PolicyViolation) {
        return message.includes('fragments')
          ? make(true, 'Too many message fragments', 'WS_ERR_TOO_MANY_BUFFERED_PARTS')
          : make(true, 'Too many buffered chunks', 'WS_ERR_TOO_MANY_BUFFERED_PARTS');
      }
      return make(true, 'Max payload size exceeded', 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
    case 'ERR_INFLATE': {
      // ws hands on zlib's own error ("invalid stored block lengths", code Z_DATA_ERROR).
      const zlib = /: (.*) \(RFC 7692/.exec(message)?.[1] ?? message;
      return make(false, zlib, 'Z_DATA_ERROR');
    }
    default:
      return make(false, message, 'WS_ERR_UNKNOWN');
  }
}
