/**
 * `duplex connect URL`: a WebSocket client for terminals and pipes, modelled on wscat and
 * websocat. Data on stdout (the messages received), everything else on stderr (status, errors,
 * pings), so `duplex connect URL < in > out` leaves only the received messages in `out`.
 * With `--echo` it sends every message back; with `-x` it sends the given messages and closes.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { connect } from '../node/client.js';
import { CloseCode, State } from '../protocol/constants.js';
import { HandshakeError } from '../protocol/errors.js';
import { rangeOf, UsageError, type Parsed } from './args.js';
import { CONNECT_FLAGS } from './flags.js';
import type { WebSocket } from '../node/websocket.js';

/** Headers the handshake writes itself, and the flag to use instead. */
const RESERVED_HEADERS: Record<string, string> = {
  host: 'the Host header comes from the URL',
  upgrade: 'it is set by the handshake',
  connection: 'it is set by the handshake',
  'sec-websocket-key': 'it is set by the handshake',
  'sec-websocket-version': 'it is set by the handshake',
  'sec-websocket-protocol': 'use -s/--subprotocol',
  'sec-websocket-extensions': 'use --no-deflate to offer none',
};

interface Request {
  headers: Record<string, string>;
  origin: string | undefined;
}

function requestHeaders(values: Parsed['values']): Request {
  const headers: Record<string, string> = {};
  let origin = typeof values.origin === 'string' ? values.origin : undefined;
  for (const line of (values.header as string[] | undefined) ?? []) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new UsageError(`--header must look like "Name: value", got "${line}"`);
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    const lower = name.toLowerCase();
    if (lower === 'origin') {
      // wscat accepts -H "Origin: …" too.
      if (origin !== undefined && origin !== value) throw new UsageError('two different origins: use one of -o/--origin and -H "Origin: …"');
      origin = value;
    } else if (RESERVED_HEADERS[lower]) {
      throw new UsageError(`cannot set the ${name} header: ${RESERVED_HEADERS[lower]}`);
    } else {
      headers[name] = value;
    }
  }
  if (typeof values.auth === 'string') {
    if (!values.auth.includes(':')) throw new UsageError(`--auth must look like "user:password", got "${values.auth}"`);
    if (Object.keys(headers).some((name) => name.toLowerCase() === 'authorization')) {
      throw new UsageError('use one of --auth and -H "Authorization: …"');
    }
    headers['Authorization'] = `Basic ${Buffer.from(values.auth, 'utf8').toString('base64')}`;
  }
  return { headers, origin };
}

