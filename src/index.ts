/**
 * @packageDocumentation
 * Shoal's public library surface: what daemons and front ends build on. Front ends (gateway/, fuse/) import only
 * this file.
 */
export * from './common/index.js';
export * from './protocol/index.js';
export * from './crush/index.js';
export * from './client/index.js';
export * from './block/index.js';
