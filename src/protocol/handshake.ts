/**
 * The opening handshake of RFC 6455 §4, for both ends, as pure functions: they read and write
 * header records and HTTP text, and never touch a socket. The server's side is
 * `handshake-server.ts`, the client's `handshake-client.ts`, what both use `handshake-common.ts`.
 *
 * Server: {@link validateRequest} → {@link selectSubprotocol} → {@link buildAcceptResponse}, or
 * {@link buildRejectResponse} with the status and headers of the `HandshakeError` it threw.
 * Client: {@link generateKey} → {@link clientRequestHeaders} / {@link buildClientRequest} →
 * {@link validateResponse}.
 */

export { acceptKey, generateKey, type HeaderRecord } from './handshake-common.js';
export * from './handshake-server.js';
export * from './handshake-client.js';