function readPem(values: Parsed['values'], flag: 'ca' | 'cert' | 'key'): Buffer | undefined {
  const file = values[flag];
  if (typeof file !== 'string') return undefined;
  try {
    return readFileSync(file);
  } catch (error) {
    throw new UsageError(`cannot read --${flag} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function tlsOptions(values: Parsed['values']): TlsOptions {
  const tls: TlsOptions = {};
  if (values['no-check'] === true || values.insecure === true) tls.rejectUnauthorized = false;
  const ca = readPem(values, 'ca');
  const cert = readPem(values, 'cert');
  const key = readPem(values, 'key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--cert and --key go together');
  if (ca) tls.ca = ca;
  if (cert && key) Object.assign(tls, { cert, key });
  if (typeof values.passphrase === 'string') tls.passphrase = values.passphrase;
  return tls;
}

function waitFlag(value: unknown): number {
  const { min, max, fallback } = rangeOf('wait', CONNECT_FLAGS.wait);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value === '' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`--wait must be a number of seconds from ${min} to ${max}, got "${String(value)}"`);
  return n;
}

function pretty(text: string, json: boolean): string {
  if (!json) return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export async function connectCommand({ values, positionals }: Parsed): Promise<number> {
  const flagUrl = typeof values.connect === 'string' ? values.connect : undefined;
  if (positionals.length > (flagUrl === undefined ? 1 : 0)) {
    throw new UsageError(`connect takes one URL, got ${positionals.length + (flagUrl === undefined ? 0 : 1)}: ${[flagUrl, ...positionals].filter(Boolean).join(' ')}`);
  }
  const url = flagUrl ?? positionals[0];
  if (!url) throw new UsageError('connect needs a URL, e.g. duplex connect ws://127.0.0.1:8080/');
  if (!/^wss?:\/\//i.test(url)) throw new UsageError(`the URL must start with ws:// or wss://, got "${url}"`);
  const echo = values.echo === true;
  const execute = (values.execute as string[] | undefined) ?? [];
  if (echo && execute.length > 0) throw new UsageError('choose one of --echo and -x/--execute');
  const wait = waitFlag(values.wait);
  const json = values.json === true;
  const binary = values.binary === true;
  const showPingPong = values['show-ping-pong'] === true;
  const { headers, origin } = requestHeaders(values);
  const tls = tlsOptions(values);

  const out = process.stdout;
  const err = process.stderr;
  const tty = out.isTTY === true;
  /** Messages received: raw on a pipe, with a prefix and a time on a terminal. */
  const print = (data: string | Buffer, isBinary: boolean): void => {
    if (tty) {
      const shown = !isBinary
        ? pretty(data as string, json)
        : binary
          ? (data as Buffer).toString('utf8')
          : `<binary ${data.length} bytes> ${(data as Buffer).subarray(0, 64).toString('hex')}${data.length > 64 ? '…' : ''}`;
      out.write(`< ${new Date().toISOString().slice(11, 23)} ${shown}\n`);
    } else if (!isBinary) {
      out.write(`${pretty(data as string, json)}\n`);
    } else if (binary) {
      out.write(data as Buffer);
      out.write('\n');
    } else {
      out.write(`${(data as Buffer).toString('hex')}\n`);
    }
  };

  let closedClean = false;
  let closeInfo = '';
  let ws: WebSocket<undefined>;
  let resolveClosed!: () => void;
  let onDrain: (() => void) | undefined;
  const done = new Promise<void>((r) => (resolveClosed = r));
  try {
    ws = await connect<undefined>(url, {
      headers,
      origin,
      protocols: (values.subprotocol as string[] | undefined) ?? [],
      perMessageDeflate: values['no-deflate'] !== true,
      tls,
      textAsBuffer: echo,
      // How long the server has to answer our close frame; then the connection is dropped (1006).
      closeTimeout: Math.max(1, wait) * 1000,
      handlers: {
        message(socket, data, isBinary) {
          if (echo) {
            if (isBinary) socket.send(data as Buffer);
            else socket.sendText(data as Buffer);
            return;
          }
          print(data, isBinary);
        },
        drain() {
          onDrain?.();
        },
        ping(_socket, data) {
          if (showPingPong) err.write(`ping${data.length ? ` ${data.toString()}` : ''}\n`);
        },
        pong(_socket, data) {
          if (showPingPong) err.write(`pong${data.length ? ` ${data.toString()}` : ''}\n`);
        },
        error(_socket, error) {
          err.write(`duplex connect: ${error.message}\n`);
        },
        close(_socket, code, reason) {
          closedClean = code !== CloseCode.AbnormalClosure;
          closeInfo = closedClean ? `closed: ${code}${reason ? ` ${reason}` : ''}` : 'closed: 1006 (connection lost, no closing handshake)';
          resolveClosed();
        },
      },
    });
  } catch (error) {
    const message =
      error instanceof HandshakeError
        ? `handshake failed: ${error.message}`
        : `cannot connect to ${url}: ${tlsHint(error as NodeJS.ErrnoException)}`;
    err.write(`duplex connect: ${message}\n`);
    return 1;
  }
  err.write(`connected to ${url}${ws.protocol ? ` (subprotocol ${ws.protocol})` : ''}${ws.extensions ? ` [${ws.extensions}]` : ''}\n`);
  // A reader that went away (`duplex connect … | head -1`): stop quietly.
  out.on('error', () => ws.terminate());
  // Ctrl-C: close cleanly; a second one drops the connection.
  const interrupt = (): void => {
    if (ws.readyState === State.Open) ws.close(CloseCode.NormalClosure);
    else ws.terminate();
  };
  process.on('SIGINT', interrupt);
  const send = (message: string): boolean => ws.send(message, { binary });

  if (execute.length > 0) {
    for (const message of execute) send(message);
    const timer = setTimeout(() => ws.close(CloseCode.NormalClosure), wait * 1000);
    void done.then(() => clearTimeout(timer));
  } else if (!echo) {
    const rl = createInterface({ input: process.stdin, terminal: false });
    rl.on('line', (line) => {
      try {
        if (line === '/quit') ws.close();
        else if (line === '/ping' || line.startsWith('/ping ')) ws.ping(line.slice(6));
        else if (line === '/close' || line.startsWith('/close ')) {
          const [, code, ...reason] = line.split(' ');
          ws.close(code ? Number(code) : CloseCode.NormalClosure, reason.join(' '));
        } else if (!send(line.startsWith('//') ? line.slice(1) : line)) rl.pause(); // resumed on drain
      } catch (error) {
        err.write(`duplex connect: ${(error as Error).message}\n`);
      }
    });
    // End of stdin: close with 1000; the server's replies to what was sent arrive before its close frame.
    rl.on('close', () => ws.close(CloseCode.NormalClosure));
    onDrain = () => rl.resume();
    void done.then(() => rl.close());
  }
  await done;
  process.off('SIGINT', interrupt);
  err.write(`${closeInfo}\n`);
  return closedClean ? 0 : 1;
}

/** Certificate errors say how to get past them. */
function tlsHint(error: NodeJS.ErrnoException): string {
  const code = error.code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(code)) {
    return `${error.message} (${code}); use --ca FILE to trust its CA, or -n/--no-check to skip the check`;
  }
  return error.message;
}
