/**
 * @packageDocumentation
 * The client side of Shoal (like librados): following the cluster map through the monitors, and (with the OSDs)
 * object operations sent straight to each placement group's primary.
 */
export * from './monitor-client.js';
export * from './objects.js';
