/**
 * RFC 7692 permessage-deflate: the parameter negotiation, on both sides of the handshake.
 *
 * Pure TypeScript with no Node APIs, so the engine stays portable. The compression itself is a
 * `MessageCodec` (see `extension.ts`); the zlib-backed one lives in `src/node/deflate.ts`.
 *
 * Vocabulary (RFC 7692 §7.1): the client sends one or more *offers* in `Sec-WebSocket-Extensions`;
 * the server accepts at most one of them with a *response*. "server_*" parameters govern what the
 * server compresses, "client_*" parameters what the client compresses.
 */
import { HandshakeError } from './errors.js';
import type { ExtensionOffer } from './extension.js';

/** The extension token registered by RFC 7692 §7. */
export const EXTENSION_NAME = 'permessage-deflate';

/** Smallest LZ77 window, as a base-2 logarithm (RFC 7692 §7.1.2: 8 = 256 bytes). */
export const MIN_WINDOW_BITS = 8;
/** Largest LZ77 window, as a base-2 logarithm (RFC 7692 §7.1.2: 15 = 32 KiB, the default). */
export const MAX_WINDOW_BITS = 15;

/** Default for {@link PerMessageDeflateOptions.threshold}, in bytes (the same as ws). */
export const DEFAULT_THRESHOLD = 1024;
/** Default for {@link PerMessageDeflateOptions.level}. */
export const DEFAULT_LEVEL = 1;
/** Default for {@link PerMessageDeflateOptions.memLevel}. */
export const DEFAULT_MEM_LEVEL = 8;

/** One permessage-deflate offer with its parameters checked and decoded (RFC 7692 §7.1). */
export interface DeflateOfferParams {
  /** The client asked the server not to keep its context between messages (§7.1.1.1). */
  readonly serverNoContextTakeover: boolean;
  /** The client hinted that it will not keep its context between messages (§7.1.1.2). */
  readonly clientNoContextTakeover: boolean;
  /** The largest window the client lets the server use, if it said (§7.1.2.1). */
  readonly serverMaxWindowBits: number | undefined;
  /**
   * Whether the client accepts a `client_max_window_bits` in the response (§7.1.2.2): `true`
   * if it sent the parameter without a value, the number if it also promised a limit, and
   * `undefined` if it did not send it (the server must then not send it either).
   */
  readonly clientMaxWindowBits: number | true | undefined;
}

/**
 * Settings for permessage-deflate. The same object configures a server and a client; a few
 * defaults differ by side, as noted.
 *
 * Memory per connection (zlib's own formulas): a deflate context needs about
 * `(1 << (windowBits + 2)) + (1 << (memLevel + 9))` bytes — 256 KiB at windowBits 15 and
 * memLevel 8 — and an inflate context about `(1 << windowBits) + 7 KiB` — 39 KiB at 15.
 * A connection holds them only with context takeover (between messages) or while a fragmented
 * message arrives; see `src/node/deflate.ts` for measured numbers.
 */
