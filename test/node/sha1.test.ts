// The Node binding's handshake SHA-1 (node:crypto, injected into the engine's handshake): the same
// digests and accept keys as the engine's own plain-TypeScript SHA-1, and connect() relies on it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { connect, WebSocketServer } from '../../src/index.js';
import { nodeSha1 } from '../../src/node/sha1.js';
import { acceptKey } from '../../src/protocol/handshake.js';
import { sha1 } from '../../src/protocol/sha1.js';

test('nodeSha1 equals the engine sha1 at every padding boundary and on random data', () => {
  for (const length of [0, 1, 55, 56, 57, 60, 63, 64, 65, 119, 120, 128, 129, 1000]) {
    const data = Uint8Array.from({ length }, (_, i) => (i * 31 + 7) & 0xff);
    assert.deepEqual(Buffer.from(nodeSha1(data)), Buffer.from(sha1(data)), `length ${length}`);
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
      assert.deepEqual(Buffer.from(nodeSha1(data)), Buffer.from(sha1(data)));
    }),
    { numRuns: 300 },
  );
});

test('nodeSha1 gives the same accept key as the built-in SHA-1 (RFC 6455 §1.3 example and random keys)', () => {
  assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ==', nodeSha1), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
      const key = Buffer.from(bytes).toString('base64');
      assert.equal(acceptKey(key, nodeSha1), acceptKey(key));
    }),
    { numRuns: 300 },
  );
});

test('connect() completes the handshake with the injected SHA-1', async () => {
  const server = new WebSocketServer({ handlers: { open: (ws) => void ws.send('hi') } });
  const { port } = await server.listen(0, '127.0.0.1');
  try {
    const received = new Promise<string>((resolve) => {
      void connect(`ws://127.0.0.1:${port}/`, { handlers: { message: (ws, data) => (resolve(String(data)), ws.close()) } });
    });
    assert.equal(await received, 'hi');
  } finally {
    await server.close();
  }
});
