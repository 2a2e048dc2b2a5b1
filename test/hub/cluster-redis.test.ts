// Hub nodes in separate processes on the machine's Redis (127.0.0.1:6379): see cluster-suite.ts.
import { serviceCheck } from './broker-contract.js';
import { clusterSuite } from './cluster-suite.js';

const skip = await serviceCheck('Redis', '127.0.0.1', 6379, '.ci/run starts it (redis-server --daemonize yes --port 6379) when installed');
clusterSuite('redis', 'redis://127.0.0.1:6379', skip);
