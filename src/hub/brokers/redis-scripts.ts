/**
 * The Redis broker's Lua scripts — each multi-key operation (publish with offset and stream
 * entry, history read, a presence join, leave or eviction, the liveness refresh, claim, status
 * and removal) runs atomically as one script — how they are run (EVALSHA, EVAL when the server
 * lost its script cache), and the readers of their replies, which throw `RedisBrokerError` on a
 * reply the broker did not expect.
 *
 * Redis Cluster runs a script only if every key it touches, and every sharded channel it
 * SPUBLISHes to, lives in one hash slot on that node ("Script attempted to access a non local
 * key"). So each script here touches one slot: a topic's scripts its keys and channel (all under
 * the topic's `{hash tag}`), the liveness scripts the nodes sorted set and the incarnation hash
 * (one hash tag). What must span both — presence against node liveness — is two calls, made safe
 * by incarnations (see redis-presence.ts).
 */
import { createHash } from 'node:crypto';

import { BrokerError } from './shared.js';

/** A Redis command failed or replied with something the broker did not expect. */
export class RedisBrokerError extends BrokerError {
  /** Always `'RedisBrokerError'` (an own property, so it survives minification and crosses realms). */
  override readonly name = 'RedisBrokerError';
}

/** What running a script needs: a command sent to the server that holds `key` (its hash slot's master in a cluster). */
export interface ScriptClient {
  call(key: string, args: string[]): Promise<unknown>;
}

type Reply = unknown;

// Every script that announces something gets the publish command as an argument: PUBLISH on a
// single Redis (and on a cluster without sharded pub/sub), SPUBLISH on a cluster that has it.

// KEYS: meta hash, stream, and with an idempotency key its record (all three under the topic's
// hash tag, one slot). ARGV: channel, data, publisher (JSON text or ''), size, ttl, metaTtl, new
// epoch (used only if the topic has none), idempotency window in ms (with the record's key),
// publish command. Returns { offset, epoch, time }, or { 'dup', record } when the key's record
// exists: then the first publication is the answer and nothing is stored or published. The
// record is the publication line format (offset \n epoch \n time \n publisher \n data) and lives
// for the window. Checked and written in this one script, so of concurrent publishes with one
// key from any node, exactly one is published.
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
redis.call(ARGV[9], ARGV[1], 'P\\n' .. record)
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

// KEYS: presence hash. Returns its fields and values as one flat list (a script, so the reply has
// one shape whatever the protocol version: RESP3 would answer HGETALL with a map).
const MEMBERS_SCRIPT = `return redis.call('HGETALL', KEYS[1])`;

// KEYS: presence hash. ARGV: connId, stored member, channel, publish command. Stores the member
// and announces its join in one step, so no node sees the join before presence() lists it.
const JOIN_SCRIPT = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call(ARGV[4], ARGV[3], 'J\\n' .. ARGV[2])
return 1
`;

// KEYS: presence hash. ARGV: connId, channel, publish command. Removes the member and announces
// its leave, once.
const LEAVE_SCRIPT = `
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored and redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call(ARGV[3], ARGV[2], 'L\\n' .. stored)
  return 1
end
return 0
`;

// KEYS: presence hash. ARGV: channel, publish command, then pairs of connId and the stored member
// read earlier. Removes each member whose entry is still exactly that (compare and delete: a
// member written again since — by a node that came back under a new incarnation — stays) and
// announces its leave. Returns how many were removed.
const EVICT_SCRIPT = `
local removed = 0
for i = 3, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call(ARGV[2], ARGV[1], 'L\\n' .. ARGV[i + 1])
    removed = removed + 1
  end
end
return removed
`;

// KEYS: nodes sorted set (scored with each node's deadline), incarnation hash (same slot).
// ARGV: node id, ttl, a new incarnation, '1' to take it in any case (a node starting). Sets the
// node's deadline to now + ttl (server clock). If the node was absent or already past its
// deadline — others may be removing its members right now — or is starting, it takes the new
// incarnation and the reply is { 1, the previous incarnation if nobody claimed it ('' if
// somebody did) }; else { 0, '' }.
const REFRESH_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if ARGV[4] ~= '1' and old and tonumber(old) > now then return { 0, '' } end
local previous = redis.call('HGET', KEYS[2], ARGV[1]) or ''
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return { 1, previous }
`;

