// @fastify/websocket on the ws API. The plugin does `require('ws')` (CommonJS); for the duplex
// run that request is answered with duplex-ws/ws, as an npm `overrides` entry for `ws` would do
// for a user (see requireWithWs in ./impls.ts), and each test proves the redirection took
// effect: the plugin's server and sockets are instances of the implementation's classes.
// The clients are the real ws.
//
// Deliberate difference from ws met here (duplex is stricter on the protocol): an upgrade
// request without a Host header is refused with 400 (RFC 7230 §5.4). fastify.injectWS builds
// such a request unless the caller passes `{ headers: { host } }`.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo, Socket } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import type fastifyWebsocketType from '@fastify/websocket';
import { WebSocket as WsClient, type RawData } from 'ws';
import { IMPL_NAMES, useImpl, requireWithWs, next, until, within, type Impl } from './impls.js';

const TEST_TIMEOUT = 15_000;

type Plugin = typeof fastifyWebsocketType;

/** A fastify app with the plugin (as loaded for `impl`), set up by `routes`, listening on 127.0.0.1. */
async function startApp(
  plugin: Plugin,
  routes: (app: FastifyInstance) => void,
  pluginOptions: Parameters<Plugin>[1] = {},
): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify();
  await app.register(plugin, pluginOptions);
  // Routes must be added after the plugin (its onRoute hook turns `websocket: true` routes into upgrades).
  await app.register(async (scope) => routes(scope));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { app, url: `ws://127.0.0.1:${port}` };
}

/** Messages a client received and nobody has taken yet: a server may send before `open` resolves. */
const inboxes = new WeakMap<WsClient, { queue: Array<[RawData, boolean]>; waiter: ((message: [RawData, boolean]) => void) | undefined }>();

/** Open a ws client; its messages are kept from the start for nextMessage. */
function open(url: string, protocolsOrOptions: string[] | ConstructorParameters<typeof WsClient>[2] = {}): Promise<WsClient> {
  const client = Array.isArray(protocolsOrOptions) ? new WsClient(url, protocolsOrOptions) : new WsClient(url, protocolsOrOptions);
  const inbox: { queue: Array<[RawData, boolean]>; waiter: ((message: [RawData, boolean]) => void) | undefined } = { queue: [], waiter: undefined };
  inboxes.set(client, inbox);
  client.on('message', (data, isBinary) => {
    const waiter = inbox.waiter;
    inbox.waiter = undefined;
    if (waiter) waiter([data, isBinary]);
    else inbox.queue.push([data, isBinary]);
  });
  return within(
    new Promise((resolve, reject) => {
      client.once('open', () => resolve(client));
      client.once('error', reject);
      client.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
    }),
    3000,
    `a connection to ${url}`,
  );
}

/** The next message of a client opened by `open`. */
function nextMessage(client: WsClient): Promise<[RawData, boolean]> {
  const inbox = inboxes.get(client)!;
  const queued = inbox.queue.shift();
  if (queued) return Promise.resolve(queued);
  return within(new Promise((resolve) => (inbox.waiter = resolve)), 3000, 'a message');
}

/** The HTTP status an upgrade is refused with. */
function refusal(url: string, options: ConstructorParameters<typeof WsClient>[2] = {}): Promise<{ status: number; body: string }> {
  const client = new WsClient(url, options);
  return within(
    new Promise((resolve, reject) => {
      client.once('open', () => {
        client.terminate();
        reject(new Error('expected the upgrade to be refused'));
      });
      client.once('error', reject);
      client.once('unexpected-response', (req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body });
          req.destroy();
        });
      });
    }),
    3000,
    'the refusal',
  );
}

