/**
 * FaultyStore wraps any ObjectStore and misbehaves on purpose, by seed, the way a failing disk does: I/O errors on
 * chosen or random calls, a lost acknowledgement (applied, but the caller is told it failed), a crash (every call
 * in flight or later fails; what was in flight may or may not have been applied), and damage to stored bytes
 * (delegated to the inner store's `corrupt`). With no faults planned it is a transparent pass-through.
 */
import { Random, StorageError, type ErrorCode } from '../../src/common/index.js';
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
} from './types.js';
import { isCorruptible } from './types.js';

export interface FaultPlan {
  /** 1-based numbers of `apply` calls that fail. */
  failApplyCalls?: readonly number[];
  /** Chance that any `apply` fails. */
  applyErrorProbability?: number;
  /**
   * When an injected `apply` error strikes: `before` the inner store sees the transaction (nothing applied), `after`
   * it applied it (a lost ack, as when a disk acknowledges and the reply is lost), or either by seed.
   */
  applyErrorTiming?: 'before' | 'after' | 'random';
  /** 1-based numbers of read calls (read, stat, getXattr(s), omapGet/List, list*, pgMeta*) that fail. */
  failReadCalls?: readonly number[];
  readErrorProbability?: number;
  /** The code of injected errors; INTERNAL stands for EIO. */
  errorCode?: ErrorCode;
}

export interface FaultyStoreStats {
  applyCalls: number;
  readCalls: number;
  injectedErrors: number;
}

export class FaultyStore implements ObjectStore, CorruptibleStore {
  readonly inner: ObjectStore;
  readonly #random: Random;
  #plan: FaultPlan;
  #crashed = false;
  #crashWaiters = new Set<(error: StorageError) => void>();
  #inFlight = new Set<Promise<unknown>>();
  readonly stats: FaultyStoreStats = { applyCalls: 0, readCalls: 0, injectedErrors: 0 };

  constructor(inner: ObjectStore, options: { seed: number; plan?: FaultPlan }) {
    this.inner = inner;
    this.#random = new Random(options.seed);
    this.#plan = options.plan ?? {};
  }

  /** Replaces the fault plan (call numbers keep counting from where they are). */
  setPlan(plan: FaultPlan): void {
    this.#plan = plan;
  }

  get crashed(): boolean {
    return this.#crashed;
  }

