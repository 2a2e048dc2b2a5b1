// The server API's OpenAPI document (GET /api/openapi.json) against the handler: every method
// documented and every documented one answering, every $ref resolving, every error code with its
// answer, and real answers of every method (and of refusals) valid against their schemas, checked
// strictly by a small JSON Schema walk: an answer with a field the document does not name fails.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { SERVER_API_ERRORS, SERVER_API_METHODS } from '../../src/hub/index.js';
import { hubClient } from './hub-helpers.js';
import { VERSION, answers, call, ok, refused, startApiNode, type ApiNode } from './server-api-helpers.js';

type Schema = Record<string, unknown>;

/**
 * A small JSON Schema check, for the keywords the document uses. Objects with `properties` are
 * closed here (strict): an answer carrying a field the document does not name fails.
 */
function validate(root: Schema, schema: Schema, value: unknown, path = '$'): string[] {
  if (typeof schema['$ref'] === 'string') {
    const target = (schema['$ref'] as string).replace(/^#\//, '').split('/').reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], root);
    assert.ok(target, `unresolved ${String(schema['$ref'])}`);
    return validate(root, target as Schema, value, path);
  }
  const problems: string[] = [];
  const type = schema['type'] as string | undefined;
  const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v);
  if (type !== undefined && !(typeOf(value) === type || (type === 'number' && typeOf(value) === 'integer'))) return [`${path}: ${typeOf(value)}, not ${type}`];
  if (Array.isArray(schema['enum']) && !(schema['enum'] as unknown[]).includes(value)) problems.push(`${path}: ${JSON.stringify(value)} not in enum`);
  if ('const' in schema && schema['const'] !== value) problems.push(`${path}: not ${JSON.stringify(schema['const'])}`);
  if (typeof value === 'number' && typeof schema['minimum'] === 'number' && value < schema['minimum']) problems.push(`${path}: below ${schema['minimum']}`);
  if (typeof value === 'string') {
    if (typeof schema['minLength'] === 'number' && value.length < schema['minLength']) problems.push(`${path}: too short`);
    if (typeof schema['maxLength'] === 'number' && value.length > schema['maxLength']) problems.push(`${path}: too long`);
    if (typeof schema['pattern'] === 'string' && !new RegExp(schema['pattern'], 'u').test(value)) problems.push(`${path}: does not match ${schema['pattern']}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema['minItems'] === 'number' && value.length < schema['minItems']) problems.push(`${path}: too few items`);
    if (typeof schema['maxItems'] === 'number' && value.length > schema['maxItems']) problems.push(`${path}: too many items`);
    if (schema['uniqueItems'] === true && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) problems.push(`${path}: items repeat`);
    if (schema['items']) value.forEach((item, i) => problems.push(...validate(root, schema['items'] as Schema, item, `${path}[${i}]`)));
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    for (const key of (schema['required'] as string[] | undefined) ?? []) if (!(key in object)) problems.push(`${path}: ${key} is missing`);
    const properties = schema['properties'] as Record<string, Schema> | undefined;
    if (properties) {
      for (const [key, item] of Object.entries(object)) {
        if (!(key in properties)) problems.push(`${path}: ${key} is not documented`);
        else problems.push(...validate(root, properties[key]!, item, `${path}.${key}`));
      }
    }
  }
  if (Array.isArray(schema['oneOf'])) {
    const passing = (schema['oneOf'] as Schema[]).filter((option) => validate(root, option, value, path).length === 0).length;
    if (passing !== 1) problems.push(`${path}: matches ${passing} of oneOf, not exactly 1`);
  }
  return problems;
}

describe('the OpenAPI document', () => {
  let node: ApiNode;
  let doc: Schema;
  before(async () => {
    node = await startApiNode();
    const response = await fetch(`${node.base}/api/openapi.json`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    doc = (await response.json()) as Schema;
  });
  after(async () => {
    await node.close();
  });

  const operation = (method: string): Schema => ((doc['paths'] as Record<string, Schema>)[`/${method}`]!['post'] as Schema);
  const schemaOf = (response: Schema): Schema => ((response['content'] as Record<string, Schema>)['application/json']!['schema'] as Schema);

  test('is OpenAPI 3.1 with the apikey scheme, served without a key, HEAD too', { timeout: 10_000 }, async () => {
    assert.equal(doc['openapi'], '3.1.0');
    assert.equal((doc['info'] as Schema)['version'], VERSION);
    assert.deepEqual(doc['security'], [{ apikey: [] }]);
    assert.deepEqual(((doc['components'] as Schema)['securitySchemes'] as Schema)['apikey'], {
      type: 'http',
      scheme: 'apikey',
      description: (((doc['components'] as Schema)['securitySchemes'] as Schema)['apikey'] as Schema)['description'],
    });
    const head = await fetch(`${node.base}/api/openapi.json`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
  });

  test('documents every method of the handler, and every documented method exists', { timeout: 10_000 }, async () => {
    const paths = Object.keys(doc['paths'] as Schema).sort();
    assert.deepEqual(paths, [...SERVER_API_METHODS.map((m) => `/${m}`), '/openapi.json'].sort());
    for (const method of SERVER_API_METHODS) {
      const answer = await call(node.base, method, {});
      assert.notEqual(answer.status, 404, `${method} exists`);
      assert.ok([200, 400].includes(answer.status), `${method}: ${answer.status}`);
    }
    assert.equal((await call(node.base, 'not-documented', {})).status, 404);
  });

  test('every $ref resolves, and every error code has its documented answer', { timeout: 10_000 }, () => {
    const refs: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node !== null && typeof node === 'object') {
        for (const [key, value] of Object.entries(node)) {
          if (key === '$ref') refs.push(value as string);
          else walk(value);
        }
      }
    };
    walk(doc);
    assert.ok(refs.length > 30);
    for (const ref of refs) {
      const target = ref.replace(/^#\//, '').split('/').reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], doc);
      assert.ok(target, `${ref} resolves`);
    }
    const errorBody = ((doc['components'] as Schema)['schemas'] as Record<string, Schema>)['ErrorBody']!;
    const codes = (errorBody['properties'] as Record<string, Schema>)['code']!['enum'];
    assert.deepEqual(codes, Object.keys(SERVER_API_ERRORS));
    for (const method of SERVER_API_METHODS) {
      const responses = operation(method)['responses'] as Record<string, unknown>;
      for (const status of Object.values(SERVER_API_ERRORS)) assert.ok(String(status) in responses, `${method} documents ${status}`);
    }
  });

  test('the request bodies the tests send validate against the documented request schemas', { timeout: 10_000 }, () => {
    const requests: Array<[string, unknown]> = [
      ['publish', { topic: 'news', data: { a: [1, null] }, idempotency_key: 'k' }],
      ['broadcast', { topics: ['a', 'b'], data: 1 }],
      ['history', { topic: 'log', since: { offset: 3, epoch: 'e' }, limit: 2, reverse: true }],
      ['disconnect', { user: 'ann', code: 4000, reason: 'bye' }],
      ['subscribe', { conn_id: 'n.1', topic: 't' }],
      ['topics', { pattern: 'chat.*' }],
      ['info', {}],
    ];
    for (const [method, body] of requests) {
      const schema = ((operation(method)['requestBody'] as Schema)['content'] as Record<string, Schema>)['application/json']!['schema'] as Schema;
      assert.deepEqual(validate(doc, schema, body), [], method);
    }
    const disconnect = ((operation('disconnect')['requestBody'] as Schema)['content'] as Record<string, Schema>)['application/json']!['schema'] as Schema;
    assert.notDeepEqual(validate(doc, disconnect, { user: 'a', conn_id: 'b' }), [], 'both targets is not valid');
    const publish = ((operation('publish')['requestBody'] as Schema)['content'] as Record<string, Schema>)['application/json']!['schema'] as Schema;
    assert.notDeepEqual(validate(doc, publish, { topic: '$all', data: 1 }), [], 'a reserved topic is not valid');
  });

  test('real answers of every method validate against their documented schemas (strictly: no undocumented field)', { timeout: 10_000 }, async () => {
    // This node's own calls, so that every method has answers here whatever ran before.
    const client = hubClient(node.url, { token: 'ann' });
    try {
      await client.subscribe('doc.topic');
      await ok(node.base, 'publish', { topic: 'doc.topic', data: { x: 1 } });
      await ok(node.base, 'broadcast', { topics: ['doc.topic', 'doc.other'], data: 2 });
      await ok(node.base, 'presence', { topic: 'doc.topic' });
      await ok(node.base, 'presence_stats', { topic: 'doc.topic' });
      await ok(node.base, 'history', { topic: 'doc.topic' });
      await ok(node.base, 'subscribe', { user: 'ann', topic: 'doc.third' });
      await ok(node.base, 'unsubscribe', { user: 'ann', topic: 'doc.third' });
      await ok(node.base, 'topics', {});
      await ok(node.base, 'info', {});
      await ok(node.base, 'disconnect', { user: 'nobody' });
      // And refusals, each with its status.
      await refused(node.base, 'publish', { topic: '$all', data: 1 }, 400, 'E_BAD_REQUEST');
      await refused(node.base, 'presence', { topic: 'doc.topic' }, 401, 'E_UNAUTHORIZED', { authorization: 'apikey not-the-key' });
      await refused(node.base, 'history', { topic: 'doc.topic' }, 415, 'E_UNSUPPORTED_MEDIA_TYPE', { 'content-type': 'text/plain' });
      await refused(node.base, 'broadcast', JSON.stringify({ topics: ['a'], data: 'x'.repeat(1024 * 1024) }), 413, 'E_TOO_LARGE');
      await node.hub.broker.close();
      await refused(node.base, 'publish', { topic: 'doc.topic', data: 1 }, 503, 'E_UNAVAILABLE');
    } finally {
      await client.close();
    }
    const seen = new Set<string>();
    for (const { method, answer } of answers) {
      if (!(SERVER_API_METHODS as readonly string[]).includes(method)) continue;
      const responses = operation(method)['responses'] as Record<string, Schema>;
      let response = responses[String(answer.status)];
      assert.ok(response, `${method} answered ${answer.status}, which it does not document`);
      if (typeof response['$ref'] === 'string') response = validateRef(response['$ref'] as string);
      assert.deepEqual(validate(doc, schemaOf(response), answer.body), [], `${method} ${answer.status}: ${JSON.stringify(answer.body).slice(0, 200)}`);
      seen.add(answer.status === 200 ? method : String(answer.status));
    }
    assert.deepEqual([...seen].sort(), [...SERVER_API_METHODS, '400', '401', '413', '415', '503'].sort(), 'a successful answer of every method, and each refusal, was checked');
  });

  function validateRef(ref: string): Schema {
    return ref.replace(/^#\//, '').split('/').reduce<unknown>((at, key) => (at as Record<string, unknown>)[key], doc) as Schema;
  }
});
