// A nats-server (JetStream) of our own, killed with SIGKILL and restarted mid-stream: see broker-restart-suite.ts.
import { brokerRestartSuite } from './broker-restart-suite.js';

brokerRestartSuite('nats');
