// The "Three ways to write a handler" examples of docs/handlers.md, read from the guide and run
// as written (the server listening on an ephemeral port), checked from a client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer, connect } from '../../src/index.js';
import { docExample, loadExample } from './readme-example.js';

const GUIDE = 'docs/handlers.md';

async function exchange<D>(server: WebSocketServer<D>, send: string[], expect: number): Promise<string[]> {
  const { port } = await server.listen(0);
  const got: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const ws = await connect(`ws://127.0.0.1:${port}/`, {
    handlers: {
      message(_ws, data) {
        got.push(String(data));
        if (got.length === expect) done();
      },
    },
  });
  for (const m of send) ws.send(m);
  await finished;
  ws.close();
  await server.close();
  return got;
}

test('docs/handlers.md: callbacks', async () => {
  const errors: string[] = [];
  (globalThis as Record<string, unknown>).docErrors = errors;
  try {
    const code = docExample(GUIDE, 'Callbacks', 'drain(ws)');
    const { server } = await loadExample<{ server: WebSocketServer<unknown> }>(code, ['server'], {
      'console.error(ws.id, error.message)': 'globalThis.docErrors.push(error.message)',
    });
    assert.deepEqual(await exchange(server, ['a', 'b'], 3), ['hi', 'a', 'b']);
    assert.deepEqual(errors, []);
  } finally {
    delete (globalThis as Record<string, unknown>).docErrors;
  }
});

test('docs/handlers.md: async iteration', async () => {
  const code = docExample(GUIDE, 'Async iteration', 'for await');
  const { server } = await loadExample<{ server: WebSocketServer<unknown> }>(code, ['server']);
  assert.deepEqual(await exchange(server, ['x', 'y'], 2), ['echo: x', 'echo: y']);
});

test('docs/handlers.md: a class', async () => {
  const closes: number[] = [];
  (globalThis as Record<string, unknown>).docCloses = closes;
  try {
    const code = docExample(GUIDE, 'A class', 'extends WebSocketHandler');
    const { server } = await loadExample<{ server: WebSocketServer<unknown> }>(code, ['server'], {
      "console.log('left with', code)": 'globalThis.docCloses.push(code)',
    });
    assert.deepEqual(await exchange(server, ['p', 'q'], 3), ['welcome', '#1: p', '#2: q']);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(closes, [1000]);
  } finally {
    delete (globalThis as Record<string, unknown>).docCloses;
  }
});
