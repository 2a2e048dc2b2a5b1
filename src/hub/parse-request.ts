/**
 * Validating what a client sends, server side (the hub's session): every field by hand, because
 * input from the network is `unknown` until proven otherwise. Never throws.
 */
import type { Json } from './broker.js';
import { CLIENT_TYPES, WIRE_LIMITS, isObject, own, type ClientRequest, type HubErrorCode, type JsonObject, type RequestId } from './wire.js';

/** Why a validation failed, with the id of the request when it could be read. */
export interface WireError {
  /** What was wrong, for programs: `E_BAD_REQUEST` or `E_UNKNOWN_TYPE`. */
  readonly code: HubErrorCode;
  /** What was wrong, for people; sent to the client as is. */
  readonly message: string;
  /** The request's id, to answer it with; undefined when the id itself was missing or unreadable. */
  readonly id?: RequestId | undefined;
}

/** The outcome of validating one inbound message. */
export type ParseResult<T> =
  | {
      /** The message is valid. */
      readonly ok: true;
      /** What it says, with only the known fields. */
      readonly value: T;
    }
  | {
      /** The message is invalid: answer it with `error`. */
      readonly ok: false;
      /** What was wrong, and the id to answer to. */
      readonly error: WireError;
    };

/** Options of `parseClientRequest`. */
export interface ParseOptions {
  /** Longest topic name accepted, in UTF-16 code units (default `WIRE_LIMITS.maxTopicLength`, 256). */
  maxTopicLength?: number;
  /** Deepest nesting of a publication's `data` accepted (default `WIRE_LIMITS.maxDataDepth`, 32). */
  maxDataDepth?: number;
}

function fail<T>(code: HubErrorCode, message: string, id?: RequestId): ParseResult<T> {
  return { ok: false, error: { code, message, id } };
}

