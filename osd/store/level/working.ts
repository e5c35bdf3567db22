/**
 * Phase one of a LevelStore commit group: the transactions of the group are applied, one after the other, to an
 * in-memory working state of the objects they touch. Nothing here writes to disk; it reads what it needs of the
 * committed state (onodes, and the omap of a clone source). Object data is not read either: a data change is an
 * overlay (new extents over the committed bytes, which stay valid up to `baseValid`) that phase two turns into file
 * writes. A transaction that fails part-way is rolled back through an undo log, so it leaves no trace in the group.
 */
import { StorageError } from '../../../src/common/index.js';
import type { StoreLimits } from '../limits.js';
import type { ObjectId, TransactionLike, TxOp } from '../types.js';
import type { CollectionRecord, Onode } from './codec.js';

/** New bytes at `offset`, or `length` zeros when `data` is null. */
export interface Extent {
  readonly offset: number;
  readonly length: number;
  readonly data: Buffer | null;
}

/** The committed data an object's new data is laid over. `owned`: the object may change it in place. */
export type Base =
  | { readonly kind: 'none' }
  | { readonly kind: 'inline'; readonly id: number; readonly crc: number; readonly size: number; readonly owned: boolean }
  | { readonly kind: 'file'; readonly id: number; readonly blockBytes: number; readonly size: number; readonly owned: boolean };

/** Immutable: every change makes a new one, so undo can keep references. */
export interface DataState {
  readonly base: Base;
  /** Base bytes at and past this offset read as zeros (a truncate cut them). */
  readonly baseValid: number;
  /** Sorted, non-overlapping; they win over the base. */
  readonly extents: readonly Extent[];
}

export interface OmapState {
  /** The committed omap set the changes apply to (0: none). */
  id: number;
  /** When true the committed set is dropped and `sets` is the whole omap. */
  cleared: boolean;
  sets: Map<string, Buffer>;
  removes: Set<string>;
}

export interface WorkingObject {
  readonly key: string;
  readonly cid: number;
  readonly pg: string;
  readonly name: string;
  /** As committed when the group began. */
  readonly durable: Onode | undefined;
  exists: boolean;
  size: number;
  mtimeMs: number;
  xattrs: Map<string, Buffer>;
  data: DataState;
  omap: OmapState;
  changed: boolean;
}

export interface WorkingCollection {
  readonly pg: string;
  readonly durable: CollectionRecord | undefined;
  current: { cid: number; created: boolean } | undefined;
  /** Committed collection ids removed in this group (their contents are collected after the commit). */
  removed: number[];
}

/** What the working state needs from the committed store. */
export interface CommittedView {
  readonly limits: StoreLimits;
  readonly capacityBytes: number;
  usedBytes(): number;
  collection(pg: string): CollectionRecord | undefined;
  onode(cid: number, name: string): Promise<Onode | undefined>;
  /** Several onodes in one LevelDB round trip. */
  onodes(keys: readonly { cid: number; name: string }[]): Promise<(Onode | undefined)[]>;
  /** Up to `max` entries of a committed omap set, in key order. */
  omapEntries(omapId: number, max: number): Promise<[string, Buffer][]>;
}

interface Snapshot {
  exists: boolean;
  size: number;
  mtimeMs: number;
  xattrs: Map<string, Buffer>;
  data: DataState;
  omap: OmapState;
  changed: boolean;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function baseOf(onode: Onode | undefined): Base {
  if (!onode || onode.data.kind === 'none') return { kind: 'none' };
  if (onode.data.kind === 'inline') return { kind: 'inline', id: onode.data.id, crc: onode.data.crc, size: onode.size, owned: true };
  return { kind: 'file', id: onode.data.id, blockBytes: onode.data.blockBytes, size: onode.size, owned: true };
}

const emptyData: DataState = { base: { kind: 'none' }, baseValid: 0, extents: [] };

function emptyOmap(): OmapState {
  return { id: 0, cleared: true, sets: new Map(), removes: new Set() };
}

/** Lays `extent` over `extents`, trimming or splitting what it covers. */
export function overlay(extents: readonly Extent[], extent: Extent): Extent[] {
  if (extent.length === 0) return extents.slice();
  const end = extent.offset + extent.length;
  const out: Extent[] = [];
  let placed = false;
  for (const x of extents) {
    const xEnd = x.offset + x.length;
    if (xEnd <= extent.offset || x.offset >= end) {
      if (!placed && x.offset >= end) {
        out.push(extent);
        placed = true;
      }
      out.push(x);
      continue;
    }
    if (x.offset < extent.offset) {
      const length = extent.offset - x.offset;
      out.push({ offset: x.offset, length, data: x.data ? x.data.subarray(0, length) : null });
    }
    if (!placed) {
      out.push(extent);
      placed = true;
    }
    if (xEnd > end) {
      out.push({ offset: end, length: xEnd - end, data: x.data ? x.data.subarray(end - x.offset) : null });
    }
  }
  if (!placed) out.push(extent);
  return out;
}

function clip(extents: readonly Extent[], size: number): Extent[] {
  const out: Extent[] = [];
  for (const x of extents) {
    if (x.offset >= size) break;
    if (x.offset + x.length <= size) out.push(x);
    else out.push({ offset: x.offset, length: size - x.offset, data: x.data ? x.data.subarray(0, size - x.offset) : null });
  }
  return out;
}

export class WorkingSet {
  readonly objects = new Map<string, WorkingObject>();
  readonly collections = new Map<string, WorkingCollection>();
  /** PG metadata changes by collection id: a value to set, or null to delete. */
  readonly pgMeta = new Map<number, Map<string, Buffer | null>>();
  nextId: number;
  /** Change of the stored logical bytes by the transactions accepted so far. */
  usedDelta = 0;
  readonly #view: CommittedView;
  #undo: (() => void)[] = [];
  #snapshots = new Map<WorkingObject, Snapshot>();

