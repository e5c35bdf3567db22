/**
 * @packageDocumentation
 * The OSD's object store: one transactional interface (`ObjectStore`) over objects grouped in collections (one per
 * placement group), with data, xattrs, a sorted omap per object, and PG metadata that commits atomically with them.
 *
 * Backends: `LevelStore` (the real one: LevelDB plus data files, crash-safe, checksummed, group commit), `MemStore`
 * (simulation and tests), and `FaultyStore` (wraps either and injects faults by seed). The conformance suite in
 * test/conformance holds every backend to the same semantics.
 *
 * @example
 * const store = new LevelStore({ dir: '/var/lib/shoal/osd.3' });
 * await store.start();
 * const oid = { pg: '1.3f', name: 'rbd_data.42.0000' };
 * await store.apply(new Transaction().write(oid, 4096, data).setXattr(oid, 'v', version).pgMetaSet('1.3f', { [logKey]: entry }));
 * const bytes = await store.read(oid, 4096, data.length);
 */
export type {
  CorruptibleStore,
  KeyValue,
  KeyValuePage,
  ListOptions,
  NamePage,
  ObjectId,
  ObjectStat,
  ObjectStore,
  StoreStats,
  TransactionLike,
  TxOp,
  TxOpName,
} from './types.js';
export { isCorruptible } from './types.js';
export { Transaction } from './transaction.js';
export { defaultStoreLimits, compareUtf8, type StoreLimits } from './limits.js';
export { MemStore, type MemStoreOptions } from './mem-store.js';
export { FaultyStore, type FaultPlan, type FaultyStoreStats } from './faulty-store.js';
export { LevelStore, type LevelStoreOptions, type LevelStoreStats } from './level/level-store.js';
export { storeFormats } from './level/codec.js';
