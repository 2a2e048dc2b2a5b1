import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import fc from 'fast-check';
import WebSocket, { WebSocketServer } from 'ws';

import { WEBSOCKET_GUID } from '../../src/protocol/constants.js';
import { HandshakeError } from '../../src/protocol/errors.js';
import {
  acceptKey,
  buildAcceptResponse,
  buildClientRequest,
  buildRejectResponse,
  clientRequestHeaders,
  generateKey,
  selectSubprotocol,
  validateRequest,
  validateResponse,
  type HandshakeRequest,
} from '../../src/protocol/handshake.js';

const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** The RFC 6455 §1.2 sample request, with lower-case header names as Node gives them. */
function request(
  headers: Record<string, string | string[] | undefined> = {},
  overrides: Partial<HandshakeRequest> = {},
): HandshakeRequest {
  return {
    method: 'GET',
    httpVersion: '1.1',
    url: '/chat',
    headers: {
      host: 'server.example.com',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': SAMPLE_KEY,
      'sec-websocket-version': '13',
      ...headers,
    },
    ...overrides,
  };
}

/** Asserts that `fn` throws a HandshakeError with this status (and headers, when given). */
function assertRejects(
  fn: () => unknown,
  status: number,
  pattern: RegExp,
  headers?: Record<string, string>,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof HandshakeError, `expected a HandshakeError, got ${String(error)}`);
    assert.equal(error.status, status, error.message);
    assert.match(error.message, pattern);
    if (headers !== undefined) assert.deepEqual(error.headers, headers);
    return true;
  });
}

// --- keys -------------------------------------------------------------------------------------

test('acceptKey: the RFC 6455 §1.3 example', () => {
  assert.equal(acceptKey(SAMPLE_KEY), SAMPLE_ACCEPT);
});

test('acceptKey: equals base64(SHA-1(key + GUID)) from node:crypto (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
      const key = Buffer.from(bytes).toString('base64');
      const expected = createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
      assert.equal(acceptKey(key), expected);
    }),
    { numRuns: 300 },
  );
});

/** A platform SHA-1 (node:crypto's, as the Node binding injects it) that counts its calls. */
function countingSha1(): { digest: (data: Uint8Array) => Uint8Array; calls: number } {
  const counter = {
    calls: 0,
    digest: (data: Uint8Array): Uint8Array => {
      counter.calls++;
      return createHash('sha1').update(data).digest();
    },
  };
  return counter;
}

test('acceptKey: an injected SHA-1 gives the same accept key as the built-in one (property)', () => {
  const sha1 = countingSha1();
  assert.equal(acceptKey(SAMPLE_KEY, sha1.digest), SAMPLE_ACCEPT);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
      const key = Buffer.from(bytes).toString('base64');
      assert.equal(acceptKey(key, sha1.digest), acceptKey(key));
    }),
    { numRuns: 300 },
  );
  assert.equal(sha1.calls, 301);
});

