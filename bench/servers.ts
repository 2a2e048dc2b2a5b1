// Benchmark servers, one process each, for `bench/run.ts`: the same workloads written with
// duplex and with `ws` the way their documentation suggests.
//
//   node dist/bench/servers.js --impl duplex|ws|compat --mode echo|broadcast [--deflate] [--port 0]
//
// `compat` is the ws server code below, word for word, on duplex-ws/ws instead of ws: what a
// user who switched by changing the import line gets.
//
// Prints `ready <port>` once listening. echo: every message back to its sender. broadcast:
// every message to every connection (wsload's broadcast mode reads and ignores its own copy).
import { parseArgs } from 'node:util';
import { WebSocketServer as WsServer, WebSocket as WsSocket, type RawData } from 'ws';
import { WebSocketServer, prepareMessage, type WebSocket } from '../src/index.js';
import * as compat from '../src/ws/index.js';

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

/** What the code below uses of ws's API, which `ws` and duplex-ws/ws both have. */
interface WsApiSocket {
  readonly readyState: number;
  on(event: 'message', listener: (data: RawData, isBinary: boolean) => void): unknown;
  send(data: RawData, options: { binary: boolean }): void;
}
interface WsApiServer {
  readonly clients: Set<WsApiSocket>;
  on(event: 'connection', listener: (ws: WsApiSocket) => void): unknown;
  once(event: 'listening', listener: () => void): unknown;
  address(): unknown;
}

/** The ws server of ws's README, on `ws` itself or on duplex-ws/ws (the same code: only the module differs). */
async function startWs(Server: new (options: { port: number; host: string; perMessageDeflate: boolean; maxPayload: number }) => unknown, OPEN: number): Promise<number> {
  const server = new Server({ port, host: '127.0.0.1', perMessageDeflate: Boolean(values.deflate), maxPayload: 100 << 20 }) as WsApiServer;
  server.on('connection', (ws) => {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!broadcast) {
        ws.send(data, { binary: isBinary });
        return;
      }
      // ws's README recipe ("Server broadcast"): every open client but none skipped.
      for (const client of server.clients) if (client.readyState === OPEN) client.send(data, { binary: isBinary });
    });
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return (server.address() as { port: number }).port;
}

const bound =
  values.impl === 'ws' ? await startWs(WsServer, WsSocket.OPEN) : values.impl === 'compat' ? await startWs(compat.WebSocketServer, compat.WebSocket.OPEN) : await startDuplex();
process.stdout.write(`ready ${bound}\n`);
process.on('SIGTERM', () => process.exit(0));
