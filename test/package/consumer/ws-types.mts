// Type-checked (strict): ws-style code against the published declarations of duplex-ws/ws.
import WebSocket, { WebSocketServer, createWebSocketStream, type RawData } from 'duplex-ws/ws';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20, perMessageDeflate: { threshold: 512 } });
wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
  const ip: string | undefined = req.socket.remoteAddress;
  ws.on('message', (data: RawData, isBinary: boolean) => {
    for (const client of wss.clients) if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
  });
  ws.send(`hello ${ip}`, (error?: Error) => void error);
  const stream: Duplex = createWebSocketStream(ws);
  stream.end();
});
export function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
}
const client = new WebSocket('ws://localhost:8080', ['chat'], { headers: { authorization: 'Bearer x' }, handshakeTimeout: 5000 });
client.binaryType = 'arraybuffer';
client.onmessage = (event) => void event.data;
client.addEventListener('close', (event) => void event.code);
client.ping();
// @ts-expect-error: send takes data, not a number of arguments like this
client.send();
