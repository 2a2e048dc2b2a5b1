// RFC 6455 §3 WebSocket URIs, as every client of duplex reads them (src/protocol/url.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWebSocketUrl, type WebSocketTarget } from '../../src/protocol/url.js';

function target(input: string, options?: Parameters<typeof parseWebSocketUrl>[1]): Omit<WebSocketTarget, 'url'> & { href: string } {
  const parsed = parseWebSocketUrl(input, options);
  if ('problem' in parsed) assert.fail(`${input}: ${parsed.problem}`);
  const { url, ...rest } = parsed;
  return { ...rest, href: url.href };
}

test('default ports, the Host header and the resource name', () => {
  assert.deepEqual(target('ws://example.com'), { secure: false, hostname: 'example.com', port: 80, host: 'example.com', path: '/', href: 'ws://example.com/' });
  assert.deepEqual(target('wss://example.com:8443/chat?room=1'), {
    secure: true, hostname: 'example.com', port: 8443, host: 'example.com:8443', path: '/chat?room=1', href: 'wss://example.com:8443/chat?room=1',
  });
  // The default port is not repeated in Host (URL drops it); an IPv6 host loses its brackets only where a socket needs it.
  assert.deepEqual(target('wss://[::1]:443/x'), { secure: true, hostname: '::1', port: 443, host: '[::1]', path: '/x', href: 'wss://[::1]/x' });
});

test('http: and https: map to ws: and wss: only when asked (the WHATWG constructor does)', () => {
  assert.deepEqual(parseWebSocketUrl('http://a/'), { problem: 'scheme', scheme: 'http:' });
  assert.equal(target('http://a/', { mapHttp: true }).href, 'ws://a/');
  assert.equal(target('https://a/', { mapHttp: true }).secure, true);
  assert.deepEqual(parseWebSocketUrl('ftp://a/', { mapHttp: true }), { problem: 'scheme', scheme: 'ftp:' });
});

test('relative URLs resolve against a base, as a page resolves `/ws`', () => {
  assert.equal(target('/ws', { base: 'https://app.example.com/chat/', mapHttp: true }).href, 'wss://app.example.com/ws');
  assert.deepEqual(parseWebSocketUrl('/ws'), { problem: 'invalid' });
});

test('fragments: refused on request (RFC 6455 §3: MUST NOT be used), otherwise left out of the resource name', () => {
  assert.deepEqual(parseWebSocketUrl('ws://a/#x', { refuseFragment: true }), { problem: 'fragment' });
  assert.deepEqual(parseWebSocketUrl('ws://a/#', { refuseFragment: true }), { problem: 'fragment' });
  assert.equal(target('ws://a/p?q#x').path, '/p?q');
});
