import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { HandshakeError } from '../../src/protocol/errors.js';
import type { ExtensionOffer } from '../../src/protocol/extension.js';
import {
  formatExtensions,
  isToken,
  parseExtensions,
  parseTokenList,
  parseUpgrade,
} from '../../src/protocol/headers.js';

/** Asserts that `fn` throws a HandshakeError with status 400 whose message matches `pattern`. */
function assertBadRequest(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof HandshakeError, `expected a HandshakeError, got ${String(error)}`);
    assert.equal(error.status, 400);
    assert.match(error.message, pattern);
    return true;
  });
}

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const tokenArb = fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 12 });

// --- isToken ------------------------------------------------------------------------------------

test('isToken: tchar strings are tokens', () => {
  assert.ok(isToken('permessage-deflate'));
  assert.ok(isToken('x'));
  assert.ok(isToken(TCHARS));
});

test('isToken: empty strings, delimiters, spaces, controls and non-ASCII are not', () => {
  for (const s of ['', ' ', 'a b', 'a,b', 'a;b', 'a=b', '"a"', 'a/b', 'a:b', '(a)', '<a>', 'a@b',
    'a?b', '[a]', '{a}', 'a\\b', 'a\tb', 'a\r\n', 'caf\u00e9', '\u0000', '\u007f']) {
    assert.equal(isToken(s), false, JSON.stringify(s));
  }
});

// --- parseTokenList ------------------------------------------------------------------------------

test('parseTokenList: absent header is an empty list', () => {
  assert.deepEqual(parseTokenList(undefined), []);
});

test('parseTokenList: splits on commas and trims optional whitespace', () => {
  assert.deepEqual(parseTokenList('Upgrade'), ['Upgrade']);
  assert.deepEqual(parseTokenList('keep-alive, Upgrade'), ['keep-alive', 'Upgrade']);
  assert.deepEqual(parseTokenList('keep-alive,Upgrade'), ['keep-alive', 'Upgrade']);
  assert.deepEqual(parseTokenList(' \tkeep-alive \t,\t Upgrade  '), ['keep-alive', 'Upgrade']);
});

test('parseTokenList: keeps the case and the order', () => {
  assert.deepEqual(parseTokenList('chat.V2, Chat, chat'), ['chat.V2', 'Chat', 'chat']);
});

test('parseTokenList: skips empty elements (RFC 7230 §7)', () => {
  assert.deepEqual(parseTokenList(''), []);
  assert.deepEqual(parseTokenList(' , ,, '), []);
  assert.deepEqual(parseTokenList(',a,, b ,'), ['a', 'b']);
});

test('parseTokenList: several header lines are one list', () => {
  assert.deepEqual(parseTokenList(['keep-alive', 'Upgrade']), ['keep-alive', 'Upgrade']);
  assert.deepEqual(parseTokenList(['a, b', '', 'c']), ['a', 'b', 'c']);
  assert.deepEqual(parseTokenList([]), []);
});

test('parseTokenList: a non-token element is a 400 that names it and the header', () => {
  assertBadRequest(() => parseTokenList('keep-alive, up grade', 'Connection'), /Connection.*"up grade" is not a token/);
  assertBadRequest(() => parseTokenList('a;b'), /"a;b" is not a token/);
  assertBadRequest(() => parseTokenList('"quoted"'), /not a token/);
  assertBadRequest(() => parseTokenList(['ok', 'b@d']), /"b@d"/);
});

test('parseUpgrade: accepts protocol/version elements', () => {
  assert.deepEqual(parseUpgrade('HTTP/2.0, websocket'), ['HTTP/2.0', 'websocket']);
  assert.deepEqual(parseUpgrade(['WebSocket']), ['WebSocket']);
  assertBadRequest(() => parseUpgrade('websocket/'), /Upgrade.*not a protocol name/);
  assertBadRequest(() => parseUpgrade('a/b/c'), /not a protocol name/);
});

// --- parseExtensions ---------------------------------------------------------------------------

test('parseExtensions: absent or empty header means no offers', () => {
  assert.deepEqual(parseExtensions(undefined), []);
  assert.deepEqual(parseExtensions(''), []);
  assert.deepEqual(parseExtensions(' , '), []);
  assert.deepEqual(parseExtensions([]), []);
});

test('parseExtensions: a bare extension name', () => {
  assert.deepEqual(parseExtensions('permessage-deflate'), [{ name: 'permessage-deflate', params: [] }]);
});

