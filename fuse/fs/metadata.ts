/**
 * Inodes and directories in the metadata pool, with the client's cache. Each inode is one object: its attributes in
 * xattr `a`, its user xattrs in `x.<name>`, and (directories) its entries in omap. Every change is a
 * compare-and-swap on the encoded attributes (which carry a generation), so two mounts never overwrite each other's
 * change; a directory's entries change in the same atomic op as its attributes.
 *
 * Cache: what this mount read is trusted for `cacheTtlMs` (a lease), so another mount's change shows here within
 * that time; this mount's own changes update the cache at once. A directory's cached entries are only trusted with
 * the attribute bytes they were read with.
 *
 * Write-back (`solo`, while this is the only mount: see fuse/README.md): new inodes (`createLater`) and directory
 * entry changes (`changeDirLater`) apply to the cache at once and reach the cluster later, in rounds
 * (`takePending`, `sendCreate`, `sendDir`): a round's inodes are written before its entries, so a crash leaves at
 * worst unreferenced inodes. Everything cached is then trusted without a time limit (nobody else changes anything).
 */
import { StorageError, wire, type ObjectClient } from '../../src/index.js';
import { decodeDentry, decodeInode, encodeDentry, encodeInode, type Dentry, type Inode } from './encoding.js';
import { FsError } from './errors.js';
import { inodeObject } from './layout.js';

const Kind = wire.ObjectOp.Kind;
type Op = wire.ObjectOp.$Properties;

export const attrXattr = 'a';
const casAttemptsMax = 100;
/** Entries kept per cached directory (bounded: a directory may hold millions). */
const cachedEntriesMax = 200_000;

interface CachedInode {
  inode: Inode;
  raw: Buffer;
  atMs: number;
  /** Directory entries known at exactly `raw` (null: known absent). */
  entries: Map<string, Dentry | null>;
  /** `entries` holds every entry of the directory at `raw` (so a name not in it is absent). */
  complete: boolean;
}

/** Entry changes of one directory made here and not yet in the cluster (null: removed). */
export interface DirPending {
  names: Map<string, Dentry | null>;
  nlinkDelta: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** What one write-back round sends: new inodes first, then each directory's entries. */
export interface PendingRound {
  inodes: number[];
  dirs: Map<number, DirPending>;
}

/** Cached inodes kept at most (beyond, the oldest not waiting for write-back are dropped and read again on use). */
const cachedInodesMax = 100_000;

export interface MetadataOptions {
  pool: string;
  cacheTtlMs: number;
}

export function isNotFound(error: unknown): boolean {
  return error instanceof StorageError && error.code === 'NOT_FOUND';
}

export function isPreconditionFailed(error: unknown): boolean {
  return error instanceof StorageError && error.code === 'PRECONDITION_FAILED';
}

/** A directory change: entries to set or remove and a new attribute state, decided from a consistent view. */
export interface DirChange<T> {
  set?: [string, Dentry][];
  remove?: string[];
  inode: Inode;
  result: T;
}

/** What `change` decides for directory `dir` from the cached view `c` of `names` (refused for a non-directory or a dead one). */
function decideDirChange<T>(dir: number, c: CachedInode, names: string[], change: (inode: Inode, entries: Map<string, Dentry | undefined>) => DirChange<T>): DirChange<T> {
  if ((c.inode.mode & 0o170000) !== 0o040000) throw new FsError('ENOTDIR', `inode ${dir} is not a directory`);
  if (c.inode.dead) throw new FsError('ENOENT', `directory ${dir} was removed`);
  return change({ ...c.inode }, new Map(names.map((n) => [n, c.entries.get(n) ?? undefined])));
}

/** One atomic directory change: guarded by the attributes it was decided at, entries, then the new attributes. */
function dirChangeOps(expected: Uint8Array | null | undefined, remove: string[], set: [string, Dentry][], next: Buffer): Op[] {
  const ops: Op[] = [{ kind: Kind.KIND_CMPXATTR, name: attrXattr, value: expected }];
  if (remove.length) ops.push({ kind: Kind.KIND_OMAP_RM, keys: remove });
  if (set.length) ops.push({ kind: Kind.KIND_OMAP_SET, entries: set.map(([key, entry]) => ({ key, value: encodeDentry(entry) })) });
  ops.push({ kind: Kind.KIND_SETXATTR, name: attrXattr, value: next });
  return ops;
}

export class Metadata {
  readonly pool: string;
  readonly #client: ObjectClient;
  readonly #ttlMs: number;
  readonly #cache = new Map<number, CachedInode>();
  readonly #queues = new Map<number, Promise<unknown>>();
  /** Write-back: inodes created here and not written yet, those being written, directory changes not sent yet. */
  readonly #unsent = new Map<number, Inode>();
  readonly #sending = new Set<number>();
  readonly #dirPending = new Map<number, DirPending>();
  readonly #dirSending = new Map<number, number>();
  /** This is the only mount: the cache is the truth (no lease expiry); write-back is allowed. */
  solo = false;

