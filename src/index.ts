/**
 * duplex: full-duplex real-time messaging for TypeScript on Node.js.
 * @packageDocumentation
 */
export * from './protocol/index.js';
export { WebSocket, type WebSocketHandlers, type WebSocketOptions, type MessageData, type SendOptions } from './node/websocket.js';
export { WebSocketServer, type WebSocketServerOptions } from './node/server.js';
export { connect, type ConnectOptions } from './node/client.js';
export { createDeflateCodec } from './node/deflate.js';
export { createConsoleLogger, silentLogger, type Logger, type LogFields, type LogLevel } from './node/logger.js';