export interface PerMessageDeflateOptions {
  /**
   * The server compresses each message on its own, keeping no context between messages
   * (RFC 7692 §7.1.1.1). On a server it is *included in the response* even when the client did
   * not ask; on a client it is *requested in the offer*.
   *
   * Default: `true` on a server, `false` on a client. With it a server holds no 256 KiB deflate
   * context per connection, and because the output for a message no longer depends on what was
   * sent before, a hub can compress a broadcast once and write the same bytes to every
   * subscriber. The price is compression ratio on streams of small, similar messages (e.g. JSON
   * ticks): the second `{"type":"update",…}` cannot point back at the first. Set it to `false`
   * on a server with few connections that send many similar small messages.
   */
  serverNoContextTakeover?: boolean;
  /**
   * The client compresses each message on its own (RFC 7692 §7.1.1.2). On a server it is
   * included in the response (the client must then comply); on a client it is sent in the offer
   * as a promise. Default: `false` — the client's memory is rarely the bottleneck and context
   * takeover compresses chatty clients far better. A server sees the benefit anyway: when the
   * client offers it, the server echoes it and frees its inflate context after every message.
   */
  clientNoContextTakeover?: boolean;
  /**
   * Largest LZ77 window the server compresses with, 8–15 (RFC 7692 §7.1.2.1). On a server it
   * caps its own window (and is sent in the response); on a client it is requested in the
   * offer. Default: not set — 15 (32 KiB), the best ratio; with no context takeover the
   * deflate context is short-lived, so a smaller window buys little memory.
   */
  serverMaxWindowBits?: number;
  /**
   * Largest LZ77 window the client compresses with, 8–15 (RFC 7692 §7.1.2.2). On a server a
   * number is sent in the response when the client allows it (otherwise the offer is still
   * accepted unless `requireClientMaxWindowBits`); it bounds the server's inflate context at
   * `(1 << bits) + 7 KiB`. On a client, `true` advertises that the server may choose, a
   * number also promises that limit, and `false` leaves the parameter out (the server then must
   * not send it). Default: not set on a server (the client's choice, 15 if none), `true` on a
   * client (like ws and python-websockets).
   */
  clientMaxWindowBits?: number | boolean;
  /**
   * Messages shorter than this many bytes are sent uncompressed. Default: 1024 (as ws): below
   * about 1 KiB the saving rarely pays for the CPU time and a deflate context setup (~6–13 µs
   * per message measured on Node 20).
   */
  threshold?: number;
  /**
   * zlib compression level, 0–9. Default: 1. Measured on Node 20 with a 255 KiB JSON message:
   * level 1 took 1.0 ms and gave 57.3 KB, level 6 (zlib's default, used by ws) took 2.6 ms for
   * 55.5 KB — 2.5× the CPU for 3 % fewer bytes. Small messages compress the same at both.
   */
  level?: number;
  /**
   * zlib memLevel, 1–9: the size of the deflate hash table, `1 << (memLevel + 9)` bytes in
   * stock zlib. Default: 8 (zlib's default). python-websockets uses 5 to save 112 KiB per
   * persistent deflate context, but Node bundles Chromium's zlib, whose SIMD hashing uses a
   * fixed-size table: measured on Node 20, a persistent context costs ~218 KiB RSS at
   * memLevel 8 and ~216 KiB at 5 (windowBits 15), so lowering it saves little here; lower
   * `serverMaxWindowBits` (~104 KiB at 12) or keep `serverNoContextTakeover` instead.
   */
  memLevel?: number;
  /**
   * Server only: decline offers that do not include `client_max_window_bits`, so every client
   * that compresses is bounded by `clientMaxWindowBits` (as python-websockets'
   * `require_client_max_window_bits`). Default: `false`.
   */
  requireClientMaxWindowBits?: boolean;
  /**
   * Server only: decides whether to accept a (valid) offer; return `false` to decline it and
   * try the client's next offer (RFC 7692 §5). Default: accept every valid offer.
   */
  acceptOffer?: (offer: DeflateOfferParams) => boolean;
}

/**
 * The parameters in force on a connection once the handshake is done (RFC 7692 §7.1), with the
 * RFC's defaults filled in: context takeover unless forbidden, window bits 15 unless limited.
 */
export interface NegotiatedDeflate {
  /** The server resets its compression context after each message (RFC 7692 §7.1.1.1); its output can then be shared. */
  readonly serverNoContextTakeover: boolean;
  /** The client resets its compression context after each message (§7.1.1.2): the server's inflater keeps no window between them. */
  readonly clientNoContextTakeover: boolean;
  /** Base-2 log of the LZ77 window the server compresses with, 8–15 (§7.1.2.1); the client inflates with it. */
  readonly serverMaxWindowBits: number;
  /** Base-2 log of the LZ77 window the client compresses with, 8–15 (§7.1.2.2); the server inflates with it. */
  readonly clientMaxWindowBits: number;
}

