/**
 * flock() locks kept in the cluster, so every mount (on any host) sees them: the holders of a file's lock are the
 * xattr `lk` of its inode object, changed only by compare-and-swap. A holder is (mount, open file) with a lease the
 * mount renews while it holds the lock; a mount that dies loses its locks when the lease runs out.
 */
import { StorageError, wire, type ObjectClient } from '../../src/index.js';
import { FsError } from './errors.js';
import { inodeObject } from './layout.js';
import { isNotFound, isPreconditionFailed } from './metadata.js';

const Kind = wire.ObjectOp.Kind;
const lockXattr = 'lk';
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

/** Whether `mode` can be granted beside the holders (pure). */
export function compatible(mode: Mode, others: Holder[]): boolean {
  return others.every((h) => mode === 'sh' && h.mode === 'sh');
}

export class LockTable {
  readonly #client: ObjectClient;
  readonly #pool: string;
  readonly #held = new Map<string, { ino: number; mode: Mode }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(client: ObjectClient, pool: string) {
    this.#client = client;
    this.#pool = pool;
  }

  #owner(fd: number): string {
    return `${this.#client.clientName}/${fd}`;
  }

  async #read(ino: number): Promise<Buffer | undefined> {
    try {
      const r = await this.#client.execute(this.#pool, inodeObject(ino), [{ kind: Kind.KIND_GETXATTRS }]);
      const found = (r.reply.results[0]?.entries ?? []).find((e) => e.key === lockXattr);
      return found ? Buffer.from(found.value ?? new Uint8Array()) : undefined;
    } catch (error) {
      if (isNotFound(error)) throw new FsError('ENOENT', `inode ${ino} does not exist`);
      throw error;
    }
  }

  /** Sets this owner's entry (or removes it); false when another holder conflicts. */
  async #change(ino: number, owner: string, mode: Mode | undefined): Promise<boolean> {
    for (;;) {
      const raw = await this.#read(ino);
      const now = Date.now();
      const others = decodeHolders(raw).filter((h) => h.owner !== owner && h.untilMs > now);
      if (mode && !compatible(mode, others)) return false;
      const next = mode ? [...others, { owner, mode, untilMs: now + lockLeaseMs }] : others;
      try {
        await this.#client.compareAndSwap(this.#pool, inodeObject(ino), lockXattr, raw, [{ kind: Kind.KIND_SETXATTR, name: lockXattr, value: encodeHolders(next) }]);
        return true;
      } catch (error) {
        if (!isPreconditionFailed(error)) throw error;
      }
    }
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
      if (this.#held.size === 0) {
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
