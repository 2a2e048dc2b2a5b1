/**
 * ws's `perMessageDeflate` option as duplex's negotiation options (`PerMessageDeflateOptions` of
 * `src/protocol/permessage-deflate.ts`), for the server (`./server.ts`) and the client (`./client.ts`).
 * Where the two libraries' defaults differ the result states ws's: a ws server keeps its context
 * between messages (duplex's server does not by default).
 */
import type { PerMessageDeflateOptions as EngineDeflateOptions } from '../protocol/permessage-deflate.js';
import type { PerMessageDeflateOptions } from './options.js';

/** zlib's Z_DEFAULT_COMPRESSION (-1) is level 6. */
const ZLIB_DEFAULT_LEVEL = 6;

/**
 * The engine's options for ws's `perMessageDeflate` value, or undefined when it is off
 * (`false`, `undefined`, `null`). `true` means ws's defaults.
 * @param isServer The server answers with the `server_*`/`client_*` parameters; the client offers them.
 * @throws RangeError (from the negotiation, on first use) for window bits outside 8–15 or a bad level.
 */
export function toDeflateOptions(option: boolean | PerMessageDeflateOptions | null | undefined, isServer: boolean): EngineDeflateOptions | undefined {
  if (!option) return undefined;
  const ws: PerMessageDeflateOptions = option === true ? {} : option;
  const out: EngineDeflateOptions = {
    // ws's server keeps its compression context unless told otherwise (duplex's default is not to).
    serverNoContextTakeover: ws.serverNoContextTakeover === true,
    clientNoContextTakeover: ws.clientNoContextTakeover === true,
  };
  if (typeof ws.serverMaxWindowBits === 'number') out.serverMaxWindowBits = ws.serverMaxWindowBits;
  if (typeof ws.clientMaxWindowBits === 'number') out.clientMaxWindowBits = ws.clientMaxWindowBits;
  else if (!isServer && ws.clientMaxWindowBits === false) out.clientMaxWindowBits = false;
  if (ws.threshold !== undefined) out.threshold = ws.threshold;
  const level = ws.zlibDeflateOptions?.level;
  if (level !== undefined) out.level = level === -1 ? ZLIB_DEFAULT_LEVEL : level;
  const memLevel = ws.zlibDeflateOptions?.memLevel;
  if (memLevel !== undefined) out.memLevel = memLevel;
  return out;
}
