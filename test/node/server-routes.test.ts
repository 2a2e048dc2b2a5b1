// Routes, the upgrade hook (data, rejections, failures, a client leaving mid-hook, timeouts),
// subprotocols and response headers, over real sockets on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { WebSocketServer, WebSocketHandler, connect, requestInfo, type MessageData } from '../../src/index.js';
import { captureLogger, deferred, firstMessage, rawExchange, refused, until, wsOpen, wsRefusal } from './server-helpers.js';

test('routes: :params, a wildcard, exact paths, first match wins, unknown path → 404 with a log line', { timeout: 5000 }, async () => {
  const { logger, lines } = captureLogger();
  const server = new WebSocketServer({ logger })
    .route('/chat/admin', { handlers: { open: (ws) => void ws.send('admin') } })
    .route('/chat/:room', {
      upgrade: ({ params, query, cookies }) => ({ room: params.room, user: query.get('user'), sid: cookies.sid }),
      handlers: {
        open(ws) {
          const info = requestInfo(ws)!;
          ws.send(JSON.stringify({ data: ws.data, params: info.params, route: info.route, q: info.query.get('user') }));
        },
      },
    })
    .route('/feeds/*', { handlers: { open: (ws) => void ws.send(`feed:${requestInfo(ws)!.params['*']}`) } })
    .route('/exact', { handlers: { open: (ws) => void ws.send('exact') } });
  const { port } = await server.listen(0);
  const base = `ws://127.0.0.1:${port}`;
  try {
    assert.equal(await firstMessage(`${base}/chat/admin`), 'admin');
    const reply = JSON.parse(String(await firstMessage(`${base}/chat/caf%C3%A9?user=ann`, { headers: { Cookie: 'sid=s%201; sid=other; theme=dark' } })));
    assert.deepEqual(reply, { data: { room: 'café', user: 'ann', sid: 's 1' }, params: { room: 'café' }, route: '/chat/:room', q: 'ann' });
    assert.equal(await firstMessage(`${base}/feeds/btc/usd`), 'feed:btc/usd');
    assert.equal(await firstMessage(`${base}/feeds`), 'feed:');
    assert.equal(await firstMessage(`${base}/exact`), 'exact');
    for (const path of ['/exact/', '/nope', '/chat', '/chat/a/b']) {
      const error = await refused(`${base}${path}`);
      assert.equal(error.status, 404, path);
      assert.match(error.message, /no WebSocket endpoint at/);
    }
    const line = lines.find((l) => l.fields.status === 404 && l.fields.path === '/nope');
    assert.ok(line, 'a 404 is logged');
    assert.equal(line.level, 'warn');
    assert.equal(line.fields.remote, '127.0.0.1');
    assert.deepEqual(server.stats().rejections, { 404: 4 });
  } finally {
    await server.close();
  }
});

test('a hook that rejects with 401: duplex sees HandshakeError.status 401, ws sees the status, body and headers', { timeout: 5000 }, async () => {
  const { logger, lines } = captureLogger();
  const server = new WebSocketServer({ logger }).route('/private', {
    upgrade: async ({ headers, reject }) => {
      await new Promise((resolve) => setTimeout(resolve, 5)); // e.g. a token lookup
      if (headers.authorization !== 'Bearer good') reject(401, 'invalid token', { 'WWW-Authenticate': 'Bearer' });
      return { user: 'ann' };
    },
    handlers: { open: (ws) => void ws.send(`hello ${ws.data.user}`) },
  });
  const { port } = await server.listen(0);
  const url = `ws://127.0.0.1:${port}/private`;
  try {
    const error = await refused(url, { headers: { Authorization: 'Bearer bad' } });
    assert.equal(error.status, 401);
    assert.match(error.message, /401 Unauthorized: invalid token/);
    const seen = await wsRefusal(url);
    assert.equal(seen.status, 401);
    assert.equal(seen.body, 'invalid token');
    assert.equal(seen.headers['www-authenticate'], 'Bearer');
    assert.equal(await firstMessage(url, { headers: { Authorization: 'Bearer good' } }), 'hello ann');
    const line = lines.find((l) => l.fields.status === 401);
    assert.ok(line && line.message.includes('invalid token') && line.fields.remote === '127.0.0.1');
    assert.equal(server.stats().rejections[401], 2);
  } finally {
    await server.close();
  }
});

