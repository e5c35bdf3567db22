/**
 * LevelStore: the OSD's on-disk object store. One directory per OSD:
 *
 *   <dir>/db/          LevelDB: superblock, counters, collections, onodes, inline data, block checksums, omap,
 *                      PG metadata, deferred writes, garbage records (layouts in codec.ts)
 *   <dir>/data/xx/id   object data files (raw bytes), for objects larger than `inlineBytesMax`
 *
 * Transactions queue up and commit in groups: while one group syncs, the next gathers whatever arrives (bounded by
 * `groupTransactionsMax` and `groupBytesMax`), so concurrent writers share fsyncs. A group commits with one
 * synchronous LevelDB batch; how data reaches the disk safely is in commit.ts. On start the store replays deferred
 * writes, removes data files no committed transaction owns, and resumes collecting garbage.
 */
import { statfs } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError, silentLogger, systemClock, type Clock, type Logger } from '../../../src/common/index.js';
import {
  checkListOptions,
  checkOid,
  checkPg,
  checkReadRange,
  compareUtf8,
  resolveLimits,
  transactionBytes,
  validateTransaction,
  type StoreLimits,
} from '../limits.js';
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
} from '../types.js';
import { crc32c, loadChecksums, verifyBlocks, type ChecksumCache } from './checksums.js';
import { stageFile, type StagedFile } from './staging.js';
import {
  collectionKeyPg,
  decodeBlob,
  decodeCollection,
  decodeCounters,
  decodeDeferredWrite,
  decodeGcRecord,
  decodeOnode,
  decodeSuperblock,
  encodeBlob,
  encodeCounters,
  encodeGcRecord,
  encodeSuperblock,
  keyId,
  keyTail,
  keys,
  type CollectionRecord,
  type DeferredWrite,
  type GcRecord,
  type Onode,
} from './codec.js';
import { planCommit, type CommitEnv, type CommitPlan } from './commit.js';
import { DataFiles, directAlign, readFully, writeAll, writeZeros } from './files.js';
import { Gate } from './gate.js';
import { openKv, type KvOp, type KvRange, type KvStore } from './kv.js';
import { WorkingSet, type CommittedView } from './working.js';
import { Lru } from './lru.js';

export interface LevelStoreOptions {
  /** The OSD's store directory (created if missing). */
  dir: string;
  clock?: Clock;
  logger?: Logger;
  limits?: Partial<StoreLimits>;
  /** Where NO_SPACE starts (logical object bytes); default: only the file system's own limit. */
  capacityBytes?: number;
  /**
   * Objects up to this size keep their data in LevelDB. Default 16 KiB: LevelDB maps its table files into the
   * process, so inline data that clients read counts in the OSD's resident memory (3,000 objects of 64 KiB read back
   * took an OSD from 175 to 272 MiB RSS; with them in files, 170 MiB), and every compaction rewrites it.
   */
  inlineBytesMax?: number;
  /**
   * Write new data files with O_DIRECT (where the file system allows it; else buffered). Default true: filling fresh
   * page-cache pages cost 10-25 ms of kernel CPU per 4 MiB file on the VMs measured, against about 1 ms direct.
   */
  directWrites?: boolean;
  /** Checksum block size of new data files, a power of two from 512 B to 1 MiB. Default 4 KiB. */
  blockBytes?: number;
  /** Most transactions committed by one sync. Default 64. */
  groupTransactionsMax?: number;
  /** Most payload bytes committed by one sync (a larger single transaction still commits alone). Default 64 MiB. */
  groupBytesMax?: number;
  /** Most transactions waiting to commit; beyond it apply fails with BUSY. Default 4096. */
  commitQueueMax?: number;
  /** Most payload bytes waiting to commit; beyond it apply fails with BUSY. Default 512 MiB. */
  commitQueueBytesMax?: number;
  /** Deferred-write bytes copied into files but not yet fsync'd before they are retired together. Default 16 MiB. */
  deferredBytesMax?: number;
  /** Deferred-write records kept before they are retired together. Default 1024. */
  deferredRecordsMax?: number;
  /** Garbage records handled per step between commit groups. Default 64. */
  gcBatchMax?: number;
  /** @internal Tests only: leave deferred writes unapplied after commit, as if the process died right there. */
  debugSkipDeferredApply?: boolean;
}

export interface LevelStoreStats {
  transactions: number;
  groups: number;
  /** Synchronous LevelDB batch writes (each an fsync of the LevelDB log). */
  kvSyncs: number;
  /** fsyncs of data files and directories. */
  fileSyncs: number;
  deferredWrites: number;
  deferredRetirements: number;
  gcRecords: number;
}

interface Pending {
  tx: TransactionLike;
  bytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
  /** Files being written ahead for the transaction's large `writeFull`s (staging.ts); never rejects. */
  staged?: Promise<(StagedFile | undefined)[]>;
  /** False while `staged` runs: the transaction waits in the queue, and only later ones of other PGs pass it. */
  ready: boolean;
}

function collectionsOf(tx: TransactionLike): Set<string> {
  const pgs = new Set<string>();
  for (const op of tx.ops) {
    if ('oid' in op) pgs.add(op.oid.pg);
    else if ('src' in op) {
      pgs.add(op.src.pg);
      pgs.add(op.dst.pg);
    } else pgs.add(op.pg);
  }
  return pgs;
}

