/**
 * @packageDocumentation
 * Shared foundations with no dependencies on the rest of Shoal: the error type and its codes, the Clock and Random
 * seams, logging and lifecycle.
 */
export * from './errors.js';
export * from './clock.js';
export * from './random.js';
export * from './log.js';
export * from './lifecycle.js';
export * from './config.js';
export * from './crc.js';
export * from './gc.js';
export * from './wasm.js';
export * from './buffer-pool.js';
export * from './concurrency.js';
export * from './turn-cork.js';
