/**
 * A block image (like librbd's): a header object plus data objects of a fixed size, created on first write and
 * removed (or emptied) on discard. Snapshots preserve an object's old content on the first write after them (copy on
 * write, see layout.ts's ObjectMeta); clones read through to a parent snapshot until they write (copy-up) or are
 * flattened. Writers hold the image's exclusive lock; the holder also serves snapshot requests of other processes
 * (see BlockImages), so snapshots of an image in use are consistent.
 */
import { StorageError, eachLimited, isStorageError, silentLogger, type Logger } from '../common/index.js';
import type { ObjectClient } from '../client/index.js';
import { wire, type Eversion } from '../protocol/index.js';
import {
  checkSnapName,
  cloneObject,
  dataObject,
  decodeHeader,
  decodeMeta,
  encodeHeader,
  encodeMeta,
  headerObject,
  metaXattr,
  pieces,
  resolveSnapshot,
  unreferencedClones,
  type ImageHeader,
  type ObjectMeta,
  type ParentRef,
  type Piece,
  type SnapshotInfo,
} from './layout.js';
import { ImageLock } from './lock.js';

const Kind = wire.ObjectOp.Kind;
type Op = wire.ObjectOp.$Properties;

/** Objects handled at once by whole-image operations (rollback, flatten, snapshot removal, export). */
export const imageOpConcurrency = 8;
/** Objects zeroed or freed at once by one discard or write-zeroes. */
const zeroConcurrency = 32;
/** Objects one allocation query looks at when it has to read (snapshots, clones); callers ask again for the rest. */
const allocationObjectsMax = 8;
/** Objects one allocation query stats on a plain image. */
const allocationStatsMax = 256;

export interface Extent {
  offset: number;
  length: number;
  /** undefined: a hole (reads as zeros, nothing stored). */
  data?: Buffer;
}

export interface AllocationExtent {
  offset: number;
  length: number;
  /** Nothing stored here (thin). */
  hole: boolean;
  /** Reads as zeros. */
  zero: boolean;
}

export interface ImageOpenOptions {
  /** Open this snapshot, read-only. */
  snap?: string;
  readOnly?: boolean;
  /** Who takes the lock (default: a name with this process's pid). */
  owner?: string;
  /** Break the lock of a holder whose lease expired. */
  breakDeadLock?: boolean;
  lockTtlMs?: number;
  logger?: Logger;
}

export type ParentOpener = (ref: ParentRef) => Promise<Image>;

export class Image {
  readonly pool: string;
  readonly name: string;
  readonly #client: ObjectClient;
  readonly #logger: Logger;
  readonly #readOnly: boolean;
  readonly #snap: SnapshotInfo | undefined;
  readonly #openParent: ParentOpener;
  #header: ImageHeader;
  #headerVersion: Eversion;
  #lock: ImageLock | undefined;
  #parents = new Map<string, Promise<Image>>();
  /** Per data object: the tail of its queue of metadata-changing operations. */
  #objectQueues = new Map<number, Promise<void>>();
  /** Writes in flight, and a gate that holds new ones while a snapshot is taken. */
  #inflight = 0;
  #drained: (() => void)[] = [];
  #gate: Promise<void> | undefined;
  #closed = false;

  private constructor(client: ObjectClient, pool: string, name: string, header: ImageHeader, version: Eversion, options: ImageOpenOptions, openParent: ParentOpener) {
    this.#client = client;
    this.pool = pool;
    this.name = name;
    this.#header = header;
    this.#headerVersion = version;
    this.#logger = options.logger ?? silentLogger;
    this.#openParent = openParent;
    if (options.snap !== undefined) {
      const snap = header.snapshots.find((s) => s.name === options.snap);
      if (!snap) throw new StorageError('NOT_FOUND', `image ${pool}/${name} has no snapshot ${JSON.stringify(options.snap)}`);
      this.#snap = snap;
    }
    this.#readOnly = options.readOnly === true || this.#snap !== undefined;
  }

