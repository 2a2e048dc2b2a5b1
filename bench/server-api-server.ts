// The server under test of bench/server-api.ts, in a process of its own: a Hub (in-memory broker,
// anonymous) with the server API at /api/ and the hub's WebSocket endpoint (any path: /ws) on one
// http.Server, as `duplex serve` mounts them. Prints "ready <port>" once listening.
//
//   node dist/bench/server-api-server.js --key KEY [--port 0]
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';

import { WebSocketServer } from '../src/index.js';
import { Hub, createServerApi } from '../src/hub/index.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, key: { type: 'string' } } });
if (values.key === undefined) throw new Error('--key KEY is required');

const hub = new Hub({ anonymous: true });
await hub.start();
const api = createServerApi(hub, { keys: [values.key] });
const http = createServer((req, res) => {
  void api(req, res).then((handled) => {
    if (!handled) res.writeHead(404).end();
  });
});
// No compression on either side: the HTTP bodies are not compressed either.
new WebSocketServer<unknown>({ ...hub.routeOptions, perMessageDeflate: false, pingInterval: 0 }).attach(http);
http.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`ready ${(http.address() as AddressInfo).port}\n`);
});
const stop = (): void => {
  http.closeAllConnections();
  void hub.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