/** Whether a string holds a C0/C1 control character or DEL (never valid in a topic name). */
function hasControlChars(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/**
 * Why `topic` is not an acceptable topic name for a client, or undefined if it is. Reserved
 * (`$…`) names are refused separately, as E_FORBIDDEN, by the hub.
 */
export function topicProblem(topic: unknown, maxLength: number = WIRE_LIMITS.maxTopicLength): string | undefined {
  if (typeof topic !== 'string') return 'topic must be a string';
  if (topic.length === 0) return 'topic must not be empty';
  if (topic.length > maxLength) return `topic is longer than ${maxLength} characters`;
  if (hasControlChars(topic)) return 'topic must not contain control characters';
  return undefined;
}

/**
 * The nesting depth of a parsed JSON value, walked with an explicit stack (a recursive walk
 * of hostile input could overflow the call stack). Stops as soon as it passes `limit`.
 */
export function jsonDepthExceeds(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > limit) return true;
    const children = Array.isArray(node) ? node : Object.values(node as JsonObject);
    for (const child of children) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

function readId(message: JsonObject): ParseResult<RequestId | undefined> {
  const id = own(message, 'id');
  if (id === undefined) return { ok: true, value: undefined };
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return { ok: true, value: id };
  if (typeof id === 'string' && id.length > 0 && id.length <= WIRE_LIMITS.maxIdLength) return { ok: true, value: id };
  return fail('E_BAD_REQUEST', `id must be a non-negative integer or a string of 1-${WIRE_LIMITS.maxIdLength} characters`);
}

/**
 * Validate one text message from a client. Never throws: invalid JSON, a non-object, an
 * unknown `type`, a missing or mistyped field, a bad topic name or over-deep `data` all come
 * back as a `WireError` (with the request's id when it was readable). Unknown extra fields are
 * ignored (forward compatibility); only known fields are read.
 */
export function parseClientRequest(text: string, options: ParseOptions = {}): ParseResult<ClientRequest> {
  const maxTopic = options.maxTopicLength ?? WIRE_LIMITS.maxTopicLength;
  const maxDepth = options.maxDataDepth ?? WIRE_LIMITS.maxDataDepth;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail('E_BAD_REQUEST', 'message is not valid JSON');
  }
  if (!isObject(parsed)) return fail('E_BAD_REQUEST', 'message must be a JSON object');
  const idResult = readId(parsed);
  if (!idResult.ok) return idResult;
  const id = idResult.value;
  const type = own(parsed, 'type');
  if (typeof type !== 'string') return fail('E_BAD_REQUEST', 'type must be a string', id);
  const topicOf = (): ParseResult<string> => {
    const topic = own(parsed, 'topic');
    const problem = topicProblem(topic, maxTopic);
    return problem === undefined ? { ok: true, value: topic as string } : fail('E_BAD_REQUEST', problem, id);
  };
  switch (type) {
    case 'connect': {
      const token = own(parsed, 'token');
      if (token !== undefined && (typeof token !== 'string' || token.length > WIRE_LIMITS.maxTokenLength)) {
        return fail('E_BAD_REQUEST', `token must be a string of at most ${WIRE_LIMITS.maxTokenLength} characters`, id);
      }
      const data = own(parsed, 'data');
      if (jsonDepthExceeds(data, maxDepth)) return fail('E_BAD_REQUEST', `data is nested deeper than ${maxDepth} levels`, id);
      return { ok: true, value: { type, id, token, ...(data !== undefined ? { data: data as Json } : {}) } };
    }
    case 'rpc': {
      if (id === undefined) return fail('E_BAD_REQUEST', 'rpc needs an id (its answer comes in the reply)');
      const method = own(parsed, 'method');
      if (typeof method !== 'string' || method.length === 0 || method.length > WIRE_LIMITS.maxMethodLength || hasControlChars(method)) {
        return fail('E_BAD_REQUEST', `method must be a string of 1-${WIRE_LIMITS.maxMethodLength} characters without control characters`, id);
      }
      const params = own(parsed, 'params');
      if (jsonDepthExceeds(params, maxDepth)) return fail('E_BAD_REQUEST', `params are nested deeper than ${maxDepth} levels`, id);
      return { ok: true, value: { type, id, method, ...(params !== undefined ? { params: params as Json } : {}) } };
    }
    case 'subscribe': {
      const topic = topicOf();
      if (!topic.ok) return topic;
      const recover = own(parsed, 'recover');
      if (recover === undefined || recover === null) return { ok: true, value: { type, id, topic: topic.value } };
      if (!isObject(recover)) return fail('E_BAD_REQUEST', 'recover must be an object {offset, epoch}', id);
      const offset = own(recover, 'offset');
      const epoch = own(recover, 'epoch');
      if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
        return fail('E_BAD_REQUEST', 'recover.offset must be a non-negative integer', id);
      }
      if (typeof epoch !== 'string' || epoch.length > WIRE_LIMITS.maxEpochLength) {
        return fail('E_BAD_REQUEST', `recover.epoch must be a string of at most ${WIRE_LIMITS.maxEpochLength} characters`, id);
      }
      return { ok: true, value: { type, id, topic: topic.value, recover: { offset, epoch } } };
    }
    case 'unsubscribe':
    case 'presence': {
      const topic = topicOf();
      if (!topic.ok) return topic;
      return { ok: true, value: { type, id, topic: topic.value } };
    }
    case 'publish': {
      const topic = topicOf();
      if (!topic.ok) return topic;
      if (!Object.prototype.hasOwnProperty.call(parsed, 'data')) return fail('E_BAD_REQUEST', 'publish needs data', id);
      const data = parsed['data'];
      if (jsonDepthExceeds(data, maxDepth)) return fail('E_BAD_REQUEST', `data is nested deeper than ${maxDepth} levels`, id);
      const excludeSelf = own(parsed, 'excludeSelf');
      if (excludeSelf !== undefined && typeof excludeSelf !== 'boolean') return fail('E_BAD_REQUEST', 'excludeSelf must be a boolean', id);
      // JSON.parse only produces JSON values, so `data` is Json once it is known to be present.
      return { ok: true, value: { type, id, topic: topic.value, data: data as Json, excludeSelf } };
    }
    case 'ping':
      return { ok: true, value: { type, id } };
    default:
      return fail('E_UNKNOWN_TYPE', `unknown message type ${JSON.stringify(type.slice(0, 32))} (expected one of ${CLIENT_TYPES.join(', ')})`, id);
  }
}
