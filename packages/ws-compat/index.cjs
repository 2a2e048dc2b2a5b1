'use strict';
// `require('ws')` in an app whose `overrides` map `ws` to this package: the WebSocket class of
// duplex-ws/ws itself, with its statics (WebSocketServer, Server, createWebSocketStream, …),
// exactly the shape `require('ws')` has.
module.exports = require('duplex-ws/ws');
