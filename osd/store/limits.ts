/**
 * Bounds shared by every backend, and the checks that a transaction or a read request is well formed before anything
 * is touched. Anything a caller can make unbounded (object size, value sizes, transaction size, page sizes) has a
 * limit here; exceeding one is TOO_LARGE, a malformed argument is INVALID_ARGUMENT.
 */
import { StorageError } from '../../src/common/index.js';
import type { ListOptions, ObjectId, TransactionLike } from './types.js';

export interface StoreLimits {
  /** Largest object (end of any write or truncate). */
  objectBytesMax: number;
  /** Sum of data, keys and values carried by one transaction. */
  transactionBytesMax: number;
  /** Ops plus xattr/omap/PG-metadata entries in one transaction. */
  transactionItemsMax: number;
  objectNameBytesMax: number;
  pgNameBytesMax: number;
  xattrNameBytesMax: number;
  xattrValueBytesMax: number;
  /** Sum of names and values of one object's xattrs. */
  xattrsBytesMax: number;
  omapKeyBytesMax: number;
  omapValueBytesMax: number;
  /** Omap entries `clone` copies; more is TOO_LARGE (a clone is one transaction). */
  cloneOmapEntriesMax: number;
  pgMetaKeyBytesMax: number;
  pgMetaValueBytesMax: number;
  /** Largest `limit` of a listing. */
  listLimitMax: number;
}

export const defaultStoreLimits: Readonly<StoreLimits> = Object.freeze({
  objectBytesMax: 128 * 1024 * 1024,
  transactionBytesMax: 64 * 1024 * 1024,
  transactionItemsMax: 65_536,
  objectNameBytesMax: 2048,
  pgNameBytesMax: 128,
  xattrNameBytesMax: 256,
  xattrValueBytesMax: 64 * 1024,
  xattrsBytesMax: 256 * 1024,
  omapKeyBytesMax: 1024,
  omapValueBytesMax: 256 * 1024,
  cloneOmapEntriesMax: 100_000,
  pgMetaKeyBytesMax: 1024,
  pgMetaValueBytesMax: 4 * 1024 * 1024,
  listLimitMax: 10_000,
});

export function resolveLimits(overrides: Partial<StoreLimits> | undefined): StoreLimits {
  const limits = { ...defaultStoreLimits, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`store limit ${name} must be a positive integer`);
  }
  return limits;
}

// A lone surrogate has no UTF-8 encoding: two different strings would map to the same stored key.
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkString(value: unknown, what: string, bytesMax: number, allowEmpty: boolean): number {
  if (typeof value !== 'string') throw new StorageError('INVALID_ARGUMENT', `${what} must be a string`);
  if (!allowEmpty && value.length === 0) throw new StorageError('INVALID_ARGUMENT', `${what} must not be empty`);
  if (loneSurrogate.test(value)) throw new StorageError('INVALID_ARGUMENT', `${what} is not well-formed Unicode`);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > bytesMax) throw new StorageError('TOO_LARGE', `${what} is ${bytes} bytes, more than ${bytesMax}`);
  return bytes;
}

function checkBytes(value: unknown, what: string, bytesMax: number): number {
  if (!(value instanceof Uint8Array)) throw new StorageError('INVALID_ARGUMENT', `${what} must be bytes`);
  if (value.length > bytesMax) throw new StorageError('TOO_LARGE', `${what} is ${value.length} bytes, more than ${bytesMax}`);
  return value.length;
}

function checkCount(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new StorageError('INVALID_ARGUMENT', `${what} must be a non-negative integer, got ${String(value)}`);
  }
  return value as number;
}

export function checkPg(pg: unknown, limits: StoreLimits): number {
  return checkString(pg, 'collection (pg) name', limits.pgNameBytesMax, false);
}

export function checkOid(oid: ObjectId, limits: StoreLimits): number {
  if (typeof oid !== 'object' || oid === null) throw new StorageError('INVALID_ARGUMENT', 'object id must be { pg, name }');
  return checkPg(oid.pg, limits) + checkString(oid.name, 'object name', limits.objectNameBytesMax, false);
}

function checkEnd(offset: number, length: number, limits: StoreLimits): void {
  if (offset + length > limits.objectBytesMax) {
    throw new StorageError('TOO_LARGE', `object would reach ${offset + length} bytes, more than ${limits.objectBytesMax}`);
  }
}

