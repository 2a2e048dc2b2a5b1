/**
 * Configuration of `duplex serve`: defaults, then a JSON file, then `DUPLEX_*` environment
 * variables, then flags (each layer wins over the ones before). Everything is validated before
 * anything starts, and a bad value is a `ConfigError` that says which key, where it came from,
 * and what was expected (the CLI exits with 2).
 */
import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { DEFAULTS } from '../protocol/defaults.js';
import { SERVE_FLAGS } from './flags.js';
import { DuplexError } from '../protocol/errors.js';

/** A configuration value that cannot be used. The CLI prints it and exits with 2. */
export class ConfigError extends DuplexError {
  override readonly name = 'ConfigError';
  declare readonly code: 'ERR_DUPLEX_CONFIG';
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_DUPLEX_CONFIG', message, options);
  }
}

/** The validated configuration of a `duplex serve` process. */
export interface ServeConfig {
  port: number;
  host: string;
  /**
   * Worker processes serving the one port (`auto`: one per core). 1: this process serves alone,
   * with no primary; more: a primary and that many workers, one hub across them (docs/workers.md).
   */
  workers: number;
  /** Certificate and key file paths: serve `https://` and `wss://`. */
  tls: { cert: string; key: string } | undefined;
  /** Origins allowed to open a WebSocket (undefined: no check). */
  allowedOrigins: string[] | undefined;
  auth: {
    /** HS256 secret (at least 32 characters). */
    secret: string | undefined;
    /** Path of a PEM public key (RS256/ES256). */
    publicKey: string | undefined;
    /** Admit connections without a token. Unsafe for production. */
    anonymous: boolean;
    issuer: string | undefined;
    audience: string | undefined;
  };
  limits: {
    /** Largest WebSocket message, bytes. */
    maxMessageSize: number;
    /** Largest hub request, bytes. */
    maxHubMessageSize: number;
    maxConnections: number | undefined;
    maxSubscriptions: number;
    maxBufferedAmount: number;
    slowConsumer: 'close' | 'drop';
    /** Close connections silent for this long, ms (0: never). */
    idleTimeout: number;
  };
  history: {
    /** Publications kept per topic. */
    size: number;
    /** How long they are kept, ms. */
    ttl: number;
    /** Topics starting with one of these keep no history (typing indicators and the like). */
    ephemeralPrefixes: string[];
  };
  /** The server API under /api/ (docs/server-api.md). */
  api: {
    /** Keys accepted in `Authorization: apikey <key>` (none: the API is off). */
    keys: string[];
    /** Largest request body, bytes. */
    maxBodySize: number;
  };
  /** The backend hooks (docs/backend-hooks.md): one per kind, or undefined. */
  hooks: Record<HookKind, HookSettings | undefined>;
  /** 'memory', or a redis://, rediss:// or nats:// URL. */
  broker: string;
  /** JetStream replicas of a NATS broker's stream and buckets (1–5; 3 on a 3-server cluster; undefined: the broker's default, 1). */
  brokerReplicas: number | undefined;
  /** What the broker's keys (Redis) or subjects, stream and buckets (NATS) start with: separates hubs sharing one server (undefined: the broker's default). */
  brokerPrefix: string | undefined;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  jsonLogs: boolean;
  /** Run the simulated ticker feed of the dashboard demo. */
  demoFeed: boolean;
  /** Serve the demo apps and the browser client. */
  apps: boolean;
}

/** The kinds of backend hook. */
export type HookKind = 'connect' | 'subscribe' | 'publish' | 'rpc';
/** The backend hook kinds, in their config order. */
export const HOOK_KINDS: readonly HookKind[] = ['connect', 'subscribe', 'publish', 'rpc'];

/** One backend hook's settings (unset ones take the hook's defaults). */
export interface HookSettings {
  /** Where the hook POSTs (http:// or https://). */
  url: string;
  /** ms before the hook gives up (E_UNAVAILABLE). */
  timeout: number | undefined;
  /** Handshake headers forwarded to the backend. */
  headers: string[] | undefined;
  /** Retries of a failed call (connect and subscribe only). */
  retries: number | undefined;
}

/**
 * The defaults: a demo server on loopback, anonymous, in-memory broker. Read from `DEFAULTS`:
 * `DEFAULTS.serve` where serve differs from the library, the library's own entries elsewhere.
 */
