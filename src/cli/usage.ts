/**
 * The usage texts of `duplex` and its commands: the prose is here, the option lines are made
 * from the flag definitions (flags.ts). Kept apart from the commands so that
 * `duplex <command> --help` prints them without loading the command (and what only it needs,
 * e.g. pino for `serve`). docs/cli.md is the long form.
 */
import type { Flag, Flags } from './args.js';
import { BENCH_FLAGS, CONNECT_FLAGS, ECHO_FLAGS, HELP_FLAGS, SERVE_FLAGS } from './flags.js';
import { configDefault } from './serve-config.js';

/**
 * The option lines of a usage text, `-h, --help` last: the flag, then its description from
 * `column` on (one space after a flag that reaches it), continuation lines indented to `column`.
 */
function optionLines(flags: Flags, column: number, defaultOf: (flag: Flag) => unknown = (flag) => flag.default): string {
  const all: Flags = { ...flags, ...HELP_FLAGS };
  let text = '';
  for (const [name, flag] of Object.entries(all)) {
    const left = `  ${flag.short !== undefined ? `-${flag.short}, ` : '    '}--${name}${flag.value !== undefined ? ` ${flag.value}` : ''}`;
    const description = flag.description.replace(/\{(default|min|max)\}/g, (_, field: 'default' | 'min' | 'max') => {
      const value = field === 'default' ? defaultOf(flag) : flag.range?.[field];
      if (value === undefined) throw new TypeError(`the description of --${name} shows {${field}}, which it does not define`);
      return String(value);
    });
    const [first, ...more] = description.split('\n');
    text += `${left.length >= column ? `${left} ` : left.padEnd(column)}${first}\n`;
    for (const line of more) text += `${' '.repeat(column)}${line}\n`;
  }
  return text;
}

export const MAIN_USAGE = `Usage: duplex <command> [options]

Commands:
  connect URL   A WebSocket client for terminals and pipes: stdin lines are sent,
                received messages go to stdout, status to stderr (like wscat, websocat).
  echo          An echo server on every path of ws://HOST:PORT/.
  serve         The real-time hub at /ws, the browser client, the demo apps, /healthz, /metrics.
  bench URL     Load for any WebSocket server: messages/s, MB/s, latency percentiles, errors.
  help [CMD]    This text, or the options of CMD.
  version       Print "duplex <version>" (also --version, -V).

"duplex <command> --help" lists a command's options; docs/cli.md is the reference.
`;

export const CONNECT_USAGE = `Usage: duplex connect [options] URL
       duplex connect [options] -c URL

A WebSocket client. Each line of stdin is sent as a text message; every message received goes
to stdout, one per line; status, errors and pings go to stderr, so
  duplex connect ws://127.0.0.1:8080/ < in.txt > out.txt
leaves only the received messages in out.txt. When stdin ends the connection is closed with
1000 once the server answered the closing handshake (replies in flight still arrive).
Exit: 0 after a clean close, 1 if the connection failed or was lost, 2 on a usage error.

Options:
${optionLines(CONNECT_FLAGS, 27)}
Lines that start with a slash are commands:
  /ping [data]             send a ping (-P shows the pong)
  /close [code [reason]]   close with that code (default 1000) and reason
  /quit                    close with 1000
  //text                   send "/text" (a leading slash, escaped)

stdout, when it is not a terminal: text messages as they are (a message with newlines spans
several lines), binary messages as lowercase hex (with -b: the raw bytes), each followed by a
newline. On a terminal: "< HH:MM:SS.mmm message", binary as "<binary N bytes> hex…".
`;

export const ECHO_USAGE = `Usage: duplex echo [--port ${ECHO_FLAGS.port.default}] [--host ${ECHO_FLAGS.host.default}] [--max-message-size ${ECHO_FLAGS['max-message-size'].value}]

An echo server on every path of ws://HOST:PORT/: each message comes back with the same type and
bytes; permessage-deflate is accepted when offered. The first line on stdout is
"listening on ws://HOST:PORT/" (the real port with --port 0). SIGINT or SIGTERM closes the
clients with 1001 and exits 0.

Options:
${optionLines(ECHO_FLAGS, 32)}`;

export const SERVE_USAGE = `Usage: duplex serve [options]

The real-time hub at /ws, the browser client at /duplex/client.js, the demo apps, /healthz and
/metrics on one port. The first line on stdout is "listening on http://HOST:PORT/".
Flags win over DUPLEX_* environment variables, which win over the config file; every config
key and variable is in docs/serve.md.
Exit: 0 after SIGINT/SIGTERM, 1 if it could not start, 2 on a configuration error.

Options:
${optionLines(SERVE_FLAGS, 29, (flag) => (flag.config === undefined ? undefined : configDefault(flag.config)))}
Needs the optional peer dependencies pino and prom-client: npm install pino prom-client
`;

export const BENCH_USAGE = `Usage: duplex bench [options] URL

Load for any WebSocket server (duplex, ws, …): a progress line a second on stderr, then
messages/s, MB/s, latency p50/p90/p99/p99.9/max and errors on stdout.
Exit: 0 after a run, 1 if no connection could be opened, 2 on a usage error.

Options:
${optionLines(BENCH_FLAGS, 29)}`;