  /** Opens an image; a writable open takes the exclusive lock (BUSY if another live writer has it). */
  static async open(client: ObjectClient, pool: string, name: string, options: ImageOpenOptions, openParent: ParentOpener): Promise<Image> {
    const { header, version } = await loadHeader(client, pool, name);
    const image = new Image(client, pool, name, header, version, options, openParent);
    if (!image.#readOnly) {
      image.#lock = new ImageLock(client, pool, headerObject(name), options.owner ?? `client.${process.pid}`, options.lockTtlMs ?? 15_000, image.#logger);
      await image.#lock.acquire(options.breakDeadLock === true);
      // The header may have changed between reading it and taking the lock.
      await image.refresh();
    }
    return image;
  }

  get header(): ImageHeader {
    return this.#header;
  }

  get readOnly(): boolean {
    return this.#readOnly;
  }

  get snapshot(): SnapshotInfo | undefined {
    return this.#snap;
  }

  /** Bytes the client sees: the snapshot's size for a snapshot, else the image's. */
  get size(): number {
    return this.#snap?.size ?? this.#header.size;
  }

  get objectSize(): number {
    return this.#header.objectSize;
  }

  async refresh(): Promise<void> {
    const { header, version } = await loadHeader(this.#client, this.pool, this.name);
    this.#header = header;
    this.#headerVersion = version;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#lock?.release();
    for (const p of this.#parents.values()) await (await p).close();
  }

  // -------------------------------------------------------------------------------------------------------------
  // I/O

  #checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) throw new StorageError('INVALID_ARGUMENT', `bad range ${offset}+${length}`);
    if (offset + length > this.size) throw new StorageError('INVALID_ARGUMENT', `range ${offset}+${length} ends beyond the image (${this.size} bytes)`);
  }

  /** The plain layout: never a snapshot, never a parent, so no data object carries metadata. */
  get #plain(): boolean {
    return this.#header.snapSeq === 0 && !this.#header.parent;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    for (const e of await this.readExtents(offset, length)) e.data?.copy(out, e.offset - offset);
    return out;
  }

