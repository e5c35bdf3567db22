/**
 * flock() and POSIX (fcntl) locks kept in the cluster, so every mount (on any host) sees them: the holders of a
 * file's flock are the xattr `lk` of its inode object, its byte-range locks the xattr `pl`, both changed only by
 * compare-and-swap. A holder is (mount, open file) for flock and (mount, lock owner) for POSIX locks, with a lease
 * the mount renews while it holds the lock; a mount that dies loses its locks when the lease runs out.
 */
import { StorageError, wire, type ObjectClient } from '../../src/index.js';
import { FsError } from './errors.js';
import { inodeObject } from './layout.js';
import { isNotFound, isPreconditionFailed } from './metadata.js';

const Kind = wire.ObjectOp.Kind;
const lockXattr = 'lk';
const rangeXattr = 'pl';
export const F_GETLK = 5;
export const F_SETLK = 6;
export const F_SETLKW = 7;
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
export const lockLeaseMs = 30_000;
const renewEveryMs = 10_000;
const retryEveryMs = 100;

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

type Mode = 'sh' | 'ex';

interface Holder {
  owner: string;
  mode: Mode;
  untilMs: number;
}

export function decodeHolders(bytes: Buffer | undefined): Holder[] {
  if (!bytes || bytes.length === 0) return [];
  const value = JSON.parse(bytes.toString('utf8')) as { v?: number; holders?: Holder[] };
  if (value.v !== 1) throw new StorageError('UNSUPPORTED_VERSION', `lock record has format version ${String(value.v)}, this build reads 1`);
  return value.holders ?? [];
}

function encodeHolders(holders: Holder[]): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, holders }));
}

/** A byte-range lock: [start, end) with end null for "to the end of the file, however long". */
export interface RangeLock {
  owner: string;
  type: 'r' | 'w';
  start: number;
  end: number | null;
  untilMs: number;
}

export function decodeRanges(bytes: Buffer | undefined): RangeLock[] {
  if (!bytes || bytes.length === 0) return [];
  const value = JSON.parse(bytes.toString('utf8')) as { v?: number; locks?: RangeLock[] };
  if (value.v !== 1) throw new StorageError('UNSUPPORTED_VERSION', `range lock record has format version ${String(value.v)}, this build reads 1`);
  return value.locks ?? [];
}

function encodeRanges(locks: RangeLock[]): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, locks }));
}

/** The range locks of a record whose lease has not run out at `now`. */
function liveRanges(bytes: Buffer | undefined, now: number): RangeLock[] {
  return decodeRanges(bytes).filter((l) => l.untilMs > now);
}

const endOf = (l: { end: number | null }) => l.end ?? Infinity;

function overlaps(a: { start: number; end: number | null }, b: { start: number; end: number | null }): boolean {
  return a.start < endOf(b) && b.start < endOf(a);
}

/** The first lock of another owner that conflicts with `wanted` (pure). */
export function conflictOf(locks: RangeLock[], wanted: Omit<RangeLock, 'untilMs'>): RangeLock | undefined {
  return locks.find((l) => l.owner !== wanted.owner && overlaps(l, wanted) && (l.type === 'w' || wanted.type === 'w'));
}

/** `owner`'s locks with [start, end) taken out (split where needed), others' untouched (pure). */
export function withoutRange(locks: RangeLock[], owner: string, start: number, end: number | null): RangeLock[] {
  const out: RangeLock[] = [];
  for (const l of locks) {
    if (l.owner !== owner || !overlaps(l, { start, end })) {
      out.push(l);
      continue;
    }
    if (l.start < start) out.push({ ...l, end: start });
    if (end !== null && endOf(l) > end) out.push({ ...l, start: end });
  }
  return out;
}

/** Whether `mode` can be granted beside the holders (pure). */
export function compatible(mode: Mode, others: Holder[]): boolean {
  return others.every((h) => mode === 'sh' && h.mode === 'sh');
}

