import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeError } from '../../src/protocol/errors.js';
import type { ExtensionOffer } from '../../src/protocol/extension.js';
import {
  EXTENSION_NAME,
  acceptServerResponse,
  buildClientOffer,
  negotiateServer,
  validateDeflateOptions,
  type PerMessageDeflateOptions,
} from '../../src/protocol/permessage-deflate.js';

type P = [string, string | true];
const offer = (...params: P[]): ExtensionOffer => ({ name: EXTENSION_NAME, params });
const server = (offers: ExtensionOffer[], options: PerMessageDeflateOptions = {}) => negotiateServer(offers, options);
const responseParams = (offers: ExtensionOffer[], options: PerMessageDeflateOptions = {}) =>
  server(offers, options)?.response.params;

// ── server ──────────────────────────────────────────────────────────────────────────────────

test('server: bare offer is accepted; by default the server answers server_no_context_takeover', () => {
  const r = server([offer()]);
  assert.ok(r);
  assert.equal(r.response.name, 'permessage-deflate');
  assert.deepEqual(r.response.params, [['server_no_context_takeover', true]]);
  assert.deepEqual(r.params, {
    serverNoContextTakeover: true,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
  });
});

test('server: serverNoContextTakeover false keeps context unless the client asks (§7.1.1.1)', () => {
  const opts = { serverNoContextTakeover: false };
  assert.deepEqual(responseParams([offer()], opts), []);
  assert.equal(server([offer()], opts)?.params.serverNoContextTakeover, false);
  assert.deepEqual(responseParams([offer(['server_no_context_takeover', true])], opts), [
    ['server_no_context_takeover', true],
  ]);
  assert.equal(server([offer(['server_no_context_takeover', true])], opts)?.params.serverNoContextTakeover, true);
});

test('server: client_no_context_takeover is echoed when offered, or added when configured (§7.1.1.2)', () => {
  const o = { serverNoContextTakeover: false };
  assert.deepEqual(responseParams([offer(['client_no_context_takeover', true])], o), [
    ['client_no_context_takeover', true],
  ]);
  assert.equal(server([offer(['client_no_context_takeover', true])], o)?.params.clientNoContextTakeover, true);
  assert.deepEqual(responseParams([offer()], { ...o, clientNoContextTakeover: true }), [
    ['client_no_context_takeover', true],
  ]);
  assert.equal(server([offer()], o)?.params.clientNoContextTakeover, false);
});

test('server: server_max_window_bits — answer ≤ the offered value, or our own limit (§7.1.2.1)', () => {
  const o = { serverNoContextTakeover: false };
  // Client's value echoed.
  let r = server([offer(['server_max_window_bits', '10'])], o);
  assert.deepEqual(r?.response.params, [['server_max_window_bits', '10']]);
  assert.equal(r?.params.serverMaxWindowBits, 10);
  // Ours smaller: ours.
  r = server([offer(['server_max_window_bits', '12'])], { ...o, serverMaxWindowBits: 9 });
  assert.deepEqual(r?.response.params, [['server_max_window_bits', '9']]);
  assert.equal(r?.params.serverMaxWindowBits, 9);
  // Ours larger: never above the client's.
  r = server([offer(['server_max_window_bits', '8'])], { ...o, serverMaxWindowBits: 12 });
  assert.deepEqual(r?.response.params, [['server_max_window_bits', '8']]);
  assert.equal(r?.params.serverMaxWindowBits, 8);
  // Client said nothing: we may still limit ourselves.
  r = server([offer()], { ...o, serverMaxWindowBits: 11 });
  assert.deepEqual(r?.response.params, [['server_max_window_bits', '11']]);
  assert.equal(r?.params.serverMaxWindowBits, 11);
});

test('server: client_max_window_bits — only when offered, ≤ the offered value (§7.1.2.2)', () => {
  const o = { serverNoContextTakeover: false };
  // Offered without a value, no preference: nothing in the response, client uses 15.
  let r = server([offer(['client_max_window_bits', true])], o);
  assert.deepEqual(r?.response.params, []);
  assert.equal(r?.params.clientMaxWindowBits, 15);
  // Offered without a value, we want 10: we may send it.
  r = server([offer(['client_max_window_bits', true])], { ...o, clientMaxWindowBits: 10 });
  assert.deepEqual(r?.response.params, [['client_max_window_bits', '10']]);
  assert.equal(r?.params.clientMaxWindowBits, 10);
  // Offered 9, we want 12: 9 (never larger than the client's promise).
  r = server([offer(['client_max_window_bits', '9'])], { ...o, clientMaxWindowBits: 12 });
  assert.deepEqual(r?.response.params, [['client_max_window_bits', '9']]);
  assert.equal(r?.params.clientMaxWindowBits, 9);
  // Offered 12, no preference: echoed; we inflate with 12.
  r = server([offer(['client_max_window_bits', '12'])], o);
  assert.deepEqual(r?.response.params, [['client_max_window_bits', '12']]);
  assert.equal(r?.params.clientMaxWindowBits, 12);
  // Not offered, we want 10: must not send it; the client keeps 15.
  r = server([offer()], { ...o, clientMaxWindowBits: 10 });
  assert.deepEqual(r?.response.params, []);
  assert.equal(r?.params.clientMaxWindowBits, 15);
});