  constructor(view: CommittedView, nextId: number) {
    this.#view = view;
    this.nextId = nextId;
  }

  /** Onodes fetched ahead of the transactions that will ask for them, by `cid:name`. */
  #prefetched = new Map<string, Onode | undefined>();

  /** Loads, in one round trip, the committed onodes the given transactions name (an optimisation only). */
  async prefetch(txs: readonly TransactionLike[]): Promise<void> {
    const wanted = new Map<string, { cid: number; name: string }>();
    const want = (oid: ObjectId) => {
      const cid = this.#view.collection(oid.pg)?.cid;
      if (cid !== undefined) wanted.set(`${cid}:${oid.name}`, { cid, name: oid.name });
    };
    for (const tx of txs) {
      for (const op of tx.ops) {
        if ('oid' in op) want(op.oid);
        else if ('src' in op) {
          want(op.src);
          want(op.dst);
        }
      }
    }
    const list = [...wanted.values()];
    const onodes = await this.#view.onodes(list);
    list.forEach((k, i) => this.#prefetched.set(`${k.cid}:${k.name}`, onodes[i]));
  }

  /** Applies one transaction; on failure nothing of it remains and the error is rethrown. */
  async apply(tx: TransactionLike, nowMs: number): Promise<void> {
    this.#undo = [];
    this.#snapshots.clear();
    try {
      for (const op of tx.ops) await this.#applyOp(op, nowMs);
      let delta = 0;
      for (const [object, before] of this.#snapshots) {
        delta += (object.exists ? object.size : 0) - (before.exists ? before.size : 0);
      }
      const used = this.#view.usedBytes() + this.usedDelta + delta;
      if (delta > 0 && used > this.#view.capacityBytes) {
        throw new StorageError('NO_SPACE', `store would hold ${used} bytes, capacity is ${this.#view.capacityBytes}`);
      }
      this.usedDelta += delta;
    } catch (error) {
      for (let i = this.#undo.length - 1; i >= 0; i--) (this.#undo[i] as () => void)();
      throw error;
    } finally {
      this.#undo = [];
      this.#snapshots.clear();
    }
  }

  /** An id for phase two (after the transactions are in; nothing to undo). */
  takeId(): number {
    return this.nextId++;
  }

  allocateId(): number {
    const id = this.nextId++;
    this.#undo.push(() => (this.nextId = Math.min(this.nextId, id)));
    return id;
  }

  #collection(pg: string): WorkingCollection {
    let c = this.collections.get(pg);
    if (!c) {
      const durable = this.#view.collection(pg);
      c = { pg, durable, current: durable ? { cid: durable.cid, created: false } : undefined, removed: [] };
      this.collections.set(pg, c);
    }
    return c;
  }

  #ensureCollection(pg: string): { cid: number; created: boolean } {
    const c = this.#collection(pg);
    if (c.current) return c.current;
    const current = { cid: this.allocateId(), created: true };
    c.current = current;
    this.#undo.push(() => (c.current = undefined));
    return current;
  }

