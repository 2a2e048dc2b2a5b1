// One error tree: every error class duplex exports (and the internal ones it throws) is a
// `DuplexError` with a stable, non-empty `code`, and keeps its own `name`; `toError` is the one
// place that turns a caught `unknown` into an `Error`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CloseCode } from '../../src/protocol/constants.js';
import { DuplexError, HandshakeError, InvalidStateError, ProtocolError, protocolError, toError } from '../../src/protocol/errors.js';
import * as main from '../../src/index.js';
import * as protocol from '../../src/protocol/index.js';
import * as whatwg from '../../src/node/whatwg.js';
import * as hub from '../../src/hub/index.js';
import * as redis from '../../src/hub/brokers/redis.js';
import * as nats from '../../src/hub/brokers/nats.js';
import * as client from '../../src/browser/client.js';
import { BrokerError, BrokerStateError } from '../../src/hub/brokers/shared.js';
import { MissingPeerDependencyError } from '../../src/node/peer.js';
import { UsageError } from '../../src/cli/args.js';
import { ConfigError } from '../../src/cli/serve-config.js';

const entries: Record<string, Record<string, unknown>> = {
  'duplex-ws': main,
  'duplex-ws/protocol': protocol,
  'duplex-ws/whatwg': whatwg,
  'duplex-ws/hub': hub,
  'duplex-ws/hub/redis': redis,
  'duplex-ws/hub/nats': nats,
  'duplex-ws/client': client,
};

/** The exported classes of a module that make `Error`s (by their prototype chain, not by name). */
type ErrorClass = abstract new (...args: never[]) => Error;
function errorClasses(module: Record<string, unknown>): Array<[string, ErrorClass]> {
  return Object.entries(module).filter(
    (entry): entry is [string, ErrorClass] =>
      typeof entry[1] === 'function' && (entry[1] === Error || (entry[1] as { prototype: unknown }).prototype instanceof Error),
  );
}

test('every exported error class is DuplexError or a subclass of it', () => {
  let seen = 0;
  for (const [spec, module] of Object.entries(entries)) {
    for (const [name, cls] of errorClasses(module)) {
      seen += 1;
      assert.ok(cls === DuplexError || cls.prototype instanceof DuplexError, `${spec}: ${name} is not a DuplexError`);
    }
  }
  assert.ok(seen >= 10);
  assert.equal(main.DuplexError, DuplexError);
  assert.equal(hub.DuplexError, DuplexError);
  assert.equal(client.DuplexError, DuplexError);
  assert.equal(client.HubClientError, hub.HubClientError);
});

// Each error class of the tree, made as duplex makes it, with the name and code it must carry.
const instances: Array<[error: DuplexError, name: string, code: string]> = [
  [new DuplexError('ERR_SOMETHING', 'x'), 'DuplexError', 'ERR_SOMETHING'],
  [protocolError('ERR_RESERVED_BITS', 'x'), 'ProtocolError', 'ERR_RESERVED_BITS'],
  [new ProtocolError('ERR_INVALID_UTF8', CloseCode.InvalidFramePayloadData, 'x'), 'ProtocolError', 'ERR_INVALID_UTF8'],
  [new InvalidStateError('x'), 'InvalidStateError', 'ERR_INVALID_STATE'],
  [new HandshakeError('x', 403), 'HandshakeError', 'ERR_HANDSHAKE'],
  [new hub.HubError('E_FORBIDDEN', 'x'), 'HubError', 'E_FORBIDDEN'],
  [new hub.AuthError('x'), 'AuthError', 'E_UNAUTHORIZED'],
  [new hub.HubClientError('E_TIMEOUT', 'x'), 'HubClientError', 'E_TIMEOUT'],
  [new redis.RedisBrokerError('x'), 'RedisBrokerError', 'ERR_BROKER'],
  [new nats.NatsBrokerError('x', { cause: new Error('c') }), 'NatsBrokerError', 'ERR_BROKER'],
  [new BrokerError('x'), 'BrokerError', 'ERR_BROKER'],
  [new BrokerStateError('x', 'memory'), 'BrokerStateError', 'ERR_BROKER_STATE'],
  [new MissingPeerDependencyError('jose', 'jwt'), 'MissingPeerDependencyError', 'ERR_DUPLEX_MISSING_PEER'],
  [new UsageError('x'), 'UsageError', 'ERR_DUPLEX_USAGE'],
  [new ConfigError('x'), 'ConfigError', 'ERR_DUPLEX_CONFIG'],
];

for (const [error, name, code] of instances) {
  test(`${name} (${code}) is a DuplexError and an Error, with its own name and a stable code`, () => {
    assert.ok(error instanceof DuplexError);
    assert.ok(error instanceof Error);
    assert.equal(error.name, name);
    assert.equal(error.code, code);
    assert.ok(error.code.length > 0);
    assert.ok(Object.hasOwn(error, 'name') && Object.hasOwn(error, 'code'), 'own properties, to survive minification and realms');
    assert.equal(String(error).startsWith(`${name}: `), true);
  });
}

test('the values the classes carried before the tree are kept', () => {
  const frame = protocolError('ERR_MASK_REQUIRED', 'unmasked');
  assert.equal(frame.closeCode, CloseCode.ProtocolError);
  assert.equal(frame.message, 'unmasked');
  const handshake = new HandshakeError('upgrade required', 426, { 'sec-websocket-version': '13' });
  assert.equal(handshake.status, 426);
  assert.deepEqual(handshake.headers, { 'sec-websocket-version': '13' });
  assert.equal(new hub.AuthError('expired').status, 401);
  assert.equal(new hub.AuthError('expired').message, 'expired');
  assert.equal(new BrokerStateError('x', 'redis').broker, 'redis');
  const cause = new Error('ECONNREFUSED');
  assert.equal(new redis.RedisBrokerError('down', { cause }).cause, cause);
  const peer = new MissingPeerDependencyError(['redis'], 'duplex-ws/hub/redis', { cause });
  assert.deepEqual(peer.packageNames, ['redis']);
  assert.equal(peer.feature, 'duplex-ws/hub/redis');
  assert.equal(peer.cause, cause);
  assert.equal(new InvalidStateError().message, '');
});

test('toError returns an Error unchanged and wraps anything else in one', () => {
  const error = new TypeError('bad');
  assert.equal(toError(error), error);
  const duplex = new InvalidStateError('closed');
  assert.equal(toError(duplex), duplex);
  for (const [value, message] of [
    ['text', 'text'],
    [42, '42'],
    [undefined, 'undefined'],
    [null, 'null'],
    [{ toString: () => 'custom' }, 'custom'],
  ] as const) {
    const wrapped = toError(value);
    assert.ok(wrapped instanceof Error);
    assert.equal(wrapped.constructor, Error);
    assert.equal(wrapped.message, message);
  }
});
