/**
 * The data-plane messenger (client ↔ OSD, OSD ↔ OSD): framed, multiplexed request/response over TCP. A frame is a
 * 12-byte prefix, a protobuf header (src/protocol/messenger.proto) and the raw payload; many requests share one
 * connection and are answered in any order. Ops are generic: each carries its own typed header, encoded by its owner,
 * as opaque bytes. Layout, bounds, backpressure and error behaviour are in src/net/README.md.
 *
 * @example
 * const server = new MessengerServer({ address: '127.0.0.1:0' }).onRequest(async (req) => ({ payload: req.payload }));
 * await server.start();
 * const client = new MessengerClient({ address: `127.0.0.1:${server.port}` });
 * const reply = await client.request('echo', new Uint8Array(0), Buffer.from('hi'), { timeoutMs: 1000 });
 */
export * from './messenger-types.js';
export { MessengerServer } from './messenger-server.js';
export type {
  MessengerServerOptions,
  MessengerServerStats,
  PauseReason,
  ServerConnectionStats,
} from './messenger-server.js';
export { MessengerClient, MessengerPool } from './messenger-client.js';
export type { MessengerClientOptions, MessengerClientStats, MessengerPoolOptions } from './messenger-client.js';
export type { FrameLimits } from './messenger-frame.js';
