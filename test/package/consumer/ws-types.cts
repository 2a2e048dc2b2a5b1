// CommonJS consumers of duplex-ws/ws: `require` gives the WebSocket class, with its statics.
import WebSocket = require('duplex-ws/ws');

export const wss: InstanceType<typeof WebSocket.WebSocketServer> = new WebSocket.WebSocketServer({ noServer: true });
export const open: number = WebSocket.OPEN;
export const ws: WebSocket = new WebSocket('ws://localhost:8080');
