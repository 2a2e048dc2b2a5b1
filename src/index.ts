/**
 * duplex: full-duplex real-time messaging for TypeScript on Node.js.
 * @packageDocumentation
 * @module duplex-ws
 */
// The engine itself is `duplex-ws/protocol`; what a user of the Node API meets is here too: the
// close codes and opcodes, the connection states, and the errors that sends and handshakes throw.
export { CloseCode, Opcode, State, isValidCloseCode, type Side } from './protocol/constants.js';
export { ProtocolError, InvalidStateError, HandshakeError, type ProtocolErrorCode } from './protocol/errors.js';
export {
  WebSocket,
  WebSocketHandler,
  fromClass,
  createTrafficCounters,
  prepareMessage,
  batch,
  corkLoopPass,
  PreparedMessage,
  DEFAULT_SETTINGS,
  type WebSocketHandlerClass,
  type WebSocketHandlerMethods,
  type WebSocketHandlers,
  type WebSocketOptions,
  type ConnectionSettings,
  type MessageRateLimit,
  type TrafficCounters,
  type HandlerResult,
  type MessageData,
  type SendOptions,
} from './node/websocket.js';
export {
  WebSocketServer,
  requestInfo,
  parseCookies,
  type WebSocketServerOptions,
  type RouteOptions,
  type RouteHandlers,
  type RouteParams,
  type UpgradeContext,
  type UpgradeHook,
  type OriginRule,
  type AttachOptions,
  type ServerStats,
  type RequestInfo,
} from './node/server.js';
export { connect, type ConnectOptions } from './node/client.js';
export { createDeflateCodec } from './node/deflate.js';
export { createConsoleLogger, silentLogger, type Logger, type LogFields, type LogLevel } from './node/logger.js';
export {
  ReconnectingWebSocket,
  reconnecting,
  backoffDelay,
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
