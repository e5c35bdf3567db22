/**
 * The erasure-coded side of a placement group (a pool of type `erasure`, profile k+m). Acting position i holds
 * shard i of every object of the PG under the object's own name: data shards 0..k-1, parity shards k..k+m-1 (the
 * indep rule keeps positions: a lost member leaves a hole, nobody shifts). Each shard carries the object's
 * version (`_v`), its logical size (`_s`) and the user xattrs; EC pools keep no omap (as Ceph's).
 *
 * The primary (pg.ts keeps ordering, the log and peering) asks this module to:
 * - evaluate a client request: guards and metadata from its own shard, data reads from any k shards of the
 *   object's current version (decoding when a data shard is missing, stale or unreadable);
 * - plan a write: the new contents of the touched stripes (read-modify-write for partial overwrites, none for
 *   full writes), encoded, and per position the shard ops and payload (`planWrite`);
 * - rebuild one member's shard from k shards of one version (`recoverShard`, used by peering's recovery);
 * - deep scrub: every shard of every object read, versions compared, parity recomputed from the data shards.
 *
 * Shards are only ever combined when they carry the same version, so a decode never mixes an old and a new stripe.
 */
import {
  StorageError,
  bufferPool,
  compareVersions,
  decodeEcRollback,
  decodeVersionBytes,
  encodeEcRollback,
  encodeVersionBytes,
  osdCodecs,
  versionFromWire,
  versionToString,
  wire,
  type Eversion,
  type Logger,
  type Pool,
} from '../../src/index.js';
import { Codec, joinStripes, shardSize, stripeCount, stripesTouched, type StripeLayout } from '../../src/erasure/index.js';
import { Transaction, type ObjectId, type ObjectStore } from '../store/index.js';
import type { PeerLink } from '../peers.js';
import { evaluateOps, versionXattr, type ReadOutcome } from './object-ops.js';

/** The logical size of an erasure-coded object, on each of its shards (8 bytes, big-endian). */
export const ecSizeXattr = '_s';
/**
 * Which shard of the object this is (4 bytes, big-endian). CRUSH may move a surviving member to another position
 * when others go out, so a shard is known by this, never by where it sits; decoding uses it to place each shard.
 */
export const ecShardXattr = '_i';

export function encodeEcShard(index: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(index);
  return out;
}

export function decodeEcShard(bytes: Uint8Array | undefined): number {
  if (!bytes || bytes.length !== 4) return -1;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32BE(0);
}

const Kind = wire.ObjectOp.Kind;
const omapKinds = new Set<number>([Kind.KIND_OMAP_SET, Kind.KIND_OMAP_RM, Kind.KIND_OMAP_CLEAR, Kind.KIND_OMAP_GET, Kind.KIND_OMAP_LIST]);
const dataKinds = new Set<number>([Kind.KIND_WRITE, Kind.KIND_WRITE_FULL, Kind.KIND_TRUNCATE]);

/** Largest byte range one EC write may rewrite (a bound on the primary's memory per request). */
export const ecWriteWindowBytesMax = 256 * 1024 * 1024;

export function encodeEcSize(size: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(size));
  return out;
}

export function decodeEcSize(bytes: Uint8Array | undefined): number {
  if (!bytes || bytes.length !== 8) return 0;
  return Number(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readBigUInt64BE(0));
}

/** What the EC backend may see of its placement group. */
export interface EcPgView {
  readonly name: string;
  readonly poolId: number;
  readonly seed: number;
  readonly osdId: number;
  readonly store: ObjectStore;
  readonly peers: PeerLink;
  readonly logger: Logger;
  pool(): Pool;
  /** Acting set by shard position, -1 for a hole. */
  acting(): readonly number[];
  intervalEpoch(): number;
}

