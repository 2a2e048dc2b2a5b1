/**
 * The optional peer dependencies `duplex serve` needs, checked before any module that loads them
 * is evaluated (serve.ts imports this first), so a user without them is told every package to
 * install in one message rather than one per attempt.
 */
import { assertPeersInstalled } from '../node/peer.js';

assertPeersInstalled(['pino', 'prom-client'], 'duplex serve');