  constructor(client: ObjectClient, options: MetadataOptions) {
    this.#client = client;
    this.pool = options.pool;
    this.#ttlMs = options.cacheTtlMs;
  }

  /** Drops everything cached (another mount's change announced, or a test wants the cluster's view). */
  invalidate(ino?: number): void {
    for (const key of ino === undefined ? [...this.#cache.keys()] : [ino]) if (!this.#pinned(key)) this.#cache.delete(key);
  }

  /** Cached state the cluster has not got yet (must not be dropped or read again from the cluster). */
  #pinned(ino: number): boolean {
    return this.#unsent.has(ino) || this.#sending.has(ino) || this.#dirPending.has(ino) || this.#dirSending.has(ino);
  }

  /** Changes made here that have not reached the cluster yet. */
  get backlog(): number {
    let n = this.#unsent.size + this.#sending.size;
    for (const p of this.#dirPending.values()) n += p.names.size;
    return n;
  }

  #fresh(ino: number): CachedInode | undefined {
    const c = this.#cache.get(ino);
    if (!c) return undefined;
    if (!this.solo && !this.#pinned(ino) && Date.now() - c.atMs > this.#ttlMs) {
      this.#cache.delete(ino);
      return undefined;
    }
    return c;
  }

  #remember(ino: number, raw: Buffer, inode: Inode): CachedInode {
    const old = this.#cache.get(ino);
    if (old && this.#pinned(ino)) {
      // Read while changes of ours are on their way: the cached view (cluster state plus them) stays.
      old.atMs = Date.now();
      return old;
    }
    const same = old !== undefined && old.raw.equals(raw);
    const c = { inode, raw, atMs: Date.now(), entries: same ? old.entries : new Map<string, Dentry | null>(), complete: same ? old.complete : false };
    this.#cache.delete(ino);
    this.#cache.set(ino, c);
    if (this.#cache.size > cachedInodesMax) {
      for (const key of this.#cache.keys()) {
        if (this.#cache.size <= cachedInodesMax * 0.9) break;
        if (!this.#pinned(key)) this.#cache.delete(key);
      }
    }
    return c;
  }

  /** Runs `fn` after every earlier call for the same inode in this mount (fewer CAS conflicts with ourselves). */
  async serial<T>(ino: number, fn: () => Promise<T>): Promise<T> {
    const before = this.#queues.get(ino) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.#queues.set(ino, settled);
    void settled.then(() => {
      if (this.#queues.get(ino) === settled) this.#queues.delete(ino);
    });
    return run;
  }

  async #execute(ino: number, ops: Op[], payload?: Buffer) {
    try {
      return await this.#client.execute(this.pool, inodeObject(ino), ops, payload);
    } catch (error) {
      if (isNotFound(error)) {
        this.#cache.delete(ino);
        throw new FsError('ENOENT', `inode ${ino} does not exist`, { cause: error });
      }
      throw error;
    }
  }

  /** Loads into the cache the inodes not cached yet (a listing about to be stat'ed); failures are ignored. */
  async prefetch(inos: number[]): Promise<void> {
    await Promise.all(inos.filter((ino) => !this.#fresh(ino)).map((ino) => this.#load(ino).catch(() => undefined)));
  }

  /** The inode's attributes (cached unless `fresh`). */
  async inode(ino: number, fresh = false): Promise<Inode> {
    // Alone, this mount's cache is the truth; fresh or not, it answers.
    const c = fresh && !this.solo && !this.#pinned(ino) ? undefined : this.#fresh(ino);
    if (c) return c.inode;
    return (await this.#load(ino)).inode;
  }

  async #load(ino: number, names: string[] = []): Promise<CachedInode> {
    const ops: Op[] = [{ kind: Kind.KIND_GETXATTR, name: attrXattr }];
    if (names.length > 0) ops.push({ kind: Kind.KIND_OMAP_GET, keys: names });
    const r = await this.#execute(ino, ops);
    const raw = Buffer.from(r.reply.results[0]?.value ?? new Uint8Array());
    const c = this.#remember(ino, raw, decodeInode(raw));
    if (names.length > 0) {
      const found = new Map((r.reply.results[1]?.entries ?? []).map((e) => [e.key ?? '', Buffer.from(e.value ?? new Uint8Array())]));
      for (const name of names) {
        // A name changed here and not yet sent is known better here than in the cluster.
        if (this.#pinned(ino) && c.entries.has(name)) continue;
        const value = found.get(name);
        if (c.entries.size < cachedEntriesMax) c.entries.set(name, value ? decodeDentry(value) : null);
      }
    }
    return c;
  }

  /** The entry `name` of directory `dir` (undefined: none), and the directory's attributes it was read with. */
  async lookup(dir: number, name: string): Promise<Dentry | undefined> {
    const c = this.#fresh(dir);
    const known = c?.entries.get(name);
    if (c && known !== undefined) return known ?? undefined;
    if (c?.complete) return undefined;
    const loaded = await this.#load(dir, [name]);
    if (loaded.inode.mode !== 0 && (loaded.inode.mode & 0o170000) !== 0o040000) throw new FsError('ENOTDIR', `inode ${dir} is not a directory`);
    return loaded.entries.get(name) ?? undefined;
  }

  /** Every entry of a directory, in name order (paged from the cluster; the listing refreshes the cache). */
  async list(dir: number): Promise<[string, Dentry][]> {
    const out: [string, Dentry][] = [];
    let after = '';
    let first: Buffer | undefined;
    let consistent = true;
    for (;;) {
      const r = await this.#execute(dir, [{ kind: Kind.KIND_GETXATTR, name: attrXattr }, { kind: Kind.KIND_OMAP_LIST, after, limit: 4096 }]);
      const raw = Buffer.from(r.reply.results[0]?.value ?? new Uint8Array());
      first ??= raw;
      // Pages read at one attribute state (the generation changes with every entry) form one snapshot.
      if (!raw.equals(first)) consistent = false;
      const page = r.reply.results[1];
      for (const e of page?.entries ?? []) out.push([e.key ?? '', decodeDentry(Buffer.from(e.value ?? new Uint8Array()))]);
      if (!page?.more || !page.entries?.length) break;
      after = out.at(-1)?.[0] ?? '';
    }
    if (first && consistent && out.length < cachedEntriesMax) {
      const c = this.#remember(dir, first, decodeInode(first));
      c.entries.clear();
      for (const [name, entry] of out) c.entries.set(name, entry);
      c.complete = true;
    }
    return out;
  }

  /** The first entries of a directory (up to `limit`), with the attribute bytes they were read at. */
  async firstEntries(dir: number, limit: number): Promise<{ names: [string, Dentry][]; more: boolean; inode: Inode; raw: Buffer }> {
    const r = await this.#execute(dir, [{ kind: Kind.KIND_GETXATTR, name: attrXattr }, { kind: Kind.KIND_OMAP_LIST, after: '', limit }]);
    const raw = Buffer.from(r.reply.results[0]?.value ?? new Uint8Array());
    const inode = decodeInode(raw);
    this.#remember(dir, raw, inode);
    const page = r.reply.results[1];
    return { names: (page?.entries ?? []).map((e) => [e.key ?? '', decodeDentry(Buffer.from(e.value ?? new Uint8Array()))]), more: page?.more ?? false, inode, raw };
  }

  /** Creates a new inode object (exclusive: an existing one is ALREADY_EXISTS). */
  async create(inode: Inode, xattrs: [string, Buffer][] = []): Promise<void> {
    const raw = await this.#writeNew(inode, xattrs);
    const c = this.#remember(inode.ino, raw, inode);
    c.entries.clear();
    // A new directory is empty, and this mount knows it.
    c.complete = (inode.mode & 0o170000) === 0o040000;
  }

  /** Writes a new inode object (exclusive: an existing one is ALREADY_EXISTS); the attribute bytes written. */
  async #writeNew(inode: Inode, xattrs: [string, Buffer][] = []): Promise<Buffer> {
    const raw = encodeInode(inode);
    await this.#client.execute(this.pool, inodeObject(inode.ino), [
      { kind: Kind.KIND_CREATE },
      { kind: Kind.KIND_SETXATTR, name: attrXattr, value: raw },
      ...xattrs.map(([name, value]) => ({ kind: Kind.KIND_SETXATTR, name, value })),
    ]);
    return raw;
  }

  /**
   * Removes an inode object if `when` holds for its current attributes (compare-and-swap on them, so a link made
   * meanwhile by another mount keeps it). Returns the inode's data-object list read just before, or undefined if
   * `when` did not hold.
   */
  async removeIf(ino: number, when: (inode: Inode) => boolean): Promise<string[] | undefined> {
    return this.serial(ino, async () => {
      // An empty file known here (`rm -rf` has just looked each one up): guard, list and remove in one op, saving a
      // round trip. Only when empty: a resent op that had applied answers without results, so the list would read
      // as empty, and an empty file has no data objects (truncate removes them with their keys).
      const cached = this.#fresh(ino);
      if (cached && cached.inode.size === 0 && when(cached.inode)) {
        try {
          const r = await this.#execute(ino, [{ kind: Kind.KIND_CMPXATTR, name: attrXattr, value: cached.raw }, { kind: Kind.KIND_OMAP_LIST, prefix: 'o.', after: '', limit: 100_000 }, { kind: Kind.KIND_REMOVE }]);
          this.#cache.delete(ino);
          return (r.reply.results[1]?.entries ?? []).map((e) => e.key ?? '');
        } catch (error) {
          if (!isPreconditionFailed(error)) throw error;
        }
      }
      for (let attempt = 0; attempt < casAttemptsMax; attempt++) {
        const r = await this.#execute(ino, [{ kind: Kind.KIND_GETXATTR, name: attrXattr }, { kind: Kind.KIND_OMAP_LIST, prefix: 'o.', after: '', limit: 100_000 }]);
        const raw = Buffer.from(r.reply.results[0]?.value ?? new Uint8Array());
        if (!when(decodeInode(raw))) return undefined;
        try {
          await this.#execute(ino, [{ kind: Kind.KIND_CMPXATTR, name: attrXattr, value: raw }, { kind: Kind.KIND_REMOVE }]);
          this.#cache.delete(ino);
          return (r.reply.results[1]?.entries ?? []).map((e) => e.key ?? '');
        } catch (error) {
          if (!isPreconditionFailed(error)) throw error;
        }
      }
      throw new StorageError('BUSY', `inode ${ino} kept changing under ${casAttemptsMax} attempts`);
    });
  }

  async remove(ino: number): Promise<void> {
    this.#cache.delete(ino);
    await this.#client.remove(this.pool, inodeObject(ino)).catch((error: unknown) => {
      if (!isNotFound(error)) throw error;
    });
  }

