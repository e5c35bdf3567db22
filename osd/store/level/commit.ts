/**
 * Phase two of a LevelStore commit group: turns the working state into (1) file writes that are made durable now,
 * before the commit, and that no committed state can see yet, and (2) one LevelDB batch that commits the group.
 *
 * Where new bytes go, per object, decides crash safety:
 * - small objects (size ≤ inlineBytesMax): the whole data rides in the batch (`I<id>`);
 * - a new data file (new objects, full overwrites, clones, or when copying the rest of the object costs less than
 *   logging the change): written and fsync'd first; the batch then points the onode at it;
 * - in place in the object's own file: bytes past the committed size are written and fsync'd first (the committed
 *   version never reads them); bytes inside it are logged in the batch as a deferred write (`W<seq>`) and copied
 *   into the file only after the batch is durable, and again on every start until retired.
 * So a crash at any instant leaves each object at its old or its new version.
 */
import { StorageError } from '../../../src/common/index.js';
import { crc32c, loadChecksums, verifyBlocks, zeroCrc, type ChecksumCache } from './checksums.js';
import {
  checksumsPerChunk,
  decodeBlob,
  decodeChecksums,
  encodeBlob,
  encodeChecksums,
  encodeCollection,
  encodeCounters,
  encodeDeferredWrite,
  encodeGcRecord,
  encodeOnode,
  keys,
  type CollectionRecord,
  type DeferredWrite,
  type FileExtent,
  type GcRecord,
  type Onode,
  type OnodeData,
} from './codec.js';
import { directAlign, readFully, writeAll, type DataFiles, type FileLease, type NewFile } from './files.js';
import type { KvOp, KvStore } from './kv.js';
import type { Base, Extent, WorkingObject, WorkingSet } from './working.js';
import { checksumChunks, checksumPiece, isStagedData, pieceBytes, type StagedFile } from './staging.js';
import { compareUtf8 } from '../limits.js';

/** An append whose unwritten gap is at most this writes the gap as zeros in one direct write; a larger gap stays sparse. */
const appendHoleMax = 1024 * 1024;
/** Objects of a group whose data is prepared at once (bounds memory and open files). */
const finalizeConcurrency = 8;

export interface CommitEnv {
  readonly kv: KvStore;
  readonly files: DataFiles;
  readonly checksumCache: ChecksumCache;
  readonly inlineBytesMax: number;
  /** Checksum block size for new data files. */
  readonly blockBytes: number;
  readonly committedNextId: number;
  /** Seqs of the deferred writes already copied into file `fileId` but not yet retired. */
  deferredSeqsOf(fileId: number): readonly number[];
  /** Files left by failed groups that could not be removed at once. */
  readonly strayFiles: readonly number[];
  /** Files written ahead for this group's `writeFull`s (staging.ts); the ones used are marked. */
  readonly staged: readonly StagedFile[];
  nextDeferredSeq(): number;
  nextGcSeq(): number;
}

export interface CommitPlan {
  ops: KvOp[];
  /** Deferred writes to copy into their files once the batch is durable. */
  deferred: { seq: number; write: DeferredWrite; bytes: number }[];
  /** Deferred-write records this batch deletes. */
  retired: number[];
  gc: { seq: number; record: GcRecord }[];
  /** The collections as they will be after the commit (undefined: removed). */
  collections: Map<string, CollectionRecord | undefined>;
  /** Data files created for this group (to remove if it does not commit). */
  createdFiles: number[];
  /** The onodes this group writes (undefined: removed), by `cid:name`, for the store's caches. */
  onodes: Map<string, Onode | undefined>;
  /** The checksum chunks this group writes, by `fileId:chunk`. */
  chunks: Map<string, Uint32Array>;
  strayFilesUsed: number;
}

interface Refs {
  files: Set<number>;
  inline: Set<number>;
  omap: Set<number>;
}

function addRefs(refs: Refs, onode: Onode | undefined): void {
  if (!onode) return;
  if (onode.data.kind === 'file') refs.files.add(onode.data.id);
  else if (onode.data.kind === 'inline') refs.inline.add(onode.data.id);
  if (onode.omapId !== 0) refs.omap.add(onode.omapId);
}

/** Sub-ranges of [from, to) that no extent covers. */
function gaps(from: number, to: number, extents: readonly Extent[]): [number, number][] {
  const out: [number, number][] = [];
  let at = from;
  for (const e of extents) {
    const end = e.offset + e.length;
    if (end <= at) continue;
    if (e.offset >= to) break;
    if (e.offset > at) out.push([at, e.offset]);
    at = Math.max(at, end);
    if (at >= to) break;
  }
  if (at < to) out.push([at, to]);
  return out;
}