  /** The range as extents of data and holes (holes read as zeros), in order. */
  async readExtents(offset: number, length: number): Promise<Extent[]> {
    this.#checkRange(offset, length);
    const parts = pieces(offset, length, this.objectSize);
    const results = await Promise.all(parts.map((p) => this.#readPiece(p, this.#snap)));
    return parts.map((p, i) => {
      const data = results[i];
      return data ? { offset: offset + p.bufferOffset, length: p.length, data } : { offset: offset + p.bufferOffset, length: p.length };
    });
  }

  /** One piece's bytes (always `piece.length` long), or undefined for a hole. */
  async #readPiece(p: Piece, snap: SnapshotInfo | undefined): Promise<Buffer | undefined> {
    const object = dataObject(this.name, p.index);
    const range: Op = { kind: Kind.KIND_READ, offset: p.objectOffset, length: p.length };
    let reply;
    try {
      reply = await this.#client.execute(this.pool, object, this.#plain ? [range] : [range, { kind: Kind.KIND_GETXATTRS }]);
    } catch (error) {
      if (!isStorageError(error, 'NOT_FOUND')) throw error;
      return this.#fallThrough(p, snap ? snap.parent : this.#header.parent);
    }
    const meta = this.#plain ? undefined : metaOf(reply.reply.results[1]);
    const headData = () => pad(dataOf(reply), p.length);
    if (!snap) return meta?.absent ? this.#fallThrough(p, this.#header.parent) : headData();
    const where = resolveSnapshot(meta ?? decodeMeta(undefined), snap.id);
    if (where.from === 'head') return headData();
    if (where.from === 'none') return this.#fallThrough(p, snap.parent);
    try {
      return pad(await this.#client.get(this.pool, cloneObject(this.name, p.index, where.id), { offset: p.objectOffset, length: p.length }), p.length);
    } catch (error) {
      if (isStorageError(error, 'NOT_FOUND')) throw new StorageError('CORRUPT_DATA', `clone ${cloneObject(this.name, p.index, where.id)} of snapshot ${snap.name} is missing`);
      throw error;
    }
  }

  /** What an object without content of its own shows: the parent's snapshot inside the overlap, else a hole. */
  async #fallThrough(p: Piece, parent: ParentRef | undefined): Promise<Buffer | undefined> {
    const start = p.index * this.objectSize + p.objectOffset;
    if (!parent || start >= parent.overlap) return undefined;
    const n = Math.min(p.length, parent.overlap - start);
    const image = await this.#parent(parent);
    const data = await image.read(start, Math.min(n, Math.max(0, image.size - start)));
    return pad(data, p.length);
  }

  #parent(ref: ParentRef): Promise<Image> {
    const key = `${ref.pool}/${ref.image}@${ref.snapId}`;
    let p = this.#parents.get(key);
    if (!p) {
      p = this.#openParent(ref);
      p.catch(() => this.#parents.delete(key));
      this.#parents.set(key, p);
    }
    return p;
  }

  #writable(): void {
    if (this.#readOnly) throw new StorageError('PERMISSION_DENIED', `image ${this.pool}/${this.name}${this.#snap ? '@' + this.#snap.name : ''} is open read-only`);
    if (this.#lock?.lost) throw new StorageError('PERMISSION_DENIED', `image ${this.pool}/${this.name}: the exclusive lock was broken by another writer`);
    if (this.#closed) throw new StorageError('SHUTTING_DOWN', `image ${this.pool}/${this.name} is closed`);
  }

  /** Runs a write while counting it in flight (a snapshot waits for those to finish, and holds new ones). */
  async #asWrite<T>(fn: () => Promise<T>): Promise<T> {
    this.#writable();
    while (this.#gate) await this.#gate;
    this.#inflight++;
    try {
      return await fn();
    } finally {
      if (--this.#inflight === 0) for (const d of this.#drained.splice(0)) d();
    }
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.#checkRange(offset, data.length);
    await this.#asWrite(() => Promise.all(pieces(offset, data.length, this.objectSize).map((p) => this.#writePiece(p, data.subarray(p.bufferOffset, p.bufferOffset + p.length)))));
  }

  /** Zeroes a range; with `punch` whole objects are freed (discard / TRIM), else zeros are stored (NO_HOLE). */
  async zero(offset: number, length: number, punch: boolean): Promise<void> {
    this.#checkRange(offset, length);
    const parts = pieces(offset, length, this.objectSize);
    // A zeroed range may span thousands of objects (a discard of a whole disk): a bounded number at a time.
    await this.#asWrite(() =>
      eachLimited(parts.length, zeroConcurrency, (i) => {
        const p = parts[i] as Piece;
        const toEnd = p.objectOffset + p.length >= this.objectSize || p.index * this.objectSize + p.objectOffset + p.length >= this.#header.size;
        if (punch && p.objectOffset === 0 && toEnd) return this.#freeObject(p.index);
        if (punch) return this.#zeroExisting(p);
        return this.#writePiece(p, Buffer.alloc(p.length));
      }),
    );
  }

  /** Writes are durable when acknowledged (every replica has synced), so there is nothing left to flush. */
  async flush(): Promise<void> {
    this.#writable();
  }

  /** Serialises metadata-changing operations on one data object (different objects proceed in parallel). */
  async #onObject<T>(index: number, fn: () => Promise<T>): Promise<T> {
    const before = this.#objectQueues.get(index) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = before.then(() => mine);
    this.#objectQueues.set(index, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.#objectQueues.get(index) === tail) this.#objectQueues.delete(index);
    }
  }

  /** The head's existence and metadata. */
  async #headMeta(index: number): Promise<{ exists: boolean; meta: ObjectMeta; size: number }> {
    try {
      const r = await this.#client.execute(this.pool, dataObject(this.name, index), [{ kind: Kind.KIND_STAT }, { kind: Kind.KIND_GETXATTRS }]);
      return { exists: true, meta: metaOf(r.reply.results[1]), size: Number(r.reply.results[0]?.size ?? 0) };
    } catch (error) {
      if (isStorageError(error, 'NOT_FOUND')) return { exists: false, meta: decodeMeta(undefined), size: 0 };
      throw error;
    }
  }

