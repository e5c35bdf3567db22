/**
 * @packageDocumentation
 * Transports. The control plane (monitors, admin, map subscriptions) runs over gRPC (`grpc.ts`); the data-plane
 * framed messenger joins this folder with the OSDs.
 */
export * from './grpc.js';
export * from './messenger.js';
