/**
 * MemStore: the whole store in memory, for simulations and tests. Same semantics as LevelStore (the conformance suite
 * holds both to it); everything applied is "durable" for as long as the instance lives, and stop/start keep the data,
 * as a disk keeps its contents across a daemon restart.
 *
 * Atomicity comes from an undo log: ops mutate the state directly and record how to put it back; if any op of a
 * transaction fails, the undo log runs backwards and the transaction leaves no trace.
 */
import { StorageError, systemClock, type Clock } from '../../src/common/index.js';
import {
  checkListOptions,
  checkOid,
  checkPg,
  checkReadRange,
  compareUtf8,
  resolveLimits,
  validateTransaction,
  type StoreLimits,
} from './limits.js';
import { SortedStringMap } from './sorted-map.js';
import type {
  CorruptibleStore,
  KeyValuePage,
  ListOptions,
  NamePage,
  ObjectId,
  ObjectStat,
  ObjectStore,
  StoreStats,
  TransactionLike,
  TxOp,
} from './types.js';

/** Data is kept in chunks that are never modified in place, so clones and undo share them freely. */
const chunkBytes = 64 * 1024;
/** Granularity of simulated checksums (what `corrupt` damages and what a read then refuses). */
const checksumBlockBytes = 4096;

interface MemObject {
  size: number;
  mtimeMs: number;
  chunks: (Buffer | undefined)[];
  xattrs: Map<string, Buffer>;
  omap: SortedStringMap<Buffer>;
  /** Checksum blocks damaged by `corrupt`. */
  corrupt: Set<number>;
}

interface MemCollection {
  objects: SortedStringMap<MemObject>;
  meta: SortedStringMap<Buffer>;
}

export interface MemStoreOptions {
  clock?: Clock;
  limits?: Partial<StoreLimits>;
  /** What statfs reports as total and where NO_SPACE starts (logical object bytes). Default 1 TiB. */
  capacityBytes?: number;
}

function copyBytes(data: Uint8Array): Buffer {
  return Buffer.from(data);
}

function blocksOf(offset: number, length: number): [number, number] {
  return [Math.floor(offset / checksumBlockBytes), Math.ceil((offset + length) / checksumBlockBytes)];
}

export class MemStore implements ObjectStore, CorruptibleStore {
  readonly #clock: Clock;
  readonly #limits: StoreLimits;
  readonly #capacityBytes: number;
  #collections = new SortedStringMap<MemCollection>();
  #usedBytes = 0;
  #objectCount = 0;
  #running = false;
  /** Undo steps of the transaction being applied. */
  #undo: (() => void)[] = [];
  /** Objects already snapshotted by the current transaction. */
  #snapshotted = new Set<MemObject>();

  constructor(options: MemStoreOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#limits = resolveLimits(options.limits);
    this.#capacityBytes = options.capacityBytes ?? 2 ** 40;
  }

  get limits(): Readonly<StoreLimits> {
    return this.#limits;
  }

  async start(): Promise<void> {
    this.#running = true;
  }

  async stop(): Promise<void> {
    this.#running = false;
  }

  #assertRunning(): void {
    if (!this.#running) throw new StorageError('SHUTTING_DOWN', 'the store is not running');
  }

  async apply(tx: TransactionLike): Promise<void> {
    this.#assertRunning();
    validateTransaction(tx, this.#limits);
    const usedBefore = this.#usedBytes;
    const nowMs = this.#clock.nowMs();
    this.#undo = [];
    this.#snapshotted.clear();
    try {
      for (const op of tx.ops) this.#applyOp(op, nowMs);
      if (this.#usedBytes > usedBefore && this.#usedBytes > this.#capacityBytes) {
        throw new StorageError('NO_SPACE', `store would hold ${this.#usedBytes} bytes, capacity is ${this.#capacityBytes}`);
      }
    } catch (error) {
      for (let i = this.#undo.length - 1; i >= 0; i--) (this.#undo[i] as () => void)();
      throw error;
    } finally {
      this.#undo = [];
      this.#snapshotted.clear();
    }
  }

  // ---- mutation helpers: every change to state goes through one of these and records its undo ----

  #collection(pg: string, create: boolean): MemCollection | undefined {
    const existing = this.#collections.get(pg);
    if (existing || !create) return existing;
    const created: MemCollection = { objects: new SortedStringMap(), meta: new SortedStringMap() };
    this.#collections.set(pg, created);
    this.#undo.push(() => this.#collections.delete(pg));
    return created;
  }

  #get(oid: ObjectId): MemObject | undefined {
    return this.#collections.get(oid.pg)?.objects.get(oid.name);
  }

