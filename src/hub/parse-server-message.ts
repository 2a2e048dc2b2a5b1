/**
 * Reading what a hub server sends, client side (the Node and browser hub clients): anything that
 * is not one of the protocol's messages, well formed, is dropped (undefined), never thrown.
 */
import type { Json, PresenceMember } from './broker.js';
import { isObject, own, type JsonObject, type RequestId, type RpcResult, type ServerMessage, type SubscribeResult, type WirePublication } from './wire.js';

function isRequestId(value: unknown): value is RequestId {
  return (typeof value === 'number' && Number.isSafeInteger(value)) || typeof value === 'string';
}

function readMember(value: unknown): PresenceMember | undefined {
  if (!isObject(value)) return undefined;
  const connId = own(value, 'connId');
  const node = own(value, 'node');
  const userId = own(value, 'userId');
  if (typeof connId !== 'string' || typeof node !== 'string' || (userId !== undefined && typeof userId !== 'string')) return undefined;
  const info = own(value, 'info') as Json | undefined;
  return { connId, node, ...(userId !== undefined ? { userId } : {}), ...(info !== undefined ? { info } : {}) };
}

/**
 * Parse one message from a server (client side). Returns undefined for anything that is not a
 * well-formed server message; a client ignores those rather than trusting them.
 */
export function parseServerMessage(text: string): ServerMessage | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(parsed)) return undefined;
  const type = own(parsed, 'type');
  switch (type) {
    case 'reply': {
      const id = own(parsed, 'id');
      const result = own(parsed, 'result');
      return isRequestId(id) && isObject(result) ? { type, id, result } : undefined;
    }
    case 'error': {
      const id = own(parsed, 'id');
      const code = own(parsed, 'code');
      const message = own(parsed, 'message');
      if (typeof code !== 'string' || typeof message !== 'string' || (id !== undefined && !isRequestId(id))) return undefined;
      return { type, id, code, message };
    }
    case 'message': {
      const topic = own(parsed, 'topic');
      const offset = own(parsed, 'offset');
      const epoch = own(parsed, 'epoch');
      if (typeof topic !== 'string' || typeof offset !== 'number' || typeof epoch !== 'string') return undefined;
      return { type, topic, offset, epoch, data: (own(parsed, 'data') ?? null) as Json };
    }
    case 'join':
    case 'leave': {
      const topic = own(parsed, 'topic');
      const member = readMember(own(parsed, 'member'));
      return typeof topic === 'string' && member ? { type, topic, member } : undefined;
    }
    case 'gap': {
      const topic = own(parsed, 'topic');
      const offset = own(parsed, 'offset');
      const epoch = own(parsed, 'epoch');
      const reason = own(parsed, 'reason');
      if (typeof topic !== 'string' || typeof offset !== 'number' || typeof epoch !== 'string') return undefined;
      return { type, topic, offset, epoch, reason: reason === 'epoch changed' ? reason : 'too old' };
    }
    case 'push':
      return { type, data: (own(parsed, 'data') ?? null) as Json };
    default:
      return undefined;
  }
}

/** Read a subscribe reply's result (client side); undefined if malformed. */
export function readSubscribeResult(result: JsonObject): SubscribeResult | undefined {
  const topic = own(result, 'topic');
  const epoch = own(result, 'epoch');
  const offset = own(result, 'offset');
  if (typeof topic !== 'string' || typeof epoch !== 'string' || typeof offset !== 'number') return undefined;
  const recovered = own(result, 'recovered');
  const reason = own(result, 'reason');
  const pubs = own(result, 'publications');
  const publications: WirePublication[] = [];
  if (Array.isArray(pubs)) {
    for (const p of pubs as unknown[]) {
      if (!isObject(p) || typeof own(p, 'offset') !== 'number') return undefined;
      publications.push({ offset: own(p, 'offset') as number, data: (own(p, 'data') ?? null) as Json });
    }
  }
  return {
    topic,
    epoch,
    offset,
    ...(typeof recovered === 'boolean' ? { recovered } : {}),
    publications,
    ...(reason === 'epoch changed' || reason === 'too old' ? { reason } : {}),
  };
}

/** Read a presence reply's members (client side). */
export function readPresenceResult(result: JsonObject): PresenceMember[] | undefined {
  const members = own(result, 'members');
  if (!Array.isArray(members)) return undefined;
  const out: PresenceMember[] = [];
  for (const m of members as unknown[]) {
    const member = readMember(m);
    if (!member) return undefined;
    out.push(member);
  }
  return out;
}

/**
 * Read an rpc reply's result (client side): the method's answer, `{"data": …}`. Undefined when
 * `data` is missing (a server of this protocol always sends it, `null` for "nothing").
 */
export function readRpcResult(result: JsonObject): RpcResult | undefined {
  const data = own(result, 'data');
  return data === undefined ? undefined : { data: data as Json };
}
