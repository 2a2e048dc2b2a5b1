/**
 * Route matching for WebSocket endpoints: exact paths (`/live`), named parameters
 * (`/chat/:room`) and a trailing wildcard (`/feeds/*`). Pure: strings in, a match out, no
 * imports and no Node APIs, so the server (and anything else) can use it.
 *
 * Rules, chosen to be unsurprising rather than clever:
 * - a pattern is a path starting with `/`, split on `/` into segments;
 * - a literal segment matches itself exactly (case-sensitive, percent-encoding compared as is);
 * - `:name` matches one non-empty segment; the value is percent-decoded into `params.name`;
 * - `*` may only be the last segment; it matches the rest of the path, empty or not, slashes
 *   included, into `params['*']` (percent-decoded). `/feeds/*` matches `/feeds`, `/feeds/` and
 *   `/feeds/a/b`, but not `/feedsx`; `/*` matches every path;
 * - a trailing slash is significant: `/chat/:room` does not match `/chat/lobby/`;
 * - the first route added that matches wins (registration order), as in Express.
 */

/** The names of the `:params` in a route pattern, as a type: `'/chat/:room'` → `'room'`. */
type ParamNames<Pattern extends string> = Pattern extends `${string}:${infer Name}/${infer Rest}`
  ? Name | ParamNames<`/${Rest}`>
  : Pattern extends `${string}:${infer Name}`
    ? Name
    : never;

/** `'*'` when the pattern ends with a wildcard. */
type WildcardName<Pattern extends string> = Pattern extends `${string}*` ? '*' : never;

/**
 * The params a pattern yields, typed from the pattern when it is a literal:
 * `RouteParams<'/chat/:room/*'>` is `{ readonly room: string; readonly '*': string }`.
 */
export type RouteParams<Pattern extends string = string> = string extends Pattern
  ? Readonly<Record<string, string>>
  : { readonly [K in ParamNames<Pattern> | WildcardName<Pattern>]: string };

/** One segment of a compiled pattern. */
type Segment = { kind: 'literal'; text: string } | { kind: 'param'; name: string };

/** A pattern turned into segments, ready to match paths. */
export interface CompiledRoute {
  readonly pattern: string;
  readonly segments: readonly Segment[];
  /** Whether the pattern ends with `*`. */
  readonly wildcard: boolean;
}

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Compiles a route pattern.
 *
 * @throws TypeError when the pattern does not start with `/`, has a `*` that is not the last
 * segment, an invalid or repeated `:param` name, or an empty segment other than a final `/`.
 */
export function compileRoute(pattern: string): CompiledRoute {
  if (!pattern.startsWith('/')) {
    throw new TypeError(`Route ${JSON.stringify(pattern)} must start with "/"`);
  }
  const parts = pattern.slice(1).split('/');
  const segments: Segment[] = [];
  const names = new Set<string>();
  let wildcard = false;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const last = i === parts.length - 1;
    if (part === '*') {
      if (!last) throw new TypeError(`Route ${JSON.stringify(pattern)}: "*" must be the last segment`);
      wildcard = true;
    } else if (part.startsWith(':')) {
      const name = part.slice(1);
      if (!PARAM_NAME.test(name)) {
        throw new TypeError(`Route ${JSON.stringify(pattern)}: ":${name}" is not a valid parameter name (letters, digits, _)`);
      }
      if (names.has(name)) throw new TypeError(`Route ${JSON.stringify(pattern)}: parameter ":${name}" appears twice`);
      names.add(name);
      segments.push({ kind: 'param', name });
    } else if (part.includes('*')) {
      throw new TypeError(`Route ${JSON.stringify(pattern)}: "*" must be a whole segment of its own`);
    } else {
      // An empty segment is only meaningful as the trailing slash of a literal path (`/a/`) or
      // as the root (`/`); `//` in the middle is almost certainly a typo.
      if (part === '' && !last) throw new TypeError(`Route ${JSON.stringify(pattern)} has an empty segment ("//")`);
      segments.push({ kind: 'literal', text: part });
    }
  }
  return { pattern, segments, wildcard };
}

/** Percent-decodes, or returns undefined for malformed input (a `%` not followed by two hex digits). */
export function decodePercent(text: string): string | undefined {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** What a successful match yields. */
export type MatchResult = { params: Record<string, string> } | undefined;

/**
 * Matches a URL path (the pathname, still percent-encoded, without the query) against a
 * compiled route. Returns the params, or undefined when the path does not match or a
 * parameter is malformed percent-encoding.
 */
export function matchRoute(route: CompiledRoute, path: string): MatchResult {
  if (!path.startsWith('/')) return undefined;
  const params: Record<string, string> = {};
  let pos = 1; // just after a '/'
  const { segments } = route;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (pos > path.length) return undefined; // the path ran out (a wildcard route may end here)
    let end = path.indexOf('/', pos);
    if (end === -1) end = path.length;
    const text = path.slice(pos, end);
    if (segment.kind === 'literal') {
      if (text !== segment.text) return undefined;
    } else {
      if (text === '') return undefined;
      const value = decodePercent(text);
      if (value === undefined) return undefined;
      params[segment.name] = value;
    }
    pos = end + 1;
  }
  if (route.wildcard) {
    const rest = pos > path.length ? '' : path.slice(pos);
    const value = decodePercent(rest);
    if (value === undefined) return undefined;
    params['*'] = value;
    return { params };
  }
  // Every segment consumed and nothing left over: pos is one past the end.
  return pos === path.length + 1 ? { params } : undefined;
}

/** An ordered list of routes, each with a value (the server keeps its route options there). */
export class Router<Value> {
  private readonly routes: Array<{ route: CompiledRoute; value: Value }> = [];

  /** Adds a route after those already added. @throws TypeError for an invalid pattern. */
  add(pattern: string, value: Value): void {
    this.routes.push({ route: compileRoute(pattern), value });
  }

  /** The first route, in the order they were added, that matches `path`. */
  match(path: string): { value: Value; params: Record<string, string>; pattern: string } | undefined {
    for (const { route, value } of this.routes) {
      const result = matchRoute(route, path);
      if (result) return { value, params: result.params, pattern: route.pattern };
    }
    return undefined;
  }

  /** The number of routes. */
  get size(): number {
    return this.routes.length;
  }
}