export function defaultConfig(): ServeConfig {
  return {
    port: DEFAULTS.serve.port,
    host: DEFAULTS.serve.host,
    // One process, as before workers existed: a primary is only worth it with several workers.
    workers: 1,
    tls: undefined,
    allowedOrigins: undefined,
    auth: { secret: undefined, publicKey: undefined, anonymous: false, issuer: undefined, audience: undefined },
    limits: {
      maxMessageSize: DEFAULTS.serve.maxMessageSize,
      maxHubMessageSize: DEFAULTS.hub.maxMessageSize,
      maxConnections: undefined,
      maxSubscriptions: DEFAULTS.hub.maxSubscriptions,
      maxBufferedAmount: DEFAULTS.connection.maxBufferedAmount,
      slowConsumer: 'close',
      idleTimeout: DEFAULTS.connection.idleTimeout,
    },
    history: { size: DEFAULTS.hub.history.size, ttl: DEFAULTS.hub.history.ttl, ephemeralPrefixes: [...DEFAULTS.serve.ephemeralPrefixes] },
    api: { keys: [], maxBodySize: DEFAULTS.hub.serverApi.maxBodySize },
    hooks: { connect: undefined, subscribe: undefined, publish: undefined, rpc: undefined },
    broker: 'memory',
    brokerPrefix: undefined,
    brokerReplicas: undefined,
    logLevel: 'info',
    jsonLogs: false,
    demoFeed: true,
    apps: true,
  };
}

/** Where a value came from, for error messages. */
type Source = string;

type Kind = 'port' | 'int' | 'nonneg' | 'string' | 'bool' | 'strings' | 'level' | 'policy' | 'url' | 'workers';
interface Field {
  readonly path: readonly string[];
  readonly kind: Kind;
  readonly env: string;
}

/**
 * Every configuration key: its place in the file and its environment variable. The flags that
 * set keys are defined with the other flags (SERVE_FLAGS in flags.ts, each naming its key).
 */
const FIELDS: readonly Field[] = [
  { path: ['port'], kind: 'port', env: 'DUPLEX_PORT' },
  { path: ['host'], kind: 'string', env: 'DUPLEX_HOST' },
  { path: ['workers'], kind: 'workers', env: 'DUPLEX_WORKERS' },
  { path: ['tls', 'cert'], kind: 'string', env: 'DUPLEX_TLS_CERT' },
  { path: ['tls', 'key'], kind: 'string', env: 'DUPLEX_TLS_KEY' },
  { path: ['allowedOrigins'], kind: 'strings', env: 'DUPLEX_ALLOWED_ORIGINS' },
  { path: ['auth', 'secret'], kind: 'string', env: 'DUPLEX_AUTH_SECRET' },
  { path: ['auth', 'publicKey'], kind: 'string', env: 'DUPLEX_AUTH_PUBLIC_KEY' },
  { path: ['auth', 'anonymous'], kind: 'bool', env: 'DUPLEX_AUTH_ANONYMOUS' },
  { path: ['auth', 'issuer'], kind: 'string', env: 'DUPLEX_AUTH_ISSUER' },
  { path: ['auth', 'audience'], kind: 'string', env: 'DUPLEX_AUTH_AUDIENCE' },
  { path: ['limits', 'maxMessageSize'], kind: 'int', env: 'DUPLEX_MAX_MESSAGE_SIZE' },
  { path: ['limits', 'maxHubMessageSize'], kind: 'int', env: 'DUPLEX_MAX_HUB_MESSAGE_SIZE' },
  { path: ['limits', 'maxConnections'], kind: 'int', env: 'DUPLEX_MAX_CONNECTIONS' },
  { path: ['limits', 'maxSubscriptions'], kind: 'int', env: 'DUPLEX_MAX_SUBSCRIPTIONS' },
  { path: ['limits', 'maxBufferedAmount'], kind: 'int', env: 'DUPLEX_MAX_BUFFERED_AMOUNT' },
  { path: ['limits', 'slowConsumer'], kind: 'policy', env: 'DUPLEX_SLOW_CONSUMER' },
  { path: ['limits', 'idleTimeout'], kind: 'nonneg', env: 'DUPLEX_IDLE_TIMEOUT' },
  { path: ['history', 'size'], kind: 'nonneg', env: 'DUPLEX_HISTORY_SIZE' },
  { path: ['history', 'ttl'], kind: 'nonneg', env: 'DUPLEX_HISTORY_TTL' },
  { path: ['history', 'ephemeralPrefixes'], kind: 'strings', env: 'DUPLEX_HISTORY_EPHEMERAL_PREFIXES' },
  { path: ['api', 'keys'], kind: 'strings', env: 'DUPLEX_API_KEYS' },
  { path: ['api', 'maxBodySize'], kind: 'int', env: 'DUPLEX_API_MAX_BODY_SIZE' },
  ...HOOK_KINDS.flatMap((kind): Field[] => {
    const env = `DUPLEX_HOOK_${kind.toUpperCase()}`;
    return [
      { path: ['hooks', kind, 'url'], kind: 'url', env: `${env}_URL` },
      { path: ['hooks', kind, 'timeout'], kind: 'int', env: `${env}_TIMEOUT` },
      { path: ['hooks', kind, 'headers'], kind: 'strings', env: `${env}_HEADERS` },
      { path: ['hooks', kind, 'retries'], kind: 'nonneg', env: `${env}_RETRIES` },
    ];
  }),
  { path: ['broker'], kind: 'string', env: 'DUPLEX_BROKER' },
  { path: ['brokerPrefix'], kind: 'string', env: 'DUPLEX_BROKER_PREFIX' },
  { path: ['brokerReplicas'], kind: 'int', env: 'DUPLEX_BROKER_REPLICAS' },
  { path: ['logLevel'], kind: 'level', env: 'DUPLEX_LOG_LEVEL' },
  { path: ['jsonLogs'], kind: 'bool', env: 'DUPLEX_JSON_LOGS' },
  { path: ['demoFeed'], kind: 'bool', env: 'DUPLEX_DEMO_FEED' },
  { path: ['apps'], kind: 'bool', env: 'DUPLEX_APPS' },
];

