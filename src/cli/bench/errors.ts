/** What went wrong during a `duplex bench` run, counted by kind, with a few distinct messages. */
import { HandshakeError } from '../../protocol/errors.js';
import type { ErrorReport } from './report.js';

/** Distinct error messages kept for the report. */
const MAX_EXAMPLES = 8;

export class ErrorTally {
  readonly report: ErrorReport = { total: 0, handshake: {}, connect: {}, protocol: 0, unexpectedClose: 0, unexpectedMessage: 0, examples: [] };

  /** Something wrong on an open connection. */
  count(kind: 'protocol' | 'unexpectedClose' | 'unexpectedMessage', message: string): void {
    this.report[kind]++;
    this.note(message);
  }

  /** A connection that could not be opened: a refused handshake (by status) or a socket error (by code). */
  connectFailed(error: Error): void {
    const errors = this.report;
    if (error instanceof HandshakeError) {
      const status = String(error.status);
      errors.handshake[status] = (errors.handshake[status] ?? 0) + 1;
      this.note(`handshake failed: ${error.message}`);
    } else {
      const code = (error as NodeJS.ErrnoException).code ?? 'ERROR';
      errors.connect[code] = (errors.connect[code] ?? 0) + 1;
      const hint = code === 'EMFILE' ? ' (raise the open-file limit: ulimit -n)' : '';
      this.note(`${error.message}${hint}`);
    }
  }

  private note(message: string): void {
    const errors = this.report;
    errors.total++;
    const known = errors.examples.find((e) => e.message === message);
    if (known) known.count++;
    else if (errors.examples.length < MAX_EXAMPLES) errors.examples.push({ message, count: 1 });
  }
}
