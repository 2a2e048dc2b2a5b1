// A deliberately small WebSocket client over raw TCP, for conformance tests: it builds every
// frame by hand (any RSV bits, any opcode, any length, split writes), does the HTTP handshake
// itself, and decodes what the server sends without judging it, so the tests can check the
// server's exact bytes the way the Autobahn Testsuite does.
import { connect as tcpConnect, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

/** Frame opcodes (RFC 6455 §5.2), named so tests read like the RFC. */
export const OP = { Continuation: 0x0, Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

/** RSV bits as they sit in the first header byte. */
export const RSV1 = 0x40;
export const RSV2 = 0x20;
export const RSV3 = 0x10;

/** What to put in one frame. Defaults: FIN set, no RSV bits, a random mask. */
export interface FrameSpec {
  opcode: number;
  payload?: Uint8Array | string;
  fin?: boolean;
  /** RSV bits (`RSV1 | RSV2 | RSV3` mask) for the first byte. */
  rsv?: number;
  /** The masking key; a client must mask (RFC 6455 §5.1). */
  mask?: Uint8Array;
}

/** A frame as the server sent it. */
export interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Build one client frame: header, masking key, masked payload. */
export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload, 'utf8') : Buffer.from(spec.payload ?? []);
  const mask = spec.mask ?? randomBytes(4);
  const length = payload.length;
  const extended = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
  const header = Buffer.alloc(2 + extended + 4);
  header[0] = (spec.fin === false ? 0 : 0x80) | ((spec.rsv ?? 0) & 0x70) | (spec.opcode & 0x0f);
  if (extended === 0) header[1] = 0x80 | length;
  else if (extended === 2) {
    header[1] = 0x80 | 126;
    header.writeUInt16BE(length, 2);
  } else {
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  header.set(mask.subarray(0, 4), 2 + extended);
  const masked = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) masked[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([header, masked]);
}

/** A close frame payload: 2-byte code, then the reason (bytes or UTF-8 text). */
export function closePayload(code: number, reason: Uint8Array | string = ''): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code, 0);
  return Buffer.concat([head, typeof reason === 'string' ? Buffer.from(reason, 'utf8') : reason]);
}

/**
 * Incremental decoder of server frames; never throws on odd frames, it only reports them.
 * Chunks are kept in a list and joined once per frame, so a 16 MiB frame costs one copy.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private have = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.have += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.have < 2) break;
      const head = this.peek(Math.min(this.have, 14));
      const masked = (head[1]! & 0x80) !== 0;
      let length = head[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (head.length < 4) break;
        length = head.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (head.length < 10) break;
        length = Number(head.readBigUInt64BE(2));
        at = 10;
      }
      const maskAt = at;
      if (masked) at += 4;
      if (this.have < at + length) break;
      const buf = this.peek(this.have);
      const payload = Buffer.from(buf.subarray(at, at + length));
      if (masked) for (let i = 0; i < length; i++) payload[i]! ^= buf[maskAt + (i & 3)]!;
      frames.push({ fin: (buf[0]! & 0x80) !== 0, rsv: buf[0]! & 0x70, opcode: buf[0]! & 0x0f, masked, payload });
      const rest = buf.subarray(at + length);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.have = rest.length;
    }
    return frames;
  }

  /** At least the first `n` buffered bytes as one Buffer (joins chunks only when needed). */
  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }
}

/** How the server ended the connection, as seen by `expectClose`. */
export interface CloseResult {
  /** The close frame's code (1005 for an empty payload). */
  code: number;
  /** Its reason, raw. */
  reason: Buffer;
  /** Frames that arrived before the close frame. */
  before: Frame[];
  /** Whether the server then closed TCP (FIN or reset) within the wait. */
  tcpClosed: boolean;
}

export interface RawConnectOptions {
  path?: string;
  /** `Sec-WebSocket-Extensions` to offer. */
  extensions?: string;
  /** Give up on the handshake after this many ms. */
  timeout?: number;
}

/** A raw WebSocket client connection (after a successful handshake). */
export class RawClient {
  /** The 101 response's headers, lower-case names. */
  readonly headers: Record<string, string>;
  readonly socket: Socket;
  private readonly decoder = new FrameDecoder();
  private readonly frames: Frame[] = [];
  private waiter: (() => void) | undefined;
  /** Set once the server closed its side (FIN) or the socket closed. */
  tcpClosed = false;
  private readonly tcpClosedPromise: Promise<void>;

  private constructor(socket: Socket, headers: Record<string, string>, rest: Buffer) {
    this.socket = socket;
    this.headers = headers;
    this.tcpClosedPromise = new Promise<void>((resolve) => {
      const done = (): void => {
        this.tcpClosed = true;
        this.wake();
        resolve();
      };
      socket.once('end', done);
      socket.once('close', done);
    });
    socket.on('error', () => {}); // a reset after the server's close is fine; 'close' follows
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    if (rest.length > 0) this.onData(rest);
  }

