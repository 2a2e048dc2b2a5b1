/**
 * duplex: full-duplex real-time messaging for TypeScript on Node.js.
 * @packageDocumentation
 * @module duplex-ws
 */
// The engine itself is `duplex-ws/protocol`; what a user of the Node API meets is here too: the
// close codes and opcodes, the connection states, and the errors that sends and handshakes throw.
export { CloseCode, Opcode, State, isValidCloseCode, type Side } from './protocol/constants.js';
export { DuplexError, ProtocolError, InvalidStateError, HandshakeError, type ProtocolErrorCode } from './protocol/errors.js';
export { WebSocket, type WebSocketOptions, type SendOptions } from './node/websocket.js';
export {
  WebSocketHandler,
  fromClass,
  type WebSocketHandlerClass,
  type WebSocketHandlerMethods,
  type WebSocketHandlers,
  type HandlerResult,
  type MessageData,
} from './node/handlers.js';
export { DEFAULT_SETTINGS, type ConnectionSettings, type MessageRateLimit } from './node/settings.js';
export { DEFAULTS } from './protocol/defaults.js';
export { createTrafficCounters, type TrafficCounters } from './node/counters.js';
export { PreparedMessage, prepareMessage } from './node/prepared-message.js';
export { batch, corkLoopPass } from './node/write-batch.js';
export { WebSocketServer } from './node/server/server.js';
export {
  type WebSocketServerOptions,
  type RouteOptions,
  type RouteHandlers,
  type UpgradeContext,
  type UpgradeHook,
  type OriginRule,
  type AttachOptions,
  type ServerStats,
} from './node/server/options.js';
export { requestInfo, parseCookies, type RequestInfo } from './node/server/request.js';
export type { RouteParams } from './node/server/router.js';
export { connect, type ConnectOptions } from './node/client.js';
export { createDeflateCodec } from './node/deflate.js';
export { createConsoleLogger, silentLogger, type Logger, type LogFields, type LogLevel } from './node/logger.js';
export {
  ReconnectingWebSocket,
  reconnecting,
  defaultShouldReconnect,
  retryAfter,
  RECONNECT_DEFAULTS,
  type ReconnectingOptions,
  type ReconnectingHandlers,
  type ReconnectingInfo,
  type ReconnectingState,
  type ConnectOverrides,
  type Disconnect,
  type ClosedInfo,
  type ClosedReason,
  type OutgoingMessage,
  type SendStatus,
} from './node/reconnecting.js';
export { backoffDelay, type BackoffPolicy } from './protocol/backoff.js';
export {
  WHATWGWebSocket,
  CloseEvent,
  WebSocketErrorEvent,
  type BinaryType,
  type CloseEventInit,
  type WHATWGSendData,
  type WHATWGMessageData,
  type WHATWGWebSocketOptions,
} from './node/whatwg.js';