  /**
   * Simulates a crash: every call in flight and every later call fails with SHUTTING_DOWN until `restart`. Calls in
   * flight may still complete inside the inner store; their callers cannot know (as after a real crash).
   */
  crash(): void {
    this.#crashed = true;
    const error = new StorageError('SHUTTING_DOWN', 'simulated crash');
    for (const reject of this.#crashWaiters) reject(error);
    this.#crashWaiters.clear();
  }

  /**
   * After a crash: waits for the inner store to settle, restarts it (which runs its recovery) and accepts calls
   * again. A store that can drop its memory the way a killed process does (`crashForTest`) is restarted that way.
   */
  async restart(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    const crashable = this.inner as ObjectStore & { crashForTest?: () => Promise<void> };
    if (this.#crashed && typeof crashable.crashForTest === 'function') await crashable.crashForTest();
    else await this.inner.stop();
    await this.inner.start();
    this.#crashed = false;
  }

  async start(): Promise<void> {
    await this.inner.start();
    this.#crashed = false;
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    await this.inner.stop();
  }

  #injected(what: string): StorageError {
    this.stats.injectedErrors++;
    return new StorageError(this.#plan.errorCode ?? 'INTERNAL', `injected fault: ${what}`);
  }

  #strikes(callNumber: number, calls: readonly number[] | undefined, probability: number | undefined): boolean {
    if (calls?.includes(callNumber)) return true;
    return probability !== undefined && probability > 0 && this.#random.chance(probability);
  }

  /** Runs `call` on the inner store unless crashed; a crash while it runs rejects the caller at once. */
  #guard<T>(call: () => Promise<T>): Promise<T> {
    if (this.#crashed) return Promise.reject(new StorageError('SHUTTING_DOWN', 'simulated crash'));
    const inner = call();
    this.#inFlight.add(inner);
    void inner.then(
      () => this.#inFlight.delete(inner),
      () => this.#inFlight.delete(inner),
    );
    return new Promise<T>((resolve, reject) => {
      this.#crashWaiters.add(reject);
      inner.then(
        (value) => {
          this.#crashWaiters.delete(reject);
          if (this.#crashed) reject(new StorageError('SHUTTING_DOWN', 'simulated crash'));
          else resolve(value);
        },
        (error: unknown) => {
          this.#crashWaiters.delete(reject);
          reject(error);
        },
      );
    });
  }

  async apply(tx: TransactionLike): Promise<void> {
    const callNumber = ++this.stats.applyCalls;
    if (!this.#crashed && this.#strikes(callNumber, this.#plan.failApplyCalls, this.#plan.applyErrorProbability)) {
      const timing = this.#plan.applyErrorTiming ?? 'before';
      const after = timing === 'after' || (timing === 'random' && this.#random.chance(0.5));
      if (!after) throw this.#injected(`apply call ${callNumber} failed before applying`);
      await this.#guard(() => this.inner.apply(tx));
      throw this.#injected(`apply call ${callNumber} applied but its acknowledgement was lost`);
    }
    return this.#guard(() => this.inner.apply(tx));
  }

  #read<T>(what: string, call: () => Promise<T>): Promise<T> {
    const callNumber = ++this.stats.readCalls;
    if (!this.#crashed && this.#strikes(callNumber, this.#plan.failReadCalls, this.#plan.readErrorProbability)) {
      return Promise.reject(this.#injected(`${what} (read call ${callNumber})`));
    }
    return this.#guard(call);
  }

  read(oid: ObjectId, offset?: number, length?: number): Promise<Buffer> {
    return this.#read('read', () => this.inner.read(oid, offset, length));
  }

  stat(oid: ObjectId): Promise<ObjectStat> {
    return this.#read('stat', () => this.inner.stat(oid));
  }

  exists(oid: ObjectId): Promise<boolean> {
    return this.#read('exists', () => this.inner.exists(oid));
  }

  getXattr(oid: ObjectId, name: string): Promise<Buffer | undefined> {
    return this.#read('getXattr', () => this.inner.getXattr(oid, name));
  }

  getXattrs(oid: ObjectId): Promise<Map<string, Buffer>> {
    return this.#read('getXattrs', () => this.inner.getXattrs(oid));
  }

  omapGet(oid: ObjectId, keys: readonly string[]): Promise<Map<string, Buffer>> {
    return this.#read('omapGet', () => this.inner.omapGet(oid, keys));
  }

  omapList(oid: ObjectId, options: ListOptions): Promise<KeyValuePage> {
    return this.#read('omapList', () => this.inner.omapList(oid, options));
  }

  listObjects(pg: string, options: ListOptions): Promise<NamePage> {
    return this.#read('listObjects', () => this.inner.listObjects(pg, options));
  }

  listCollections(): Promise<string[]> {
    return this.#read('listCollections', () => this.inner.listCollections());
  }

  pgMetaGet(pg: string, key: string): Promise<Buffer | undefined> {
    return this.#read('pgMetaGet', () => this.inner.pgMetaGet(pg, key));
  }

  pgMetaList(pg: string, options: ListOptions): Promise<KeyValuePage> {
    return this.#read('pgMetaList', () => this.inner.pgMetaList(pg, options));
  }

  statfs(): Promise<StoreStats> {
    return this.#read('statfs', () => this.inner.statfs());
  }

  async corrupt(oid: ObjectId, damage: { kind: 'flip' | 'zero'; offset: number; length?: number }): Promise<void> {
    if (!isCorruptible(this.inner)) throw new TypeError('the wrapped store cannot damage its data');
    await this.inner.corrupt(oid, damage);
  }
}