/** Checks everything about a transaction that does not depend on the stored state. */
export function validateTransaction(tx: TransactionLike, limits: StoreLimits): void {
  if (typeof tx !== 'object' || tx === null || !Array.isArray(tx.ops)) {
    throw new StorageError('INVALID_ARGUMENT', 'a transaction must have an ops array');
  }
  let bytes = 0;
  let items = 0;
  for (const op of tx.ops) {
    items++;
    switch (op.op) {
      case 'touch':
      case 'remove':
      case 'omapClear':
        bytes += checkOid(op.oid, limits);
        break;
      case 'write':
        bytes += checkOid(op.oid, limits) + checkBytes(op.data, 'write data', limits.objectBytesMax);
        checkEnd(checkCount(op.offset, 'write offset'), op.data.length, limits);
        break;
      case 'writeFull':
        bytes += checkOid(op.oid, limits) + checkBytes(op.data, 'writeFull data', limits.objectBytesMax);
        break;
      case 'zero':
        bytes += checkOid(op.oid, limits);
        checkCount(op.offset, 'zero offset');
        checkCount(op.length, 'zero length');
        break;
      case 'truncate':
        bytes += checkOid(op.oid, limits);
        checkEnd(checkCount(op.size, 'truncate size'), 0, limits);
        break;
      case 'setXattrs':
        bytes += checkOid(op.oid, limits);
        for (const [name, value] of op.attrs) {
          items++;
          bytes += checkString(name, 'xattr name', limits.xattrNameBytesMax, false);
          bytes += checkBytes(value, `xattr ${name}`, limits.xattrValueBytesMax);
        }
        break;
      case 'rmXattrs':
        bytes += checkOid(op.oid, limits);
        for (const name of op.names) {
          items++;
          bytes += checkString(name, 'xattr name', limits.xattrNameBytesMax, false);
        }
        break;
      case 'omapSet':
        bytes += checkOid(op.oid, limits);
        for (const [key, value] of op.entries) {
          items++;
          bytes += checkString(key, 'omap key', limits.omapKeyBytesMax, true);
          bytes += checkBytes(value, `omap value of ${key}`, limits.omapValueBytesMax);
        }
        break;
      case 'omapRemove':
        bytes += checkOid(op.oid, limits);
        for (const key of op.keys) {
          items++;
          bytes += checkString(key, 'omap key', limits.omapKeyBytesMax, true);
        }
        break;
      case 'clone':
      case 'rename':
        bytes += checkOid(op.src, limits) + checkOid(op.dst, limits);
        if (op.src.pg === op.dst.pg && op.src.name === op.dst.name) {
          throw new StorageError('INVALID_ARGUMENT', `${op.op}: source and destination are the same object`);
        }
        break;
      case 'createCollection':
      case 'removeCollection':
        bytes += checkPg(op.pg, limits);
        break;
      case 'pgMetaSet':
        bytes += checkPg(op.pg, limits);
        for (const [key, value] of op.entries) {
          items++;
          bytes += checkString(key, 'PG metadata key', limits.pgMetaKeyBytesMax, false);
          bytes += checkBytes(value, `PG metadata value of ${key}`, limits.pgMetaValueBytesMax);
        }
        break;
      case 'pgMetaRemove':
        bytes += checkPg(op.pg, limits);
        for (const key of op.keys) {
          items++;
          bytes += checkString(key, 'PG metadata key', limits.pgMetaKeyBytesMax, false);
        }
        break;
      default:
        throw new StorageError('INVALID_ARGUMENT', `unknown transaction op ${JSON.stringify((op as { op: unknown }).op)}`);
    }
    if (items > limits.transactionItemsMax) {
      throw new StorageError('TOO_LARGE', `transaction has more than ${limits.transactionItemsMax} ops and entries`);
    }
  }
  if (bytes > limits.transactionBytesMax) {
    throw new StorageError('TOO_LARGE', `transaction carries ${bytes} bytes, more than ${limits.transactionBytesMax}`);
  }
}

/** Payload bytes of a transaction (for bounding commit queues); assumes it was validated. */
export function transactionBytes(tx: TransactionLike): number {
  let bytes = 0;
  for (const op of tx.ops) {
    switch (op.op) {
      case 'write':
      case 'writeFull':
        bytes += op.data.length;
        break;
      case 'setXattrs':
        for (const [name, value] of op.attrs) bytes += name.length + value.length;
        break;
      case 'omapSet':
      case 'pgMetaSet':
        for (const [key, value] of op.entries) bytes += key.length + value.length;
        break;
      default:
        bytes += 64;
    }
  }
  return bytes;
}

/** Resolves `read`'s optional range against nothing yet: checks the numbers only. */
export function checkReadRange(offset: number | undefined, length: number | undefined): { offset: number; length: number | undefined } {
  const start = offset === undefined ? 0 : checkCount(offset, 'read offset');
  return { offset: start, length: length === undefined ? undefined : checkCount(length, 'read length') };
}

export function checkListOptions(options: ListOptions, limits: StoreLimits): void {
  if (typeof options !== 'object' || options === null) throw new StorageError('INVALID_ARGUMENT', 'list options are required');
  if (!Number.isSafeInteger(options.limit) || options.limit < 1 || options.limit > limits.listLimitMax) {
    throw new StorageError('INVALID_ARGUMENT', `list limit must be in [1, ${limits.listLimitMax}], got ${String(options.limit)}`);
  }
  if (options.after !== undefined && typeof options.after !== 'string') throw new StorageError('INVALID_ARGUMENT', 'after must be a string');
  if (options.prefix !== undefined && typeof options.prefix !== 'string') throw new StorageError('INVALID_ARGUMENT', 'prefix must be a string');
}

/** Ordering of keys and names everywhere: UTF-8 byte order, which is code point order (not UTF-16 unit order). */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–DFFF) encode code points above U+FFFF, so they sort after U+E000–FFFF.
    if (x >= 0xd800 && x <= 0xdfff) x += 0x2000;
    else if (x >= 0xe000) x -= 0x800;
    if (y >= 0xd800 && y <= 0xdfff) y += 0x2000;
    else if (y >= 0xe000) y -= 0x800;
    return x - y;
  }
  return a.length - b.length;
}
