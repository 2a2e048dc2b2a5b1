/**
 * The server API's methods (`server-api.ts` carries them over HTTP): the names, the limits, the
 * error codes and their HTTP statuses, and for each method the reading of its JSON body and the
 * hub call behind it. Field names on the wire are snake_case (`idempotency_key`, `conn_id`), as
 * Centrifugo's server API has them, so a Python or Go backend writes them as its own.
 *
 * Bodies are read field by field, as the hub reads what a client sends (`parse-request.ts`):
 * the body is `unknown` until proven otherwise. Unknown fields are ignored (an older server
 * accepts a newer backend's calls); an optional field may be absent or `null`.
 */
import type { HubIdentity } from './auth.js';
import type { Json, PresenceMember, Publication } from './broker.js';
import { packageVersion, type ConnectionTarget } from './control.js';
import { HubError, errorMessage } from './errors.js';
import { globMatch } from './glob.js';
import type { Hub } from './hub.js';
import type { Logger, LogFields } from '../node/logger.js';
import { topicProblem } from './parse-request.js';
import { RESERVED_PREFIX, WIRE_LIMITS, isObject, own, type JsonObject } from './wire.js';

/** The server API's methods, each at `POST <prefix><method>` (`/api/publish` …). */
export const SERVER_API_METHODS = ['publish', 'broadcast', 'presence', 'presence_stats', 'history', 'disconnect', 'subscribe', 'unsubscribe', 'topics', 'info'] as const;

/** A method of the server API (`SERVER_API_METHODS`). */
export type ServerApiMethod = (typeof SERVER_API_METHODS)[number];

/** Limits of the server API's bodies, besides the body size (`ServerApiOptions.maxBodySize`). */
export const SERVER_API_LIMITS = {
  /** Topics in one `broadcast`: a bound on the work one call asks of the broker. */
  maxBroadcastTopics: 1000,
  /** Publishes of one `broadcast` in flight at once, so 1000 topics do not queue 1000 broker calls at once. */
  broadcastConcurrency: 64,
  /** Longest `idempotency_key`, in UTF-16 code units: the broker keeps it for the idempotency window. */
  maxIdempotencyKeyLength: 256,
  /** Longest `user` or `conn_id` of a target, in UTF-16 code units. */
  maxTargetLength: 1024,
} as const;

/**
 * The error codes the server API answers with, and the HTTP status of each. The codes are the
 * hub protocol's (`HubErrorCode`) where one fits, and HTTP's names for the two only HTTP has.
 */
export const SERVER_API_ERRORS = {
  /** A field is missing, of the wrong type, or out of range; invalid JSON; an invalid or reserved topic. */
  E_BAD_REQUEST: 400,
  /** No `Authorization: apikey <key>` header, or a key that is not configured. */
  E_UNAUTHORIZED: 401,
  /** No such method (or the server API is off: no keys configured). */
  E_NOT_FOUND: 404,
  /** The path exists, the HTTP method does not (the `Allow` header lists those that do). */
  E_METHOD_NOT_ALLOWED: 405,
  /** The body is larger than `maxBodySize`. */
  E_TOO_LARGE: 413,
  /** The body is not `Content-Type: application/json` (UTF-8). */
  E_UNSUPPORTED_MEDIA_TYPE: 415,
  /** Something failed on the server; logged there. */
  E_INTERNAL: 500,
  /** The broker could not do it (down, or it failed): retry later. */
  E_UNAVAILABLE: 503,
} as const;

/** An error code of the server API (`SERVER_API_ERRORS`). */
export type ServerApiErrorCode = keyof typeof SERVER_API_ERRORS;

/** What the server API needs of a hub: the server-side calls of `Hub`. Any `Hub` is one. */
export type ServerApiHub = Pick<
  Hub<HubIdentity>,
  'nodeId' | 'publish' | 'presence' | 'presenceStats' | 'history' | 'disconnect' | 'subscribeConnections' | 'unsubscribeConnections' | 'topics' | 'nodes'
>;

/** Why a call failed, as the API answers it; `detail` (for the log only) when it failed on this side. */
export interface ApiFailure {
  /** The code answered. */
  readonly code: ServerApiErrorCode;
  /** The message answered. */
  readonly message: string;
  /** What really failed, for the log line, when the answer hides it (E_INTERNAL, E_UNAVAILABLE). */
  readonly detail?: string;
}

/** Where a method writes the log line of a partial failure (a broadcast with failed topics). */
export interface CallContext {
  /** The API's logger. */
  readonly logger: Logger;
  /** The fields of the call's log lines (method, remote address). */
  readonly fields: LogFields;
}

/**
 * A rejection of a hub call, as the API answers it. A `HubError` keeps its code (the hub refuses
 * bad input with E_BAD_REQUEST) when the API has that code. A built-in programming error
 * (`TypeError`…) is a bug here: E_INTERNAL. Anything else came from the broker, the only other
 * thing a server-side hub call waits on (the brokers reject with their own errors, and Redis's
 * and NATS's client libraries with theirs): E_UNAVAILABLE, so the caller retries.
 */