function covered(from: number, to: number, extents: readonly Extent[]): number {
  let gapBytes = 0;
  for (const [a, b] of gaps(from, to, extents)) gapBytes += b - a;
  return to - from - gapBytes;
}

/** Reads committed data (inline blobs and file blocks), verifying checksums, for one commit group. */
class BaseReader {
  readonly #env: CommitEnv;
  #inline = new Map<number, Promise<Buffer>>();
  #handles = new Map<number, Promise<FileLease>>();

  constructor(env: CommitEnv) {
    this.#env = env;
  }

  async read(base: Base, from: number, to: number): Promise<Buffer> {
    if (base.kind === 'none') return Buffer.alloc(to - from);
    if (base.kind === 'inline') {
      let blob = this.#inline.get(base.id);
      if (!blob) {
        const { id, size, crc } = base;
        blob = (async () => {
          const value = await this.#env.kv.get(keys.inlineData(id));
          if (!value) throw new StorageError('CORRUPT_DATA', `inline data ${id} is missing`);
          const bytes = decodeBlob('inlineData', value);
          if (bytes.length !== size || crc32c(bytes) !== crc) {
            throw new StorageError('CHECKSUM_MISMATCH', `inline data ${id} does not match its checksum`);
          }
          return bytes;
        })();
        this.#inline.set(base.id, blob);
      }
      return (await blob).subarray(from, to);
    }
    const bs = base.blockBytes;
    const first = Math.floor(from / bs);
    const end = Math.ceil(to / bs);
    const start = first * bs;
    let opening = this.#handles.get(base.id);
    if (!opening) {
      opening = this.#env.files.openRead(base.id);
      this.#handles.set(base.id, opening);
    }
    const bytes = await readFully((await opening).fh, start, Math.min(end * bs, base.size) - start);
    const crcs = await loadChecksums(this.#env.kv, base.id, first, end, this.#env.checksumCache);
    verifyBlocks(bytes, first, bs, crcs, `data file ${base.id}`);
    return bytes.subarray(from - start, to - start);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#handles.values()].map(async (h) => (await h).close()));
    this.#handles.clear();
  }
}

export async function planCommit(ws: WorkingSet, env: CommitEnv): Promise<CommitPlan> {
  const plan: CommitPlan = {
    ops: [],
    deferred: [],
    retired: [],
    gc: [],
    collections: new Map(),
    createdFiles: [],
    strayFilesUsed: 0,
    onodes: new Map(),
    chunks: new Map(),
  };
  const reader = new BaseReader(env);
  const before: Refs = { files: new Set(), inline: new Set(), omap: new Set() };
  const after: Refs = { files: new Set(), inline: new Set(), omap: new Set() };
  const dirsToSync = new Set<string>();
  const newFiles: NewFile[] = [];
  /** Files changed directly (and fsync'd) in this group: their older deferred writes can be retired. */
  const syncedFiles = new Set<number>();

  /** The object's bytes [from, to) as the working state says they are. */
  async function materialize(o: WorkingObject, from: number, to: number): Promise<Buffer> {
    const { base, baseValid, extents } = o.data;
    // One new extent covers the piece (a full write): its bytes as they are, with no copy.
    const whole = extents.find((e) => e.data && e.offset <= from && e.offset + e.length >= to);
    if (whole?.data) return whole.data.subarray(from - whole.offset, to - whole.offset);
    const out = Buffer.alloc(to - from);
    const baseEnd = Math.min(baseValid, to);
    if (base.kind !== 'none' && from < baseEnd) {
      for (const [a, b] of gaps(from, baseEnd, extents)) (await reader.read(base, a, b)).copy(out, a - from);
    }
    for (const e of extents) {
      const end = e.offset + e.length;
      if (end <= from) continue;
      if (e.offset >= to) break;
      if (!e.data) continue;
      const a = Math.max(from, e.offset);
      const b = Math.min(to, end);
      e.data.copy(out, a - from, a - e.offset, b - e.offset);
    }
    return out;
  }

  function putChecksums(fileId: number, chunks: Map<number, Uint32Array>): void {
    for (const [chunk, crcs] of chunks) {
      plan.ops.push({ type: 'put', key: keys.checksums(fileId, chunk), value: encodeChecksums(crcs) });
      plan.chunks.set(`${fileId}:${chunk}`, crcs);
    }
  }

  /** A file written ahead of this group that holds exactly the object's bytes (its one extent, over no base). */
  function stagedFor(o: WorkingObject): StagedFile | undefined {
    const { base, extents } = o.data;
    const only = extents[0];
    if (base.kind !== 'none' || extents.length !== 1 || !only?.data || only.offset !== 0 || only.length !== o.size) return undefined;
    const data = only.data;
    return env.staged.find((s) => !s.used && isStagedData(data, s));
  }

  async function writeNewFile(o: WorkingObject): Promise<OnodeData> {
    const id = ws.takeId();
    const bs = env.blockBytes;
    const staged = stagedFor(o);
    if (staged) {
      // Written and synced already: renamed into place (the directory is synced with the group's new files').
      staged.used = true;
      await env.files.promote(staged.path, id);
      plan.createdFiles.push(id);
      dirsToSync.add(env.files.dirOf(id));
      putChecksums(id, staged.chunks);
      return { kind: 'file', id, blockBytes: bs };
    }
    const size = o.size;
    const { base, baseValid, extents } = o.data;
    const { chunks, setCrc } = checksumChunks(size, bs);
    const file = await env.files.create(id);
    plan.createdFiles.push(id);
    try {
      for (let from = 0; from < size; from += pieceBytes) {
        const to = Math.min(from + pieceBytes, size);
        const hasBase = base.kind !== 'none' && from < baseValid;
        const hasData = extents.some((e) => e.data && e.offset < to && e.offset + e.length > from);
        if (!hasBase && !hasData) {
          // A hole: left unwritten (reads as zeros), checksummed as zeros.
          for (let at = from; at < to; at += bs) setCrc(at / bs, zeroCrc(Math.min(bs, to - at)));
          continue;
        }
        const bytes = await materialize(o, from, to);
        checksumPiece(bytes, from, bs, setCrc);
        await env.files.writeNew(file, bytes, from);
      }
    } catch (error) {
      await file.fh.close();
      throw error;
    }
    // Synced with the group's other new files, all at once, before the commit.
    newFiles.push(file);
    dirsToSync.add(env.files.dirOf(id));
    putChecksums(id, chunks);
    return { kind: 'file', id, blockBytes: bs };
  }

  /** Bytes of the object's own file rewritten by logging versus by copying into a new file. */
  function inPlaceIsCheaper(o: WorkingObject, base: Extract<Base, { kind: 'file' }>): boolean {
    const { baseValid, extents } = o.data;
    const inside = Math.min(base.size, o.size);
    const logged = covered(0, inside, extents) + Math.max(0, inside - baseValid) - covered(Math.min(baseValid, inside), inside, extents);
    const copied = Math.min(baseValid, o.size) - covered(0, Math.min(baseValid, o.size), extents);
    return logged < copied;
  }

  async function writeInPlace(o: WorkingObject, base: Extract<Base, { kind: 'file' }>): Promise<OnodeData> {
    const { baseValid, extents } = o.data;
    const bs = base.blockBytes;
    const committed = base.size;
    const size = o.size;
    const inside = Math.min(committed, size);
    const deferred: FileExtent[] = [];
    const direct: { offset: number; data: Buffer }[] = [];
    for (const e of extents) {
      const end = e.offset + e.length;
      if (e.offset < committed) {
        const length = Math.min(end, committed) - e.offset;
        deferred.push({ offset: e.offset, length, data: e.data ? e.data.subarray(0, length) : null });
      }
      if (end > committed && e.data) {
        const start = Math.max(e.offset, committed);
        direct.push({ offset: start, data: e.data.subarray(start - e.offset) });
      }
    }
    if (baseValid < inside) {
      for (const [a, b] of gaps(baseValid, inside, extents)) deferred.push({ offset: a, length: b - a, data: null });
      deferred.sort((x, y) => x.offset - y.offset);
    }
    if (size > committed) {
      // Past the committed end, written and made durable before the commit; the committed version never reads there.
      const lease = await env.files.openExisting(base.id);
      if (!lease) throw new StorageError('CORRUPT_DATA', `data file ${base.id} is missing`);
      try {
        const holeBytes = size - committed - covered(committed, size, extents.filter((e) => e.data));
        if (holeBytes <= appendHoleMax) {
          // The whole tail from the 4 KiB block holding the committed end, with O_DIRECT (as new files are): that
          // block's committed bytes rewritten as they are, holes as zeros (which also covers stale bytes from before
          // a shrink), the last block padded.
          const from = Math.floor(committed / directAlign) * directAlign;
          const head = from < committed ? await reader.read(base, from, committed) : Buffer.alloc(0);
          const tail = await materialize(o, committed, size);
          await env.files.writeDirect(base.id, lease, head.length > 0 ? Buffer.concat([head, tail]) : tail, from);
        } else {
          // A far sparse extension: stale bytes from before a shrink are cut (the gap must read as zeros), then only
          // the new bytes written.
          await lease.fh.truncate(committed);
          for (const d of direct) await writeAll(lease.fh, d.data, d.offset);
        }
        await env.files.sync(lease.fh);
      } finally {
        await lease.close();
      }
      syncedFiles.add(base.id);
    }

    // Blocks whose checksum changes: every changed byte, and the last block if its length changed.
    const ranges: [number, number][] = [];
    for (const e of extents) ranges.push([e.offset, Math.min(e.offset + e.length, size)]);
    if (baseValid < inside) ranges.push([baseValid, inside]);
    if (size > committed) ranges.push([committed, size]);
    if (size < committed && size % bs !== 0) ranges.push([size - 1, size]);
    const blocks = new Set<number>();
    for (const [a, b] of ranges) for (let blk = Math.floor(a / bs); blk * bs < b; blk++) blocks.add(blk);
    const sorted = [...blocks].sort((x, y) => x - y);
    const chunks = new Map<number, Uint32Array>();
    const blockCount = Math.ceil(size / bs);
    for (let i = 0; i < sorted.length; ) {
      let j = i;
      while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] as number) + 1 && j - i + 1 < pieceBytes / bs) j++;
      const first = sorted[i] as number;
      const from = first * bs;
      const to = Math.min(((sorted[j] as number) + 1) * bs, size);
      const bytes = await materialize(o, from, to);
      for (let blk = first; blk <= (sorted[j] as number); blk++) {
        const c = Math.floor(blk / checksumsPerChunk);
        let crcs = chunks.get(c);
        if (!crcs) {
          let old = env.checksumCache.get(`${base.id}:${c}`);
          if (!old) {
            const stored = await env.kv.get(keys.checksums(base.id, c));
            old = stored ? decodeChecksums(stored) : new Uint32Array(0);
          }
          crcs = new Uint32Array(Math.min(checksumsPerChunk, Math.max(old.length, blockCount - c * checksumsPerChunk)));
          crcs.set(old.subarray(0, crcs.length));
          chunks.set(c, crcs);
        }
        const a = blk * bs - from;
        crcs[blk % checksumsPerChunk] = crc32c(bytes.subarray(a, Math.min(a + bs, to - from)));
      }
      i = j + 1;
    }
    putChecksums(base.id, chunks);

    if (deferred.length > 0) {
      const seq = env.nextDeferredSeq();
      const write: DeferredWrite = { fileId: base.id, extents: deferred };
      let bytes = 0;
      for (const d of deferred) bytes += d.data ? d.length : 0;
      plan.ops.push({ type: 'put', key: keys.deferredWrite(seq), value: encodeDeferredWrite(write) });
      plan.deferred.push({ seq, write, bytes });
    }
    return { kind: 'file', id: base.id, blockBytes: bs };
  }

  async function finalData(o: WorkingObject): Promise<OnodeData> {
    const { base, baseValid, extents } = o.data;
    const size = o.size;
    if (size === 0) return { kind: 'none' };
    if (base.kind !== 'none' && base.owned && extents.length === 0 && baseValid === base.size && size === base.size) {
      return base.kind === 'inline' ? { kind: 'inline', id: base.id, crc: base.crc } : { kind: 'file', id: base.id, blockBytes: base.blockBytes };
    }
    if (size <= env.inlineBytesMax) {
      const bytes = await materialize(o, 0, size);
      const id = base.kind === 'inline' && base.owned ? base.id : ws.takeId();
      plan.ops.push({ type: 'put', key: keys.inlineData(id), value: encodeBlob('inlineData', bytes) });
      return { kind: 'inline', id, crc: crc32c(bytes) };
    }
    if (base.kind === 'file' && base.owned && inPlaceIsCheaper(o, base)) return writeInPlace(o, base);
    return writeNewFile(o);
  }

  function finalOmap(o: WorkingObject): number {
    const s = o.omap;
    let id = s.cleared ? 0 : s.id;
    if (id === 0 && s.sets.size > 0) id = ws.takeId();
    for (const [key, value] of s.sets) plan.ops.push({ type: 'put', key: keys.omap(id, key), value: encodeBlob('omapValue', value) });
    if (!s.cleared && id !== 0) for (const key of s.removes) plan.ops.push({ type: 'del', key: keys.omap(id, key) });
    return id;
  }

  const statsDelta = new Map<number, { objects: number; bytes: number }>();
  try {
    await finalizeObjects();
    await Promise.all(newFiles.map((file) => env.files.sync(file.fh)));
  } finally {
    await Promise.allSettled(newFiles.map((file) => file.fh.close()));
    await reader.close();
  }

  /** Objects are independent (one file each), so their data is prepared side by side, a few at a time. */
  async function finalizeObjects(): Promise<void> {
    const objects = [...ws.objects.values()];
    let next = 0;
    const workers = Array.from({ length: Math.min(finalizeConcurrency, objects.length) }, async () => {
      while (next < objects.length) await finalizeObject(objects[next++] as WorkingObject);
    });
    await Promise.all(workers);
  }

  async function finalizeObject(o: WorkingObject): Promise<void> {
    addRefs(before, o.durable);
    if (!o.changed) {
      addRefs(after, o.durable);
      return;
    }
    let onode: Onode | undefined;
    if (o.exists) {
      const data = await finalData(o);
      const omapId = finalOmap(o);
      const xattrs = new Map([...o.xattrs].sort(([a], [b]) => compareUtf8(a, b)));
      onode = { size: o.size, mtimeMs: o.mtimeMs, data, omapId, xattrs };
      plan.ops.push({ type: 'put', key: keys.onode(o.cid, o.name), value: encodeOnode(onode) });
    } else if (o.durable) {
      plan.ops.push({ type: 'del', key: keys.onode(o.cid, o.name) });
    }
    addRefs(after, onode);
    plan.onodes.set(`${o.cid}:${o.name}`, onode);
    const delta = statsDelta.get(o.cid) ?? { objects: 0, bytes: 0 };
    delta.objects += (onode ? 1 : 0) - (o.durable ? 1 : 0);
    delta.bytes += (onode?.size ?? 0) - (o.durable?.size ?? 0);
    statsDelta.set(o.cid, delta);
  }

  const addGc = (record: GcRecord) => {
    const seq = env.nextGcSeq();
    plan.gc.push({ seq, record });
    plan.ops.push({ type: 'put', key: keys.gcRecord(seq), value: encodeGcRecord(record) });
  };
  for (const id of before.files) if (!after.files.has(id)) addGc({ kind: 'file', id });
  for (const id of before.omap) if (!after.omap.has(id)) addGc({ kind: 'omap', id });
  for (const id of before.inline) if (!after.inline.has(id)) plan.ops.push({ type: 'del', key: keys.inlineData(id) });
  for (const id of env.strayFiles) addGc({ kind: 'file', id });
  plan.strayFilesUsed = env.strayFiles.length;

  for (const c of ws.collections.values()) {
    for (const cid of c.removed) addGc({ kind: 'collection', id: cid });
    if (c.current) {
      const same = c.durable && c.durable.cid === c.current.cid;
      const delta = statsDelta.get(c.current.cid);
      if (!same || delta) {
        const record: CollectionRecord = {
          cid: c.current.cid,
          objects: (same ? (c.durable as CollectionRecord).objects : 0) + (delta?.objects ?? 0),
          bytes: (same ? (c.durable as CollectionRecord).bytes : 0) + (delta?.bytes ?? 0),
        };
        plan.collections.set(c.pg, record);
        plan.ops.push({ type: 'put', key: keys.collection(c.pg), value: encodeCollection(record) });
      }
    } else if (c.durable) {
      plan.collections.set(c.pg, undefined);
      plan.ops.push({ type: 'del', key: keys.collection(c.pg) });
    }
  }

  for (const [cid, changes] of ws.pgMeta) {
    for (const [key, value] of changes) {
      plan.ops.push(
        value ? { type: 'put', key: keys.pgMeta(cid, key), value: encodeBlob('pgMetaValue', value) } : { type: 'del', key: keys.pgMeta(cid, key) },
      );
    }
  }

  for (const fileId of syncedFiles) {
    for (const seq of env.deferredSeqsOf(fileId)) {
      plan.retired.push(seq);
      plan.ops.push({ type: 'del', key: keys.deferredWrite(seq) });
    }
  }

  // Always written: the start-up sweep removes data files at or past it, so it must cover every file committed.
  plan.ops.push({ type: 'put', key: keys.counters, value: encodeCounters({ nextId: ws.nextId }) });
  await Promise.all([...dirsToSync].map((dir) => env.files.syncDir(dir)));
  return plan;
}
