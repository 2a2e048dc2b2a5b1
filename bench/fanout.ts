// Fan-out benchmark: deliveries per second from one hub node to 1,000 and 10,000 local
// subscribers of one topic (64-byte messages), side by side with an npm `ws` server that loops
// over its clients calling `send` — the same message text, the same subscribers, alternating
// rounds in the same run.
//
//   npx tsc -p tsconfig.json && node dist/bench/fanout.js [--sizes 1000,10000] [--rounds 3] [--messages 100000]
//
// Processes (10,000 connections need 10,000 descriptors on each side; `ulimit -n` is checked):
//   - this one: the duplex WebSocketServer + Hub (MemoryBroker), and the orchestration;
//   - a child running the `ws` server;
//   - one child per server holding the subscribers: raw `net` sockets with a minimal RFC 6455
//     handshake and a frame counter (no parsing of payloads), so the client side costs little.
// A round publishes `messages / subscribers` publications in batches and waits until every
// subscriber received every one. Two figures per server: wall-clock deliveries/s
// (subscribers × publications / elapsed: on a small machine the subscriber process, which
// shares the CPUs, is often what limits it) and deliveries per second of the server process's
// own CPU time (user + system: the server's cost, whatever limits the wall clock).
import { execSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import { WebSocketServer } from '../src/index.js';
import { Hub } from '../src/hub/index.js';

const args = process.argv.slice(2);
function arg(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  if (i !== -1 && args[i + 1] !== undefined) return args[i + 1]!;
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : fallback;
}

type Msg =
  | { type: 'connect'; port: number; path: string; count: number; subscribe: boolean }
  | { type: 'ready' }
  | { type: 'expect'; frames: number }
  | { type: 'armed' }
  | { type: 'done' }
  | { type: 'listening'; port: number }
  | { type: 'publish'; text: string; count: number }
  | { type: 'published' }
  | { type: 'cpu' }
  | { type: 'cpu-usage'; micros: number }
  | { type: 'exit' };

/** A 64-byte JSON payload: what each publication carries. */
const DATA = { t: 'tick', v: 'x'.repeat(45) };

// ---- role: subscriber client process -----------------------------------------------------------

function clientsRole(): void {
  const sockets: Socket[] = [];
  let frames = 0;
  let expected = Infinity;
  const done = (): void => {
    if (frames >= expected) {
      expected = Infinity;
      process.send!({ type: 'done' } satisfies Msg);
    }
  };
  /** Counts complete frames in a byte stream of unmasked server frames. */
  function attach(socket: Socket, onFirstFrame: () => void): void {
    let skip = 0;
    let header: number[] = [];
    let first = true;
    socket.on('data', (chunk: Buffer) => {
      let i = 0;
      while (i < chunk.length) {
        if (skip > 0) {
          const n = Math.min(skip, chunk.length - i);
          skip -= n;
          i += n;
          if (skip === 0) complete();
          continue;
        }
        header.push(chunk[i++]!);
        if (header.length < 2) continue;
        const len7 = header[1]! & 0x7f;
        const need = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
        if (header.length < need) continue;
        let len = len7;
        if (len7 === 126) len = (header[2]! << 8) | header[3]!;
        else if (len7 === 127) len = Number(Buffer.from(header).readBigUInt64BE(2));
        header = [];
        skip = len;
        if (skip === 0) complete();
      }
    });
    function complete(): void {
      if (first) {
        first = false;
        onFirstFrame();
        return;
      }
      frames++;
      if (frames >= expected) done();
    }
  }
  function open(port: number, path: string, subscribe: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ port, host: '127.0.0.1' });
      socket.setNoDelay(true);
      sockets.push(socket);
      socket.once('error', reject);
      let buffered = Buffer.alloc(0);
      const key = randomBytes(16).toString('base64');
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      const onHandshake = (chunk: Buffer): void => {
        buffered = Buffer.concat([buffered, chunk]);
        const end = buffered.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onHandshake);
        if (!buffered.subarray(0, 12).toString().includes('101')) {
          reject(new Error(`handshake refused: ${buffered.subarray(0, end).toString()}`));
          return;
        }
        const rest = buffered.subarray(end + 4);
        if (!subscribe) {
          // ws: count from the first frame on; resolve at once.
          attach(socket, () => frames++);
          resolve();
        } else {
          attach(socket, resolve); // the subscribe reply is the first frame
          socket.write(maskedText(JSON.stringify({ type: 'subscribe', id: 1, topic: 'bench' })));
        }
        if (rest.length > 0) socket.emit('data', rest);
      };
      socket.on('data', onHandshake);
    });
  }
  process.on('message', (message: Msg) => {
    void (async () => {
      if (message.type === 'connect') {
        // Open in slices so the server's accept queue is not flooded.
        for (let i = 0; i < message.count; i += 200) {
          const n = Math.min(200, message.count - i);
          await Promise.all(Array.from({ length: n }, () => open(message.port, message.path, message.subscribe)));
        }
        process.send!({ type: 'ready' } satisfies Msg);
      } else if (message.type === 'expect') {
        frames = 0;
        expected = message.frames;
        process.send!({ type: 'armed' } satisfies Msg);
      } else if (message.type === 'exit') {
        for (const s of sockets) s.destroy();
        process.exit(0);
      }
    })();
  });
}