/** The environment variables `duplex serve` reads (for the docs and the usage text). */
export const ENV_VARIABLES = ['DUPLEX_CONFIG', ...FIELDS.map((f) => f.env)];

function keyName(path: readonly string[]): string {
  return path.join('.');
}

/** The flag that sets each config key, by key (`limits.maxMessageSize` → `max-message-size`). */
const FLAG_OF_KEY: ReadonlyMap<string, string> = new Map(
  Object.entries(SERVE_FLAGS).flatMap(([name, flag]): Array<[string, string]> => ('config' in flag ? [[flag.config, name]] : [])),
);
// A flag naming a key that does not exist would be accepted and ignored: fail on load instead.
for (const [key, flag] of FLAG_OF_KEY) {
  if (!FIELDS.some((field) => keyName(field.path) === key)) throw new Error(`serve flag --${flag} names the unknown config key ${key}`);
}

/** The default of a config key (`history.size` → 100), e.g. for the usage text. */
export function configDefault(key: string): unknown {
  let value: unknown = defaultConfig();
  for (const part of key.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return value;
}

/** Convert one raw value (JSON from the file; a string from env or flags) to its kind, or throw. */
function convert(field: Field, raw: unknown, source: Source): unknown {
  const where = `${keyName(field.path)} (from ${source})`;
  const fromText = typeof raw === 'string' && !source.startsWith('config file');
  switch (field.kind) {
    case 'port':
    case 'int':
    case 'nonneg': {
      const n = fromText && (raw as string).trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw new ConfigError(`${where} must be an integer, got ${JSON.stringify(raw)}`);
      if (field.kind === 'port' && (n < 0 || n > 65535)) throw new ConfigError(`${where} must be a port number from 0 to 65535, got ${n}`);
      if (field.kind === 'nonneg' && n < 0) throw new ConfigError(`${where} must not be negative, got ${n}`);
      if (field.kind === 'int' && n < 1) throw new ConfigError(`${where} must be a positive integer, got ${n}`);
      return n;
    }
    case 'workers': {
      if (raw === 'auto') return availableParallelism();
      const n = fromText && (raw as string).trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new ConfigError(`${where} must be a positive integer or "auto" (one per core), got ${JSON.stringify(raw)}`);
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (fromText && /^(1|true|yes|on)$/i.test(raw as string)) return true;
      if (fromText && /^(0|false|no|off)$/i.test(raw as string)) return false;
      throw new ConfigError(`${where} must be true or false, got ${JSON.stringify(raw)}`);
    }
    case 'string':
      if (typeof raw !== 'string' || raw === '') throw new ConfigError(`${where} must be a non-empty string, got ${JSON.stringify(raw)}`);
      return raw;
    case 'url': {
      let url: URL | undefined;
      try {
        url = typeof raw === 'string' ? new URL(raw) : undefined;
      } catch {
        url = undefined;
      }
      if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new ConfigError(`${where} must be an http:// or https:// URL, got ${JSON.stringify(raw)}`);
      return raw;
    }
    case 'strings': {
      // From the environment or flags: comma-separated.
      const list: unknown = fromText ? (raw as string).split(',') : raw;
      if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) throw new ConfigError(`${where} must be a list of strings, got ${JSON.stringify(raw)}`);
      return list.map((s: string) => s.trim()).filter((s) => s !== '');
    }
    case 'level':
      if (raw !== 'debug' && raw !== 'info' && raw !== 'warn' && raw !== 'error') throw new ConfigError(`${where} must be one of debug, info, warn, error, got ${JSON.stringify(raw)}`);
      return raw;
    case 'policy':
      if (raw !== 'close' && raw !== 'drop') throw new ConfigError(`${where} must be "close" or "drop", got ${JSON.stringify(raw)}`);
      return raw;
  }
}

