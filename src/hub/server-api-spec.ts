/**
 * The server API's OpenAPI 3.1 document (served at `GET <prefix>openapi.json`): every method's
 * request and result schema, the error answers and their codes, the `apikey` security scheme.
 * Built from the same tables as the handler (`server-api-methods.ts`: the methods, the limits,
 * the error codes), as a TypeScript value rather than a JSON file, because the build (`tsc`)
 * copies no JSON into `dist/`. `test/hub/server-api.test.ts` checks it against real answers.
 */
import type { Json } from './broker.js';
import { packageVersion } from './control.js';
import { SERVER_API_ERRORS, SERVER_API_LIMITS, type ServerApiErrorCode, type ServerApiMethod } from './server-api-methods.js';
import { WIRE_LIMITS } from './wire.js';

/** A JSON object (an OpenAPI document, a schema). */
type JsonObject = { [key: string]: Json };

const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });
const object = (properties: JsonObject, required: string[] = [], extra: JsonObject = {}): JsonObject => ({ type: 'object', properties, ...(required.length > 0 ? { required } : {}), ...extra });
const integer = (minimum: number, description: string): JsonObject => ({ type: 'integer', minimum, description });
const text = (description: string): JsonObject => ({ type: 'string', description });

/** `user` or `conn_id`, exactly one. */
const TARGET_PROPERTIES: JsonObject = {
  user: { type: 'string', minLength: 1, maxLength: SERVER_API_LIMITS.maxTargetLength, description: 'Every connection of this user id, on every node.' },
  conn_id: { type: 'string', minLength: 1, maxLength: SERVER_API_LIMITS.maxTargetLength, description: 'One connection (a presence member\'s conn_id), on whichever node it is.' },
};
const EXACTLY_ONE_TARGET: Json = [{ required: ['user'] }, { required: ['conn_id'] }];

