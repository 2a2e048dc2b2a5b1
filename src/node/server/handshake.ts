/**
 * The server's side of the opening handshake (RFC 6455 §4.2), from a routed upgrade request to
 * the 101 or an HTTP error. The order of checks, each answered before any WebSocket byte:
 * server shutting down (503) → per-IP limits (429) → RFC 6455 request rules (400/405/426) →
 * header bytes (431) → max connections (503) → origin (403) → the route's `upgrade` hook (its
 * status, 500 if it throws, 503 if it outlasts `handshakeTimeout`) → 101.
 *
 * A `Handshake` is the `UpgradeContext` the hook sees; while an asynchronous hook runs it also
 * watches the socket (client gone, early data) and the clock.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HandshakeError, toError } from '../../protocol/errors.js';
import type { ExtensionOffer, MessageCodec } from '../../protocol/extension.js';
import { selectSubprotocol, validateRequest, type ValidatedRequest } from '../../protocol/handshake.js';
import { formatExtensions } from '../../protocol/headers.js';
import { negotiateServer, type NegotiatedDeflate } from '../../protocol/permessage-deflate.js';
import { createDeflateCodec } from '../deflate.js';
import type { TrafficCounters } from '../counters.js';
import type { Logger } from '../logger.js';
import { WebSocket } from '../websocket.js';
import { checkOrigin, type Admission, type Refusal } from './admission.js';
import { MAX_EARLY_DATA, RETRY_AFTER_SECONDS, type ResolvedRoute, type UpgradeContext } from './options.js';
import { headerSize, parseCookies, pathOf, storeRequest } from './request.js';
import { acceptResponse, rejectUpgrade } from './responses.js';

/** What the handshakes ask of the server they work for. */
export interface HandshakeHost {
  readonly logger: Logger;
  /** The server's traffic counters, given to every connection it accepts. */
  readonly counters: TrafficCounters;
  /** Connections open now (not counting the handshakes in progress). */
  connections(): number;
  /** Answer with an HTTP error (logged and counted) and close the socket. */
  refuse(socket: Duplex, req: IncomingMessage, refusal: Refusal): void;
  /** A connection was accepted: its 101 is written, it starts right after. */
  opened(ws: WebSocket<unknown>): void;
}

/** New handshakes, and those waiting for their hook, once `close()` was called. */
const SHUTTING_DOWN: Refusal = { status: 503, message: 'server shutting down', headers: { 'Retry-After': RETRY_AFTER_SECONDS } };
/** A hook that outlasted `handshakeTimeout`. */
const TIMED_OUT: Refusal = { status: 503, message: 'the server took too long to accept the connection', headers: { 'Retry-After': RETRY_AFTER_SECONDS } };

/** The extension the handshake agreed on: its parameters, and the offer to answer with. */
type Negotiated = { params: NegotiatedDeflate; response: ExtensionOffer };

/** The opening handshakes of one server: started by `start`, each ends in a 101 or a refusal. */
export class OpeningHandshakes {
  /** Handshakes given up because the client went away while the hook ran. */
  abandoned = 0;
  private readonly waiting = new Set<Handshake>();
  private accepting = true;

  constructor(
    private readonly host: HandshakeHost,
    private readonly admission: Admission,
    private readonly maxHeaderSize: number,
    private readonly handshakeTimeout: number,
  ) {}

  /** Handshakes waiting for an asynchronous `upgrade` hook now. */
  get pending(): number {
    return this.waiting.size;
  }

