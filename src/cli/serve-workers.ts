/**
 * `duplex serve --workers N`: this process becomes the primary of N workers on the one port
 * (`runWorkers`, node:cluster), each running what a single `duplex serve` runs. With the
 * `memory` broker the primary holds the state and the workers reach it over IPC; with Redis or
 * NATS the workers use that and the primary only supervises them. node:cluster runs this same
 * command in each worker, so a worker loads the same configuration and ends up here too.
 */
import { runWorkers, WorkersError } from '../hub/workers.js';
import { ConfigError, type ServeConfig } from './serve-config.js';
import { announce, createServeLogger, startServe, type ServeHandle } from './serve.js';

/** Run the primary (or, in a worker, one worker) of `duplex serve --workers N`; resolves with the exit code. */
export async function serveWorkers(config: ServeConfig): Promise<number> {
  const logger = createServeLogger(config);
  let run;
  try {
    run = await runWorkers({
      workers: config.workers,
      logger,
      // Redis or NATS: the workers share that; the primary's IPC broker would serve nobody.
      ipcBroker: config.broker === 'memory' ? {} : false,
      async start(context) {
        const own = createServeLogger(config, process.stderr, { worker: context.slot });
        let handle: ServeHandle;
        try {
          handle = await startServe(config, own, context);
        } catch (error) {
          if (error instanceof ConfigError) {
            process.stderr.write(`duplex serve: configuration error: ${error.message}\n`);
            // The primary reports it with the same exit code as a single process would.
            process.exit(2);
          }
          throw error;
        }
        return { close: () => handle.close(), info: { url: handle.url, node: handle.hub.nodeId } };
      },
    });
  } catch (error) {
    if (!(error instanceof WorkersError)) throw error;
    logger.error({}, error.message);
    return error.exitCode === 2 ? 2 : 1;
  }
  // A worker serves until the primary (or a signal) stops it; runWorkers ends its process then.
  if (run.role === 'worker') return 0;
  const first = run.workers[0]?.info;
  const url = typeof first === 'object' && first !== null && !Array.isArray(first) && typeof first.url === 'string' ? first.url : '';
  announce(config, logger, url, url.replace(/^http/, 'ws') + 'ws');
  await run.closed;
  return 0;
}