/** One member's part of a write: ops in the object-op language, over its shard, and their payload. */
export interface ShardWrite {
  ops: wire.ObjectOp.$Properties[];
  /** The new bytes the ops point at, then (when `rollback` has any) the old bytes they replace. */
  payload: Buffer;
  /** How to undo it; absent when it cannot be undone (a whole object replaced or removed). */
  rollback?: wire.EcRollback.$Properties;
}

/** pgMeta key of an object's undo record (one per object: its latest change). */
export function rollbackKey(name: string): string {
  return `ec-rb/${name}`;
}

export interface EcWritePlan {
  /** The shard write for acting position `position`. */
  shard(position: number): ShardWrite;
  existsAfter: boolean;
  /** Logical size afterwards. */
  sizeAfter: number;
  /**
   * Gives the coded shards' buffers back to `bufferPool`; call it once, when the write has settled everywhere (the
   * messenger holds what it is still sending).
   */
  release(): void;
}

/** A member's shard header (and optionally bytes) as read for decoding or scrubbing. */
interface ShardRead {
  position: number;
  /** The shard index it holds (-1: unknown). */
  index: number;
  exists: boolean;
  version: Eversion;
  logicalSize: number;
  data: Buffer;
  error: string;
  xattrs: [string, Buffer][];
  mtimeMs: number;
}

export class EcBackend {
  readonly #view: EcPgView;
  readonly layout: StripeLayout;
  readonly codec: Codec;
  readonly k: number;
  readonly m: number;

  constructor(view: EcPgView) {
    const pool = view.pool();
    this.#view = view;
    this.k = pool.ecK;
    this.m = pool.ecM;
    this.codec = new Codec(pool.ecK, pool.ecM);
    this.layout = { k: pool.ecK, stripeUnit: pool.stripeUnit || 4096 };
  }

  #oid(name: string): ObjectId {
    return { pg: this.#view.name, name };
  }