type Param = readonly [name: string, value: string | true];

/**
 * Check option values once, so a typo fails at start-up with a clear message rather than as a
 * zlib error on the first message. Throws a `RangeError`.
 */
export function validateDeflateOptions(options: PerMessageDeflateOptions): void {
  const bits = (name: string, v: unknown, allowBoolean: boolean): void => {
    if (v === undefined || (allowBoolean && typeof v === 'boolean')) return;
    if (!Number.isInteger(v) || (v as number) < MIN_WINDOW_BITS || (v as number) > MAX_WINDOW_BITS) {
      throw new RangeError(
        `permessage-deflate: ${name} must be an integer from ${MIN_WINDOW_BITS} to ${MAX_WINDOW_BITS}` +
          `${allowBoolean ? ' or a boolean' : ''}, got ${String(v)}`,
      );
    }
  };
  bits('serverMaxWindowBits', options.serverMaxWindowBits, false);
  bits('clientMaxWindowBits', options.clientMaxWindowBits, true);
  const int = (name: string, v: number | undefined, min: number, max: number): void => {
    if (v !== undefined && !(Number.isInteger(v) && v >= min && v <= max)) {
      throw new RangeError(`permessage-deflate: ${name} must be an integer from ${min} to ${max}, got ${v}`);
    }
  };
  int('level', options.level, 0, 9);
  int('memLevel', options.memLevel, 1, 9);
  if (options.threshold !== undefined && !(options.threshold >= 0)) {
    throw new RangeError(`permessage-deflate: threshold must be a number ≥ 0, got ${options.threshold}`);
  }
}

// RFC 7692 §7.1.2.1/§7.1.2.2: the value is a decimal integer from 8 to 15 with no leading zero.
const WINDOW_BITS_RE = /^(?:[89]|1[0-5])$/;

/**
 * Decode the parameters of one offer (`kind` = 'offer') or response (`kind` = 'response').
 * Returns the reason as a string when they are not acceptable.
 */
function parseParams(params: readonly Param[], kind: 'offer' | 'response'): DeflateOfferParams | string {
  let serverNoContextTakeover = false;
  let clientNoContextTakeover = false;
  let serverMaxWindowBits: number | undefined;
  let clientMaxWindowBits: number | true | undefined;
  const seen = new Set<string>();
  for (const [name, value] of params) {
    // RFC 7692 §7: a parameter must not appear more than once.
    if (seen.has(name)) return `duplicate parameter ${name}`;
    seen.add(name);
    switch (name) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        // RFC 7692 §7.1.1.1/§7.1.1.2: these parameters have no value.
        if (value !== true) return `${name} must not have a value (got "${value}")`;
        if (name === 'server_no_context_takeover') serverNoContextTakeover = true;
        else clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits':
      case 'client_max_window_bits': {
        if (value === true) {
          // RFC 7692 §7.1.2.2: only an offer's client_max_window_bits may come without a value;
          // §7.1.2.1: server_max_window_bits always has one.
          if (name === 'client_max_window_bits' && kind === 'offer') {
            clientMaxWindowBits = true;
            break;
          }
          return `${name} needs a value from 8 to 15`;
        }
        if (!WINDOW_BITS_RE.test(value)) return `${name} must be an integer from 8 to 15 (got "${value}")`;
        if (name === 'server_max_window_bits') serverMaxWindowBits = Number(value);
        else clientMaxWindowBits = Number(value);
        break;
      }
      default:
        return `unknown parameter ${name}`;
    }
  }
  return { serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits };
}

const isDeflate = (e: ExtensionOffer): boolean => e.name.toLowerCase() === EXTENSION_NAME;