  /** Take an upgrade request whose path matched `route`; it is answered (101 or an HTTP error) from here on. */
  start(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, route: ResolvedRoute, params: Record<string, string>): void {
    socket.on('error', destroySocket);
    if (!this.accepting) {
      this.host.refuse(socket, req, SHUTTING_DOWN);
      return;
    }
    const refusal = this.admission.admitIp(socket, req.socket.remoteAddress ?? '');
    if (refusal) {
      this.host.refuse(socket, req, refusal);
      return;
    }
    let request: ValidatedRequest;
    let negotiated: Negotiated | undefined;
    try {
      request = validateRequest({ method: req.method ?? '', httpVersion: req.httpVersion, url: req.url ?? '/', headers: req.headers });
      negotiated = route.deflate ? negotiateServer(request.extensions, route.deflate) : undefined;
    } catch (error) {
      if (!(error instanceof HandshakeError)) throw error;
      this.host.refuse(socket, req, error);
      return;
    }
    const refused = this.checkHeaderSize(req) ?? this.admission.checkCapacity(this.host.connections() + this.waiting.size) ?? checkOrigin(route.origins, request.origin);
    if (refused) {
      this.host.refuse(socket, req, refused);
      return;
    }
    const protocol = route.protocols ? selectSubprotocol(request.protocols, route.protocols) : undefined;
    const handshake = new Handshake(this, req, socket, head, url, route, params, request, negotiated, protocol);
    const hook = route.upgrade;
    if (!hook) {
      this.complete(handshake, undefined);
      return;
    }
    let result: unknown;
    try {
      result = hook(handshake);
    } catch (error) {
      this.hookFailed(handshake, error);
      return;
    }
    if (!isPromiseLike(result)) {
      this.complete(handshake, result);
      return;
    }
    // Asynchronous hook: watch the socket and the clock while it runs.
    this.waiting.add(handshake);
    handshake.watch(this.handshakeTimeout);
    result.then(
      (data) => {
        if (handshake.settle()) this.complete(handshake, data);
      },
      (error: unknown) => {
        if (handshake.settle()) this.hookFailed(handshake, error);
      },
    );
  }

  /** Shutting down: refuse new handshakes, and those waiting for their hook, with 503 (their `signal` aborts). */
  stop(): void {
    this.accepting = false;
    for (const handshake of [...this.waiting]) {
      if (!handshake.settle()) continue;
      handshake.abort('server shutting down');
      handshake.release();
      this.host.refuse(handshake.socket, handshake.req, SHUTTING_DOWN);
    }
  }

  /** Called by a Handshake when it stops being pending. */
  forget(handshake: Handshake): void {
    this.waiting.delete(handshake);
  }

  /** Called by a Handshake whose client went away while the hook ran. */
  aborted(handshake: Handshake): void {
    this.abandoned++;
    this.host.logger.info({ remote: handshake.remoteAddress, path: handshake.url.pathname }, 'handshake abandoned: the client went away while the upgrade hook ran');
  }

  /** Called by a Handshake whose hook outlasted `handshakeTimeout`. */
  timedOut(handshake: Handshake): void {
    this.host.refuse(handshake.socket, handshake.req, TIMED_OUT);
  }

  /** 431 when the request line and headers are more than `maxHeaderSize` bytes. */
  private checkHeaderSize(req: IncomingMessage): Refusal | undefined {
    const bytes = headerSize(req);
    if (bytes <= this.maxHeaderSize) return undefined;
    return { status: 431, message: `request headers are ${bytes} bytes, more than the ${this.maxHeaderSize} allowed` };
  }

  /** The hook accepted: answer 101 and start the connection. */
  private complete(handshake: Handshake, data: unknown): void {
    const { socket, head, resolved: route, request } = handshake;
    const early = handshake.release();
    if (socket.destroyed) return;
    const protocol = handshake.protocol;
    if (protocol !== undefined && !request.protocols.includes(protocol)) {
      this.hookFailed(handshake, new TypeError(`the upgrade hook chose subprotocol ${JSON.stringify(protocol)}, which the client did not offer`));
      return;
    }
    let codec: MessageCodec | undefined;
    let extensions: string | undefined;
    let response: string;
    try {
      response = acceptResponse(request.key, protocol, handshake.negotiated ? (extensions = formatExtensions([handshake.negotiated.response])) : undefined, handshake.responseHeaders);
      if (handshake.negotiated) codec = createDeflateCodec('server', handshake.negotiated.params, route.deflate);
    } catch (error) {
      this.hookFailed(handshake, error);
      return;
    }
    socket.off('error', destroySocket);
    socket.write(response);
    const ws = new WebSocket<unknown>(socket as Socket, {
      settings: route.settings,
      side: 'server',
      handlers: route.handlers,
      data,
      protocol,
      extensions,
      codec,
      logger: this.host.logger,
      counters: this.host.counters,
    });
    storeRequest(ws, handshake.url, route.pattern, handshake.params, request.origin);
    this.host.opened(ws);
    ws.start(early ? Buffer.concat([head, ...early]) : head);
  }