  /** The working object at `oid`; undefined when its collection does not exist and `create` is false. */
  async #object(oid: ObjectId, create: boolean): Promise<WorkingObject | undefined> {
    const c = this.#collection(oid.pg);
    const current = c.current ?? (create ? this.#ensureCollection(oid.pg) : undefined);
    if (!current) return undefined;
    const key = `${current.cid}:${oid.name}`;
    let object = this.objects.get(key);
    if (!object) {
      const durable = current.created
        ? undefined
        : this.#prefetched.has(key)
          ? this.#prefetched.get(key)
          : await this.#view.onode(current.cid, oid.name);
      object = {
        key,
        cid: current.cid,
        pg: oid.pg,
        name: oid.name,
        durable,
        exists: durable !== undefined,
        size: durable?.size ?? 0,
        mtimeMs: durable?.mtimeMs ?? 0,
        xattrs: new Map(durable?.xattrs ?? []),
        data: durable ? { base: baseOf(durable), baseValid: durable.size, extents: [] } : emptyData,
        omap: { id: durable?.omapId ?? 0, cleared: false, sets: new Map(), removes: new Set() },
        changed: false,
      };
      this.objects.set(key, object);
    }
    return object;
  }

  /** Records how to restore `object` before the current transaction first changes it. */
  #touch(object: WorkingObject, nowMs: number): void {
    if (!this.#snapshots.has(object)) {
      const o = object;
      const saved: Snapshot = {
        exists: o.exists,
        size: o.size,
        mtimeMs: o.mtimeMs,
        xattrs: new Map(o.xattrs),
        data: o.data,
        omap: { id: o.omap.id, cleared: o.omap.cleared, sets: new Map(o.omap.sets), removes: new Set(o.omap.removes) },
        changed: o.changed,
      };
      this.#snapshots.set(o, saved);
      this.#undo.push(() => Object.assign(o, saved));
    }
    object.changed = true;
    object.mtimeMs = nowMs;
  }

  /** The object, created empty if missing, ready for changes. */
  async #mutable(oid: ObjectId, nowMs: number): Promise<WorkingObject> {
    const object = (await this.#object(oid, true)) as WorkingObject;
    this.#touch(object, nowMs);
    if (!object.exists) {
      object.exists = true;
      object.size = 0;
      object.xattrs = new Map();
      object.data = emptyData;
      object.omap = { ...emptyOmap(), id: object.omap.id };
    }
    return object;
  }