  /** Puts `object` at `oid` (or removes it), keeping the stats right. */
  #put(oid: ObjectId, object: MemObject | undefined): void {
    const collection = this.#collection(oid.pg, object !== undefined);
    if (!collection) return;
    const previous = collection.objects.get(oid.name);
    if (previous === object) return;
    if (object) collection.objects.set(oid.name, object);
    else collection.objects.delete(oid.name);
    this.#objectCount += (object ? 1 : 0) - (previous ? 1 : 0);
    this.#usedBytes += (object?.size ?? 0) - (previous?.size ?? 0);
    this.#undo.push(() => {
      if (previous) collection.objects.set(oid.name, previous);
      else collection.objects.delete(oid.name);
      this.#objectCount -= (object ? 1 : 0) - (previous ? 1 : 0);
      this.#usedBytes -= (object?.size ?? 0) - (previous?.size ?? 0);
    });
  }

  /** Returns the object at `oid` ready to be modified (created empty if missing and `create`). */
  #mutable(oid: ObjectId, nowMs: number, create: boolean): MemObject | undefined {
    let object = this.#get(oid);
    if (!object) {
      if (!create) return undefined;
      object = { size: 0, mtimeMs: nowMs, chunks: [], xattrs: new Map(), omap: new SortedStringMap(), corrupt: new Set() };
      this.#put(oid, object);
      this.#snapshotted.add(object);
      return object;
    }
    if (!this.#snapshotted.has(object)) {
      this.#snapshotted.add(object);
      const o = object;
      const saved = { size: o.size, mtimeMs: o.mtimeMs, chunks: o.chunks.slice(), xattrs: new Map(o.xattrs), corrupt: new Set(o.corrupt) };
      this.#undo.push(() => {
        this.#usedBytes -= o.size - saved.size;
        Object.assign(o, saved);
      });
    }
    object.mtimeMs = nowMs;
    return object;
  }

  #setSize(object: MemObject, size: number): void {
    this.#usedBytes += size - object.size;
    object.size = size;
  }

  #omapSet(object: MemObject, key: string, value: Buffer | undefined): void {
    const previous = object.omap.get(key);
    if (value) object.omap.set(key, value);
    else if (!object.omap.delete(key)) return;
    this.#undo.push(() => (previous ? object.omap.set(key, previous) : object.omap.delete(key)));
  }

  #omapReplace(object: MemObject, omap: SortedStringMap<Buffer>): void {
    const previous = object.omap;
    object.omap = omap;
    this.#undo.push(() => (object.omap = previous));
  }

  // ---- data helpers ----

  #checkIntact(object: MemObject, offset: number, length: number, why: string): void {
    if (object.corrupt.size === 0 || length === 0) return;
    const [first, end] = blocksOf(offset, length);
    for (let b = first; b < end; b++) {
      if (object.corrupt.has(b)) throw new StorageError('CHECKSUM_MISMATCH', `${why}: checksum block ${b} is damaged`);
    }
  }

  /** Writes `data` (or zeros when null) at `offset`; the caller has checked bounds. */
  #writeData(object: MemObject, offset: number, length: number, data: Uint8Array | null): void {
    if (length === 0) return;
    const end = offset + length;
    if (object.corrupt.size > 0) {
      // A partly overwritten damaged block cannot be re-checksummed: its old bytes are unknown.
      const [first, last] = blocksOf(offset, length);
      for (let b = first; b < last; b++) {
        const blockStart = b * checksumBlockBytes;
        const covered = offset <= blockStart && end >= Math.min(blockStart + checksumBlockBytes, Math.max(object.size, end));
        if (!object.corrupt.has(b)) continue;
        if (!covered) throw new StorageError('CHECKSUM_MISMATCH', `write would mix new bytes into damaged block ${b}`);
        object.corrupt.delete(b);
      }
    }
    for (let c = Math.floor(offset / chunkBytes); c * chunkBytes < end; c++) {
      const chunkStart = c * chunkBytes;
      const from = Math.max(offset, chunkStart);
      const to = Math.min(end, chunkStart + chunkBytes);
      const old = object.chunks[c];
      if (data === null && from === chunkStart && to === chunkStart + chunkBytes) {
        object.chunks[c] = undefined;
        continue;
      }
      if (data === null && !old) continue;
      const chunk = Buffer.alloc(chunkBytes);
      if (old) old.copy(chunk);
      if (data === null) chunk.fill(0, from - chunkStart, to - chunkStart);
      else chunk.set(data.subarray(from - offset, to - offset), from - chunkStart);
      object.chunks[c] = chunk;
    }
    if (end > object.size) this.#setSize(object, end);
  }

  #truncateData(object: MemObject, size: number): void {
    if (size === object.size) return;
    const oldSize = object.size;
    // Re-checksumming the blocks at either end needs their old bytes.
    if (oldSize % checksumBlockBytes !== 0) this.#checkIntact(object, oldSize - 1, 1, 'truncate');
    if (size < oldSize && size % checksumBlockBytes !== 0) this.#checkIntact(object, size, 1, 'truncate');
    if (size < oldSize) {
      for (const b of object.corrupt) if (b * checksumBlockBytes >= size) object.corrupt.delete(b);
      // Bytes past the end stay zero, so a later extension reads zeros.
      const keepChunks = Math.ceil(size / chunkBytes);
      object.chunks.length = Math.min(object.chunks.length, keepChunks);
      const tail = size % chunkBytes;
      const last = object.chunks[keepChunks - 1];
      if (tail !== 0 && last) {
        const chunk = Buffer.from(last);
        chunk.fill(0, tail);
        object.chunks[keepChunks - 1] = chunk;
      }
    }
    this.#setSize(object, size);
  }

  #readData(object: MemObject, offset: number, length: number): Buffer {
    const out = Buffer.alloc(length);
    for (let c = Math.floor(offset / chunkBytes); c * chunkBytes < offset + length; c++) {
      const chunk = object.chunks[c];
      if (!chunk) continue;
      const chunkStart = c * chunkBytes;
      const from = Math.max(offset, chunkStart);
      const to = Math.min(offset + length, chunkStart + chunkBytes);
      chunk.copy(out, from - offset, from - chunkStart, to - chunkStart);
    }
    return out;
  }

  #applyOp(op: TxOp, nowMs: number): void {
    switch (op.op) {
      case 'touch': {
        if (op.mustNotExist && this.#get(op.oid)) {
          throw new StorageError('ALREADY_EXISTS', `object ${op.oid.pg}/${op.oid.name} already exists`);
        }
        this.#mutable(op.oid, nowMs, true);
        return;
      }
      case 'write': {
        const object = this.#mutable(op.oid, nowMs, true) as MemObject;
        if (op.offset > object.size) this.#truncateData(object, op.offset);
        this.#writeData(object, op.offset, op.data.length, op.data);
        return;
      }
      case 'writeFull': {
        const object = this.#mutable(op.oid, nowMs, true) as MemObject;
        object.corrupt.clear();
        object.chunks = [];
        this.#setSize(object, 0);
        this.#writeData(object, 0, op.data.length, op.data);
        return;
      }
      case 'zero': {
        const object = this.#mutable(op.oid, nowMs, false);
        if (!object || op.offset >= object.size) return;
        this.#writeData(object, op.offset, Math.min(op.length, object.size - op.offset), null);
        return;
      }
      case 'truncate': {
        this.#truncateData(this.#mutable(op.oid, nowMs, true) as MemObject, op.size);
        return;
      }
      case 'remove': {
        if (!this.#get(op.oid)) {
          if (op.mustExist) throw new StorageError('NOT_FOUND', `object ${op.oid.pg}/${op.oid.name} does not exist`);
          return;
        }
        this.#put(op.oid, undefined);
        return;
      }
      case 'setXattrs': {
        const object = this.#mutable(op.oid, nowMs, true) as MemObject;
        for (const [name, value] of op.attrs) object.xattrs.set(name, copyBytes(value));
        let total = 0;
        for (const [name, value] of object.xattrs) total += Buffer.byteLength(name) + value.length;
        if (total > this.#limits.xattrsBytesMax) {
          throw new StorageError('TOO_LARGE', `xattrs of ${op.oid.name} would take ${total} bytes, more than ${this.#limits.xattrsBytesMax}`);
        }
        return;
      }
      case 'rmXattrs': {
        const object = this.#mutable(op.oid, nowMs, false);
        if (object) for (const name of op.names) object.xattrs.delete(name);
        return;
      }
      case 'omapSet': {
        const object = this.#mutable(op.oid, nowMs, true) as MemObject;
        for (const [key, value] of op.entries) this.#omapSet(object, key, copyBytes(value));
        return;
      }
      case 'omapRemove': {
        const object = this.#mutable(op.oid, nowMs, false);
        if (object) for (const key of op.keys) this.#omapSet(object, key, undefined);
        return;
      }
      case 'omapClear': {
        const object = this.#mutable(op.oid, nowMs, false);
        if (object && object.omap.size > 0) this.#omapReplace(object, new SortedStringMap());
        return;
      }
      case 'clone': {
        const src = this.#get(op.src);
        if (!src) throw new StorageError('NOT_FOUND', `clone source ${op.src.pg}/${op.src.name} does not exist`);
        this.#checkIntact(src, 0, src.size, 'clone source');
        if (src.omap.size > this.#limits.cloneOmapEntriesMax) {
          throw new StorageError('TOO_LARGE', `clone source has ${src.omap.size} omap entries, more than ${this.#limits.cloneOmapEntriesMax}`);
        }
        const omap = new SortedStringMap<Buffer>();
        for (const [key, value] of src.omap.entries()) omap.set(key, value);
        this.#put(op.dst, {
          size: src.size,
          mtimeMs: nowMs,
          chunks: src.chunks.slice(),
          xattrs: new Map(src.xattrs),
          omap,
          corrupt: new Set(),
        });
        return;
      }
      case 'rename': {
        const src = this.#get(op.src);
        if (!src) throw new StorageError('NOT_FOUND', `rename source ${op.src.pg}/${op.src.name} does not exist`);
        this.#put(op.src, undefined);
        this.#put(op.dst, src);
        return;
      }
      case 'createCollection':
        this.#collection(op.pg, true);
        return;
      case 'removeCollection': {
        const collection = this.#collections.get(op.pg);
        if (!collection) return;
        let bytes = 0;
        for (const [, object] of collection.objects.entries()) bytes += object.size;
        const count = collection.objects.size;
        this.#collections.delete(op.pg);
        this.#usedBytes -= bytes;
        this.#objectCount -= count;
        this.#undo.push(() => {
          this.#collections.set(op.pg, collection);
          this.#usedBytes += bytes;
          this.#objectCount += count;
        });
        return;
      }
      case 'pgMetaSet':
      case 'pgMetaRemove': {
        const meta = (this.#collection(op.pg, true) as MemCollection).meta;
        const changes: [string, Buffer | undefined][] =
          op.op === 'pgMetaSet' ? op.entries.map(([k, v]) => [k, copyBytes(v)]) : op.keys.map((k) => [k, undefined]);
        for (const [key, value] of changes) {
          const previous = meta.get(key);
          if (value) meta.set(key, value);
          else if (!meta.delete(key)) continue;
          this.#undo.push(() => (previous ? meta.set(key, previous) : meta.delete(key)));
        }
        return;
      }
    }
  }

  // ---- reads ----

  #require(oid: ObjectId): MemObject {
    this.#assertRunning();
    checkOid(oid, this.#limits);
    const object = this.#get(oid);
    if (!object) throw new StorageError('NOT_FOUND', `object ${oid.pg}/${oid.name} does not exist`);
    return object;
  }

  async read(oid: ObjectId, offset?: number, length?: number): Promise<Buffer> {
    const range = checkReadRange(offset, length);
    const object = this.#require(oid);
    const start = Math.min(range.offset, object.size);
    const count = Math.min(range.length ?? object.size, object.size - start);
    this.#checkIntact(object, start, count, `read of ${oid.pg}/${oid.name}`);
    return this.#readData(object, start, count);
  }

  async stat(oid: ObjectId): Promise<ObjectStat> {
    const object = this.#require(oid);
    return { size: object.size, mtimeMs: object.mtimeMs };
  }

  async exists(oid: ObjectId): Promise<boolean> {
    this.#assertRunning();
    checkOid(oid, this.#limits);
    return this.#get(oid) !== undefined;
  }

  async getXattr(oid: ObjectId, name: string): Promise<Buffer | undefined> {
    const value = this.#require(oid).xattrs.get(name);
    return value ? Buffer.from(value) : undefined;
  }

  async getXattrs(oid: ObjectId): Promise<Map<string, Buffer>> {
    const object = this.#require(oid);
    const names = [...object.xattrs.keys()].sort(compareUtf8);
    return new Map(names.map((name) => [name, Buffer.from(object.xattrs.get(name) as Buffer)]));
  }

  async omapGet(oid: ObjectId, keys: readonly string[]): Promise<Map<string, Buffer>> {
    const object = this.#require(oid);
    const out = new Map<string, Buffer>();
    for (const key of keys) {
      const value = object.omap.get(key);
      if (value) out.set(key, Buffer.from(value));
    }
    return out;
  }

  async omapList(oid: ObjectId, options: ListOptions): Promise<KeyValuePage> {
    const object = this.#require(oid);
    checkListOptions(options, this.#limits);
    const page = object.omap.page(options);
    return { entries: page.entries.map(([key, value]) => ({ key, value: Buffer.from(value) })), more: page.more };
  }

  async listObjects(pg: string, options: ListOptions): Promise<NamePage> {
    this.#assertRunning();
    checkPg(pg, this.#limits);
    checkListOptions(options, this.#limits);
    const collection = this.#collections.get(pg);
    if (!collection) return { names: [], more: false };
    const page = collection.objects.page(options);
    return { names: page.entries.map(([name]) => name), more: page.more };
  }

  async listCollections(): Promise<string[]> {
    this.#assertRunning();
    return this.#collections.keys().slice();
  }

  async pgMetaGet(pg: string, key: string): Promise<Buffer | undefined> {
    this.#assertRunning();
    checkPg(pg, this.#limits);
    const value = this.#collections.get(pg)?.meta.get(key);
    return value ? Buffer.from(value) : undefined;
  }

  async pgMetaList(pg: string, options: ListOptions): Promise<KeyValuePage> {
    this.#assertRunning();
    checkPg(pg, this.#limits);
    checkListOptions(options, this.#limits);
    const collection = this.#collections.get(pg);
    if (!collection) return { entries: [], more: false };
    const page = collection.meta.page(options);
    return { entries: page.entries.map(([key, value]) => ({ key, value: Buffer.from(value) })), more: page.more };
  }

  async statfs(): Promise<StoreStats> {
    this.#assertRunning();
    return {
      totalBytes: this.#capacityBytes,
      availableBytes: Math.max(0, this.#capacityBytes - this.#usedBytes),
      usedBytes: this.#usedBytes,
      objects: this.#objectCount,
    };
  }

  async corrupt(oid: ObjectId, damage: { kind: 'flip' | 'zero'; offset: number; length?: number }): Promise<void> {
    const object = this.#require(oid);
    const length = damage.kind === 'flip' ? 1 : Math.min(damage.length ?? 1, object.size - damage.offset);
    if (damage.offset >= object.size || length <= 0) throw new StorageError('INVALID_ARGUMENT', 'damage lies outside the object');
    const data = this.#readData(object, damage.offset, length);
    if (damage.kind === 'flip') data[0] = (data[0] as number) ^ 0xff;
    else data.fill(0);
    // Bypasses #writeData: damage must not look like a write (no undo, no checksum update).
    for (let i = 0; i < length; i++) {
      const position = damage.offset + i;
      const c = Math.floor(position / chunkBytes);
      const chunk = Buffer.from(object.chunks[c] ?? Buffer.alloc(chunkBytes));
      chunk[position - c * chunkBytes] = data[i] as number;
      object.chunks[c] = chunk;
    }
    const [first, end] = blocksOf(damage.offset, length);
    for (let b = first; b < end; b++) object.corrupt.add(b);
  }
}
