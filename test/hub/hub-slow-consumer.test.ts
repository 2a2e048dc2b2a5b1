// A hub subscriber that does not read is cut off with 4008 (docs/protocol.md), not 1008, when the
// route is mounted with `hub.routeOptions`, so the hub's clients come back and catch up; a route
// mounted with the handlers alone keeps the generic 1008.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer } from '../../src/index.js';
import { Hub } from '../../src/hub/index.js';
import { OP, RawClient } from '../interop/raw-client.js';

const text = (value: unknown): { opcode: number; payload: Buffer } => ({ opcode: OP.Text, payload: Buffer.from(JSON.stringify(value)) });

for (const [label, mount, expected] of [
  ['hub.routeOptions', (hub: Hub) => hub.routeOptions, 4008],
  ['handlers only', (hub: Hub) => ({ handlers: hub.handlers }), 1008],
] as const) {
  test(`a hub subscriber that stops reading is closed with ${expected} (${label})`, { timeout: 20_000 }, async () => {
    const hub = new Hub({ anonymous: true, history: { size: 0, ttl: 0 } });
    await hub.start();
    const server = new WebSocketServer<unknown>({ pingInterval: 0, maxBufferedAmount: 64 * 1024 });
    server.route('/ws', mount(hub));
    const { port } = await server.listen(0, '127.0.0.1');
    const client = await RawClient.connect(port, { path: '/ws' });
    try {
      client.send(text({ type: 'connect', id: 1 }), text({ type: 'subscribe', id: 2, topic: 'flood' }));
      await client.nextMessage();
      await client.nextMessage(); // the subscribe reply
      client.socket.pause(); // from here on it reads nothing: the kernel buffers, then the server's, fill
      const payload = 'x'.repeat(16 * 1024);
      for (let i = 0; i < 1000; i++) {
        await hub.publish('flood', payload);
        if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      client.socket.resume();
      const close = await client.expectClose({ timeout: 10_000 });
      assert.equal(close.code, expected);
      assert.equal(close.reason.toString(), 'slow consumer');
    } finally {
      client.destroy();
      await server.close();
      await hub.close();
    }
  });
}
