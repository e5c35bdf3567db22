/**
 * Inodes and directories in the metadata pool, with the client's cache. Each inode is one object: its attributes in
 * xattr `a`, its user xattrs in `x.<name>`, and (directories) its entries in omap. Every change is a
 * compare-and-swap on the encoded attributes (which carry a generation), so two mounts never overwrite each other's
 * change; a directory's entries change in the same atomic op as its attributes.
 *
 * Cache: what this mount read is trusted for `cacheTtlMs` (a lease), so another mount's change shows here within
 * that time; this mount's own changes update the cache at once. A directory's cached entries are only trusted with
 * the attribute bytes they were read with.
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

export class Metadata {
  readonly pool: string;
  readonly #client: ObjectClient;
  readonly #ttlMs: number;
  readonly #cache = new Map<number, CachedInode>();
  readonly #queues = new Map<number, Promise<unknown>>();

  constructor(client: ObjectClient, options: MetadataOptions) {
    this.#client = client;
    this.pool = options.pool;
    this.#ttlMs = options.cacheTtlMs;
  }

  /** Drops everything cached (another mount's change announced, or a test wants the cluster's view). */
  invalidate(ino?: number): void {
    if (ino === undefined) this.#cache.clear();
    else this.#cache.delete(ino);
  }

  #fresh(ino: number): CachedInode | undefined {
    const c = this.#cache.get(ino);
    if (!c) return undefined;
    if (Date.now() - c.atMs > this.#ttlMs) {
      this.#cache.delete(ino);
      return undefined;
    }
    return c;
  }

  #remember(ino: number, raw: Buffer, inode: Inode): CachedInode {
    const old = this.#cache.get(ino);
    const same = old !== undefined && old.raw.equals(raw);
    const c = { inode, raw, atMs: Date.now(), entries: same ? old.entries : new Map<string, Dentry | null>(), complete: same ? old.complete : false };
    this.#cache.set(ino, c);
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
    const c = fresh ? undefined : this.#fresh(ino);
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
    const raw = encodeInode(inode);
    await this.#client.execute(this.pool, inodeObject(inode.ino), [
      { kind: Kind.KIND_CREATE },
      { kind: Kind.KIND_SETXATTR, name: attrXattr, value: raw },
      ...xattrs.map(([name, value]) => ({ kind: Kind.KIND_SETXATTR, name, value })),
    ]);
    const c = this.#remember(inode.ino, raw, inode);
    c.entries.clear();
    // A new directory is empty, and this mount knows it.
    c.complete = (inode.mode & 0o170000) === 0o040000;
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
        if ((c.inode.mode & 0o170000) !== 0o040000) throw new FsError('ENOTDIR', `inode ${dir} is not a directory`);
        if (c.inode.dead) throw new FsError('ENOENT', `directory ${dir} was removed`);
        const view = new Map<string, Dentry | undefined>(names.map((n) => [n, c?.entries.get(n) ?? undefined]));
        const decided = change({ ...c.inode }, view);
        const inode = { ...decided.inode, gen: c.inode.gen + 1 };
        const raw = encodeInode(inode);
        const ops: Op[] = [{ kind: Kind.KIND_CMPXATTR, name: attrXattr, value: c.raw }];
        if (decided.remove?.length) ops.push({ kind: Kind.KIND_OMAP_RM, keys: decided.remove });
        if (decided.set?.length) ops.push({ kind: Kind.KIND_OMAP_SET, entries: decided.set.map(([key, entry]) => ({ key, value: encodeDentry(entry) })) });
        ops.push({ kind: Kind.KIND_SETXATTR, name: attrXattr, value: raw });
        try {
          await this.#execute(dir, ops);
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

  /** Raw ops on an inode object (xattrs, omap of data-object indices); NOT_FOUND becomes ENOENT. */
  async execute(ino: number, ops: Op[]): Promise<wire.OsdOpReply> {
    return (await this.#execute(ino, ops)).reply;
  }
}
