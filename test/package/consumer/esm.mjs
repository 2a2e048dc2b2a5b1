// A consumer's ES module: every subpath imports, and a server and client talk.
import { WebSocketServer, connect, CloseCode } from 'duplex-ws';
import { Connection } from 'duplex-ws/protocol';
import { WHATWGWebSocket } from 'duplex-ws/whatwg';
import { Hub, MemoryBroker, HubClient, createJwtVerifier } from 'duplex-ws/hub';
import { DuplexClient } from 'duplex-ws/client';

const brokers = process.argv.includes('--brokers');
const loaded = [Connection, WHATWGWebSocket, Hub, MemoryBroker, HubClient, createJwtVerifier, DuplexClient];
if (brokers) {
  const { RedisBroker } = await import('duplex-ws/hub/redis');
  const { NatsBroker } = await import('duplex-ws/hub/nats');
  loaded.push(RedisBroker, NatsBroker);
}
if (!loaded.every((x) => typeof x === 'function')) throw new Error('an export is not a function');

const server = new WebSocketServer({ handlers: { message(ws, data) { ws.send(`echo ${data}`); } } });
await server.listen(0, '127.0.0.1');
const answer = await new Promise((resolve, reject) => {
  connect(`ws://127.0.0.1:${server.address().port}/`, {
    handlers: { message(ws, data) { resolve(String(data)); ws.close(CloseCode.NormalClosure); } },
  }).then((ws) => ws.send('esm'), reject);
});
await server.close();
console.log(answer);
