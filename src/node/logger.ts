/**
 * The logging seam. Its shape is the common subset of pino, bunyan and console-like loggers
 * (`logger.warn({ fields }, 'message')`), so a pino instance can be passed as is.
 */

/** Structured fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** A structured logger. */
export interface Logger {
  /** Routine detail of one connection (a close frame arrived, a socket error after the peer left). */
  debug(fields: LogFields, message: string): void;
  /** Expected events worth a line (a connection closed for a missing pong or idleness, shutdown, broker state). */
  info(fields: LogFields, message: string): void;
  /** A peer misbehaved or was refused (protocol error, slow consumer, rate limit, rejected handshake). */
  warn(fields: LogFields, message: string): void;
  /** Something on this side failed (an application handler or hook threw, a broker call failed). */
  error(fields: LogFields, message: string): void;
}

const noop = (): void => {};

/** A logger that drops everything (the library default: a library should not print unasked). */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** A log level, from most to least verbose: `'debug'`, `'info'`, `'warn'`, `'error'`; a level shows itself and the ones after it. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** A small line-per-event logger to a stream (the CLI's default). */
export function createConsoleLogger(
  level: LogLevel = 'info',
  stream: { write(s: string): unknown } = process.stderr,
  json = false,
): Logger {
  const min = LEVELS.indexOf(level);
  const make = (lvl: LogLevel) =>
    LEVELS.indexOf(lvl) < min
      ? noop
      : (fields: LogFields, message: string): void => {
          const time = new Date().toISOString();
          if (json) {
            stream.write(JSON.stringify({ time, level: lvl, msg: message, ...fields }) + '\n');
            return;
          }
          const extra = Object.entries(fields)
            .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
            .join(' ');
          stream.write(`${time} ${lvl.toUpperCase().padEnd(5)} ${message}${extra ? ' ' + extra : ''}\n`);
        };
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}