  /** Snapshots that would see the head's current content unless it is preserved before it changes. */
  #needsPreserve(meta: ObjectMeta): boolean {
    return this.#header.snapshots.some((s) => s.id > meta.seq);
  }

  /** Copy on write: keeps the head's content for the snapshots that see it; returns the clone list to store. */
  async #preserve(index: number, exists: boolean, meta: ObjectMeta): Promise<ObjectMeta['clones']> {
    const clones = [...meta.clones];
    if (!exists || !this.#needsPreserve(meta)) return clones;
    const id = this.#header.snapSeq;
    if (clones.some((c) => c.id === id)) return clones;
    if (meta.absent) {
      clones.push({ id, born: meta.born, absent: true });
    } else {
      const data = await this.#client.get(this.pool, dataObject(this.name, index));
      await this.#client.put(this.pool, cloneObject(this.name, index, id), data);
      clones.push({ id, born: meta.born });
    }
    return clones;
  }

  /** The parent's bytes for a whole object when a clone writes to an object it does not have yet. */
  async #copyUpData(index: number): Promise<Buffer | undefined> {
    const parent = this.#header.parent;
    const start = index * this.objectSize;
    if (!parent || start >= parent.overlap) return undefined;
    const length = Math.min(this.objectSize, parent.overlap - start);
    return (await this.#fallThrough({ index, objectOffset: 0, length, bufferOffset: 0 }, parent)) ?? Buffer.alloc(length);
  }

  async #writePiece(p: Piece, data: Buffer): Promise<void> {
    const object = dataObject(this.name, p.index);
    if (this.#plain) {
      await this.#client.write(this.pool, object, p.objectOffset, data);
      return;
    }
    await this.#onObject(p.index, async () => {
      const { exists, meta } = await this.#headMeta(p.index);
      const clones = await this.#preserve(p.index, exists, meta);
      const live = exists && !meta.absent;
      const next: ObjectMeta = { seq: this.#header.snapSeq, born: live ? meta.born : this.#header.snapSeq, clones };
      const setMeta: Op = { kind: Kind.KIND_SETXATTR, name: metaXattr, value: encodeMeta(next) };
      const base = live ? undefined : await this.#copyUpData(p.index);
      if (base) {
        const merged = Buffer.alloc(Math.max(base.length, p.objectOffset + data.length));
        base.copy(merged);
        data.copy(merged, p.objectOffset);
        await this.#client.execute(this.pool, object, [{ kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: merged.length }, setMeta], merged);
      } else {
        const ops: Op[] = exists && meta.absent ? [{ kind: Kind.KIND_TRUNCATE, offset: 0 }] : [];
        ops.push({ kind: Kind.KIND_WRITE, offset: p.objectOffset, dataOffset: 0, dataLength: data.length }, setMeta);
        await this.#client.execute(this.pool, object, ops, data);
      }
    });
  }

  /** Discard of a whole object: removed, or emptied when a parent or snapshots still need it to exist. */
  async #freeObject(index: number): Promise<void> {
    const object = dataObject(this.name, index);
    if (this.#plain) {
      await this.#client.remove(this.pool, object).catch((error: unknown) => {
        if (!isStorageError(error, 'NOT_FOUND')) throw error;
      });
      return;
    }
    await this.#onObject(index, async () => {
      const { exists, meta } = await this.#headMeta(index);
      const parent = this.#header.parent;
      const coveredByParent = parent !== undefined && index * this.objectSize < parent.overlap;
      if (!exists && !coveredByParent) return;
      const clones = await this.#preserve(index, exists, meta);
      const seq = this.#header.snapSeq;
      if (coveredByParent) {
        // An empty object reads as zeros and hides the parent's data.
        const next: ObjectMeta = { seq, born: exists && !meta.absent ? meta.born : seq, clones };
        await this.#client.execute(this.pool, object, [{ kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: 0 }, { kind: Kind.KIND_SETXATTR, name: metaXattr, value: encodeMeta(next) }]);
      } else if (clones.length > 0) {
        const next: ObjectMeta = { seq, born: meta.born, absent: true, clones };
        await this.#client.execute(this.pool, object, [{ kind: Kind.KIND_TRUNCATE, offset: 0 }, { kind: Kind.KIND_SETXATTR, name: metaXattr, value: encodeMeta(next) }]);
      } else {
        await this.#client.remove(this.pool, object);
      }
    });
  }

  /** Discard of part of an object: zeros where data exists, nothing where it is a hole already. */
  async #zeroExisting(p: Piece): Promise<void> {
    const object = dataObject(this.name, p.index);
    if (this.#plain) {
      try {
        await this.#client.execute(this.pool, object, [{ kind: Kind.KIND_ASSERT_EXISTS }, { kind: Kind.KIND_WRITE, offset: p.objectOffset, dataOffset: 0, dataLength: p.length }], Buffer.alloc(p.length));
      } catch (error) {
        if (!isStorageError(error, 'NOT_FOUND')) throw error;
      }
      return;
    }
    const { exists, meta } = await this.#headMeta(p.index);
    const parent = this.#header.parent;
    const coveredByParent = parent !== undefined && p.index * this.objectSize < parent.overlap;
    if ((!exists || meta.absent) && !coveredByParent) return;
    await this.#writePiece(p, Buffer.alloc(p.length));
  }

  /** base:allocation: which parts of the range hold data, and which are holes (zeros). */
  async allocation(offset: number, length: number): Promise<AllocationExtent[]> {
    this.#checkRange(offset, length);
    const reads = this.#snap !== undefined || this.#header.parent !== undefined;
    // Answers may be shorter than asked (the NBD client asks again from where it ends): at most so many objects.
    const limit = (Math.floor(offset / this.objectSize) + (reads ? allocationObjectsMax : allocationStatsMax)) * this.objectSize - offset;
    length = Math.min(length, limit);
    if (reads) {
      // Snapshots and clones: what a read would see (parent data counts as data).
      return (await this.readExtents(offset, length)).map((e) => ({ offset: e.offset, length: e.length, hole: !e.data, zero: !e.data }));
    }
    const parts = pieces(offset, length, this.objectSize);
    const heads = await Promise.all(parts.map((p) => this.#headMeta(p.index)));
    const out: AllocationExtent[] = [];
    parts.forEach((p, i) => {
      const head = heads[i];
      const at = offset + p.bufferOffset;
      const stored = head && head.exists && !head.meta.absent ? Math.max(0, Math.min(p.length, head.size - p.objectOffset)) : 0;
      if (stored > 0) out.push({ offset: at, length: stored, hole: false, zero: false });
      if (stored < p.length) out.push({ offset: at + stored, length: p.length - stored, hole: true, zero: true });
    });
    return out;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Whole-image operations (the lock holder runs them)

  async #updateHeader(change: (h: ImageHeader) => void): Promise<ImageHeader> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const next = structuredClone(this.#header);
      change(next);
      try {
        const data = encodeHeader(next);
        this.#headerVersion = await this.#client.ifVersion(this.pool, headerObject(this.name), this.#headerVersion, [{ kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: data.length }], data);
        this.#header = next;
        return next;
      } catch (error) {
        if (!isStorageError(error, 'PRECONDITION_FAILED')) throw error;
        await this.refresh();
      }
    }
    throw new StorageError('BUSY', `image ${this.pool}/${this.name}: the header kept changing under us`);
  }

  async #eachObject(count: number, fn: (index: number) => Promise<void>): Promise<void> {
    await eachLimited(count, imageOpConcurrency, fn);
  }

  #objectsFor(bytes: number): number {
    return Math.ceil(bytes / this.objectSize);
  }

  /** Holds new writes, waits for those in flight, runs `fn`, then lets writes go on. */
  async #quiesced<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#gate) await this.#gate;
    let open!: () => void;
    this.#gate = new Promise<void>((r) => (open = r));
    try {
      if (this.#inflight > 0) await new Promise<void>((r) => this.#drained.push(r));
      return await fn();
    } finally {
      this.#gate = undefined;
      open();
    }
  }

  async snapCreate(name: string): Promise<SnapshotInfo> {
    this.#writable();
    if (this.#header.snapshots.some((s) => s.name === name)) throw new StorageError('ALREADY_EXISTS', `image ${this.pool}/${this.name} already has a snapshot ${name}`);
    return this.#quiesced(async () => {
      const h = await this.#updateHeader((h) => {
        if (h.snapshots.some((s) => s.name === name)) throw new StorageError('ALREADY_EXISTS', `image ${this.pool}/${this.name} already has a snapshot ${name}`);
        h.snapSeq += 1;
        h.snapshots.push({ id: h.snapSeq, name, size: h.size, createdMs: Date.now(), ...(h.parent ? { parent: h.parent } : {}) });
      });
      return h.snapshots.at(-1) as SnapshotInfo;
    });
  }

  async snapRemove(name: string): Promise<void> {
    this.#writable();
    const snap = this.#findSnap(name);
    const children = this.#header.children.filter((c) => c.endsWith(`@${snap.id}`));
    if (children.length > 0) throw new StorageError('NOT_EMPTY', `snapshot ${name} of ${this.pool}/${this.name} has clones (${children.join(', ')}); flatten or remove them first`);
    const span = Math.max(this.#header.size, ...this.#header.snapshots.map((s) => s.size));
    await this.#updateHeader((h) => {
      h.snapshots = h.snapshots.filter((s) => s.id !== snap.id);
    });
    const ids = this.#header.snapshots.map((s) => s.id);
    await this.#eachObject(this.#objectsFor(span), (index) =>
      this.#onObject(index, async () => {
        const { exists, meta } = await this.#headMeta(index);
        if (!exists) return;
        const drop = unreferencedClones(meta, ids);
        if (drop.length === 0) return;
        for (const c of drop) {
          if (!c.absent) await this.#client.remove(this.pool, cloneObject(this.name, index, c.id)).catch(ignoreNotFound);
        }
        const clones = meta.clones.filter((c) => !drop.some((d) => d.id === c.id));
        const object = dataObject(this.name, index);
        if (meta.absent && clones.length === 0) await this.#client.remove(this.pool, object);
        else await this.#client.setXattr(this.pool, object, metaXattr, encodeMeta({ ...meta, clones }));
      }),
    );
  }

  #findSnap(name: string): SnapshotInfo {
    const snap = this.#header.snapshots.find((s) => s.name === name);
    if (!snap) throw new StorageError('NOT_FOUND', `image ${this.pool}/${this.name} has no snapshot ${JSON.stringify(name)}`);
    return snap;
  }

  /** Makes the image's content and size the snapshot's again (the snapshot stays). */
  async snapRollback(name: string): Promise<void> {
    this.#writable();
    const snap = this.#findSnap(name);
    await this.#quiesced(async () => {
      const count = this.#objectsFor(Math.max(this.#header.size, snap.size));
      await this.#eachObject(count, async (index) => {
        const start = index * this.objectSize;
        const length = Math.max(0, Math.min(this.objectSize, snap.size - start));
        const content = length > 0 ? await this.#readPiece({ index, objectOffset: 0, length, bufferOffset: 0 }, snap) : undefined;
        await this.#replaceObject(index, content);
      });
      await this.#updateHeader((h) => {
        h.size = snap.size;
      });
    });
  }

  /** Sets a data object's whole content (undefined: none, reads fall through to the parent or zeros). */
  async #replaceObject(index: number, content: Buffer | undefined): Promise<void> {
    const object = dataObject(this.name, index);
    await this.#onObject(index, async () => {
      const { exists, meta } = await this.#headMeta(index);
      const clones = await this.#preserve(index, exists, meta);
      const seq = this.#header.snapSeq;
      const live = exists && !meta.absent;
      const parent = this.#header.parent;
      const covered = parent !== undefined && index * this.objectSize < parent.overlap;
      const data = content ?? (covered ? Buffer.alloc(0) : undefined);
      if (data) {
        const next: ObjectMeta = { seq, born: live ? meta.born : seq, clones };
        await this.#client.execute(this.pool, object, [{ kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: data.length }, { kind: Kind.KIND_SETXATTR, name: metaXattr, value: encodeMeta(next) }], data);
      } else if (exists && clones.length > 0) {
        const next: ObjectMeta = { seq, born: meta.born, absent: true, clones };
        await this.#client.execute(this.pool, object, [{ kind: Kind.KIND_TRUNCATE, offset: 0 }, { kind: Kind.KIND_SETXATTR, name: metaXattr, value: encodeMeta(next) }]);
      } else if (exists) {
        await this.#client.remove(this.pool, object);
      }
    });
  }

  /** Grows or shrinks the image; shrinking frees the objects past the end (kept for snapshots that see them). */
  async resize(size: number): Promise<void> {
    this.#writable();
    if (!Number.isSafeInteger(size) || size <= 0) throw new StorageError('INVALID_ARGUMENT', `bad size ${size}`);
    await this.#quiesced(async () => {
      const old = this.#header.size;
      await this.#updateHeader((h) => {
        h.size = size;
        if (h.parent) h.parent = { ...h.parent, overlap: Math.min(h.parent.overlap, size) };
      });
      if (size >= old) return;
      const first = Math.floor(size / this.objectSize);
      const tail = size - first * this.objectSize;
      await this.#eachObject(this.#objectsFor(old) - first, async (i) => {
        const index = first + i;
        if (index === first && tail > 0) {
          // Keep the start of the last object, drop the rest.
          const { exists, meta } = await this.#headMeta(index);
          if (!exists || meta.absent) return;
          await this.#replaceObject(index, await this.read(index * this.objectSize, tail));
        } else {
          await this.#replaceObject(index, undefined);
        }
      });
    });
  }

  /** Copies every object still read from the parent into this image, then forgets the parent. */
  async flatten(): Promise<void> {
    this.#writable();
    const parent = this.#header.parent;
    if (!parent) throw new StorageError('INVALID_ARGUMENT', `image ${this.pool}/${this.name} has no parent`);
    await this.#quiesced(async () => {
      await this.#eachObject(this.#objectsFor(parent.overlap), (index) =>
        this.#onObject(index, async () => {
          const { exists, meta } = await this.#headMeta(index);
          if (exists && !meta.absent) return;
          const data = await this.#copyUpData(index);
          if (!data) return;
          const clones = await this.#preserve(index, exists, meta);
          const seq = this.#header.snapSeq;
          const next: ObjectMeta = { seq, born: seq, clones };
          await this.#client.execute(this.pool, dataObject(this.name, index), [{ kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: data.length }, { kind: Kind.KIND_SETXATTR, name: metaXattr, value: encodeMeta(next) }], data);
        }),
      );
      await this.#updateHeader((h) => {
        delete h.parent;
      });
    });
  }

  /** Runs an operation another process asked the lock holder for (see BlockImages.requestFromHolder). */
  async serveRequest(request: HolderRequest): Promise<void> {
    if (typeof request?.name !== 'string') throw new StorageError('INVALID_ARGUMENT', 'a request names a snapshot');
    checkSnapName(request.name);
    // Clones may have been added to the header by other processes since it was read.
    await this.refresh();
    if (request.op === 'snap-create') await this.snapCreate(request.name);
    else if (request.op === 'snap-rm') await this.snapRemove(request.name);
    else throw new StorageError('INVALID_ARGUMENT', `unknown request ${String((request as { op?: unknown }).op)}`);
  }
}