export function failureOf(error: unknown): ApiFailure {
  if (error instanceof HubError) {
    const code = error.code;
    if (code === 'E_INTERNAL' || !Object.hasOwn(SERVER_API_ERRORS, code)) return { code: 'E_INTERNAL', message: 'internal error', detail: `${code}: ${error.message}` };
    return code === 'E_UNAVAILABLE' ? { code, message: error.message, detail: error.message } : { code: code as ServerApiErrorCode, message: error.message };
  }
  if (error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError || error instanceof SyntaxError) {
    return { code: 'E_INTERNAL', message: 'internal error', detail: errorMessage(error) };
  }
  return { code: 'E_UNAVAILABLE', message: 'the broker is not available; retry', detail: errorMessage(error) };
}

// ---- reading fields -------------------------------------------------------------------------------

function bad(message: string): never {
  throw new HubError('E_BAD_REQUEST', message);
}

/** A field, with `null` read as absent. */
function optional(body: JsonObject, key: string): unknown {
  const value = own(body, key);
  return value === null ? undefined : value;
}

/** A topic a backend may publish to or ask about: as a client's (1–256 characters, no control characters), not reserved. */
function topicOf(value: unknown, name: string): string {
  const problem = topicProblem(value);
  if (problem !== undefined) bad(problem.replace(/^topic/, name));
  const topic = value as string;
  if (topic.startsWith(RESERVED_PREFIX)) bad(`${name} ${JSON.stringify(topic)} is reserved (topics starting with ${RESERVED_PREFIX} are the hub's own)`);
  return topic;
}

function boundedString(value: unknown, name: string, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) bad(`${name} must be a string of 1-${max} characters`);
  return value;
}

function optionalInteger(body: JsonObject, key: string, min: number): number | undefined {
  const value = optional(body, key);
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) bad(`${key} must be an integer of at least ${min}`);
  return value;
}

function optionalBoolean(body: JsonObject, key: string): boolean | undefined {
  const value = optional(body, key);
  if (value !== undefined && typeof value !== 'boolean') bad(`${key} must be true or false`);
  return value;
}

/** `data`: required (any JSON, `null` included); its depth was bounded with the whole body's. */
function dataOf(body: JsonObject): Json {
  if (!Object.hasOwn(body, 'data')) bad('data is required (any JSON value)');
  // JSON.parse only produces JSON values.
  return body['data'] as Json;
}

function idempotencyKeyOf(body: JsonObject): string | undefined {
  const value = optional(body, 'idempotency_key');
  return value === undefined ? undefined : boundedString(value, 'idempotency_key', SERVER_API_LIMITS.maxIdempotencyKeyLength);
}

/** `user` or `conn_id`, exactly one: whose connections a command is for. */
function targetOf(body: JsonObject): ConnectionTarget {
  const user = optional(body, 'user');
  const connId = optional(body, 'conn_id');
  if ((user === undefined) === (connId === undefined)) bad('give exactly one of user (every connection of a user) and conn_id (one connection)');
  const max = SERVER_API_LIMITS.maxTargetLength;
  return user !== undefined ? { user: boundedString(user, 'user', max) } : { connId: boundedString(connId, 'conn_id', max) };
}

// ---- the methods ----------------------------------------------------------------------------------

/** A method: its body read and checked, the hub called, the result as it goes on the wire. */
type Method = (hub: ServerApiHub, body: JsonObject, context: CallContext) => Promise<Json>;

function position(publication: Publication): Json {
  return { offset: publication.offset, epoch: publication.epoch };
}

function member(m: PresenceMember): Json {
  const out: { [key: string]: Json } = { conn_id: m.connId };
  if (m.userId !== undefined) out['user_id'] = m.userId;
  if (m.info !== undefined) out['info'] = m.info;
  out['node'] = m.node;
  return out;
}

