/**
 * One placement group on one OSD. As primary it orders the PG's writes (one version per change, in order), applies
 * them locally and on every replica of the acting set, and answers the client only when all have them durable; it
 * serves reads; and on every interval change (acting set or primary changed) it peers: gathers the members' logs,
 * takes the newest history as authoritative, brings every member (itself first) up to it from the log or by
 * backfill, and only then goes active. As replica it applies what its primary sends, in arrival order.
 *
 * Ordering: versions are assigned, the local transaction submitted and the replica messages sent in one synchronous
 * step, so the store's FIFO commit queue and each connection's FIFO delivery keep every member's changes in version
 * order. Writes and reads of one object are serialised by a per-object lock; different objects proceed concurrently.
 */
import {
  StorageError,
  actingFromUp,
  compareVersions,
  crc32c,
  decodePgInfo,
  decodePgLogEntry,
  decodeVersionBytes,
  encodeVersionBytes,
  encodePgInfo,
  encodePgLogEntry,
  osdCodecs,
  versionFromWire,
  versionToString,
  wire,
  type Clock,
  type Eversion,
  type Logger,
  type Pool,
} from '../../src/index.js';
import { Transaction, type ObjectId, type ObjectStore } from '../store/index.js';
import type { PeerLink } from '../peers.js';
import { buildWriteTransaction, evaluateOps, isWriteOp, versionXattr, type WritePlan } from './object-ops.js';
import { PgLog, entryFromWire, entryToWire, logKey, logKeyPrefix, type LogEntry } from './pg-log.js';
// EC hook: erasure-coded pools (issue 9) keep their logic in ec-backend.ts; pg.ts calls it at the points marked "EC hook".
import { EcBackend, decodeEcSize, ecSizeXattr, type EcWritePlan } from './ec-backend.js';

export type PgState = 'stray' | 'replica' | 'peering' | 'undersized' | 'incomplete' | 'active';

/** A page of a PG's objects with their versions; deep scans add each object's size, CRC-32C and read error. */
export interface ScanPage {
  names: string[];
  versions: Eversion[];
  more: boolean;
  sizes?: number[];
  crcs?: number[];
  errors?: string[];
}

export interface PgSettings {
  /** PG log length. */
  logEntriesMax: number;
  /** Client ops queued while the PG is not active. */
  waitingOpsMax: number;
  /** How long a client op waits for an inactive PG before failing (INSUFFICIENT_REPLICAS or TIMEOUT). */
  opWaitMs: number;
  /** Per message to a peer during replication and peering. */
  peerTimeoutMs: number;
  /** Delay before retrying a failed peering. */
  peeringRetryMs: number;
  /** Objects per backfill scan page and omap entries per push. */
  recoveryPageSize: number;
  /** Recovery and backfill pushes/pulls in flight per OSD (over all its PGs); client ops are never held by this. */
  recoveryOpsMax: number;
  /** Pause after each recovery op, so client I/O gets the disk and the CPU first. */
  recoverySleepMs: number;
}

export const defaultPgSettings: PgSettings = {
  logEntriesMax: 500,
  waitingOpsMax: 1024,
  opWaitMs: 30_000,
  peerTimeoutMs: 30_000,
  peeringRetryMs: 1_000,
  recoveryPageSize: 1_000,
  recoveryOpsMax: 1,
  recoverySleepMs: 0,
};

/** Bounds the recovery ops of one OSD: at most `max` at once, each followed by an optional pause. */
export class RecoveryThrottle {
  readonly #max: number;
  readonly #sleepMs: number;
  readonly #clock: Clock;
  #running = 0;
  #queue: (() => void)[] = [];

  constructor(max: number, sleepMs: number, clock: Clock) {
    this.#max = Math.max(1, max);
    this.#sleepMs = sleepMs;
    this.#clock = clock;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#max) await new Promise<void>((resolve) => this.#queue.push(resolve));
    this.#running++;
    try {
      return await fn();
    } finally {
      if (this.#sleepMs > 0) await new Promise<void>((resolve) => this.#clock.setTimer(this.#sleepMs, resolve));
      this.#running--;
      this.#queue.shift()?.();
    }
  }
}

export interface PgContext {
  osdId: number;
  store: ObjectStore;
  peers: PeerLink;
  clock: Clock;
  logger: Logger;
  settings: PgSettings;
  throttle: RecoveryThrottle;
}

const infoKey = 'info';
/** pgMeta keys of the objects this copy knows it lacks (written with the log it adopted, removed as they arrive). */
const missingKeyPrefix = 'missing/';

/** What a member told the primary while peering. */
interface MemberInfo {
  lastUpdate: Eversion;
  tail: Eversion;
  log: LogEntry[];
  incomplete: boolean;
  missing: Set<string>;
  /** EC hook: the shard index the member last activated with (-1: none). */
  ecShard?: number;
  /** EC hook: every change up to this is on every member, as far as that member knows. */
  ecCommitted?: Eversion;
}
/** EC hook: the shard index (acting position) this member last activated with, so a moved member is rebuilt whole. */
const ecShardKey = 'ec-shard';
/** EC hook: every change up to this version is on every member (so never undone); 16 version bytes. */
const ecCommittedKey = 'ec-committed';

export function pgName(pool: number, seed: number): string {
  return `${pool}.${seed.toString(16)}`;
}

interface StoredPg {
  log: PgLog;
  lastEpochStarted: number;
  incomplete: boolean;
  missing: Set<string>;
  inconsistentObjects: number;
}

interface Waiter {
  resolve(): void;
  reject(error: StorageError): void;
}

export interface OpOutcome {
  reply: wire.OsdOpReply.$Properties;
  chunks: Buffer[];
}

export class PlacementGroup {
  readonly poolId: number;
  readonly seed: number;
  readonly name: string;
  readonly #ctx: PgContext;
  #pool: Pool | undefined;
  #acting: number[] = [];
  #primary = -1;
  #intervalEpoch = 0;
  #state: PgState = 'stray';
  #log: PgLog;
  #lastEpochStarted = 0;
  #locks = new Map<string, Promise<void>>();
  #waiters: Waiter[] = [];
  #inflight = 0;
  #idle: (() => void)[] = [];
  #peeringGeneration = 0;
  #retryTimer: ReturnType<Clock['setTimer']> | undefined;
  /** This copy is being rebuilt by backfill (persisted): it must not be the authority for anything. */
  #incomplete = false;
  /** Objects this copy lacks (persisted under missing/). */
  #localMissing = new Set<string>();
  /** Primary, while active: objects each member still lacks (log-based recovery), recovered in the background. */
  #missing = new Map<number, Set<string>>();
  /** Primary, while active: members being backfilled; objects after `cursor` get log-only rep ops. */
  #backfill = new Map<number, { cursor: string; all: boolean; dirty: Set<string>; remaining: number }>();
  #degradedObjects = 0;
  /** The last logged change submitted to the store (FIFO: once it settles, every earlier one has). */
  #lastApply: Promise<void> = Promise.resolve();
  /** Bad copies the last scrub found and did not repair (the PG shows +inconsistent). */
  #inconsistentObjects = 0;
  #recovered = 0;
  #recoveryRate = { count: 0, sinceMs: 0, perSec: 0 };
  /** Objects and logical bytes, counted on activation and kept up to date by the primary's writes. */
  #usage: { objects: number; bytes: number } | undefined;
  /** EC hook: the erasure-coded side, for pools of type erasure. */
  #ec: EcBackend | undefined;
  /** EC hook: the shard index this member last activated with (-1: none). */
  #ecShardOnDisk = -1;
  /** EC hook: every change up to this is on every member; on the primary, versions of EC writes in flight. */
  #ecCommitted: Eversion = { epoch: 0, seq: 0 };
  #ecWritesInFlight: Eversion[] = [];

  private constructor(ctx: PgContext, poolId: number, seed: number, stored: StoredPg) {
    this.#ctx = ctx;
    this.poolId = poolId;
    this.seed = seed;
    this.name = pgName(poolId, seed);
    this.#log = stored.log;
    this.#lastEpochStarted = stored.lastEpochStarted;
    this.#incomplete = stored.incomplete;
    this.#localMissing = stored.missing;
    this.#inconsistentObjects = stored.inconsistentObjects;
  }