function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  if (payload.length > 125) throw new Error('bench frames are small');
  const mask = randomBytes(4);
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x81;
  frame[1] = 0x80 | payload.length;
  mask.copy(frame, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

// ---- role: ws server process ---------------------------------------------------------------------

interface WsLike {
  send(data: string): void;
}
interface WsServerLike {
  clients: Set<WsLike>;
  on(event: 'listening', fn: () => void): void;
  address(): { port: number };
}

function wsServerRole(): void {
  const require = createRequire(import.meta.url);
  const { WebSocketServer: WsServer } = require('ws') as { WebSocketServer: new (options: { port: number; host: string; perMessageDeflate: boolean }) => WsServerLike };
  const wss = new WsServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  wss.on('listening', () => process.send!({ type: 'listening', port: wss.address().port } satisfies Msg));
  process.on('message', (message: Msg) => {
    if (message.type === 'publish') {
      // The usual broadcast loop: every client frames (and encodes) the message itself.
      for (let n = 0; n < message.count; n++) for (const client of wss.clients) client.send(message.text);
      process.send!({ type: 'published' } satisfies Msg);
    } else if (message.type === 'cpu') {
      const usage = process.cpuUsage();
      process.send!({ type: 'cpu-usage', micros: usage.user + usage.system } satisfies Msg);
    } else if (message.type === 'exit') {
      process.exit(0);
    }
  });
}

// ---- orchestrator + duplex hub server ----------------------------------------------------------

function waitFor(child: ChildProcess, type: Msg['type']): Promise<Msg> {
  return new Promise((resolve) => {
    const on = (message: Msg): void => {
      if (message.type !== type) return;
      child.off('message', on);
      resolve(message);
    };
    child.on('message', on);
  });
}

async function main(): Promise<void> {
  const sizes = arg('sizes', '1000,10000').split(',').map(Number);
  const rounds = Number(arg('rounds', '3'));
  const totalDeliveries = Number(arg('messages', '200000'));
  let limit = NaN;
  try {
    limit = Number(execSync('ulimit -n', { shell: '/bin/sh' }).toString().trim());
  } catch {
    // unknown
  }
  const largest = Math.max(...sizes);
  if (Number.isFinite(limit) && limit < largest + 100) {
    console.error(`ulimit -n is ${limit}: ${largest} connections need at least ${largest + 100} descriptors per process; raise it (ulimit -n ${largest + 1000}).`);
    process.exit(1);
  }

  const hub = new Hub({ anonymous: true, presence: false });
  await hub.start();
  const server = new WebSocketServer<unknown>({ handlers: hub.handlers, pingInterval: 0, maxBufferedAmount: 64 * 1024 * 1024 });
  const duplexPort = (await server.listen(0)).port;
  const self = process.argv[1]!;
  const wsServer = fork(self, ['--role', 'ws-server']);
  const wsPort = ((await waitFor(wsServer, 'listening')) as { port: number }).port;
  const duplexClients = fork(self, ['--role', 'clients']);
  const wsClients = fork(self, ['--role', 'clients']);

  // One message text for both servers: what the hub sends for a publication of DATA.
  const sample = `{"type":"message","topic":"bench","offset":100000,"epoch":"0123456789abcdef","data":${JSON.stringify(DATA)}}`;
  console.log(`fan-out: ${JSON.stringify(DATA).length}-byte data (${sample.length}-byte message), ulimit -n ${limit}, node ${process.version}, ${rounds} rounds per server, alternating`);
  const results: Array<{ size: number; server: string; rates: number[] }> = [];
  let connected = 0;
  for (const size of sizes) {
    // Top up both sets of subscribers to `size`.
    const more = size - connected;
    duplexClients.send({ type: 'connect', port: duplexPort, path: '/hub', count: more, subscribe: true } satisfies Msg);
    wsClients.send({ type: 'connect', port: wsPort, path: '/', count: more, subscribe: false } satisfies Msg);
    await Promise.all([waitFor(duplexClients, 'ready'), waitFor(wsClients, 'ready')]);
    connected = size;
    const publications = Math.max(10, Math.round(totalDeliveries / size));
    const batch = Math.max(1, Math.round(publications / 10));
    const duplex = { size, server: 'duplex hub', rates: [] as number[], cpu: [] as number[] };
    const ws = { size, server: 'ws loop', rates: [] as number[], cpu: [] as number[] };
    const wsCpu = async (): Promise<number> => {
      wsServer.send({ type: 'cpu' } satisfies Msg);
      return ((await waitFor(wsServer, 'cpu-usage')) as { micros: number }).micros;
    };
    for (let round = 0; round < rounds; round++) {
      // duplex: hub.publish → broker → one JSON text, one frame → sendPrepared to each subscriber.
      duplexClients.send({ type: 'expect', frames: size * publications } satisfies Msg);
      await waitFor(duplexClients, 'armed');
      const doneDuplex = waitFor(duplexClients, 'done');
      const cpuBefore = process.cpuUsage();
      let start = performance.now();
      for (let sent = 0; sent < publications; sent += batch) {
        const n = Math.min(batch, publications - sent);
        await Promise.all(Array.from({ length: n }, () => hub.publish('bench', DATA)));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await doneDuplex;
      duplex.rates.push((size * publications) / ((performance.now() - start) / 1000));
      const cpu = process.cpuUsage(cpuBefore);
      duplex.cpu.push((size * publications) / ((cpu.user + cpu.system) / 1e6));
      // ws: the same number of messages, the same text, through the client loop.
      wsClients.send({ type: 'expect', frames: size * publications } satisfies Msg);
      await waitFor(wsClients, 'armed');
      const doneWs = waitFor(wsClients, 'done');
      const wsCpuBefore = await wsCpu();
      start = performance.now();
      for (let sent = 0; sent < publications; sent += batch) {
        const n = Math.min(batch, publications - sent);
        wsServer.send({ type: 'publish', text: sample, count: n } satisfies Msg);
        await waitFor(wsServer, 'published');
      }
      await doneWs;
      ws.rates.push((size * publications) / ((performance.now() - start) / 1000));
      ws.cpu.push((size * publications) / (((await wsCpu()) - wsCpuBefore) / 1e6));
    }
    results.push(duplex, ws);
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const d = med(duplex.rates);
    const w = med(ws.rates);
    const dc = med(duplex.cpu);
    const wc = med(ws.cpu);
    console.log(
      `${String(size).padStart(6)} subscribers × ${publications} publications (medians of ${rounds}):\n` +
        `    wall clock  duplex hub ${fmt(d)} deliveries/s, ws loop ${fmt(w)} deliveries/s, ratio ${(d / w).toFixed(2)}×` +
        `  (rounds: duplex ${duplex.rates.map(fmt).join(' / ')}; ws ${ws.rates.map(fmt).join(' / ')})\n` +
        `    server CPU  duplex hub ${fmt(dc)} deliveries per CPU-second, ws loop ${fmt(wc)}, ratio ${(dc / wc).toFixed(2)}×` +
        `  (rounds: duplex ${duplex.cpu.map(fmt).join(' / ')}; ws ${ws.cpu.map(fmt).join(' / ')})`,
    );
  }
  const stats = hub.stats();
  console.log(`hub: ${stats.messagesBuilt} message texts built for ${stats.deliveries} deliveries`);
  for (const child of [duplexClients, wsClients, wsServer]) child.send({ type: 'exit' } satisfies Msg);
  await server.close(1001, 'bench over', 1000);
  await hub.close();
}

function fmt(rate: number): string {
  return rate >= 1e6 ? `${(rate / 1e6).toFixed(2)} M` : `${(rate / 1e3).toFixed(0)} k`;
}

const role = arg('role', 'main');
if (role === 'clients') clientsRole();
else if (role === 'ws-server') wsServerRole();
else
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
