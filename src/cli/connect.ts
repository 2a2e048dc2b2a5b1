/** `duplex connect URL`: an interactive client, or with `--echo` an echoing one. */
import { createInterface } from 'node:readline';
import { connect } from '../node/client.js';
import { CloseCode } from '../protocol/constants.js';
import { HandshakeError } from '../protocol/errors.js';
import { UsageError, type Parsed } from './main.js';
import type { WebSocket } from '../node/websocket.js';

function parseHeaders(list: unknown): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of (list as string[] | undefined) ?? []) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new UsageError(`--header must look like "Name: value", got "${line}"`);
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

function show(data: string | Buffer, isBinary: boolean, json: boolean): string {
  if (isBinary) return `<binary ${data.length} bytes> ${(data as Buffer).subarray(0, 64).toString('hex')}`;
  const text = data as string;
  if (json) {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text;
    }
  }
  return text;
}

export async function connectCommand({ values, positionals }: Parsed): Promise<number> {
  const url = positionals[0];
  if (!url) throw new UsageError('connect needs a URL, e.g. duplex connect ws://127.0.0.1:8080/');
  const echo = values.echo === true;
  const json = values.json === true;
  const out = process.stdout;
  let closedClean = false;
  let closeInfo = '';
  let ws: WebSocket<undefined>;
  let resolveClosed!: () => void;
  const done = new Promise<void>((r) => (resolveClosed = r));
  try {
    ws = await connect<undefined>(url, {
      headers: parseHeaders(values.header),
      protocols: (values.subprotocol as string[] | undefined) ?? [],
      perMessageDeflate: values['no-deflate'] !== true,
      textAsBuffer: echo,
      handlers: {
        message(socket, data, isBinary) {
          if (echo) {
            if (isBinary) socket.send(data as Buffer);
            else socket.sendText(data as Buffer);
            return;
          }
          out.write(`< ${new Date().toISOString().slice(11, 23)} ${show(data, isBinary, json)}\n`);
        },
        pong(_socket, data) {
          if (!echo) out.write(`< pong ${data.toString()}\n`);
        },
        error(_socket, error) {
          process.stderr.write(`duplex connect: ${error.message}\n`);
        },
        close(_socket, code, reason) {
          closedClean = code !== CloseCode.AbnormalClosure;
          closeInfo = `closed: ${code}${reason ? ` ${reason}` : ''}`;
          resolveClosed();
        },
      },
    });
  } catch (error) {
    const message = error instanceof HandshakeError ? `handshake failed: ${error.message}` : `cannot connect to ${url}: ${(error as Error).message}`;
    process.stderr.write(`duplex connect: ${message}\n`);
    return 1;
  }
  if (!echo) {
    out.write(`connected to ${url}${ws.protocol ? ` (subprotocol ${ws.protocol})` : ''}${ws.extensions ? ` [${ws.extensions}]` : ''}\n`);
    const rl = createInterface({ input: process.stdin, terminal: false });
    rl.on('line', (line) => {
      try {
        if (line === '/quit') ws.close();
        else if (line.startsWith('/ping')) ws.ping(line.slice(6));
        else if (line.startsWith('/close')) {
          const [, code, ...reason] = line.split(' ');
          ws.close(code ? Number(code) : 1000, reason.join(' '));
        } else ws.send(line);
      } catch (error) {
        process.stderr.write(`duplex connect: ${(error as Error).message}\n`);
      }
    });
    rl.on('close', () => ws.close());
    void done.then(() => rl.close());
  }
  await done;
  (closedClean ? out : process.stderr).write(`${closeInfo}\n`);
  return closedClean ? 0 : 1;
}
