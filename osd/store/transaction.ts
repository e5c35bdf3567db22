import type { ObjectId, TransactionLike, TxOp } from './types.js';

type Entries = Iterable<readonly [string, Uint8Array]> | Readonly<Record<string, Uint8Array>>;

function toEntries(entries: Entries): (readonly [string, Uint8Array])[] {
  if (Symbol.iterator in entries) return Array.from(entries as Iterable<readonly [string, Uint8Array]>);
  return Object.entries(entries);
}

/**
 * Builds a transaction op by op; each method returns `this` for chaining:
 * `store.apply(new Transaction().write(oid, 0, data).setXattr(oid, 'v', version).pgMetaSet(pg, { [logKey]: entry }))`.
 */
export class Transaction implements TransactionLike {
  readonly ops: TxOp[] = [];

  touch(oid: ObjectId, options: { mustNotExist?: boolean } = {}): this {
    this.ops.push({ op: 'touch', oid, mustNotExist: options.mustNotExist === true });
    return this;
  }

  write(oid: ObjectId, offset: number, data: Uint8Array): this {
    this.ops.push({ op: 'write', oid, offset, data });
    return this;
  }

  writeFull(oid: ObjectId, data: Uint8Array): this {
    this.ops.push({ op: 'writeFull', oid, data });
    return this;
  }

  zero(oid: ObjectId, offset: number, length: number): this {
    this.ops.push({ op: 'zero', oid, offset, length });
    return this;
  }

  truncate(oid: ObjectId, size: number): this {
    this.ops.push({ op: 'truncate', oid, size });
    return this;
  }

  remove(oid: ObjectId, options: { mustExist?: boolean } = {}): this {
    this.ops.push({ op: 'remove', oid, mustExist: options.mustExist === true });
    return this;
  }

  setXattr(oid: ObjectId, name: string, value: Uint8Array): this {
    this.ops.push({ op: 'setXattrs', oid, attrs: [[name, value]] });
    return this;
  }

  setXattrs(oid: ObjectId, attrs: Entries): this {
    this.ops.push({ op: 'setXattrs', oid, attrs: toEntries(attrs) });
    return this;
  }

  rmXattr(oid: ObjectId, ...names: string[]): this {
    this.ops.push({ op: 'rmXattrs', oid, names });
    return this;
  }

  omapSet(oid: ObjectId, entries: Entries): this {
    this.ops.push({ op: 'omapSet', oid, entries: toEntries(entries) });
    return this;
  }

  omapRemove(oid: ObjectId, keys: readonly string[]): this {
    this.ops.push({ op: 'omapRemove', oid, keys: keys.slice() });
    return this;
  }

  omapClear(oid: ObjectId): this {
    this.ops.push({ op: 'omapClear', oid });
    return this;
  }

  clone(src: ObjectId, dst: ObjectId): this {
    this.ops.push({ op: 'clone', src, dst });
    return this;
  }

  rename(src: ObjectId, dst: ObjectId): this {
    this.ops.push({ op: 'rename', src, dst });
    return this;
  }

  createCollection(pg: string): this {
    this.ops.push({ op: 'createCollection', pg });
    return this;
  }

  removeCollection(pg: string): this {
    this.ops.push({ op: 'removeCollection', pg });
    return this;
  }

  pgMetaSet(pg: string, entries: Entries): this {
    this.ops.push({ op: 'pgMetaSet', pg, entries: toEntries(entries) });
    return this;
  }

  pgMetaRemove(pg: string, keys: readonly string[]): this {
    this.ops.push({ op: 'pgMetaRemove', pg, keys: keys.slice() });
    return this;
  }

  get isEmpty(): boolean {
    return this.ops.length === 0;
  }
}