// KEYS: nodes sorted set, incarnation hash. Removes the nodes past their deadline and returns
// them, each with its incarnation ('' if unknown), as a flat list: each dead node goes to exactly
// one claimer, which removes what it left behind.
const CLAIM_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
local claimed = {}
for _, node in ipairs(dead) do
  redis.call('ZREM', KEYS[1], node)
  claimed[#claimed + 1] = node
  claimed[#claimed + 1] = redis.call('HGET', KEYS[2], node) or ''
  redis.call('HDEL', KEYS[2], node)
end
return claimed
`;

// KEYS: nodes sorted set. ARGV: node ids. Returns 1 for each node alive now (deadline in the
// future, server clock), 0 for each dead or unknown one. Reads only.
const STATUS_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local alive = {}
for i = 1, #ARGV do
  local deadline = redis.call('ZSCORE', KEYS[1], ARGV[i])
  alive[i] = (deadline and tonumber(deadline) > now) and 1 or 0
end
return alive
`;

// KEYS: nodes sorted set, incarnation hash. ARGV: node id. The node leaves the cluster (close()).
const FORGET_SCRIPT = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`;

/**
 * A Lua script run with EVALSHA, falling back to EVAL when the server does not have it (a
 * restart, a failover to a replica that never ran it, another master of a cluster). EVAL caches
 * the script on that server, so the next EVALSHA there succeeds. The SHA1 is computed here, not
 * asked of a server with SCRIPT LOAD: on a cluster SCRIPT LOAD goes to every node, and one node
 * down would fail a publish that had already been made.
 */
class Script {
  readonly #sha: string;
  constructor(readonly source: string) {
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: ScriptClient, keys: readonly string[], args: readonly string[]): Promise<Reply> {
    const tail = [String(keys.length), ...keys, ...args];
    const route = keys[0]!;
    try {
      return await client.call(route, ['EVALSHA', this.#sha, ...tail]);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    }
    return client.call(route, ['EVAL', this.source, ...tail]);
  }
}

/** The broker's scripts, each loaded once per Redis server (EVALSHA after the first EVAL there). */
export const scripts = {
  publish: new Script(PUBLISH_SCRIPT),
  history: new Script(HISTORY_SCRIPT),
  members: new Script(MEMBERS_SCRIPT),
  join: new Script(JOIN_SCRIPT),
  leave: new Script(LEAVE_SCRIPT),
  evict: new Script(EVICT_SCRIPT),
  refresh: new Script(REFRESH_SCRIPT),
  claim: new Script(CLAIM_SCRIPT),
  status: new Script(STATUS_SCRIPT),
  forget: new Script(FORGET_SCRIPT),
};

function fail(what: string, reply: Reply): never {
  throw new RedisBrokerError(`redis broker: unexpected reply to ${what}: ${JSON.stringify(reply)?.slice(0, 200)}`);
}

/** The reply as an array, or a `RedisBrokerError` naming `what`. */
export function asArray(what: string, reply: Reply): Reply[] {
  return Array.isArray(reply) ? (reply as Reply[]) : fail(what, reply);
}

/** The reply as text (a bulk string, a number, a Buffer), or a `RedisBrokerError` naming `what`. */
export function asString(what: string, reply: Reply): string {
  if (typeof reply === 'string') return reply;
  if (typeof reply === 'number') return String(reply);
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  return fail(what, reply);
}

/** The reply as a finite number, or a `RedisBrokerError` naming `what`. */
export function asNumber(what: string, reply: Reply): number {
  const n = Number(typeof reply === 'string' || typeof reply === 'number' ? reply : NaN);
  return Number.isFinite(n) ? n : fail(what, reply);
}
