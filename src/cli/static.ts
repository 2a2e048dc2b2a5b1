/**
 * Static files for `duplex serve` (the demo apps and the browser client), with plain
 * `node:http`: GET and HEAD only, a fixed set of content types, no directory listings, and no
 * way out of the root — the decoded path is resolved and must stay under it.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/** Headers sent with every static file: no sniffing, a strict CSP (no inline script), no framing. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

/** Answer a plain-text status. */
export function sendText(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * The file under `root` that `urlPath` (still percent-encoded, starting with `/`) names, or an
 * HTTP status: 400 for a malformed or NUL-carrying path, 404 for one that leaves the root.
 */
export function resolveUnder(root: string, urlPath: string): string | 400 | 404 {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return 400;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return 400;
  const base = resolve(root);
  const file = resolve(base, '.' + (decoded.startsWith('/') ? decoded : '/' + decoded));
  if (file !== base && !file.startsWith(base + sep)) return 404;
  return file;
}

/**
 * Serve `urlPath` from `root`: a directory serves its `index.html` (a directory URL without the
 * final slash is redirected, so relative links work). Resolves true if answered, false if no
 * such file (the caller answers 404 or tries elsewhere).
 */
export async function serveStatic(req: IncomingMessage, res: ServerResponse, root: string, urlPath: string): Promise<boolean> {
  const resolved = resolveUnder(root, urlPath);
  if (resolved === 400) {
    sendText(res, 400, 'bad request path\n');
    return true;
  }
  if (resolved === 404) return false;
  let file = resolved;
  let info = await stat(file).catch(() => undefined);
  if (info?.isDirectory()) {
    if (!urlPath.endsWith('/')) {
      const query = req.url?.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
      res.writeHead(301, { Location: urlPath + '/' + query, 'Content-Length': 0 });
      res.end();
      return true;
    }
    file = resolve(file, 'index.html');
    info = await stat(file).catch(() => undefined);
  }
  if (!info?.isFile()) return false;
  const type = CONTENT_TYPES[extname(file).toLowerCase()];
  if (type === undefined) return false; // only known kinds of files are served
  res.writeHead(200, {
    'Content-Type': type,
    'Content-Length': info.size,
    'Cache-Control': 'no-cache',
    'Last-Modified': info.mtime.toUTCString(),
    ...SECURITY_HEADERS,
  });
  if (req.method === 'HEAD') {
    res.end();
    return true;
  }
  await new Promise<void>((done) => {
    const stream = createReadStream(file);
    stream.on('error', () => {
      res.destroy();
      done();
    });
    stream.on('end', done);
    stream.pipe(res);
  });
  return true;
}
