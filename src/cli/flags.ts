/**
 * Every flag of every command, defined once: main.ts builds the parser's options from these,
 * usage.ts the option lines of the usage texts, the commands read their defaults and ranges,
 * and serve-config.ts maps serve's flags to config keys. Data only: `duplex <command> --help`
 * reads it without loading the command. The order here is the order of the usage text.
 */
import { DEFAULT_MAX_MESSAGE_SIZE } from '../protocol/constants.js';
import type { Flags } from './args.js';
import { HEADER_SIZE } from './bench/payload.js';

/** `-h`, `--help`, which every command takes (main.ts answers it before loading the command). */
export const HELP_FLAGS = {
  help: { short: 'h', type: 'boolean', description: 'this text' },
} as const satisfies Flags;

export const CONNECT_FLAGS = {
  connect: { short: 'c', type: 'string', value: 'URL', description: 'the URL, as a flag (wscat)' },
  execute: {
    short: 'x',
    type: 'string',
    multiple: true,
    value: 'MSG',
    description: 'send MSG once connected (repeatable, in order; stdin is not read),\nprint the answers, close after --wait seconds',
  },
  wait: {
    short: 'w',
    type: 'string',
    value: 'S',
    default: 2,
    range: { min: 0, max: 86_400, integer: false },
    description: 'with -x: seconds to wait for answers before closing (default {default});\notherwise: longest wait for the closing handshake (default {default})',
  },
  binary: {
    short: 'b',
    type: 'boolean',
    description: 'send lines (and -x messages) as binary messages, and print the\nbinary messages received as raw bytes (without -b: as hex)',
  },
  'show-ping-pong': { short: 'P', type: 'boolean', description: 'print the pings and pongs received (on stderr)' },
  header: { short: 'H', type: 'string', multiple: true, value: '"N: V"', description: 'add a request header (repeatable)' },
  auth: { type: 'string', value: 'USER:PASS', description: 'add "Authorization: Basic base64(USER:PASS)"' },
  origin: { short: 'o', type: 'string', value: 'ORIGIN', description: 'send this Origin header' },
  subprotocol: { short: 's', type: 'string', multiple: true, value: 'P', description: 'offer a subprotocol (repeatable, preferred first)' },
  'no-deflate': { type: 'boolean', description: 'do not offer permessage-deflate' },
  json: { short: 'j', type: 'boolean', description: 'pretty-print the JSON text messages received' },
  echo: { type: 'boolean', description: 'send every message received back until the server closes\n(stdin is not read; nothing is printed on stdout)' },
  'no-check': { short: 'n', type: 'boolean', description: 'wss://: accept any certificate (self-signed, expired, wrong name)' },
  insecure: { short: 'k', type: 'boolean', description: 'the same as -n' },
  ca: { type: 'string', value: 'FILE', description: 'wss://: trust the CA certificate(s) in this PEM file' },
  cert: { type: 'string', value: 'FILE', description: 'wss://: client certificate (PEM), with --key' },
  key: { type: 'string', value: 'FILE', description: "wss://: the client certificate's private key (PEM)" },
  passphrase: { type: 'string', value: 'P', description: 'the passphrase of --key' },
} as const satisfies Flags;

export const ECHO_FLAGS = {
  port: {
    short: 'p',
    type: 'string',
    value: 'P',
    default: 8080,
    range: { min: 0, max: 65_535, integer: true },
    description: 'port to listen on (default {default}; 0 picks a free one)',
  },
  host: { type: 'string', value: 'H', default: '127.0.0.1', description: 'address to listen on (default {default}; 0.0.0.0 or :: for all)' },
  'max-message-size': {
    type: 'string',
    value: 'BYTES',
    default: DEFAULT_MAX_MESSAGE_SIZE,
    range: { min: 1, max: 2 ** 31, integer: true },
    description: 'larger messages are refused with close code 1009\n(default {default}, 1 MiB)',
  },
} as const satisfies Flags;

/**
 * serve's flags set config keys (`config`); a flag wins over the key's environment variable and
 * the config file (serve-config.ts). `{default}` is the key's default (`defaultConfig()`).
 */