const SCHEMAS: JsonObject = {
  Json: { description: 'Any JSON value, nested at most 32 levels deep.' },
  Topic: {
    type: 'string',
    minLength: 1,
    maxLength: WIRE_LIMITS.maxTopicLength,
    // No control characters; not reserved (`$…` is the hub's own).
    pattern: '^(?!\\$)[^\\u0000-\\u001F\\u007F-\\u009F]+$',
    description: `A topic: 1-${WIRE_LIMITS.maxTopicLength} characters, no control characters, not starting with $ (reserved).`,
  },
  IdempotencyKey: {
    type: 'string',
    minLength: 1,
    maxLength: SERVER_API_LIMITS.maxIdempotencyKeyLength,
    description: 'A second publish with the same key to the same topic within 2 minutes, through any node, publishes nothing and answers the first one\'s offset and epoch.',
  },
  StreamPosition: object(
    { offset: integer(0, 'The offset of the last publication seen (0: before the first).'), epoch: { type: 'string', maxLength: WIRE_LIMITS.maxEpochLength, description: 'The epoch the offset belongs to.' } },
    ['offset', 'epoch'],
  ),
  Error: object({ error: ref('ErrorBody') }, ['error']),
  ErrorBody: object(
    {
      code: { type: 'string', enum: Object.keys(SERVER_API_ERRORS), description: 'Stable, for programs: branch on it.' },
      message: text('What was wrong, for people.'),
    },
    ['code', 'message'],
  ),

  PublishRequest: object({ topic: ref('Topic'), data: ref('Json'), idempotency_key: ref('IdempotencyKey') }, ['topic', 'data']),
  BroadcastRequest: object(
    {
      topics: { type: 'array', minItems: 1, maxItems: SERVER_API_LIMITS.maxBroadcastTopics, uniqueItems: true, items: ref('Topic') },
      data: ref('Json'),
      idempotency_key: ref('IdempotencyKey'),
    },
    ['topics', 'data'],
  ),
  TopicRequest: object({ topic: ref('Topic') }, ['topic']),
  HistoryRequest: object(
    {
      topic: ref('Topic'),
      since: { ...ref('StreamPosition'), description: 'Only publications after this position; in another epoch, every retained one (complete: false).' },
      limit: integer(0, 'At most this many (with reverse: the newest ones).'),
      reverse: { type: 'boolean', description: 'Newest first (default false).' },
    },
    ['topic'],
  ),
  DisconnectRequest: object(
    {
      ...TARGET_PROPERTIES,
      code: integer(1000, 'The close code: 1000, 1001, 1008 (the default: the hub\'s clients then do not reconnect) or 3000-4999.'),
      reason: text('The close reason, at most 123 bytes of UTF-8.'),
    },
    [],
    { oneOf: EXACTLY_ONE_TARGET },
  ),
  SubscriptionRequest: object({ ...TARGET_PROPERTIES, topic: ref('Topic') }, ['topic'], { oneOf: EXACTLY_ONE_TARGET }),
  TopicsRequest: object({ pattern: { type: 'string', minLength: 1, maxLength: WIRE_LIMITS.maxTopicLength, description: 'A glob: * any run of characters, ? one character.' } }),
  InfoRequest: object({}),

  PublishResult: object({ offset: integer(1, 'The publication\'s offset in its topic.'), epoch: text('The epoch the offset belongs to.') }, ['offset', 'epoch']),
  BroadcastPublished: object({ topic: ref('Topic'), offset: integer(1, 'The publication\'s offset in this topic.'), epoch: text('The epoch the offset belongs to.') }, ['topic', 'offset', 'epoch']),
  BroadcastFailed: object({ topic: ref('Topic'), error: ref('ErrorBody') }, ['topic', 'error']),
  BroadcastResult: object({ results: { type: 'array', items: { oneOf: [ref('BroadcastPublished'), ref('BroadcastFailed')] }, description: 'One per topic, in the order given.' } }, ['results']),
  PresenceMember: object(
    {
      conn_id: text('The connection\'s id.'),
      user_id: text('The user it authenticated as (absent: anonymous).'),
      info: { ...ref('Json'), description: 'The presence info of the connection, if any.' },
      node: text('The node the connection is on.'),
    },
    ['conn_id', 'node'],
  ),
  PresenceResult: object({ members: { type: 'array', items: ref('PresenceMember') } }, ['members']),
  PresenceStatsResult: object({ connections: integer(0, 'Connections in the topic\'s presence.'), users: integer(0, 'Distinct users among them.') }, ['connections', 'users']),
  HistoryPublication: object({ offset: integer(1, 'Its offset.'), data: ref('Json'), time: integer(0, 'When it was published, ms since 1970.') }, ['offset', 'data', 'time']),
  HistoryResult: object(
    {
      publications: { type: 'array', items: ref('HistoryPublication') },
      epoch: text('The topic\'s current epoch.'),
      offset: integer(0, 'The topic\'s latest offset.'),
      complete: { type: 'boolean', description: 'With since: false when publications after it are gone (another epoch, or trimmed).' },
    },
    ['publications', 'epoch', 'offset', 'complete'],
  ),
  EmptyResult: object({}, [], { description: 'Done: the broker carried the command to every node.' }),
  ActiveTopic: object({ topic: ref('Topic'), subscribers: integer(1, 'Its subscriptions, on the nodes that answered.') }, ['topic', 'subscribers']),
  TopicsResult: object(
    {
      topics: { type: 'array', items: ref('ActiveTopic') },
      nodes: integer(1, 'The nodes that answered.'),
      partial: { type: 'boolean', description: 'Some live node did not answer in time: counts may be short.' },
    },
    ['topics', 'nodes', 'partial'],
  ),
  NodeInfo: object(
    {
      id: text('The node\'s id.'),
      version: text('The duplex-ws version it runs.'),
      uptime: integer(0, 'Seconds since it started.'),
      connections: integer(0, 'Hub connections on it.'),
      users: integer(0, 'Distinct users among them.'),
      topics: integer(0, 'Topics with subscribers on it.'),
      broker: text('Its broker: memory, redis or nats.'),
    },
    ['id', 'version', 'uptime', 'connections', 'users', 'topics', 'broker'],
  ),
  InfoResult: object({ node: text('The node that answered.'), nodes: { type: 'array', items: ref('NodeInfo'), description: 'The live nodes, this one first.' }, version: text('The duplex-ws version of the node that answered.') }, ['node', 'nodes', 'version']),
};

