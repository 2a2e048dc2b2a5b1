/** `duplex echo`: every message comes back with the same type and bytes. */
import { WebSocketServer } from '../node/server/server.js';
import { createConsoleLogger } from '../node/logger.js';
import { intFlag, type Parsed } from './args.js';
import { ECHO_FLAGS } from './flags.js';

export async function echoCommand({ values }: Parsed): Promise<number> {
  const port = intFlag(values, ECHO_FLAGS, 'port');
  const host = typeof values.host === 'string' ? values.host : ECHO_FLAGS.host.default;
  const maxMessageSize = intFlag(values, ECHO_FLAGS, 'max-message-size');
  const logger = createConsoleLogger('warn');
  const server = new WebSocketServer({
    perMessageDeflate: true,
    textAsBuffer: true, // echo the validated bytes back without decoding them
    maxMessageSize,
    logger,
    handlers: {
      message(ws, data, isBinary) {
        const bytes = data as Buffer;
        if (isBinary) ws.send(bytes);
        else ws.sendText(bytes);
      },
    },
  });
  const address = await server.listen(port, host);
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  process.stdout.write(`listening on ws://${shown}:${address.port}/\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close(1001, 'server shutting down', 2000);
  return 0;
}
