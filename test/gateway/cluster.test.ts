// The gateway across processes: two `duplex serve` processes on one Redis, then one NATS, with
// the Python backend's hooks and the server API. A publish through node A's API reaches a
// subscriber on node B; disconnect of a user through A closes its connection on B; the
// subscribe hook refuses on B as on A; info and topics see both nodes; a server-side subscribe
// through A reaches B's connection; an idempotency key holds across the two nodes' APIs.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { HubClient, type Json } from '../../src/hub/index.js';
import { serviceCheck } from '../hub/broker-contract.js';
import { cleanupBroker, delay, killAll, startChild, type Child } from '../hub/cluster-helpers.js';
import { startPythonBackend, type PythonBackend } from './python-backend.js';

const KEY = 'cluster-gateway-key-0123456789abcdef';
const MAIN = fileURLToPath(new URL('../../../bin/duplex.js', import.meta.url));

after(killAll);

interface ServeNode {
  readonly child: Child;
  readonly url: string;
  readonly ws: string;
}

/** `duplex serve` in a process of its own, configured by environment variables as an operator would. */
async function startServeNode(broker: string, prefix: string, backend: PythonBackend): Promise<ServeNode> {
  const child = startChild('duplex serve', process.execPath, [MAIN, 'serve'], {
    DUPLEX_PORT: '0',
    DUPLEX_BROKER: broker,
    DUPLEX_BROKER_PREFIX: prefix,
    DUPLEX_API_KEYS: KEY,
    DUPLEX_HOOK_CONNECT_URL: backend.hooks.connect,
    DUPLEX_HOOK_SUBSCRIBE_URL: backend.hooks.subscribe,
    DUPLEX_DEMO_FEED: 'false',
    DUPLEX_APPS: 'false',
  });
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`duplex serve not listening:\n${child.output()}`)), 15_000);
    child.process.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    void child.exited.then((code) => reject(new Error(`duplex serve exited (${String(code)}):\n${child.output()}`)));
  });
  return { child, url: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws` };
}

async function api(node: ServeNode, method: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${node.url}/api/${method}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `apikey ${KEY}` }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function client(node: ServeNode, session: string): HubClient {
  return new HubClient(node.ws, { requestTimeout: 5000, reconnect: { minDelay: 20, maxDelay: 200, headers: { cookie: `session=${session}` } } });
}

/** Messages a client received, by topic. */
function recorder(c: HubClient): Array<[string, Json]> {
  const seen: Array<[string, Json]> = [];
  c.on('message', (data, meta) => seen.push([meta.topic, data]));
  return seen;
}

async function eventually(check: () => Promise<boolean> | boolean, what: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out: ${what}`);
    await delay(20);
  }
}

const BROKERS = [
  { name: 'redis', url: 'redis://127.0.0.1:6379', host: '127.0.0.1', port: 6379, start: '.ci/run starts it (redis-server --daemonize yes --port 6379)' },
  { name: 'nats', url: 'nats://127.0.0.1:4222', host: '127.0.0.1', port: 4222, start: '.ci/run starts it (nats-server -js -p 4222)' },
] as const;

for (const broker of BROKERS) {
  const skip = await serviceCheck(broker.name === 'redis' ? 'Redis' : 'NATS', broker.host, broker.port, broker.start);
  describe(`gateway on ${broker.name} across two duplex serve processes`, { skip, timeout: 90_000 }, () => {
    test('server API and hooks span the nodes', async () => {
      const prefix = `dxg${broker.name}${randomBytes(3).toString('hex')}`;
      const backend = await startPythonBackend();
      const a = await startServeNode(broker.url, prefix, backend);
      const b = await startServeNode(broker.url, prefix, backend);
      const clients: HubClient[] = [];
      try {
        await backend.configure(a.url, KEY);
        const ada = client(b, 's-ada');
        const bob = client(a, 's-bob');
        clients.push(ada, bob);
        const adaSeen = recorder(ada);
        const bobSeen = recorder(bob);
        await ada.subscribe('news');
        await bob.subscribe('news');
        assert.equal(ada.userId, 'ada', 'the connect hook named the user on node B');

        // Both nodes know each other (the control plane's announcements).
        await eventually(async () => ((await api(a, 'info', {})).body['result'] as { nodes: unknown[] }).nodes.length === 2, 'A sees two nodes');

        // The Python backend publishes through A's API; the subscriber on B gets it.
        const published = await backend.api('publish', { topic: 'news', data: { headline: 'from Python' }, idempotency_key: 'n-1' });
        assert.equal(published.status, 200, JSON.stringify(published.body));
        await eventually(() => adaSeen.length === 1 && bobSeen.length === 1, 'both subscribers got it');
        assert.deepEqual(adaSeen[0], ['news', { headline: 'from Python' }]);
        // The same key through B's API: the same publication, nothing delivered again.
        const retried = await api(b, 'publish', { topic: 'news', data: { headline: 'from Python' }, idempotency_key: 'n-1' });
        assert.deepEqual(retried.body['result'], published.body['result']);
        await delay(200);
        assert.equal(adaSeen.length, 1);

        // The subscribe hook refuses on B too.
        await assert.rejects(ada.subscribe('chat:secret-room'), (error: unknown) => (error as { code?: string }).code === 'E_FORBIDDEN');

        // topics through A counts the subscribers of both nodes.
        const topics = (await api(a, 'topics', { pattern: 'ne*' })).body['result'] as { topics: Array<{ topic: string; subscribers: number }>; nodes: number };
        assert.deepEqual(topics.topics, [{ topic: 'news', subscribers: 2 }]);
        assert.equal(topics.nodes, 2);

        // A server-side subscribe through A reaches ada's connection on B.
        assert.equal((await api(a, 'subscribe', { user: 'ada', topic: 'alerts' })).status, 200);
        await eventually(async () => ((await api(b, 'presence_stats', { topic: 'alerts' })).body['result'] as { connections: number }).connections === 1, 'ada subscribed to alerts');
        await api(b, 'publish', { topic: 'alerts', data: 'fire drill' });
        await eventually(() => adaSeen.some(([topic]) => topic === 'alerts'), 'ada got the alert');
        assert.equal(bobSeen.some(([topic]) => topic === 'alerts'), false);

        // disconnect of ada through A closes her connection on B (1008 by default: her client stops).
        const closed = new Promise<void>((resolve) => ada.on('closed', () => resolve()));
        assert.equal((await api(a, 'disconnect', { user: 'ada' })).status, 200);
        await closed;
        assert.equal(ada.state, 'closed');
        assert.equal(bob.state, 'connected');
      } finally {
        for (const c of clients) await c.close();
        await a.child.stop();
        await b.child.stop();
        await backend.stop();
        await cleanupBroker(broker.url, prefix);
      }
    });
  });
}