test('buildAcceptResponse and validateResponse use the injected SHA-1, with the same result', () => {
  const sha1 = countingSha1();
  const response = buildAcceptResponse({ key: SAMPLE_KEY, protocol: 'chat', sha1: sha1.digest });
  assert.equal(sha1.calls, 1);
  assert.equal(response, buildAcceptResponse({ key: SAMPLE_KEY, protocol: 'chat' }));
  assert.match(response, new RegExp(`\r\nSec-WebSocket-Accept: ${SAMPLE_ACCEPT.replace(/[+/]/g, '\\$&')}\r\n`));

  const validated = validateResponse(
    { status: 101, headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': SAMPLE_ACCEPT } },
    { key: SAMPLE_KEY, protocols: [], sha1: sha1.digest },
  );
  assert.equal(sha1.calls, 2);
  assert.equal(validated.protocol, undefined);
  // A wrong accept key is refused just the same.
  assertRejects(
    () =>
      validateResponse(
        { status: 101, headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': acceptKey(generateKey()) } },
        { key: SAMPLE_KEY, protocols: [], sha1: sha1.digest },
      ),
    101,
    /wrong Sec-WebSocket-Accept/,
  );
});

test('generateKey: 16 random bytes, base64-encoded', () => {
  const key = generateKey();
  assert.match(key, /^[A-Za-z0-9+/]{22}==$/);
  assert.equal(Buffer.from(key, 'base64').length, 16);
  assert.notEqual(generateKey(), key);
});

test('generateKey: uses the given random source', () => {
  const key = generateKey((n) => new Uint8Array(n).map((_, i) => i));
  assert.deepEqual([...Buffer.from(key, 'base64')], [...Array(16).keys()]);
  assert.equal(generateKey(() => new Uint8Array(16)), 'AAAAAAAAAAAAAAAAAAAAAA==');
  assert.throws(() => generateKey(() => new Uint8Array(8)), TypeError);
});

// --- validateRequest: accept paths ---------------------------------------------------------------

test('validateRequest: the RFC 6455 §1.2 sample request', () => {
  const result = validateRequest(
    request({
      origin: 'http://example.com',
      'sec-websocket-protocol': 'chat, superchat',
    }),
  );
  assert.deepEqual(result, {
    key: SAMPLE_KEY,
    version: 13,
    protocols: ['chat', 'superchat'],
    extensions: [],
    origin: 'http://example.com',
    host: 'server.example.com',
  });
});

test('validateRequest: optional fields absent', () => {
  const result = validateRequest(request());
  assert.deepEqual(result.protocols, []);
  assert.deepEqual(result.extensions, []);
  assert.equal(result.origin, undefined);
});

test('validateRequest: Upgrade and Connection are case-insensitive token lists', () => {
  for (const [upgrade, connection] of [
    ['websocket', 'Upgrade'],
    ['WebSocket', 'upgrade'],
    ['WEBSOCKET', 'UPGRADE'],
    ['websocket', 'keep-alive, Upgrade'],
    ['websocket', 'Upgrade, keep-alive'],
    ['websocket', 'keep-alive,Upgrade'],
    ['  websocket  ', ' \tkeep-alive ,, upgrade\t'],
    ['HTTP/2.0, websocket', 'Upgrade'],
  ] as const) {
    assert.doesNotThrow(() => validateRequest(request({ upgrade, connection })), `${upgrade} | ${connection}`);
  }
  // Several Connection lines, as a proxy may send them.
  assert.doesNotThrow(() => validateRequest(request({ connection: ['keep-alive', 'Upgrade'] })));
});

test('validateRequest: HTTP versions above 1.1', () => {
  assert.doesNotThrow(() => validateRequest(request({}, { httpVersion: '1.2' })));
  assert.doesNotThrow(() => validateRequest(request({}, { httpVersion: '2.0' })));
});

test('validateRequest: the key may carry surrounding whitespace, or come as a one-line array', () => {
  assert.equal(validateRequest(request({ 'sec-websocket-key': ` ${SAMPLE_KEY} ` })).key, SAMPLE_KEY);
  assert.equal(validateRequest(request({ 'sec-websocket-key': [SAMPLE_KEY] })).key, SAMPLE_KEY);
});

test('validateRequest: protocols and extensions, several lines each', () => {
  const result = validateRequest(
    request({
      'sec-websocket-protocol': ['chat', 'superchat, v2.json'],
      'sec-websocket-extensions': [
        'permessage-deflate; client_max_window_bits',
        'permessage-deflate; server_max_window_bits="10"',
      ],
    }),
  );
  assert.deepEqual(result.protocols, ['chat', 'superchat', 'v2.json']);
  assert.deepEqual(result.extensions, [
    { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
    { name: 'permessage-deflate', params: [['server_max_window_bits', '10']] },
  ]);
});

// --- validateRequest: reject paths ----------------------------------------------------------------

test('validateRequest: a method other than GET is a 405 with Allow: GET', () => {
  for (const method of ['POST', 'HEAD', 'PUT', 'get', 'CONNECT']) {
    assertRejects(() => validateRequest(request({}, { method })), 405, new RegExp(`GET method, not ${method}`), {
      Allow: 'GET',
    });
  }
});

test('validateRequest: HTTP/1.0 and malformed versions are a 400', () => {
  for (const httpVersion of ['1.0', '0.9', '', '1', 'x.y', '1.1.1']) {
    assertRejects(() => validateRequest(request({}, { httpVersion })), 400, /requires HTTP\/1\.1 or later/);
  }
});

test('validateRequest: Host missing, empty or repeated is a 400', () => {
  assertRejects(() => validateRequest(request({ host: undefined })), 400, /Missing Host header/);
  assertRejects(() => validateRequest(request({ host: ' ' })), 400, /Missing Host header/);
  assertRejects(() => validateRequest(request({ host: ['a', 'b'] })), 400, /Host header must appear exactly once/);
});

test('validateRequest: Upgrade missing or without websocket is a 426 with Upgrade: websocket', () => {
  const headers = { Upgrade: 'websocket', Connection: 'Upgrade' };
  assertRejects(() => validateRequest(request({ upgrade: undefined })), 426, /Missing Upgrade header/, headers);
  assertRejects(() => validateRequest(request({ upgrade: 'h2c' })), 426, /must include "websocket", got "h2c"/, headers);
  assertRejects(() => validateRequest(request({ upgrade: '' })), 426, /must include "websocket"/, headers);
  assertRejects(() => validateRequest(request({ upgrade: 'websocket/13' })), 426, /must include "websocket"/, headers);
  assertRejects(() => validateRequest(request({ upgrade: 'web socket' })), 426, /Upgrade.*not a protocol name/, headers);
});

test('validateRequest: Connection missing or without Upgrade is a 400', () => {
  assertRejects(() => validateRequest(request({ connection: undefined })), 400, /Missing Connection header/);
  assertRejects(() => validateRequest(request({ connection: 'keep-alive' })), 400, /must include "Upgrade", got "keep-alive"/);
  assertRejects(() => validateRequest(request({ connection: 'close' })), 400, /must include "Upgrade"/);
  assertRejects(() => validateRequest(request({ connection: 'upgrades' })), 400, /must include "Upgrade"/);
  assertRejects(() => validateRequest(request({ connection: 'keep alive, Upgrade' })), 400, /Connection.*not a token/);
});

test('validateRequest: Sec-WebSocket-Version other than 13 is a 426 with Sec-WebSocket-Version: 13', () => {
  const headers = { 'Sec-WebSocket-Version': '13' };
  assertRejects(
    () => validateRequest(request({ 'sec-websocket-version': undefined })),
    426,
    /Missing Sec-WebSocket-Version header: this server speaks version 13/,
    headers,
  );
  for (const version of ['8', '7', '14', '', '13, 8', '013', 'thirteen']) {
    assertRejects(
      () => validateRequest(request({ 'sec-websocket-version': version })),
      426,
      /Unsupported Sec-WebSocket-Version/,
      headers,
    );
  }
  assertRejects(
    () => validateRequest(request({ 'sec-websocket-version': ['13', '13'] })),
    426,
    /Sec-WebSocket-Version header must appear exactly once/,
    headers,
  );
});

test('validateRequest: the version is checked before the key (hixie-76 clients send no key)', () => {
  assertRejects(
    () => validateRequest(request({ 'sec-websocket-version': undefined, 'sec-websocket-key': undefined })),
    426,
    /Sec-WebSocket-Version/,
  );
});

test('validateRequest: Sec-WebSocket-Key missing, repeated or not 16 bytes of base64 is a 400', () => {
  assertRejects(() => validateRequest(request({ 'sec-websocket-key': undefined })), 400, /Missing Sec-WebSocket-Key header/);
  assertRejects(
    () => validateRequest(request({ 'sec-websocket-key': [SAMPLE_KEY, SAMPLE_KEY] })),
    400,
    /Sec-WebSocket-Key header must appear exactly once/,
  );
  for (const key of [
    '',
    'dGhlIHNhbXBsZSBub25jZQ', // no padding
    'dGhlIHNhbXBsZSBub25jZQ=', // short padding
    'dGhlIHNhbXBsZSBub25jZXg=', // 17 bytes
    'dGhlIHNhbXBsZSBub25j', // 15 bytes
    'dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==',
    `${SAMPLE_KEY}, ${SAMPLE_KEY}`, // two lines joined by Node
    'dGhlIHNhbXBsZSBub25jZ!==',
    'dGhlIHNhbXBsZSBub25jZQ-_', // base64url is not base64
    'dGhl IHNhbXBsZSBub25jZQ==',
  ]) {
    assertRejects(
      () => validateRequest(request({ 'sec-websocket-key': key })),
      400,
      /^Sec-WebSocket-Key must be 16 bytes, base64-encoded$/,
    );
  }
});

test('validateRequest: malformed Sec-WebSocket-Protocol or -Extensions, repeated Origin are 400s', () => {
  assertRejects(() => validateRequest(request({ 'sec-websocket-protocol': 'chat, super chat' })), 400, /Sec-WebSocket-Protocol.*"super chat" is not a token/);
  assertRejects(() => validateRequest(request({ 'sec-websocket-extensions': 'permessage-deflate; a="b c"' })), 400, /Sec-WebSocket-Extensions/);
  assertRejects(() => validateRequest(request({ 'sec-websocket-extensions': 'permessage-deflate;' })), 400, /expected a parameter name/);
  assertRejects(() => validateRequest(request({ origin: ['http://a', 'http://b'] })), 400, /Origin header must appear exactly once/);
});

test('validateRequest: arbitrary headers either validate or throw a HandshakeError (property)', () => {
  const value = fc.oneof(
    fc.constant(undefined),
    fc.constantFrom('websocket', 'Upgrade', '13', SAMPLE_KEY, 'chat', 'a;b', '', ' , '),
    fc.string({ maxLength: 30 }),
    fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  );
  const names = ['host', 'upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version',
    'sec-websocket-protocol', 'sec-websocket-extensions', 'origin'] as const;
  fc.assert(
    fc.property(fc.tuple(...names.map(() => value)), (values) => {
      const headers = Object.fromEntries(names.map((name, i) => [name, values[i]]));
      try {
        validateRequest(request(headers));
      } catch (error) {
        assert.ok(error instanceof HandshakeError);
        assert.ok([400, 426].includes(error.status));
      }
    }),
    { numRuns: 1000 },
  );
});

// --- selectSubprotocol --------------------------------------------------------------------------

test("selectSubprotocol: the first of the client's offers that the server supports", () => {
  assert.equal(selectSubprotocol(['chat', 'superchat'], ['superchat', 'chat']), 'chat');
  assert.equal(selectSubprotocol(['v1', 'superchat'], ['superchat', 'chat']), 'superchat');
  assert.equal(selectSubprotocol(['v1'], ['chat']), undefined);
  assert.equal(selectSubprotocol([], ['chat']), undefined);
  assert.equal(selectSubprotocol(['chat'], []), undefined);
  assert.equal(selectSubprotocol(['Chat'], ['chat']), undefined, 'compared exactly');
});

// --- buildAcceptResponse --------------------------------------------------------------------------

test('buildAcceptResponse: the RFC 6455 §1.3 sample response', () => {
  assert.equal(
    buildAcceptResponse({ key: SAMPLE_KEY, protocol: 'chat' }),
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n` +
      'Sec-WebSocket-Protocol: chat\r\n' +
      '\r\n',
  );
});

test('buildAcceptResponse: extensions and extra headers', () => {
  const text = buildAcceptResponse({
    key: SAMPLE_KEY,
    extensions: 'permessage-deflate; server_no_context_takeover',
    headers: { 'Set-Cookie': 'sid=1; HttpOnly', 'X-Server': 'duplex' },
  });
  assert.ok(text.endsWith('\r\n\r\n'));
  assert.equal(text.split('\r\n\r\n').length, 2);
  assert.match(text, /\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n/);
  assert.match(text, /\r\nSet-Cookie: sid=1; HttpOnly\r\nX-Server: duplex\r\n\r\n$/);
  assert.doesNotMatch(text, /Sec-WebSocket-Protocol/);
  assert.doesNotMatch(buildAcceptResponse({ key: SAMPLE_KEY, extensions: '' }), /Extensions/);
});

test('buildAcceptResponse: CR or LF in a header cannot split the response', () => {
  assert.throws(() => buildAcceptResponse({ key: SAMPLE_KEY, headers: { 'X-A': 'a\r\nX-Evil: 1' } }), TypeError);
  assert.throws(() => buildAcceptResponse({ key: SAMPLE_KEY, headers: { 'X-A': 'a\nb' } }), TypeError);
  assert.throws(() => buildAcceptResponse({ key: SAMPLE_KEY, headers: { 'X-A': 'a\rb' } }), TypeError);
  assert.throws(() => buildAcceptResponse({ key: SAMPLE_KEY, headers: { 'X-A\r\nX-Evil': 'a' } }), TypeError);
  assert.throws(() => buildAcceptResponse({ key: SAMPLE_KEY, extensions: 'x\r\n\r\nHTTP/1.1 200 OK' }), TypeError);
  assert.throws(() => buildAcceptResponse({ key: SAMPLE_KEY, protocol: 'chat\r\nX: 1' }), TypeError);
  assert.throws(() => buildAcceptResponse({ key: SAMPLE_KEY, protocol: 'a b' }), TypeError);
});

test('buildAcceptResponse: extra headers may not override the handshake headers', () => {
  for (const name of ['Upgrade', 'connection', 'Sec-WebSocket-Accept', 'SEC-WEBSOCKET-PROTOCOL', 'Sec-WebSocket-Extensions']) {
    assert.throws(() => buildAcceptResponse({ key: SAMPLE_KEY, headers: { [name]: 'x' } }), /set by the handshake/);
  }
});

// --- buildRejectResponse --------------------------------------------------------------------------

test('buildRejectResponse: status line, headers, UTF-8 Content-Length and body', () => {
  const message = 'Origin not allowed: café ☕';
  const text = buildRejectResponse(403, message);
  assert.equal(
    text,
    'HTTP/1.1 403 Forbidden\r\n' +
      'Connection: close\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(message)}\r\n` +
      '\r\n' +
      message,
  );
  assert.notEqual(Buffer.byteLength(message), message.length);
});

test('buildRejectResponse: reason phrases and extra headers from a HandshakeError', () => {
  assert.match(buildRejectResponse(400, 'x'), /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(buildRejectResponse(401, 'x', { 'WWW-Authenticate': 'Bearer' }), /^HTTP\/1\.1 401 Unauthorized\r\n[^]*\r\nWWW-Authenticate: Bearer\r\n\r\nx$/);
  assert.match(buildRejectResponse(405, 'x', { Allow: 'GET' }), /^HTTP\/1\.1 405 Method Not Allowed\r\n[^]*\r\nAllow: GET\r\n\r\nx$/);
  assert.match(buildRejectResponse(426, 'x', { 'Sec-WebSocket-Version': '13' }), /^HTTP\/1\.1 426 Upgrade Required\r\n[^]*\r\nSec-WebSocket-Version: 13\r\n/);
  assert.match(buildRejectResponse(599, 'x'), /^HTTP\/1\.1 599 Unknown\r\n/);
  assert.match(buildRejectResponse(400, ''), /Content-Length: 0\r\n\r\n$/);
});

test('buildRejectResponse: a Connection header is merged with close, Content-Type replaces the default', () => {
  const text = buildRejectResponse(426, 'x', { Upgrade: 'websocket', Connection: 'Upgrade' });
  assert.match(text, /\r\nConnection: Upgrade, close\r\n/);
  assert.match(text, /\r\nUpgrade: websocket\r\n/);
  assert.equal(text.match(/Connection:/g)?.length, 1);
  const json = buildRejectResponse(403, '{}', { 'content-type': 'application/json' });
  assert.match(json, /\r\nContent-Type: application\/json\r\n/);
  assert.doesNotMatch(json, /text\/plain/);
});

test('buildRejectResponse: refuses bad statuses, split headers and Content-Length', () => {
  for (const status of [101, 199, 600, 404.5, Number.NaN]) {
    assert.throws(() => buildRejectResponse(status, 'x'), RangeError);
  }
  assert.throws(() => buildRejectResponse(400, 'x', { 'X-A': 'a\r\nb' }), TypeError);
  assert.throws(() => buildRejectResponse(400, 'x', { Connection: 'a\r\nb' }), TypeError);
  assert.throws(() => buildRejectResponse(400, 'x', { 'Content-Length': '5' }), TypeError);
});

test('a HandshakeError from validateRequest becomes a complete reject response', () => {
  try {
    validateRequest(request({ 'sec-websocket-version': '8' }));
    assert.fail('should have thrown');
  } catch (error) {
    assert.ok(error instanceof HandshakeError);
    const text = buildRejectResponse(error.status, error.message, error.headers);
    assert.match(text, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
    assert.match(text, /\r\nSec-WebSocket-Version: 13\r\n/);
    assert.ok(text.endsWith(`\r\n\r\n${error.message}`));
  }
});

// --- client side ------------------------------------------------------------------------------------

test('clientRequestHeaders: the RFC 6455 §1.2 sample request headers', () => {
  assert.deepEqual(
    clientRequestHeaders({
      host: 'server.example.com',
      path: '/chat',
      key: SAMPLE_KEY,
      protocols: ['chat', 'superchat'],
      origin: 'http://example.com',
    }),
    {
      Host: 'server.example.com',
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': SAMPLE_KEY,
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Protocol': 'chat, superchat',
      Origin: 'http://example.com',
    },
  );
});

test('clientRequestHeaders: optional fields and extra headers', () => {
  const headers = clientRequestHeaders({
    host: 'localhost:8080',
    path: '/',
    key: SAMPLE_KEY,
    protocols: [],
    extensions: 'permessage-deflate; client_max_window_bits',
    headers: { Authorization: 'Bearer t' },
  });
  assert.equal(headers['Sec-WebSocket-Protocol'], undefined);
  assert.equal(headers['Origin'], undefined);
  assert.equal(headers['Sec-WebSocket-Extensions'], 'permessage-deflate; client_max_window_bits');
  assert.equal(headers['Authorization'], 'Bearer t');
});

test('clientRequestHeaders: refuses bad keys, protocols, split headers and reserved names', () => {
  const base = { host: 'h', path: '/', key: SAMPLE_KEY };
  assert.throws(() => clientRequestHeaders({ ...base, key: 'short' }), /16 bytes/);
  assert.throws(() => clientRequestHeaders({ ...base, protocols: ['a b'] }), /not a token/);
  assert.throws(() => clientRequestHeaders({ ...base, protocols: ['a,b'] }), /not a token/);
  assert.throws(() => clientRequestHeaders({ ...base, protocols: [''] }), /not a token/);
  assert.throws(() => clientRequestHeaders({ ...base, protocols: ['chat', 'chat'] }), /offered twice/);
  assert.throws(() => clientRequestHeaders({ ...base, host: 'h\r\nX-Evil: 1' }), TypeError);
  assert.throws(() => clientRequestHeaders({ ...base, origin: 'o\n' }), TypeError);
  assert.throws(() => clientRequestHeaders({ ...base, headers: { 'X-A': 'a\r\n' } }), TypeError);
  assert.throws(() => clientRequestHeaders({ ...base, headers: { 'Bad Name': 'a' } }), TypeError);
  for (const name of ['host', 'Upgrade', 'CONNECTION', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions', 'Origin']) {
    assert.throws(() => clientRequestHeaders({ ...base, headers: { [name]: 'x' } }), /set by the handshake/);
  }
});

test('buildClientRequest: request line, headers and blank line; accepted by validateRequest', () => {
  const text = buildClientRequest({
    host: 'server.example.com',
    path: '/chat?room=1',
    key: SAMPLE_KEY,
    protocols: ['chat', 'superchat'],
    origin: 'http://example.com',
  });
  assert.equal(
    text,
    'GET /chat?room=1 HTTP/1.1\r\n' +
      'Host: server.example.com\r\n' +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${SAMPLE_KEY}\r\n` +
      'Sec-WebSocket-Version: 13\r\n' +
      'Sec-WebSocket-Protocol: chat, superchat\r\n' +
      'Origin: http://example.com\r\n' +
      '\r\n',
  );
  // Read it back the way a server would and validate it.
  const [head = ''] = text.split('\r\n\r\n');
  const [requestLine = '', ...lines] = head.split('\r\n');
  const [method = '', url = '', version = ''] = requestLine.split(' ');
  const headers = Object.fromEntries(lines.map((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
  }));
  const validated = validateRequest({ method, url, httpVersion: version.slice('HTTP/'.length), headers });
  assert.equal(validated.key, SAMPLE_KEY);
  assert.deepEqual(validated.protocols, ['chat', 'superchat']);
});

test('buildClientRequest: refuses paths that would break the request line', () => {
  const base = { host: 'h', key: SAMPLE_KEY };
  for (const path of ['', 'chat', '/a b', '/a\r\nX: 1', 'http://h/']) {
    assert.throws(() => buildClientRequest({ ...base, path }), /Invalid request path/);
  }
});

// --- validateResponse -----------------------------------------------------------------------------

/** The RFC 6455 §1.3 sample response. */
function response(headers: Record<string, string | string[] | undefined> = {}, status = 101) {
  return {
    status,
    headers: {
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-accept': SAMPLE_ACCEPT,
      ...headers,
    },
  };
}

const offered = { key: SAMPLE_KEY, protocols: ['chat', 'superchat'] };
const none = { key: SAMPLE_KEY, protocols: [] };

test('validateResponse: the RFC 6455 §1.3 sample response', () => {
  assert.deepEqual(validateResponse(response({ 'sec-websocket-protocol': 'chat' }), offered), {
    protocol: 'chat',
    extensions: [],
  });
});

test('validateResponse: no subprotocol chosen, case-insensitive Upgrade and Connection, extensions', () => {
  assert.deepEqual(
    validateResponse(
      response({
        upgrade: 'WebSocket',
        connection: 'keep-alive, upgrade',
        'sec-websocket-extensions': 'permessage-deflate; server_max_window_bits=10',
      }),
      offered,
    ),
    {
      protocol: undefined,
      extensions: [{ name: 'permessage-deflate', params: [['server_max_window_bits', '10']] }],
    },
  );
  assert.doesNotThrow(() => validateResponse(response({ 'sec-websocket-accept': [SAMPLE_ACCEPT] }), none));
});

test('validateResponse: a status other than 101 fails with that status', () => {
  for (const status of [200, 302, 400, 401, 403, 426, 500]) {
    assertRejects(() => validateResponse(response({}, status), offered), status, new RegExp(`answered ${status} instead of 101`));
  }
});

test('validateResponse: Upgrade must be websocket', () => {
  assertRejects(() => validateResponse(response({ upgrade: undefined }), none), 101, /no Upgrade header/);
  assertRejects(() => validateResponse(response({ upgrade: 'h2c' }), none), 101, /Upgrade header is "h2c", not "websocket"/);
  assertRejects(() => validateResponse(response({ upgrade: 'websocket, h2c' }), none), 101, /not "websocket"/);
  assertRejects(() => validateResponse(response({ upgrade: 'web socket' }), none), 101, /not a protocol name/);
});

test('validateResponse: Connection must include Upgrade', () => {
  assertRejects(() => validateResponse(response({ connection: undefined }), none), 101, /Connection header does not include "Upgrade"/);
  assertRejects(() => validateResponse(response({ connection: 'keep-alive' }), none), 101, /does not include "Upgrade"/);
  assertRejects(() => validateResponse(response({ connection: 'a b' }), none), 101, /Connection.*not a token/);
});

test('validateResponse: Sec-WebSocket-Accept must be present once and match the key', () => {
  assertRejects(() => validateResponse(response({ 'sec-websocket-accept': undefined }), none), 101, /no Sec-WebSocket-Accept header/);
  assertRejects(() => validateResponse(response({ 'sec-websocket-accept': [SAMPLE_ACCEPT, SAMPLE_ACCEPT] }), none), 101, /exactly once/);
  assertRejects(() => validateResponse(response({ 'sec-websocket-accept': `${SAMPLE_ACCEPT}, ${SAMPLE_ACCEPT}` }), none), 101, /wrong Sec-WebSocket-Accept/);
  assertRejects(() => validateResponse(response({ 'sec-websocket-accept': acceptKey(generateKey()) }), none), 101, /wrong Sec-WebSocket-Accept/);
  assertRejects(() => validateResponse(response(), { key: generateKey(), protocols: [] }), 101, /wrong Sec-WebSocket-Accept/);
});

test('validateResponse: Sec-WebSocket-Protocol must be one of the offered subprotocols', () => {
  assertRejects(() => validateResponse(response({ 'sec-websocket-protocol': 'chat' }), none), 101, /chose subprotocol "chat" but none was offered/);
  assertRejects(() => validateResponse(response({ 'sec-websocket-protocol': 'v3' }), offered), 101, /"v3", which was not offered/);
  assertRejects(() => validateResponse(response({ 'sec-websocket-protocol': 'Chat' }), offered), 101, /not offered/);
  assertRejects(() => validateResponse(response({ 'sec-websocket-protocol': 'chat, superchat' }), offered), 101, /exactly one subprotocol/);
  assertRejects(() => validateResponse(response({ 'sec-websocket-protocol': ['chat', 'chat'] }), offered), 101, /exactly one subprotocol/);
  assertRejects(() => validateResponse(response({ 'sec-websocket-protocol': '' }), offered), 101, /exactly one subprotocol/);
  assertRejects(() => validateResponse(response({ 'sec-websocket-protocol': 'a b' }), offered), 101, /not a token/);
});

test('validateResponse: malformed Sec-WebSocket-Extensions fails with the status answered', () => {
  assertRejects(() => validateResponse(response({ 'sec-websocket-extensions': 'permessage-deflate;;' }), none), 101, /Sec-WebSocket-Extensions/);
});

test('round trip: buildAcceptResponse answers are accepted by validateResponse', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.constantFrom(undefined, 'chat', 'superchat'), (bytes, protocol) => {
      const key = generateKey(() => bytes);
      const text = buildAcceptResponse(protocol === undefined ? { key } : { key, protocol });
      const headers = Object.fromEntries(
        text.split('\r\n').slice(1).filter((line) => line !== '').map((line) => {
          const colon = line.indexOf(':');
          return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
        }),
      );
      assert.deepEqual(validateResponse({ status: 101, headers }, { key, protocols: ['chat', 'superchat'] }), {
        protocol,
        extensions: [],
      });
    }),
    { numRuns: 200 },
  );
});

// --- interoperability with ws over real sockets -----------------------------------------------------

/** Resolves when `server` listens on an ephemeral port, with that port. */
function listen(server: ReturnType<typeof createServer>): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

test('interop: a ws client completes the handshake with our server functions', async () => {
  const server = createServer();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    try {
      const { key, protocols } = validateRequest({
        method: req.method ?? '',
        httpVersion: req.httpVersion,
        url: req.url ?? '',
        headers: req.headers,
      });
      const protocol = selectSubprotocol(protocols, ['superchat', 'chat']);
      socket.write(buildAcceptResponse(protocol === undefined ? { key } : { key, protocol }));
      // A masked close frame comes next; answer with an unmasked close to finish cleanly.
      socket.once('data', () => socket.end(Uint8Array.of(0x88, 0x02, 0x03, 0xe8)));
    } catch (error) {
      assert.ok(error instanceof HandshakeError);
      socket.end(buildRejectResponse(error.status, error.message, error.headers));
    }
  });
  const port = await listen(server);
  try {
    const protocol = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`, ['chat', 'superchat'], { perMessageDeflate: false });
      ws.on('open', () => {
        resolve(ws.protocol);
        ws.close();
      });
      ws.on('error', reject);
    });
    assert.equal(protocol, 'chat', "the client's first preference");

    // A ws client speaking an old version gets our 426 with the version we speak.
    const rejected = await new Promise<{ status: number; version: string | undefined }>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { protocolVersion: 8 });
      ws.on('unexpected-response', (_req, res) => {
        resolve({ status: res.statusCode ?? 0, version: res.headers['sec-websocket-version'] as string | undefined });
        res.resume();
        ws.terminate();
      });
      ws.on('error', reject);
    });
    assert.deepEqual(rejected, { status: 426, version: '13' });
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('interop: our client functions complete the handshake with a ws server', async () => {
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    perMessageDeflate: true,
    handleProtocols: (protocols) => (protocols.has('superchat') ? 'superchat' : false),
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  const port = (wss.address() as AddressInfo).port;
  try {
    const key = generateKey();
    const headers = clientRequestHeaders({
      host: `127.0.0.1:${port}`,
      path: '/',
      key,
      protocols: ['chat', 'superchat'],
      extensions: 'permessage-deflate; client_max_window_bits',
    });
    const result = await new Promise<ReturnType<typeof validateResponse>>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/', headers });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        try {
          resolve(validateResponse({ status: res.statusCode ?? 0, headers: res.headers }, { key, protocols: ['chat', 'superchat'] }));
        } catch (error) {
          reject(error);
        }
      });
      req.on('response', (res) => reject(new Error(`unexpected ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    assert.equal(result.protocol, 'superchat');
    assert.equal(result.extensions[0]?.name, 'permessage-deflate');

    // The raw request text works too.
    const rawKey = generateKey();
    const { createConnection } = await import('node:net');
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = createConnection(port, '127.0.0.1', () => {
        socket.write(buildClientRequest({ host: `127.0.0.1:${port}`, path: '/', key: rawKey }));
      });
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('latin1');
        if (text.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(reply, new RegExp(`\r\nSec-WebSocket-Accept: ${acceptKey(rawKey).replace(/[+/]/g, '\\$&')}\r\n`, 'i'));
  } finally {
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
  }
});
