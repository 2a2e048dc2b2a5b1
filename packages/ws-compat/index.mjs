// `import WebSocket, { WebSocketServer } from 'ws'` in an app whose `overrides` map `ws` to this
// package: the same names as ws's own ESM wrapper, from duplex-ws/ws.
export { default, WebSocket, WebSocketServer, createWebSocketStream } from 'duplex-ws/ws';