test('a hook that throws an Error → 500 with a generic body, an error log line, and the server keeps serving', { timeout: 5000 }, async () => {
  const { logger, lines } = captureLogger();
  let calls = 0;
  const server = new WebSocketServer({ logger })
    .route('/sync', {
      upgrade: () => {
        throw new Error('database password is hunter2');
      },
      handlers: {},
    })
    .route('/async', {
      upgrade: async () => {
        if (calls++ === 0) throw new Error('backend down');
        return 'ok';
      },
      handlers: { open: (ws) => void ws.send(String(ws.data)) },
    });
  const { port } = await server.listen(0);
  const base = `ws://127.0.0.1:${port}`;
  try {
    const seen = await wsRefusal(`${base}/sync`);
    assert.equal(seen.status, 500);
    assert.equal(seen.body, 'internal server error', 'the error message stays on the server');
    assert.equal((await refused(`${base}/async`)).status, 500);
    assert.equal(await firstMessage(`${base}/async`), 'ok');
    const errors = lines.filter((l) => l.level === 'error' && l.message === 'upgrade hook failed');
    assert.deepEqual(errors.map((l) => l.fields.err), ['database password is hunter2', 'backend down']);
  } finally {
    await server.close();
  }
});

test('a client that leaves while an async hook runs: nothing is answered, nothing leaks, the signal aborts', { timeout: 5000 }, async () => {
  const gate = deferred<void>();
  const entered = deferred<AbortSignal>();
  let opened = 0;
  const server = new WebSocketServer().route('/slow', {
    upgrade: async ({ signal }) => {
      entered.resolve(signal);
      await gate.promise;
      return 'late';
    },
    handlers: { open: () => void opened++ },
  });
  const { port } = await server.listen(0);
  try {
    const socket = netConnect(port, '127.0.0.1');
    socket.write(
      `GET /slow HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const signal = await entered.promise;
    assert.equal(server.stats().handshakesPending, 1);
    socket.destroy();
    await until(() => signal.aborted, 2000, 'the signal to abort');
    assert.equal(server.stats().handshakesPending, 0);
    assert.equal(server.stats().handshakesAborted, 1);
    gate.resolve(); // the hook finishes after the client left: ignored
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(opened, 0);
    assert.equal(server.clients.size, 0);
    assert.equal(server.stats().connectionsTotal, 0);
  } finally {
    await server.close();
  }
});

test('a hook slower than handshakeTimeout → 503 with Retry-After, and its signal aborts', { timeout: 5000 }, async () => {
  let signal: AbortSignal | undefined;
  const server = new WebSocketServer({ handshakeTimeout: 100 }).route('/slow', {
    upgrade: ({ signal: s }) => {
      signal = s;
      return new Promise<string>(() => {}); // never settles
    },
    handlers: {},
  });
  const { port } = await server.listen(0);
  try {
    const started = Date.now();
    const seen = await wsRefusal(`ws://127.0.0.1:${port}/slow`);
    assert.equal(seen.status, 503);
    assert.equal(seen.headers['retry-after'], '5');
    assert.ok(Date.now() - started >= 90);
    assert.equal(signal?.aborted, true);
    assert.equal(server.stats().handshakesPending, 0);
  } finally {
    await server.close();
  }
});

test('subprotocols per route: the client order wins by default; a hook may choose; choosing one not offered → 500', { timeout: 5000 }, async () => {
  const server = new WebSocketServer({ protocols: ['base'] })
    .route('/v', { protocols: ['v2', 'v1'], handlers: { open: (ws) => void ws.send(ws.protocol) } })
    .route('/pick', {
      upgrade: (ctx) => {
        ctx.protocol = ctx.protocols.includes('v2') ? 'v2' : undefined;
      },
      handlers: { open: (ws) => void ws.send(ws.protocol || 'none') },
    })
    .route('/bad', {
      upgrade: (ctx) => {
        ctx.protocol = 'v9';
      },
      handlers: {},
    })
    .route('/inherit', { handlers: { open: (ws) => void ws.send(ws.protocol || 'none') } });
  const { port } = await server.listen(0);
  const base = `ws://127.0.0.1:${port}`;
  try {
    assert.equal(await firstMessage(`${base}/v`, { protocols: ['v1', 'v2'] }), 'v1');
    assert.equal(await firstMessage(`${base}/v`, { protocols: ['v3', 'v2'] }), 'v2');
    assert.equal(await firstMessage(`${base}/pick`, { protocols: ['v1', 'v2'] }), 'v2');
    assert.equal(await firstMessage(`${base}/pick`, { protocols: ['v1'] }), 'none');
    assert.equal((await refused(`${base}/bad`, { protocols: ['v1'] })).status, 500);
    assert.equal(await firstMessage(`${base}/inherit`, { protocols: ['x', 'base'] }), 'base');
  } finally {
    await server.close();
  }
});

test('custom response headers from the hook reach the client (one line per Set-Cookie)', { timeout: 5000 }, async () => {
  const server = new WebSocketServer().route('/h', {
    upgrade: ({ setHeader }) => {
      setHeader('Set-Cookie', ['a=1; HttpOnly', 'b=2']);
      setHeader('X-Served-By', 'duplex');
    },
    handlers: {},
  });
  const { port } = await server.listen(0);
  try {
    const { client, headers } = await wsOpen(`ws://127.0.0.1:${port}/h`);
    assert.deepEqual(headers['set-cookie'], ['a=1; HttpOnly', 'b=2']);
    assert.equal(headers['x-served-by'], 'duplex');
    client.close();
  } finally {
    await server.close();
  }
});

test('a hook setting a header the handshake owns → 500, not a broken 101', { timeout: 5000 }, async () => {
  const server = new WebSocketServer().route('/h', {
    upgrade: ({ setHeader }) => setHeader('Sec-WebSocket-Accept', 'forged'),
    handlers: {},
  });
  const { port } = await server.listen(0);
  try {
    assert.equal((await refused(`ws://127.0.0.1:${port}/h`)).status, 500);
  } finally {
    await server.close();
  }
});

test('class handlers and async iteration work through routes', { timeout: 5000 }, async () => {
  class Shout extends WebSocketHandler<{ suffix: string }> {
    message(data: MessageData): void {
      this.send(String(data).toUpperCase() + this.ws.data.suffix);
    }
  }
  const server = new WebSocketServer()
    .route('/class', { upgrade: () => ({ suffix: '!' }), handlers: Shout })
    .route('/iterate', {
      handlers: {
        async open(ws) {
          for await (const message of ws) ws.send(`got ${String(message)}`);
        },
      },
    });
  const { port } = await server.listen(0);
  try {
    for (const [path, expected] of [['/class', 'HI!'], ['/iterate', 'got hi']] as const) {
      const reply = deferred<MessageData>();
      const ws = await connect(`ws://127.0.0.1:${port}${path}`, { handlers: { message: (_ws, data) => reply.resolve(data) } });
      ws.send('hi');
      assert.equal(await reply.promise, expected);
      ws.close();
    }
  } finally {
    await server.close();
  }
});

test('the catch-all handlers of the options serve every path no route matched', { timeout: 5000 }, async () => {
  const server = new WebSocketServer({
    data: (req) => req.url,
    handlers: { open: (ws) => void ws.send(`fallback ${String(ws.data)} ${requestInfo(ws)!.params['*']}`) },
  }).route('/special', { handlers: { open: (ws) => void ws.send('special') } });
  const { port } = await server.listen(0);
  try {
    assert.equal(await firstMessage(`ws://127.0.0.1:${port}/special`), 'special');
    assert.equal(await firstMessage(`ws://127.0.0.1:${port}/a/b?x=1`), 'fallback /a/b?x=1 a/b');
  } finally {
    await server.close();
  }
});

test('bad requests to a route get the RFC 6455 status; a plain GET gets 426', { timeout: 5000 }, async () => {
  const server = new WebSocketServer().route('/r', { handlers: {} });
  const { port } = await server.listen(0);
  try {
    const noKey = await rawExchange(port, `GET /r HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    assert.match(noKey, /^HTTP\/1\.1 400 /);
    assert.match(noKey, /Missing Sec-WebSocket-Key/);
    const plain = await rawExchange(port, `GET /r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(plain, /^HTTP\/1\.1 426 /);
  } finally {
    await server.close();
  }
});

test('routes: a request target that is neither a path nor a URL (`*`) gets 400, not 404, with a log line', { timeout: 5000 }, async () => {
  const { logger, lines } = captureLogger();
  const server = new WebSocketServer({ logger }).route('/live', { handlers: {} });
  const { port } = await server.listen(0);
  try {
    // `*` passes Node's HTTP parser (asterisk-form, RFC 7230 §5.3.4) but names no resource.
    const answer = await rawExchange(
      port,
      'GET * HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /invalid request target "\*"/);
    assert.ok(lines.some((l) => l.fields.status === 400), 'the refusal is logged');
    assert.deepEqual(server.stats().rejections, { 400: 1 });
  } finally {
    await server.close();
  }
});
