// Engine micro-benchmark: parse and serialise throughput of duplex's sans-I/O Connection,
// side by side with ws's own Receiver and Sender, in the same process and run.
//
//   npm run bench              (or: node dist/bench/engine.js [--json] [--seconds S])
//
// Parse: a stream of masked client frames (as a server receives them) fed in 64 KiB chunks.
// Serialise: server frames built for a message (no mask; what a server sends).
// Rounds alternate duplex and ws; the table reports medians of the rounds and their ratio.
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { Connection, type ConnectionHandler, encodeFrame, Opcode } from '../src/protocol/index.js';
import { isUtf8 } from 'node:buffer';

interface WsReceiver {
  on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): void;
  write(chunk: Buffer): boolean;
}
interface WsSenderStatic {
  frame(data: Buffer, options: { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean }): Buffer[];
}
const require = createRequire(import.meta.url);
// ws exposes its framing layer as `WebSocket.Receiver` and `WebSocket.Sender`.
const wsModule = require('ws') as {
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => WsReceiver;
  Sender: WsSenderStatic;
};
const WsReceiverClass = wsModule.Receiver;
const WsSender = wsModule.Sender;

const args = process.argv.slice(2);
const json = args.includes('--json');
const seconds = Number(args[args.indexOf('--seconds') + 1]) || 0.5;
const ROUNDS = 5;
const CHUNK = 64 * 1024;

interface Case {
  name: string;
  size: number;
  text: boolean;
}
const CASES: Case[] = [
  { name: '64 B text', size: 64, text: true },
  { name: '16 KiB binary', size: 16 * 1024, text: false },
  { name: '1 MiB binary', size: 1 << 20, text: false },
];

/** A stream of masked client frames of `size` bytes, about 4 MiB long, cut into 64 KiB chunks. */
function clientStream(c: Case): { chunks: Buffer[]; messages: number } {
  const payload = c.text ? Buffer.from('a'.repeat(c.size)) : randomBytes(c.size);
  const frames: Uint8Array[] = [];
  let total = 0;
  let messages = 0;
  while (total < 4 << 20 || messages < 2) {
    const frame = encodeFrame(c.text ? Opcode.Text : Opcode.Binary, payload, { maskKey: randomBytes(4) });
    frames.push(frame);
    total += frame.length;
    messages++;
  }
  const all = Buffer.concat(frames);
  const chunks: Buffer[] = [];
  for (let i = 0; i < all.length; i += CHUNK) chunks.push(all.subarray(i, i + CHUNK));
  return { chunks, messages };
}

/** Run `fn` (which handles `bytes` bytes per call) repeatedly for `seconds`; returns MB/s. */
function measure(fn: () => void, bytes: number): number {
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let calls = 0;
  let now = start;
  do {
    fn();
    calls++;
    now = process.hrtime.bigint();
  } while (now < deadline);
  return (calls * bytes) / (Number(now - start) / 1e9) / 1e6;
}

function parseDuplex(c: Case): () => number {
  const { chunks } = clientStream(c);
  const copies = chunks.map((b) => Buffer.from(b));
  let received = 0;
  const handler: ConnectionHandler = {
    onMessage: () => void received++,
    onPing: () => {},
    onPong: () => {},
    onClose: () => {},
    onProtocolError: (e) => {
      throw e;
    },
  };
  const conn = new Connection({ side: 'server', validateUtf8: isUtf8 }, handler);
  const bytes = chunks.reduce((n, b) => n + b.length, 0);
  return () =>
    measure(() => {
      // Unmasking is in place, so each pass parses a fresh copy (the same cost for both).
      for (let i = 0; i < chunks.length; i++) {
        copies[i].set(chunks[i]);
        conn.receiveData(copies[i]);
      }
    }, bytes);
}

function parseWs(c: Case): () => number {
  const { chunks } = clientStream(c);
  const copies = chunks.map((b) => Buffer.from(b));
  const receiver = new WsReceiverClass({ isServer: true, maxPayload: 0 });
  let received = 0;
  receiver.on('message', () => void received++);
  const bytes = chunks.reduce((n, b) => n + b.length, 0);
  return () =>
    measure(() => {
      for (let i = 0; i < chunks.length; i++) {
        copies[i].set(chunks[i]);
        receiver.write(copies[i]);
      }
    }, bytes);
}

function serialiseDuplex(c: Case): () => number {
  const payload = c.text ? Buffer.from('a'.repeat(c.size)) : randomBytes(c.size);
  const handler: ConnectionHandler = { onMessage() {}, onPing() {}, onPong() {}, onClose() {}, onProtocolError() {} };
  const conn = new Connection({ side: 'server' }, handler);
  const batch = Math.max(1, Math.floor((1 << 20) / c.size));
  return () =>
    measure(() => {
      for (let i = 0; i < batch; i++) {
        if (c.text) conn.sendText(payload);
        else conn.sendBinary(payload);
      }
      conn.dataToSend();
    }, batch * c.size);
}

function serialiseWs(c: Case): () => number {
  const payload = c.text ? Buffer.from('a'.repeat(c.size)) : randomBytes(c.size);
  const batch = Math.max(1, Math.floor((1 << 20) / c.size));
  const options = { fin: true, rsv1: false, opcode: c.text ? 1 : 2, mask: false, readOnly: false };
  return () =>
    measure(() => {
      for (let i = 0; i < batch; i++) WsSender.frame(payload, options);
    }, batch * c.size);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Row {
  workload: string;
  duplexMBps: number;
  wsMBps: number;
  ratio: number;
  ratioMin: number;
  ratioMax: number;
}
const rows: Row[] = [];
for (const c of CASES) {
  for (const [kind, mine, theirs] of [
    ['parse', parseDuplex, parseWs],
    ['serialise', serialiseDuplex, serialiseWs],
  ] as const) {
    const a = mine(c);
    const b = theirs(c);
    a();
    b(); // warm-up
    const da: number[] = [];
    const wa: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const x = a();
      const y = b();
      da.push(x);
      wa.push(y);
      ratios.push(x / y);
    }
    rows.push({
      workload: `${kind} ${c.name}`,
      duplexMBps: median(da),
      wsMBps: median(wa),
      ratio: median(ratios),
      ratioMin: Math.min(...ratios),
      ratioMax: Math.max(...ratios),
    });
  }
}

if (json) {
  process.stdout.write(JSON.stringify({ rounds: ROUNDS, seconds, rows }) + '\n');
} else {
  const f = (n: number): string => n.toFixed(0).padStart(8);
  process.stdout.write(`engine throughput, MB/s (median of ${ROUNDS} alternating rounds of ${seconds}s)\n`);
  process.stdout.write(`${'workload'.padEnd(26)} ${'duplex'.padStart(8)} ${'ws'.padStart(8)}   ratio (min–max)\n`);
  for (const r of rows) {
    process.stdout.write(`${r.workload.padEnd(26)} ${f(r.duplexMBps)} ${f(r.wsMBps)}   ${r.ratio.toFixed(2)}× (${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)})\n`);
  }
}
