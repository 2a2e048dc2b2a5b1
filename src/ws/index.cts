/**
 * The CommonJS entry of `duplex-ws/ws`: `require('duplex-ws/ws')` is the WebSocket class itself,
 * with `WebSocket.Server`, `WebSocket.WebSocketServer` and `WebSocket.createWebSocketStream`, as
 * `require('ws')` is. (An import alias, not `mod.default`, so that `WebSocket` is a type too.)
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS entry: `export =` needs this form
import mod = require('./index.js');
import WebSocket = mod.WebSocket;
export = WebSocket;
