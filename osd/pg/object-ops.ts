/**
 * A client's compound operation on one object, executed by the primary (guards and reads against the stored state)
 * and turned into a store transaction. The translation from ops to a transaction is a pure function of the ops, so a
 * replica builds exactly the same transaction from the ops it receives in a RepOp.
 *
 * Semantics: guard ops (CREATE exclusive, CMPXATTR, ASSERT_VERSION, ASSERT_EXISTS) and read ops see the object as it
 * was before the request; write ops apply in order and atomically, or not at all. User xattrs live under the `u.`
 * prefix; `_v` holds the object's version so it can be compared across replicas.
 */
import { StorageError, check, decodeVersionBytes, encodeVersionBytes, wire, type Eversion } from '../../src/index.js';
import type { ObjectId, ObjectStore } from '../store/index.js';
import { Transaction } from '../store/index.js';

export const userXattrPrefix = 'u.';
export const versionXattr = '_v';
export const omapListLimitMax = 10_000;
/** Bytes of keys and values one omap list answer carries at most (it pages on): well under the messenger's header bound. */
export const omapListReplyBytesMax = 1024 * 1024;
export const xattrNameBytesMax = 256;

const Kind = wire.ObjectOp.Kind;

const writeKinds = new Set<number>([
  Kind.KIND_WRITE, Kind.KIND_WRITE_FULL, Kind.KIND_TRUNCATE, Kind.KIND_REMOVE, Kind.KIND_CREATE, Kind.KIND_SETXATTR,
  Kind.KIND_RMXATTR, Kind.KIND_OMAP_SET, Kind.KIND_OMAP_RM, Kind.KIND_OMAP_CLEAR,
]);

export function isWriteOp(kind: number | null | undefined): boolean {
  return writeKinds.has(kind ?? 0);
}

export function isKnownOp(kind: number | null | undefined): boolean {
  return Object.values(Kind).includes((kind ?? 0) as wire.ObjectOp.Kind);
}

function safe(value: number | null | undefined, what: string): number {
  const n = Number(value ?? 0);
  check(Number.isSafeInteger(n) && n >= 0, `${what} ${n} is out of range`);
  return n;
}

function dataOf(op: wire.ObjectOp.$Properties, payload: Buffer): Buffer {
  const offset = safe(op.dataOffset, 'data offset');
  const length = safe(op.dataLength, 'data length');
  check(offset + length <= payload.length, `op data [${offset}, ${offset + length}) lies outside the ${payload.length}-byte payload`);
  return payload.subarray(offset, offset + length);
}

function xattrName(op: wire.ObjectOp.$Properties): string {
  const name = op.name ?? '';
  check(name.length > 0 && Buffer.byteLength(name) <= xattrNameBytesMax, `xattr name must be 1-${xattrNameBytesMax} bytes`);
  return userXattrPrefix + name;
}

export interface WritePlan {
  /** Whether the object exists once the ops are applied. */
  existsAfter: boolean;
  /** Its size then (from the size before and the ops, without asking the store). */
  sizeAfter: number;
}

/**
 * Appends the write ops to `tx` (and the new version, when the object still exists afterwards). Pure in the ops:
 * the primary and every replica get the same transaction.
 */
export function buildWriteTransaction(
  tx: Transaction,
  oid: ObjectId,
  ops: readonly wire.ObjectOp.$Properties[],
  payload: Buffer,
  version: Eversion,
  existedBefore: boolean,
  sizeBefore = 0,
): WritePlan {
  let exists = existedBefore;
  let size = existedBefore ? sizeBefore : 0;
  for (const op of ops) {
    switch (op.kind ?? 0) {
      case Kind.KIND_WRITE: {
        const offset = safe(op.offset, 'offset');
        const data = dataOf(op, payload);
        tx.write(oid, offset, data);
        size = Math.max(size, offset + data.length);
        exists = true;
        break;
      }
      case Kind.KIND_WRITE_FULL: {
        const data = dataOf(op, payload);
        tx.writeFull(oid, data);
        size = data.length;
        exists = true;
        break;
      }
      case Kind.KIND_TRUNCATE:
        size = safe(op.offset, 'size');
        tx.truncate(oid, size);
        exists = true;
        break;
      case Kind.KIND_REMOVE:
        tx.remove(oid);
        exists = false;
        size = 0;
        break;
      case Kind.KIND_CREATE:
        tx.touch(oid);
        exists = true;
        break;
      case Kind.KIND_SETXATTR:
        tx.setXattr(oid, xattrName(op), op.value ?? new Uint8Array());
        exists = true;
        break;
      case Kind.KIND_RMXATTR:
        if (exists) tx.rmXattr(oid, xattrName(op));
        break;
      case Kind.KIND_OMAP_SET:
        tx.omapSet(oid, (op.entries ?? []).map((e) => [e.key ?? '', e.value ?? new Uint8Array()] as const));
        exists = true;
        break;
      case Kind.KIND_OMAP_RM:
        if (exists) tx.omapRemove(oid, op.keys ?? []);
        break;
      case Kind.KIND_OMAP_CLEAR:
        if (exists) tx.omapClear(oid);
        break;
      default:
        break;
    }
  }
  if (exists) tx.setXattr(oid, versionXattr, encodeVersionBytes(version));
  return { existsAfter: exists, sizeAfter: exists ? size : 0 };
}

