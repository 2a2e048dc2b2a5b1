/**
 * `duplex-ws/ws`: a drop-in for the npm `ws` package (version 8), on duplex's engine.
 * `import WebSocket, { WebSocketServer, createWebSocketStream } from 'duplex-ws/ws'`, or
 * `const WebSocket = require('duplex-ws/ws')` with `WebSocket.Server`, `WebSocket.WebSocketServer`,
 * `WebSocket.createWebSocketStream` as in ws.
 */
import { WebSocketServer } from './server.js';
import { createWebSocketStream } from './stream.js';
import { WebSocket } from './websocket.js';

WebSocket.WebSocketServer = WebSocketServer;
WebSocket.Server = WebSocketServer;
WebSocket.WebSocket = WebSocket;
WebSocket.createWebSocketStream = createWebSocketStream;

export default WebSocket;
export { WebSocket, WebSocketServer, WebSocketServer as Server, createWebSocketStream };
export type {
  ClientOptions,
  PerMessageDeflateOptions,
  RawData,
  SendCallback,
  SendData,
  SendOptions,
  ServerOptions,
  WebSocketEvents,
} from './websocket.js';
export type { ResolvedServerOptions, UpgradeCallback, WebSocketServerEvents } from './server.js';
export type { VerifyClient, VerifyClientCallback, VerifyClientInfo } from './options.js';
export type { BinaryType } from './constants.js';
export type { WsError } from './errors.js';
export {
  CloseEvent,
  ErrorEvent,
  Event,
  MessageEvent,
  type AddEventListenerOptions,
  type CloseEventInit,
  type ErrorEventInit,
  type EventListenerLike,
  type MessageEventInit,
} from './event-target.js';
