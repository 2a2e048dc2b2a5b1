// Autobahn-style conformance over real sockets. The Autobahn Testsuite itself (Python 2 only)
// cannot run here, so this file reproduces the essence of its server-side cases, chapter by
// chapter, against a duplex echo server (set up as `duplex echo` is): a raw TCP client sends
// hand-built masked frames and checks what Autobahn checks — the echoed messages, or the close
// code the server answers with and that the server then closes the TCP connection.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer } from '../../src/index.js';
import { RawClient, OP, RSV1, RSV2, RSV3, closePayload, describeClose, encodeFrame, type CloseResult, type FrameSpec } from './raw-client.js';

/** An echo server like `src/cli/echo.ts`: text comes back as the validated bytes, as text. */
async function echoServer(options: { maxMessageSize?: number } = {}): Promise<{ server: WebSocketServer; port: number }> {
  const server = new WebSocketServer({
    perMessageDeflate: true,
    textAsBuffer: true,
    ...options,
    handlers: {
      message(ws, data, isBinary) {
        const bytes = data as Buffer;
        if (isBinary) ws.send(bytes);
        else ws.sendText(bytes);
      },
    },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port };
}

// Autobahn 9.x sends messages of up to 16 MiB: above the 1 MiB default, as its own servers set.
const echo = await echoServer({ maxMessageSize: 64 << 20 });
const limited = await echoServer({ maxMessageSize: 1024 });
after(() => Promise.all([echo.server.close(), limited.server.close()]));

/** Run a case on a fresh connection (as Autobahn does), always releasing the socket. */
async function withClient(fn: (client: RawClient) => Promise<void>, options: { port?: number; extensions?: string } = {}): Promise<void> {
  const client = await RawClient.connect(options.port ?? echo.port, { extensions: options.extensions });
  try {
    await fn(client);
  } finally {
    client.destroy();
  }
}

/** The server must answer with a close frame carrying `code`, then close TCP itself. */
async function expectFailure(client: RawClient, code: number, timeout = 1000): Promise<CloseResult> {
  const result = await client.expectClose({ timeout });
  assert.equal(result.code, code, `expected close ${code}, got ${result.code} ${JSON.stringify(result.reason.toString('utf8'))}`);
  assert.ok(result.tcpClosed, `the server sent close ${code} but did not close the TCP connection`);
  return result;
}

async function expectEcho(client: RawClient, opcode: number, payload: Buffer | string): Promise<void> {
  const expected = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const message = await client.nextMessage();
  assert.equal(message.opcode, opcode, `expected opcode ${opcode}, got ${message.opcode}`);
  assert.equal(message.payload.length, expected.length, 'echoed length differs');
  assert.ok(message.payload.equals(expected), 'echoed payload differs');
}

/** The normal end of a case: close 1000, the server echoes it and closes TCP. */
async function closeNormally(client: RawClient): Promise<CloseResult> {
  client.send({ opcode: OP.Close, payload: closePayload(1000) });
  const result = await client.expectClose();
  assert.equal(result.code, 1000);
  assert.deepEqual(result.before, [], 'no frames expected before the close echo');
  assert.ok(result.tcpClosed, 'the server must close TCP after the closing handshake');
  return result;
}

/** Write a frame's bytes in chops of `size` bytes, each its own TCP write (Autobahn's "chopped" variants). */
async function writeChopped(client: RawClient, bytes: Buffer, size: number): Promise<void> {
  for (let i = 0; i < bytes.length; i += size) {
    await client.write(bytes.subarray(i, i + size));
  }
}

const text = (n: number): Buffer => Buffer.alloc(n, '*');
const binary = (n: number): Buffer => Buffer.alloc(n, 0xfe);

describe('1.x framing: text and binary messages of every length class are echoed', () => {
  for (const [name, opcode, make] of [['text', OP.Text, text], ['binary', OP.Binary, binary]] as const) {
    for (const length of [0, 125, 126, 127, 128, 65535, 65536]) {
      test(`${name} of ${length} bytes`, () =>
        withClient(async (client) => {
          client.send({ opcode, payload: make(length) });
          await expectEcho(client, opcode, make(length));
          await closeNormally(client);
        }));
    }
    test(`${name} of 65536 bytes written in 997-byte chops`, () =>
      withClient(async (client) => {
        await writeChopped(client, encodeFrame({ opcode, payload: make(65536) }), 997);
        await expectEcho(client, opcode, make(65536));
        await closeNormally(client);
      }));
  }
});

describe('2.x pings and pongs', () => {
  for (const [name, payload] of [
    ['empty', Buffer.alloc(0)],
    ['text payload', Buffer.from('Hello, world!')],
    ['binary payload', Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff])],
    ['125-byte payload', binary(125)],
  ] as const) {
    test(`a ping with ${name} is answered by a pong with the same payload`, () =>
      withClient(async (client) => {
        client.send({ opcode: OP.Ping, payload });
        const pong = await client.nextFrame();
        assert.equal(pong.opcode, OP.Pong);
        assert.ok(pong.fin);
        assert.ok(pong.payload.equals(payload));
        await closeNormally(client);
      }));
  }

  test('a 125-byte ping written one byte at a time is answered', () =>
    withClient(async (client) => {
      await writeChopped(client, encodeFrame({ opcode: OP.Ping, payload: binary(125) }), 1);
      const pong = await client.nextFrame();
      assert.equal(pong.opcode, OP.Pong);
      assert.ok(pong.payload.equals(binary(125)));
      await closeNormally(client);
    }));

  test('a 126-byte ping fails the connection with 1002', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Ping, payload: binary(126) });
      const result = await expectFailure(client, 1002);
      assert.deepEqual(result.before, [], 'no pong for an oversized ping');
    }));

  test('unsolicited pongs (empty and with payload) are ignored', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Pong }, { opcode: OP.Pong, payload: 'unsolicited' }, { opcode: OP.Text, payload: 'after' });
      const frame = await client.nextFrame();
      assert.equal(frame.opcode, OP.Text, 'nothing may answer a pong');
      assert.equal(frame.payload.toString(), 'after');
      await closeNormally(client);
    }));

  test('an unsolicited pong then a ping: only the ping is answered', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Pong, payload: 'unsolicited' }, { opcode: OP.Ping, payload: 'solicited' });
      const pong = await client.nextFrame();
      assert.equal(pong.opcode, OP.Pong);
      assert.equal(pong.payload.toString(), 'solicited');
      await closeNormally(client);
    }));

  test('10 pings in one write get 10 pongs, in order', () =>
    withClient(async (client) => {
      client.send(...Array.from({ length: 10 }, (_, i): FrameSpec => ({ opcode: OP.Ping, payload: `ping ${i}` })));
      for (let i = 0; i < 10; i++) {
        const pong = await client.nextFrame();
        assert.equal(pong.opcode, OP.Pong);
        assert.equal(pong.payload.toString(), `ping ${i}`);
      }
      await closeNormally(client);
    }));

  test('10 pings in separate writes get 10 pongs, in order', () =>
    withClient(async (client) => {
      for (let i = 0; i < 10; i++) {
        await client.write(encodeFrame({ opcode: OP.Ping, payload: `ping ${i}` }));
        await sleep(2);
      }
      for (let i = 0; i < 10; i++) {
        const pong = await client.nextFrame();
        assert.equal(pong.opcode, OP.Pong);
        assert.equal(pong.payload.toString(), `ping ${i}`);
      }
      await closeNormally(client);
    }));
});

