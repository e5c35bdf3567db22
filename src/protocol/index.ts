/**
 * @packageDocumentation
 * Wire and persisted formats. The `.proto` files here are the single source of every message; `generated/` is made
 * from them at build time (protobufjs-cli, static code). Domain types and versioned codecs wrap the generated code so
 * the rest of Shoal never handles optional wire fields or forgets a version marker.
 */
export * from './versioned.js';
export * from './cluster-map.js';
export * from './raft-codec.js';
export { shoal as wire } from './generated/shoal.js';
export * from './rpc.js';
export * from './monitor-rpc.js';
export * from './map-incremental.js';
export * from './messenger-codec.js';
export * from './osd-codec.js';
export * from './s3-codec.js';