/** `writeFull`s of more bytes than this (and than the inline limit) have their file written ahead (staging.ts). */
const stageBytesMin = 64 * 1024;

/** Committed onodes and checksum chunks kept in memory (a few MiB). */
const onodeCacheMax = 4096;
/**
 * Deferred pieces from this size up are copied into their file with O_DIRECT: under 1 MiB overwrites an OSD spent a
 * third of its CPU filling fresh page-cache pages for them; 4 KiB pieces direct cost more than buffered (each waits
 * for the disk inside the commit).
 */
const deferredDirectMin = 64 * 1024;
const checksumCacheMax = 4096;

function ioError(error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new StorageError('NO_SPACE', 'the disk is full', { cause: error });
  return StorageError.from(error);
}

export class LevelStore implements ObjectStore, CorruptibleStore {
  readonly #options: LevelStoreOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #limits: StoreLimits;
  readonly #capacityBytes: number;
  readonly #inlineBytesMax: number;
  readonly #files: DataFiles;
  readonly #gate = new Gate();
  #kv: KvStore | undefined;
  #state: 'stopped' | 'running' | 'stopping' = 'stopped';
  /** Set when the disk failed after a commit: the store refuses work until restarted (which replays). */
  #failed: StorageError | undefined;
  #blockBytes = 4096;
  #nextId = 1;
  #collections = new Map<string, CollectionRecord>();
  #usedBytes = 0;
  #objectCount = 0;
  #queue: Pending[] = [];
  #queueBytes = 0;
  #pump: Promise<void> | undefined;
  #pendingDeferred = new Map<number, { seq: number; bytes: number }[]>();
  #pendingDeferredBytes = 0;
  #pendingDeferredRecords = 0;
  #deferredSeq = 1;
  #gcSeq = 1;
  #gcQueue: { seq: number; record: GcRecord }[] = [];
  #strayFiles: number[] = [];
  /** Committed onodes (null: known absent) by `cid:name`; changed only when a commit is published. */
  #onodeCache = new Lru<string, Onode | null>(onodeCacheMax);
  #checksumCache: ChecksumCache = new Lru<string, Uint32Array>(checksumCacheMax);
  readonly #stats: Omit<LevelStoreStats, 'kvSyncs' | 'fileSyncs'> = {
    transactions: 0,
    groups: 0,
    deferredWrites: 0,
    deferredRetirements: 0,
    gcRecords: 0,
  };

  constructor(options: LevelStoreOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? silentLogger;
    this.#limits = resolveLimits(options.limits);
    this.#capacityBytes = options.capacityBytes ?? Number.MAX_SAFE_INTEGER;
    this.#inlineBytesMax = options.inlineBytesMax ?? 16 * 1024;
    const blockBytes = options.blockBytes ?? 4096;
    if (!Number.isInteger(Math.log2(blockBytes)) || blockBytes < 512 || blockBytes > 1024 * 1024) {
      throw new TypeError('blockBytes must be a power of two from 512 to 1048576');
    }
    if (!Number.isSafeInteger(this.#inlineBytesMax) || this.#inlineBytesMax < 0 || this.#inlineBytesMax > 1024 * 1024) {
      throw new TypeError('inlineBytesMax must be an integer from 0 to 1048576');
    }
    this.#blockBytes = blockBytes;
    this.#files = new DataFiles(join(options.dir, 'data'), { direct: options.directWrites ?? true });
  }

  get limits(): Readonly<StoreLimits> {
    return this.#limits;
  }

  get stats(): LevelStoreStats {
    return { ...this.#stats, kvSyncs: this.#kv?.syncs ?? 0, fileSyncs: this.#files.syncs };
  }

  /** Where an object's bytes are (for tests and debugging tools). */
  async locate(oid: ObjectId): Promise<{ kind: 'none' } | { kind: 'inline'; id: number } | { kind: 'file'; path: string }> {
    const onode = await this.#gate.read(() => this.#requireOnode(oid));
    if (onode.data.kind === 'file') return { kind: 'file', path: this.#files.pathOf(onode.data.id) };
    if (onode.data.kind === 'inline') return { kind: 'inline', id: onode.data.id };
    return { kind: 'none' };
  }

  // ---- lifecycle ----

  async start(): Promise<void> {
    if (this.#state !== 'stopped') throw new TypeError('LevelStore is already started');
    await mkdir(this.#options.dir, { recursive: true });
    const kv = await openKv(join(this.#options.dir, 'db'));
    try {
      await this.#open(kv);
    } catch (error) {
      await kv.close();
      throw error;
    }
    this.#kv = kv;
    this.#failed = undefined;
    this.#state = 'running';
    if (this.#gcQueue.length > 0) this.#kick();
  }

  async #open(kv: KvStore): Promise<void> {
    const superblock = await kv.get(keys.superblock);
    if (!superblock) {
      await this.#files.init();
      await kv.batch(
        [
          { type: 'put', key: keys.superblock, value: encodeSuperblock({ createdMs: this.#clock.nowMs(), blockBytes: this.#blockBytes }) },
          { type: 'put', key: keys.counters, value: encodeCounters({ nextId: 1 }) },
        ],
        true,
      );
    } else {
      decodeSuperblock(superblock);
      await this.#files.init();
    }
    const counters = await kv.get(keys.counters);
    if (!counters) throw new StorageError('CORRUPT_DATA', 'store counters are missing');
    this.#nextId = decodeCounters(counters).nextId;

    await this.#replayDeferred(kv);

    // Data files at or past the committed id counter belong to groups that never committed.
    for (const file of await this.#files.list()) {
      if (file.id >= this.#nextId) {
        this.#log.info('removing uncommitted data file', { path: file.path });
        await this.#files.removePath(file.path);
      }
    }

    this.#collections.clear();
    this.#usedBytes = 0;
    this.#objectCount = 0;
    for (const [key, value] of await kv.entries(keys.collectionRange())) {
      const record = decodeCollection(value);
      this.#collections.set(collectionKeyPg(key), record);
      this.#usedBytes += record.bytes;
      this.#objectCount += record.objects;
    }
    this.#gcQueue = [];
    for (const [key, value] of await kv.entries(keys.gcRecordRange())) {
      this.#gcQueue.push({ seq: keyId(key), record: decodeGcRecord(value) });
    }
    this.#gcSeq = (this.#gcQueue[this.#gcQueue.length - 1]?.seq ?? 0) + 1;
    this.#onodeCache.clear();
    this.#checksumCache.clear();
    this.#deferredSeq = 1;
    this.#pendingDeferred.clear();
    this.#pendingDeferredBytes = 0;
    this.#pendingDeferredRecords = 0;
  }

  /** Copies every logged deferred write into its file again (idempotent), makes them durable and drops the log. */
  async #replayDeferred(kv: KvStore): Promise<void> {
    const records = await kv.entries(keys.deferredWriteRange());
    if (records.length === 0) return;
    const touched = new Set<number>();
    for (const [, value] of records) {
      const write = decodeDeferredWrite(value);
      if (await this.#applyDeferredWrite(write, false)) touched.add(write.fileId);
    }
    for (const id of touched) {
      const lease = await this.#files.openExisting(id);
      if (!lease) continue;
      try {
        await this.#files.sync(lease.fh);
      } finally {
        await lease.close();
      }
    }
    await kv.batch(records.map(([key]) => ({ type: 'del', key })), true);
    this.#log.info('replayed deferred writes', { records: records.length, files: touched.size });
  }

  /** Returns false when the file is gone (it was collected; the write no longer matters). */
  async #applyDeferredWrite(write: DeferredWrite, mustExist: boolean): Promise<boolean> {
    const lease = await this.#files.openExisting(write.fileId);
    if (!lease) {
      if (mustExist) throw new StorageError('CORRUPT_DATA', `data file ${write.fileId} of a committed object is missing`);
      return false;
    }
    try {
      for (const extent of write.extents) {
        if (extent.data && extent.data.length >= deferredDirectMin && extent.offset % directAlign === 0 && extent.data.length % directAlign === 0) {
          // Large aligned pieces skip the page cache, as new files do (its fresh pages cost more CPU than the disk).
          await this.#files.writeDirect(write.fileId, lease, extent.data, extent.offset);
        } else if (extent.data) {
          await writeAll(lease.fh, extent.data, extent.offset);
        } else {
          await writeZeros(lease.fh, extent.offset, extent.length);
        }
      }
    } finally {
      await lease.close();
    }
    return true;
  }

  async stop(): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'stopping';
    while (this.#pump) await this.#pump;
    const kv = this.#kv as KvStore;
    try {
      if (!this.#failed) await this.#retireDeferred();
    } finally {
      await this.#gate.write(() => kv.close());
      await this.#files.closeAll();
      this.#kv = undefined;
      this.#state = 'stopped';
    }
  }

  /** LevelDB records by kind (the one-letter key prefixes of the README), for tests and debugging tools. */
  async recordCounts(): Promise<Record<string, number>> {
    return this.#gate.read(async () => {
      const kv = this.#assertRunning();
      const counts: Record<string, number> = {};
      for (const key of await kv.keys({ gte: Buffer.from([0]), lt: Buffer.from([0xff]) })) {
        const kind = String.fromCharCode(key[0] as number);
        counts[kind] = (counts[kind] ?? 0) + 1;
      }
      return counts;
    });
  }

  /** Waits until every queued transaction is committed and the garbage collected (for tests and clean shutdowns). */
  async settle(): Promise<void> {
    while (this.#pump) await this.#pump;
  }

  /** @internal Tests only: drops everything in memory and closes LevelDB as a killed process would (no retiring). */
  async crashForTest(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopping';
    while (this.#pump) await this.#pump;
    await this.#gate.write(() => (this.#kv as KvStore).close());
    await this.#files.closeAll();
    this.#kv = undefined;
    this.#state = 'stopped';
  }

  #assertRunning(): KvStore {
    if (this.#state !== 'running' || !this.#kv) throw new StorageError('SHUTTING_DOWN', 'the store is not running');
    if (this.#failed) throw new StorageError('INTERNAL', `the store failed and must be restarted: ${this.#failed.message}`, { cause: this.#failed });
    return this.#kv;
  }

  // ---- commits ----

  apply(tx: TransactionLike): Promise<void> {
    try {
      this.#assertRunning();
      validateTransaction(tx, this.#limits);
    } catch (error) {
      return Promise.reject(error);
    }
    const bytes = transactionBytes(tx);
    const queueMax = this.#options.commitQueueMax ?? 4096;
    const queueBytesMax = this.#options.commitQueueBytesMax ?? 512 * 1024 * 1024;
    if (this.#queue.length >= queueMax || (this.#queue.length > 0 && this.#queueBytes + bytes > queueBytesMax)) {
      return Promise.reject(new StorageError('BUSY', `commit queue is full (${this.#queue.length} transactions, ${this.#queueBytes} bytes)`));
    }
    const staged = this.#stage(tx);
    return new Promise<void>((resolve, reject) => {
      const item: Pending = { tx, bytes, resolve, reject, ready: !staged, ...(staged ? { staged } : {}) };
      this.#queue.push(item);
      this.#queueBytes += bytes;
      staged?.then(() => {
        item.ready = true;
        this.#wake();
      });
      this.#wake();
    });
  }

  /**
   * Starts writing the files of `tx`'s `writeFull`s that will need one (over the inline limit), so that its group
   * only renames them into place; undefined when there are none.
   */
  #stage(tx: TransactionLike): Promise<(StagedFile | undefined)[]> | undefined {
    let staged: Promise<StagedFile | undefined>[] | undefined;
    for (const op of tx.ops) {
      if (op.op !== 'writeFull' || op.data.length <= Math.max(this.#inlineBytesMax, stageBytesMin)) continue;
      (staged ??= []).push(stageFile(this.#files, op.data, this.#blockBytes));
    }
    return staged && Promise.all(staged);
  }

  /** Removes the staged files of `items` that no commit used (after their group, or when they were refused). */
  async #dropStaged(items: readonly Pending[]): Promise<void> {
    for (const item of items) {
      if (!item.staged) continue;
      for (const file of await item.staged) if (file && !file.used) await this.#files.removePath(file.path).catch(() => {});
    }
  }

  #kick(): void {
    if (this.#pump) return;
    this.#pump = this.#run().finally(() => {
      this.#pump = undefined;
      // Work queued between the loop's last look and now would otherwise wait for the next apply.
      if (this.#queue.length > 0) this.#kick();
    });
  }

  async #run(): Promise<void> {
    for (;;) {
      if (this.#failed) {
        const refused = this.#queue.splice(0);
        for (const item of refused) item.reject(this.#failed);
        this.#queueBytes = 0;
        await this.#dropStaged(refused);
        return;
      }
      if (this.#queue.length > 0) {
        const group = this.#takeGroup();
        if (group.length === 0) {
          // Everything queued waits for its data to be written ahead (or for one that does, on the same PG).
          await new Promise<void>((resolve) => (this.#readyWaiter = resolve));
          this.#readyWaiter = undefined;
          continue;
        }
        try {
          await this.#commitGroup(group, true);
        } catch (error) {
          // Not expected (each step handles its own failures); never leave a caller waiting.
          this.#log.error('store commit group failed unexpectedly', { error });
          for (const item of group) item.reject(ioError(error));
        }
        await this.#dropStaged(group);
        if (
          this.#pendingDeferredBytes > (this.#options.deferredBytesMax ?? 16 * 1024 * 1024) ||
          this.#pendingDeferredRecords > (this.#options.deferredRecordsMax ?? 1024)
        ) {
          await this.#guarded(() => this.#retireDeferred());
        }
        continue;
      }
      if (this.#gcQueue.length > 0 && this.#state === 'running') {
        if (!(await this.#guarded(() => this.#collectGarbage()))) return;
        continue;
      }
      return;
    }
  }

  /** Runs background work; a failure is logged and reported as false (it is retried later). */
  async #guarded(work: () => Promise<void>): Promise<boolean> {
    try {
      await work();
      return true;
    } catch (error) {
      this.#log.warn('store background work failed', { error });
      return false;
    }
  }

  /** Set while the commit loop found nothing ready to commit (see `#run`). */
  #readyWaiter: (() => void) | undefined;

  /** Something was queued or became ready: start the commit loop, or wake it if it waits. */
  #wake(): void {
    this.#readyWaiter?.();
    this.#kick();
  }

  /**
   * The next group, in queue order, except that a transaction whose data is still being written ahead stays queued
   * and later ones pass it unless they touch one of its collections (a PG's transactions always commit in the order
   * they came). So a small write no longer waits for a 4 MiB file of another PG to reach the disk. A crash can then
   * keep a later transaction of another PG and lose the earlier one; nothing acknowledged depends on that order, since
   * each caller waits for its own transaction.
   */
  #takeGroup(): Pending[] {
    const countMax = this.#options.groupTransactionsMax ?? 64;
    const bytesMax = this.#options.groupBytesMax ?? 64 * 1024 * 1024;
    const group: Pending[] = [];
    const left: Pending[] = [];
    const held = new Set<string>();
    let bytes = 0;
    let at = 0;
    for (; at < this.#queue.length && group.length < countMax; at++) {
      const next = this.#queue[at] as Pending;
      // Collections are looked at only once something waits (rarely; never under small writes alone).
      const pgs = !next.ready || held.size > 0 ? collectionsOf(next.tx) : undefined;
      if (pgs && (!next.ready || [...pgs].some((pg) => held.has(pg)))) {
        for (const pg of pgs) held.add(pg);
        left.push(next);
        continue;
      }
      if (group.length > 0 && bytes + next.bytes > bytesMax) break;
      bytes += next.bytes;
      group.push(next);
    }
    this.#queue.splice(0, at, ...left);
    this.#queueBytes -= bytes;
    return group;
  }

  #view(kv: KvStore): CommittedView {
    return {
      limits: this.#limits,
      capacityBytes: this.#capacityBytes,
      usedBytes: () => this.#usedBytes,
      collection: (pg) => this.#collections.get(pg),
      onode: (cid, name) => this.#loadOnode(kv, cid, name),
      onodes: async (wanted) => {
        const out: (Onode | undefined)[] = [];
        const missing: number[] = [];
        wanted.forEach((w, i) => {
          const key = `${w.cid}:${w.name}`;
          if (this.#onodeCache.has(key)) out[i] = this.#onodeCache.get(key) ?? undefined;
          else missing.push(i);
        });
        const values = await kv.getMany(missing.map((i) => keys.onode((wanted[i] as { cid: number }).cid, (wanted[i] as { name: string }).name)));
        missing.forEach((i, j) => {
          const value = values[j];
          const onode = value ? decodeOnode(value) : undefined;
          const w = wanted[i] as { cid: number; name: string };
          this.#onodeCache.set(`${w.cid}:${w.name}`, onode ?? null);
          out[i] = onode;
        });
        return out;
      },
      omapEntries: async (omapId, max) =>
        (await kv.entries({ ...keys.omapRange(omapId), limit: max })).map(
          ([key, value]) => [keyTail(key), Buffer.from(decodeBlob('omapValue', value))] as [string, Buffer],
        ),
    };
  }

  #env(kv: KvStore, staged: readonly StagedFile[]): CommitEnv {
    return {
      kv,
      files: this.#files,
      checksumCache: this.#checksumCache,
      inlineBytesMax: this.#inlineBytesMax,
      blockBytes: this.#blockBytes,
      committedNextId: this.#nextId,
      // Looked up per file synced by the group, not copied: up to deferredRecordsMax records wait, and copying them
      // for every group cost 2-4 % of an OSD's CPU under 4 KiB overwrites.
      deferredSeqsOf: (fileId) => (this.#pendingDeferred.get(fileId) ?? []).map((r) => r.seq),
      strayFiles: this.#strayFiles.slice(),
      staged,
      nextDeferredSeq: () => this.#deferredSeq++,
      nextGcSeq: () => this.#gcSeq++,
    };
  }

  /**
   * Commits a group. If writing its data fails before the commit (a full disk, a checksum failure reading old data),
   * its transactions are retried one by one so that only the ones at fault fail.
   */
  async #commitGroup(group: Pending[], mayRetrySingly: boolean): Promise<void> {
    const kv = this.#kv as KvStore;
    const ws = new WorkingSet(this.#view(kv), this.#nextId);
    const accepted: Pending[] = [];
    try {
      await ws.prefetch(group.map((item) => item.tx));
    } catch (error) {
      // Only an optimisation: the transactions load what they need themselves (and meet the error there).
      this.#log.debug('onode prefetch failed', { error });
    }
    for (const item of group) {
      try {
        await ws.apply(item.tx, this.#clock.nowMs());
        accepted.push(item);
      } catch (error) {
        item.reject(ioError(error));
      }
    }
    if (accepted.length === 0) return;

    const staged: StagedFile[] = [];
    for (const item of accepted) if (item.staged) for (const file of await item.staged) if (file) staged.push(file);
    const env = this.#env(kv, staged);
    let plan: CommitPlan;
    try {
      plan = await planCommit(ws, env);
    } catch (error) {
      await this.#discardFiles(env.committedNextId, ws.nextId);
      // Ids are never handed out twice, even those of a group that failed.
      this.#nextId = ws.nextId;
      if (mayRetrySingly && accepted.length > 1) {
        for (const item of accepted) await this.#commitGroup([item], false);
        return;
      }
      for (const item of accepted) item.reject(ioError(error));
      return;
    }

    let committed = false;
    try {
      await this.#gate.write(async () => {
        await kv.batch(plan.ops, true);
        committed = true;
        this.#publish(ws, plan);
        if (!this.#options.debugSkipDeferredApply) {
          // One record per file per group, so the files can be written side by side.
          await Promise.all(plan.deferred.map((d) => this.#applyDeferredWrite(d.write, true)));
        }
      });
    } catch (error) {
      // Either LevelDB refused the batch (we cannot tell what it kept) or a committed deferred write could not be
      // copied into its file: the store stops until a restart replays the log.
      this.#failed = ioError(error);
      this.#log.error('store commit failed; refusing further work until restarted', { error, committed });
      if (!committed) {
        for (const item of accepted) item.reject(this.#failed);
        return;
      }
    }
    this.#stats.groups++;
    this.#stats.transactions += accepted.length;
    for (const item of accepted) item.resolve();
  }

  /** Removes data files made for a group that did not commit (or remembers them for the next commit's garbage). */
  async #discardFiles(fromId: number, toId: number): Promise<void> {
    for (let id = fromId; id < toId; id++) {
      try {
        await this.#files.remove(id);
      } catch {
        this.#strayFiles.push(id);
      }
    }
  }

  /** Makes a committed group visible in memory (called under the write gate, right after the batch). */
  #publish(ws: WorkingSet, plan: CommitPlan): void {
    this.#nextId = ws.nextId;
    for (const [key, onode] of plan.onodes) this.#onodeCache.set(key, onode ?? null);
    for (const [key, crcs] of plan.chunks) this.#checksumCache.set(key, crcs);
    for (const [pg, record] of plan.collections) {
      const old = this.#collections.get(pg);
      this.#usedBytes += (record?.bytes ?? 0) - (old?.bytes ?? 0);
      this.#objectCount += (record?.objects ?? 0) - (old?.objects ?? 0);
      if (record) this.#collections.set(pg, record);
      else this.#collections.delete(pg);
    }
    const retired = new Set(plan.retired);
    if (retired.size > 0) {
      for (const [fileId, records] of this.#pendingDeferred) {
        const kept = records.filter((r) => !retired.has(r.seq));
        for (const r of records) {
          if (retired.has(r.seq)) {
            this.#pendingDeferredBytes -= r.bytes;
            this.#pendingDeferredRecords--;
          }
        }
        if (kept.length > 0) this.#pendingDeferred.set(fileId, kept);
        else this.#pendingDeferred.delete(fileId);
      }
    }
    if (!this.#options.debugSkipDeferredApply) {
      for (const d of plan.deferred) {
        const records = this.#pendingDeferred.get(d.write.fileId) ?? [];
        records.push({ seq: d.seq, bytes: d.bytes });
        this.#pendingDeferred.set(d.write.fileId, records);
        this.#pendingDeferredBytes += d.bytes;
        this.#pendingDeferredRecords++;
      }
    }
    this.#stats.deferredWrites += plan.deferred.length;
    this.#gcQueue.push(...plan.gc);
    this.#strayFiles.splice(0, plan.strayFilesUsed);
  }

  /** fsyncs the files that deferred writes went into, then drops the log records. */
  async #retireDeferred(): Promise<void> {
    if (this.#pendingDeferred.size === 0) return;
    const kv = this.#kv as KvStore;
    const ops: KvOp[] = [];
    await Promise.all(
      [...this.#pendingDeferred.keys()].map(async (fileId) => {
        const lease = await this.#files.openExisting(fileId);
        if (!lease) return;
        try {
          await this.#files.sync(lease.fh);
        } finally {
          await lease.close();
        }
      }),
    );
    for (const records of this.#pendingDeferred.values()) {
      for (const r of records) ops.push({ type: 'del', key: keys.deferredWrite(r.seq) });
    }
    // Not synced: if lost in a crash, replay rewrites bytes that are already there.
    await kv.batch(ops, false);
    this.#stats.deferredRetirements += ops.length;
    this.#pendingDeferred.clear();
    this.#pendingDeferredBytes = 0;
    this.#pendingDeferredRecords = 0;
  }

  /** One bounded step of garbage collection (runs between commit groups). */
  async #collectGarbage(): Promise<void> {
    const kv = this.#kv as KvStore;
    const batchMax = this.#options.gcBatchMax ?? 64;
    const step = this.#gcQueue.slice(0, batchMax);
    const ops: KvOp[] = [];
    const dirs = new Set<string>();
    const done: number[] = [];
    const more: { seq: number; record: GcRecord }[] = [];
    const addGc = (record: GcRecord) => {
      const seq = this.#gcSeq++;
      more.push({ seq, record });
      ops.push({ type: 'put', key: keys.gcRecord(seq), value: encodeGcRecord(record) });
    };
    for (const { seq, record } of step) {
      if (record.kind === 'file') {
        await this.#files.remove(record.id);
        dirs.add(this.#files.dirOf(record.id));
        await kv.clear(keys.checksumRange(record.id));
        const pending = this.#pendingDeferred.get(record.id);
        if (pending) {
          for (const r of pending) {
            ops.push({ type: 'del', key: keys.deferredWrite(r.seq) });
            this.#pendingDeferredBytes -= r.bytes;
            this.#pendingDeferredRecords--;
          }
          this.#pendingDeferred.delete(record.id);
        }
        done.push(seq);
      } else if (record.kind === 'omap') {
        await kv.clear(keys.omapRange(record.id));
        done.push(seq);
      } else {
        // A removed collection: hand each remaining object's data and omap to their own records, a page at a time.
        const pageMax = 256;
        const page = await kv.entries({ ...keys.onodeRange(record.id), limit: pageMax });
        for (const [key, value] of page) {
          const onode = decodeOnode(value);
          if (onode.data.kind === 'file') addGc({ kind: 'file', id: onode.data.id });
          else if (onode.data.kind === 'inline') ops.push({ type: 'del', key: keys.inlineData(onode.data.id) });
          if (onode.omapId !== 0) addGc({ kind: 'omap', id: onode.omapId });
          ops.push({ type: 'del', key });
        }
        if (page.length < pageMax) {
          await kv.clear(keys.pgMetaRange(record.id));
          done.push(seq);
        }
      }
    }
    for (const dir of dirs) await this.#files.syncDir(dir);
    for (const seq of done) ops.push({ type: 'del', key: keys.gcRecord(seq) });
    await kv.batch(ops, false);
    const finished = new Set(done);
    this.#gcQueue = this.#gcQueue.filter((r) => !finished.has(r.seq));
    this.#gcQueue.push(...more);
    this.#stats.gcRecords += done.length;
  }

  // ---- reads ----

  async #onode(kv: KvStore, oid: ObjectId): Promise<Onode | undefined> {
    const collection = this.#collections.get(oid.pg);
    if (!collection) return undefined;
    return this.#loadOnode(kv, collection.cid, oid.name);
  }

  /** The committed onode, from the cache or LevelDB. Callers must not modify it. */
  async #loadOnode(kv: KvStore, cid: number, name: string): Promise<Onode | undefined> {
    const key = `${cid}:${name}`;
    if (this.#onodeCache.has(key)) return this.#onodeCache.get(key) ?? undefined;
    const value = await kv.get(keys.onode(cid, name));
    const onode = value ? decodeOnode(value) : undefined;
    this.#onodeCache.set(key, onode ?? null);
    return onode;
  }

  async #requireOnode(oid: ObjectId): Promise<Onode> {
    const kv = this.#assertRunning();
    checkOid(oid, this.#limits);
    const onode = await this.#onode(kv, oid);
    if (!onode) throw new StorageError('NOT_FOUND', `object ${oid.pg}/${oid.name} does not exist`);
    return onode;
  }

  async read(oid: ObjectId, offset?: number, length?: number): Promise<Buffer> {
    const range = checkReadRange(offset, length);
    return this.#gate.read(async () => {
      const kv = this.#assertRunning();
      const onode = await this.#requireOnode(oid);
      const start = Math.min(range.offset, onode.size);
      const count = Math.min(range.length ?? onode.size, onode.size - start);
      if (count === 0) return Buffer.alloc(0);
      const what = `object ${oid.pg}/${oid.name}`;
      if (onode.data.kind === 'none') return Buffer.alloc(count);
      if (onode.data.kind === 'inline') {
        const value = await kv.get(keys.inlineData(onode.data.id));
        if (!value) throw new StorageError('CORRUPT_DATA', `${what}: inline data is missing`);
        const blob = decodeBlob('inlineData', value);
        if (blob.length !== onode.size || crc32c(blob) !== onode.data.crc) {
          throw new StorageError('CHECKSUM_MISMATCH', `${what}: inline data does not match its checksum`);
        }
        return Buffer.from(blob.subarray(start, start + count));
      }
      const { id, blockBytes } = onode.data;
      const first = Math.floor(start / blockBytes);
      const end = Math.ceil((start + count) / blockBytes);
      const from = first * blockBytes;
      const crcs = await loadChecksums(kv, id, first, end, this.#checksumCache);
      let lease;
      try {
        lease = await this.#files.openRead(id);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new StorageError('CORRUPT_DATA', `${what}: data file ${id} is missing`);
        throw ioError(error);
      }
      let bytes: Buffer;
      try {
        bytes = await readFully(lease.fh, from, Math.min(end * blockBytes, onode.size) - from);
      } finally {
        await lease.close();
      }
      verifyBlocks(bytes, first, blockBytes, crcs, what);
      return bytes.subarray(start - from, start - from + count);
    });
  }

  async stat(oid: ObjectId): Promise<ObjectStat> {
    const onode = await this.#gate.read(() => this.#requireOnode(oid));
    return { size: onode.size, mtimeMs: onode.mtimeMs };
  }

  async exists(oid: ObjectId): Promise<boolean> {
    return this.#gate.read(async () => {
      const kv = this.#assertRunning();
      checkOid(oid, this.#limits);
      return (await this.#onode(kv, oid)) !== undefined;
    });
  }

  async getXattr(oid: ObjectId, name: string): Promise<Buffer | undefined> {
    const onode = await this.#gate.read(() => this.#requireOnode(oid));
    const value = onode.xattrs.get(name);
    return value ? Buffer.from(value) : undefined;
  }

  async getXattrs(oid: ObjectId): Promise<Map<string, Buffer>> {
    const onode = await this.#gate.read(() => this.#requireOnode(oid));
    return new Map([...onode.xattrs].map(([k, v]) => [k, Buffer.from(v)]));
  }

  async omapGet(oid: ObjectId, omapKeys: readonly string[]): Promise<Map<string, Buffer>> {
    return this.#gate.read(async () => {
      const kv = this.#assertRunning();
      const onode = await this.#requireOnode(oid);
      const out = new Map<string, Buffer>();
      if (onode.omapId === 0 || omapKeys.length === 0) return out;
      const unique = [...new Set(omapKeys)];
      const values = await kv.getMany(unique.map((k) => keys.omap(onode.omapId, k)));
      unique.forEach((key, i) => {
        const value = values[i];
        if (value) out.set(key, Buffer.from(decodeBlob('omapValue', value)));
      });
      return out;
    });
  }

  /** A sorted page of `tail → value` under a `kind + id` key head. */
  async #page(kv: KvStore, range: { gte: Buffer; lt: Buffer }, keyOf: (tail: string) => Buffer, options: ListOptions, valuesToo: boolean) {
    const query: KvRange = { lt: range.lt, limit: options.limit + 1 };
    if (options.after !== undefined && compareUtf8(options.after, options.prefix ?? '') >= 0) query.gt = keyOf(options.after);
    else query.gte = range.gte;
    if (valuesToo) {
      const entries = await kv.entries(query);
      return { rows: entries.slice(0, options.limit).map(([k, v]) => ({ key: keyTail(k), value: v })), more: entries.length > options.limit };
    }
    const found = await kv.keys(query);
    return { rows: found.slice(0, options.limit).map((k) => ({ key: keyTail(k), value: Buffer.alloc(0) })), more: found.length > options.limit };
  }

  async omapList(oid: ObjectId, options: ListOptions): Promise<KeyValuePage> {
    return this.#gate.read(async () => {
      const kv = this.#assertRunning();
      const onode = await this.#requireOnode(oid);
      checkListOptions(options, this.#limits);
      if (onode.omapId === 0) return { entries: [], more: false };
      const id = onode.omapId;
      const page = await this.#page(kv, keys.omapRange(id, options.prefix), (k) => keys.omap(id, k), options, true);
      return { entries: page.rows.map((r) => ({ key: r.key, value: Buffer.from(decodeBlob('omapValue', r.value)) })), more: page.more };
    });
  }

  async listObjects(pg: string, options: ListOptions): Promise<NamePage> {
    return this.#gate.read(async () => {
      const kv = this.#assertRunning();
      checkPg(pg, this.#limits);
      checkListOptions(options, this.#limits);
      const collection = this.#collections.get(pg);
      if (!collection) return { names: [], more: false };
      const cid = collection.cid;
      const page = await this.#page(kv, keys.onodeRange(cid, options.prefix), (n) => keys.onode(cid, n), options, false);
      return { names: page.rows.map((r) => r.key), more: page.more };
    });
  }

  async listCollections(): Promise<string[]> {
    this.#assertRunning();
    return [...this.#collections.keys()].sort(compareUtf8);
  }

  async pgMetaGet(pg: string, key: string): Promise<Buffer | undefined> {
    return this.#gate.read(async () => {
      const kv = this.#assertRunning();
      checkPg(pg, this.#limits);
      const collection = this.#collections.get(pg);
      if (!collection) return undefined;
      const value = await kv.get(keys.pgMeta(collection.cid, key));
      return value ? Buffer.from(decodeBlob('pgMetaValue', value)) : undefined;
    });
  }

  async pgMetaList(pg: string, options: ListOptions): Promise<KeyValuePage> {
    return this.#gate.read(async () => {
      const kv = this.#assertRunning();
      checkPg(pg, this.#limits);
      checkListOptions(options, this.#limits);
      const collection = this.#collections.get(pg);
      if (!collection) return { entries: [], more: false };
      const cid = collection.cid;
      const page = await this.#page(kv, keys.pgMetaRange(cid, options.prefix), (k) => keys.pgMeta(cid, k), options, true);
      return { entries: page.rows.map((r) => ({ key: r.key, value: Buffer.from(decodeBlob('pgMetaValue', r.value)) })), more: page.more };
    });
  }

  async statfs(): Promise<StoreStats> {
    this.#assertRunning();
    const fs = await statfs(this.#options.dir);
    const fsTotal = fs.blocks * fs.bsize;
    const fsAvailable = fs.bavail * fs.bsize;
    const totalBytes = Math.min(this.#capacityBytes, fsTotal);
    return {
      totalBytes,
      availableBytes: Math.max(0, Math.min(fsAvailable, this.#capacityBytes - this.#usedBytes)),
      usedBytes: this.#usedBytes,
      objects: this.#objectCount,
    };
  }

  async corrupt(oid: ObjectId, damage: { kind: 'flip' | 'zero'; offset: number; length?: number }): Promise<void> {
    await this.#gate.write(async () => {
      const kv = this.#assertRunning();
      const onode = await this.#requireOnode(oid);
      const length = damage.kind === 'flip' ? 1 : Math.min(damage.length ?? 1, onode.size - damage.offset);
      if (damage.offset >= onode.size || length <= 0) throw new StorageError('INVALID_ARGUMENT', 'damage lies outside the object');
      const mangle = (bytes: Buffer) => (damage.kind === 'flip' ? (bytes[0] = (bytes[0] as number) ^ 0xff) : bytes.fill(0));
      if (onode.data.kind === 'inline') {
        const value = await kv.get(keys.inlineData(onode.data.id));
        if (!value) throw new StorageError('CORRUPT_DATA', 'inline data is missing');
        const blob = Buffer.from(decodeBlob('inlineData', value));
        mangle(blob.subarray(damage.offset, damage.offset + length));
        await kv.batch([{ type: 'put', key: keys.inlineData(onode.data.id), value: encodeBlob('inlineData', blob) }], true);
        return;
      }
      if (onode.data.kind === 'file') {
        const lease = await this.#files.openExisting(onode.data.id);
        if (!lease) throw new StorageError('CORRUPT_DATA', 'data file is missing');
        try {
          const bytes = await readFully(lease.fh, damage.offset, length);
          mangle(bytes);
          await writeAll(lease.fh, bytes, damage.offset);
          await lease.fh.sync();
        } finally {
          await lease.close();
        }
      }
    });
  }
}