function assign(config: ServeConfig, path: readonly string[], value: unknown, set?: Set<string>): void {
  set?.add(keyName(path));
  let target = config as unknown as Record<string, unknown>;
  for (const part of path.slice(0, -1)) {
    if (target[part] === undefined) target[part] = {};
    target = target[part] as Record<string, unknown>;
  }
  target[path[path.length - 1]!] = value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Read and check the JSON config file: unknown keys and wrong types are errors. */
function applyFile(config: ServeConfig, file: string, set: Set<string>): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the config file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`the config file ${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(json)) throw new ConfigError(`the config file ${file} must hold a JSON object`);
  const source = `config file ${file}`;
  const known = new Map(FIELDS.map((f) => [keyName(f.path), f]));
  /** The keys one level below `prefix` (sections: tls, auth, hooks, hooks.connect…). */
  const childrenOf = (prefix: readonly string[]): string[] => [
    ...new Set(FIELDS.filter((f) => f.path.length > prefix.length && prefix.every((p, i) => f.path[i] === p)).map((f) => f.path[prefix.length]!)),
  ];
  const walk = (object: Record<string, unknown>, prefix: readonly string[]): void => {
    for (const [key, value] of Object.entries(object)) {
      if (prefix.length === 0 && (key === '$schema' || key === '//')) continue;
      const path = [...prefix, key];
      const field = known.get(keyName(path));
      if (field) {
        if (value !== null) assign(config, field.path, convert(field, value, source), set);
        continue;
      }
      const children = childrenOf(path);
      if (children.length === 0) {
        const where = prefix.length === 0 ? '' : ` ${keyName(prefix)}`;
        throw new ConfigError(`unknown key "${keyName(path)}" in ${source} (known${where} keys: ${childrenOf(prefix).join(', ')})`);
      }
      // A section: an object of its keys, or null for "none".
      if (value === null) continue;
      if (!isObject(value)) throw new ConfigError(`${keyName(path)} (from ${source}) must be an object`);
      walk(value, path);
    }
  };
  walk(json, []);
}

/** Flags, as parsed by `node:util` parseArgs. */
export type ServeFlags = Record<string, string | boolean | string[] | boolean[] | undefined>;

/**
 * Build the configuration from the defaults, the config file (`--config`, else `DUPLEX_CONFIG`),
 * the environment and the flags, and validate it.
 * @throws ConfigError for anything that cannot be used.
 */
export function loadConfig(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const config = defaultConfig();
  const set = new Set<string>();
  const file = typeof flags.config === 'string' ? flags.config : env.DUPLEX_CONFIG;
  if (file !== undefined && file !== '') applyFile(config, resolve(file), set);
  for (const field of FIELDS) {
    const raw = env[field.env];
    if (raw === undefined || raw === '') continue;
    assign(config, field.path, convert(field, raw, `environment variable ${field.env}`), set);
  }
  for (const field of FIELDS) {
    const flag = FLAG_OF_KEY.get(keyName(field.path));
    if (flag === undefined) continue;
    const raw = flags[flag];
    if (raw === undefined) continue;
    const value = Array.isArray(raw) ? raw.join(',') : raw;
    assign(config, field.path, convert(field, typeof value === 'boolean' ? value : String(value), `flag --${flag}`), set);
  }
  validate(config, set);
  return config;
}

function readable(path: string, what: string): void {
  try {
    readFileSync(path);
  } catch (error) {
    throw new ConfigError(`${what} ${path} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** Checks that involve more than one key, or the file system. */
function validate(config: ServeConfig, set: ReadonlySet<string>): void {
  const tls = config.tls as Partial<ServeConfig['tls'] & object> | undefined;
  if (tls !== undefined) {
    if (tls.cert === undefined && tls.key === undefined) {
      config.tls = undefined;
    } else {
      if (tls.cert === undefined) throw new ConfigError('tls.key is set but tls.cert is not: give both (PEM files)');
      if (tls.key === undefined) throw new ConfigError('tls.cert is set but tls.key is not: give both (PEM files)');
      readable(tls.cert, 'tls.cert: the certificate file');
      readable(tls.key, 'tls.key: the key file');
    }
  }
  const auth = config.auth;
  if (auth.secret !== undefined && auth.publicKey !== undefined) throw new ConfigError('auth: give either secret (HS256) or publicKey (RS256/ES256), not both');
  if (auth.secret !== undefined && auth.secret.length < 32) throw new ConfigError('auth.secret must be at least 32 characters long (use e.g. `openssl rand -hex 32`)');
  if (auth.publicKey !== undefined) {
    readable(auth.publicKey, 'auth.publicKey: the public key file');
    try {
      createPublicKey(readFileSync(auth.publicKey, 'utf8'));
    } catch (error) {
      throw new ConfigError(`auth.publicKey: ${auth.publicKey} is not a PEM public key: ${(error as Error).message}`);
    }
  }
  if (config.hooks.connect !== undefined && auth.anonymous && set.has('auth.anonymous')) {
    throw new ConfigError('auth.anonymous and hooks.connect: the connect hook decides who each connection is; leave anonymous unset');
  }
  // With no way to verify tokens, the server is the anonymous demo server unless told otherwise.
  if (auth.secret === undefined && auth.publicKey === undefined && config.hooks.connect === undefined) {
    if (!auth.anonymous && set.has('auth.anonymous')) {
      throw new ConfigError('auth: anonymous is false but neither auth.secret nor auth.publicKey is set: nobody could connect');
    }
    auth.anonymous = true;
  }
  if (!/^(memory|(redis|rediss|redis\+cluster|rediss\+cluster|redis\+sentinel|rediss\+sentinel|nats):\/\/.+)$/.test(config.broker)) {
    throw new ConfigError(
      `broker must be "memory", "redis://host:port", "rediss://…", "redis+cluster://host:port,host:port", "redis+sentinel://host:port,…/master" or "nats://host:port[,host:port]", got ${JSON.stringify(config.broker)}`,
    );
  }
  if (config.broker !== 'memory') {
    // Clusters are lists (nats://a:4222,b:4222, redis+cluster://a:7000,b:7001): each server is checked, under the list's scheme.
    const scheme = config.broker.slice(0, config.broker.indexOf('://') + 3);
    for (const part of config.broker.slice(scheme.length).split(',')) {
      try {
        new URL(scheme + part.replace(/^[a-z+]+:\/\//, ''));
      } catch {
        throw new ConfigError(`broker ${JSON.stringify(config.broker)}: ${JSON.stringify(part)} is not a server address (host:port)`);
      }
    }
  }
  if (config.brokerReplicas !== undefined && !config.broker.startsWith('nats://')) {
    throw new ConfigError('brokerReplicas is for a NATS broker (JetStream replicas); Redis replication is set up in Redis');
  }
  if (config.brokerReplicas !== undefined && config.brokerReplicas > 5) throw new ConfigError(`brokerReplicas must be from 1 to 5, got ${config.brokerReplicas}`);
  if (config.brokerPrefix !== undefined && !/^[A-Za-z0-9_-]+$/.test(config.brokerPrefix)) {
    throw new ConfigError(`brokerPrefix must be letters, digits, "_" and "-" only (a NATS subject token), got ${JSON.stringify(config.brokerPrefix)}`);
  }
  if (config.allowedOrigins !== undefined) {
    for (const origin of config.allowedOrigins) {
      let url: URL;
      try {
        url = new URL(origin);
      } catch {
        throw new ConfigError(`allowedOrigins: ${JSON.stringify(origin)} is not an origin (like https://app.example.com)`);
      }
      if (url.origin !== origin.replace(/\/$/, '')) throw new ConfigError(`allowedOrigins: ${JSON.stringify(origin)} is not an origin: scheme, host and port only (${url.origin})`);
    }
  }
  if (config.limits.maxMessageSize > 2 ** 31) throw new ConfigError('limits.maxMessageSize must be at most 2 GiB');
  for (const kind of HOOK_KINDS) {
    const hook = config.hooks[kind] as Partial<HookSettings> | undefined;
    if (hook === undefined) continue;
    if (hook.url === undefined) throw new ConfigError(`hooks.${kind}: url is required (the backend endpoint the hook POSTs to)`);
    config.hooks[kind] = { url: hook.url, timeout: hook.timeout, headers: hook.headers, retries: hook.retries };
    if (hook.retries !== undefined && (kind === 'publish' || kind === 'rpc')) {
      throw new ConfigError(`hooks.${kind}.retries: a ${kind} hook is never retried (a retry could act twice); retries are for connect and subscribe`);
    }
  }
  if (config.api.keys.some((key) => key.length < 16)) throw new ConfigError('api.keys: each key must be at least 16 characters long (use e.g. `openssl rand -hex 32`)');
}