  /**
   * Changes an inode's attributes with compare-and-swap: `change` gets the current state and returns the new one
   * (undefined: nothing to do), with extra ops applied atomically with it. Retries from fresh state on conflict.
   */
  async update(ino: number, change: (inode: Inode) => { inode: Inode; ops?: Op[] } | undefined): Promise<Inode> {
    return this.serial(ino, async () => {
      const unsent = this.#unsent.get(ino);
      if (unsent) {
        const next = change({ ...unsent });
        if (!next) return unsent;
        if (!next.ops?.length) return this.#keepUnsent({ ...next.inode, gen: unsent.gen });
        // Extra ops (data-object keys, xattrs) need the object: write the inode now, then change it as usual.
        await this.#sendCreate(ino);
      }
      let c = this.#fresh(ino) ?? (await this.#load(ino));
      for (let attempt = 0; attempt < casAttemptsMax; attempt++) {
        const next = change({ ...c.inode });
        if (!next) return c.inode;
        const inode = { ...next.inode, gen: c.inode.gen + 1 };
        const raw = encodeInode(inode);
        try {
          await this.#execute(ino, [{ kind: Kind.KIND_CMPXATTR, name: attrXattr, value: c.raw }, { kind: Kind.KIND_SETXATTR, name: attrXattr, value: raw }, ...(next.ops ?? [])]);
          const { entries, complete } = c;
          const stored = this.#remember(ino, raw, inode);
          if (stored.entries !== entries) for (const [k, v] of entries) stored.entries.set(k, v);
          stored.complete = complete;
          return inode;
        } catch (error) {
          if (!isPreconditionFailed(error)) throw error;
          c = await this.#load(ino);
        }
      }
      throw new StorageError('BUSY', `inode ${ino} kept changing under ${casAttemptsMax} attempts`);
    });
  }