/** Each method: what it does, its request schema, its result schema. */
const METHOD_DOCS: Record<ServerApiMethod, { summary: string; description: string; request: string; result: string }> = {
  publish: {
    summary: 'Publish to a topic',
    description: 'Publish data to a topic: every subscriber on every node receives it, and it is kept in the topic\'s history. With idempotency_key, a retry within 2 minutes publishes nothing and answers the same offset.',
    request: 'PublishRequest',
    result: 'PublishResult',
  },
  broadcast: {
    summary: 'Publish to many topics',
    description: `Publish the same data to 1-${SERVER_API_LIMITS.maxBroadcastTopics} topics. Every topic is checked first (one bad topic: 400, nothing published); a topic the broker could not take gets its own error in results, the others are published.`,
    request: 'BroadcastRequest',
    result: 'BroadcastResult',
  },
  presence: { summary: 'Who is in a topic', description: 'The connections in a topic\'s presence, across all nodes.', request: 'TopicRequest', result: 'PresenceResult' },
  presence_stats: { summary: 'How many are in a topic', description: 'How many connections, and distinct users, are in a topic\'s presence, across all nodes.', request: 'TopicRequest', result: 'PresenceStatsResult' },
  history: { summary: 'A topic\'s history', description: 'The retained publications of a topic, optionally after a position, limited, newest first.', request: 'HistoryRequest', result: 'HistoryResult' },
  disconnect: { summary: 'Close connections', description: 'Close every connection of a user, or one connection, on every node, with a close code and reason.', request: 'DisconnectRequest', result: 'EmptyResult' },
  subscribe: { summary: 'Subscribe connections', description: 'Subscribe every connection of a user (now connected), or one connection, to a topic, on every node: their clients then receive its messages.', request: 'SubscriptionRequest', result: 'EmptyResult' },
  unsubscribe: { summary: 'Unsubscribe connections', description: 'Unsubscribe every connection of a user, or one connection, from a topic, on every node.', request: 'SubscriptionRequest', result: 'EmptyResult' },
  topics: { summary: 'Active topics', description: 'The topics with subscribers on any node, with their subscriber counts; pattern keeps those matching a glob.', request: 'TopicsRequest', result: 'TopicsResult' },
  info: { summary: 'The cluster\'s nodes', description: 'The node that answered, the live nodes of the cluster, the version.', request: 'InfoRequest', result: 'InfoResult' },
};

/** The error answers, by the name under `components.responses`. */
const ERROR_RESPONSES: Record<ServerApiErrorCode, string> = {
  E_BAD_REQUEST: 'BadRequest',
  E_UNAUTHORIZED: 'Unauthorized',
  E_NOT_FOUND: 'NotFound',
  E_METHOD_NOT_ALLOWED: 'MethodNotAllowed',
  E_TOO_LARGE: 'TooLarge',
  E_UNSUPPORTED_MEDIA_TYPE: 'UnsupportedMediaType',
  E_INTERNAL: 'Internal',
  E_UNAVAILABLE: 'Unavailable',
};

