// One end of the IPC broker as a process of its own, forked by test/hub/brokers-ipc.test.ts:
//
//   fork('dist/test/hub/ipc-process.js', ['primary', '--idempotency-window', '600'])
//     the primary: an IpcBrokerPrimary serving its parent (the test, whose IpcBrokers are then
//     the workers); sends {ready: true} once it serves.
//   fork('dist/test/hub/ipc-process.js', ['worker', '--topic', T, '--members', '2'])
//     a worker: an IpcBroker to its parent (the test, running the IpcBrokerPrimary) that joins
//     that many members to topic T; sends {joined: [connIds], node} once the primary has them.
//
// Both then wait to be killed (or for their parent to go).
import { parseArgs } from 'node:util';

import { IpcBroker, IpcBrokerPrimary, type IpcPort } from '../../src/hub/brokers/ipc.js';

const { values, positionals } = parseArgs({
  options: { 'idempotency-window': { type: 'string' }, topic: { type: 'string' }, members: { type: 'string' } },
  allowPositionals: true,
  strict: true,
});

async function main(): Promise<void> {
  const role = positionals[0];
  // `node --test dist/test/` runs every .js under a test/ folder, this one included: without a
  // role (and a channel to a parent) it is not an end being started but a file with no tests.
  if (role === undefined || process.send === undefined) return;
  const parent = process as unknown as IpcPort;
  if (role === 'primary') {
    const window = values['idempotency-window'];
    const primary = new IpcBrokerPrimary(window !== undefined ? { idempotencyWindow: Number(window) } : {});
    primary.attach(parent);
    process.send({ ready: true });
    return;
  }
  if (role === 'worker') {
    const topic = values.topic ?? 'ipc.worker';
    const count = Number(values.members ?? '1');
    const node = `worker-${process.pid}`;
    const broker = new IpcBroker();
    await broker.start({ id: node, onPublication() {}, onPresence() {}, onReconnect() {} });
    const joined: string[] = [];
    for (let i = 1; i <= count; i++) {
      const connId = `${node}.${i}`;
      await broker.join(topic, { connId, node, info: { name: `member ${i}` } });
      joined.push(connId);
    }
    process.send({ joined, node });
    return;
  }
  throw new TypeError(`unknown role ${role}: primary or worker`);
}

main().catch((error: unknown) => {
  process.stderr.write(`ipc-process: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