test('parseExtensions: parameters with and without values, in order', () => {
  assert.deepEqual(
    parseExtensions('permessage-deflate; client_max_window_bits; server_max_window_bits=10'),
    [
      {
        name: 'permessage-deflate',
        params: [
          ['client_max_window_bits', true],
          ['server_max_window_bits', '10'],
        ],
      },
    ],
  );
});

test('parseExtensions: several offers, e.g. fallbacks of one extension (RFC 7692 §5)', () => {
  const offers = parseExtensions(
    'permessage-deflate; client_max_window_bits=10, permessage-deflate, x-webkit-deflate-frame',
  );
  assert.deepEqual(offers, [
    { name: 'permessage-deflate', params: [['client_max_window_bits', '10']] },
    { name: 'permessage-deflate', params: [] },
    { name: 'x-webkit-deflate-frame', params: [] },
  ]);
});

test('parseExtensions: whitespace around every delimiter, tabs included', () => {
  const expected: ExtensionOffer[] = [
    { name: 'foo', params: [['a', '1'], ['b', true]] },
    { name: 'bar', params: [] },
  ];
  for (const value of [
    'foo;a=1;b,bar',
    'foo; a=1; b, bar',
    '  foo ; a = 1 ; b ,  bar  ',
    '\tfoo\t;\ta\t=\t1\t;\tb\t,\tbar\t',
    'foo; a="1"; b, bar',
    'foo;a = "1" ;b,bar',
  ]) {
    assert.deepEqual(parseExtensions(value), expected, JSON.stringify(value));
  }
});

test('parseExtensions: several header lines are one list', () => {
  assert.deepEqual(parseExtensions(['foo; a=1', 'bar']), [
    { name: 'foo', params: [['a', '1']] },
    { name: 'bar', params: [] },
  ]);
  assert.deepEqual(parseExtensions(['foo', '', 'bar; x']), [
    { name: 'foo', params: [] },
    { name: 'bar', params: [['x', true]] },
  ]);
});

test('parseExtensions: empty list elements are skipped (RFC 7230 §7)', () => {
  assert.deepEqual(parseExtensions(', foo,, ,bar ,'), [
    { name: 'foo', params: [] },
    { name: 'bar', params: [] },
  ]);
});

test('parseExtensions: quoted values are unescaped', () => {
  assert.deepEqual(parseExtensions('foo; a="10"'), [{ name: 'foo', params: [['a', '10']] }]);
  assert.deepEqual(parseExtensions('foo; a="\\1\\0"'), [{ name: 'foo', params: [['a', '10']] }]);
  assert.deepEqual(parseExtensions('foo; a="x\\-y"; b=z'), [
    { name: 'foo', params: [['a', 'x-y'], ['b', 'z']] },
  ]);
});

test('parseExtensions: a quoted value that is not a token after unquoting is a 400 (RFC 6455 §9.1)', () => {
  assertBadRequest(() => parseExtensions('foo; a=""'), /quoted value of parameter "a" is not a token/);
  assertBadRequest(() => parseExtensions('foo; a="x y"'), /quoted value of parameter "a" is not a token/);
  assertBadRequest(() => parseExtensions('foo; a="x,y"'), /not a token/);
  assertBadRequest(() => parseExtensions('foo; a="x\\"y"'), /not a token/);
  assertBadRequest(() => parseExtensions('foo; a="x\\\\y"'), /not a token/);
});

test('parseExtensions: malformed quoted strings are a 400', () => {
  assertBadRequest(() => parseExtensions('foo; a="10'), /unterminated quoted string at position 7/);
  assertBadRequest(() => parseExtensions('foo; a="10\\'), /unterminated quoted string/);
  assertBadRequest(() => parseExtensions('foo; a="1\r0"'), /invalid character in quoted string/);
  assertBadRequest(() => parseExtensions('foo; a="1\\\n"'), /invalid character after "\\"/);
});

test('parseExtensions: duplicated parameters are kept for the negotiator', () => {
  assert.deepEqual(parseExtensions('permessage-deflate; server_no_context_takeover; server_no_context_takeover'), [
    {
      name: 'permessage-deflate',
      params: [
        ['server_no_context_takeover', true],
        ['server_no_context_takeover', true],
      ],
    },
  ]);
});

