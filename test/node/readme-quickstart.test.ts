// The README's "A server in a few lines" and "A client", and the connect() example of
// docs/clients.md, read from the documents and run as written (ports replaced).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer, connect } from '../../src/index.js';
import { docExample, loadExample, readmeExample, runExample } from './readme-example.js';
import { deferred } from './server-helpers.js';

test('README: a server in a few lines runs as written: listens, then closes', { timeout: 5000 }, async () => {
  const code = readmeExample('A server in a few lines', 'new WebSocketServer');
  assert.deepEqual(await runExample(code, { "listen(8080, '127.0.0.1')": "listen(0, '127.0.0.1')" }), []);
});

test('README: a server in a few lines welcomes, echoes and sees the close', { timeout: 5000 }, async () => {
  const closes: [number, string][] = [];
  (globalThis as Record<string, unknown>).docCloses = closes;
  const code = readmeExample('A server in a few lines', 'new WebSocketServer');
  const { server } = await loadExample<{ server: WebSocketServer<unknown> }>(code, ['server'], {
    "listen(8080, '127.0.0.1')": "listen(0, '127.0.0.1')",
    'await server.close();': '',
    "console.log('closed', code, reason)": 'globalThis.docCloses.push([code, reason])',
  });
  try {
    const got: string[] = [];
    const two = deferred<void>();
    const ws = await connect(`ws://127.0.0.1:${server.address()!.port}/`, {
      handlers: {
        message(_ws, data) {
          got.push(String(data));
          if (got.length === 2) two.resolve();
        },
      },
    });
    assert.equal(ws.extensions.includes('permessage-deflate'), true, 'perMessageDeflate: true');
    ws.send('echo me');
    await two.promise;
    assert.deepEqual(got, ['welcome', 'echo me']);
    ws.close(1000, 'bye');
    for (let i = 0; i < 100 && closes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(closes, [[1000, 'bye']]);
  } finally {
    delete (globalThis as Record<string, unknown>).docCloses;
    await server.close();
  }
});

test('README: the client example talks to an echo server', { timeout: 5000 }, async () => {
  const server = new WebSocketServer({ handlers: { message: (ws, data, isBinary) => void ws.send(data, { binary: isBinary }) } });
  const { port } = await server.listen(0);
  try {
    const code = readmeExample('A client', 'connect(');
    assert.deepEqual(await runExample(code, { 'ws://127.0.0.1:8080/': `ws://127.0.0.1:${port}/` }), ['got hello']);
  } finally {
    await server.close();
  }
});

test('docs/clients.md: connect() with a header, read with for await, or refused', { timeout: 5000 }, async () => {
  const server = new WebSocketServer();
  server.route('/', {
    upgrade: ({ headers, reject }) => {
      if (headers.authorization !== 'Bearer s3cret') reject(401, 'no');
      return undefined;
    },
    handlers: { message: (ws, data) => void ws.send(data) },
  });
  const refusing = new WebSocketServer({ upgrade: ({ reject }) => reject(401, 'go away'), handlers: {} });
  const { port } = await server.listen(0);
  const other = await refusing.listen(0);
  try {
    const code = docExample('docs/clients.md', 'One connection: connect()', 'HandshakeError');
    assert.deepEqual(await runExample(code, { 'ws://127.0.0.1:8080/': `ws://127.0.0.1:${port}/` }), ['got hello']);
    assert.deepEqual(await runExample(code, { 'ws://127.0.0.1:8080/': `ws://127.0.0.1:${other.port}/` }), ['refused: 401']);
  } finally {
    await server.close();
    await refusing.close();
  }
});
