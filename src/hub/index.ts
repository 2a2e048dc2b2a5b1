/**
 * The real-time hub: topics, presence, history with recovery, and the brokers that join nodes.
 * @packageDocumentation
 * @module duplex-ws/hub
 */
export type {
  Broker,
  BrokerNode,
  BrokerState,
  HistoryOptions,
  HistorySlice,
  Json,
  PresenceEvent,
  PresenceMember,
  Publication,
} from './broker.js';
export { MemoryBroker } from './brokers/memory.js';
export {
  Hub,
  HubError,
  DEFAULT_HISTORY,
  type HubOptions,
  type HubAuthOptions,
  type HubAuthorize,
  type HubContext,
  type HubSocketData,
  type HubStats,
  type HubConnectHook,
  type HubConnectRequest,
  type HubConnectAnswer,
  type HubRpcHandler,
  type HubRpcFallback,
  type HubPublishRewrite,
  type HubHistory,
  type HubHistoryEntry,
  type HubHistoryQuery,
  type HubPresenceStats,
  type HubTopics,
  type ActiveTopic,
  type ConnectionTarget,
  type NodeInfo,
} from './hub.js';
export { AuthError, createJwtVerifier, tokenFromRequest, type HubIdentity, type JwtOptions, type TokenVerifier } from './auth.js';
export { createBackendHooks, BACKEND_HOOK_DEFAULTS, type BackendHooks, type BackendHooksOptions, type BackendHookConfig } from './backend-hooks.js';
export { HubClientError } from './client-errors.js';
export { DuplexError } from '../protocol/errors.js';
export {
  HubClient,
  type HubClientOptions,
  type HubClientState,
  type HubClientEvents,
  type HubMessageMeta,
  type MessageListener,
  type GapInfo,
} from './client.js';
export {
  PROTOCOL_VERSION,
  WIRE_LIMITS,
  RESERVED_PREFIX,
  CLIENT_TYPES,
  type ClientRequest,
  type ServerMessage,
  type HubErrorCode,
  type RequestId,
  type StreamPosition,
  type SubscribeResult,
  type PublishResult,
  type ConnectResult,
  type GapReason,
  type WirePublication,
  type ConnectRequest,
  type SubscribeRequest,
  type UnsubscribeRequest,
  type PublishRequest,
  type PresenceRequest,
  type PingRequest,
  type RpcRequest,
  type RpcResult,
} from './wire.js';
export { parseClientRequest, type WireError, type ParseResult, type ParseOptions } from './parse-request.js';
export { parseServerMessage } from './parse-server-message.js';
export type { ClientState, HubTransport } from './client-core.js';
export { createServerApi, serverApiDocument, SERVER_API_DEFAULTS, SERVER_API_ERRORS, SERVER_API_LIMITS, SERVER_API_METHODS, type ServerApiDocumentOptions, type ServerApiErrorCode, type ServerApiHandler, type ServerApiHub, type ServerApiMethod, type ServerApiOptions } from './server-api.js';