  /** Opens a PG from what the store holds (an empty history when it holds nothing). */
  static async load(ctx: PgContext, poolId: number, seed: number): Promise<PlacementGroup> {
    const pg = new PlacementGroup(ctx, poolId, seed, await PlacementGroup.#loadStored(ctx, pgName(poolId, seed)));
    const ecShard = await ctx.store.pgMetaGet(pg.name, ecShardKey);
    if (ecShard) pg.#ecShardOnDisk = Number(ecShard.toString());
    pg.#ecCommitted = decodeVersionBytes(await ctx.store.pgMetaGet(pg.name, ecCommittedKey));
    return pg;
  }

  /** The durable log, info and missing set of a PG, as the store holds them. */
  static async #loadStored(ctx: PgContext, name: string): Promise<StoredPg> {
    const infoBytes = await ctx.store.pgMetaGet(name, infoKey);
    const info = infoBytes ? decodePgInfo(infoBytes) : undefined;
    const entries: LogEntry[] = [];
    for await (const e of PlacementGroup.#metaPages(ctx, name, logKeyPrefix)) entries.push(entryFromWire(decodePgLogEntry(e.value)));
    const missing = new Set<string>();
    for await (const e of PlacementGroup.#metaPages(ctx, name, missingKeyPrefix)) missing.add(e.key.slice(missingKeyPrefix.length));
    const tail = versionFromWire(info?.logTail);
    const log = new PgLog(ctx.settings.logEntriesMax, tail, entries.filter((e) => compareVersions(e.version, tail) > 0));
    return { log, lastEpochStarted: Number(info?.lastEpochStarted ?? 0), incomplete: info?.incomplete ?? false, missing, inconsistentObjects: info?.inconsistentObjects ?? 0 };
  }

  static async *#metaPages(ctx: PgContext, name: string, prefix: string): AsyncGenerator<{ key: string; value: Buffer }> {
    let after: string | undefined;
    for (;;) {
      const page = await ctx.store.pgMetaList(name, { prefix, limit: 1000, ...(after ? { after } : {}) });
      yield* page.entries;
      if (!page.more || page.entries.length === 0) return;
      after = page.entries.at(-1)?.key;
    }
  }

  get state(): PgState {
    return this.#state;
  }

  get acting(): readonly number[] {
    return this.#acting;
  }

  get primary(): number {
    return this.#primary;
  }

  get lastUpdate(): Eversion {
    return this.#log.head;
  }

  get intervalEpoch(): number {
    return this.#intervalEpoch;
  }

  /** Object copies the members (this one included) still lack. */
  get degradedObjects(): number {
    let n = this.#degradedObjects;
    for (const names of this.#missing.values()) n += names.size;
    for (const b of this.#backfill.values()) n += b.remaining;
    return n;
  }

  /** The state as `shoal pg ls` shows it: active+recovering / active+backfilling while members catch up. */
  get reportedState(): string {
    if (this.#state !== 'active') return this.#state;
    const inconsistent = this.#inconsistentObjects > 0 ? '+inconsistent' : '';
    if (this.#backfill.size > 0) return 'active+backfilling' + inconsistent;
    if (this.recovering) return 'active+recovering' + inconsistent;
    return 'active' + inconsistent;
  }

  /** Members still lack objects (recovery or backfill under way). */
  get recovering(): boolean {
    return this.#backfill.size > 0 || [...this.#missing.values()].some((names) => names.size > 0);
  }

  /** Active with every member of a full-size acting set complete: copies held elsewhere are no longer needed. */
  get clean(): boolean {
    return this.#state === 'active' && !this.recovering && this.#acting.filter((o) => o >= 0).length === (this.#pool?.size ?? 0);
  }

  /** Object copies recovered in this interval, and lately per second. */
  get recovery(): { recovered: number; perSec: number } {
    const nowMs = this.#ctx.clock.monotonicMs();
    const r = this.#recoveryRate;
    const perSec = nowMs - r.sinceMs > 10_000 ? 0 : r.perSec;
    return { recovered: this.#recovered, perSec };
  }

  #countRecovered(): void {
    this.#recovered++;
    const nowMs = this.#ctx.clock.monotonicMs();
    const r = this.#recoveryRate;
    if (r.sinceMs === 0) r.sinceMs = nowMs;
    r.count++;
    const elapsedMs = nowMs - r.sinceMs;
    if (elapsedMs >= 2000) {
      r.perSec = (r.count * 1000) / elapsedMs;
      r.count = 0;
      r.sinceMs = nowMs;
    }
  }

  /** This PG's objects and bytes, when this OSD is its active primary and has counted them. */
  get usage(): { objects: number; bytes: number } | undefined {
    return this.#state === 'active' ? this.#usage : undefined;
  }

  async #countUsage(generation: number): Promise<void> {
    let objects = 0;
    let bytes = 0;
    let after = '';
    for (;;) {
      const page = await this.#ctx.store.listObjects(this.name, { limit: 1000, ...(after ? { after } : {}) });
      for (const name of page.names) {
        objects++;
        // EC hook: an erasure-coded shard is padded; the object's size is kept beside it.
        bytes += this.#ec
          ? decodeEcSize(await this.#ctx.store.getXattr(this.#oid(name), ecSizeXattr).catch(() => undefined))
          : (await this.#ctx.store.stat(this.#oid(name)).catch(() => ({ size: 0 }))).size;
      }
      if (!page.more || page.names.length === 0 || !this.#current(generation)) break;
      after = page.names.at(-1) ?? '';
    }
    if (this.#current(generation)) this.#usage = { objects, bytes };
  }

  #oid(name: string): ObjectId {
    return { pg: this.name, name };
  }

  /**
   * A new map: `acting` is this PG's up set in it. A changed acting set or primary starts a new interval; the
   * primary then peers. `forceNewInterval` when the OSD skipped epochs (it cannot tell what happened in between, so
   * it peers again). Returns whether the interval changed.
   */
  onMap(epoch: number, pool: Pool, upSet: number[], forceNewInterval = false): boolean {
    this.#pool = pool;
    // EC hook: holes of an erasure pool's up set (CRUSH_ITEM_NONE) are -1 here, as everywhere else in the PG.
    const acting = actingFromUp(upSet);
    if (pool.type === 'erasure' && !this.#ec) this.#ec = this.#ecBackend();
    const primary = acting.find((o) => o >= 0) ?? -1;
    const changed =
      forceNewInterval || primary !== this.#primary || acting.join(',') !== this.#acting.join(',') || this.#intervalEpoch === 0;
    if (!changed) return false;
    this.#acting = acting.slice();
    this.#primary = primary;
    this.#intervalEpoch = epoch;
    this.#peeringGeneration++;
    this.#retryTimer?.cancel();
    if (primary === this.#ctx.osdId) {
      this.#state = 'peering';
      void this.#peer(this.#peeringGeneration);
    } else {
      this.#state = acting.includes(this.#ctx.osdId) ? 'replica' : 'stray';
      this.#failWaiters(new StorageError('NOT_PRIMARY', `osd.${this.#ctx.osdId} is no longer primary of ${this.name}`));
    }
    return true;
  }

  /** EC hook: the erasure-coded side sees the PG through this narrow view. */
  #ecBackend(): EcBackend {
    return new EcBackend({
      name: this.name,
      poolId: this.poolId,
      seed: this.seed,
      osdId: this.#ctx.osdId,
      store: this.#ctx.store,
      peers: this.#ctx.peers,
      logger: this.#ctx.logger,
      pool: () => this.#pool as Pool,
      acting: () => this.#acting,
      intervalEpoch: () => this.#intervalEpoch,
    });
  }

  /** EC hook: the primary asks this member to undo its shard of a change fewer than k members hold. */
  async ecRollback(request: wire.EcRollbackRequest.$Properties): Promise<void> {
    this.#checkSender(request.from);
    if (!this.#ec) throw new StorageError('INVALID_ARGUMENT', `${this.name} is not in an erasure-coded pool`);
    await this.#ec.applyRollback(request.object ?? '', versionFromWire(request.version), this.#ecCommitted);
  }

  /**
   * EC hook (primary): an EC write settled. Once every member has every change up to `version` (nothing older still
   * in flight), those changes are committed: members are told (on the next rep-op, or at once when writes pause) and
   * never undo them.
   */
  #ecSettled(version: Eversion, everywhere: boolean): void {
    this.#ecWritesInFlight = this.#ecWritesInFlight.filter((v) => compareVersions(v, version) !== 0);
    if (!everywhere || this.#ecWritesInFlight.some((v) => compareVersions(v, version) < 0)) return;
    if (compareVersions(version, this.#ecCommitted) <= 0) return;
    this.#ecCommitted = version;
    if (this.#ecWritesInFlight.length > 0) return;
    const committed = version;
    const request = osdCodecs.ecCommitRequest.encode({ from: this.#ctx.osdId, pool: this.poolId, pgSeed: this.seed, epoch: this.#intervalEpoch, committed });
    void this.#ecPersistCommitted(committed).catch(() => {});
    for (const osd of this.#acting) if (osd >= 0 && osd !== this.#ctx.osdId) void this.#ctx.peers.call(osd, 'ec-commit', request).catch(() => {});
  }

  async #ecPersistCommitted(committed: Eversion): Promise<void> {
    await this.#ctx.store.apply(new Transaction().pgMetaSet(this.name, [[ecCommittedKey, encodeVersionBytes(committed)]]));
  }

  /** EC hook (member): the primary says every change up to `committed` is on every member. */
  async ecCommit(request: wire.EcCommitRequest.$Properties): Promise<void> {
    this.#checkSender(request.from);
    const committed = versionFromWire(request.committed);
    if (compareVersions(committed, this.#ecCommitted) <= 0) return;
    this.#ecCommitted = committed;
    await this.#ecPersistCommitted(committed);
  }

  /** EC hook: serves a member's `ec-read` (its shard of one object). */
  async ecRead(request: wire.EcReadRequest.$Properties): Promise<{ header: wire.EcReadReply.$Properties; payload: Buffer }> {
    if (!this.#ec) throw new StorageError('INVALID_ARGUMENT', `${this.name} is not in an erasure-coded pool`);
    return this.#ec.serveRead(request);
  }

  /** Stops activity (OSD shutdown). */
  close(): void {
    this.#peeringGeneration++;
    this.#retryTimer?.cancel();
    this.#failWaiters(new StorageError('SHUTTING_DOWN', 'OSD stopping'));
  }

  #failWaiters(error: StorageError): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(error);
  }

  #becomeActive(): void {
    this.#state = 'active';
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.resolve();
  }

  /** Resolves once the PG is active (primary); rejects when it is not primary or stays inactive too long. */
  async #whenActive(): Promise<void> {
    if (this.#primary !== this.#ctx.osdId) {
      throw new StorageError('NOT_PRIMARY', `osd.${this.#ctx.osdId} is not primary of ${this.name} (acting [${this.#acting.join(',')}])`);
    }
    if (this.#state === 'active') return;
    if (this.#waiters.length >= this.#ctx.settings.waitingOpsMax) throw new StorageError('BUSY', `${this.name}: too many ops waiting`);
    await new Promise<void>((resolve, reject) => {
      const timer = this.#ctx.clock.setTimer(this.#ctx.settings.opWaitMs, () => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        const undersized = this.#state === 'undersized';
        reject(
          new StorageError(
            undersized ? 'INSUFFICIENT_REPLICAS' : 'TIMEOUT',
            undersized
              ? `${this.name} has ${this.#acting.length} of min_size ${this.#pool?.minSize} members up`
              : `${this.name} did not become active within ${this.#ctx.settings.opWaitMs} ms (state ${this.#state})`,
          ),
        );
      });
      const waiter: Waiter = {
        resolve: () => {
          timer.cancel();
          resolve();
        },
        reject: (error) => {
          timer.cancel();
          reject(error);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  async #withObjectLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(name) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const chained = previous.then(() => current);
    this.#locks.set(name, chained);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#locks.get(name) === chained) this.#locks.delete(name);
    }
  }

  #nextVersion(): Eversion {
    const head = this.#log.head;
    // Never below the head: versions only grow, whoever was primary before.
    return head.epoch >= this.#intervalEpoch ? { epoch: head.epoch, seq: head.seq + 1 } : { epoch: this.#intervalEpoch, seq: 1 };
  }

  /** Submits a transaction that carries a log entry; `settled()` waits for it (and so for every earlier one). */
  #applyLogged(tx: Transaction): Promise<void> {
    const applied = this.#ctx.store.apply(tx);
    this.#lastApply = applied.catch(() => {});
    return applied;
  }

  /** Writes the PG's stored info alone (its state changed without a log entry). */
  async #persistInfo(): Promise<void> {
    await this.#ctx.store.apply(new Transaction().pgMetaSet(this.name, [[infoKey, encodePgInfo(this.#info())]]));
  }

  #info(): wire.PgStoredInfo.$Properties {
    return { lastUpdate: this.#log.head, logTail: this.#log.tail, lastEpochStarted: this.#lastEpochStarted, incomplete: this.#incomplete, inconsistentObjects: this.#inconsistentObjects };
  }

  /** Adds the log entry (and, when the log is trimmed, the deletions and the PG info) to `tx`; appends to the in-memory log. */
  #logInTransaction(tx: Transaction, entry: LogEntry): void {
    const trimmed = this.#log.append(entry);
    // The head is the newest entry on disk; the stored info changes only with the tail, when the log is trimmed.
    tx.pgMetaSet(this.name, trimmed.length > 0 ? [[logKey(entry.version), encodePgLogEntry(entryToWire(entry))], [infoKey, encodePgInfo(this.#info())]] : [[logKey(entry.version), encodePgLogEntry(entryToWire(entry))]]);
    if (trimmed.length > 0) tx.pgMetaRemove(this.name, trimmed.map((e) => logKey(e.version)));
  }

  // ---- primary: client ops ----

  async clientOp(request: wire.OsdOpRequest.$Properties, payload: Buffer): Promise<OpOutcome> {
    await this.#whenActive();
    const name = request.object ?? '';
    const ops = request.ops ?? [];
    const writes = ops.some((op) => isWriteOp(op.kind));
    return this.#withObjectLock(name, async () => {
      await this.#whenActive();
      const oid = this.#oid(name);
      const reqid = request.reqid?.client ? { client: request.reqid.client, tid: Number(request.reqid.tid ?? 0) } : null;
      if (writes && reqid) {
        const dup = this.#log.findDup(reqid);
        // EC hook: a change that peering undid (fewer than k members had it) is not a duplicate: apply it again.
        const undone = dup !== undefined && this.#ec !== undefined && (await this.#ecUndone(name, dup));
        if (dup && !undone) return { reply: { version: dup, results: ops.map(() => ({})) }, chunks: [] };
      }
      // A member that still lacks this object gets it first: the op then applies to the same state everywhere.
      if (writes) await this.#recoverOnDemand(name);
      const ec = this.#ec;
      const outcome = await (ec ? ec.evaluate(oid, ops) : evaluateOps(this.#ctx.store, oid, ops)).catch(async (error: unknown) => {
        if (!(error instanceof StorageError) || error.code !== 'CHECKSUM_MISMATCH') throw error;
        await this.#repairFromPeer(name, error);
        return evaluateOps(this.#ctx.store, oid, ops);
      });
      if (!writes) return { reply: { version: outcome.version, results: outcome.results }, chunks: outcome.chunks };
      const generation = this.#peeringGeneration;
      // EC hook: the primary encodes and each member gets its own shard of the change.
      const ecPlan = ec ? await ec.planWrite(oid, ops, payload, outcome) : undefined;
      let after: WritePlan;
      try {
        after = await this.#replicate(oid, ops, payload, outcome.exists, outcome.size, outcome.version, reqid, ecPlan);
      } finally {
        // Every member's write has settled (#replicate waits for all of them): the shards' buffers can be reused.
        ecPlan?.release();
      }
      if (this.#usage && this.#current(generation)) {
        this.#usage.objects += Number(after.existsAfter) - Number(outcome.exists);
        this.#usage.bytes += after.sizeAfter - outcome.size;
      }
      return { reply: { version: this.#log.head, results: outcome.results }, chunks: outcome.chunks };
    });
  }

  /** Replaces a locally corrupt object with a good copy from another member (all members agree while active). */
  async #repairFromPeer(name: string, cause: StorageError): Promise<void> {
    for (const osd of this.#acting) {
      if (osd < 0 || osd === this.#ctx.osdId) continue;
      try {
        await this.#pull(osd, name);
        this.#ctx.logger.warn('repaired a corrupt object from a replica', { pg: this.name, object: name, from: osd, error: cause.message });
        return;
      } catch (error) {
        this.#ctx.logger.warn('repair from replica failed', { pg: this.name, object: name, from: osd, error: String(error) });
      }
    }
    throw cause;
  }

  async #replicate(
    oid: ObjectId,
    ops: readonly wire.ObjectOp.$Properties[],
    payload: Buffer,
    existedBefore: boolean,
    sizeBefore: number,
    priorVersion: Eversion,
    reqid: LogEntry['reqid'],
    ecPlan?: EcWritePlan,
  ): Promise<WritePlan> {
    if (this.#state !== 'active') throw new StorageError('UNAVAILABLE', `${this.name} stopped being active`);
    const version = this.#nextVersion();
    const mtimeMs = this.#ctx.clock.nowMs();
    const tx = new Transaction();
    const own = ecPlan?.shard(this.#acting.indexOf(this.#ctx.osdId));
    const plan = own
      ? { ...buildWriteTransaction(tx, oid, own.ops, own.payload, version, existedBefore), sizeAfter: ecPlan?.sizeAfter ?? 0 }
      : buildWriteTransaction(tx, oid, ops, payload, version, existedBefore, sizeBefore);
    const entry: LogEntry = { version, priorVersion, object: oid.name, op: plan.existsAfter ? 'modify' : 'delete', reqid, mtimeMs };
    if (ecPlan && own) {
      const change = { existsAfter: ecPlan.existsAfter, sizeAfter: ecPlan.sizeAfter, index: this.#acting.indexOf(this.#ctx.osdId), version, priorVersion };
      EcBackend.shardMeta(tx, oid, change, own.rollback, own.payload);
    }
    this.#logInTransaction(tx, entry);
    const repOp = (fields: Partial<wire.RepOpRequest.$Properties>): Uint8Array =>
      osdCodecs.repOpRequest.encode({
        from: this.#ctx.osdId,
        pool: this.poolId,
        pgSeed: this.seed,
        epoch: this.#intervalEpoch,
        entry: entryToWire(entry),
        ops: ops as wire.ObjectOp.$Properties[],
        mtimeMs,
        ...fields,
      });
    const header = ecPlan ? new Uint8Array() : repOp({});
    let logOnly: Uint8Array | undefined;
    if (ecPlan) this.#ecWritesInFlight.push(version);
    this.#inflight++;
    // Submitted in one synchronous step: local commit queue and each replica connection see versions in order.
    const local = this.#applyLogged(tx);
    const remote = this.#acting
      .map((o, position) => ({ o, position }))
      .filter(({ o }) => o >= 0 && o !== this.#ctx.osdId)
      .map(({ o, position }) => {
        if (ecPlan) {
          // EC hook: member `position` gets shard `position` of the change.
          const shard = ecPlan.shard(position);
          const fields = { ops: shard.ops, ec: true, ecSize: ecPlan.sizeAfter, ecShard: position, ecCommitted: this.#ecCommitted, ...(shard.rollback ? { ecRollback: shard.rollback } : {}) };
          return this.#ctx.peers.call(o, 'rep-op', repOp(fields), shard.payload);
        }
        const backfill = this.#backfill.get(o);
        if (!backfill || backfill.all || oid.name <= backfill.cursor) return this.#ctx.peers.call(o, 'rep-op', header, payload);
        // Not backfilled that far yet: the member logs the entry; the backfill brings the object later.
        backfill.dirty.add(oid.name);
        logOnly ??= repOp({ ops: [], logOnly: true });
        return this.#ctx.peers.call(o, 'rep-op', logOnly);
      });
    try {
      const settled = await Promise.allSettled([local, ...remote]);
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (ecPlan) this.#ecSettled(version, !failed);
      if (!failed) return plan;
      // A member missed the change: re-peer so every member converges before anything else is acknowledged; the
      // client's resend is then recognised as a duplicate (or, if no member applied it, executed again).
      const failure = StorageError.from(failed.reason);
      this.#ctx.logger.warn('replication failed; re-peering', { pg: this.name, version: versionToString(version), error: failure.message });
      if (this.#state === 'active' && this.#primary === this.#ctx.osdId) {
        this.#state = 'peering';
        this.#peeringGeneration++;
        void this.#peer(this.#peeringGeneration);
      }
      // The store refused the change itself (too large, malformed): every member refuses it alike, so say why.
      const localFailure = settled[0]?.status === 'rejected' ? StorageError.from(settled[0].reason) : undefined;
      if (localFailure && (localFailure.code === 'TOO_LARGE' || localFailure.code === 'INVALID_ARGUMENT')) throw localFailure;
      throw new StorageError('UNAVAILABLE', `${this.name}: replication of ${versionToString(version)} failed: ${failure.message}`, { cause: failed.reason });
    } finally {
      this.#inflight--;
      if (this.#inflight === 0) for (const done of this.#idle.splice(0)) done();
    }
  }

  async list(after: string, limit: number): Promise<{ names: string[]; more: boolean }> {
    await this.#whenActive();
    return this.#ctx.store.listObjects(this.name, { limit, ...(after ? { after } : {}) });
  }

  // ---- replica side ----

  /**
   * Peer messages are accepted only from this PG's primary in this OSD's map (the OSD waits for the sender's epoch
   * first): an old primary that has not yet seen the new map cannot change a member of the new interval.
   */
  #checkSender(from: number | null | undefined): void {
    if ((from ?? -1) !== this.#primary) {
      throw new StorageError('STALE_EPOCH', `${this.name}: osd.${from} is not the primary (osd.${this.#primary} is, since epoch ${this.#intervalEpoch})`);
    }
  }

  /** Applies a change from the primary. Synchronous up to the store submission, so arrival order is commit order. */
  repOp(request: wire.RepOpRequest.$Properties, payload: Buffer): Promise<void> {
    this.#checkSender(request.from);
    const entry = entryFromWire(request.entry ?? {});
    if (compareVersions(entry.version, this.#log.head) <= 0) return Promise.resolve();
    const oid = this.#oid(entry.object);
    const tx = new Transaction();
    if (!request.logOnly) {
      const applied = buildWriteTransaction(tx, oid, request.ops ?? [], payload, entry.version, compareVersions(entry.priorVersion, { epoch: 0, seq: 0 }) > 0);
      // EC hook: a shard keeps the object's logical size beside it.
      if (request.ec) {
        const change = { existsAfter: applied.existsAfter, sizeAfter: Number(request.ecSize ?? 0), index: Number(request.ecShard ?? 0), version: entry.version, priorVersion: entry.priorVersion };
        EcBackend.shardMeta(tx, oid, change, request.ecRollback, payload);
        const committed = versionFromWire(request.ecCommitted);
        if (compareVersions(committed, this.#ecCommitted) > 0) {
          this.#ecCommitted = committed;
          tx.pgMetaSet(this.name, [[ecCommittedKey, encodeVersionBytes(committed)]]);
        }
      }
    }
    this.#logInTransaction(tx, entry);
    return this.#applyLogged(tx);
  }

  /**
   * Waits until every logged change this copy has submitted is committed (the store commits in submission order), so
   * what peering and recovery read of it (its log head, its objects) is durable state, never a change still in flight.
   */
  async settled(): Promise<void> {
    await this.#lastApply;
  }

  /** What this copy holds, as peering asks for it: only after its submitted changes have committed. */
  async info(withLog: boolean): Promise<wire.PgInfoReply.$Properties> {
    await this.settled();
    return {
      lastUpdate: this.#log.head,
      logTail: this.#log.tail,
      log: withLog ? this.#log.entries.map(entryToWire) : [],
      lastEpochStarted: this.#lastEpochStarted,
      exists: true,
      incomplete: this.#incomplete,
      missing: [...this.#localMissing],
      clean: this.#primary === this.#ctx.osdId && this.clean,
      acting: this.#acting.slice(),
      ecShard: this.#ecShardOnDisk + 1,
      ecCommitted: this.#ecCommitted,
    };
  }

  /** The whole state of one object (for recovery), data as the payload. */
  async readObjectState(name: string, omapAfter?: string): Promise<{ state: wire.ObjectState.$Properties; payload: Buffer }> {
    await this.settled();
    const oid = this.#oid(name);
    if (!(await this.#ctx.store.exists(oid))) return { state: { object: name, exists: false }, payload: Buffer.alloc(0) };
    const [data, stat, xattrs, omap] = await Promise.all([
      omapAfter === undefined ? this.#ctx.store.read(oid) : Promise.resolve(Buffer.alloc(0)),
      this.#ctx.store.stat(oid),
      this.#ctx.store.getXattrs(oid),
      this.#ctx.store.omapList(oid, { limit: this.#ctx.settings.recoveryPageSize, ...(omapAfter ? { after: omapAfter } : {}) }),
    ]);
    return {
      state: {
        object: name,
        exists: true,
        version: decodeVersionBytes(xattrs.get(versionXattr)),
        size: stat.size,
        mtimeMs: stat.mtimeMs,
        xattrs: [...xattrs].map(([key, value]) => ({ key, value })),
        omap: omap.entries.map((e) => ({ key: e.key, value: e.value })),
        omapMore: omap.more,
      },
      payload: data,
    };
  }

  /** Installs an object state pushed by the primary (replacing the local copy), or a further page of its omap. */
  async applyPush(request: wire.PushRequest.$Properties, payload: Buffer): Promise<void> {
    this.#checkSender(request.from);
    if (request.backfillComplete) {
      this.#incomplete = false;
      await this.#persistInfo();
      return;
    }
    const state = request.state ?? {};
    const oid = this.#oid(state.object ?? '');
    const tx = new Transaction();
    if (!request.appendOmap && this.#localMissing.delete(oid.name)) tx.pgMetaRemove(this.name, [missingKeyPrefix + oid.name]);
    const omap = (state.omap ?? []).map((e) => [e.key ?? '', e.value ?? new Uint8Array()] as const);
    if (request.appendOmap) {
      if (omap.length > 0) tx.omapSet(oid, omap);
    } else {
      tx.remove(oid);
      if (state.exists) {
        tx.writeFull(oid, payload);
        const xattrs = (state.xattrs ?? []).map((e) => [e.key ?? '', e.value ?? new Uint8Array()] as const);
        if (xattrs.length > 0) tx.setXattrs(oid, xattrs);
        if (omap.length > 0) tx.omapSet(oid, omap);
      }
    }
    await this.#ctx.store.apply(tx);
  }

  async scan(after: string, limit: number, deep = false): Promise<ScanPage> {
    await this.settled();
    const page = await this.#ctx.store.listObjects(this.name, { limit, ...(after ? { after } : {}) });
    const versions = await Promise.all(
      page.names.map(async (name) => decodeVersionBytes(await this.#ctx.store.getXattr(this.#oid(name), versionXattr).catch(() => undefined))),
    );
    if (!deep) return { names: page.names, versions, more: page.more };
    // A deep scan reads every object (the store verifies its block checksums); one at a time, to bound memory.
    const sizes: number[] = [];
    const crcs: number[] = [];
    const errors: string[] = [];
    for (const name of page.names) {
      try {
        const data = await this.#ctx.store.read(this.#oid(name));
        sizes.push(data.length);
        crcs.push(crc32c(data));
        errors.push('');
      } catch (error) {
        sizes.push(0);
        crcs.push(0);
        errors.push(StorageError.from(error).code);
      }
    }
    return { names: page.names, versions, more: page.more, sizes, crcs, errors };
  }

  /**
   * Scrub (primary): every member's copy of every object is compared: its version, and for a deep scrub also its
   * size and the CRC-32C of its data, read in full. The majority of readable copies is right (the primary's copy breaks a tie); a member whose copy is
   * missing, unreadable or different is reported, and with `repair` rewritten from a good copy. Changes in flight
   * while it runs can show as differences: scrub a quiet PG, or scrub again. A scrub compares the members of one
   * interval: if the acting set changes while it runs, the new members may still be being rebuilt, so it stops with
   * STALE_EPOCH (the client scrubs again once the PG is active) rather than report them as inconsistent.
   */
  async scrub(repair: boolean, deep = true): Promise<wire.PgScrubReply.$Properties> {
    let generation: number;
    do {
      await this.#whenActive();
      await this.#waitIdle();
      generation = this.#peeringGeneration;
    } while (this.#state !== 'active');
    const report = this.#ec && deep ? await this.#ecDeepScrub(this.#ec, repair, generation) : await this.#compareMembers(repair, deep, generation);
    this.#scrubStillCurrent(generation);
    const left = (report.inconsistent?.length ?? 0) - (repair ? (report.repaired ?? 0) : 0);
    // A light scrub cannot see what a deep one finds, so it never clears a deep scrub's finding.
    if ((deep || left > 0) && left !== this.#inconsistentObjects) {
      this.#inconsistentObjects = left;
      // Kept with the PG's info, so the finding survives a restart of this OSD.
      await this.#persistInfo();
    }
    return report;
  }

  #scrubStillCurrent(generation: number): void {
    if (!this.#current(generation)) {
      throw new StorageError('STALE_EPOCH', `${this.name}: the acting set changed during the scrub (now [${this.#acting.join(',')}] since epoch ${this.#intervalEpoch}); scrub again`);
    }
  }

  async #compareMembers(repair: boolean, deep: boolean, generation: number): Promise<wire.PgScrubReply.$Properties> {
    const members = this.#acting.filter((o) => o >= 0);
    const views = new Map<number, Map<string, string>>(); // osd -> object -> "version size crc" or "!error"
    for (const osd of members) {
      const view = new Map<string, string>();
      for await (const page of this.#scanPages(osd, deep)) {
        page.names.forEach((name, i) => {
          const error = page.errors?.[i] ?? '';
          const version = versionToString(page.versions[i] ?? { epoch: 0, seq: 0 });
          view.set(name, error ? `!${error}` : deep ? `${version} ${page.sizes?.[i] ?? 0} ${page.crcs?.[i] ?? 0}` : version);
        });
      }
      views.set(osd, view);
    }
    const names = [...new Set([...views.values()].flatMap((v) => [...v.keys()]))].sort();
    const inconsistent: wire.ScrubInconsistency.$Properties[] = [];
    let repaired = 0;
    for (const name of names) {
      this.#scrubStillCurrent(generation);
      const votes = new Map<string, number>();
      for (const osd of members) {
        const copy = views.get(osd)?.get(name);
        if (copy !== undefined && !copy.startsWith('!')) votes.set(copy, (votes.get(copy) ?? 0) + 1);
      }
      const own = views.get(this.#ctx.osdId)?.get(name);
      const best = Math.max(0, ...votes.values());
      const good = own !== undefined && votes.get(own) === best ? own : [...votes].find(([, n]) => n === best)?.[0];
      const bad = members.filter((osd) => views.get(osd)?.get(name) !== good);
      if (bad.length === 0) continue;
      const reasons = bad.map((osd) => {
        const copy = views.get(osd)?.get(name);
        return `osd.${osd}: ${copy === undefined ? 'missing' : copy.startsWith('!') ? copy.slice(1) : 'differs'}`;
      });
      inconsistent.push({ object: name, osds: bad, reason: good === undefined ? `no readable copy (${reasons.join(', ')})` : reasons.join(', ') });
      if (!repair || good === undefined) continue;
      const source = members.find((osd) => views.get(osd)?.get(name) === good) as number;
      if (bad.includes(this.#ctx.osdId)) await this.#pull(source, name);
      for (const osd of bad) if (osd !== this.#ctx.osdId) await this.#push(osd, name);
      repaired++;
    }
    this.#ctx.logger.info(deep ? 'deep scrub' : 'scrub', { pg: this.name, objects: names.length, inconsistent: inconsistent.length, repaired });
    return { objects: names.length, inconsistent, repaired, members };
  }

  /** EC hook: deep scrub of an erasure-coded PG: every shard read, versions compared, parity recomputed. */
  async #ecDeepScrub(ec: EcBackend, repair: boolean, generation: number): Promise<wire.PgScrubReply.$Properties> {
    const members = this.#acting.filter((o) => o >= 0);
    const names = new Set<string>();
    for (const osd of members) for await (const page of this.#scanPages(osd, false)) for (const n of page.names) names.add(n);
    const inconsistent: wire.ScrubInconsistency.$Properties[] = [];
    let repaired = 0;
    for (const name of [...names].sort()) {
      this.#scrubStillCurrent(generation);
      const { bad, reasons } = await ec.scrubObject(name);
      if (bad.length === 0) continue;
      const osds = bad.map((p) => this.#acting[p] ?? -1);
      inconsistent.push({ object: name, osds, reason: reasons.join(', ') });
      if (!repair) continue;
      for (const osd of osds) {
        if (osd === this.#ctx.osdId) await ec.recoverShard(name, osd, (state, payload) => this.applyPush({ from: this.#primary, epoch: this.#intervalEpoch, state }, payload));
        else if (osd >= 0) await ec.recoverShard(name, osd, (state, payload) => this.#pushState(osd, state, payload));
      }
      repaired++;
    }
    this.#ctx.logger.info('deep scrub (erasure)', { pg: this.name, objects: names.size, inconsistent: inconsistent.length, repaired });
    return { objects: names.size, inconsistent, repaired, members };
  }

  /**
   * Every page of a member's scan of this PG: this OSD's own store, or a peer through the `scan` op. Stops early
   * when `generation` is given and stops being current.
   */
  async *#scanPages(osd: number, deep: boolean, generation?: number): AsyncGenerator<ScanPage> {
    const limit = this.#ctx.settings.recoveryPageSize;
    let after = '';
    for (;;) {
      const page =
        osd === this.#ctx.osdId
          ? await this.scan(after, limit, deep)
          : this.#scanPage(osdCodecs.scanReply.decode((await this.#ctx.peers.call(osd, 'scan', osdCodecs.scanRequest.encode({ from: this.#ctx.osdId, pool: this.poolId, pgSeed: this.seed, epoch: this.#intervalEpoch, after, limit, deep }))).header));
      yield page;
      if (!page.more || page.names.length === 0 || (generation !== undefined && !this.#current(generation))) return;
      after = page.names.at(-1) ?? '';
    }
  }

  #scanPage(reply: wire.ScanReply.$Properties): ScanPage {
    return {
      names: reply.names ?? [],
      versions: (reply.versions ?? []).map(versionFromWire),
      more: reply.more ?? false,
      sizes: (reply.sizes ?? []).map(Number),
      crcs: reply.crcs ?? [],
      errors: reply.errors ?? [],
    };
  }

  /** Adopts the authoritative log sent by the primary at the end of peering. */
  async activate(request: wire.PgActivate.$Properties): Promise<void> {
    this.#checkSender(request.from);
    await this.#adoptLog(versionFromWire(request.logTail), (request.log ?? []).map(entryFromWire), Number(request.epoch ?? 0), request.missing ?? [], request.backfill ?? false);
    await this.#ecRecordShard();
  }

  /** EC hook: remembers the shard index this member serves in the interval being activated (it now holds it). */
  async #ecRecordShard(): Promise<void> {
    const position = this.#acting.indexOf(this.#ctx.osdId);
    if (!this.#ec || position < 0 || position === this.#ecShardOnDisk) return;
    await this.#ctx.store.apply(new Transaction().pgMetaSet(this.name, [[ecShardKey, Buffer.from(String(position))]]));
    this.#ecShardOnDisk = position;
  }

  /** EC hook: whether change `version` of `name` was undone (the object is older and nothing newer touched it). */
  async #ecUndone(name: string, version: Eversion): Promise<boolean> {
    if (this.#log.entries.some((e) => e.object === name && compareVersions(e.version, version) > 0)) return false;
    const oid = this.#oid(name);
    const current = (await this.#ctx.store.exists(oid)) ? decodeVersionBytes(await this.#ctx.store.getXattr(oid, versionXattr)) : { epoch: 0, seq: 0 };
    const entry = this.#log.entries.find((e) => compareVersions(e.version, version) === 0);
    return entry?.op === 'modify' && compareVersions(current, version) < 0;
  }

  /**
   * EC hook: before recovery, the objects of changes that not every member has are made decodable: a change fewer
   * than k members hold is undone on those that hold it (it was never acknowledged; the client's resend applies it
   * again).
   */
  async #ecReconcile(ec: EcBackend, infos: Map<number, { lastUpdate: Eversion; log: LogEntry[]; ecCommitted?: Eversion }>, generation: number): Promise<void> {
    // What any member knows to be on every member is never undone, whoever holds it now.
    for (const info of infos.values()) if (info.ecCommitted && compareVersions(info.ecCommitted, this.#ecCommitted) > 0) this.#ecCommitted = info.ecCommitted;
    const heads = [...infos.values()].map((i) => i.lastUpdate).sort(compareVersions);
    const oldest = heads[0] ?? { epoch: 0, seq: 0 };
    const names = new Set<string>();
    for (const info of infos.values()) for (const e of info.log) if (compareVersions(e.version, oldest) > 0) names.add(e.object);
    for (const name of [...names].sort()) {
      if (!this.#current(generation)) return;
      const ok = await ec
        .reconcile(name, this.#ecCommitted, async (osd, version) => {
          const request = { from: this.#ctx.osdId, pool: this.poolId, pgSeed: this.seed, epoch: this.#intervalEpoch, object: name, version };
          if (osd === this.#ctx.osdId) await ec.applyRollback(name, version, this.#ecCommitted);
          else await this.#ctx.peers.call(osd, 'ec-rollback', osdCodecs.ecRollbackRequest.encode(request));
        })
        .catch((error: unknown) => {
          // A member that cannot be asked: peer again later. Anything else (an undo record missing) concerns this
          // one object only and must not keep the PG from serving the others.
          if (error instanceof StorageError && (error.code === 'UNAVAILABLE' || error.code === 'TIMEOUT')) throw error;
          this.#ctx.logger.error('could not reconcile an object', { pg: this.name, object: name, error: String(error) });
          return true;
        });
      if (!ok) this.#ctx.logger.error('object has no version on k members; it cannot be read', { pg: this.name, object: name });
    }
  }

  /** EC hook: every object this OSD or `osd` has (a member in a new position needs all of them rebuilt). */
  async #ecAllNames(osd: number, generation: number): Promise<string[]> {
    const names = new Set<string>();
    for (const who of [this.#ctx.osdId, osd]) {
      for await (const page of this.#scanPages(who, false, generation)) for (const n of page.names) names.add(n);
    }
    return [...names].sort();
  }

  /**
   * Takes `entries` as this copy's history, recording in the same transaction what it lacks of it (`missing`) or
   * that it is to be backfilled as a whole: a crash before recovery finishes cannot make it look complete.
   */
  async #adoptLog(tail: Eversion, entries: LogEntry[], lastEpochStarted: number, missing: readonly string[] = [], backfill = false): Promise<void> {
    const old = this.#log.entries.map((e) => logKey(e.version));
    this.#log = new PgLog(this.#ctx.settings.logEntriesMax, tail, entries);
    this.#lastEpochStarted = lastEpochStarted;
    if (backfill) this.#incomplete = true;
    const tx = new Transaction();
    const added = missing.filter((name) => !this.#localMissing.has(name));
    for (const name of added) this.#localMissing.add(name);
    if (added.length > 0) tx.pgMetaSet(this.name, added.map((name) => [missingKeyPrefix + name, new Uint8Array()] as const));
    if (old.length > 0) tx.pgMetaRemove(this.name, old);
    tx.pgMetaSet(this.name, [
      ...entries.map((e) => [logKey(e.version), encodePgLogEntry(entryToWire(e))] as const),
      [infoKey, encodePgInfo(this.#info())] as const,
    ]);
    await this.#ctx.store.apply(tx);
  }

  // ---- peering and recovery (primary) ----

  async #waitIdle(): Promise<void> {
    if (this.#inflight === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #current(generation: number): boolean {
    return generation === this.#peeringGeneration;
  }

  async #peer(generation: number): Promise<void> {
    const pool = this.#pool;
    if (!pool) return;
    try {
      await this.#waitIdle();
      if (!this.#current(generation)) return;
      // Every submitted change has settled: the store now holds the truth. An entry whose local commit failed may
      // still sit in memory; peering starts from what is durable.
      const stored = await PlacementGroup.#loadStored(this.#ctx, this.name);
      if (!this.#current(generation)) return;
      this.#log = stored.log;
      this.#incomplete = stored.incomplete;
      this.#localMissing = stored.missing;
      this.#missing = new Map();
      this.#backfill = new Map();
      this.#recovered = 0;
      const self = this.#ctx.osdId;
      const members = this.#acting.filter((o) => o >= 0);
      if (members.length < pool.minSize) {
        this.#state = 'undersized';
        this.#ctx.logger.info('pg undersized; waiting for members', { pg: this.name, acting: members.join(','), minSize: pool.minSize });
        return;
      }
      const infos = new Map<number, MemberInfo>();
      infos.set(self, { lastUpdate: this.#log.head, tail: this.#log.tail, log: this.#log.entries.slice(), incomplete: this.#incomplete, missing: new Set(this.#localMissing) });
      await Promise.all(
        members
          .filter((o) => o !== self)
          .map(async (osd) => {
            const reply = await this.#ctx.peers.call(osd, 'pg-info', osdCodecs.pgInfoRequest.encode({ from: self, pool: this.poolId, pgSeed: this.seed, epoch: this.#intervalEpoch, withLog: true }));
            const info = osdCodecs.pgInfoReply.decode(reply.header);
            infos.set(osd, {
              lastUpdate: versionFromWire(info.lastUpdate),
              tail: versionFromWire(info.logTail),
              log: (info.log ?? []).map(entryFromWire),
              incomplete: info.incomplete ?? false,
              missing: new Set(info.missing ?? []),
              ecShard: Number(info.ecShard ?? 0) - 1,
              ecCommitted: versionFromWire(info.ecCommitted),
            });
          }),
      );
      if (!this.#current(generation)) return;
      // The authority: the newest history among the copies not being rebuilt by backfill (this one on a tie).
      let authority: number | undefined;
      for (const [osd, info] of infos) {
        if (info.incomplete) continue;
        const best = authority === undefined ? undefined : (infos.get(authority) as MemberInfo).lastUpdate;
        if (best === undefined || compareVersions(info.lastUpdate, best) > 0) authority = osd;
      }
      if (authority === undefined) {
        // Every member's copy is half-built: the complete copies are on OSDs outside the acting set.
        this.#state = 'incomplete';
        throw new StorageError('UNAVAILABLE', `${this.name}: no member of [${members.join(',')}] holds a complete copy`);
      }
      const auth = infos.get(authority) as MemberInfo;
      const behind: number[] = [];
      if (this.#ec) {
        // EC hook: changes fewer than k members hold are undone first; then shards are rebuilt from k others (not
        // copied), every member before the PG goes active.
        await this.#ecReconcile(this.#ec, infos, generation);
        if (!this.#current(generation)) return;
        if (authority !== self) {
          await this.#ecRecoverSelfFrom(authority, auth, generation);
          if (!this.#current(generation)) return;
          await this.#adoptLog(auth.tail, auth.log, this.#lastEpochStarted);
        } else if (this.#ecShardOnDisk !== this.#acting.indexOf(self)) {
          // The newest history is here, but CRUSH moved this OSD to another shard index: rebuild its shards.
          await this.#ecRecoverSelfFrom(authority, auth, generation);
          if (!this.#current(generation)) return;
        }
        for (const osd of members) {
          if (osd === self) continue;
          await this.#ecRecoverPeer(osd, infos.get(osd) as MemberInfo, generation);
          if (!this.#current(generation)) return;
        }
      } else {
        const needs = new Map<number, { names: Set<string>; backfill: boolean }>();
        for (const [osd, info] of infos) {
          const backfill = osd !== authority && (info.incomplete || compareVersions(info.lastUpdate, auth.tail) < 0);
          const names = new Set(info.missing);
          if (!backfill && osd !== authority) for (const name of PlacementGroup.diffFromLog(info, auth)) names.add(name);
          needs.set(osd, { names: backfill ? new Set() : names, backfill });
        }
        // A source for an object: a member that is up to date and holds it.
        const sourceFor = (name: string): number | undefined => {
          const ok = (osd: number) => {
            const need = needs.get(osd);
            return need !== undefined && !need.backfill && !need.names.has(name);
          };
          return ok(authority as number) ? authority : members.find(ok);
        };
        // This OSD serves the PG's reads, so it catches up first (the PG is not active meanwhile).
        await this.#recoverSelf(authority, needs.get(self) as { names: Set<string>; backfill: boolean }, sourceFor, generation);
        if (!this.#current(generation)) return;
        if (authority !== self || this.#incomplete) {
          this.#incomplete = false;
          await this.#adoptLog(auth.tail, auth.log, this.#lastEpochStarted);
        }
        needs.set(self, { names: new Set(this.#localMissing), backfill: false });
        // Members that lack objects catch up in the background, unless too few would be complete to go active.
        behind.push(...members.filter((o) => o !== self && ((needs.get(o)?.backfill ?? false) || (needs.get(o)?.names.size ?? 0) > 0)));
        for (const osd of behind) {
          const need = needs.get(osd) as { names: Set<string>; backfill: boolean };
          if (need.backfill) this.#backfill.set(osd, { cursor: '', all: false, dirty: new Set(), remaining: 0 });
          else this.#missing.set(osd, need.names);
        }
      }
      await Promise.all(
        members
          .filter((o) => o !== self)
          .map((osd) =>
            this.#ctx.peers.call(osd, 'pg-activate', osdCodecs.pgActivate.encode({
              from: self,
              pool: this.poolId,
              pgSeed: this.seed,
              epoch: this.#intervalEpoch,
              lastUpdate: this.#log.head,
              logTail: this.#log.tail,
              log: this.#log.entries.map(entryToWire),
              missing: [...(this.#missing.get(osd) ?? [])],
              backfill: this.#backfill.has(osd),
            })),
          ),
      );
      if (!this.#current(generation)) return;
      for (const osd of behind.slice(0, Math.max(0, pool.minSize - (members.length - behind.length)))) {
        await this.#recoverMember(osd, generation);
        if (!this.#current(generation)) return;
      }
      await this.#ecRecordShard();
      this.#lastEpochStarted = this.#intervalEpoch;
      await this.#persistInfo();
      if (!this.#current(generation)) return;
      this.#degradedObjects = 0;
      this.#usage = undefined;
      this.#becomeActive();
      void this.#countUsage(generation).catch(() => {});
      void this.#recoverInBackground(generation);
      this.#ctx.logger.debug('pg active', { pg: this.name, acting: members.join(','), lastUpdate: versionToString(this.#log.head), recovering: behind.join(',') });
    } catch (error) {
      if (!this.#current(generation)) return;
      this.#ctx.logger.info('peering failed; will retry', { pg: this.name, error: String(error) });
      this.#retryPeering(generation);
    }
  }

  #retryPeering(generation: number): void {
    this.#retryTimer = this.#ctx.clock.setTimer(this.#ctx.settings.peeringRetryMs, () => {
      if (this.#current(generation)) void this.#peer(generation);
    });
  }

  /** Brings this OSD's copy up to the authority's: the objects it lacks, or all of them when it needs a backfill. */
  async #recoverSelf(authority: number, need: { names: Set<string>; backfill: boolean }, sourceFor: (name: string) => number | undefined, generation: number): Promise<void> {
    const names = need.backfill ? await this.#backfillDiff(authority, generation, 'pull') : [...need.names].sort();
    if (need.backfill && !this.#incomplete) {
      // Half-pulled objects must not make this copy look complete after a crash.
      this.#incomplete = true;
      await this.#persistInfo();
    }
    this.#degradedObjects = names.length;
    for (const name of names) {
      if (!this.#current(generation)) return;
      const source = need.backfill ? authority : sourceFor(name);
      if (source === undefined || source === this.#ctx.osdId) {
        this.#ctx.logger.error('no member holds a current copy of an object', { pg: this.name, object: name });
        continue;
      }
      await this.#ctx.throttle.run(() => this.#pull(source, name));
      this.#degradedObjects--;
      this.#countRecovered();
    }
  }

  /** Recovers everything one member lacks: its missing objects, or a whole backfill. */
  async #recoverMember(osd: number, generation: number): Promise<void> {
    const names = this.#missing.get(osd);
    if (names) {
      for (const name of [...names].sort()) {
        if (!this.#current(generation)) return;
        await this.#ctx.throttle.run(() =>
          this.#withObjectLock(name, async () => {
            if (!this.#current(generation) || !names.has(name)) return;
            await this.#push(osd, name);
            names.delete(name);
            this.#countRecovered();
          }),
        );
      }
      if (names.size === 0 && this.#current(generation)) this.#missing.delete(osd);
    }
    if (this.#backfill.has(osd)) await this.#backfillPeer(osd, generation);
  }

  async #recoverInBackground(generation: number): Promise<void> {
    try {
      for (const osd of [...new Set([...this.#missing.keys(), ...this.#backfill.keys()])]) {
        await this.#recoverMember(osd, generation);
        if (!this.#current(generation)) return;
      }
    } catch (error) {
      if (!this.#current(generation)) return;
      // A member stopped answering: peer again (the map may be changing too) and carry on from what is left.
      this.#ctx.logger.info('recovery failed; re-peering', { pg: this.name, error: String(error) });
      if (this.#state === 'active' && this.#primary === this.#ctx.osdId) {
        this.#state = 'peering';
        this.#peeringGeneration++;
        this.#retryPeering(this.#peeringGeneration);
      }
    }
  }

  /** Before a write: members still lacking the object get it now, so the write applies to the same state there. */
  async #recoverOnDemand(name: string): Promise<void> {
    for (const [osd, names] of this.#missing) {
      if (!names.has(name)) continue;
      await this.#push(osd, name);
      names.delete(name);
      this.#countRecovered();
    }
  }

  /**
   * Backfill of a member, in name order: objects that differ are pushed under their object lock and the cursor
   * moves past them; writes to objects after the cursor reach the member as log entries only and are pushed at the
   * end (`dirty`). Then the member is told its copy is complete.
   */
  async #backfillPeer(osd: number, generation: number): Promise<void> {
    const backfill = this.#backfill.get(osd);
    if (!backfill) return;
    const differing = await this.#backfillDiff(osd, generation, 'push');
    backfill.remaining = differing.length;
    const pushOne = (name: string, moveCursor: boolean) =>
      this.#ctx.throttle.run(() =>
        this.#withObjectLock(name, async () => {
          if (!this.#current(generation)) return;
          await this.#push(osd, name);
          if (moveCursor) backfill.cursor = name;
          backfill.remaining = Math.max(0, backfill.remaining - 1);
          this.#countRecovered();
        }),
      );
    for (const name of differing) {
      if (!this.#current(generation)) return;
      await pushOne(name, true);
    }
    if (!this.#current(generation)) return;
    backfill.all = true;
    const dirty = [...backfill.dirty].sort();
    backfill.remaining = dirty.length;
    for (const name of dirty) {
      if (!this.#current(generation)) return;
      await pushOne(name, false);
    }
    if (!this.#current(generation)) return;
    await this.#ctx.peers.call(osd, 'push', osdCodecs.pushRequest.encode({ from: this.#ctx.osdId, pool: this.poolId, pgSeed: this.seed, epoch: this.#intervalEpoch, backfillComplete: true }));
    if (this.#current(generation)) this.#backfill.delete(osd);
  }

  /**
   * Objects whose state on a member differs from the authority's, from the logs alone: the authority's entries newer
   * than the member's head, plus the member's divergent entries (ones the authority never had).
   */
  static diffFromLog(member: { lastUpdate: Eversion; log: readonly LogEntry[] }, authority: { tail: Eversion; log: readonly LogEntry[] }): string[] {
    const names = new Set<string>();
    const known = new Set(authority.log.map((e) => versionToString(e.version)));
    for (const e of authority.log) if (compareVersions(e.version, member.lastUpdate) > 0) names.add(e.object);
    for (const e of member.log) {
      if (!known.has(versionToString(e.version)) && compareVersions(e.version, authority.tail) > 0) names.add(e.object);
    }
    return [...names].sort();
  }

  async #ecRecoverSelfFrom(authority: number, info: { lastUpdate: Eversion; tail: Eversion; log: LogEntry[] }, generation: number): Promise<void> {
    const reachable = compareVersions(this.#log.head, info.tail) >= 0;
    // EC hook: in a new position every shard here is of another index: rebuild them all.
    const moved = this.#ec !== undefined && this.#ecShardOnDisk !== this.#acting.indexOf(this.#ctx.osdId);
    const names = moved
      ? await this.#ecAllNames(authority, generation)
      : reachable
        ? PlacementGroup.diffFromLog({ lastUpdate: this.#log.head, log: this.#log.entries }, info)
        : await this.#backfillDiff(authority, generation, 'pull');
    this.#degradedObjects = names.length;
    for (const name of names) {
      if (!this.#current(generation)) return;
      // EC hook: this OSD's shard is rebuilt from k others, not copied.
      if (this.#ec) await this.#ec.recoverShard(name, this.#ctx.osdId, (state, payload) => this.applyPush({ from: this.#primary, epoch: this.#intervalEpoch, state }, payload));
      else await this.#pull(authority, name);
      this.#degradedObjects--;
    }
  }

  async #pull(from: number, name: string): Promise<void> {
    let omapAfter: string | undefined;
    let first = true;
    for (;;) {
      const reply = await this.#ctx.peers.call(from, 'pull', osdCodecs.pullRequest.encode({ from: this.#ctx.osdId, pool: this.poolId, pgSeed: this.seed, epoch: this.#intervalEpoch, object: name, ...(omapAfter !== undefined ? { omapAfter } : {}) }));
      const state = osdCodecs.objectState.decode(reply.header);
      await this.applyPush({ from: this.#ctx.osdId, epoch: this.#intervalEpoch, state, appendOmap: !first }, reply.payload);
      if (!state.exists || !state.omapMore || (state.omap ?? []).length === 0) return;
      omapAfter = state.omap?.at(-1)?.key ?? '';
      first = false;
    }
  }

  async #push(to: number, name: string): Promise<void> {
    let omapAfter: string | undefined;
    let first = true;
    for (;;) {
      const { state, payload } = await this.readObjectState(name, omapAfter);
      await this.#ctx.peers.call(to, 'push', osdCodecs.pushRequest.encode({ from: this.#ctx.osdId, pool: this.poolId, pgSeed: this.seed, epoch: this.#intervalEpoch, state, appendOmap: !first }), payload);
      if (!state.exists || !state.omapMore || (state.omap ?? []).length === 0) return;
      omapAfter = state.omap?.at(-1)?.key ?? '';
      first = false;
    }
  }

  async #pushState(to: number, state: wire.ObjectState.$Properties, payload: Buffer): Promise<void> {
    await this.#ctx.peers.call(to, 'push', osdCodecs.pushRequest.encode({ from: this.#ctx.osdId, pool: this.poolId, pgSeed: this.seed, epoch: this.#intervalEpoch, state }), payload);
  }

  async #ecRecoverPeer(osd: number, info: MemberInfo, generation: number): Promise<void> {
    const reachable = compareVersions(info.lastUpdate, this.#log.tail) >= 0;
    // EC hook: a member in a new position (or new to the PG) has every shard to rebuild.
    const moved = this.#ec !== undefined && info.ecShard !== this.#acting.indexOf(osd);
    const names = moved
      ? await this.#ecAllNames(osd, generation)
      : reachable
        ? PlacementGroup.diffFromLog(info, { tail: this.#log.tail, log: this.#log.entries })
        : await this.#backfillDiff(osd, generation, 'push');
    this.#degradedObjects += names.length;
    for (const name of names) {
      if (!this.#current(generation)) return;
      // EC hook: the member's own shard is rebuilt from k others and pushed.
      if (this.#ec) await this.#ec.recoverShard(name, osd, (state, payload) => this.#pushState(osd, state, payload));
      else await this.#push(osd, name);
      this.#degradedObjects--;
    }
  }

  /** Backfill: compares every object and version of this PG here and on `osd`; returns the names that differ. */
  async #backfillDiff(osd: number, generation: number, direction: 'pull' | 'push'): Promise<string[]> {
    const remote = new Map<string, string>();
    for await (const page of this.#scanPages(osd, false, generation)) {
      page.names.forEach((n, i) => remote.set(n, versionToString(page.versions[i] as Eversion)));
    }
    const differing = new Set<string>();
    const local = new Set<string>();
    for await (const page of this.#scanPages(this.#ctx.osdId, false)) {
      page.names.forEach((n, i) => {
        local.add(n);
        if (remote.get(n) !== versionToString(page.versions[i] as Eversion)) differing.add(n);
      });
    }
    for (const name of remote.keys()) if (!local.has(name)) differing.add(name);
    this.#ctx.logger.info('backfill', { pg: this.name, peer: osd, direction, objects: differing.size });
    return [...differing].sort();
  }
}