  /**
   * Changes a directory's entries and attributes in one atomic op. `change` sees the entries `names` as they are
   * at the attributes it gets (undefined: absent) and decides; it may throw to refuse (EEXIST, ENOENT...).
   */
  async changeDir<T>(dir: number, names: string[], change: (inode: Inode, entries: Map<string, Dentry | undefined>) => DirChange<T>): Promise<T> {
    return this.serial(dir, async () => {
      let c = this.#fresh(dir);
      if (!c || names.some((n) => !c?.entries.has(n))) c = await this.#load(dir, names);
      for (let attempt = 0; attempt < casAttemptsMax; attempt++) {
        const decided = decideDirChange(dir, c, names, change);
        const inode = { ...decided.inode, gen: c.inode.gen + 1 };
        const raw = encodeInode(inode);
        try {
          await this.#execute(dir, dirChangeOps(c.raw, decided.remove ?? [], decided.set ?? [], raw));
          // The change applied on top of exactly what was cached: what was known stays known.
          const { entries, complete } = c;
          for (const name of decided.remove ?? []) entries.set(name, null);
          for (const [name, entry] of decided.set ?? []) entries.set(name, entry);
          const stored = this.#remember(dir, raw, inode);
          if (stored.entries !== entries) for (const [k, v] of entries) stored.entries.set(k, v);
          stored.complete = complete && stored.entries.size < cachedEntriesMax;
          return decided.result;
        } catch (error) {
          if (!isPreconditionFailed(error)) throw error;
          c = await this.#load(dir, names);
        }
      }
      throw new StorageError('BUSY', `directory ${dir} kept changing under ${casAttemptsMax} attempts`);
    });
  }

