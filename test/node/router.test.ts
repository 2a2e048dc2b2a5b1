// Route matching: exact paths, :params, a trailing wildcard, first match wins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Router, compileRoute, matchRoute, type RouteParams } from '../../src/node/server/router.js';

const match = (pattern: string, path: string): Record<string, string> | undefined => matchRoute(compileRoute(pattern), path)?.params;

test('exact paths match themselves only; a trailing slash is significant', () => {
  assert.deepEqual(match('/', '/'), {});
  assert.equal(match('/', '/a'), undefined);
  assert.deepEqual(match('/live', '/live'), {});
  assert.equal(match('/live', '/live/'), undefined);
  assert.equal(match('/live', '/liv'), undefined);
  assert.equal(match('/live', '/lives'), undefined);
  assert.deepEqual(match('/a/b/', '/a/b/'), {});
  assert.equal(match('/a/b/', '/a/b'), undefined);
});

test(':params take one non-empty segment, percent-decoded', () => {
  assert.deepEqual(match('/chat/:room', '/chat/lobby'), { room: 'lobby' });
  assert.deepEqual(match('/chat/:room', '/chat/caf%C3%A9%20au%2Flait'), { room: 'café au/lait' });
  assert.equal(match('/chat/:room', '/chat/'), undefined);
  assert.equal(match('/chat/:room', '/chat'), undefined);
  assert.equal(match('/chat/:room', '/chat/a/b'), undefined);
  assert.equal(match('/chat/:room', '/chat/%E0%A4%A'), undefined, 'malformed percent-encoding does not match');
  assert.deepEqual(match('/u/:user/posts/:id', '/u/ann/posts/42'), { user: 'ann', id: '42' });
});

test('a final * takes the rest of the path, empty or not', () => {
  assert.deepEqual(match('/feeds/*', '/feeds/a/b/c'), { '*': 'a/b/c' });
  assert.deepEqual(match('/feeds/*', '/feeds/'), { '*': '' });
  assert.deepEqual(match('/feeds/*', '/feeds'), { '*': '' });
  assert.equal(match('/feeds/*', '/feedsx'), undefined);
  assert.deepEqual(match('/*', '/anything/at/all'), { '*': 'anything/at/all' });
  assert.deepEqual(match('/*', '/'), { '*': '' });
  assert.deepEqual(match('/t/:tenant/*', '/t/acme/x%20y/z'), { tenant: 'acme', '*': 'x y/z' });
});

test('invalid patterns are refused when the route is added', () => {
  assert.throws(() => compileRoute('chat'), /must start with "\/"/);
  assert.throws(() => compileRoute('/a/*/b'), /last segment/);
  assert.throws(() => compileRoute('/a*'), /whole segment/);
  assert.throws(() => compileRoute('/:1x'), /not a valid parameter name/);
  assert.throws(() => compileRoute('/:a/:a'), /appears twice/);
  assert.throws(() => compileRoute('/a//b'), /empty segment/);
});

test('the first route added that matches wins', () => {
  const router = new Router<string>();
  router.add('/chat/admin', 'admin');
  router.add('/chat/:room', 'room');
  router.add('/*', 'rest');
  assert.deepEqual(router.match('/chat/admin'), { value: 'admin', params: {}, pattern: '/chat/admin' });
  assert.deepEqual(router.match('/chat/x'), { value: 'room', params: { room: 'x' }, pattern: '/chat/:room' });
  assert.equal(router.match('/other')?.value, 'rest');
  assert.equal(router.size, 3);
});

test('RouteParams types the params from a literal pattern', () => {
  const params: RouteParams<'/t/:tenant/chat/:room/*'> = { tenant: 'a', room: 'b', '*': 'c' };
  // @ts-expect-error: no such param in the pattern
  const wrong: RouteParams<'/chat/:room'> = { room: 'x', other: 'y' };
  const loose: RouteParams = { anything: 'goes' };
  assert.equal(params.room, 'b');
  assert.ok(wrong && loose);
});
