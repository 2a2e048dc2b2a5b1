// Shared by the server API tests (server-api.test.ts, server-api-openapi.test.ts): a hub on a
// WebSocketServer attached to an http.Server whose requests go to the API first, a recording
// logger, and fetch()-based calls that keep every answer for the OpenAPI checks.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';

import { WebSocketServer } from '../../src/index.js';
import { Hub, createServerApi, type HubIdentity, type HubOptions, type ServerApiHub, type ServerApiOptions } from '../../src/hub/index.js';
import { delay } from './hub-helpers.js';

export const KEY = 'test-key-0123456789';
export const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
export const verify = (token: string): { id: string } => ({ id: token });

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

export interface ApiNode {
  hub: Hub;
  /** ws://…/hub */
  url: string;
  /** http://127.0.0.1:port */
  base: string;
  port: number;
  logs: LogLine[];
  close(): Promise<void>;
}

/** A hub on a WebSocketServer attached to an http.Server whose requests go to the API first (else 404 "not the API"). */
export async function startApiNode(hubOptions: HubOptions = { auth: { verify } }, apiOptions: Partial<ServerApiOptions> = {}, apiHub?: (hub: Hub) => ServerApiHub): Promise<ApiNode> {
  const logs: LogLine[] = [];
  const logger = {
    debug: (fields: Record<string, unknown>, message: string) => logs.push({ level: 'debug', fields, message }),
    info: (fields: Record<string, unknown>, message: string) => logs.push({ level: 'info', fields, message }),
    warn: (fields: Record<string, unknown>, message: string) => logs.push({ level: 'warn', fields, message }),
    error: (fields: Record<string, unknown>, message: string) => logs.push({ level: 'error', fields, message }),
  };
  const hub = new Hub<HubIdentity>(hubOptions);
  await hub.start();
  const api = createServerApi(apiHub ? apiHub(hub) : hub, { keys: [KEY], logger, ...apiOptions });
  const http: Server = createServer((req, res) => {
    void api(req, res).then((handled) => {
      if (!handled) res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not the API');
    });
  });
  const wss = new WebSocketServer<unknown>({ ...hub.routeOptions, pingInterval: 0 });
  wss.attach(http);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    hub,
    url: `ws://127.0.0.1:${port}/hub`,
    base: `http://127.0.0.1:${port}`,
    port,
    logs,
    async close() {
      await wss.close(1001, 'test over', 500);
      await hub.close();
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
    },
  };
}

/** The latest log line of an answer with `status`. */
export function lastLog(node: ApiNode, status: number): LogLine {
  const line = [...node.logs].reverse().find((l) => l.fields['status'] === status);
  assert.ok(line, `a log line for ${status}`);
  return line;
}

/** Wait until the async `condition` holds (polling), or fail after `timeout` ms. */
export async function eventually(condition: () => Promise<boolean>, timeout: number, what: string): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** Every answer of the tests, by method, checked against the OpenAPI document at the end. */
export const answers: Array<{ method: string; answer: Answer }> = [];

export async function call(base: string, method: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${base}/api/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `apikey ${KEY}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  const answer = { status: response.status, headers: response.headers, body: JSON.parse(text) as Record<string, unknown> };
  answers.push({ method, answer });
  return answer;
}

/** The result of a call that must succeed. */
export async function ok(base: string, method: string, body: unknown): Promise<Record<string, unknown>> {
  const answer = await call(base, method, body);
  assert.equal(answer.status, 200, `${method}: ${JSON.stringify(answer.body)}`);
  return answer.body['result'] as Record<string, unknown>;
}

/** The error of a call that must fail with `status` and `code`. */
export async function refused(base: string, method: string, body: unknown, status: number, code: string, headers?: Record<string, string>): Promise<string> {
  const answer = await call(base, method, body, headers);
  assert.equal(answer.status, status, `${method} ${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(answer.body)}`);
  const error = answer.body['error'] as { code: string; message: string };
  assert.equal(error.code, code);
  assert.equal(typeof error.message, 'string');
  return error.message;
}

/** A raw HTTP/1.1 exchange: write `head` and `chunks`, read until the server closes; the status line and whether it closed. */
export function rawExchange(port: number, head: string, chunks: Buffer[]): Promise<{ status: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 3 s; got ${JSON.stringify(text.slice(0, 200))}`));
    }, 3000);
    socket.on('data', (data) => (text += data.toString('latin1')));
    const done = (): void => {
      clearTimeout(timer);
      resolve({ status: text.split('\r\n', 1)[0]!, closed: true });
    };
    socket.on('close', done);
    socket.on('error', () => {});
    socket.write(head);
    for (const chunk of chunks) socket.write(chunk);
  });
}
