/**
 * @packageDocumentation
 * Erasure coding: the Reed-Solomon `Codec`, stripe math (pure) and the start-up self-test.
 */
export * from './codec.js';
export * from './stripe.js';
export * from './self-test.js';
