// Interop with a peer nobody here wrote: the npm `ws` package, as client and as server, with
// and without permessage-deflate, text and binary, from 0 bytes to 16 MiB.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WebSocketServer as WsServer, WebSocket as WsClient, type RawData } from 'ws';
import { WebSocketServer, connect, type WebSocket } from '../../src/index.js';

const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20];

function payload(size: number, text: boolean): string | Buffer {
  if (!text) return randomBytes(size);
  // Mixed-width UTF-8 (1–4 byte sequences), so text is not just ASCII.
  const unit = 'aé€😀';
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

async function duplexEcho(deflate: boolean): Promise<{ url: string; server: WebSocketServer }> {
  const server = new WebSocketServer({
    perMessageDeflate: deflate,
    maxMessageSize: 100 << 20, // the 16 MiB case: above the 1 MiB default
    textAsBuffer: true,
    handlers: {
      message(ws, data, isBinary) {
        if (isBinary) ws.send(data as Buffer);
        else ws.sendText(data as Buffer);
      },
    },
  });
  const { port } = await server.listen(0);
  return { url: `ws://127.0.0.1:${port}/echo`, server };
}

async function wsEcho(deflate: boolean): Promise<{ url: string; server: WsServer }> {
  const server = new WsServer({ port: 0, host: '127.0.0.1', perMessageDeflate: deflate, maxPayload: 100 << 20 });
  server.on('connection', (ws) => ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const address = server.address() as { port: number };
  return { url: `ws://127.0.0.1:${address.port}/`, server };
}

/** Round-trip every size through `ws` client → duplex server. */
for (const deflate of [false, true]) {
  describe(`ws client → duplex server (deflate ${deflate})`, async () => {
    const { url, server } = await duplexEcho(deflate);
    after(() => server.close());
    for (const text of [true, false]) {
      test(`${text ? 'text' : 'binary'} messages of ${SIZES.join(', ')} bytes come back intact`, async () => {
        const client = new WsClient(url, { perMessageDeflate: deflate, maxPayload: 100 << 20 });
        await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
        if (deflate) assert.match(client.extensions, /permessage-deflate/);
        for (const size of SIZES) {
          const sent = payload(size, text);
          const reply = new Promise<[RawData, boolean]>((resolve) => client.once('message', (d: RawData, b: boolean) => resolve([d, b])));
          client.send(sent, { binary: !text });
          const [data, isBinary] = await reply;
          assert.equal(isBinary, !text);
          if (text) assert.equal((data as Buffer).toString('utf8'), sent);
          else assert.ok((data as Buffer).equals(sent as Buffer), `binary of ${size} bytes differs`);
        }
        const closed = new Promise<[number, string]>((resolve) => client.once('close', (c: number, r: Buffer) => resolve([c, r.toString()])));
        client.close(4000, 'bye');
        assert.deepEqual(await closed, [4000, 'bye']);
      });
    }
  });

  describe(`duplex client → ws server (deflate ${deflate})`, async () => {
    const { url, server } = await wsEcho(deflate);
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const text of [true, false]) {
      test(`${text ? 'text' : 'binary'} messages of ${SIZES.join(', ')} bytes come back intact`, async () => {
        let pending: ((value: [string | Buffer, boolean]) => void) | undefined;
        let closed!: (value: [number, string]) => void;
        const closedP = new Promise<[number, string]>((resolve) => (closed = resolve));
        const ws: WebSocket<undefined> = await connect(url, {
          perMessageDeflate: deflate,
          maxMessageSize: 100 << 20,
          handlers: {
            message: (_ws, data, isBinary) => pending?.([data, isBinary]),
            close: (_ws, code, reason) => closed([code, reason]),
          },
        });
        assert.equal(ws.extensions.includes('permessage-deflate'), deflate);
        for (const size of SIZES) {
          const sent = payload(size, text);
          const reply = new Promise<[string | Buffer, boolean]>((resolve) => (pending = resolve));
          ws.send(sent);
          const [data, isBinary] = await reply;
          assert.equal(isBinary, !text);
          if (text) assert.equal(data, sent);
          else assert.ok((data as Buffer).equals(sent as Buffer), `binary of ${size} bytes differs`);
        }
        ws.close(1000, 'done');
        assert.deepEqual(await closedP, [1000, 'done']);
      });
    }
  });
}

test('a ws server closing with a code and reason is reported to the duplex client', async () => {
  const server = new WsServer({ port: 0, host: '127.0.0.1' });
  server.on('connection', (ws) => ws.close(4001, 'go away'));
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as { port: number };
  const result = await new Promise<[number, string]>((resolve, reject) => {
    connect(`ws://127.0.0.1:${port}/`, { handlers: { close: (_ws, code, reason) => resolve([code, reason]) } }).catch(reject);
  });
  assert.deepEqual(result, [4001, 'go away']);
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('pings from a ws client are answered and pings from duplex reach ws', async () => {
  const { url, server } = await duplexEcho(false);
  const client = new WsClient(url);
  await new Promise((resolve) => client.once('open', resolve));
  const pong = new Promise<Buffer>((resolve) => client.once('pong', resolve));
  client.ping('hello');
  assert.equal((await pong).toString(), 'hello');
  const [peer] = [...server.clients];
  const ping = new Promise<Buffer>((resolve) => client.once('ping', resolve));
  peer.ping('from-server');
  assert.equal((await ping).toString(), 'from-server');
  client.close();
  await server.close();
});

test('a protocol violation from a raw peer is answered with 1002 and the socket closes', async () => {
  const { url, server } = await duplexEcho(false);
  const client = new WsClient(url);
  await new Promise((resolve) => client.once('open', resolve));
  const closed = new Promise<number>((resolve) => client.once('close', (code: number) => resolve(code)));
  client.on('error', () => {});
  // A reserved opcode (0x3), masked as a client must: written under ws's framing layer.
  const raw = (client as unknown as { _socket: import('node:net').Socket })._socket;
  raw.write(Buffer.from([0x83, 0x80, 1, 2, 3, 4]));
  assert.equal(await closed, 1002);
  await server.close();
});