describe('3.x reserved bits without a negotiated extension fail the connection with 1002', () => {
  const cases: Array<[string, number, number, boolean]> = [
    // name, RSV bits, opcode, sent after a valid text frame
    ['RSV1 on a text frame', RSV1, OP.Text, false],
    ['RSV2 on a text frame after a valid one', RSV2, OP.Text, true],
    ['RSV3 on a text frame after a valid one', RSV3, OP.Text, true],
    ['RSV2+RSV3 on a binary frame', RSV2 | RSV3, OP.Binary, false],
    ['RSV1+RSV3 on a ping after a valid text', RSV1 | RSV3, OP.Ping, true],
    ['RSV1+RSV2 on a close frame', RSV1 | RSV2, OP.Close, false],
    ['RSV1+RSV2+RSV3 on a binary frame after a valid text', RSV1 | RSV2 | RSV3, OP.Binary, true],
  ];
  for (const [name, rsv, opcode, afterValid] of cases) {
    test(name, () =>
      withClient(async (client) => {
        const frames: FrameSpec[] = [];
        if (afterValid) frames.push({ opcode: OP.Text, payload: 'Hello, world!' });
        frames.push({ opcode, rsv, payload: opcode === OP.Close ? closePayload(1000) : 'reserved' });
        frames.push({ opcode: OP.Ping, payload: 'after' });
        client.send(...frames);
        const result = await expectFailure(client, 1002);
        // The valid message's echo must still arrive, before the close; the trailing ping is never answered.
        assert.deepEqual(
          result.before.map((f) => [f.opcode, f.payload.toString()]),
          afterValid ? [[OP.Text, 'Hello, world!']] : [],
        );
      }));
  }
});

describe('4.x reserved opcodes fail the connection with 1002', () => {
  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    test(`opcode 0x${opcode.toString(16)} (after a valid text frame)`, () =>
      withClient(async (client) => {
        client.send({ opcode: OP.Text, payload: 'Hello' }, { opcode, payload: 'reserved' }, { opcode: OP.Ping, payload: 'after' });
        const result = await expectFailure(client, 1002);
        assert.deepEqual(
          result.before.map((f) => [f.opcode, f.payload.toString()]),
          [[OP.Text, 'Hello']],
        );
      }));
  }
});

