// A malformed-message barrage: every bad message gets an error reply, the connection survives
// until the abuse threshold, other clients are not affected, Object.prototype stays clean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Json } from '../../src/hub/index.js';
import { parseClientRequest } from '../../src/hub/index.js';
import { hubClient, rawClient, startHub, until } from './hub-helpers.js';

function nested(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

const BAD: Array<[string, string]> = [
  ['{not json', 'E_BAD_REQUEST'],
  ['[]', 'E_BAD_REQUEST'],
  ['null', 'E_BAD_REQUEST'],
  ['"subscribe"', 'E_BAD_REQUEST'],
  ['{}', 'E_BAD_REQUEST'],
  ['{"type":42}', 'E_BAD_REQUEST'],
  ['{"type":"explode","id":1}', 'E_UNKNOWN_TYPE'],
  ['{"type":"subscribe","id":2}', 'E_BAD_REQUEST'],
  ['{"type":"subscribe","id":3,"topic":5}', 'E_BAD_REQUEST'],
  ['{"type":"subscribe","id":4,"topic":""}', 'E_BAD_REQUEST'],
  [`{"type":"subscribe","id":5,"topic":"${'x'.repeat(10_000)}"}`, 'E_BAD_REQUEST'],
  ['{"type":"subscribe","id":6,"topic":"a\\u0000b"}', 'E_BAD_REQUEST'],
  ['{"type":"subscribe","id":7,"topic":"t","recover":{"offset":-1,"epoch":"e"}}', 'E_BAD_REQUEST'],
  ['{"type":"subscribe","id":8,"topic":"t","recover":{"offset":1.5,"epoch":"e"}}', 'E_BAD_REQUEST'],
  ['{"type":"subscribe","id":9,"topic":"t","recover":"yes"}', 'E_BAD_REQUEST'],
  ['{"type":"publish","id":10,"topic":"t"}', 'E_BAD_REQUEST'],
  ['{"type":"publish","id":11,"topic":"t","data":1,"excludeSelf":"yes"}', 'E_BAD_REQUEST'],
  [`{"type":"publish","id":12,"topic":"t","data":${nested(33)}}`, 'E_BAD_REQUEST'],
  [`{"type":"publish","id":13,"topic":"t","data":${nested(20_000)}}`, 'E_BAD_REQUEST'],
  ['{"type":"publish","id":{"x":1},"topic":"t","data":1}', 'E_BAD_REQUEST'],
  ['{"type":"unsubscribe","id":14,"topic":"never"}', 'E_NOT_SUBSCRIBED'],
  ['{"__proto__":{"type":"ping"},"id":15}', 'E_BAD_REQUEST'],
  ['{"type":"connect","id":16,"token":7}', 'E_BAD_REQUEST'],
  [`{"type":"publish","id":17,"topic":"t","data":"${'y'.repeat(70_000)}"}`, 'E_TOO_LARGE'],
];

test('hub abuse: a barrage of malformed messages gets error replies; the connection and others survive', { timeout: 15_000 }, async () => {
  const { hub, url, close } = await startHub({ anonymous: true, maxInvalidMessages: 100 });
  const attacker = await rawClient(url);
  const bystander = hubClient(url);
  try {
    const got: Json[] = [];
    await bystander.subscribe('t', (d) => got.push(d));
    for (const [text] of BAD) attacker.sendText(text);
    attacker.ws.send(new Uint8Array([1, 2, 3])); // binary: not a hub message
    await until(() => attacker.messages.length >= BAD.length + 1, 5000, 'error replies');
    const errors = attacker.messages.filter((m) => m.type === 'error');
    assert.equal(errors.length, BAD.length + 1);
    // Answers come in order for the synchronous refusals; match codes by id where there is one.
    for (const [text, code] of BAD) {
      const id = /"id":(\d+)/.exec(text)?.[1];
      if (id === undefined || code === 'E_TOO_LARGE') continue; // too large: refused unread, so without its id
      const error = errors.find((e) => e['id'] === Number(id));
      assert.ok(error, `an error for ${text.slice(0, 60)}`);
      assert.equal(error['code'], code, text.slice(0, 60));
    }
    assert.equal(errors.filter((e) => e['code'] === 'E_TOO_LARGE').length, 1);
    // Still usable.
    assert.equal((await attacker.request({ type: 'ping' })).type, 'reply');
    // A publication with __proto__ keys is plain data: delivered as such, nothing polluted.
    const pub = await attacker.request({ type: 'publish', topic: 't', data: JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}') as Json });
    assert.equal(pub.type, 'reply');
    await until(() => got.length === 1);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
    assert.ok(Object.prototype.hasOwnProperty.call(got[0], '__proto__'), 'kept as an own property');
    // Many valid messages at once: answered (or E_BUSY past the pending limit), never closed.
    for (let i = 0; i < 2000; i++) attacker.sendText(`{"type":"ping","id":${100_000 + i}}`);
    await until(() => attacker.messages.filter((m) => typeof m['id'] === 'number' && (m['id'] as number) >= 100_000 && (m['id'] as number) < 102_000).length === 2000, 5000, '2000 answers');
    assert.equal(attacker.ws.readyState, 1);
    // Past the threshold: closed with 1008.
    const invalidSoFar = hub.stats().invalidMessages;
    for (let i = 0; i < 100; i++) attacker.sendText('{oops');
    const [code, reason] = await attacker.closed;
    assert.equal(code, 1008);
    assert.match(reason, /invalid/);
    assert.ok(hub.stats().invalidMessages >= invalidSoFar + 100 - BAD.length);
    // The bystander never noticed.
    await hub.publish('t', 'still here');
    await until(() => got.length === 2);
    assert.equal(bystander.state, 'connected');
  } finally {
    await bystander.close();
    await close();
  }
});

test('hub wire: the validator reads only known own fields and never throws', () => {
  const inputs = ['', ' ', '{"type":"ping","id":-1}', '{"type":"ping","id":"' + 'i'.repeat(65) + '"}', '1e999', '{"type":"subscribe","topic":"\\u009f"}'];
  for (const input of inputs) {
    const result = parseClientRequest(input);
    assert.equal(result.ok, false, input);
  }
  const ok = parseClientRequest('{"type":"subscribe","id":"a","topic":"room:1","recover":{"offset":3,"epoch":"e1"},"extra":true}');
  assert.deepEqual(ok, { ok: true, value: { type: 'subscribe', id: 'a', topic: 'room:1', recover: { offset: 3, epoch: 'e1' } } });
  const proto = parseClientRequest('{"type":"publish","topic":"t","data":{"__proto__":{"x":1}}}');
  assert.ok(proto.ok);
  assert.equal(({} as Record<string, unknown>)['x'], undefined);
  // Exactly 32 levels is allowed; 33 is not.
  assert.ok(parseClientRequest(`{"type":"publish","topic":"t","data":${nested(32)}}`).ok);
  assert.equal(parseClientRequest(`{"type":"publish","topic":"t","data":${nested(33)}}`).ok, false);
});
