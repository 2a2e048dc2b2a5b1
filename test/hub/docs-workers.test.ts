// The "A hub on every core" example of docs/hub.md, run as written in a child `node` on a free
// port: two worker processes of runWorkers, one hub across them over the IPC broker. Clients
// land on both workers; a publish on one worker reaches a subscriber on the other; SIGTERM to
// the primary closes them with 1001 and the example exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { docExample, startExample } from '../node/readme-example.js';
import { HubConn, until } from '../cli/hub-conn.js';

/** A port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

test('docs/hub.md: runWorkers runs a hub in two workers on one port, one hub across them', { timeout: 30_000 }, async (t) => {
  const port = await freePort();
  const code = docExample('docs/hub.md', 'A hub on every core', 'runWorkers({');
  const example = await startExample(code, { 'server.listen(8080)': `server.listen(${port})`, 'on port 8080': `on port ${port}` });
  const conns: HubConn[] = [];
  t.after(() => {
    for (const conn of conns) conn.ws.terminate();
    if (example.child.exitCode === null) example.child.kill('SIGKILL');
  });
  assert.equal(await example.nextLine(), `2 workers on port ${port}`);
  for (let i = 0; i < 4; i++) conns.push(await HubConn.open(`ws://127.0.0.1:${port}/hub`, `client ${i}`));
  const nodes = [...new Set(conns.map((c) => c.node))];
  assert.equal(nodes.length, 2, `clients on two hub nodes: ${conns.map((c) => c.node).join(', ')}`);
  const [here, there] = [conns.find((c) => c.node === nodes[0])!, conns.find((c) => c.node === nodes[1])!];
  await there.request('subscribe', { topic: 'news' });
  const ack = (await here.request('publish', { topic: 'news', data: { text: 'across workers' } })) as { offset: number };
  const message = await there.next('the publication from the other worker', (m) => m.type === 'message');
  assert.deepEqual([message.offset, message.data], [ack.offset, { text: 'across workers' }]);

  example.child.kill('SIGTERM');
  assert.equal(await example.exited, 0, example.stderr());
  await until('every client closed', () => conns.every((c) => c.closeCode !== undefined));
  assert.deepEqual(conns.map((c) => c.closeCode), [1001, 1001, 1001, 1001]);
});