describe('5.x fragmentation', () => {
  test('a fragmented ping fails with 1002', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Ping, payload: 'frag', fin: false }, { opcode: OP.Continuation, payload: 'ment' });
      const result = await expectFailure(client, 1002);
      assert.deepEqual(result.before, []);
    }));

  test('a fragmented pong fails with 1002', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Pong, payload: 'frag', fin: false }, { opcode: OP.Continuation, payload: 'ment' });
      await expectFailure(client, 1002);
    }));

  test('a text message in two fragments is echoed', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Text, payload: 'fragment1', fin: false }, { opcode: OP.Continuation, payload: 'fragment2' });
      await expectEcho(client, OP.Text, 'fragment1fragment2');
      await closeNormally(client);
    }));

  test('a text message in 1-byte fragments, each its own write, is echoed', () =>
    withClient(async (client) => {
      const message = Buffer.from('Hello, fragmented world!');
      for (let i = 0; i < message.length; i++) {
        await client.write(encodeFrame({ opcode: i === 0 ? OP.Text : OP.Continuation, payload: message.subarray(i, i + 1), fin: i === message.length - 1 }));
      }
      await expectEcho(client, OP.Text, message);
      await closeNormally(client);
    }));

  test('a binary message in 1-byte fragments in one write is echoed', () =>
    withClient(async (client) => {
      const message = Buffer.from([0, 1, 2, 0xfe, 0xff]);
      client.send(...[...message].map((byte, i): FrameSpec => ({ opcode: i === 0 ? OP.Binary : OP.Continuation, payload: Buffer.from([byte]), fin: i === message.length - 1 })));
      await expectEcho(client, OP.Binary, message);
      await closeNormally(client);
    }));

  test('pings inside a fragmented message are answered at once, and the message is echoed', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Text, payload: 'fragment1', fin: false }, { opcode: OP.Ping, payload: 'ping 1' });
      const pong1 = await client.nextFrame();
      assert.deepEqual([pong1.opcode, pong1.payload.toString()], [OP.Pong, 'ping 1'], 'the pong must not wait for the message to end');
      client.send({ opcode: OP.Continuation, payload: 'fragment2', fin: false }, { opcode: OP.Ping, payload: 'ping 2' });
      const pong2 = await client.nextFrame();
      assert.deepEqual([pong2.opcode, pong2.payload.toString()], [OP.Pong, 'ping 2']);
      client.send({ opcode: OP.Continuation, payload: 'fragment3' });
      await expectEcho(client, OP.Text, 'fragment1fragment2fragment3');
      await closeNormally(client);
    }));

  test('pings inside a fragmented message, all written one byte at a time', () =>
    withClient(async (client) => {
      const bytes = Buffer.concat([
        encodeFrame({ opcode: OP.Text, payload: 'fragment1', fin: false }),
        encodeFrame({ opcode: OP.Ping, payload: 'ping' }),
        encodeFrame({ opcode: OP.Continuation, payload: 'fragment2' }),
      ]);
      await writeChopped(client, bytes, 1);
      const pong = await client.nextFrame();
      assert.deepEqual([pong.opcode, pong.payload.toString()], [OP.Pong, 'ping']);
      await expectEcho(client, OP.Text, 'fragment1fragment2');
      await closeNormally(client);
    }));

  test('a continuation (FIN=1) without a message to continue fails with 1002', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Continuation, payload: 'orphan' }, { opcode: OP.Text, payload: 'after' });
      const result = await expectFailure(client, 1002);
      assert.deepEqual(result.before, []);
    }));

  test('a continuation (FIN=0) without a message to continue fails with 1002', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Continuation, payload: 'orphan', fin: false });
      await expectFailure(client, 1002);
    }));

  test('a continuation after a complete fragmented message fails with 1002, after its echo', () =>
    withClient(async (client) => {
      client.send(
        { opcode: OP.Text, payload: 'fragment1', fin: false },
        { opcode: OP.Continuation, payload: 'fragment2' },
        { opcode: OP.Continuation, payload: 'orphan', fin: false },
      );
      const result = await expectFailure(client, 1002);
      assert.deepEqual(
        result.before.map((f) => [f.opcode, f.fin, f.payload.toString()]),
        [[OP.Text, true, 'fragment1fragment2']],
      );
    }));

  test('a new text frame while a fragmented text message is open fails with 1002', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Text, payload: 'fragment1', fin: false }, { opcode: OP.Text, payload: 'fragment2' });
      const result = await expectFailure(client, 1002);
      assert.deepEqual(result.before, []);
    }));

  test('a new binary start (FIN=0) while a fragmented text message is open fails with 1002', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Text, payload: 'fragment1', fin: false }, { opcode: OP.Binary, payload: 'fragment2', fin: false });
      await expectFailure(client, 1002);
    }));
});

