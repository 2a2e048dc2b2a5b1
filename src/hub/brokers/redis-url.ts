/**
 * Which Redis the broker talks to — one server, a Redis Cluster, or a master watched by Redis
 * Sentinel — from the broker's options or from one URL, so `duplex serve --broker` can name any
 * of the three:
 *
 *   redis://[[user]:password@]host[:port][/db]          one server (rediss:// for TLS)
 *   redis+cluster://[[user]:password@]host:port,host:port,…   a cluster, by some of its nodes
 *   redis+sentinel://[[user]:password@]host:port,…/name      the master `name`, by its sentinels
 *
 * (`rediss+cluster://`, `rediss+sentinel://` for TLS to the data nodes). The credentials are the
 * data nodes'; sentinels that need their own are configured with the `sentinel` option.
 */

/** A Redis server's address. */
export interface RedisServerAddress {
  /** Host name or IP address. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
}

/** How to reach a Redis Cluster (the `cluster` option of `RedisBroker`). */
export interface RedisClusterOptions {
  /**
   * Some of the cluster's nodes, as `host:port` or `{ host, port }`: the broker learns the rest
   * (and which master holds which slots) from the first one that answers. Three is plenty.
   */
  readonly rootNodes: readonly (string | RedisServerAddress)[];
  /**
   * Fan publications out with sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis ≥ 7.0): each topic's
   * publications go through its own slot's master only, so fan-out grows with the masters.
   * `false`: classic PUBLISH, which a cluster copies to every node. Default: sharded when the
   * cluster runs Redis ≥ 7.0 (asked at start), classic otherwise.
   */
  readonly sharded?: boolean;
  /** ACL user of every node (default: none, the `default` user). */
  readonly username?: string;
  /** Password of every node (default: none). */
  readonly password?: string;
  /** TLS to every node (default false). */
  readonly tls?: boolean;
}

/** How to reach a master watched by Redis Sentinel (the `sentinel` option of `RedisBroker`). */
export interface RedisSentinelOptions {
  /** The master's name, as the sentinels monitor it (`sentinel monitor <name> …`). */
  readonly name: string;
  /** Some of the sentinels, as `host:port` or `{ host, port }`; the broker learns the others from them. */
  readonly sentinelRootNodes: readonly (string | RedisServerAddress)[];
  /** ACL user of the master and replicas (default: none). */
  readonly username?: string;
  /** Password of the master and replicas (default: none). */
  readonly password?: string;
  /** TLS to the master and replicas (default false). */
  readonly tls?: boolean;
  /** ACL user of the sentinels (default: none). */
  readonly sentinelUsername?: string;
  /** Password of the sentinels (default: none). */
  readonly sentinelPassword?: string;
}

/** One of the three deployments, as the broker's options or its URL named it. */
export type RedisDeploymentSpec =
  | { readonly kind: 'single'; readonly url: string }
  | { readonly kind: 'cluster'; readonly cluster: RedisClusterOptions }
  | { readonly kind: 'sentinel'; readonly sentinel: RedisSentinelOptions };

/** Parse `host:port` (or `[v6]:port`); `defaultPort` when there is no port. */
export function parseAddress(text: string | RedisServerAddress, defaultPort?: number): RedisServerAddress {
  if (typeof text !== 'string') return checkAddress(text);
  const trimmed = text.trim().replace(/^rediss?:\/\//, '').replace(/\/$/, '');
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(trimmed);
  const port = match?.[3] !== undefined ? Number(match[3]) : defaultPort;
  if (match === null || port === undefined) throw new TypeError(`redis broker: "${text}" is not host:port`);
  return checkAddress({ host: match[1] ?? match[2]!, port });
}

function checkAddress(address: RedisServerAddress): RedisServerAddress {
  if (typeof address.host !== 'string' || address.host === '' || !Number.isInteger(address.port) || address.port < 1 || address.port > 65_535) {
    throw new TypeError(`redis broker: ${JSON.stringify(address)} is not a host and a port (1-65535)`);
  }
  return { host: address.host, port: address.port };
}

/** The parts of a `redis+cluster://` or `redis+sentinel://` URL (WHATWG URL cannot hold a list of hosts). */
function parseMultiHost(url: string, defaultPort: number): { tls: boolean; username?: string; password?: string; hosts: RedisServerAddress[]; path: string } {
  const match = /^(rediss?)\+(?:cluster|sentinel):\/\/(?:([^@/]*)@)?([^/?#]+)(\/[^?#]*)?$/.exec(url);
  if (match === null) throw new TypeError(`redis broker: cannot read the URL ${redact(url)} (a query or fragment is not supported)`);
  const [, scheme, userinfo, hostList, path] = match;
  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const user = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(0, colon));
    username = user === '' ? undefined : user;
    password = colon === -1 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
  }
  const hosts = hostList!.split(',').filter((h) => h !== '').map((h) => parseAddress(h, defaultPort));
  if (hosts.length === 0) throw new TypeError(`redis broker: ${redact(url)} names no host`);
  return { tls: scheme === 'rediss', username, password, hosts, path: path ?? '' };
}

/**
 * The deployment a URL names (see the module comment).
 * @throws TypeError when the URL is none of the three forms.
 */
export function parseRedisUrl(url: string): RedisDeploymentSpec {
  if (/^rediss?:\/\//.test(url)) return { kind: 'single', url };
  const credentials = (p: { username?: string; password?: string; tls: boolean }) => ({
    ...(p.username !== undefined ? { username: p.username } : {}),
    ...(p.password !== undefined ? { password: p.password } : {}),
    ...(p.tls ? { tls: true } : {}),
  });
  if (/^rediss?\+cluster:\/\//.test(url)) {
    const parts = parseMultiHost(url, 6379);
    if (parts.path !== '' && parts.path !== '/') throw new TypeError(`redis broker: a cluster URL has no path (${redact(url)}): a cluster has one database`);
    return { kind: 'cluster', cluster: { rootNodes: parts.hosts, ...credentials(parts) } };
  }
  if (/^rediss?\+sentinel:\/\//.test(url)) {
    const parts = parseMultiHost(url, 26379);
    const name = decodeURIComponent(parts.path.replace(/^\//, ''));
    if (name === '') throw new TypeError(`redis broker: a sentinel URL ends with the master's name, e.g. redis+sentinel://host:26379/mymaster (${redact(url)})`);
    return { kind: 'sentinel', sentinel: { name, sentinelRootNodes: parts.hosts, ...credentials(parts) } };
  }
  throw new TypeError(`redis broker: the URL must start with redis://, rediss://, redis+cluster:// or redis+sentinel://, not ${redact(url)}`);
}

/** The URL without its password, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}

/** The deployment of the broker's options: `cluster`, `sentinel` or `url` (at most one of them). */
export function deploymentOf(options: { url?: string; cluster?: RedisClusterOptions; sentinel?: RedisSentinelOptions }): RedisDeploymentSpec {
  const given = [options.url !== undefined, options.cluster !== undefined, options.sentinel !== undefined].filter(Boolean).length;
  if (given > 1) throw new TypeError('redis broker: give one of url, cluster and sentinel');
  if (options.cluster !== undefined) {
    if (options.cluster.rootNodes.length === 0) throw new TypeError('redis broker: cluster.rootNodes is empty');
    return { kind: 'cluster', cluster: { ...options.cluster, rootNodes: options.cluster.rootNodes.map((n) => parseAddress(n)) } };
  }
  if (options.sentinel !== undefined) {
    if (options.sentinel.sentinelRootNodes.length === 0) throw new TypeError('redis broker: sentinel.sentinelRootNodes is empty');
    if (!options.sentinel.name) throw new TypeError('redis broker: sentinel.name is the master name the sentinels monitor');
    return { kind: 'sentinel', sentinel: { ...options.sentinel, sentinelRootNodes: options.sentinel.sentinelRootNodes.map((n) => parseAddress(n, 26379)) } };
  }
  return parseRedisUrl(options.url ?? 'redis://127.0.0.1:6379');
}
