/**
 * The usage texts of `duplex` and its commands. Kept apart from the commands so that
 * `duplex <command> --help` prints them without loading the command (and what only it needs,
 * e.g. pino for `serve`). docs/cli.md is the long form.
 */

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
  -c, --connect URL        the URL, as a flag (wscat)
  -x, --execute MSG        send MSG once connected (repeatable, in order; stdin is not read),
                           print the answers, close after --wait seconds
  -w, --wait S             with -x: seconds to wait for answers before closing (default 2);
                           otherwise: longest wait for the closing handshake (default 2)
  -b, --binary             send lines (and -x messages) as binary messages, and print the
                           binary messages received as raw bytes (without -b: as hex)
  -P, --show-ping-pong     print the pings and pongs received (on stderr)
  -H, --header "N: V"      add a request header (repeatable)
      --auth USER:PASS     add "Authorization: Basic base64(USER:PASS)"
  -o, --origin ORIGIN      send this Origin header
  -s, --subprotocol P      offer a subprotocol (repeatable, preferred first)
      --no-deflate         do not offer permessage-deflate
  -j, --json               pretty-print the JSON text messages received
      --echo               send every message received back until the server closes
                           (stdin is not read; nothing is printed on stdout)
  -n, --no-check           wss://: accept any certificate (self-signed, expired, wrong name)
  -k, --insecure           the same as -n
      --ca FILE            wss://: trust the CA certificate(s) in this PEM file
      --cert FILE          wss://: client certificate (PEM), with --key
      --key FILE           wss://: the client certificate's private key (PEM)
      --passphrase P       the passphrase of --key
  -h, --help               this text

Lines that start with a slash are commands:
  /ping [data]             send a ping (-P shows the pong)
  /close [code [reason]]   close with that code (default 1000) and reason
  /quit                    close with 1000
  //text                   send "/text" (a leading slash, escaped)

stdout, when it is not a terminal: text messages as they are (a message with newlines spans
several lines), binary messages as lowercase hex (with -b: the raw bytes), each followed by a
newline. On a terminal: "< HH:MM:SS.mmm message", binary as "<binary N bytes> hex…".
`;

export const ECHO_USAGE = `Usage: duplex echo [--port 8080] [--host 127.0.0.1] [--max-message-size BYTES]

An echo server on every path of ws://HOST:PORT/: each message comes back with the same type and
bytes; permessage-deflate is accepted when offered. The first line on stdout is
"listening on ws://HOST:PORT/" (the real port with --port 0). SIGINT or SIGTERM closes the
clients with 1001 and exits 0.

Options:
  -p, --port P                  port to listen on (default 8080; 0 picks a free one)
      --host H                  address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)
      --max-message-size BYTES  larger messages are refused with close code 1009
                                (default 104857600, 100 MiB)
  -h, --help                    this text
`;

export const SERVE_USAGE = `Usage: duplex serve [options]

The real-time hub at /ws, the browser client at /duplex/client.js, the demo apps, /healthz and
/metrics on one port. The first line on stdout is "listening on http://HOST:PORT/".
Flags win over DUPLEX_* environment variables, which win over the config file; every config
key and variable is in docs/serve.md.
Exit: 0 after SIGINT/SIGTERM, 1 if it could not start, 2 on a configuration error.

Options:
  -p, --port P               port (default 8080; 0 picks a free one)
      --host H               address (default 127.0.0.1)
  -c, --config FILE          JSON config file (or DUPLEX_CONFIG)
      --json-logs            JSON log lines (pino) on stderr instead of readable ones
      --log-level L          debug, info (default), warn or error
      --broker URL           memory (default), redis://…, rediss://… or nats://…
      --anonymous            admit connections without a token (unsafe for production)
      --auth-public-key FILE PEM public key for RS256/ES256 JWTs (HS256: DUPLEX_AUTH_SECRET)
      --tls-cert FILE        PEM certificate: https:// and wss://, with --tls-key
      --tls-key FILE         its PEM private key
      --allowed-origin O     accept WebSockets from this Origin only (repeatable)
      --history-size N       publications kept per topic (default 100)
      --history-ttl MS       how long they are kept (default 300000)
      --max-message-size B   larger WebSocket messages: close 1009 (default 1048576)
      --max-connections N    more: 503 with Retry-After (default: no limit)
  -h, --help                 this text

Needs the optional peer dependencies pino and prom-client: npm install pino prom-client
`;

export const BENCH_USAGE = `Usage: duplex bench [options] URL

Load for any WebSocket server (duplex, ws, …): a progress line a second on stderr, then
messages/s, MB/s, latency p50/p90/p99/p99.9/max and errors on stdout.
Exit: 0 after a run, 1 if no connection could be opened, 2 on a usage error.

Options:
  -m, --mode M               echo (default): round trips; broadcast: connection 0 sends,
                             every connection counts deliveries
  -c, --connections N        connections (default 10, at most 20000)
  -s, --size BYTES           message size (default 64, from 20 to 16 MiB)
  -w, --window N             messages in flight per connection (default 1)
  -d, --duration S           seconds measured (default 10)
      --warmup S             seconds before measuring (default 1)
      --text                 text messages
      --binary               binary messages (the default)
  -j, --json                 the report as one JSON line on stdout
  -h, --help                 this text
`;

/** The usage text of each command, by name. */
export const COMMAND_USAGE: Readonly<Record<string, string>> = {
  connect: CONNECT_USAGE,
  echo: ECHO_USAGE,
  serve: SERVE_USAGE,
  bench: BENCH_USAGE,
};