/** UTF-8 test vectors (Markus Kuhn's, as Autobahn 6.x uses them). */
const VALID_UTF8: Array<[string, Buffer]> = [
  ['Hello-µ@ßöäüàá-UTF-8!!', Buffer.from('Hello-µ@ßöäüàá-UTF-8!!')],
  ['κόσμε', Buffer.from('κόσμε')],
  ['U+0000', Buffer.from([0x00])],
  ['U+007F', Buffer.from([0x7f])],
  ['U+0080', Buffer.from([0xc2, 0x80])],
  ['U+07FF', Buffer.from([0xdf, 0xbf])],
  ['U+0800', Buffer.from([0xe0, 0xa0, 0x80])],
  ['U+D7FF', Buffer.from([0xed, 0x9f, 0xbf])],
  ['U+E000', Buffer.from([0xee, 0x80, 0x80])],
  ['U+FFFD', Buffer.from([0xef, 0xbf, 0xbd])],
  ['U+FFFE and U+FFFF (non-characters are valid)', Buffer.from([0xef, 0xbf, 0xbe, 0xef, 0xbf, 0xbf])],
  ['U+10000', Buffer.from([0xf0, 0x90, 0x80, 0x80])],
  ['U+10FFFF', Buffer.from([0xf4, 0x8f, 0xbf, 0xbf])],
  ['emoji 😀🎉', Buffer.from('😀🎉')],
];
const INVALID_UTF8: Array<[string, Buffer]> = [
  ['κόσμε followed by 0xF4 0x90 (above U+10FFFF)', Buffer.concat([Buffer.from('κόσμε'), Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from('edited')])],
  ['a lone continuation byte 0x80', Buffer.from([0x61, 0x80, 0x62])],
  ['0xFE', Buffer.from([0xfe])],
  ['0xFF', Buffer.from([0xff])],
  ['a 5-byte sequence', Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80])],
  ['a 6-byte sequence', Buffer.from([0xfc, 0x84, 0x80, 0x80, 0x80, 0x80])],
  ['overlong "/" in 2 bytes', Buffer.from([0xc0, 0xaf])],
  ['overlong "/" in 3 bytes', Buffer.from([0xe0, 0x80, 0xaf])],
  ['overlong "/" in 4 bytes', Buffer.from([0xf0, 0x80, 0x80, 0xaf])],
  ['overlong 0xC1 0xBF', Buffer.from([0xc1, 0xbf])],
  ['a high surrogate U+D800', Buffer.from([0xed, 0xa0, 0x80])],
  ['a low surrogate U+DFFF', Buffer.from([0xed, 0xbf, 0xbf])],
  ['a surrogate pair encoded as two 3-byte sequences', Buffer.from([0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80])],
  ['U+110000', Buffer.from([0xf4, 0x90, 0x80, 0x80])],
  ['a sequence cut off at the end of the message', Buffer.from([0x61, 0x62, 0xe2, 0x82])],
  ['a 2-byte start followed by ASCII', Buffer.from([0xc2, 0x41])],
];

describe('6.x UTF-8 handling', () => {
  test('an empty text message is echoed', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Text });
      await expectEcho(client, OP.Text, Buffer.alloc(0));
      await closeNormally(client);
    }));

  for (const [name, bytes] of VALID_UTF8) {
    test(`valid: ${name}, in one frame and in 1-byte fragments`, () =>
      withClient(async (client) => {
        client.send({ opcode: OP.Text, payload: bytes });
        await expectEcho(client, OP.Text, bytes);
        // Fragment boundaries inside code points must not matter (6.2.3/6.2.4).
        client.send(...[...bytes].map((byte, i): FrameSpec => ({ opcode: i === 0 ? OP.Text : OP.Continuation, payload: Buffer.from([byte]), fin: i === bytes.length - 1 })));
        await expectEcho(client, OP.Text, bytes);
        await closeNormally(client);
      }));
  }

  for (const [name, bytes] of INVALID_UTF8) {
    test(`invalid: ${name} → 1007 (one frame)`, () =>
      withClient(async (client) => {
        client.send({ opcode: OP.Text, payload: bytes });
        const result = await expectFailure(client, 1007);
        assert.deepEqual(result.before, [], 'an invalid message must not be echoed');
      }));
  }

  test('invalid: κόσμε + 0xF4 0x90 0x80 0x80 in 1-byte fragments → 1007', () =>
    withClient(async (client) => {
      const bytes = INVALID_UTF8[0]![1];
      client.send(...[...bytes].map((byte, i): FrameSpec => ({ opcode: i === 0 ? OP.Text : OP.Continuation, payload: Buffer.from([byte]), fin: i === bytes.length - 1 })));
      await expectFailure(client, 1007);
    }));

  test('a binary message is not checked for UTF-8', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Binary, payload: Buffer.from([0xff, 0xfe, 0xc0, 0xaf]) });
      await expectEcho(client, OP.Binary, Buffer.from([0xff, 0xfe, 0xc0, 0xaf]));
      await closeNormally(client);
    }));

  // 6.4.x "fail fast": the server must fail at the first invalid byte, not at the end of the message.
  test('6.4.1 fail fast: a first fragment (FIN=0) with invalid UTF-8 → 1007 within 500 ms, with no more sent', () =>
    withClient(async (client) => {
      const started = Date.now();
      client.send({ opcode: OP.Text, payload: Buffer.concat([Buffer.from('κόσμε'), Buffer.from([0xf4, 0x90, 0x80, 0x80])]), fin: false });
      await expectFailure(client, 1007, 500);
      assert.ok(Date.now() - started < 500);
    }));

  test('6.4.2 fail fast: a valid first fragment, then a second (FIN=0) starting with the invalid byte', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Text, payload: Buffer.concat([Buffer.from('κόσμε'), Buffer.from([0xf4])]), fin: false });
      await sleep(50);
      client.send({ opcode: OP.Continuation, payload: Buffer.from([0x90]), fin: false });
      await expectFailure(client, 1007, 500);
    }));

  test('6.4.3 fail fast inside one frame: the close arrives before the rest of its payload is written', () =>
    withClient(async (client) => {
      const payload = Buffer.concat([Buffer.from('κόσμε'), Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from('edited')]);
      const frame = encodeFrame({ opcode: OP.Text, payload });
      const cut = frame.length - payload.length + Buffer.byteLength('κόσμε') + 2; // after 0xF4 0x90: already invalid
      await client.write(frame.subarray(0, cut));
      // The close must come during the 200 ms pause; only then is the rest of the frame written.
      const frame1 = await client.nextFrame(200).catch((error: unknown) => error as Error);
      if (!client.socket.destroyed) client.socket.write(frame.subarray(cut), () => {});
      if (frame1 instanceof Error) assert.fail(`no close frame within 200 ms of the invalid byte, before the rest of the frame (${frame1.message})`);
      assert.equal(frame1.opcode, OP.Close, `expected a close frame, got opcode ${frame1.opcode}`);
      assert.equal(describeClose(frame1.payload).split(' ')[0], '1007', `expected 1007, got ${describeClose(frame1.payload)}`);
    }));
});

