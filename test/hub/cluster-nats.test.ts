// Hub nodes in separate processes on the machine's NATS with JetStream (127.0.0.1:4222): see cluster-suite.ts.
import { serviceCheck } from './broker-contract.js';
import { clusterSuite } from './cluster-suite.js';

const skip = await serviceCheck('NATS', '127.0.0.1', 4222, '.ci/run starts it (nats-server -js -p 4222) when installed');
clusterSuite('nats', 'nats://127.0.0.1:4222', skip);
