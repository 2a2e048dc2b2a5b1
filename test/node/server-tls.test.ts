// wss:// with a certificate generated at test time, and IPv6 on ::1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, connect, requestInfo } from '../../src/index.js';
import { firstMessage, selfSignedCertificate } from './server-helpers.js';

let dir = '';
let cert: Buffer;
let key: Buffer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'duplex-tls-'));
  ({ cert, key } = await selfSignedCertificate(dir));
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('wss://: the client refuses the self-signed certificate without ca, and talks with it', { timeout: 5000 }, async () => {
  const server = new WebSocketServer({
    tls: { cert, key },
    handlers: { message: (ws, data) => void ws.send(`secure ${String(data)} ${requestInfo(ws)!.url.protocol}`) },
  });
  const { port } = await server.listen(0);
  const url = `wss://127.0.0.1:${port}/`;
  try {
    await assert.rejects(connect(url), (error: NodeJS.ErrnoException) => {
      assert.match(String(error.code), /SELF_SIGNED/);
      return true;
    });
    const reply = await new Promise<string>((resolve, reject) => {
      connect(url, { tls: { ca: cert }, handlers: { message: (ws, data) => (resolve(String(data)), ws.close()) } })
        .then((ws) => ws.send('hello'))
        .catch(reject);
    });
    assert.equal(reply, 'secure hello wss:');
    assert.equal(server.stats().connectionsTotal, 1);
  } finally {
    await server.close();
  }
});

test('IPv6: listen on ::1, connect to ws://[::1]:port/', { timeout: 5000 }, async () => {
  const server = new WebSocketServer({ handlers: { open: (ws) => void ws.send(`${ws.remoteAddress} ${requestInfo(ws)!.url.host}`) } });
  const address = await server.listen(0, '::1');
  assert.equal(address.family, 'IPv6');
  try {
    assert.equal(await firstMessage(`ws://[::1]:${address.port}/`), `::1 [::1]:${address.port}`);
  } finally {
    await server.close();
  }
});

test('wss:// on IPv6', { timeout: 5000 }, async () => {
  const server = new WebSocketServer({ tls: { cert, key }, handlers: { open: (ws) => void ws.send('v6 and tls') } });
  const { port } = await server.listen(0, '::1');
  try {
    // The certificate is checked against its DNS name: Node 22.23's tls.checkServerIdentity does not
    // match an IPv6 address against IP Address names (nodejs/node#64032); Node 20 and 24 do.
    assert.equal(await firstMessage(`wss://[::1]:${port}/`, { tls: { ca: cert, servername: 'localhost' } }), 'v6 and tls');
  } finally {
    await server.close();
  }
});

test('wss:// defaults: TLS 1.2 minimum even if tls.DEFAULT_MIN_VERSION is lowered; rejectUnauthorized: false accepts the bad certificate', { timeout: 5000 }, async () => {
  const tls = (await import('node:tls')).default;
  const saved = tls.DEFAULT_MIN_VERSION;
  tls.DEFAULT_MIN_VERSION = 'TLSv1'; // as --tls-min-v1.0 would
  const server = new WebSocketServer({ tls: { cert, key }, handlers: { open: (ws) => void ws.send('ok') } });
  let port: number;
  try {
    ({ port } = await server.listen(0));
  } finally {
    tls.DEFAULT_MIN_VERSION = saved;
  }
  const url = `wss://127.0.0.1:${port}/`;
  try {
    // A client that speaks at most TLS 1.1 is refused during the TLS handshake.
    await assert.rejects(connect(url, { tls: { ca: cert, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' } }), (error: NodeJS.ErrnoException) => {
      assert.match(`${error.code} ${error.message}`, /EPROTO.*(protocol version|unsupported protocol)|ECONNRESET/i);
      return true;
    });
    // Without ca: refused, unless the client opts out of verification explicitly.
    await assert.rejects(connect(url), (error: NodeJS.ErrnoException) => /SELF_SIGNED/.test(String(error.code)));
    assert.equal(await firstMessage(url, { tls: { rejectUnauthorized: false } }), 'ok');
  } finally {
    await server.close();
  }
});