export const SERVE_FLAGS = {
  port: { short: 'p', type: 'string', value: 'P', config: 'port', description: 'port (default {default}; 0 picks a free one)' },
  host: { type: 'string', value: 'H', config: 'host', description: 'address (default {default})' },
  workers: {
    type: 'string',
    value: 'N',
    config: 'workers',
    description: 'N worker processes on the one port, or auto (one per core);\none hub across them (default {default}: this process alone)',
  },
  // Not a config key: where the keys come from (serve-config.ts reads it, or DUPLEX_CONFIG).
  config: { short: 'c', type: 'string', value: 'FILE', description: 'JSON config file (or DUPLEX_CONFIG)' },
  'json-logs': { type: 'boolean', config: 'jsonLogs', description: 'JSON log lines (pino) on stderr instead of readable ones' },
  'log-level': { type: 'string', value: 'L', config: 'logLevel', description: 'debug, info (default), warn or error' },
  broker: { type: 'string', value: 'URL', config: 'broker', description: 'memory (default), redis://…, rediss://…, redis+cluster://h:p,h:p,\nredis+sentinel://h:p,…/master or nats://h:p[,h:p]' },
  'broker-replicas': { type: 'string', value: 'N', config: 'brokerReplicas', description: 'NATS: JetStream replicas of the stream and buckets (3 on a 3-server cluster)' },
  anonymous: { type: 'boolean', config: 'auth.anonymous', description: 'admit connections without a token (unsafe for production)' },
  'auth-public-key': { type: 'string', value: 'FILE', config: 'auth.publicKey', description: 'PEM public key for RS256/ES256 JWTs (HS256: DUPLEX_AUTH_SECRET)' },
  'tls-cert': { type: 'string', value: 'FILE', config: 'tls.cert', description: 'PEM certificate: https:// and wss://, with --tls-key' },
  'tls-key': { type: 'string', value: 'FILE', config: 'tls.key', description: 'its PEM private key' },
  'allowed-origin': { type: 'string', multiple: true, value: 'O', config: 'allowedOrigins', description: 'accept WebSockets from this Origin only (repeatable)' },
  'history-size': { type: 'string', value: 'N', config: 'history.size', description: 'publications kept per topic (default {default})' },
  'history-ttl': { type: 'string', value: 'MS', config: 'history.ttl', description: 'how long they are kept (default {default})' },
  'max-message-size': { type: 'string', value: 'B', config: 'limits.maxMessageSize', description: 'larger WebSocket messages: close 1009 (default {default})' },
  'max-connections': { type: 'string', value: 'N', config: 'limits.maxConnections', description: 'more: 503 with Retry-After (default: no limit)' },
  'api-key': { type: 'string', multiple: true, value: 'KEY', config: 'api.keys', description: 'turn on the server API under /api/ with this key (repeatable;\nbetter: DUPLEX_API_KEYS, not seen in ps)' },
  'hook-connect': { type: 'string', value: 'URL', config: 'hooks.connect.url', description: 'ask this backend URL who each connection is' },
  'hook-subscribe': { type: 'string', value: 'URL', config: 'hooks.subscribe.url', description: 'ask this backend URL before each client subscribe' },
  'hook-publish': { type: 'string', value: 'URL', config: 'hooks.publish.url', description: 'ask this backend URL before each client publish' },
  'hook-rpc': { type: 'string', value: 'URL', config: 'hooks.rpc.url', description: 'forward client RPCs to this backend URL' },
} as const satisfies Flags;

export const BENCH_FLAGS = {
  mode: {
    short: 'm',
    type: 'string',
    value: 'M',
    default: 'echo',
    description: 'echo (default): round trips; broadcast: connection 0 sends,\nevery connection counts deliveries',
  },
  connections: {
    short: 'c',
    type: 'string',
    value: 'N',
    default: 10,
    range: { min: 1, max: 20_000, integer: true },
    description: 'connections (default {default}, at most {max})',
  },
  size: {
    short: 's',
    type: 'string',
    value: 'BYTES',
    default: 64,
    // Every message carries its send time and sequence number (bench/payload.ts).
    range: { min: HEADER_SIZE, max: 16 * 1024 * 1024, integer: true },
    description: 'message size (default {default}, from {min} to 16 MiB)',
  },
  window: {
    short: 'w',
    type: 'string',
    value: 'N',
    default: 1,
    range: { min: 1, max: 10_000, integer: true },
    description: 'messages in flight per connection (default {default})',
  },
  duration: { short: 'd', type: 'string', value: 'S', default: 10, range: { min: 0.1, max: 3600, integer: false }, description: 'seconds measured (default {default})' },
  warmup: { type: 'string', value: 'S', default: 1, range: { min: 0, max: 600, integer: false }, description: 'seconds before measuring (default {default})' },
  text: { type: 'boolean', description: 'text messages' },
  binary: { type: 'boolean', description: 'binary messages (the default)' },
  json: { short: 'j', type: 'boolean', description: 'the report as one JSON line on stdout' },
} as const satisfies Flags;
