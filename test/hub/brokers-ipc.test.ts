// The IPC broker against the broker contract, over a real IPC channel: each cluster is a forked
// process running the IpcBrokerPrimary (test/hub/ipc-process.ts) and two IpcBrokers here, the
// two "workers", on the channel to it. Then what only the IPC broker has: a worker killed has its
// presence removed at once (the primary sees its channel close), and a primary gone fails calls.
import assert from 'node:assert/strict';
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';

import { IpcBroker, IpcBrokerPrimary, type IpcPort } from '../../src/hub/brokers/ipc.js';
import { brokerContract, RecordingNode, uniqueTopic } from './broker-contract.js';

const FIXTURE = join(process.cwd(), 'dist', 'test', 'hub', 'ipc-process.js');
const KEEP = { size: 100, ttl: 60_000 };

/** Fork an end of the IPC broker (see ipc-process.ts) and wait for its first message. */
async function forkEnd(args: string[]): Promise<{ child: ChildProcess; first: Record<string, unknown> }> {
  const child = fork(FIXTURE, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ipc-process ${args.join(' ')}: no message in 5 s`)), 5000);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve(message as Record<string, unknown>);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ipc-process ${args.join(' ')} exited with ${code}`));
    });
  });
  return { child, first };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

brokerContract('ipc', async (options) => {
  const args = ['primary', ...(options.idempotencyWindow !== undefined ? ['--idempotency-window', String(options.idempotencyWindow)] : [])];
  const { child } = await forkEnd(args);
  const port = child as unknown as IpcPort;
  const a = new IpcBroker({ port });
  const b = new IpcBroker({ port });
  return {
    brokers: [a, b],
    async cleanup() {
      await Promise.all([a.close(), b.close()]);
      await kill(child);
    },
  };
});

/** Two ends of an in-process channel that behaves like Node's: JSON copies, delivered on a later turn. */
function channelPair(): [IpcPort, IpcPort] {
  class End extends EventEmitter {
    connected = true;
    peer: End | undefined;
    send(message: object, _handle: undefined, _options: undefined, callback: (error: Error | null) => void): boolean {
      const copy: unknown = JSON.parse(JSON.stringify(message));
      setImmediate(() => this.peer?.emit('message', copy));
      callback(null);
      return true;
    }
  }
  const a = new End();
  const b = new End();
  a.peer = b;
  b.peer = a;
  return [a as unknown as IpcPort, b as unknown as IpcPort];
}

describe('ipc broker', () => {
  test('a worker killed with SIGKILL: its members leave at once, others see the leaves', { timeout: 10_000 }, async () => {
    const primary = new IpcBrokerPrimary();
    // The observer: another worker, in this process, on a channel of its own to the primary.
    const [observerEnd, primaryEnd] = channelPair();
    primary.attach(primaryEnd);
    const observer = new IpcBroker({ port: observerEnd });
    const watching = new RecordingNode('observer');
    const topic = uniqueTopic('killed');
    let worker: ChildProcess | undefined;
    try {
      await observer.start(watching);
      await observer.subscribe(topic);
      await observer.join(topic, { connId: 'observer.1', node: watching.id });
      const forked = fork(FIXTURE, ['worker', '--topic', topic, '--members', '2'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      worker = forked;
      const detach = primary.attach(forked as unknown as IpcPort);
      // The first message that is not the broker's own (those travel in its envelope).
      const joined = await new Promise<{ joined: string[]; node: string }>((resolve) => {
        const listener = (message: { joined?: string[]; node: string }): void => {
          if (message.joined === undefined) return;
          forked.off('message', listener);
          resolve(message as { joined: string[]; node: string });
        };
        forked.on('message', listener);
      });
      assert.deepEqual((await observer.presence(topic)).map((m) => m.connId).sort(), ['observer.1', ...joined.joined].sort());
      assert.equal(primary.workers, 2);

      const killedAt = performance.now();
      await kill(forked);
      await watching.waitFor('the leaves of the killed worker', () => joined.joined.every((id) => watching.presenceEvents.some((e) => e.kind === 'leave' && e.member.connId === id)), 1000);
      const took = performance.now() - killedAt;
      assert.ok(took < 1000, `leaves announced ${took.toFixed(0)} ms after the kill`);
      assert.deepEqual((await observer.presence(topic)).map((m) => m.connId), ['observer.1'], 'the survivor keeps its own member');
      assert.equal(await detach(), 1, 'the killed worker had one broker; detach after the fact says so');
      assert.equal(primary.workers, 1);
      // The survivor keeps working.
      const publication = await observer.publish(topic, '"still here"', KEEP);
      await watching.waitFor('its own publication', () => watching.on(topic).some((p) => p.offset === publication.offset));
    } finally {
      if (worker !== undefined) await kill(worker);
      await observer.close();
      await primary.close();
    }
  });

  test('the primary gone: the broker reports disconnected and calls reject with IpcBrokerError', { timeout: 10_000 }, async () => {
    const { child } = await forkEnd(['primary']);
    const broker = new IpcBroker({ port: child as unknown as IpcPort });
    const node = new RecordingNode('orphan');
    try {
      await broker.start(node);
      const topic = uniqueTopic('orphan');
      await broker.subscribe(topic);
      assert.equal((await broker.publish(topic, '1', KEEP)).offset, 1);
      await kill(child);
      await node.waitFor('disconnected', () => node.states.includes('disconnected'));
      assert.deepEqual(node.states, ['connected', 'disconnected']);
      await assert.rejects(broker.publish(topic, '2', KEEP), { name: 'IpcBrokerError', message: /channel to the primary process is closed/ });
      await assert.rejects(broker.presence(topic), { name: 'IpcBrokerError' });
    } finally {
      await broker.close();
      await kill(child);
    }
  });

  test('start() in a process without an IPC channel says how to run it', { timeout: 10_000 }, async () => {
    const module = join(process.cwd(), 'dist', 'src', 'hub', 'brokers', 'ipc.js');
    const script = `
      const { IpcBroker } = await import(${JSON.stringify(module)});
      try {
        await new IpcBroker().start({ id: 'n', onPublication() {}, onPresence() {}, onReconnect() {} });
        console.log('started');
      } catch (error) {
        console.log(error.name + ': ' + error.message);
      }`;
    const output = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 5000 }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
    });
    assert.match(output, /^IpcBrokerError: ipc broker: this process has no IPC channel to a primary; run it as a worker of runWorkers/);
  });

  test('several brokers of one process share the channel; each gets only its own topics', { timeout: 10_000 }, async () => {
    const primary = new IpcBrokerPrimary();
    const [workerEnd, primaryEnd] = channelPair();
    primary.attach(primaryEnd);
    const one = new IpcBroker({ port: workerEnd });
    const two = new IpcBroker({ port: workerEnd });
    const nodeOne = new RecordingNode('one');
    const nodeTwo = new RecordingNode('two');
    try {
      await one.start(nodeOne);
      await two.start(nodeTwo);
      const topic = uniqueTopic('shared');
      await one.subscribe(topic);
      await two.publish(topic, '"to one"', KEEP);
      await nodeOne.waitFor('the publication', () => nodeOne.on(topic).length === 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(nodeTwo.publications.length, 0, 'two did not subscribe');
      await one.close();
      // One broker closed leaves the channel to the other.
      await two.subscribe(topic);
      assert.equal((await two.publish(topic, '"to two"', KEEP)).offset, 2);
      await nodeTwo.waitFor('its publication', () => nodeTwo.on(topic).length === 1);
    } finally {
      await one.close();
      await two.close();
      await primary.close();
    }
  });
});
