/**
 * Who may open a connection: the per-IP limits (concurrent sockets, new connections per
 * window), the server's connection limit, and the origin allow-list of a route. Each check
 * answers with the refusal to send (429, 503, 403), or undefined to let the request on.
 */
import type { Duplex } from 'node:stream';
import { RETRY_AFTER_SECONDS, type OriginCheck, type WebSocketServerOptions } from './options.js';

/** An HTTP error to answer an upgrade request with, instead of 101. */
export interface Refusal {
  readonly status: number;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** The server-wide limits on connections, from the server's options. */
export class Admission {
  private readonly maxConnections: number;
  private readonly perIp: PerIpLimits | undefined;

  /** @throws RangeError for an invalid per-IP limit. */
  constructor(options: Pick<WebSocketServerOptions<unknown>, 'maxConnections' | 'maxConnectionsPerIp' | 'connectionRatePerIp'>) {
    this.maxConnections = options.maxConnections ?? Infinity;
    this.perIp = options.maxConnectionsPerIp !== undefined || options.connectionRatePerIp !== undefined ? new PerIpLimits(options.maxConnectionsPerIp, options.connectionRatePerIp) : undefined;
  }

  /** Count a new connection from `ip` (released when `socket` closes), or refuse it with 429. */
  admitIp(socket: Duplex, ip: string): Refusal | undefined {
    return this.perIp?.admit(socket, ip);
  }

  /** 503 when `open` connections (handshakes in progress included) already reach `maxConnections`. */
  checkCapacity(open: number): Refusal | undefined {
    if (open < this.maxConnections) return undefined;
    return { status: 503, message: `too many connections (limit ${this.maxConnections})`, headers: { 'Retry-After': RETRY_AFTER_SECONDS } };
  }
}

/**
 * 403 when a route's allow-list does not admit `origin`. RFC 6455 §10.2: the server decides on
 * `Origin`; browsers always send it, so its absence means a non-browser client.
 */
export function checkOrigin(check: OriginCheck | undefined, origin: string | undefined): Refusal | undefined {
  if (!check || originAllowed(check, origin)) return undefined;
  return { status: 403, message: origin === undefined ? 'an Origin header is required' : `origin ${origin} is not allowed` };
}

function originAllowed(check: OriginCheck, origin: string | undefined): boolean {
  if (origin === undefined) return check.allowMissing;
  if (check.exact.has(origin.toLowerCase())) return true;
  for (const pattern of check.patterns) {
    pattern.lastIndex = 0; // a /g or /y RegExp keeps state between tests
    if (pattern.test(origin)) return true;
  }
  return false;
}

/**
 * Per-IP connection limits: concurrent sockets (counted from admission until the socket
 * closes) and new connections per fixed window. Entries of idle addresses are swept, so the
 * map holds at most the addresses seen in the last window plus those with open sockets.
 */
class PerIpLimits {
  private readonly open = new Map<string, number>();
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private lastSweep = 0;

  constructor(
    private readonly maxOpen: number | undefined,
    private readonly rate: { connections: number; interval: number } | undefined,
  ) {
    if (maxOpen !== undefined && !(maxOpen >= 1)) throw new RangeError(`maxConnectionsPerIp must be ≥ 1, got ${maxOpen}`);
    if (rate && !(rate.connections >= 1 && rate.interval > 0)) {
      throw new RangeError('connectionRatePerIp needs connections ≥ 1 and interval > 0 (ms)');
    }
  }

  /** Count a new connection from `ip`, or refuse it (429, `Retry-After` in seconds). */
  admit(socket: Duplex, ip: string): Refusal | undefined {
    const now = Date.now();
    if (this.rate) {
      if (now - this.lastSweep > this.rate.interval && this.windows.size > 1024) {
        this.lastSweep = now;
        for (const [key, w] of this.windows) if (w.resetAt <= now) this.windows.delete(key);
      }
      let w = this.windows.get(ip);
      if (!w || w.resetAt <= now) {
        w = { count: 0, resetAt: now + this.rate.interval };
        this.windows.set(ip, w);
      }
      if (w.count >= this.rate.connections) {
        const retryAfter = Math.max(1, Math.ceil((w.resetAt - now) / 1000));
        return tooMany(`too many new connections from ${ip} (limit ${this.rate.connections} per ${this.rate.interval} ms)`, String(retryAfter));
      }
      w.count++;
    }
    if (this.maxOpen !== undefined) {
      const open = this.open.get(ip) ?? 0;
      if (open >= this.maxOpen) return tooMany(`too many connections from ${ip} (limit ${this.maxOpen})`, RETRY_AFTER_SECONDS);
      this.open.set(ip, open + 1);
      socket.once('close', () => {
        const left = (this.open.get(ip) ?? 1) - 1;
        if (left <= 0) this.open.delete(ip);
        else this.open.set(ip, left);
      });
    }
    return undefined;
  }
}

/** RFC 6585 §4: 429 Too Many Requests, "MAY include a Retry-After header". */
function tooMany(message: string, retryAfter: string): Refusal {
  return { status: 429, message, headers: { 'Retry-After': retryAfter } };
}