/**
 * Server side: pick the first acceptable permessage-deflate offer (RFC 7692 §5: offers are in
 * the client's order of preference) and build the response to put in `Sec-WebSocket-Extensions`.
 *
 * An offer with unknown or duplicate parameters or invalid values is declined, not treated as
 * an error (RFC 7692 §7.1: "the server declines ... an offer"); so is one that
 * `requireClientMaxWindowBits` or `acceptOffer` rejects. Returns `undefined` when none is
 * acceptable: the connection then goes on without compression.
 *
 * The response only says what the RFC allows: `server_no_context_takeover` whenever the client
 * asked (§7.1.1.1: it must then be in the response) or the server wants it;
 * `client_no_context_takeover` when offered or wanted (§7.1.1.2); `server_max_window_bits` no
 * larger than the client's value (§7.1.2.1); `client_max_window_bits` only if the client
 * offered it, with a value no larger than the client's (§7.1.2.2).
 */
export function negotiateServer(
  offers: readonly ExtensionOffer[],
  options: PerMessageDeflateOptions = {},
): {
  /** The parameters in force for this connection, to build its codec from. */
  params: NegotiatedDeflate;
  /** The extension to put in the 101's `Sec-WebSocket-Extensions` header (see `formatExtensions`). */
  response: ExtensionOffer;
} | undefined {
  validateDeflateOptions(options);
  for (const offer of offers) {
    if (!isDeflate(offer)) continue;
    const p = parseParams(offer.params, 'offer');
    if (typeof p === 'string') continue; // RFC 7692 §7.1: decline this offer, try the next
    if (options.requireClientMaxWindowBits === true && p.clientMaxWindowBits === undefined) continue;
    if (options.acceptOffer !== undefined && !options.acceptOffer(p)) continue;

    const response: Param[] = [];
    const serverNoContextTakeover = p.serverNoContextTakeover || (options.serverNoContextTakeover ?? true);
    if (serverNoContextTakeover) response.push(['server_no_context_takeover', true]);
    const clientNoContextTakeover = p.clientNoContextTakeover || (options.clientNoContextTakeover ?? false);
    if (clientNoContextTakeover) response.push(['client_no_context_takeover', true]);

    // §7.1.2.1: the server may always limit its own window; if the client set a limit, the
    // response must carry it or a smaller value.
    let serverBits = options.serverMaxWindowBits;
    if (p.serverMaxWindowBits !== undefined) {
      serverBits = Math.min(p.serverMaxWindowBits, serverBits ?? MAX_WINDOW_BITS);
    }
    if (serverBits !== undefined) response.push(['server_max_window_bits', String(serverBits)]);

    // §7.1.2.2: client_max_window_bits may only be answered when offered; a value the client
    // gave is already a promise, echoed (or lowered) so both ends read the same number.
    let clientBits: number | undefined;
    if (p.clientMaxWindowBits !== undefined) {
      const wanted = typeof options.clientMaxWindowBits === 'number' ? options.clientMaxWindowBits : undefined;
      const offered = p.clientMaxWindowBits === true ? undefined : p.clientMaxWindowBits;
      clientBits = wanted === undefined ? offered : Math.min(wanted, offered ?? MAX_WINDOW_BITS);
    }
    if (clientBits !== undefined) response.push(['client_max_window_bits', String(clientBits)]);

    return {
      params: {
        serverNoContextTakeover,
        clientNoContextTakeover,
        serverMaxWindowBits: serverBits ?? MAX_WINDOW_BITS,
        clientMaxWindowBits: clientBits ?? MAX_WINDOW_BITS,
      },
      response: { name: EXTENSION_NAME, params: response },
    };
  }
  return undefined;
}

/**
 * Client side: the single offer to send in `Sec-WebSocket-Extensions` (RFC 7692 §7.1).
 * By default it is bare `permessage-deflate; client_max_window_bits` — "compress, and you may
 * limit my window".
 */
