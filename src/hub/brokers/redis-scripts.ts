/**
 * The Redis broker's Lua scripts — each multi-key operation (publish with offset and stream
 * entry, history read, presence, leave, liveness refresh and sweep) runs atomically as one
 * script — how they are run (EVALSHA, EVAL when Redis lost its script cache), and the readers
 * of their replies, which throw `RedisBrokerError` on a reply the broker did not expect.
 */
import { BrokerError } from './shared.js';

/** A Redis command failed or replied with something the broker did not expect. */
export class RedisBrokerError extends BrokerError {
  /** Always `'RedisBrokerError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'RedisBrokerError';
}

/** What running a script needs of a node-redis client. */
export interface ScriptClient {
  sendCommand(args: string[]): Promise<unknown>;
}

type Reply = unknown;

// KEYS: meta hash, stream, and with an idempotency key its record (all three under the topic's
// hash tag, one slot). ARGV: channel, data, publisher (JSON text or ''), size, ttl, metaTtl, new
// epoch (used only if the topic has none), idempotency window in ms (with the record's key).
// Returns { offset, epoch, time }, or { 'dup', record } when the key's record exists: then the
// first publication is the answer and nothing is stored or published. The record is the
// publication line format (offset \n epoch \n time \n publisher \n data) and lives for the window.
// Checked and written in this one script, so of concurrent publishes with one key from any
// node, exactly one is published.
const PUBLISH_SCRIPT = `
if KEYS[3] then
  local first = redis.call('GET', KEYS[3])
  if first then return { 'dup', first } end
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[7]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('DEL', KEYS[2])
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local size = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'ttl', ttl)
local t = redis.call('TIME')
local now = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
if size > 0 and ttl > 0 then
  -- The offset is the entry id, so XRANGE can start right after a client's offset. MAXLEN is
  -- exact (not ~): history keeps exactly the last size publications, like the memory broker.
  redis.call('XADD', KEYS[2], 'MAXLEN', size, offset .. '-0', 'd', ARGV[2], 'p', ARGV[3], 't', now)
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  redis.call('DEL', KEYS[2])
end
redis.call('PEXPIRE', KEYS[1], math.max(ttl, tonumber(ARGV[6])))
local record = offset .. '\\n' .. epoch .. '\\n' .. now .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[2]
if KEYS[3] then redis.call('SET', KEYS[3], record, 'PX', ARGV[8]) end
redis.call('PUBLISH', ARGV[1], 'P\\n' .. record)
return { offset, epoch, now }
`;

// KEYS: meta hash, stream. ARGV: offset, wanted epoch ('' = any), new epoch, metaTtl.
// Returns { epoch, latest offset, ttl, now, entries } read in one atomic step.
const HISTORY_SCRIPT = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('DEL', KEYS[2])
end
local latest = redis.call('HGET', KEYS[1], 'offset') or '0'
local ttl = redis.call('HGET', KEYS[1], 'ttl') or '0'
local t = redis.call('TIME')
local now = tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local from = '-'
if ARGV[2] == '' or ARGV[2] == epoch then
  -- Nothing after an offset at or past the latest: answer from the meta alone, without touching
  -- the stream (the hub asks this way just to learn a topic's position). It also keeps offset + 1
  -- out of XRANGE when it would be too large for an entry id (Number.MAX_SAFE_INTEGER + 1 prints
  -- as 9.007199254741e+15 in Lua, an invalid id).
  if tonumber(ARGV[1]) >= tonumber(latest) then return { epoch, latest, ttl, now, {} } end
  from = string.format('%d', tonumber(ARGV[1]) + 1) .. '-0'
end
return { epoch, latest, ttl, now, redis.call('XRANGE', KEYS[2], from, '+') }
`;

// KEYS: presence hash, nodes zset. ARGV: channel. Returns the members (JSON) of live nodes;
// removes the others and announces their leaves (HDEL first, so a leave is announced once).
const PRESENCE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local alive = {}
local live = {}
for i = 1, #all, 2 do
  local json = all[i + 1]
  local ok, member = pcall(cjson.decode, json)
  local node = ok and type(member) == 'table' and member.node or ''
  local isAlive = alive[node]
  if isAlive == nil then
    local deadline = redis.call('ZSCORE', KEYS[2], node)
    isAlive = deadline ~= false and tonumber(deadline) > now
    alive[node] = isAlive
  end
  if isAlive then
    live[#live + 1] = json
  elseif redis.call('HDEL', KEYS[1], all[i]) == 1 then
    redis.call('PUBLISH', ARGV[1], 'L\\n' .. json)
  end
end
return live
`;

// KEYS: presence hash. ARGV: connId, channel. Removes the member and announces its leave, once.
const LEAVE_SCRIPT = `
local json = redis.call('HGET', KEYS[1], ARGV[1])
if json and redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], 'L\\n' .. json)
  return 1
end
return 0
`;

// KEYS: nodes zset. ARGV: node id, ttl. Sets the node's deadline to now + ttl (server clock);
// returns 1 if the node was absent (first start, or swept as dead while it was alive but stalled).
const REFRESH_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
`;

// KEYS: nodes zset. Removes and returns the nodes past their deadline (each one to one sweeper).
const SWEEP_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, node in ipairs(dead) do redis.call('ZREM', KEYS[1], node) end
return dead
`;

/** A Lua script run with EVALSHA, falling back to EVAL when Redis lost its script cache (restart). */
class Script {
  #sha: string | undefined;
  constructor(readonly source: string) {}

  async run(client: ScriptClient, keys: string[], args: string[]): Promise<Reply> {
    const tail = [String(keys.length), ...keys, ...args];
    if (this.#sha !== undefined) {
      try {
        return await client.sendCommand(['EVALSHA', this.#sha, ...tail]);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      }
    }
    // EVAL also caches the script server-side; SCRIPT LOAD just gives its sha for the next calls.
    const reply = await client.sendCommand(['EVAL', this.source, ...tail]);
    this.#sha = String(await client.sendCommand(['SCRIPT', 'LOAD', this.source]));
    return reply;
  }
}

/** The broker's scripts, each loaded once per Redis server (EVALSHA after the first EVAL). */
export const scripts = {
  publish: new Script(PUBLISH_SCRIPT),
  history: new Script(HISTORY_SCRIPT),
  presence: new Script(PRESENCE_SCRIPT),
  leave: new Script(LEAVE_SCRIPT),
  refresh: new Script(REFRESH_SCRIPT),
  sweep: new Script(SWEEP_SCRIPT),
};

function fail(what: string, reply: Reply): never {
  throw new RedisBrokerError(`redis broker: unexpected reply to ${what}: ${JSON.stringify(reply)?.slice(0, 200)}`);
}

export function asArray(what: string, reply: Reply): Reply[] {
  return Array.isArray(reply) ? (reply as Reply[]) : fail(what, reply);
}

export function asString(what: string, reply: Reply): string {
  if (typeof reply === 'string') return reply;
  if (typeof reply === 'number') return String(reply);
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  return fail(what, reply);
}

export function asNumber(what: string, reply: Reply): number {
  const n = Number(typeof reply === 'string' || typeof reply === 'number' ? reply : NaN);
  return Number.isFinite(n) ? n : fail(what, reply);
}
