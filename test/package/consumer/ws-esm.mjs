// A consumer of the ws API in ESM, written as for `import WebSocket, { WebSocketServer } from 'ws'`.
import WebSocket, { WebSocketServer, createWebSocketStream } from 'duplex-ws/ws';

if (WebSocket.WebSocketServer !== WebSocketServer || typeof createWebSocketStream !== 'function') throw new Error('exports missing');

const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
await new Promise((resolve) => wss.once('listening', resolve));
wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(`ws ${data}`, { binary: isBinary })));
const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}/`);
ws.on('open', () => ws.send('esm'));
const [data, isBinary] = await new Promise((resolve) => ws.once('message', (...args) => resolve(args)));
console.log(`${data} ${isBinary}`);
ws.close();
await new Promise((resolve) => ws.once('close', resolve));
await new Promise((resolve) => wss.close(resolve));