  /** The hook refused (HandshakeError: its status) or failed (anything else: 500). */
  private hookFailed(handshake: Handshake, error: unknown): void {
    handshake.release();
    const { socket, req } = handshake;
    if (error instanceof HandshakeError && error.status >= 200 && error.status <= 599) {
      this.host.refuse(socket, req, error);
      return;
    }
    const err = toError(error);
    this.host.logger.error({ remote: req.socket.remoteAddress, path: pathOf(req), err: err.message, stack: err.stack }, 'upgrade hook failed');
    // The body does not repeat the error: it may hold details meant for the server's eyes only.
    this.host.refuse(socket, req, { status: 500, message: 'internal server error' });
  }
}

/**
 * One handshake between the request and the 101: the `UpgradeContext` given to the hook, and
 * while an asynchronous hook runs, the watch on the socket (client gone) and on the clock.
 */
class Handshake implements UpgradeContext {
  protocol: string | undefined;
  responseHeaders: Array<[string, string | readonly string[]]> | undefined;
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private early: Buffer[] | undefined;
  private earlyBytes = 0;
  private watching = false;
  private settled = false;
  private parsedCookies: Record<string, string> | undefined;

  constructor(
    private readonly owner: OpeningHandshakes,
    readonly req: IncomingMessage,
    readonly socket: Duplex,
    readonly head: Buffer,
    readonly url: URL,
    readonly resolved: ResolvedRoute,
    readonly params: Record<string, string>,
    readonly request: ValidatedRequest,
    readonly negotiated: Negotiated | undefined,
    protocol: string | undefined,
  ) {
    this.protocol = protocol;
  }

  get route(): string {
    return this.resolved.pattern;
  }
  get query(): URLSearchParams {
    return this.url.searchParams;
  }
  get headers(): IncomingHttpHeaders {
    return this.req.headers;
  }
  get cookies(): Readonly<Record<string, string>> {
    return (this.parsedCookies ??= parseCookies(this.req.headers.cookie));
  }
  get remoteAddress(): string | undefined {
    return this.req.socket.remoteAddress;
  }
  get origin(): string | undefined {
    return this.request.origin;
  }
  get protocols(): readonly string[] {
    return this.request.protocols;
  }
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  /** Add a response header (bound on first use, so `({ setHeader }) => …` works). */
  get setHeader(): (name: string, value: string | readonly string[]) => void {
    const bound = (name: string, value: string | readonly string[]): void => {
      (this.responseHeaders ??= []).push([name, value]);
    };
    Object.defineProperty(this, 'setHeader', { value: bound });
    return bound;
  }

  /** Refuse the upgrade; needs no `this`, so `({ reject }) => …` works without binding. */
  readonly reject = rejectUpgrade;

  /** Watch the socket (client gone, early data) and the clock while an async hook runs. */
  watch(timeout: number): void {
    this.watching = true;
    const socket = this.socket;
    this.onData = (chunk) => this.earlyData(chunk);
    this.onGone = () => this.gone();
    socket.on('data', this.onData);
    socket.on('end', this.onGone);
    socket.on('close', this.onGone);
    this.timer = setTimeout(() => this.timedOut(), timeout);
  }

  /** Marks the handshake decided; false if it already was (client gone, timed out, shut down). */
  settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    return true;
  }

  /** Stop watching; returns data the client sent early (before our 101), if any. */
  release(): Buffer[] | undefined {
    if (this.watching) {
      this.watching = false;
      clearTimeout(this.timer);
      this.socket.off('data', this.onData!);
      this.socket.off('end', this.onGone!);
      this.socket.off('close', this.onGone!);
      this.owner.forget(this);
    }
    return this.early;
  }

  /** Abort `signal` (the hook's work is no longer wanted). */
  abort(reason: string): void {
    this.controller?.abort(new Error(reason));
  }

  // The watchers exist only while an asynchronous hook runs (most handshakes never need them).
  private onData: ((chunk: Buffer) => void) | undefined;
  private onGone: (() => void) | undefined;

  private earlyData(chunk: Buffer): void {
    this.earlyBytes += chunk.length;
    if (this.earlyBytes > MAX_EARLY_DATA) {
      this.socket.destroy(); // → onGone
      return;
    }
    (this.early ??= []).push(chunk);
  }

  private gone(): void {
    this.release();
    this.abort('the client went away');
    this.socket.destroy();
    if (this.settle()) this.owner.aborted(this);
  }

  private timedOut(): void {
    if (!this.settle()) return;
    this.release();
    this.abort('handshake timed out');
    this.owner.timedOut(this);
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function';
}

/** The socket's `error` listener until the 101: a socket error during the handshake only ends that socket. */
function destroySocket(this: Duplex): void {
  this.destroy();
}