export function buildClientOffer(options: PerMessageDeflateOptions = {}): ExtensionOffer {
  validateDeflateOptions(options);
  const params: Param[] = [];
  if (options.serverNoContextTakeover === true) params.push(['server_no_context_takeover', true]);
  if (options.clientNoContextTakeover === true) params.push(['client_no_context_takeover', true]);
  if (options.serverMaxWindowBits !== undefined) {
    params.push(['server_max_window_bits', String(options.serverMaxWindowBits)]);
  }
  const clientBits = options.clientMaxWindowBits ?? true;
  if (clientBits !== false) {
    params.push(['client_max_window_bits', clientBits === true ? true : String(clientBits)]);
  }
  return { name: EXTENSION_NAME, params };
}

/**
 * Client side: check the server's `Sec-WebSocket-Extensions` (all of its entries; those that
 * are not permessage-deflate are ignored here) against the offer that {@link buildClientOffer}
 * built from the same `options`.
 *
 * Returns the negotiated parameters, or `undefined` if the server did not accept
 * permessage-deflate. Throws a `HandshakeError` when the response breaks RFC 7692 (§5, §7.1):
 * the client must then _Fail the WebSocket Connection_ (RFC 6455 §4.1).
 */
export function acceptServerResponse(
  response: readonly ExtensionOffer[],
  options: PerMessageDeflateOptions = {},
): NegotiatedDeflate | undefined {
  validateDeflateOptions(options);
  const fail = (why: string): never => {
    // Status 101: the server did answer with a valid upgrade; its extension answer is wrong.
    throw new HandshakeError(`Invalid permessage-deflate response from the server: ${why}`, 101);
  };
  const accepted = response.filter(isDeflate);
  if (accepted.length === 0) return undefined;
  // We sent one offer, so the server can accept at most one (RFC 7692 §5, RFC 6455 §9.1).
  if (accepted.length > 1) fail(`${EXTENSION_NAME} appears ${accepted.length} times`);
  const p = parseParams(accepted[0]!.params, 'response');
  if (typeof p === 'string') return fail(p);

  // §7.1.1.1: if we asked for server_no_context_takeover, accepting means including it.
  if (options.serverNoContextTakeover === true && !p.serverNoContextTakeover) {
    fail('server_no_context_takeover was requested but is missing');
  }
  // §7.1.2.1: the server must confirm a requested limit with the same or a smaller value.
  const requestedServerBits = options.serverMaxWindowBits;
  if (requestedServerBits !== undefined) {
    if (p.serverMaxWindowBits === undefined) {
      fail(`server_max_window_bits=${requestedServerBits} was requested but is missing`);
    } else if (p.serverMaxWindowBits > requestedServerBits) {
      fail(`server_max_window_bits=${p.serverMaxWindowBits} is larger than the ${requestedServerBits} requested`);
    }
  }
  // §7.1.2.2: client_max_window_bits only if we offered it, and no larger than our value.
  const offeredClientBits = options.clientMaxWindowBits ?? true;
  const clientBits = typeof p.clientMaxWindowBits === 'number' ? p.clientMaxWindowBits : undefined;
  if (clientBits !== undefined) {
    if (offeredClientBits === false) {
      fail(`client_max_window_bits=${clientBits} was not offered`);
    } else if (typeof offeredClientBits === 'number' && clientBits > offeredClientBits) {
      fail(`client_max_window_bits=${clientBits} is larger than the ${offeredClientBits} offered`);
    }
  }
  return {
    serverNoContextTakeover: p.serverNoContextTakeover,
    // §7.1.1.2: our own offer of client_no_context_takeover is a promise we keep either way.
    clientNoContextTakeover: p.clientNoContextTakeover || options.clientNoContextTakeover === true,
    serverMaxWindowBits: p.serverMaxWindowBits ?? MAX_WINDOW_BITS,
    // §7.1.2.2: without a value in the response, the limit we offered (if any) still binds us.
    clientMaxWindowBits: clientBits ?? (typeof offeredClientBits === 'number' ? offeredClientBits : MAX_WINDOW_BITS),
  };
}