test('server: requireClientMaxWindowBits declines offers without it', () => {
  const o = { requireClientMaxWindowBits: true, clientMaxWindowBits: 10 };
  assert.equal(server([offer()], o), undefined);
  const r = server([offer(), offer(['client_max_window_bits', true])], o);
  assert.equal(r?.params.clientMaxWindowBits, 10);
});

test('server: acceptOffer sees decoded offers in order and can decline', () => {
  const seen: unknown[] = [];
  const r = server(
    [offer(['server_max_window_bits', '8']), offer(['client_no_context_takeover', true])],
    {
      acceptOffer: (o) => {
        seen.push(o);
        return o.serverMaxWindowBits === undefined;
      },
    },
  );
  assert.deepEqual(seen, [
    { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 8, clientMaxWindowBits: undefined },
    { serverNoContextTakeover: false, clientNoContextTakeover: true, serverMaxWindowBits: undefined, clientMaxWindowBits: undefined },
  ]);
  assert.equal(r?.params.clientNoContextTakeover, true);
});

test('server: all parameters at once', () => {
  const r = server([
    offer(
      ['client_max_window_bits', '10'],
      ['server_max_window_bits', '11'],
      ['client_no_context_takeover', true],
      ['server_no_context_takeover', true],
    ),
  ]);
  assert.deepEqual(r?.response.params, [
    ['server_no_context_takeover', true],
    ['client_no_context_takeover', true],
    ['server_max_window_bits', '11'],
    ['client_max_window_bits', '10'],
  ]);
  assert.deepEqual(r?.params, {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    serverMaxWindowBits: 11,
    clientMaxWindowBits: 10,
  });
});

test('server: invalid offers are declined, not failed (§7.1), and the next offer is tried', () => {
  const bad: P[][] = [
    [['server_max_window_bits', '7']],
    [['server_max_window_bits', '16']],
    [['server_max_window_bits', 'abc']],
    [['server_max_window_bits', '08']],
    [['server_max_window_bits', '']],
    [['server_max_window_bits', ' 9']],
    [['server_max_window_bits', '9.0']],
    [['server_max_window_bits', true]],
    [['client_max_window_bits', '7']],
    [['client_max_window_bits', '16']],
    [['client_max_window_bits', 'abc']],
    [['client_max_window_bits', '015']],
    [['server_no_context_takeover', 'yes']],
    [['client_no_context_takeover', '']],
    [['server_no_context_takeover', true], ['server_no_context_takeover', true]],
    [['client_no_context_takeover', true], ['client_no_context_takeover', true]],
    [['server_max_window_bits', '10'], ['server_max_window_bits', '10']],
    [['client_max_window_bits', true], ['client_max_window_bits', '10']],
    [['mem_level', '5']],
    [['x-unknown', true]],
    [['Server_No_Context_Takeover', true]],
  ];
  for (const params of bad) {
    assert.equal(server([offer(...params)]), undefined, JSON.stringify(params));
    const r = server([offer(...params), offer(['client_max_window_bits', '9'])]);
    assert.equal(r?.params.clientMaxWindowBits, 9, `fallback after ${JSON.stringify(params)}`);
  }
  // Every valid value 8–15 is accepted.
  for (let bits = 8; bits <= 15; bits++) {
    assert.equal(server([offer(['server_max_window_bits', String(bits)])])?.params.serverMaxWindowBits, bits);
    assert.equal(server([offer(['client_max_window_bits', String(bits)])])?.params.clientMaxWindowBits, bits);
  }
});

test('server: other extensions are skipped; the first acceptable offer wins; none → undefined', () => {
  assert.equal(server([]), undefined);
  assert.equal(server([{ name: 'x-webkit-deflate-frame', params: [] }]), undefined);
  const r = server([
    { name: 'x-webkit-deflate-frame', params: [] },
    offer(['server_max_window_bits', '10']),
    offer(['server_max_window_bits', '12']),
  ]);
  assert.equal(r?.params.serverMaxWindowBits, 10);
  assert.equal(server([{ name: 'PerMessage-Deflate', params: [] }])?.response.name, EXTENSION_NAME);
});

test('options are validated', () => {
  for (const bad of [
    { serverMaxWindowBits: 7 },
    { serverMaxWindowBits: 16 },
    { serverMaxWindowBits: 9.5 },
    { clientMaxWindowBits: 16 },
    { level: 10 },
    { level: -1 },
    { memLevel: 0 },
    { memLevel: 10 },
    { threshold: -1 },
    { threshold: Number.NaN },
  ] as PerMessageDeflateOptions[]) {
    assert.throws(() => validateDeflateOptions(bad), RangeError, JSON.stringify(bad));
    assert.throws(() => negotiateServer([offer()], bad), RangeError);
    assert.throws(() => buildClientOffer(bad), RangeError);
  }
  validateDeflateOptions({ clientMaxWindowBits: true, serverMaxWindowBits: 8, level: 0, memLevel: 9, threshold: 0 });
  validateDeflateOptions({ clientMaxWindowBits: false });
});

