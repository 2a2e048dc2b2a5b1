// The "Both ends in memory" example of docs/protocol-engine.md, read from the guide and run as
// written in a child `node`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { docExample, runExample } from '../node/readme-example.js';

test('docs/protocol-engine.md: a client and a server engine wired in memory', async () => {
  const code = docExample('docs/protocol-engine.md', 'Both ends in memory', "side: 'client'");
  assert.deepEqual(await runExample(code), ['server got hello', 'client saw close 1000', 'server may close the socket: true']);
});
