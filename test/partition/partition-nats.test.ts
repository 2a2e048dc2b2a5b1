// Partitions, delay and loss between real hosts (network namespaces) with NATS JetStream as the
// broker: see partition-suite.ts, bed.ts and docs/partitions.md. The links are TUN pairs driven by
// a user-space forwarder (netem.py, Debian's python3 standard library; the kernel has no netem).
import { partitionSuite } from './partition-suite.js';

partitionSuite('nats');
