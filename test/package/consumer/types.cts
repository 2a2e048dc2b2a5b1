// CommonJS consumers get the same declarations through require().
import duplex = require('duplex-ws');
import hub = require('duplex-ws/hub');

export const server: duplex.WebSocketServer = new duplex.WebSocketServer();
export const broker: hub.MemoryBroker = new hub.MemoryBroker();
// @ts-expect-error: there is no such export
export const missing = duplex.NoSuchThing;
