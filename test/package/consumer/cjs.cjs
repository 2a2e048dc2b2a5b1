// A consumer's CommonJS module: every subpath through require().
const { WebSocketServer, connect, CloseCode } = require('duplex-ws');
const { Connection } = require('duplex-ws/protocol');
const { WHATWGWebSocket } = require('duplex-ws/whatwg');
const { Hub, MemoryBroker, HubClient } = require('duplex-ws/hub');
const { DuplexClient } = require('duplex-ws/client');

const loaded = [Connection, WHATWGWebSocket, Hub, MemoryBroker, HubClient, DuplexClient];
if (process.argv.includes('--brokers')) loaded.push(require('duplex-ws/hub/redis').RedisBroker, require('duplex-ws/hub/nats').NatsBroker);
if (!loaded.every((x) => typeof x === 'function')) throw new Error('an export is not a function');

async function main() {
  const server = new WebSocketServer({ handlers: { message(ws, data) { ws.send(`echo ${data}`); } } });
  await server.listen(0, '127.0.0.1');
  const answer = await new Promise((resolve, reject) => {
    connect(`ws://127.0.0.1:${server.address().port}/`, {
      handlers: { message(ws, data) { resolve(String(data)); ws.close(CloseCode.NormalClosure); } },
    }).then((ws) => ws.send('cjs'), reject);
  });
  await server.close();
  console.log(answer);
}
main().catch((error) => { console.error(error); process.exitCode = 1; });