test('parseExtensions: syntax errors are 400s that name the problem', () => {
  assertBadRequest(() => parseExtensions(';a'), /Sec-WebSocket-Extensions.*expected an extension name at position 0/);
  assertBadRequest(() => parseExtensions('foo;'), /expected a parameter name, found the end/);
  assertBadRequest(() => parseExtensions('foo; ;a'), /expected a parameter name/);
  assertBadRequest(() => parseExtensions('foo; a='), /expected a value for parameter "a", found the end/);
  assertBadRequest(() => parseExtensions('foo; a=,bar'), /expected a value for parameter "a"/);
  assertBadRequest(() => parseExtensions('foo bar'), /expected ";" or ","/);
  assertBadRequest(() => parseExtensions('foo; a=1 2'), /expected ";" or ","/);
  assertBadRequest(() => parseExtensions('foo; a=b=c'), /expected ";" or ","/);
  assertBadRequest(() => parseExtensions('"foo"'), /expected an extension name/);
  assertBadRequest(() => parseExtensions('foo; a=x/y'), /expected ";" or ","/);
  assertBadRequest(() => parseExtensions('foo=1'), /expected ";" or ","/);
  assertBadRequest(() => parseExtensions(['foo', 'b@r']), /expected ";" or ","/);
});

test('parseExtensions: long values are shortened in error messages', () => {
  assert.throws(
    () => parseExtensions(`${'a'.repeat(500)} b`),
    (error: unknown) => error instanceof HandshakeError && error.message.length < 200,
  );
});

test('parseExtensions: arbitrary input parses or throws a 400 HandshakeError, nothing else (property)', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...'ab=;," \\\t\r1-/'), maxLength: 30 }), (value) => {
      try {
        parseExtensions(value);
      } catch (error) {
        assert.ok(error instanceof HandshakeError);
        assert.equal(error.status, 400);
      }
    }),
    { numRuns: 2000 },
  );
});

// --- formatExtensions --------------------------------------------------------------------------

test('formatExtensions: writes names, bare parameters and token values bare', () => {
  assert.equal(formatExtensions([]), '');
  assert.equal(
    formatExtensions([
      { name: 'permessage-deflate', params: [['client_max_window_bits', true], ['server_max_window_bits', '10']] },
      { name: 'permessage-deflate', params: [] },
    ]),
    'permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate',
  );
});

test('formatExtensions: non-token values are quoted and escaped', () => {
  assert.equal(formatExtensions([{ name: 'x', params: [['a', 'b c']] }]), 'x; a="b c"');
  assert.equal(formatExtensions([{ name: 'x', params: [['a', 'q"\\']] }]), 'x; a="q\\"\\\\"');
  assert.equal(formatExtensions([{ name: 'x', params: [['a', '']] }]), 'x; a=""');
});

test('formatExtensions: refuses what cannot be written', () => {
  assert.throws(() => formatExtensions([{ name: 'a b', params: [] }]), TypeError);
  assert.throws(() => formatExtensions([{ name: 'x', params: [['a=', true]] }]), TypeError);
  assert.throws(() => formatExtensions([{ name: 'x', params: [['a', '1\r\nX-Evil: 1']] }]), TypeError);
});

test('formatExtensions → parseExtensions round-trips token lists (property)', () => {
  // Built with fc.tuple, not fc.record: records have a null prototype, which deepEqual tells apart.
  const offerArb = fc
    .tuple(tokenArb, fc.array(fc.tuple(tokenArb, fc.oneof(fc.constant<true>(true), tokenArb)), { maxLength: 5 }))
    .map(([name, params]): ExtensionOffer => ({ name, params }));
  fc.assert(
    fc.property(fc.array(offerArb, { maxLength: 5 }), (offers) => {
      assert.deepEqual(parseExtensions(formatExtensions(offers)), offers);
    }),
    { numRuns: 1000 },
  );
});

test('parseExtensions: token values written as escaped quoted strings read back the same (property)', () => {
  fc.assert(
    fc.property(tokenArb, fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }), (value, escape) => {
      const quoted = [...value].map((c, i) => (escape[i] ? `\\${c}` : c)).join('');
      assert.deepEqual(parseExtensions(`ext; p="${quoted}"`), [{ name: 'ext', params: [['p', value]] }]);
    }),
    { numRuns: 500 },
  );
});

test('parseTokenList: a joined token list reads back with any whitespace (property)', () => {
  const ows = fc.string({ unit: fc.constantFrom(' ', '\t'), maxLength: 3 });
  fc.assert(
    fc.property(fc.array(fc.tuple(ows, tokenArb, ows), { maxLength: 8 }), (parts) => {
      const value = parts.map(([a, t, b]) => `${a}${t}${b}`).join(',');
      assert.deepEqual(parseTokenList(value), parts.map(([, t]) => t));
    }),
    { numRuns: 500 },
  );
});
