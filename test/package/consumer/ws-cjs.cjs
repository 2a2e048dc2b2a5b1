// A consumer of the ws API in CommonJS, written as for `require('ws')`: only the module name differs.
const WebSocket = require('duplex-ws/ws');
const { WebSocketServer } = WebSocket;

if (typeof WebSocket !== 'function' || WebSocket.WebSocket !== WebSocket) throw new Error('require() must return the WebSocket class itself');
if (WebSocket.Server !== WebSocketServer || typeof WebSocket.createWebSocketStream !== 'function') throw new Error('statics missing');
if (WebSocket.OPEN !== 1 || WebSocket.CLOSED !== 3) throw new Error('ready-state constants missing');

const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => {
  const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}/`);
  ws.on('open', () => ws.send('cjs'));
  ws.on('message', (data, isBinary) => {
    console.log(`${data} ${isBinary}`);
    ws.close();
  });
  ws.on('close', () => wss.close());
});
wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(`ws ${data}`, { binary: isBinary })));