export type HolderRequest = { op: 'snap-create'; name: string } | { op: 'snap-rm'; name: string };

export async function loadHeader(client: ObjectClient, pool: string, name: string): Promise<{ header: ImageHeader; version: Eversion }> {
  try {
    const r = await client.execute(pool, headerObject(name), [{ kind: Kind.KIND_READ, offset: 0, length: 0 }]);
    const header = decodeHeader(dataOf(r));
    const v = r.reply.version;
    return { header, version: { epoch: Number(v?.epoch ?? 0), seq: Number(v?.seq ?? 0) } };
  } catch (error) {
    if (isStorageError(error, 'NOT_FOUND')) throw new StorageError('NOT_FOUND', `image ${pool}/${name} does not exist`);
    throw error;
  }
}

function dataOf(r: { reply: wire.OsdOpReply; payload: Buffer }): Buffer {
  const result = r.reply.results[0];
  const start = Number(result?.dataOffset ?? 0);
  return r.payload.subarray(start, start + Number(result?.dataLength ?? 0));
}

function metaOf(result: wire.ObjectOpResult.$Properties | undefined): ObjectMeta {
  const entry = (result?.entries ?? []).find((e) => e.key === metaXattr);
  return decodeMeta(entry?.value ? Buffer.from(entry.value) : undefined);
}

function pad(data: Buffer, length: number): Buffer {
  if (data.length >= length) return data.length === length ? data : data.subarray(0, length);
  const out = Buffer.alloc(length);
  data.copy(out);
  return out;
}

function ignoreNotFound(error: unknown): void {
  if (!isStorageError(error, 'NOT_FOUND')) throw error;
}
