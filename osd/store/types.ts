/**
 * The object store contract every backend keeps (MemStore, LevelStore, FaultyStore over either). One conformance suite
 * (test/conformance/object-store.suite.ts) holds them all to it.
 */
import type { Startable } from '../../src/common/index.js';

/**
 * An object lives in a collection; the OSD keeps one collection per placement group (or per PG shard of an erasure
 * coded pool), named by the PG id (`"1.3f"`, `"2.7s1"`). Listing a PG's objects is a range scan and removing a PG is
 * one metadata write, whatever its size.
 */
export interface ObjectId {
  readonly pg: string;
  readonly name: string;
}

export interface ObjectStat {
  size: number;
  /** Time of the last change to data, xattrs or omap, from the store's Clock. */
  mtimeMs: number;
}

/** A page of a sorted listing: keys strictly after `after`, starting with `prefix`, at most `limit` of them. */
export interface ListOptions {
  after?: string;
  prefix?: string;
  limit: number;
}

export interface KeyValue {
  key: string;
  value: Buffer;
}

export interface KeyValuePage {
  entries: KeyValue[];
  /** True when more matching keys follow the last one returned (ask again with `after` = the last key). */
  more: boolean;
}

export interface NamePage {
  names: string[];
  more: boolean;
}

export interface StoreStats {
  /** Capacity: the configured `capacityBytes`, else the size of the file system holding the store. */
  totalBytes: number;
  /** What may still be written before NO_SPACE. */
  availableBytes: number;
  /** Sum of the logical sizes of all objects (holes count; xattrs, omap and PG metadata do not). */
  usedBytes: number;
  objects: number;
}

export type TxOp =
  /** Creates an empty object if missing; with `mustNotExist`, an existing object fails the transaction (ALREADY_EXISTS). */
  | { readonly op: 'touch'; readonly oid: ObjectId; readonly mustNotExist?: boolean }
  /** Writes at `offset`, creating the object and zero-filling any hole between the old end and `offset`. */
  | { readonly op: 'write'; readonly oid: ObjectId; readonly offset: number; readonly data: Uint8Array }
  /** Replaces the data (xattrs and omap stay), creating the object if missing. */
  | { readonly op: 'writeFull'; readonly oid: ObjectId; readonly data: Uint8Array }
  /** Zeroes [offset, offset+length) inside the object; never changes its size; a missing object stays missing. */
  | { readonly op: 'zero'; readonly oid: ObjectId; readonly offset: number; readonly length: number }
  /** Sets the size: shrinks, or extends with zeros; creates the object if missing. */
  | { readonly op: 'truncate'; readonly oid: ObjectId; readonly size: number }
  /** Removes data, xattrs and omap. A missing object is fine unless `mustExist` (then NOT_FOUND). */
  | { readonly op: 'remove'; readonly oid: ObjectId; readonly mustExist?: boolean }
  /** Sets xattrs, creating the object if missing. */
  | { readonly op: 'setXattrs'; readonly oid: ObjectId; readonly attrs: readonly (readonly [string, Uint8Array])[] }
  /** Removes xattrs; absent names and a missing object are fine. */
  | { readonly op: 'rmXattrs'; readonly oid: ObjectId; readonly names: readonly string[] }
  /** Sets omap entries, creating the object if missing. */
  | { readonly op: 'omapSet'; readonly oid: ObjectId; readonly entries: readonly (readonly [string, Uint8Array])[] }
  /** Removes omap keys; absent keys and a missing object are fine. */
  | { readonly op: 'omapRemove'; readonly oid: ObjectId; readonly keys: readonly string[] }
  /** Removes every omap entry; a missing object is fine. */
  | { readonly op: 'omapClear'; readonly oid: ObjectId }
  /** Makes `dst` a copy of `src` (data, xattrs, omap), replacing whatever `dst` was. `src` must exist (NOT_FOUND). */
  | { readonly op: 'clone'; readonly src: ObjectId; readonly dst: ObjectId }
  /** Moves `src` to `dst` (replacing `dst`) without copying data. `src` must exist (NOT_FOUND). */
  | { readonly op: 'rename'; readonly src: ObjectId; readonly dst: ObjectId }
  /** Creates an empty collection if missing (object and PG-metadata ops create theirs implicitly). */
  | { readonly op: 'createCollection'; readonly pg: string }
  /** Removes a collection with every object and PG-metadata key in it; a missing collection is fine. */
  | { readonly op: 'removeCollection'; readonly pg: string }
  /** Sets PG metadata keys (PG info, PG log entries); they commit atomically with the object changes beside them. */
  | { readonly op: 'pgMetaSet'; readonly pg: string; readonly entries: readonly (readonly [string, Uint8Array])[] }
  | { readonly op: 'pgMetaRemove'; readonly pg: string; readonly keys: readonly string[] };