for (const name of IMPL_NAMES) {
  describe(`@fastify/websocket with require('ws') resolved to ${name}`, () => {
    let impl: Impl;
    let plugin: Plugin;
    before(() => {
      impl = useImpl(name);
      plugin = requireWithWs<Plugin>('@fastify/websocket', impl);
    });

    test('the plugin runs on this implementation (the resolution took effect)', { timeout: TEST_TIMEOUT }, async (t) => {
      let socket: unknown;
      const { app, url } = await startApp(plugin, (scope) => {
        scope.get('/', { websocket: true }, (ws) => {
          socket = ws;
          ws.send('hi');
        });
      });
      t.after(() => app.close());
      assert.ok(app.websocketServer instanceof impl.WebSocketServer, 'fastify.websocketServer is this implementation’s server');
      const client = await open(`${url}/`);
      const [data] = await nextMessage(client);
      assert.equal(data.toString(), 'hi');
      assert.ok(socket instanceof impl.WebSocket, 'the route gets this implementation’s WebSocket');
      // The redirection was for that copy only: the ordinary require of the plugin still has ws.
      if (impl.name !== 'ws') assert.notEqual(requireWithWs<Plugin>('@fastify/websocket', useImpl('ws')), plugin);
      client.close();
    });

    test('a websocket: true route echoes text and binary, the HTTP GET of it is a 404', { timeout: TEST_TIMEOUT }, async (t) => {
      const { app, url } = await startApp(plugin, (scope) => {
        scope.get('/echo', { websocket: true }, (ws) => {
          ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
        });
      });
      t.after(() => app.close());
      const client = await open(`${url}/echo`);
      let reply = nextMessage(client);
      client.send('héllo');
      let [data, isBinary] = await reply;
      assert.equal(isBinary, false);
      assert.equal(data.toString(), 'héllo');

      reply = nextMessage(client);
      client.send(Buffer.from([1, 2, 3, 250]));
      [data, isBinary] = await reply;
      assert.equal(isBinary, true);
      assert.deepEqual(data, Buffer.from([1, 2, 3, 250]));

      const closed = next<[number, Buffer]>(client, 'close');
      client.close(4000, 'bye');
      const [code, reason] = await closed;
      assert.equal(code, 4000, 'the server echoes the close code');
      assert.equal(reason.toString(), 'bye');

      const http = await app.inject({ method: 'GET', url: '/echo' });
      assert.equal(http.statusCode, 404);
    });

    test('a preValidation hook refusing with 401 stops the upgrade; with credentials it connects', { timeout: TEST_TIMEOUT }, async (t) => {
      let handled = 0;
      const { app, url } = await startApp(plugin, (scope) => {
        scope.addHook('preValidation', async (request, reply) => {
          if (request.headers.authorization !== 'Bearer good') await reply.code(401).send({ error: 'unauthorized' });
        });
        scope.get('/private', { websocket: true }, (ws) => {
          handled++;
          ws.send('welcome');
        });
      });
      t.after(() => app.close());
      const refused = await refusal(`${url}/private`, { headers: { authorization: 'Bearer bad' } });
      assert.equal(refused.status, 401);
      assert.deepEqual(JSON.parse(refused.body), { error: 'unauthorized' });
      assert.equal(handled, 0);
      assert.equal(app.websocketServer.clients.size, 0);

      const client = await open(`${url}/private`, { headers: { authorization: 'Bearer good' } });
      assert.equal((await nextMessage(client))[0].toString(), 'welcome');
      assert.equal(handled, 1);
      client.close();
    });

    test('route params, the query string and headers reach the handler', { timeout: TEST_TIMEOUT }, async (t) => {
      const { app, url } = await startApp(plugin, (scope) => {
        scope.get<{ Params: { room: string }; Querystring: { user: string } }>('/rooms/:room', { websocket: true }, (ws, request) => {
          ws.send(JSON.stringify({ params: request.params, query: request.query, agent: request.headers['x-agent'], ws: request.ws }));
        });
      });
      t.after(() => app.close());
      const client = await open(`${url}/rooms/kitchen?user=ada`, { headers: { 'x-agent': 'test' } });
      const [data] = await nextMessage(client);
      assert.deepEqual(JSON.parse(data.toString()), { params: { room: 'kitchen' }, query: { user: 'ada' }, agent: 'test', ws: true });
      client.close();
    });

    test('broadcast through fastify.websocketServer.clients; a closed client leaves the set', { timeout: TEST_TIMEOUT }, async (t) => {
      const { app, url } = await startApp(plugin, (scope) => {
        scope.get('/chat', { websocket: true }, (ws) => {
          ws.on('message', (data) => {
            for (const peer of scope.websocketServer.clients) {
              if (peer.readyState === impl.WebSocket.OPEN) peer.send(data.toString());
            }
          });
        });
      });
      t.after(() => app.close());
      const clients = await Promise.all([open(`${url}/chat`), open(`${url}/chat`), open(`${url}/chat`)]);
      await until(() => app.websocketServer.clients.size === 3, 3000, 'three tracked clients');
      for (const peer of app.websocketServer.clients) assert.ok(peer instanceof impl.WebSocket);

      const received = clients.map((client) => nextMessage(client));
      clients[0]!.send('hello all');
      for (const [data] of await Promise.all(received)) assert.equal(data.toString(), 'hello all');

      clients[2]!.close();
      await until(() => app.websocketServer.clients.size === 2, 3000, 'the closed client to leave the set');
      const again = clients.slice(0, 2).map((client) => nextMessage(client));
      clients[1]!.send('two left');
      for (const [data] of await Promise.all(again)) assert.equal(data.toString(), 'two left');
      for (const client of clients) client.close();
    });

    test('server options reach the ws server: maxPayload closes with 1009', { timeout: TEST_TIMEOUT }, async (t) => {
      let serverError: (Error & { code?: string }) | undefined;
      const { app, url } = await startApp(
        plugin,
        (scope) => {
          scope.get('/small', { websocket: true }, (ws) => {
            ws.on('message', (data) => ws.send(data));
          });
        },
        {
          options: { maxPayload: 1024 },
          errorHandler: (error) => {
            serverError = error;
          },
        },
      );
      t.after(() => app.close());
      const client = await open(`${url}/small`);
      client.send(Buffer.alloc(1024, 1));
      assert.equal(((await nextMessage(client))[0] as Buffer).length, 1024);
      const closed = next<[number, Buffer]>(client, 'close');
      client.send(Buffer.alloc(1025, 1));
      assert.equal((await closed)[0], 1009);
      await until(() => serverError !== undefined, 3000, 'the plugin’s errorHandler');
      assert.equal(serverError?.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
    });

    test('server options reach the ws server: handleProtocols and perMessageDeflate', { timeout: TEST_TIMEOUT }, async (t) => {
      const offered: string[][] = [];
      const { app, url } = await startApp(
        plugin,
        (scope) => {
          scope.get('/', { websocket: true }, (ws) => {
            ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
          });
        },
        {
          options: {
            perMessageDeflate: { threshold: 0 },
            handleProtocols: (protocols) => {
              offered.push([...protocols]);
              return protocols.has('chat.v2') ? 'chat.v2' : false;
            },
          },
        },
      );
      t.after(() => app.close());
      const client = await open(`${url}/`, ['chat.v1', 'chat.v2']);
      assert.deepEqual(offered, [['chat.v1', 'chat.v2']]);
      assert.equal(client.protocol, 'chat.v2');
      assert.equal(client.extensions, 'permessage-deflate');
      const [peer] = app.websocketServer.clients;
      assert.equal(peer?.protocol, 'chat.v2');
      assert.equal(peer?.extensions, 'permessage-deflate');

      const text = 'compress me '.repeat(50_000);
      const tcp = (client as unknown as { _socket: Socket })._socket;
      const before = tcp.bytesRead;
      client.send(text);
      assert.equal((await nextMessage(client))[0].toString(), text);
      assert.ok(tcp.bytesRead - before < text.length / 10, 'the echo came back compressed');
      client.close();
    });

    test('an error thrown by the handler goes to errorHandler; the default one terminates the socket', { timeout: TEST_TIMEOUT }, async (t) => {
      const { app, url } = await startApp(plugin, (scope) => {
        scope.get('/boom', { websocket: true }, async () => {
          throw new Error('boom');
        });
      });
      t.after(() => app.close());
      const client = await open(`${url}/boom`);
      const [code] = await next<[number, Buffer]>(client, 'close');
      assert.equal(code, 1006, 'terminate(): no close frame');
    });

    test('fastify.injectWS opens a connection without a network socket', { timeout: TEST_TIMEOUT }, async (t) => {
      const { app } = await startApp(plugin, (scope) => {
        scope.get('/echo', { websocket: true }, (ws) => {
          ws.on('message', (data) => ws.send(`echo:${data.toString()}`));
        });
      });
      t.after(() => app.close());
      // The plugin's hand-made upgrade request has no Host header: ws accepts that, duplex
      // refuses it by design (RFC 7230 §5.4, 400 'Missing Host header'), so a duplex user
      // passes one, as here; that the refusal is duplex's 400 is checked too.
      if (impl.name === 'duplex') await assert.rejects(app.injectWS('/echo'), /Unexpected server response: 400/);
      const ws = await within(app.injectWS('/echo', { headers: { host: 'localhost' } }), 3000, 'injectWS');
      assert.ok(ws instanceof impl.WebSocket);
      const reply = next<[RawData, boolean]>(ws, 'message');
      ws.send('ping');
      assert.equal((await reply)[0].toString(), 'echo:ping');
      const closed = next(ws, 'close');
      ws.terminate();
      await closed;
    });

    test('fastify.close() closes the open connections (close frame, no code) and the ws server', { timeout: TEST_TIMEOUT }, async () => {
      const { app, url } = await startApp(plugin, (scope) => {
        scope.get('/', { websocket: true }, () => {});
      });
      const clients = await Promise.all([open(`${url}/`), open(`${url}/`)]);
      await until(() => app.websocketServer.clients.size === 2, 3000, 'two tracked clients');
      const codes = Promise.all(clients.map((client) => next<[number, Buffer]>(client, 'close', 5000)));
      const wssClosed = next(app.websocketServer, 'close', 5000);
      await within(app.close(), 5000, 'fastify.close()');
      assert.deepEqual(
        (await codes).map(([code]) => code),
        [1005, 1005],
        'client.close() without a code: the peer sees 1005',
      );
      await wssClosed;
      assert.equal(app.server.listening, false);
      await assert.rejects(open(`${url}/`));
    });
  });
}
