// Token authentication: JWTs (HS256 and ES256) at the handshake (query or Authorization header)
// and in a `connect` message; expired or forged tokens refused with 401 at the handshake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { connect, HandshakeError } from '../../src/index.js';
import { Hub, HubClientError } from '../../src/hub/index.js';
import { hubClient, rawClient, startHub } from './hub-helpers.js';

const secret = 'a-test-secret-of-at-least-32-bytes!!';
const key = new TextEncoder().encode(secret);

function token(sub: string, options: { exp?: number | string; info?: unknown; signWith?: Uint8Array } = {}): Promise<string> {
  const jwt = new SignJWT(options.info === undefined ? {} : { info: options.info }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt();
  jwt.setExpirationTime(options.exp ?? '5m');
  return jwt.sign(options.signWith ?? key);
}

async function refusal(url: string, headers: Record<string, string> = {}): Promise<HandshakeError> {
  try {
    const ws = await connect(url, { headers });
    ws.terminate();
  } catch (error) {
    if (error instanceof HandshakeError) return error;
    throw error;
  }
  throw new Error('expected the handshake to be refused');
}

test('hub auth: a valid JWT at the handshake makes sub the user id (seen in presence)', { timeout: 10_000 }, async () => {
  const env = await startHub({ auth: { jwt: { secret } } });
  const viaQuery = hubClient(env.url, { token: await token('ann', { info: { name: 'Ann' } }), tokenTransport: 'query' });
  const viaHeader = hubClient(env.url, { token: await token('bob'), tokenTransport: 'header' });
  try {
    await viaQuery.subscribe('room');
    await viaHeader.subscribe('room');
    assert.equal(viaQuery.userId, 'ann');
    const members = await viaHeader.presence('room');
    assert.deepEqual(members.map((m) => [m.userId, m.info]).sort(), [['ann', { name: 'Ann' }], ['bob', undefined]]);
  } finally {
    await Promise.all([viaQuery.close(), viaHeader.close()]);
    await env.close();
  }
});

test('hub auth: expired, forged, malformed and sub-less tokens get 401 at the handshake', { timeout: 10_000 }, async () => {
  const env = await startHub({ auth: { jwt: { secret } } });
  try {
    const expired = await token('ann', { exp: Math.floor(Date.now() / 1000) - 60 });
    let error = await refusal(`${env.url}?token=${expired}`);
    assert.equal(error.status, 401);
    assert.match(error.message, /token expired/);
    const forged = await token('ann', { signWith: new TextEncoder().encode('another-secret-another-secret-xx') });
    error = await refusal(env.url, { Authorization: `Bearer ${forged}` });
    assert.equal(error.status, 401);
    assert.match(error.message, /signature/);
    error = await refusal(`${env.url}?token=not.a.jwt`);
    assert.equal(error.status, 401);
    const noSub = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(key);
    assert.equal((await refusal(`${env.url}?token=${noSub}`)).status, 401);
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('ann').sign(key);
    assert.equal((await refusal(`${env.url}?token=${noExp}`)).status, 401);
    assert.equal(env.server.stats().rejections[401], 5);
  } finally {
    await env.close();
  }
});

test('hub auth: a token in the connect message; without one nothing else is allowed', { timeout: 10_000 }, async () => {
  const env = await startHub({ auth: { jwt: { secret } } });
  const raw = await rawClient(env.url);
  const client = hubClient(env.url, { token: () => token('carol') });
  try {
    const refused = await raw.request({ type: 'subscribe', topic: 'room' });
    assert.equal(refused['code'], 'E_UNAUTHORIZED');
    await client.subscribe('room');
    assert.equal(client.userId, 'carol');
    // A bad token in connect: error, then the server closes with 1008 (and the client does not retry).
    const bad = hubClient(env.url, { token: 'garbage' });
    const errors: Error[] = [];
    bad.on('error', (e) => errors.push(e));
    await assert.rejects(bad.connected(), (e: unknown) => e instanceof HubClientError && e.code === 'E_CLOSED');
    assert.ok(errors.some((e) => e instanceof HubClientError && e.code === 'E_UNAUTHORIZED'));
    assert.equal(bad.state, 'closed');
  } finally {
    raw.ws.close();
    await client.close();
    await env.close();
  }
});

test('hub auth: ES256 public key; requireHandshakeToken refuses a handshake without a token', { timeout: 10_000 }, async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const pem = await exportSPKI(publicKey);
  const env = await startHub({ auth: { jwt: { publicKey: pem }, requireHandshakeToken: true } });
  try {
    const good = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('dave').setExpirationTime('1m').sign(privateKey);
    const client = hubClient(env.url, { token: good, tokenTransport: 'query' });
    await client.connected();
    assert.equal(client.userId, 'dave');
    await client.close();
    // An HS256 token is not accepted by an ES256 hub (algorithm confusion).
    assert.equal((await refusal(`${env.url}?token=${await token('eve')}`)).status, 401);
    assert.equal((await refusal(env.url)).status, 401);
  } finally {
    await env.close();
  }
});

test('hub auth: a hub needs auth or an explicit anonymous mode', () => {
  assert.throws(() => new Hub(), /anonymous: true/);
  assert.throws(() => new Hub({ auth: { jwt: {} } }), /secret/);
});