export type TxOpName = TxOp['op'];

/**
 * A sequence of ops applied all or nothing, in order: a later op sees the effect of earlier ones. Buffers handed to a
 * transaction are not copied when it is built; do not modify them until `apply` settles.
 */
export interface TransactionLike {
  readonly ops: readonly TxOp[];
}

export interface ObjectStore extends Startable {
  /**
   * Applies every op or none. When the promise resolves the change is durable (survives a crash or power loss of
   * the backend's kind). Validation errors (INVALID_ARGUMENT, TOO_LARGE, NOT_FOUND on `clone`/`rename`/strict
   * `remove`, ALREADY_EXISTS, NO_SPACE, CHECKSUM_MISMATCH when an op must read corrupt data) leave the store
   * unchanged. BUSY when the commit queue is full; SHUTTING_DOWN once `stop` began. Transactions apply in the order
   * `apply` was called, whether or not the caller awaited the previous one.
   */
  apply(tx: TransactionLike): Promise<void>;
  /**
   * Reads `length` bytes (default: to the end) from `offset` (default 0); short at the end, empty past it. Every
   * byte returned was checksum-verified: rot or a torn write gives CHECKSUM_MISMATCH, never wrong data. NOT_FOUND
   * for a missing object.
   */
  read(oid: ObjectId, offset?: number, length?: number): Promise<Buffer>;
  /** NOT_FOUND for a missing object. */
  stat(oid: ObjectId): Promise<ObjectStat>;
  exists(oid: ObjectId): Promise<boolean>;
  /** The value, or undefined when the object has no such xattr. NOT_FOUND for a missing object. */
  getXattr(oid: ObjectId, name: string): Promise<Buffer | undefined>;
  /** All xattrs, sorted by name. NOT_FOUND for a missing object. */
  getXattrs(oid: ObjectId): Promise<Map<string, Buffer>>;
  /** The entries that exist among `keys`. NOT_FOUND for a missing object. */
  omapGet(oid: ObjectId, keys: readonly string[]): Promise<Map<string, Buffer>>;
  /** Omap entries in key order (UTF-8 byte order), paged. NOT_FOUND for a missing object. */
  omapList(oid: ObjectId, options: ListOptions): Promise<KeyValuePage>;
  /** Object names of a collection in UTF-8 byte order, paged; a missing collection lists as empty. */
  listObjects(pg: string, options: ListOptions): Promise<NamePage>;
  /** Every collection, sorted. */
  listCollections(): Promise<string[]>;
  pgMetaGet(pg: string, key: string): Promise<Buffer | undefined>;
  pgMetaList(pg: string, options: ListOptions): Promise<KeyValuePage>;
  statfs(): Promise<StoreStats>;
}

/** Backends that can damage their own stored bytes on purpose, for fault-injection tests. */
export interface CorruptibleStore {
  /**
   * Damages stored data of `oid` at byte `offset` without updating checksums: `flip` inverts one byte, `zero` overwrites
   * `length` bytes with zeros (a torn write). Reads of the damaged range must then fail with CHECKSUM_MISMATCH.
   */
  corrupt(oid: ObjectId, damage: { kind: 'flip' | 'zero'; offset: number; length?: number }): Promise<void>;
}

export function isCorruptible(store: ObjectStore): store is ObjectStore & CorruptibleStore {
  return typeof (store as Partial<CorruptibleStore>).corrupt === 'function';
}