describe('7.x closing handshake', () => {
  test('a text message then close 1000: the echo, then the close echo, then TCP closed', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Text, payload: 'Hello' }, { opcode: OP.Close, payload: closePayload(1000) });
      const result = await client.expectClose();
      assert.deepEqual(result.before.map((f) => f.payload.toString()), ['Hello']);
      assert.equal(result.code, 1000);
      assert.ok(result.tcpClosed);
    }));

  test('close 1000 with a reason: code and reason echoed', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Close, payload: closePayload(1000, 'Hello World!') });
      const result = await client.expectClose();
      assert.equal(result.code, 1000);
      assert.equal(result.reason.toString('utf8'), 'Hello World!');
      assert.ok(result.tcpClosed);
    }));

  test('close 1000 with a 123-byte reason (the most that fits) is echoed', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Close, payload: closePayload(1000, '*'.repeat(123)) });
      const result = await client.expectClose();
      assert.equal(result.code, 1000);
      assert.equal(result.reason.toString('utf8'), '*'.repeat(123));
      assert.ok(result.tcpClosed);
    }));

  test('close with a 124-byte reason (a 126-byte control frame) fails with 1002', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Close, payload: closePayload(1000, '*'.repeat(124)) });
      await expectFailure(client, 1002);
    }));

  test('close with an empty payload gets an empty close (or 1000) back', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Close });
      const result = await client.expectClose();
      assert.ok(result.code === 1005 || result.code === 1000, `expected an empty close or 1000, got ${result.code}`);
      assert.equal(result.reason.length, 0);
      assert.ok(result.tcpClosed);
    }));

  test('close with a 1-byte payload fails with 1002', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Close, payload: Buffer.from([0x03]) });
      await expectFailure(client, 1002);
    }));

  test('close with an invalid UTF-8 reason fails with 1007', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Close, payload: closePayload(1000, Buffer.concat([Buffer.from('κόσμε'), Buffer.from([0xf4, 0x90, 0x80, 0x80])])) });
      await expectFailure(client, 1007);
    }));

  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
    test(`valid close code ${code} is echoed`, () =>
      withClient(async (client) => {
        client.send({ opcode: OP.Close, payload: closePayload(code) });
        const result = await client.expectClose();
        assert.equal(result.code, code);
        assert.ok(result.tcpClosed, 'the server must close TCP after the closing handshake');
      }));
  }

  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    test(`invalid close code ${code} fails with 1002`, () =>
      withClient(async (client) => {
        client.send({ opcode: OP.Close, payload: closePayload(code) });
        await expectFailure(client, 1002);
      }));
  }

  test('data frames and pings after a close are ignored', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Close, payload: closePayload(1000) }, { opcode: OP.Text, payload: 'after close' }, { opcode: OP.Ping, payload: 'after close' });
      const result = await client.expectClose();
      assert.equal(result.code, 1000);
      const extra = await client.nextFrame(100).then(
        (frame) => frame,
        () => undefined,
      );
      assert.equal(extra, undefined, `nothing may follow the close frame, got opcode ${extra?.opcode}`);
      assert.ok(result.tcpClosed);
    }));

  test('a second close frame is ignored', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Close, payload: closePayload(1000) }, { opcode: OP.Close, payload: closePayload(1001) });
      const result = await client.expectClose();
      assert.equal(result.code, 1000);
      assert.ok(result.tcpClosed);
    }));

  test('a close in the middle of a fragmented message: the fragment is dropped, the close echoed', () =>
    withClient(async (client) => {
      client.send(
        { opcode: OP.Text, payload: 'fragment1', fin: false },
        { opcode: OP.Close, payload: closePayload(1000) },
        { opcode: OP.Continuation, payload: 'fragment2' },
      );
      const result = await client.expectClose();
      assert.equal(result.code, 1000);
      assert.deepEqual(result.before, []);
      assert.ok(result.tcpClosed);
    }));

  test('a 256 KiB message then close: the echo comes first, whole', () =>
    withClient(async (client) => {
      client.send({ opcode: OP.Binary, payload: binary(256 * 1024) }, { opcode: OP.Close, payload: closePayload(1000) });
      const message = await client.nextMessage();
      assert.ok(message.payload.equals(binary(256 * 1024)));
      const result = await client.expectClose();
      assert.equal(result.code, 1000);
      assert.ok(result.tcpClosed);
    }));
});

