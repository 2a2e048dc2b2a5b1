/**
 * duplex's sans-I/O WebSocket engine (RFC 6455, RFC 7692): no sockets, no timers, no Node APIs.
 * @packageDocumentation
 * @module duplex-ws/protocol
 */
export * from './constants.js';
export { DuplexError, ProtocolError, InvalidStateError, HandshakeError, protocolError, type ProtocolErrorCode } from './errors.js';
export type { ExtensionOffer, MessageCodec } from './extension.js';
export { Connection, type ConnectionHandler, type ConnectionOptions, type MaskingKeySource, type SendOptions as FrameSendOptions } from './connection.js';
export { EventQueue, type ConnectionEvent } from './event-queue.js';
export { encodeFrame, encodeFrameHeader, frameHeaderLength, writeFrameHeader, type FrameFlags } from './frame.js';
export { applyMask, MaskKeySource } from './mask.js';
export { Utf8Validator, isValidUtf8, decodeUtf8, encodeUtf8 } from './utf8.js';
export * from './handshake.js';
export { parseExtensions, formatExtensions, parseTokenList, isToken, type HeaderValue } from './headers.js';
export * from './permessage-deflate.js';
