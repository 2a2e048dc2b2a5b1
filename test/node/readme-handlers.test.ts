// The README's "Three ways to write a handler" examples, run as written (listening on an
// ephemeral port instead of a fixed one) and checked from a client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketHandler, WebSocketServer, connect, fromClass, type MessageData } from '../../src/index.js';

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

test('README: callbacks', async () => {
  const errors: string[] = [];
  const server = new WebSocketServer({
    handlers: {
      open(ws) { ws.send('hi'); },
      message(ws, data, isBinary) { ws.send(data, { binary: isBinary }); },
      drain() {},
      error(_ws, error) { errors.push(error.message); },
      close() {},
    },
  });
  assert.deepEqual(await exchange(server, ['a', 'b'], 3), ['hi', 'a', 'b']);
  assert.deepEqual(errors, []);
});

test('README: async iteration', async () => {
  const server = new WebSocketServer({
    handlers: {
      async open(ws) {
        for await (const message of ws) {
          await ws.sendAsync(`echo: ${message}`);
        }
      },
    },
  });
  assert.deepEqual(await exchange(server, ['x', 'y'], 2), ['echo: x', 'echo: y']);
});

test('README: a class', async () => {
  const closes: number[] = [];
  class Chat extends WebSocketHandler {
    count = 0;
    open() { this.send('welcome'); }
    message(data: MessageData) { this.count++; this.send(`#${this.count}: ${data}`); }
    close(code: number) { closes.push(code); }
  }
  const server = new WebSocketServer({ handlers: fromClass(Chat) });
  assert.deepEqual(await exchange(server, ['p', 'q'], 3), ['welcome', '#1: p', '#2: q']);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(closes, [1000]);
});