describe('9.x / 10.x sizes and limits', () => {
  test('a 16 MiB binary message in 64 KiB frames is echoed intact', () =>
    withClient(async (client) => {
      const size = 16 << 20;
      const message = Buffer.allocUnsafe(size);
      for (let i = 0; i < size; i += 4) message.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, i);
      const frame = 64 * 1024;
      const frames: FrameSpec[] = [];
      for (let at = 0; at < size; at += frame) {
        frames.push({ opcode: at === 0 ? OP.Binary : OP.Continuation, payload: message.subarray(at, at + frame), fin: at + frame >= size });
      }
      for (let i = 0; i < frames.length; i += 16) await client.write(Buffer.concat(frames.slice(i, i + 16).map(encodeFrame)));
      const echoed = await client.nextMessage(5000);
      assert.equal(echoed.opcode, OP.Binary);
      assert.equal(echoed.payload.length, size);
      assert.ok(echoed.payload.equals(message), '16 MiB echo differs');
      await closeNormally(client);
    }));

  test('a frame header announcing more than maxMessageSize (1024) gets 1009 before any payload is sent', () =>
    withClient(
      async (client) => {
        const frame = encodeFrame({ opcode: OP.Binary, payload: binary(2048) });
        await client.write(frame.subarray(0, 8)); // 2 + 2 length + 4 mask: the header alone
        const result = await expectFailure(client, 1009, 500);
        assert.deepEqual(result.before, []);
      },
      { port: limited.port },
    ));

  test('fragments adding up to more than maxMessageSize (1024) get 1009', () =>
    withClient(
      async (client) => {
        client.send({ opcode: OP.Text, payload: text(600), fin: false }, { opcode: OP.Continuation, payload: text(600) });
        await expectFailure(client, 1009);
      },
      { port: limited.port },
    ));

  test('a message of exactly maxMessageSize (1024) is echoed', () =>
    withClient(
      async (client) => {
        client.send({ opcode: OP.Text, payload: text(1024) });
        await expectEcho(client, OP.Text, text(1024));
        await closeNormally(client);
      },
      { port: limited.port },
    ));

  test('a compressed message inflating beyond maxMessageSize (1024) gets 1009', () =>
    withClient(
      async (client) => {
        assert.match(client.headers['sec-websocket-extensions'] ?? '', /permessage-deflate/);
        client.send({ opcode: OP.Text, rsv: RSV1, payload: compress(text(64 * 1024)) });
        await expectFailure(client, 1009);
      },
      { port: limited.port, extensions: 'permessage-deflate' },
    ));
});

/** RFC 7692 §7.2.1: compress, flush with Z_SYNC_FLUSH and drop the trailing 00 00 ff ff. */
function compress(data: Buffer, windowBits = 15): Buffer {
  const out = deflateRawSync(data, { finishFlush: zlibConstants.Z_SYNC_FLUSH, windowBits });
  assert.ok(out.subarray(-4).equals(Buffer.from([0, 0, 0xff, 0xff])));
  return out.subarray(0, -4);
}

/**
 * The client's side of the server's compressed stream. With context takeover a message may
 * refer to earlier ones, so the whole stream is inflated again (tests send few, small messages).
 */
class Inflater {
  private stream: Buffer[] = [];
  private produced = 0;
  constructor(private readonly contextTakeover: boolean) {}
  inflate(payload: Buffer): Buffer {
    const piece = Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]);
    if (!this.contextTakeover) return inflateRawSync(piece, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    this.stream.push(piece);
    const all = inflateRawSync(Buffer.concat(this.stream), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    const out = all.subarray(this.produced);
    this.produced = all.length;
    return out;
  }
}

/** Read the next message, inflating it if RSV1 is set. */
async function nextDecompressed(client: RawClient, inflater: Inflater): Promise<{ opcode: number; payload: Buffer; compressed: boolean }> {
  const message = await client.nextMessage(3000);
  const compressed = (message.rsv & RSV1) !== 0;
  return { opcode: message.opcode, payload: compressed ? inflater.inflate(message.payload) : message.payload, compressed };
}