// ── client ──────────────────────────────────────────────────────────────────────────────────

test('client: the offer reflects the options', () => {
  assert.deepEqual(buildClientOffer(), { name: EXTENSION_NAME, params: [['client_max_window_bits', true]] });
  assert.deepEqual(buildClientOffer({ clientMaxWindowBits: false }).params, []);
  assert.deepEqual(
    buildClientOffer({
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 11,
    }).params,
    [
      ['server_no_context_takeover', true],
      ['client_no_context_takeover', true],
      ['server_max_window_bits', '10'],
      ['client_max_window_bits', '11'],
    ],
  );
});

const response = (...params: P[]): ExtensionOffer[] => [offer(...params)];
const rejects = (res: ExtensionOffer[], options: PerMessageDeflateOptions, pattern: RegExp): void => {
  assert.throws(
    () => acceptServerResponse(res, options),
    (e: unknown) => e instanceof HandshakeError && pattern.test(e.message),
    `expected ${pattern} for ${JSON.stringify(res)}`,
  );
};

test('client: accepts valid responses and fills in the defaults', () => {
  assert.equal(acceptServerResponse([]), undefined);
  assert.equal(acceptServerResponse([{ name: 'other', params: [] }]), undefined);
  assert.deepEqual(acceptServerResponse(response()), {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
  });
  // Server may add server_no_context_takeover, client_no_context_takeover and
  // server_max_window_bits unasked; client_max_window_bits since we offered it.
  assert.deepEqual(
    acceptServerResponse(
      response(
        ['server_no_context_takeover', true],
        ['client_no_context_takeover', true],
        ['server_max_window_bits', '9'],
        ['client_max_window_bits', '8'],
      ),
    ),
    { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 8 },
  );
  // Our offered limits bind even when the server does not repeat them.
  assert.deepEqual(
    acceptServerResponse(response(['server_max_window_bits', '10']), {
      serverMaxWindowBits: 12,
      clientMaxWindowBits: 11,
      clientNoContextTakeover: true,
    }),
    { serverNoContextTakeover: false, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 11 },
  );
  // A smaller client window than offered is fine.
  assert.equal(
    acceptServerResponse(response(['client_max_window_bits', '9']), { clientMaxWindowBits: 10 })?.clientMaxWindowBits,
    9,
  );
  // A response to what our own server negotiates round-trips.
  const opts: PerMessageDeflateOptions = { serverMaxWindowBits: 10, clientMaxWindowBits: 12, serverNoContextTakeover: true };
  const r = negotiateServer([buildClientOffer(opts)], { clientMaxWindowBits: 9 });
  assert.ok(r);
  assert.deepEqual(acceptServerResponse([r.response], opts), r.params);
});

test('client: fails the connection on a response that breaks RFC 7692', () => {
  rejects([offer(), offer()], {}, /appears 2 times/);
  rejects(response(['x-foo', true]), {}, /unknown parameter x-foo/);
  rejects(response(['server_no_context_takeover', true], ['server_no_context_takeover', true]), {}, /duplicate/);
  rejects(response(['server_max_window_bits', '9'], ['server_max_window_bits', '9']), {}, /duplicate/);
  rejects(response(['server_no_context_takeover', '1']), {}, /must not have a value/);
  rejects(response(['client_no_context_takeover', 'x']), {}, /must not have a value/);
  rejects(response(['server_max_window_bits', true]), {}, /needs a value/);
  rejects(response(['client_max_window_bits', true]), {}, /needs a value/);
  for (const v of ['7', '16', 'abc', '08', '']) {
    rejects(response(['server_max_window_bits', v]), {}, /must be an integer from 8 to 15/);
    rejects(response(['client_max_window_bits', v]), {}, /must be an integer from 8 to 15/);
  }
  rejects(response(['client_max_window_bits', '10']), { clientMaxWindowBits: false }, /was not offered/);
  rejects(response(['client_max_window_bits', '12']), { clientMaxWindowBits: 11 }, /larger than the 11 offered/);
  rejects(response(['server_max_window_bits', '12']), { serverMaxWindowBits: 10 }, /larger than the 10 requested/);
  rejects(response(), { serverMaxWindowBits: 10 }, /requested but is missing/);
  rejects(response(), { serverNoContextTakeover: true }, /server_no_context_takeover was requested/);
  // The error is a handshake failure, and says so.
  try {
    acceptServerResponse(response(['x', true]));
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof HandshakeError);
    assert.match(e.message, /^Invalid permessage-deflate response from the server/);
  }
});