function errorResponses(maxBodySize: number): JsonObject {
  const descriptions: Record<ServerApiErrorCode, string> = {
    E_BAD_REQUEST: 'E_BAD_REQUEST: invalid JSON, a body that is not an object or is nested too deep, a missing or mistyped field, an invalid or reserved topic, a close code a server may not send.',
    E_UNAUTHORIZED: 'E_UNAUTHORIZED: no Authorization: apikey <key> header, or a key that is not configured.',
    E_NOT_FOUND: 'E_NOT_FOUND: no such method, or the server API is off (no keys configured).',
    E_METHOD_NOT_ALLOWED: 'E_METHOD_NOT_ALLOWED: methods are POST only (the Allow header says so).',
    E_TOO_LARGE: `E_TOO_LARGE: the body is larger than ${maxBodySize} bytes.`,
    E_UNSUPPORTED_MEDIA_TYPE: 'E_UNSUPPORTED_MEDIA_TYPE: the body must be Content-Type: application/json (UTF-8).',
    E_INTERNAL: 'E_INTERNAL: something failed on the server (logged there).',
    E_UNAVAILABLE: 'E_UNAVAILABLE: the broker could not do it; retry later (with the same idempotency_key for a publish).',
  };
  const responses: JsonObject = {};
  for (const code of Object.keys(ERROR_RESPONSES) as ServerApiErrorCode[]) {
    const response: JsonObject = { description: descriptions[code], content: { 'application/json': { schema: ref('Error') } } };
    if (code === 'E_UNAUTHORIZED') response['headers'] = { 'WWW-Authenticate': { schema: { type: 'string', const: 'apikey' }, description: 'The scheme to authenticate with.' } };
    if (code === 'E_METHOD_NOT_ALLOWED') response['headers'] = { Allow: { schema: { type: 'string' }, description: 'The HTTP methods the path answers.' } };
    responses[ERROR_RESPONSES[code]] = response;
  }
  return responses;
}

const errorRef = (code: ServerApiErrorCode): JsonObject => ({ $ref: `#/components/responses/${ERROR_RESPONSES[code]}` });

/** What the document is built for: the handler's prefix and body limit. */
export interface ServerApiDocumentOptions {
  /** Where the API is mounted (default '/api/'): the document's server URL. */
  readonly prefix?: string;
  /** The body limit in bytes, as the 413 answer tells it (default 1 MiB). */
  readonly maxBodySize?: number;
}

/**
 * The OpenAPI 3.1 document of the server API mounted at `prefix`: what `GET <prefix>openapi.json`
 * serves. Paths are relative to its server URL (`/api` + `/publish`).
 */
export function serverApiDocument(options: ServerApiDocumentOptions = {}): { [key: string]: Json } {
  const prefix = options.prefix ?? '/api/';
  const maxBodySize = options.maxBodySize ?? 1024 * 1024;
  const paths: JsonObject = {};
  for (const [method, doc] of Object.entries(METHOD_DOCS)) {
    paths[`/${method}`] = {
      post: {
        operationId: method,
        summary: doc.summary,
        description: doc.description,
        requestBody: { required: true, content: { 'application/json': { schema: ref(doc.request) } } },
        responses: {
          '200': { description: 'Done.', content: { 'application/json': { schema: object({ result: ref(doc.result) }, ['result']) } } },
          '400': errorRef('E_BAD_REQUEST'),
          '401': errorRef('E_UNAUTHORIZED'),
          '404': errorRef('E_NOT_FOUND'),
          '405': errorRef('E_METHOD_NOT_ALLOWED'),
          '413': errorRef('E_TOO_LARGE'),
          '415': errorRef('E_UNSUPPORTED_MEDIA_TYPE'),
          '500': errorRef('E_INTERNAL'),
          '503': errorRef('E_UNAVAILABLE'),
        },
      },
    };
  }
  paths['/openapi.json'] = {
    get: {
      operationId: 'openapi',
      summary: 'This document',
      description: 'The OpenAPI document of the server API; no key needed.',
      security: [],
      responses: { '200': { description: 'The document.', content: { 'application/json': { schema: { type: 'object' } } } }, '404': errorRef('E_NOT_FOUND'), '405': errorRef('E_METHOD_NOT_ALLOWED') },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'duplex server API',
      version: packageVersion(),
      description:
        'Push to browsers from any backend: publish to topics, read presence and history, disconnect or subscribe users\' connections, on every node of the cluster. ' +
        'Every method is POST with a JSON body and answers {"result": ...} or {"error": {"code", "message"}}. Multiword fields are snake_case. Unknown fields are ignored; an optional field may be null. See docs/server-api.md.',
    },
    servers: [{ url: prefix.replace(/\/$/, '') || '/' }],
    security: [{ apikey: [] }],
    paths,
    components: {
      securitySchemes: {
        apikey: { type: 'http', scheme: 'apikey', description: 'Authorization: apikey <key>, one of the keys configured on the server (several may be, for rotation).' },
      },
      schemas: SCHEMAS,
      responses: errorResponses(maxBodySize),
    },
  };
}