/** `items` through `run`, at most `limit` at a time, results in order. `run` must not reject. */
async function mapBounded<T, R>(items: readonly T[], limit: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await run(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const METHODS: Record<ServerApiMethod, Method> = {
  async publish(hub, body) {
    const topic = topicOf(own(body, 'topic'), 'topic');
    const data = dataOf(body);
    const idempotencyKey = idempotencyKeyOf(body);
    return position(await hub.publish(topic, data, idempotencyKey === undefined ? {} : { idempotencyKey }));
  },

  async broadcast(hub, body, context) {
    const list = own(body, 'topics');
    const max = SERVER_API_LIMITS.maxBroadcastTopics;
    if (!Array.isArray(list) || list.length === 0 || list.length > max) bad(`topics must be an array of 1-${max} topics`);
    // Every topic is checked before anything is published: a typo publishes nothing.
    const seen = new Set<string>();
    const topics = list.map((value: unknown, index) => {
      const topic = topicOf(value, `topics[${index}]`);
      if (seen.has(topic)) bad(`topics[${index}] repeats ${JSON.stringify(topic)}`);
      seen.add(topic);
      return topic;
    });
    const data = dataOf(body);
    const idempotencyKey = idempotencyKeyOf(body);
    const options = idempotencyKey === undefined ? {} : { idempotencyKey };
    let failed = 0;
    let firstDetail: string | undefined;
    const results = await mapBounded(topics, SERVER_API_LIMITS.broadcastConcurrency, async (topic): Promise<Json> => {
      try {
        const publication = await hub.publish(topic, data, options);
        return { topic, offset: publication.offset, epoch: publication.epoch };
      } catch (error) {
        const failure = failureOf(error);
        failed++;
        firstDetail ??= failure.detail ?? failure.message;
        return { topic, error: { code: failure.code, message: failure.message } };
      }
    });
    if (failed > 0) context.logger.error({ ...context.fields, failed, topics: topics.length, err: firstDetail }, 'server API broadcast: some topics failed');
    return { results };
  },

  async presence(hub, body) {
    const topic = topicOf(own(body, 'topic'), 'topic');
    return { members: (await hub.presence(topic)).map(member) };
  },

  async presence_stats(hub, body) {
    const topic = topicOf(own(body, 'topic'), 'topic');
    const { connections, users } = await hub.presenceStats(topic);
    return { connections, users };
  },

  async history(hub, body) {
    const topic = topicOf(own(body, 'topic'), 'topic');
    const sinceValue = optional(body, 'since');
    let since: { offset: number; epoch: string } | undefined;
    if (sinceValue !== undefined) {
      if (!isObject(sinceValue)) bad('since must be an object {offset, epoch}');
      const offset = own(sinceValue, 'offset');
      const epoch = own(sinceValue, 'epoch');
      if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) bad('since.offset must be a non-negative integer');
      if (typeof epoch !== 'string' || epoch.length > WIRE_LIMITS.maxEpochLength) bad(`since.epoch must be a string of at most ${WIRE_LIMITS.maxEpochLength} characters`);
      since = { offset, epoch };
    }
    const limit = optionalInteger(body, 'limit', 0);
    const reverse = optionalBoolean(body, 'reverse');
    const history = await hub.history(topic, { since, limit, reverse });
    return {
      publications: history.publications.map((p) => ({ offset: p.offset, data: p.data, time: p.time })),
      epoch: history.epoch,
      offset: history.offset,
      complete: history.complete,
    };
  },

  async disconnect(hub, body) {
    const target = targetOf(body);
    const code = optionalInteger(body, 'code', 0);
    const reason = optional(body, 'reason');
    if (reason !== undefined && typeof reason !== 'string') bad('reason must be a string');
    // The hub checks the code (1000, 1001, 1008, 3000-4999) and the reason's length.
    await hub.disconnect(target, code, reason);
    return {};
  },

  async subscribe(hub, body) {
    const target = targetOf(body);
    await hub.subscribeConnections(target, topicOf(own(body, 'topic'), 'topic'));
    return {};
  },

  async unsubscribe(hub, body) {
    const target = targetOf(body);
    await hub.unsubscribeConnections(target, topicOf(own(body, 'topic'), 'topic'));
    return {};
  },

  async topics(hub, body) {
    const value = optional(body, 'pattern');
    const pattern = value === undefined ? undefined : boundedString(value, 'pattern', WIRE_LIMITS.maxTopicLength);
    // Filtered here with a linear-time glob (glob.ts), not by `hub.topics(pattern)`.
    const { topics, nodes, partial } = await hub.topics();
    const kept = pattern === undefined ? topics : topics.filter((t) => globMatch(pattern, t.topic));
    return { topics: kept.map((t) => ({ topic: t.topic, subscribers: t.subscribers })), nodes, partial };
  },

  async info(hub) {
    const nodes = hub.nodes().map((n) => ({
      id: n.id,
      version: n.version,
      uptime: n.uptime,
      connections: n.connections,
      users: n.users,
      topics: n.topics,
      broker: n.broker,
    }));
    return { node: hub.nodeId, nodes, version: packageVersion() };
  },
};

/** Whether `name` is a method of the server API. */
export function isServerApiMethod(name: string): name is ServerApiMethod {
  return Object.hasOwn(METHODS, name);
}

/**
 * Call `method` with a parsed JSON body: its result as it goes on the wire. Rejects with a
 * `HubError` E_BAD_REQUEST for a body that is not an object or has a bad field, and with
 * whatever the hub call rejected with (see `failureOf`).
 */
export async function callMethod(hub: ServerApiHub, method: ServerApiMethod, body: unknown, context: CallContext): Promise<Json> {
  if (!isObject(body)) bad('the body must be a JSON object');
  return METHODS[method](hub, body, context);
}
