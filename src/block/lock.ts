/**
 * The exclusive lock of an image: xattr `lock` on its header object holds `{owner, expiresMs}`, taken and renewed
 * only by compare-and-swap, so two writers can never both hold it. A holder renews its lease every third of its
 * lifetime; a holder that died stops renewing, and once its lease has expired another writer may break the lock,
 * but only when it asks to.
 */
import { StorageError, isStorageError, type Logger } from '../common/index.js';
import type { ObjectClient } from '../client/index.js';
import { wire } from '../protocol/index.js';

const Kind = wire.ObjectOp.Kind;
export const lockXattr = 'lock';

export interface LockRecord {
  owner: string;
  expiresMs: number;
}

export function describeLock(record: LockRecord, nowMs: number): string {
  return record.expiresMs < nowMs
    ? `${record.owner}, whose lease expired ${Math.round((nowMs - record.expiresMs) / 1000)} s ago (a dead holder: break it with --break-lock)`
    : `${record.owner} (lease renewed, valid ${Math.round((record.expiresMs - nowMs) / 1000)} s more)`;
}

export class ImageLock {
  readonly #client: ObjectClient;
  readonly #pool: string;
  readonly #object: string;
  readonly #owner: string;
  readonly #ttlMs: number;
  readonly #logger: Logger;
  #held: Buffer | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lost = false;
  #renewing = false;
  #renewal: Promise<void> = Promise.resolve();

  constructor(client: ObjectClient, pool: string, object: string, owner: string, ttlMs: number, logger: Logger) {
    this.#client = client;
    this.#pool = pool;
    this.#object = object;
    this.#owner = owner;
    this.#ttlMs = ttlMs;
    this.#logger = logger;
  }

  get lost(): boolean {
    return this.#lost;
  }

  async #current(): Promise<Buffer | undefined> {
    try {
      return await this.#client.getXattr(this.#pool, this.#object, lockXattr);
    } catch (error) {
      if (isStorageError(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
  }

  #record(): Buffer {
    return Buffer.from(JSON.stringify({ owner: this.#owner, expiresMs: Date.now() + this.#ttlMs } satisfies LockRecord));
  }

  /** Takes the lock; BUSY when another owner holds it (unless `breakDead` and its lease expired). */
  async acquire(breakDead: boolean): Promise<void> {
    const current = await this.#current();
    if (current && current.length > 0) {
      const record = parseLock(current);
      const mine = record.owner === this.#owner;
      if (!mine && !(breakDead && record.expiresMs < Date.now())) {
        throw new StorageError('BUSY', `image ${this.#pool}/${this.#object.replace(/\.header$/, '')} is locked by ${describeLock(record, Date.now())}`);
      }
      if (!mine) this.#logger.warn('breaking the lock of a dead holder', { owner: record.owner });
    }
    const next = this.#record();
    try {
      await this.#client.compareAndSwap(this.#pool, this.#object, lockXattr, current, [{ kind: Kind.KIND_SETXATTR, name: lockXattr, value: next }]);
    } catch (error) {
      if (isStorageError(error, 'PRECONDITION_FAILED')) throw new StorageError('BUSY', `image ${this.#object.replace(/\.header$/, '')}: another writer took the lock at the same moment`);
      throw error;
    }
    this.#held = next;
    this.#timer = setInterval(() => {
      if (!this.#renewing) this.#renewal = this.#renew();
    }, Math.max(500, Math.floor(this.#ttlMs / 3)));
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    // One renewal at a time: a slow one overlapping the next would fail its compare-and-swap against our own record.
    if (!this.#held || this.#renewing) return;
    this.#renewing = true;
    const next = this.#record();
    try {
      await this.#client.compareAndSwap(this.#pool, this.#object, lockXattr, this.#held, [{ kind: Kind.KIND_SETXATTR, name: lockXattr, value: next }]);
      this.#held = next;
    } catch (error) {
      // A resent request may have applied already: still ours if the record is ours.
      const current = isStorageError(error, 'PRECONDITION_FAILED') ? await this.#current().catch(() => undefined) : undefined;
      if (current && parseLock(current).owner === this.#owner) {
        this.#held = current;
      } else if (isStorageError(error, 'PRECONDITION_FAILED')) {
        // Someone broke our lock (they judged us dead): stop writing at once.
        this.#lost = true;
        this.#held = undefined;
        clearInterval(this.#timer);
        this.#logger.error('image lock lost: another writer broke it', {});
      } else {
        this.#logger.warn('lock renewal failed; retrying', { error: String(error) });
      }
    } finally {
      this.#renewing = false;
    }
  }

  async release(): Promise<void> {
    clearInterval(this.#timer);
    await this.#renewal;
    const held = this.#held;
    this.#held = undefined;
    if (!held) return;
    await this.#client.compareAndSwap(this.#pool, this.#object, lockXattr, held, [{ kind: Kind.KIND_RMXATTR, name: lockXattr }]).catch((error: unknown) => {
      this.#logger.warn('lock release failed', { error: String(error) });
    });
  }
}

export function parseLock(value: Buffer): LockRecord {
  try {
    const r = JSON.parse(value.toString('utf8')) as LockRecord;
    if (typeof r.owner === 'string' && typeof r.expiresMs === 'number') return r;
  } catch {
    // fall through
  }
  return { owner: 'unknown', expiresMs: 0 };
}