export interface ReadOutcome {
  results: wire.ObjectOpResult.$Properties[];
  /** Reply payload pieces; results point into their concatenation. */
  chunks: Buffer[];
  exists: boolean;
  version: Eversion;
  /** Size before the request (0 when absent). */
  size: number;
}

/**
 * Checks the guards and performs the reads of a request against the stored object (the state before any write of
 * the request). Throws PRECONDITION_FAILED, ALREADY_EXISTS or NOT_FOUND when a guard or read fails.
 */
export async function evaluateOps(store: ObjectStore, oid: ObjectId, ops: readonly wire.ObjectOp.$Properties[]): Promise<ReadOutcome> {
  // exists() first: a missing object (every create) then costs no exception and stack trace. The caller holds the
  // object's lock, so nothing changes it between the two calls.
  const stat = (await store.exists(oid)) ? await store.stat(oid) : undefined;
  const exists = stat !== undefined;
  const size = stat?.size ?? 0;
  const version = exists ? decodeVersionBytes(await store.getXattr(oid, versionXattr)) : { epoch: 0, seq: 0 };
  const results: wire.ObjectOpResult.$Properties[] = [];
  const chunks: Buffer[] = [];
  let replyBytes = 0;
  const missing = () => new StorageError('NOT_FOUND', `object ${oid.name} does not exist`);
  for (const op of ops) {
    const kind = op.kind ?? 0;
    if (!isKnownOp(kind)) throw new StorageError('INVALID_ARGUMENT', `unknown object op ${kind}`);
    const result: wire.ObjectOpResult.$Properties = {};
    switch (kind) {
      case Kind.KIND_READ: {
        if (!exists) throw missing();
        const length = safe(op.length, 'length');
        const data = await store.read(oid, safe(op.offset, 'offset'), length === 0 ? undefined : length);
        result.dataOffset = replyBytes;
        result.dataLength = data.length;
        chunks.push(data);
        replyBytes += data.length;
        break;
      }
      case Kind.KIND_STAT: {
        if (!stat) throw missing();
        result.size = stat.size;
        result.mtimeMs = stat.mtimeMs;
        result.exists = true;
        break;
      }
      case Kind.KIND_GETXATTR: {
        if (!exists) throw missing();
        const value = await store.getXattr(oid, xattrName(op));
        if (value === undefined) throw new StorageError('NOT_FOUND', `object ${oid.name} has no xattr ${op.name}`);
        result.value = value;
        break;
      }
      case Kind.KIND_GETXATTRS: {
        if (!exists) throw missing();
        const all = await store.getXattrs(oid);
        result.entries = [...all].filter(([k]) => k.startsWith(userXattrPrefix)).map(([k, v]) => ({ key: k.slice(userXattrPrefix.length), value: v }));
        break;
      }
      case Kind.KIND_CMPXATTR: {
        const expected = Buffer.from(op.value ?? new Uint8Array());
        const actual = exists ? await store.getXattr(oid, xattrName(op)) : undefined;
        const matches = actual === undefined ? op.allowAbsent === true && expected.length === 0 : actual.equals(expected);
        if (!matches) throw new StorageError('PRECONDITION_FAILED', `xattr ${op.name} of ${oid.name} does not match`);
        break;
      }
      case Kind.KIND_ASSERT_VERSION: {
        const want = { epoch: Number(op.version?.epoch ?? 0), seq: Number(op.version?.seq ?? 0) };
        if (want.epoch !== version.epoch || want.seq !== version.seq) {
          throw new StorageError('PRECONDITION_FAILED', `object ${oid.name} is at version ${version.epoch}'${version.seq}, not ${want.epoch}'${want.seq}`);
        }
        break;
      }
      case Kind.KIND_ASSERT_EXISTS:
        if (!exists) throw missing();
        break;
      case Kind.KIND_CREATE:
        if (op.exclusive && exists) throw new StorageError('ALREADY_EXISTS', `object ${oid.name} exists`);
        break;
      case Kind.KIND_OMAP_GET: {
        if (!exists) throw missing();
        const found = await store.omapGet(oid, op.keys ?? []);
        result.entries = [...found].map(([key, value]) => ({ key, value }));
        break;
      }
      case Kind.KIND_OMAP_LIST: {
        if (!exists) throw missing();
        const limit = Math.min(op.limit || 1000, omapListLimitMax);
        const page = await store.omapList(oid, { limit, ...(op.after ? { after: op.after } : {}), ...(op.prefix ? { prefix: op.prefix } : {}) });
        let bytes = 0;
        const kept = page.entries.filter((e) => (bytes += Buffer.byteLength(e.key) + e.value.length + 8) <= omapListReplyBytesMax);
        // At least one entry, so a caller always makes progress.
        const entries = kept.length === 0 ? page.entries.slice(0, 1) : kept;
        result.entries = entries.map((e) => ({ key: e.key, value: e.value }));
        result.more = page.more || entries.length < page.entries.length;
        break;
      }
      case Kind.KIND_REMOVE:
        if (!exists) throw missing();
        break;
      default:
        break;
    }
    results.push(result);
  }
  return { results, chunks, exists, version, size };
}
