/**
 * WebSocket URIs (RFC 6455 §3): the one place that reads a `ws:`/`wss:` URL for opening a
 * connection — the Node client, the WHATWG class, the browser hub client and `duplex bench` —
 * so they agree on schemes, default ports, the Host header, the resource name and fragments.
 * Node-free (WHATWG `URL` only): the browser client loads it as it is.
 * @internal
 */

/** Where to open a connection, read from a `ws:`/`wss:` URL. */
export interface WebSocketTarget {
  /** The URL as parsed (with `http:`/`https:` mapped to `ws:`/`wss:` when that was asked for). */
  readonly url: URL;
  /** `wss:`: TLS. */
  readonly secure: boolean;
  /** The host to connect to; an IPv6 address without its brackets. */
  readonly hostname: string;
  /** The port: the URL's, else 80 for `ws:` and 443 for `wss:` (RFC 6455 §3). */
  readonly port: number;
  /** The `Host` header: the host, with `:port` when the URL names one (RFC 6455 §4.1). */
  readonly host: string;
  /** The resource name of the request line: the path (`/` when empty) and the query (RFC 6455 §3). */
  readonly path: string;
}

/** Why a URL cannot be opened, for each caller to report in its own error type. */
export type WebSocketUrlProblem =
  | { readonly problem: 'invalid' }
  | { readonly problem: 'scheme'; readonly scheme: string }
  | { readonly problem: 'fragment' };

/** How to read a URL. */
export interface WebSocketUrlOptions {
  /** Resolve a relative URL against this one (a page's address, in a browser). */
  readonly base?: string;
  /** Map `http:` to `ws:` and `https:` to `wss:`, as the WHATWG WebSocket constructor does. */
  readonly mapHttp?: boolean;
  /**
   * Refuse a URL with a fragment: RFC 6455 §3, "Fragment identifiers are meaningless in the
   * context of WebSocket URIs and MUST NOT be used on these URIs" (the WHATWG constructor throws).
   * Off by default: the other clients drop it, as `URL` leaves it out of the resource name.
   */
  readonly refuseFragment?: boolean;
}

/** Read `input` as a WebSocket URI; a problem instead of a target when it cannot be opened. */
export function parseWebSocketUrl(input: string | URL, options: WebSocketUrlOptions = {}): WebSocketTarget | WebSocketUrlProblem {
  let url: URL;
  try {
    url = new URL(input, options.base);
  } catch {
    return { problem: 'invalid' };
  }
  if (options.mapHttp) {
    if (url.protocol === 'http:') url.protocol = 'ws:';
    else if (url.protocol === 'https:') url.protocol = 'wss:';
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return { problem: 'scheme', scheme: url.protocol };
  if (options.refuseFragment && (url.hash !== '' || url.href.endsWith('#'))) return { problem: 'fragment' };
  const secure = url.protocol === 'wss:';
  return {
    url,
    secure,
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : secure ? 443 : 80,
    host: url.host,
    path: (url.pathname || '/') + url.search,
  };
}