  // ---- write-back (solo) ----

  /** A new inode, known here at once and written by the next write-back round (see `takePending`). */
  createLater(inode: Inode): void {
    this.#keepUnsent(inode);
    const c = this.#cache.get(inode.ino);
    // A new directory is empty, and this mount knows it.
    if (c) c.complete = (inode.mode & 0o170000) === 0o040000;
  }

  #keepUnsent(inode: Inode): Inode {
    this.#unsent.set(inode.ino, inode);
    const old = this.#cache.get(inode.ino);
    if (old) {
      old.inode = inode;
      old.atMs = Date.now();
    } else this.#remember(inode.ino, encodeInode(inode), inode);
    return inode;
  }

  /** Forgets an inode created here that no round has taken yet (removed before it was written); false if too late. */
  cancelUnsent(ino: number): boolean {
    if (this.#sending.has(ino) || !this.#unsent.delete(ino)) return false;
    this.#cache.delete(ino);
    return true;
  }

  /**
   * Changes a directory's entries and attributes in this mount's view at once (like `changeDir`, which decides from
   * the same view); the cluster gets the change with the next write-back round. Only while `solo`.
   */
  async changeDirLater<T>(dir: number, names: string[], change: (inode: Inode, entries: Map<string, Dentry | undefined>) => DirChange<T>, first?: () => void): Promise<{ result: T } | undefined> {
    let c = this.#fresh(dir);
    if (!c || (!c.complete && names.some((n) => !c?.entries.has(n)))) c = await this.#load(dir, names);
    // No await from here on: the view, the decision and the recorded change are one step. A mount that stopped
    // being alone meanwhile changes the cluster itself (undefined: the caller does).
    if (!this.solo) return undefined;
    const before = c.inode;
    const decided = decideDirChange(dir, c, names, change);
    first?.();
    const inode = { ...decided.inode, gen: before.gen };
    const unsent = this.#unsent.get(dir);
    const pending = this.#dirPending.get(dir) ?? { names: new Map<string, Dentry | null>(), nlinkDelta: 0, mtimeMs: 0, ctimeMs: 0 };
    for (const name of decided.remove ?? []) {
      c.entries.set(name, null);
      pending.names.set(name, null);
    }
    for (const [name, entry] of decided.set ?? []) {
      c.entries.set(name, entry);
      pending.names.set(name, entry);
    }
    // A directory not written yet carries its link count itself (its create writes it); one in the cluster gets
    // the difference when the round lands.
    if (unsent) this.#unsent.set(dir, { ...unsent, nlink: inode.nlink, mtimeMs: inode.mtimeMs, ctimeMs: inode.ctimeMs });
    else pending.nlinkDelta += inode.nlink - before.nlink;
    pending.mtimeMs = inode.mtimeMs;
    pending.ctimeMs = inode.ctimeMs;
    this.#dirPending.set(dir, pending);
    c.inode = inode;
    c.atMs = Date.now();
    return { result: decided.result };
  }

  /** Directory `ino` has entry changes on their way to the cluster (its attributes must not be written around them). */
  entriesPending(ino: number): boolean {
    return this.#dirPending.has(ino) || this.#dirSending.has(ino);
  }

  /** Alone: every entry of a directory this mount knows completely, in name order, without a round trip. */
  knownEntries(dir: number): [string, Dentry][] | undefined {
    const c = this.solo ? this.#fresh(dir) : undefined;
    if (!c?.complete) return undefined;
    const out: [string, Dentry][] = [];
    for (const [name, entry] of c.entries) if (entry) out.push([name, entry]);
    return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Takes what the next round sends: the inodes to create, then each directory's entry changes. */
  takePending(): PendingRound {
    const inodes = [...this.#unsent.keys()];
    for (const ino of inodes) this.#sending.add(ino);
    const dirs = new Map(this.#dirPending);
    this.#dirPending.clear();
    for (const dir of dirs.keys()) this.#dirSending.set(dir, (this.#dirSending.get(dir) ?? 0) + 1);
    return { inodes, dirs };
  }

  /** Writes an inode created here (the version current when it goes: later local changes are in it). */
  async sendCreate(ino: number): Promise<void> {
    await this.serial(ino, () => this.#sendCreate(ino));
  }

  async #sendCreate(ino: number): Promise<void> {
    const inode = this.#unsent.get(ino);
    if (!inode) return;
    this.#unsent.delete(ino);
    this.#sending.add(ino);
    try {
      const raw = await this.#writeNew(inode);
      const c = this.#cache.get(ino);
      if (c) c.raw = raw;
    } catch (error) {
      this.#unsent.set(ino, inode);
      throw error;
    } finally {
      this.#sending.delete(ino);
    }
  }

  /**
   * Sends one round's changes of directory `dir` in one atomic op (entries, link count, times). `skip`: inodes whose
   * create failed; their entries are dropped here too, never written pointing nowhere.
   */
  async sendDir(dir: number, pending: DirPending, skip: Set<number>): Promise<void> {
    await this.serial(dir, async () => {
      try {
        const c = this.#cache.get(dir);
        for (const [name, entry] of pending.names) {
          if (entry && skip.has(entry.ino)) {
            pending.names.set(name, null);
            if (c?.entries.get(name)?.ino === entry.ino) c.entries.set(name, null);
          }
        }
        let raw = c?.raw ?? (await this.execute(dir, [{ kind: Kind.KIND_GETXATTR, name: attrXattr }])).results[0]?.value;
        for (let attempt = 0; attempt < casAttemptsMax; attempt++) {
          const base = decodeInode(Buffer.from(raw ?? new Uint8Array()));
          const inode: Inode = { ...base, nlink: base.nlink + pending.nlinkDelta, mtimeMs: pending.mtimeMs, ctimeMs: pending.ctimeMs, gen: base.gen + 1 };
          const next = encodeInode(inode);
          const removed = [...pending.names].filter(([, e]) => e === null).map(([name]) => name);
          const set = [...pending.names].filter((e): e is [string, Dentry] => e[1] !== null);
          try {
            await this.#execute(dir, dirChangeOps(raw, removed, set, next));
            const now = this.#cache.get(dir);
            if (now) {
              now.raw = next;
              now.inode = { ...now.inode, gen: inode.gen };
            }
            return;
          } catch (error) {
            if (!isPreconditionFailed(error)) throw error;
            // Only a tool (fs check --repair) changes things beside a solo mount: apply ours on top of its change.
            raw = (await this.execute(dir, [{ kind: Kind.KIND_GETXATTR, name: attrXattr }])).results[0]?.value;
          }
        }
        throw new StorageError('BUSY', `directory ${dir} kept changing under ${casAttemptsMax} attempts`);
      } finally {
        const left = (this.#dirSending.get(dir) ?? 1) - 1;
        if (left > 0) this.#dirSending.set(dir, left);
        else this.#dirSending.delete(dir);
      }
    });
  }

  /** Raw ops on an inode object (xattrs, omap of data-object indices); NOT_FOUND becomes ENOENT. */
  async execute(ino: number, ops: Op[]): Promise<wire.OsdOpReply> {
    return (await this.#execute(ino, ops)).reply;
  }
}