  /** Connect, send the opening handshake by hand, check the 101 and `Sec-WebSocket-Accept`. */
  static connect(port: number, options: RawConnectOptions = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const key = randomBytes(16).toString('base64');
      const socket = tcpConnect({ port, host: '127.0.0.1' });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('raw handshake timed out'));
      }, options.timeout ?? 3000);
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        socket.off('error', onError);
        clearTimeout(timer);
        const lines = head.subarray(0, end).toString('latin1').split('\r\n');
        const status = lines.shift() ?? '';
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).trim().toLowerCase();
          const value = line.slice(colon + 1).trim();
          headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
        }
        const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        if (!/^HTTP\/1\.1 101 /.test(status) || headers['sec-websocket-accept'] !== accept) {
          socket.destroy();
          reject(new Error(`handshake refused: ${status} ${JSON.stringify(headers)}`));
          return;
        }
        resolve(new RawClient(socket, headers, head.subarray(end + 4)));
      };
      const onError = (error: Error): void => {
        clearTimeout(timer);
        reject(error);
      };
      socket.on('data', onData);
      socket.on('error', onError);
      socket.write(
        `GET ${options.path ?? '/'} HTTP/1.1\r\n` +
          `Host: 127.0.0.1:${port}\r\n` +
          'Upgrade: websocket\r\n' +
          'Connection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${key}\r\n` +
          'Sec-WebSocket-Version: 13\r\n' +
          (options.extensions ? `Sec-WebSocket-Extensions: ${options.extensions}\r\n` : '') +
          '\r\n',
      );
    });
  }

  /** Write one or more frames in a single TCP write. */
  send(...specs: FrameSpec[]): void {
    this.socket.write(Buffer.concat(specs.map(encodeFrame)));
  }

  /** Write raw bytes as they are. */
  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (error) => (error ? reject(error) : resolve())));
  }

  /** The next frame from the server; rejects after `timeout` ms or if TCP closes first. */
  async nextFrame(timeout = 2000): Promise<Frame> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const frame = this.frames.shift();
      if (frame) return frame;
      if (this.tcpClosed) throw new Error('the server closed the connection instead of sending a frame');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame from the server within ${timeout} ms`);
      await this.wait(left);
    }
  }

  /**
   * The next data message, reassembled from its frames (control frames in between are
   * returned in `controls`). `rsv` is the first frame's RSV bits.
   */
  async nextMessage(timeout = 2000): Promise<{ opcode: number; rsv: number; payload: Buffer; frames: number; controls: Frame[] }> {
    const controls: Frame[] = [];
    const parts: Buffer[] = [];
    let opcode = -1;
    let rsv = 0;
    let frames = 0;
    for (;;) {
      const frame = await this.nextFrame(timeout);
      if (frame.opcode >= 0x8) {
        if (frame.opcode === OP.Close) throw new Error(`expected a message, got close ${describeClose(frame.payload)}`);
        controls.push(frame);
        continue;
      }
      if (opcode === -1) {
        opcode = frame.opcode;
        rsv = frame.rsv;
      }
      frames++;
      parts.push(frame.payload);
      if (frame.fin) return { opcode, rsv, payload: Buffer.concat(parts), frames, controls };
    }
  }

  /**
   * Wait for the server's close frame (frames before it are collected), then for the server to
   * close TCP. `reply` answers the close frame first, as a polite client would.
   */
  async expectClose(options: { timeout?: number; tcpTimeout?: number; reply?: boolean } = {}): Promise<CloseResult> {
    const before: Frame[] = [];
    let frame: Frame;
    for (;;) {
      frame = await this.nextFrame(options.timeout ?? 2000);
      if (frame.opcode === OP.Close) break;
      before.push(frame);
    }
    const code = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005;
    const reason = frame.payload.subarray(2);
    if (options.reply && !this.socket.destroyed) this.socket.write(encodeFrame({ opcode: OP.Close, payload: frame.payload.subarray(0, 2) }));
    const tcpClosed = await Promise.race([
      this.tcpClosedPromise.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(resolve, options.tcpTimeout ?? 1000, false).unref()),
    ]);
    return { code, reason, before, tcpClosed };
  }

  /** Close the TCP connection from this side (test cleanup). */
  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    for (const frame of this.decoder.push(chunk)) this.frames.push(frame);
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve();
      }, ms);
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** `1002 "reason"`, for assertion messages. */
export function describeClose(payload: Buffer): string {
  if (payload.length < 2) return `(empty payload, ${payload.length} bytes)`;
  return `${payload.readUInt16BE(0)} ${JSON.stringify(payload.subarray(2).toString('utf8'))}`;
}