const sample = (n: number): Buffer => Buffer.from('Hello, compressed world! κόσμε 😀 '.repeat(Math.ceil(n / 30))).subarray(0, n);

describe('12.x / 13.x permessage-deflate', () => {
  test('a bare offer is accepted; compressed text and binary messages of 16 B – 1 MiB are echoed', () =>
    withClient(
      async (client) => {
        const answer = client.headers['sec-websocket-extensions'] ?? '';
        assert.match(answer, /^permessage-deflate\b/);
        const inflater = new Inflater(!/server_no_context_takeover/.test(answer));
        for (const size of [16, 64, 256, 1024, 4096, 65536, 1 << 20]) {
          // ASCII-only so the cut at `size` bytes leaves valid UTF-8.
          const data = Buffer.alloc(size, 'compressible text ');
          client.send({ opcode: OP.Text, rsv: RSV1, payload: compress(data) });
          const echoed = await nextDecompressed(client, inflater);
          assert.equal(echoed.opcode, OP.Text);
          assert.ok(echoed.payload.equals(data), `compressed text of ${size} bytes: echo differs`);
          const bytes = sample(size);
          client.send({ opcode: OP.Binary, rsv: RSV1, payload: compress(bytes) });
          const echoedBinary = await nextDecompressed(client, inflater);
          assert.equal(echoedBinary.opcode, OP.Binary);
          assert.ok(echoedBinary.payload.equals(bytes), `compressed binary of ${size} bytes: echo differs`);
        }
        await closeNormally(client);
      },
      { extensions: 'permessage-deflate; client_max_window_bits' },
    ));

  test('an empty compressed message and an uncompressed one on the same connection are echoed', () =>
    withClient(
      async (client) => {
        const inflater = new Inflater(true);
        client.send({ opcode: OP.Text, rsv: RSV1, payload: compress(Buffer.alloc(0)) });
        assert.equal((await nextDecompressed(client, inflater)).payload.length, 0);
        client.send({ opcode: OP.Text, payload: 'plain' });
        assert.equal((await nextDecompressed(client, inflater)).payload.toString(), 'plain');
        await closeNormally(client);
      },
      { extensions: 'permessage-deflate' },
    ));

  test('a compressed message split over three frames (RSV1 on the first only) is echoed', () =>
    withClient(
      async (client) => {
        const data = Buffer.from('fragmented and compressed, '.repeat(200));
        const deflated = compress(data);
        const third = Math.ceil(deflated.length / 3);
        client.send(
          { opcode: OP.Text, rsv: RSV1, payload: deflated.subarray(0, third), fin: false },
          { opcode: OP.Continuation, payload: deflated.subarray(third, 2 * third), fin: false },
          { opcode: OP.Continuation, payload: deflated.subarray(2 * third) },
        );
        const echoed = await nextDecompressed(client, new Inflater(true));
        assert.ok(echoed.payload.equals(data));
        await closeNormally(client);
      },
      { extensions: 'permessage-deflate' },
    ));

  test('RSV1 on a continuation frame fails with 1002', () =>
    withClient(
      async (client) => {
        const deflated = compress(Buffer.from('x'.repeat(100)));
        client.send({ opcode: OP.Text, rsv: RSV1, payload: deflated.subarray(0, 2), fin: false }, { opcode: OP.Continuation, rsv: RSV1, payload: deflated.subarray(2) });
        await expectFailure(client, 1002);
      },
      { extensions: 'permessage-deflate' },
    ));

  test('RSV1 on a ping fails with 1002 even with the extension', () =>
    withClient(
      async (client) => {
        client.send({ opcode: OP.Ping, rsv: RSV1, payload: 'x' });
        await expectFailure(client, 1002);
      },
      { extensions: 'permessage-deflate' },
    ));

  test('compressed text that inflates to invalid UTF-8 fails with 1007', () =>
    withClient(
      async (client) => {
        client.send({ opcode: OP.Text, rsv: RSV1, payload: compress(Buffer.concat([Buffer.from('κόσμε'), Buffer.from([0xf4, 0x90, 0x80, 0x80])])) });
        await expectFailure(client, 1007);
      },
      { extensions: 'permessage-deflate' },
    ));

  test('a corrupt deflate stream fails the connection (1007 or 1002)', () =>
    withClient(
      async (client) => {
        client.send({ opcode: OP.Binary, rsv: RSV1, payload: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]) });
        const result = await client.expectClose();
        assert.ok([1002, 1007].includes(result.code), `got ${describeClose(closePayload(result.code, result.reason))}`);
        assert.ok(result.tcpClosed);
      },
      { extensions: 'permessage-deflate' },
    ));

  test('an offer with client_no_context_takeover and server_max_window_bits=9 is answered accordingly', () =>
    withClient(
      async (client) => {
        const answer = client.headers['sec-websocket-extensions'] ?? '';
        assert.match(answer, /^permessage-deflate\b/, `answer: ${answer}`);
        const bits = /server_max_window_bits=(\d+)/.exec(answer);
        assert.ok(bits, `the answer must carry server_max_window_bits (offered 9): ${answer}`);
        assert.ok(Number(bits[1]) >= 8 && Number(bits[1]) <= 9, `server_max_window_bits must be ≤ 9: ${answer}`);
        assert.doesNotMatch(answer, /client_max_window_bits/, 'client_max_window_bits was not offered, so it may not be answered');
        // A client without context takeover compresses each message on its own.
        const inflater = new Inflater(!/server_no_context_takeover/.test(answer));
        for (let i = 0; i < 3; i++) {
          const data = Buffer.from(`message ${i}: ${'window bits nine '.repeat(100)}`);
          client.send({ opcode: OP.Text, rsv: RSV1, payload: compress(data) });
          const echoed = await nextDecompressed(client, inflater);
          assert.ok(echoed.payload.equals(data), `message ${i} differs`);
        }
        await closeNormally(client);
      },
      { extensions: 'permessage-deflate; client_no_context_takeover; server_max_window_bits=9' },
    ));

  test('an offer with server_max_window_bits=8: the echo inflates with a 256-byte window', () =>
    withClient(
      async (client) => {
        const answer = client.headers['sec-websocket-extensions'] ?? '';
        assert.match(answer, /server_max_window_bits=8\b/, `answer: ${answer}`);
        // Repeats 300 bytes apart: a compressor using a bigger window would reach back past 256.
        const unit = sample(300);
        const data = Buffer.concat(Array.from({ length: 20 }, () => unit));
        client.send({ opcode: OP.Binary, rsv: RSV1, payload: compress(data) });
        const message = await client.nextMessage();
        const payload = (message.rsv & RSV1) !== 0 ? inflateRawSync(Buffer.concat([message.payload, Buffer.from([0, 0, 0xff, 0xff])]), { windowBits: 8, finishFlush: zlibConstants.Z_SYNC_FLUSH }) : message.payload;
        assert.ok(payload.equals(data));
        await closeNormally(client);
      },
      { extensions: 'permessage-deflate; server_max_window_bits=8' },
    ));

  test('6.4.x fail fast, compressed: a first compressed fragment (FIN=0) inflating to invalid UTF-8 → 1007 within 500 ms', () =>
    withClient(
      async (client) => {
        const bytes = Buffer.concat([Buffer.from('κόσμε'), Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from('edited')]);
        client.send({ opcode: OP.Text, rsv: RSV1, payload: compress(bytes), fin: false });
        await expectFailure(client, 1007, 500);
      },
      { extensions: 'permessage-deflate' },
    ));

  test('an offer with server_no_context_takeover: every echo inflates on its own', () =>
    withClient(
      async (client) => {
        const answer = client.headers['sec-websocket-extensions'] ?? '';
        assert.match(answer, /server_no_context_takeover/, `answer: ${answer}`);
        const inflater = new Inflater(false);
        for (let i = 0; i < 3; i++) {
          const data = Buffer.from('the same text again and again '.repeat(50));
          client.send({ opcode: OP.Text, rsv: RSV1, payload: compress(data) });
          const echoed = await nextDecompressed(client, inflater);
          assert.ok(echoed.compressed, 'a 1.5 KB repetitive text should come back compressed');
          assert.ok(echoed.payload.equals(data), `message ${i} differs`);
        }
        await closeNormally(client);
      },
      { extensions: 'permessage-deflate; server_no_context_takeover' },
    ));

  test('an offer with client_max_window_bits=9: messages compressed with a 512-byte window are read', () =>
    withClient(
      async (client) => {
        const answer = client.headers['sec-websocket-extensions'] ?? '';
        assert.match(answer, /^permessage-deflate\b/, `answer: ${answer}`);
        const inflater = new Inflater(!/server_no_context_takeover/.test(answer));
        const data = Buffer.from(sample(8192));
        client.send({ opcode: OP.Binary, rsv: RSV1, payload: compress(data, 9) });
        assert.ok((await nextDecompressed(client, inflater)).payload.equals(data));
        await closeNormally(client);
      },
      { extensions: 'permessage-deflate; client_max_window_bits=9' },
    ));

  test('an offer the server cannot accept (unknown parameter) falls back to the next one', () =>
    withClient(
      async (client) => {
        const answer = client.headers['sec-websocket-extensions'] ?? '';
        assert.match(answer, /^permessage-deflate\b/, `answer: ${answer}`);
        assert.doesNotMatch(answer, /foo/);
        client.send({ opcode: OP.Text, rsv: RSV1, payload: compress(Buffer.from('hello')) });
        assert.equal((await nextDecompressed(client, new Inflater(true))).payload.toString(), 'hello');
        await closeNormally(client);
      },
      { extensions: 'permessage-deflate; foo=1, permessage-deflate' },
    ));
});