  #position(osd: number): number {
    return this.#view.acting().indexOf(osd);
  }

  // ---- member side ----

  /** Serves an `ec-read`: this OSD's shard of one object (header, and the byte range asked for). */
  async serveRead(req: wire.EcReadRequest.$Properties): Promise<{ header: wire.EcReadReply.$Properties; payload: Buffer }> {
    const oid = this.#oid(req.object ?? '');
    const store = this.#view.store;
    if (!(await store.exists(oid))) return { header: { exists: false }, payload: Buffer.alloc(0) };
    const [stat, xattrs] = await Promise.all([store.stat(oid), store.getXattrs(oid)]);
    const header: wire.EcReadReply.$Properties = {
      exists: true,
      version: decodeVersionBytes(xattrs.get(versionXattr)),
      ecSize: decodeEcSize(xattrs.get(ecSizeXattr)),
      shardSize: stat.size,
      mtimeMs: stat.mtimeMs,
      shard: decodeEcShard(xattrs.get(ecShardXattr)) + 1,
      ...(req.withXattrs ? { xattrs: [...xattrs].map(([key, value]) => ({ key, value })) } : {}),
    };
    let payload: Buffer = Buffer.alloc(0);
    const length = Number(req.length ?? 0);
    if (req.whole || length > 0) {
      try {
        payload = req.whole ? await store.read(oid) : await store.read(oid, Number(req.offset ?? 0), length);
      } catch (error) {
        header.error = StorageError.from(error).code;
      }
    }
    return { header, payload };
  }

  // ---- primary side: reading shards ----

  async #readShard(position: number, name: string, range: { offset: number; length: number } | 'whole' | 'none', withXattrs = false): Promise<ShardRead> {
    const osd = this.#view.acting()[position] ?? -1;
    const failed = (error: string): ShardRead => ({ position, index: -1, exists: false, version: { epoch: 0, seq: 0 }, logicalSize: 0, data: Buffer.alloc(0), error, xattrs: [], mtimeMs: 0 });
    if (osd < 0) return failed('HOLE');
    const req: wire.EcReadRequest.$Properties = {
      from: this.#view.osdId,
      pool: this.#view.poolId,
      pgSeed: this.#view.seed,
      epoch: this.#view.intervalEpoch(),
      object: name,
      whole: range === 'whole',
      withXattrs,
      ...(typeof range === 'object' ? { offset: range.offset, length: range.length } : {}),
    };
    try {
      const { header, payload } =
        osd === this.#view.osdId
          ? await this.serveRead(req)
          : await this.#view.peers.call(osd, 'ec-read', osdCodecs.ecReadRequest.encode(req)).then((r) => ({ header: osdCodecs.ecReadReply.decode(r.header), payload: r.payload }));
      return {
        position,
        index: Number(header.shard ?? 0) - 1,
        exists: header.exists ?? false,
        version: versionFromWire(header.version),
        logicalSize: Number(header.ecSize ?? 0),
        data: payload,
        error: header.error ?? '',
        xattrs: (header.xattrs ?? []).map((e) => [e.key ?? '', Buffer.from(e.value ?? new Uint8Array())]),
        mtimeMs: Number(header.mtimeMs ?? 0),
      };
    } catch (error) {
      return failed(StorageError.from(error).code);
    }
  }

  /**
   * The k+m shard slots of `name` over shard bytes `range`, holding only shards of exactly `version` (others are
   * left undefined). Reads the data shards first and parity only for what is missing, so a healthy read decodes
   * nothing. Throws INSUFFICIENT_SHARDS when fewer than k shards of that version can be read.
   */
  async #gather(name: string, version: Eversion, range: { offset: number; length: number } | 'whole'): Promise<(Buffer | undefined)[]> {
    const n = this.k + this.m;
    const slots: (Buffer | undefined)[] = new Array<Buffer | undefined>(n).fill(undefined);
    const problems: string[] = [];
    const wanted = (r: ShardRead) =>
      r.exists && !r.error && r.index >= 0 && r.index < n && slots[r.index] === undefined && compareVersions(r.version, version) === 0 &&
      (range === 'whole' || r.data.length === range.length);
    // Data positions first: on a healthy PG they hold the data shards, and nothing needs decoding.
    const order = Array.from({ length: n }, (_, i) => i);
    let next = 0;
    let have = 0;
    while (have < this.k && next < order.length) {
      const batch = order.slice(next, next + (this.k - have));
      next += batch.length;
      const reads = await Promise.all(batch.map((p) => this.#readShard(p, name, range)));
      for (const r of reads) {
        if (wanted(r)) {
          slots[r.index] = r.data;
          have++;
        } else {
          problems.push(`shard ${r.position}: ${r.error || (r.exists ? `version ${versionToString(r.version)}` : 'missing')}`);
        }
      }
    }
    if (have < this.k) {
      throw new StorageError('INSUFFICIENT_SHARDS', `${this.#view.name}/${name}: only ${have} of ${n} shards at version ${versionToString(version)} readable, ${this.k} needed (${problems.join(', ')})`);
    }
    return slots;
  }

  /** Object bytes of whole stripes [first, first + count) of `name` at `version`. */
  async readStripes(name: string, version: Eversion, first: number, count: number): Promise<Buffer> {
    if (count <= 0) return Buffer.alloc(0);
    const su = this.layout.stripeUnit;
    const slots = await this.#gather(name, version, { offset: first * su, length: count * su });
    const shards = slots.slice(0, this.k).every((s) => s !== undefined) ? (slots as Buffer[]) : this.codec.reconstruct(slots);
    const bytes = joinStripes(this.layout, shards, count);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Object bytes [offset, offset + length) of an object of `size` at `version` (clipped to the size). */
  async readRange(name: string, version: Eversion, size: number, offset: number, length: number): Promise<Buffer> {
    const end = Math.min(size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const range = stripesTouched(this.layout, offset, end - offset);
    const bytes = await this.readStripes(name, version, range.first, range.count);
    const start = offset - range.first * this.k * this.layout.stripeUnit;
    return bytes.subarray(start, start + (end - offset));
  }

  // ---- primary side: client requests ----

  /**
   * Guards, metadata and reads of a request. Guards and xattrs come from this OSD's shard (metadata is the same on
   * every shard of a version); READ data is assembled from k shards; sizes are logical.
   */
  async evaluate(oid: ObjectId, ops: readonly wire.ObjectOp.$Properties[]): Promise<ReadOutcome> {
    for (const op of ops) {
      if (omapKinds.has(op.kind ?? 0)) throw new StorageError('INVALID_ARGUMENT', `erasure-coded pool ${this.#view.pool().name} does not support omap (as in Ceph); use a replicated pool`);
    }
    // Reads become existence checks (same NOT_FOUND rule); their data is filled in below.
    const local = ops.map((op) => (op.kind === Kind.KIND_READ ? { kind: Kind.KIND_ASSERT_EXISTS } : op));
    const outcome = await evaluateOps(this.#view.store, oid, local);
    const size = outcome.exists ? decodeEcSize(await this.#view.store.getXattr(oid, ecSizeXattr)) : 0;
    const chunks: Buffer[] = [];
    let replyBytes = 0;
    const results = await Promise.all(
      ops.map(async (op, i) => {
        const result = outcome.results[i] ?? {};
        if (op.kind === Kind.KIND_STAT) result.size = size;
        if (op.kind !== Kind.KIND_READ) return { result, data: undefined };
        const offset = Number(op.offset ?? 0);
        const length = Number(op.length ?? 0) === 0 ? Math.max(0, size - offset) : Number(op.length);
        return { result, data: await this.readRange(oid.name, outcome.version, size, offset, length) };
      }),
    );
    for (const { result, data } of results) {
      if (data !== undefined) {
        result.dataOffset = replyBytes;
        result.dataLength = data.length;
        chunks.push(data);
        replyBytes += data.length;
      }
    }
    return { results: results.map((r) => r.result), chunks, exists: outcome.exists, version: outcome.version, size };
  }

  /**
   * Turns a request's write ops into per-shard writes. Data ops are applied, in order, to an in-memory window of
   * whole stripes (read first from k shards unless the request replaces the whole object), which is then encoded;
   * each member gets the other ops unchanged plus one WRITE (or WRITE_FULL) of its chunk of the window and a
   * TRUNCATE to the new shard size. Bytes past the logical size in the last stripe are always zero, so growing
   * needs no parity change.
   */
  async planWrite(oid: ObjectId, ops: readonly wire.ObjectOp.$Properties[], payload: Buffer, before: ReadOutcome): Promise<EcWritePlan> {
    const width = this.k * this.layout.stripeUnit;
    let size = before.exists ? before.size : 0;
    let exists = before.exists;
    let reset = !before.exists; // the old content no longer matters (absent, removed or fully replaced)
    let lo = Number.POSITIVE_INFINITY;
    let hi = 0;
    let dataOps: wire.ObjectOp.$Properties[] = [];
    for (const op of ops) {
      const kind = op.kind ?? 0;
      if (kind === Kind.KIND_WRITE) {
        const offset = Number(op.offset ?? 0);
        const end = offset + Number(op.dataLength ?? 0);
        lo = Math.min(lo, offset);
        hi = Math.max(hi, end);
        size = Math.max(size, end);
        exists = true;
        dataOps.push(op);
      } else if (kind === Kind.KIND_WRITE_FULL) {
        reset = true;
        size = Number(op.dataLength ?? 0);
        lo = 0;
        hi = size;
        exists = true;
        dataOps = [op];
      } else if (kind === Kind.KIND_TRUNCATE) {
        const to = Number(op.offset ?? 0);
        // Shrinking rewrites from the new end to the old one, so no stale byte survives past the new size.
        if (to < size) {
          lo = Math.min(lo, to);
          hi = Math.max(hi, size);
        }
        size = to;
        exists = true;
        dataOps.push(op);
      } else if (kind === Kind.KIND_REMOVE) {
        reset = true;
        size = 0;
        lo = Number.POSITIVE_INFINITY;
        hi = 0;
        exists = false;
        dataOps = [];
      } else if (kind === Kind.KIND_CREATE || kind === Kind.KIND_SETXATTR) {
        exists = true;
      }
    }
    const passThrough = ops.filter((op) => !dataKinds.has(op.kind ?? 0));
    const empty = Buffer.alloc(0);
    if (!exists) return { existsAfter: false, sizeAfter: 0, shard: () => ({ ops: passThrough, payload: empty }), release: () => {} };
    // Undo information: a new object is undone by removing it; an in-place change by its old bytes (below); a
    // whole existing object replaced cannot be undone (it would need the old object read in full).
    const prevShardSize = shardSize(this.layout, before.size);
    const undoBase: wire.EcRollback.$Properties | undefined = !before.exists
      ? { prevExists: false }
      : reset
        ? undefined
        : { prevExists: true, prevSize: before.size, prevShardSize };

    const su = this.layout.stripeUnit;
    const newShardSize = shardSize(this.layout, size);
    const truncate: wire.ObjectOp.$Properties = { kind: Kind.KIND_TRUNCATE, offset: newShardSize };
    // The window of whole stripes to rewrite: everything when reset, else the stripes the data ops touch.
    const first = reset ? 0 : lo < hi ? Math.floor(lo / width) : 0;
    const count = reset ? stripeCount(this.layout, size) : lo < hi ? Math.min(stripeCount(this.layout, size), Math.ceil(hi / width)) - first : 0;
    if (count <= 0) {
      return {
        existsAfter: true,
        sizeAfter: size,
        shard: () => ({
          ops: reset ? [...passThrough, { kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: 0 }] : [...passThrough, truncate],
          payload: empty,
          ...(undoBase ? { rollback: undoBase } : {}),
        }),
        release: () => {},
      };
    }
    if (count * width > ecWriteWindowBytesMax) {
      throw new StorageError('TOO_LARGE', `an erasure-coded write may rewrite at most ${ecWriteWindowBytesMax} bytes at once (this one ${count * width})`);
    }
    const oldKeep = Math.max(0, Math.min(count * su, prevShardSize - first * su));
    let all: Buffer[];
    let oldShards: Buffer[] | undefined;
    const single = dataOps.length === 1 ? dataOps[0] : undefined;
    if (reset && single?.kind === Kind.KIND_WRITE_FULL) {
      // The whole object replaced by one write (the common case): its bytes are coded straight from the payload.
      const from = Number(single.dataOffset ?? 0);
      all = this.codec.encodeStripes(payload.subarray(from, from + size), su, count);
    } else {
      const windowStart = first * width;
      const window = Buffer.alloc(count * width);
      if (!reset) {
        // Read-modify-write: the old bytes of the window's stripes that the old object has.
        const oldCount = Math.min(count, stripeCount(this.layout, before.size) - first);
        if (oldCount > 0) (await this.readStripes(oid.name, before.version, first, oldCount)).copy(window, 0);
      }
      // The window's old stripes, encoded, are each member's undo bytes (clipped to its old shard size).
      if (undoBase?.prevExists) oldShards = this.codec.encodeStripes(window, su, count);
      let current = reset ? 0 : before.size;
      for (const op of dataOps) {
        const kind = op.kind ?? 0;
        if (kind === Kind.KIND_WRITE_FULL) {
          window.fill(0);
          payload.copy(window, 0, Number(op.dataOffset ?? 0), Number(op.dataOffset ?? 0) + Number(op.dataLength ?? 0));
          current = Number(op.dataLength ?? 0);
        } else if (kind === Kind.KIND_WRITE) {
          const at = Number(op.offset ?? 0) - windowStart;
          const from = Number(op.dataOffset ?? 0);
          payload.copy(window, at, from, from + Number(op.dataLength ?? 0));
          current = Math.max(current, Number(op.offset ?? 0) + Number(op.dataLength ?? 0));
        } else if (kind === Kind.KIND_TRUNCATE) {
          const to = Number(op.offset ?? 0);
          if (to < current) window.fill(0, Math.max(0, to - windowStart));
          current = to;
        }
      }
      window.fill(0, Math.max(0, Math.min(window.length, size - windowStart)));
      all = this.codec.encodeStripes(window, su, count);
    }
    return {
      existsAfter: true,
      sizeAfter: size,
      shard: (position) => {
        const bytes = all[position] as Buffer;
        const write: wire.ObjectOp.$Properties = reset
          ? { kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: bytes.length }
          : { kind: Kind.KIND_WRITE, offset: first * su, dataOffset: 0, dataLength: bytes.length };
        const old = oldShards?.[position]?.subarray(0, oldKeep);
        if (!undoBase) return { ops: [...passThrough, write, truncate], payload: bytes };
        if (!old || old.length === 0) return { ops: [...passThrough, write, truncate], payload: bytes, rollback: undoBase };
        return {
          ops: [...passThrough, write, truncate],
          payload: Buffer.concat([bytes, old]),
          rollback: { ...undoBase, offset: first * su, dataOffset: bytes.length, dataLength: old.length },
        };
      },
      release: () => {
        for (const shards of [all, oldShards]) if (shards?.[0]) bufferPool.release(shards[0]);
      },
    };
  }

  // ---- recovery ----

  /**
   * Every position's shard header of `name`. Throws UNAVAILABLE when a member could not be asked: deciding which
   * version survives, or undoing one, from a partial view could throw away a change that k members hold.
   */
  async #allHeads(name: string, withXattrs = false): Promise<ShardRead[]> {
    const heads = await Promise.all(Array.from({ length: this.k + this.m }, (_, p) => this.#readShard(p, name, 'none', withXattrs)));
    const silent = heads.filter((h) => h.error !== '' && h.error !== 'HOLE');
    if (silent.length > 0) {
      throw new StorageError('UNAVAILABLE', `${this.#view.name}/${name}: ${silent.map((h) => `shard ${h.position} (osd.${this.#view.acting()[h.position]}): ${h.error}`).join(', ')}`);
    }
    return heads;
  }

  /**
   * Rebuilds `target`'s shard of `name` from the other members: the newest version at least k of them hold is
   * decoded and installed on the target (or, if no member has the object, it is removed there). A version fewer
   * than k members hold cannot be rebuilt and is never mixed with another: INSUFFICIENT_SHARDS.
   */
  async recoverShard(name: string, target: number, install: (state: wire.ObjectState.$Properties, payload: Buffer) => Promise<void>): Promise<void> {
    const position = this.#position(target);
    if (position < 0) return;
    const n = this.k + this.m;
    // The target's own shard counts too: a member CRUSH moved to another position still holds a good shard of its
    // old index, which may be needed to rebuild the new one.
    const heads = await this.#allHeads(name, true);
    const present = heads.filter((h) => h.exists && !h.error && h.index >= 0);
    if (present.length === 0) {
      await install({ object: name, exists: false }, Buffer.alloc(0));
      return;
    }
    const counts = new Map<string, { version: Eversion; count: number; head: ShardRead; indexes: Set<number> }>();
    for (const h of present) {
      const key = versionToString(h.version);
      const entry = counts.get(key) ?? { version: h.version, count: 0, head: h, indexes: new Set<number>() };
      if (!entry.indexes.has(h.index)) entry.count++;
      entry.indexes.add(h.index);
      counts.set(key, entry);
    }
    const candidates = [...counts.values()].filter((c) => c.count >= this.k).sort((a, b) => compareVersions(b.version, a.version));
    const best = candidates[0];
    if (!best) {
      // Every member answered and no version is on k of them: the object is lost (unfound, in Ceph's words). Say
      // so and go on, so the PG's other objects are served.
      this.#view.logger.error('object unfound: no version of it is on k members', { pg: this.#view.name, object: name, k: this.k, versions: [...counts.values()].map((c) => `${versionToString(c.version)}x${c.count}`).join(',') });
      return;
    }
    const slots = await this.#gather(name, best.version, 'whole');
    const shard = this.codec.reconstruct(slots)[position] as Uint8Array;
    const xattrs = best.head.xattrs.map(([key, value]) => ({ key, value: key === ecShardXattr ? encodeEcShard(position) : value }));
    await install(
      { object: name, exists: true, version: best.version, size: shard.length, mtimeMs: best.head.mtimeMs, xattrs },
      Buffer.from(shard.buffer, shard.byteOffset, shard.byteLength),
    );
  }

  // ---- deep scrub ----

  /**
   * Checks one object across all members: every shard present, readable and of one version, with the same logical
   * size, and the parity equal to what the data shards encode to. Returns the positions found bad and why.
   */
  async scrubObject(name: string): Promise<{ bad: number[]; reasons: string[] }> {
    const n = this.k + this.m;
    const reads = await Promise.all(Array.from({ length: n }, (_, p) => this.#readShard(p, name, 'whole')));
    const votes = new Map<string, number>();
    for (const r of reads) if (r.exists && !r.error) votes.set(`${versionToString(r.version)} ${r.logicalSize}`, (votes.get(`${versionToString(r.version)} ${r.logicalSize}`) ?? 0) + 1);
    const best = [...votes].sort((a, b) => b[1] - a[1])[0]?.[0];
    const bad: number[] = [];
    const reasons: string[] = [];
    const flag = (p: number, why: string) => {
      bad.push(p);
      reasons.push(`shard ${p} (osd.${this.#view.acting()[p]}): ${why}`);
    };
    for (const r of reads) {
      if (r.error === 'HOLE') continue;
      if (!r.exists) flag(r.position, r.error || 'missing');
      else if (r.error) flag(r.position, r.error);
      else if (r.index !== r.position) flag(r.position, `holds shard ${r.index}, not ${r.position}`);
      else if (`${versionToString(r.version)} ${r.logicalSize}` !== best) flag(r.position, `version ${versionToString(r.version)} size ${r.logicalSize}`);
    }
    const good = reads.filter((r) => r.exists && !r.error && `${versionToString(r.version)} ${r.logicalSize}` === best);
    const expected = shardSize(this.layout, good[0]?.logicalSize ?? 0);
    for (const r of good) if (r.data.length !== expected) flag(r.position, `shard is ${r.data.length} bytes, expected ${expected}`);
    const data = good.filter((r) => r.position < this.k && r.data.length === expected);
    if (data.length === this.k && bad.length === 0) {
      const parity = this.codec.encode(data.sort((a, b) => a.position - b.position).map((r) => r.data));
      for (const r of good) {
        if (r.position >= this.k && !Buffer.from(parity[r.position - this.k] as Uint8Array).equals(r.data)) flag(r.position, 'parity does not match the data shards');
      }
    }
    return { bad, reasons };
  }

  /**
   * A transaction step shared by the primary and the members, beside a shard write: logical size and shard index,
   * and the undo record of the change (or none: the previous record no longer applies).
   */
  static shardMeta(
    tx: Transaction,
    oid: ObjectId,
    change: { existsAfter: boolean; sizeAfter: number; index: number; version: Eversion; priorVersion: Eversion },
    rollback: wire.EcRollback.$Properties | null | undefined,
    payload: Buffer,
  ): void {
    if (change.existsAfter) tx.setXattrs(oid, [[ecSizeXattr, encodeEcSize(change.sizeAfter)], [ecShardXattr, encodeEcShard(change.index)]]);
    if (!rollback) {
      tx.pgMetaRemove(oid.pg, [rollbackKey(oid.name)]);
      return;
    }
    const from = Number(rollback.dataOffset ?? 0);
    const old = payload.subarray(from, from + Number(rollback.dataLength ?? 0));
    tx.pgMetaSet(oid.pg, [[rollbackKey(oid.name), encodeEcRollback({ ...rollback, version: change.version, priorVersion: change.priorVersion }, old)]]);
  }

  /**
   * Undoes this member's shard of change `version` of `name` (its undo record must be for exactly that change). A
   * change at or below `committed` reached every member and may have been acknowledged: it is never undone.
   */
  async applyRollback(name: string, version: Eversion, committed: Eversion): Promise<void> {
    if (compareVersions(version, committed) <= 0) {
      throw new StorageError('PRECONDITION_FAILED', `${this.#view.name}/${name}: change ${versionToString(version)} is committed (up to ${versionToString(committed)}); it is not undone`);
    }
    const store = this.#view.store;
    const oid = this.#oid(name);
    const bytes = await store.pgMetaGet(this.#view.name, rollbackKey(name));
    if (!bytes) throw new StorageError('NOT_FOUND', `${this.#view.name}/${name}: no undo record`);
    const { record, oldBytes } = decodeEcRollback(bytes);
    const current = (await store.exists(oid)) ? decodeVersionBytes(await store.getXattr(oid, versionXattr)) : { epoch: 0, seq: 0 };
    const recorded = versionFromWire(record.version);
    if (compareVersions(recorded, version) !== 0 || compareVersions(current, version) !== 0) {
      throw new StorageError('PRECONDITION_FAILED', `${this.#view.name}/${name}: undo record is for ${versionToString(recorded)}, shard at ${versionToString(current)}, asked ${versionToString(version)}`);
    }
    const tx = new Transaction();
    if (!record.prevExists) {
      tx.remove(oid);
    } else {
      if (oldBytes.length > 0) tx.write(oid, Number(record.offset ?? 0), oldBytes);
      tx.truncate(oid, Number(record.prevShardSize ?? 0));
      tx.setXattrs(oid, [[versionXattr, encodeVersionBytes(versionFromWire(record.priorVersion))], [ecSizeXattr, encodeEcSize(Number(record.prevSize ?? 0))]]);
    }
    tx.pgMetaRemove(this.#view.name, [rollbackKey(name)]);
    await store.apply(tx);
    this.#view.logger.info('rolled back a shard change fewer than k members hold', { pg: this.#view.name, object: name, version: versionToString(version) });
  }

  /**
   * After a failure, makes one object decodable again: the newest version that k members hold is kept; members
   * holding a newer change (which fewer than k got, so it cannot be decoded) undo it. Members that are behind are
   * then rebuilt by recovery. A committed change (one every member had) is never undone. Returns false when the
   * newest version cannot be decoded and may not be undone.
   */
  async reconcile(name: string, committed: Eversion, rollback: (osd: number, version: Eversion) => Promise<void>): Promise<boolean> {
    const n = this.k + this.m;
    // Each round undoes the newest change if it is not decodable; a member holds one undo record per object, so a
    // few rounds at most (each change in flight at the failure is one round).
    for (let round = 0; round <= this.m + 1; round++) {
      const heads = await this.#allHeads(name);
      const present = heads.filter((h) => h.exists && !h.error && h.index >= 0);
      if (present.length === 0) return true;
      const indexes = new Map<string, Set<number>>();
      for (const h of present) indexes.set(versionToString(h.version), (indexes.get(versionToString(h.version)) ?? new Set<number>()).add(h.index));
      const newest = present.map((h) => h.version).sort((a, b) => compareVersions(b, a))[0] as Eversion;
      if ((indexes.get(versionToString(newest))?.size ?? 0) >= this.k) return true;
      // Committed: on every member once, so its other shards sit on members that are down now; wait for them.
      if (compareVersions(newest, committed) <= 0) return false;
      const holders = present.filter((h) => compareVersions(h.version, newest) === 0);
      for (const h of holders) await rollback(this.#view.acting()[h.position] ?? -1, h.version);
    }
    return false;
  }
}
