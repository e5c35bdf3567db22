/**
 * @packageDocumentation
 * The filesystem namespace over the object client (no kernel needed): inodes, directories, striped file data,
 * link counts, xattrs, crash-safe multi-object changes and the checker.
 */
export * from './errors.js';
export * from './encoding.js';
export * from './layout.js';
export * from './metadata.js';
export * from './data.js';
export * from './superblock.js';
export * from './namespace.js';
export * from './check.js';
export * from './locks.js';
