/**
 * The upgrade request as the server reads it: its URL, path, header bytes and cookies while
 * the handshake runs, and what a connection keeps of it afterwards (`requestInfo(ws)`).
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { WebSocket } from '../websocket.js';
import { decodePercent, type RouteParams } from './router.js';

/** What a connection keeps of its upgrade request, from `requestInfo(ws)`. */
export interface RequestInfo<Pattern extends string = string> {
  /** The request URL. */
  readonly url: URL;
  /** The route pattern that matched. */
  readonly route: string;
  /** Path parameters, percent-decoded. */
  readonly params: RouteParams<Pattern>;
  /** The query string, parsed. */
  readonly query: URLSearchParams;
  /** The `Origin` header. */
  readonly origin: string | undefined;
}

/**
 * The request info kept per connection: strings only, the URL parsed again on first use. An
 * idle connection should not hold a URL, its context and a URLSearchParams it will most likely
 * never read.
 */
class StoredRequest implements RequestInfo {
  private parsed: URL | undefined;
  constructor(
    private readonly href: string,
    readonly route: string,
    readonly params: Record<string, string>,
    readonly origin: string | undefined,
  ) {}
  get url(): URL {
    return (this.parsed ??= new URL(this.href));
  }
  get query(): URLSearchParams {
    return this.url.searchParams;
  }
}

const requestInfos = new WeakMap<WebSocket<unknown>, RequestInfo>();

/**
 * What a server connection keeps of its upgrade request: URL, route, path params, query,
 * origin. `undefined` for a connection that this module did not accept (a client).
 */
export function requestInfo<Pattern extends string = string>(ws: WebSocket<unknown>): RequestInfo<Pattern> | undefined {
  return requestInfos.get(ws) as RequestInfo<Pattern> | undefined;
}

/** Keep, for `requestInfo(ws)`, what an accepted connection's request said. */
export function storeRequest(ws: WebSocket<unknown>, url: URL, route: string, params: Record<string, string>, origin: string | undefined): void {
  requestInfos.set(ws, new StoredRequest(url.href, route, params, origin));
}

/** The request URL, or undefined when the request-target is not one (answered 400 or left alone). */
export function requestUrl(req: IncomingMessage): URL | undefined {
  const target = req.url ?? '/';
  const scheme = (req.socket as TLSSocket).encrypted ? 'wss' : 'ws';
  try {
    // Origin-form (`/path?q`), the usual case. Prefixing keeps `//host/x` a path, not an authority.
    if (target.startsWith('/')) {
      try {
        return new URL(`${scheme}://${req.headers.host ?? 'localhost'}${target}`);
      } catch {
        return new URL(`${scheme}://localhost${target}`); // a bad Host is validateRequest's to refuse
      }
    }
    return new URL(target); // absolute-form (RFC 7230 §5.3.2)
  } catch {
    return undefined;
  }
}

/** The request-target without its query, as it came (for log lines and 404 messages). */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** Percent-decoded, or as it is when it is not valid percent-encoding. */
export function safeDecode(text: string): string {
  return decodePercent(text) ?? text;
}

/** Bytes of the request line and headers, as they came (the request line approximated). */
export function headerSize(req: IncomingMessage): number {
  let size = (req.method?.length ?? 0) + (req.url?.length ?? 0) + 12;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i++) size += raw[i]!.length + 2; // `: ` and CRLF
  return size;
}

/** RFC 6265 §5.4 `Cookie: a=1; b=2`, the first of a repeated name kept (it is the most specific). */
export function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!header) return cookies;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    const name = pair.slice(0, eq).trim();
    if (name === '' || name in cookies) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    cookies[name] = safeDecode(value);
  }
  return cookies;
}
