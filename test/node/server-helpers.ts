// Shared by the server-*.test.ts files: clients, a capturing logger, small waits.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WebSocket as WsClient, type ClientOptions } from 'ws';
import type { IncomingMessage } from 'node:http';
import { connect, HandshakeError, type ConnectOptions, type LogFields, type Logger, type MessageData } from '../../src/index.js';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: LogFields;
  message: string;
}

/** A logger that keeps its lines, to assert on them. */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const make =
    (level: LogLine['level']) =>
    (fields: LogFields, message: string): void => {
      lines.push({ level, fields, message });
    };
  return { logger: { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') }, lines };
}

/** Connect with duplex, wait for the first message, close; resolves with that message. */
export async function firstMessage(url: string, options: ConnectOptions<undefined> = {}): Promise<MessageData> {
  let resolveMessage!: (data: MessageData) => void;
  const message = new Promise<MessageData>((resolve) => (resolveMessage = resolve));
  const ws = await connect(url, { ...options, handlers: { message: (_ws, data) => resolveMessage(data) } });
  const data = await message;
  ws.close();
  return data;
}

/** The HandshakeError of a connection attempt that must fail. */
export async function refused(url: string, options: ConnectOptions<undefined> = {}): Promise<HandshakeError> {
  try {
    const ws = await connect(url, options);
    ws.terminate();
  } catch (error) {
    if (error instanceof HandshakeError) return error;
    throw error;
  }
  throw new Error(`expected ${url} to be refused`);
}

/** Open an npm `ws` client; resolves once open, with the 101 response's headers. */
export function wsOpen(url: string, options: ClientOptions = {}): Promise<{ client: WsClient; headers: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    const client = new WsClient(url, options);
    let headers: IncomingMessage['headers'] = {};
    client.once('upgrade', (res: IncomingMessage) => (headers = res.headers));
    client.once('open', () => resolve({ client, headers }));
    client.once('error', reject);
    client.once('unexpected-response', (_req, res: IncomingMessage) => reject(new Error(`unexpected response ${res.statusCode}`)));
  });
}

/** The refusal an npm `ws` client sees: status, headers and body of the 'unexpected-response'. */
export function wsRefusal(url: string, options: ClientOptions = {}): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const client = new WsClient(url, options);
    client.once('open', () => {
      client.terminate();
      reject(new Error(`expected ${url} to be refused`));
    });
    client.once('error', reject);
    client.once('unexpected-response', (req, res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        req.destroy();
      });
    });
  });
}

/** Wait for an npm `ws` client's close; resolves with code and reason. */
export function wsClosed(client: WsClient): Promise<[number, string]> {
  return new Promise((resolve) => client.once('close', (code: number, reason: Buffer) => resolve([code, reason.toString()])));
}

/** Send raw bytes on a TCP connection; resolves with everything the server sent until it closed. */
export function rawExchange(port: number, request: string, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, host, () => socket.write(request));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

/** Polls `condition` every 5 ms, for at most `timeout` ms. */
export async function until(condition: () => boolean, timeout = 2000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A promise and its resolver. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A self-signed certificate for localhost, 127.0.0.1 and ::1, made by openssl into `dir`. */
export async function selfSignedCertificate(dir: string): Promise<{ cert: Buffer; key: Buffer; certFile: string; keyFile: string }> {
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    '-keyout', keyFile, '-out', certFile,
  ]);
  const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
  return { cert, key, certFile, keyFile };
}
