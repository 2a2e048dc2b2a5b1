// Type-checked (strict) against the published declarations: typical use of every subpath, and
// mistakes the types must refuse.
import { WebSocketServer, connect, CloseCode, HandshakeError, type WebSocket, type MessageData } from 'duplex-ws';
import { Connection, EventQueue, type ConnectionEvent } from 'duplex-ws/protocol';
import { WHATWGWebSocket } from 'duplex-ws/whatwg';
import { Hub, MemoryBroker, HubClient, createJwtVerifier, type HubIdentity } from 'duplex-ws/hub';
import { RedisBroker } from 'duplex-ws/hub/redis';
import { NatsBroker } from 'duplex-ws/hub/nats';
import { DuplexClient, type DuplexState } from 'duplex-ws/client';

interface User { name: string }

const server = new WebSocketServer();
server.route('/chat/:room', {
  upgrade: ({ params, reject }) => (params.room === 'x' ? reject(403, 'no') : { user: { name: params.room } as User }),
  handlers: {
    open(ws) {
      const name: string = ws.data.user.name;
      ws.send(`hi ${name}`);
    },
    message(ws, data: MessageData, isBinary: boolean) {
      ws.send(data, { binary: isBinary });
    },
  },
});
// @ts-expect-error: an unknown option is refused
new WebSocketServer({ handlerz: {} });

export async function client(): Promise<void> {
  try {
    const ws: WebSocket<undefined> = await connect('ws://127.0.0.1:1/');
    ws.close(CloseCode.NormalClosure, 'bye');
    // @ts-expect-error: close codes are numbers
    ws.close('1000');
  } catch (error) {
    if (error instanceof HandshakeError) console.log(error.status satisfies number);
  }
}

const events = new EventQueue();
const conn = new Connection({ side: 'server' }, events);
conn.receiveData(new Uint8Array(0));
const taken: ConnectionEvent[] = events.take();

const browserLike = new WHATWGWebSocket('ws://127.0.0.1:1/');
browserLike.onmessage = (event) => console.log(event.data);

const hub = new Hub({ broker: new MemoryBroker() });
const verify = createJwtVerifier({ secret: 'x'.repeat(32) });
export const identity: Promise<HubIdentity> = verify('token');
export const redis = new RedisBroker({ url: 'redis://127.0.0.1:6379' });
export const nats = new NatsBroker({ servers: '127.0.0.1:4222' });
export const nodeClient = new HubClient('ws://127.0.0.1:1/ws');

const browser = new DuplexClient('ws://127.0.0.1:1/ws', { WebSocket: WHATWGWebSocket });
browser.on('state', (state: DuplexState) => console.log(state));

export { hub, taken, browser };