  /** The object if it exists, ready for changes; undefined (and untouched) if it does not. */
  async #existing(oid: ObjectId, nowMs: number): Promise<WorkingObject | undefined> {
    const object = await this.#object(oid, false);
    if (!object?.exists) return undefined;
    this.#touch(object, nowMs);
    return object;
  }

  #removeObject(object: WorkingObject): void {
    object.exists = false;
    object.size = 0;
    object.xattrs = new Map();
    object.data = emptyData;
    object.omap = { ...emptyOmap(), id: object.omap.id };
  }

  #write(object: WorkingObject, offset: number, length: number, data: Buffer | null): void {
    if (offset > object.size) object.size = offset;
    object.data = { ...object.data, extents: overlay(object.data.extents, { offset, length, data }) };
    object.size = Math.max(object.size, offset + length);
  }

  #truncate(object: WorkingObject, size: number): void {
    if (size < object.size) {
      object.data = {
        base: object.data.base,
        baseValid: Math.min(object.data.baseValid, size),
        extents: clip(object.data.extents, size),
      };
    }
    object.size = size;
  }

  /** The whole omap of `object` as it stands in the working state (for clone). */
  async #omapEntries(object: WorkingObject): Promise<Map<string, Buffer>> {
    const max = this.#view.limits.cloneOmapEntriesMax;
    const out = new Map<string, Buffer>();
    if (!object.omap.cleared && object.omap.id !== 0) {
      for (const [key, value] of await this.#view.omapEntries(object.omap.id, max + 1)) {
        if (!object.omap.removes.has(key)) out.set(key, value);
      }
    }
    for (const [key, value] of object.omap.sets) out.set(key, value);
    if (out.size > max) throw new StorageError('TOO_LARGE', `clone source has more than ${max} omap entries`);
    return out;
  }

  async #applyOp(op: TxOp, nowMs: number): Promise<void> {
    switch (op.op) {
      case 'touch': {
        const existing = await this.#object(op.oid, false);
        if (op.mustNotExist && existing?.exists) {
          throw new StorageError('ALREADY_EXISTS', `object ${op.oid.pg}/${op.oid.name} already exists`);
        }
        await this.#mutable(op.oid, nowMs);
        return;
      }
      case 'write': {
        const object = await this.#mutable(op.oid, nowMs);
        this.#write(object, op.offset, op.data.length, asBuffer(op.data));
        return;
      }
      case 'writeFull': {
        const object = await this.#mutable(op.oid, nowMs);
        object.data = emptyData;
        object.size = 0;
        this.#write(object, 0, op.data.length, asBuffer(op.data));
        return;
      }
      case 'zero': {
        const object = await this.#existing(op.oid, nowMs);
        if (!object || op.offset >= object.size) return;
        this.#write(object, op.offset, Math.min(op.length, object.size - op.offset), null);
        return;
      }
      case 'truncate': {
        this.#truncate(await this.#mutable(op.oid, nowMs), op.size);
        return;
      }
      case 'remove': {
        const object = await this.#existing(op.oid, nowMs);
        if (!object) {
          if (op.mustExist) throw new StorageError('NOT_FOUND', `object ${op.oid.pg}/${op.oid.name} does not exist`);
          return;
        }
        this.#removeObject(object);
        return;
      }
      case 'setXattrs': {
        const object = await this.#mutable(op.oid, nowMs);
        for (const [name, value] of op.attrs) object.xattrs.set(name, Buffer.from(value));
        let total = 0;
        for (const [name, value] of object.xattrs) total += Buffer.byteLength(name) + value.length;
        if (total > this.#view.limits.xattrsBytesMax) {
          throw new StorageError('TOO_LARGE', `xattrs of ${op.oid.name} would take ${total} bytes, more than ${this.#view.limits.xattrsBytesMax}`);
        }
        return;
      }
      case 'rmXattrs': {
        const object = await this.#existing(op.oid, nowMs);
        if (object) for (const name of op.names) object.xattrs.delete(name);
        return;
      }
      case 'omapSet': {
        const object = await this.#mutable(op.oid, nowMs);
        for (const [key, value] of op.entries) {
          object.omap.sets.set(key, Buffer.from(value));
          object.omap.removes.delete(key);
        }
        return;
      }
      case 'omapRemove': {
        const object = await this.#existing(op.oid, nowMs);
        if (!object) return;
        for (const key of op.keys) {
          object.omap.sets.delete(key);
          if (!object.omap.cleared) object.omap.removes.add(key);
        }
        return;
      }
      case 'omapClear': {
        const object = await this.#existing(op.oid, nowMs);
        if (object) object.omap = { ...emptyOmap(), id: object.omap.id };
        return;
      }
      case 'clone': {
        const src = await this.#object(op.src, false);
        if (!src?.exists) throw new StorageError('NOT_FOUND', `clone source ${op.src.pg}/${op.src.name} does not exist`);
        const omap = await this.#omapEntries(src);
        const dst = await this.#mutable(op.dst, nowMs);
        dst.size = src.size;
        dst.xattrs = new Map(src.xattrs);
        // The copy may not change the source's bytes: phase two gives it data of its own.
        dst.data = { ...src.data, base: src.data.base.kind === 'none' ? src.data.base : { ...src.data.base, owned: false } };
        dst.omap = { id: dst.omap.id, cleared: true, sets: omap, removes: new Set() };
        return;
      }
      case 'rename': {
        const src = await this.#existing(op.src, nowMs);
        if (!src) throw new StorageError('NOT_FOUND', `rename source ${op.src.pg}/${op.src.name} does not exist`);
        const moved = { size: src.size, mtimeMs: src.mtimeMs, xattrs: src.xattrs, data: src.data, omap: src.omap };
        this.#removeObject(src);
        src.omap = emptyOmap();
        const dst = await this.#mutable(op.dst, nowMs);
        // dst's committed omap (if any) is no longer referenced and is collected after the commit.
        Object.assign(dst, moved);
        return;
      }
      case 'createCollection':
        this.#ensureCollection(op.pg);
        return;
      case 'removeCollection': {
        const c = this.#collection(op.pg);
        const current = c.current;
        if (!current) return;
        for (const object of this.objects.values()) {
          if (object.cid === current.cid && object.exists) {
            this.#touch(object, nowMs);
            this.#removeObject(object);
          }
        }
        const pending = this.pgMeta.get(current.cid);
        this.pgMeta.delete(current.cid);
        c.current = undefined;
        if (!current.created) c.removed.push(current.cid);
        this.#undo.push(() => {
          c.current = current;
          if (!current.created) c.removed.pop();
          if (pending) this.pgMeta.set(current.cid, pending);
        });
        return;
      }
      case 'pgMetaSet':
      case 'pgMetaRemove': {
        const { cid } = this.#ensureCollection(op.pg);
        let changes = this.pgMeta.get(cid);
        if (!changes) {
          const created = new Map<string, Buffer | null>();
          changes = created;
          this.pgMeta.set(cid, created);
          this.#undo.push(() => this.pgMeta.delete(cid));
        }
        const target = changes;
        const updates: [string, Buffer | null][] =
          op.op === 'pgMetaSet' ? op.entries.map(([k, v]) => [k, Buffer.from(v)]) : op.keys.map((k) => [k, null]);
        for (const [key, value] of updates) {
          const had = target.has(key);
          const previous = target.get(key);
          target.set(key, value);
          this.#undo.push(() => (had ? target.set(key, previous as Buffer | null) : target.delete(key)));
        }
        return;
      }
    }
  }
}
