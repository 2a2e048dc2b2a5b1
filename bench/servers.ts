// Benchmark servers, one process each, for `bench/run.ts`: the same workloads written with
// duplex and with `ws` the way their documentation suggests.
//
//   node dist/bench/servers.js --impl duplex|ws --mode echo|broadcast [--deflate] [--port 0]
//
// Prints `ready <port>` once listening. echo: every message back to its sender. broadcast:
// every message to every connection (wsload's broadcast mode reads and ignores its own copy).
import { parseArgs } from 'node:util';
import { WebSocketServer as WsServer, WebSocket as WsSocket, type RawData } from 'ws';
import { WebSocketServer, prepareMessage, type WebSocket } from '../src/index.js';

const { values } = parseArgs({
  options: {
    impl: { type: 'string', default: 'duplex' },
    mode: { type: 'string', default: 'echo' },
    deflate: { type: 'boolean', default: false },
    port: { type: 'string', default: '0' },
  },
});
const port = Number(values.port);
const broadcast = values.mode === 'broadcast';

async function startDuplex(): Promise<number> {
  const server: WebSocketServer = new WebSocketServer({
    perMessageDeflate: values.deflate,
    textAsBuffer: true,
    pingInterval: 0,
    maxBufferedAmount: 64 << 20,
    handlers: {
      message(ws: WebSocket<undefined>, data, isBinary) {
        if (!broadcast) {
          if (isBinary) ws.send(data as Buffer);
          else ws.sendText(data as Buffer);
          return;
        }
        // Frame once, write the same bytes to every connection.
        const prepared = prepareMessage(data as Buffer, isBinary);
        for (const client of server.clients) client.sendPrepared(prepared);
      },
    },
  });
  return (await server.listen(port, '127.0.0.1')).port;
}

async function startWs(): Promise<number> {
  const server = new WsServer({ port, host: '127.0.0.1', perMessageDeflate: values.deflate, maxPayload: 100 << 20 });
  server.on('connection', (ws) => {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!broadcast) {
        ws.send(data, { binary: isBinary });
        return;
      }
      // ws's README recipe ("Server broadcast"): every open client but none skipped.
      for (const client of server.clients) if (client.readyState === WsSocket.OPEN) client.send(data, { binary: isBinary });
    });
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return (server.address() as { port: number }).port;
}

const bound = values.impl === 'ws' ? await startWs() : await startDuplex();
process.stdout.write(`ready ${bound}\n`);
process.on('SIGTERM', () => process.exit(0));
