// The first example of docs/hub.md (a Hub on a WebSocketServer, a HubClient subscribing and
// publishing), read from the guide and run as written in a child `node`, on a free port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { docExample, runExample } from '../node/readme-example.js';

/** A port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

test('docs/hub.md: a hub on a WebSocketServer, a HubClient subscribes and gets both publications in order, then all stops', { timeout: 10_000 }, async () => {
  const port = await freePort();
  const code = docExample('docs/hub.md', 'A hub on a WebSocketServer', 'new HubClient');
  const lines = await runExample(code, { 'server.listen(8080)': `server.listen(${port})`, 'ws://127.0.0.1:8080/hub': `ws://127.0.0.1:${port}/hub` }, 8000);
  assert.deepEqual(lines, ['1 {"text":"from a client"}', '2 {"text":"from server code"}']);
});
