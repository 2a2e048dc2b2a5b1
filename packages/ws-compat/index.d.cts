import WebSocket = require('duplex-ws/ws');
export = WebSocket;