export class LockTable {
  readonly #client: ObjectClient;
  readonly #pool: string;
  readonly #held = new Map<string, { ino: number; mode: Mode }>();
  /** `ino:owner` of the POSIX locks this mount holds (their leases are renewed). */
  readonly #rangeHolders = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(client: ObjectClient, pool: string) {
    this.#client = client;
    this.#pool = pool;
  }

  #owner(fd: number): string {
    return `${this.#client.clientName}/${fd}`;
  }

  /**
   * Rewrites xattr `name` of inode `ino` by compare-and-swap, reading it again after a lost race. `next` gives the new
   * value from the current one, or undefined to leave it (then false).
   */
  async #casXattr(ino: number, name: string, next: (raw: Buffer | undefined, now: number) => Buffer | undefined): Promise<boolean> {
    for (;;) {
      const raw = await this.#readXattr(ino, name);
      const value = next(raw, Date.now());
      if (!value) return false;
      try {
        await this.#client.compareAndSwap(this.#pool, inodeObject(ino), name, raw, [{ kind: Kind.KIND_SETXATTR, name, value }]);
        return true;
      } catch (error) {
        if (!isPreconditionFailed(error)) throw error;
      }
    }
  }

  /** Sets this owner's entry (or removes it); false when another holder conflicts. */
  async #change(ino: number, owner: string, mode: Mode | undefined): Promise<boolean> {
    return this.#casXattr(ino, lockXattr, (raw, now) => {
      const others = decodeHolders(raw).filter((h) => h.owner !== owner && h.untilMs > now);
      if (mode && !compatible(mode, others)) return undefined;
      return encodeHolders(mode ? [...others, { owner, mode, untilMs: now + lockLeaseMs }] : others);
    });
  }

  /** flock(2) for open file `fd` of inode `ino`: LOCK_SH/LOCK_EX (waits unless LOCK_NB) or LOCK_UN. */
  async flock(ino: number, fd: number, op: number): Promise<void> {
    const owner = this.#owner(fd);
    if (op & LOCK_UN) {
      this.#held.delete(owner);
      await this.#change(ino, owner, undefined);
      return;
    }
    const mode: Mode = op & LOCK_EX ? 'ex' : 'sh';
    for (;;) {
      if (await this.#change(ino, owner, mode)) {
        this.#held.set(owner, { ino, mode });
        this.#renewSoon();
        return;
      }
      if (op & LOCK_NB) throw new FsError('EAGAIN', `inode ${ino} is locked by another holder`);
      await new Promise((r) => setTimeout(r, retryEveryMs));
    }
  }

  async #changeRanges(ino: number, change: (locks: RangeLock[], now: number) => RangeLock[] | undefined): Promise<boolean> {
    return this.#casXattr(ino, rangeXattr, (raw, now) => {
      const next = change(liveRanges(raw, now), now);
      return next && encodeRanges(next);
    });
  }

  /**
   * fcntl(2) locks for lock owner `owner` (from the kernel) on inode `ino`: F_GETLK answers the first conflicting
   * lock (undefined: none); F_SETLK fails EAGAIN on a conflict; F_SETLKW waits for it to go.
   */
  async posixLock(ino: number, cmd: number, lock: { type: number; start: number; len: number }, owner: number): Promise<{ type: number; start: number; len: number } | undefined> {
    const key = `${this.#client.clientName}/p${owner.toString(16)}`;
    const end = lock.len === 0 ? null : lock.start + lock.len;
    const type = lock.type === F_WRLCK ? 'w' : 'r';
    if (cmd === F_GETLK) {
      const found = conflictOf(liveRanges(await this.#readXattr(ino, rangeXattr), Date.now()), { owner: key, type, start: lock.start, end });
      return found ? { type: found.type === 'w' ? F_WRLCK : F_RDLCK, start: found.start, len: found.end === null ? 0 : found.end - found.start } : undefined;
    }
    if (cmd !== F_SETLK && cmd !== F_SETLKW) throw new FsError('EINVAL', `unknown lock command ${cmd}`);
    if (lock.type === F_UNLCK) {
      // libfuse unlocks on every close (flush): without a lock of this owner there is nothing to change, and no
      // round trip to pay for it (only this mount takes locks under its own owner keys).
      if (!this.#rangeHolders.has(`${ino}:${key}`)) return undefined;
      await this.#changeRanges(ino, (locks) => withoutRange(locks, key, lock.start, end));
      return undefined;
    }
    for (;;) {
      const granted = await this.#changeRanges(ino, (locks, now) =>
        conflictOf(locks, { owner: key, type, start: lock.start, end }) ? undefined : [...withoutRange(locks, key, lock.start, end), { owner: key, type, start: lock.start, end, untilMs: now + lockLeaseMs }],
      );
      if (granted) {
        this.#rangeHolders.add(`${ino}:${key}`);
        this.#renewSoon();
        return undefined;
      }
      if (cmd === F_SETLK) throw new FsError('EAGAIN', `inode ${ino} has a conflicting lock`);
      await new Promise((r) => setTimeout(r, retryEveryMs));
    }
  }

  async #readXattr(ino: number, name: string): Promise<Buffer | undefined> {
    try {
      const r = await this.#client.execute(this.#pool, inodeObject(ino), [{ kind: Kind.KIND_GETXATTRS }]);
      const found = (r.reply.results[0]?.entries ?? []).find((e) => e.key === name);
      return found ? Buffer.from(found.value ?? new Uint8Array()) : undefined;
    } catch (error) {
      if (isNotFound(error)) throw new FsError('ENOENT', `inode ${ino} does not exist`);
      throw error;
    }
  }

  /** The open file is closed: its lock goes. */
  async released(fd: number): Promise<void> {
    const owner = this.#owner(fd);
    const held = this.#held.get(owner);
    if (!held) return;
    this.#held.delete(owner);
    await this.#change(held.ino, owner, undefined).catch(() => {});
  }

  #renewSoon(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      for (const entry of this.#rangeHolders) {
        const [inoText, owner] = [entry.slice(0, entry.indexOf(':')), entry.slice(entry.indexOf(':') + 1)];
        void this.#changeRanges(Number(inoText), (locks, now) => {
          if (!locks.some((l) => l.owner === owner)) {
            this.#rangeHolders.delete(entry);
            return undefined;
          }
          return locks.map((l) => (l.owner === owner ? { ...l, untilMs: now + lockLeaseMs } : l));
        }).catch(() => {});
      }
      if (this.#held.size === 0 && this.#rangeHolders.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
        return;
      }
      for (const [owner, { ino, mode }] of this.#held) void this.#change(ino, owner, mode).catch(() => {});
    }, renewEveryMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
