/**
 * @packageDocumentation
 * Block images striped over objects (like librbd): thin, resizable, with snapshots, clones and an exclusive lock.
 */
export * from './layout.js';
export * from './lock.js';
export * from './image.js';
export * from './images.js';
