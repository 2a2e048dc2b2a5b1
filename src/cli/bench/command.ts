/**
 * `duplex bench URL`: a load generator for any WebSocket server (duplex, `ws`, or anything else
 * that echoes or broadcasts). The flags (options.ts) say what to run; the run (run.ts) drives
 * raw sockets with the sans-I/O engine; the report goes to stdout, as text or one JSON line.
 */
import type { Parsed } from '../args.js';
import { benchOptions } from './options.js';
import { formatReport } from './report.js';
import { bench } from './run.js';

export async function benchCommand(parsed: Parsed): Promise<number> {
  const { json, ...options } = benchOptions(parsed);
  const report = await bench(options);
  if (json) process.stdout.write(JSON.stringify(report) + '\n');
  else if (report.connections.opened > 0) process.stdout.write(formatReport(report));
  if (report.connections.opened === 0) {
    const reason = report.errors.examples[0]?.message ?? 'no connection was opened';
    process.stderr.write(`duplex bench: could not connect to ${options.url}: ${reason}\n`);
    return 1;
  }
  return 0;
}
