/**
 * The POSIX namespace over the object client, by path (as the FUSE adapter receives it) and by open handle; testable
 * without a kernel. Crash safety: every change that spans objects is ordered so a crash leaves at worst an extra
 * link count or an unreferenced inode (never an entry pointing nowhere), and a rename across directories writes an
 * intent first that `check` (and the next mount) completes. See fuse/README.md for the consistency model.
 */
import { randomBytes } from 'node:crypto';
import { StorageError, wire, type Logger, type ObjectClient } from '../../src/index.js';
import { FileData, objectKey, parseObjectKey } from './data.js';
import {
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  decodeIntent,
  encodeIntent,
  encodeInode,
  typeOf,
  type Dentry,
  type FileType,
  type Inode,
  type RenameIntent,
  type Superblock,
} from './encoding.js';
import { FsError } from './errors.js';
import { fileSizeMax, nameMaxBytes, rootIno, splitPath, superObject } from './layout.js';
import { F_UNLCK, LockTable } from './locks.js';
import { Metadata, isPreconditionFailed } from './metadata.js';
import { OpenFiles } from './open-files.js';
import { metaPoolName, nextInoXattr, readSuperblock } from './superblock.js';
import { WriteBack } from './write-back.js';

const Kind = wire.ObjectOp.Kind;

const inoBatch = 256;
const prefetchBatch = 64;
const listingPrefetchMs = 60_000;
/** How often a mount that is not alone asks who else is there (to write back again once it is alone). */
const soloCheckEveryMs = 2000;
const xattrPrefix = 'x.';
/** An unreferenced inode younger than this may be a create in progress on a live mount (check leaves it). */
export const intentGraceMs = 10_000;

export interface Stat {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atime: Date;
  mtime: Date;
  ctime: Date;
  blocks: number;
  blksize: number;
}

export interface FileSystemOptions {
  /** How long this mount trusts what it read (another mount's change shows within this time). */
  cacheTtlMs?: number;
  /**
   * Announce this mount as alive (a watch on the superblock), so others leave its unfinished work alone and a mount
   * that writes back stays in step with it.
   */
  live?: boolean;
  /** With `live`: while no other client has the filesystem open, write metadata changes back (fuse/README.md). */
  writeBack?: boolean;
  logger?: Logger;
  /** Finish what dead mounts left half done (renames, unlinked open files) when opening (default true). */
  recover?: boolean;
  /** Owner of new files (fuse-native does not pass the caller's identity). */
  uid?: number;
  gid?: number;
}

/** libfuse2 renames a file unlinked while open to `.fuse_hidden<id>` until its last close: not a real entry. */
export function isHidden(name: string): boolean {
  return name.startsWith('.fuse_hidden');
}

/** Which xattr namespaces are stored: user.* and trusted.* (no ACLs or security labels). */
function storedXattr(name: string): boolean {
  return name.startsWith('user.') || name.startsWith('trusted.');
}

function checkXattrNamespace(name: string): void {
  if (!storedXattr(name)) throw new FsError('EOPNOTSUPP', `xattr namespace of ${name} is not supported (user.* and trusted.* are)`);
}

function checkName(name: string): void {
  if (Buffer.byteLength(name) > nameMaxBytes) throw new FsError('ENAMETOOLONG', `name longer than ${nameMaxBytes} bytes`);
}

function parentAndName(path: string): { parent: string[]; name: string } {
  const parts = splitPath(path);
  const name = parts.pop();
  if (name === undefined) throw new FsError('EINVAL', 'the root has no parent');
  checkName(name);
  return { parent: parts, name };
}

export class FileSystem {
  readonly name: string;
  readonly superblock: Superblock;
  readonly metadata: Metadata;
  readonly data: FileData;
  readonly locks: LockTable;
  readonly #client: ObjectClient;
  readonly #meta: string;
  readonly #uid: number;
  readonly #gid: number;
  readonly #files: OpenFiles;
  #inoPool: number[] = [];
  #inoRefill: Promise<void> | undefined;
  #liveness: { watcher: string; stop(): Promise<void> } | undefined;
  /** Names this opening of the filesystem in joins (two may share one client). */
  readonly #id = randomBytes(6).toString('hex');
  readonly #writeBack: WriteBack;
  readonly #logger: Logger | undefined;
  /** Joins of other clients seen (a solo check that saw none during its round trip may go solo). */
  #joinsSeen = 0;
  #soloTimer: NodeJS.Timeout | undefined;
  /** The last few directory listings, for prefetching the inodes `ls -l` is about to stat. */
  readonly #listings = new Map<string, { atMs: number; position: Map<string, number>; inos: number[]; prefetchedTo: number }>();

  private constructor(client: ObjectClient, sb: Superblock, options: FileSystemOptions) {
    this.#client = client;
    this.name = sb.name;
    this.superblock = sb;
    this.#meta = metaPoolName(sb.name);
    this.metadata = new Metadata(client, { pool: this.#meta, cacheTtlMs: options.cacheTtlMs ?? 500 });
    this.data = new FileData(client, sb.dataPool, sb.objectSize);
    this.locks = new LockTable(client, this.#meta);
    this.#files = new OpenFiles(this.data, this.metadata);
    this.#writeBack = new WriteBack(this.metadata, options.logger);
    this.#logger = options.logger;
    this.#uid = options.uid ?? 0;
    this.#gid = options.gid ?? 0;
  }

  /** Opens filesystem `name`; finishes renames that a dead mount left half done. */
  static async open(client: ObjectClient, name: string, options: FileSystemOptions = {}): Promise<FileSystem> {
    const fs = new FileSystem(client, await readSuperblock(client, name), options);
    if (options.live) {
      fs.#liveness = await client.watch(
        fs.#meta,
        superObject,
        async ({ payload }) => {
          const [kind, id] = payload.toString().split(' ');
          if (kind === 'join' && id !== fs.#id && options.writeBack) await fs.#notAlone('another client opened the filesystem');
          return Buffer.from('alive');
        },
        (error) => void (options.writeBack && fs.#notAlone(`the watch on the superblock was interrupted (${error.message})`)),
      );
    }
    // Whoever opens the filesystem tells the live mounts, which stop writing back (and write what they hold)
    // before they answer; a live mount that hears nobody else answer is alone.
    const others = await fs.#othersAnswering(`join ${fs.#id}`, 5000);
    if (options.live && options.writeBack) {
      if (others.length === 0) fs.#goSolo();
      else fs.#checkSoloLater();
      options.logger?.info(others.length === 0 ? 'alone: metadata changes are written back' : 'other clients have the filesystem open: metadata changes are written through', { others });
    }
    if (options.recover !== false) {
      await fs.recoverIntents();
      await fs.purgeStrays();
    }
    return fs;
  }

  // ---- write-back while alone ----

  #goSolo(): void {
    // What was cached while others could change things may be stale: alone, the cache is the truth from now on.
    this.metadata.invalidate();
    this.metadata.solo = true;
  }

  /** Another client opened the filesystem (or our watch may have missed it): write everything, then go on in step. */
  async #notAlone(why: string): Promise<void> {
    this.#joinsSeen++;
    if (this.metadata.solo) this.#logger?.info(`${why}: writing what is held back, then writing through`);
    this.metadata.solo = false;
    await this.#writeBack.drain();
    this.#checkSoloLater();
  }

  /** Notifies the superblock's watchers: those other than this one's that answered or did not answer in time. */
  async #othersAnswering(payload: string, timeoutMs: number): Promise<string[]> {
    const { acks, timeouts } = await this.#client.notify(this.#meta, superObject, Buffer.from(payload), timeoutMs);
    return [...acks.keys(), ...timeouts].filter((watcher) => watcher !== this.#liveness?.watcher);
  }

  #checkSoloLater(): void {
    if (this.#soloTimer || !this.#liveness) return;
    this.#soloTimer = setInterval(() => {
      const joins = this.#joinsSeen;
      void this.#othersAnswering('ping', soloCheckEveryMs).then((others) => {
        if (others.length > 0 || joins !== this.#joinsSeen || !this.#liveness || this.metadata.solo) return;
        clearInterval(this.#soloTimer);
        this.#soloTimer = undefined;
        this.#goSolo();
        this.#logger?.info('alone again: metadata changes are written back');
      }, () => {});
    }, soloCheckEveryMs);
    this.#soloTimer.unref();
  }

  /** Every metadata change of this mount written back so far is in the cluster. */
  async #settled(): Promise<void> {
    await this.#writeBack.drain();
  }

  /** Whether this mount writes its changes back (alone) rather than to the cluster before answering. */
  get writesBack(): boolean {
    return this.metadata.solo;
  }

  /** Metadata changes this mount has answered and not yet written to the cluster. */
  get pendingChanges(): number {
    return this.metadata.backlog;
  }

  /** Flushes every open file (the mount is going away). */
  async close(): Promise<void> {
    clearInterval(this.#soloTimer);
    this.#soloTimer = undefined;
    await this.#writeBack.drain();
    this.metadata.solo = false;
    for (const file of this.#files.all()) await this.#files.flushFile(file).catch(() => {});
    for (const fd of this.#files.handles()) await this.locks.released(fd);
    this.locks.stop();
    await this.#liveness?.stop();
  }

  /** The clients with a live mount of this filesystem (each answers a notify on the superblock). */
  async liveClients(): Promise<Set<string>> {
    const { acks } = await this.#client.notify(this.#meta, superObject, Buffer.from('ping'), 2000);
    return new Set([...acks.keys()].map((watcher) => watcher.slice(0, watcher.lastIndexOf('/'))));
  }

  /** Purges inodes unlinked while open by mounts that are gone (with `all`: every stray, live mounts or not). */
  async purgeStrays(all = false): Promise<number> {
    const page = await this.#client.omapList(this.#meta, superObject, { prefix: 'stray.', limit: 10_000 });
    if (page.entries.length === 0) return 0;
    const live = all ? new Set<string>() : await this.liveClients();
    let n = 0;
    for (const [key, value] of page.entries) {
      if (live.has(value.toString())) continue;
      await this.purge(Number(key.slice('stray.'.length)));
      n++;
    }
    return n;
  }

  /** fcntl(2) byte-range locks, shared with every mount through the cluster. */
  async lock(fd: number, cmd: number, lock: { type: number; start: number; len: number }, owner: number): Promise<{ type: number; start: number; len: number } | undefined> {
    // libfuse unlocks at every close: that must not wait for the write-back (it touches no entry).
    if (lock.type !== F_UNLCK) await this.#settled();
    return this.locks.posixLock(this.#files.handle(fd).ino, cmd, lock, owner);
  }

  /** flock(2) on an open file, shared with every mount through the cluster. */
  async flock(fd: number, op: number): Promise<void> {
    await this.#settled();
    await this.locks.flock(this.#files.handle(fd).ino, fd, op);
  }

  // ---- paths ----

  async resolve(path: string): Promise<number> {
    let ino = rootIno;
    for (const part of splitPath(path)) {
      checkName(part);
      const entry = await this.metadata.lookup(ino, part);
      if (!entry) throw new FsError('ENOENT', `${path}: no entry ${part}`);
      ino = entry.ino;
    }
    return ino;
  }

  async #resolveDir(parts: string[]): Promise<number> {
    const ino = await this.resolve('/' + parts.join('/'));
    const inode = await this.metadata.inode(ino);
    if (typeOf(inode.mode) !== 'dir') throw new FsError('ENOTDIR', `/${parts.join('/')} is not a directory`);
    return ino;
  }

  async #entry(path: string): Promise<{ dir: number; name: string; entry: Dentry }> {
    const { parent, name } = parentAndName(path);
    const dir = await this.#resolveDir(parent);
    const entry = await this.metadata.lookup(dir, name);
    if (!entry) throw new FsError('ENOENT', `${path} does not exist`);
    return { dir, name, entry };
  }

  // ---- attributes ----

  #toStat(inode: Inode): Stat {
    const pending = this.#files.pendingAttributes(inode.ino);
    const size = pending?.size ?? inode.size;
    const mtimeMs = pending?.mtimeMs ?? inode.mtimeMs;
    return {
      ino: inode.ino, mode: inode.mode, uid: inode.uid, gid: inode.gid, size, nlink: inode.nlink,
      atime: new Date(inode.atimeMs), mtime: new Date(mtimeMs), ctime: new Date(inode.ctimeMs),
      blocks: Math.ceil(size / 512), blksize: 128 * 1024,
    };
  }

  async getattr(path: string): Promise<Stat> {
    const ino = await this.resolve(path);
    this.#prefetchAfter(path);
    return this.#toStat(await this.metadata.inode(ino));
  }

  /**
   * `ls -l` stats every name it listed, one at a time: when a stat lands in a directory listed a moment ago, the
   * inodes of the next names are fetched together, so most stats find theirs cached.
   */
  #prefetchAfter(path: string): void {
    const slash = path.lastIndexOf('/');
    const listing = this.#listings.get(path.slice(0, slash) || '/');
    if (!listing || Date.now() - listing.atMs > listingPrefetchMs) return;
    const at = listing.position.get(path.slice(slash + 1));
    if (at === undefined || at < listing.prefetchedTo - prefetchBatch / 2) return;
    const from = Math.max(at, listing.prefetchedTo);
    listing.prefetchedTo = from + prefetchBatch;
    void this.metadata.prefetch(listing.inos.slice(from, from + prefetchBatch));
  }

  async fgetattr(fd: number): Promise<Stat> {
    return this.#toStat(await this.metadata.inode(this.#files.handle(fd).ino));
  }

  /**
   * Before a change to inode `ino`'s attributes: alone, only a directory whose entries are on their way waits for
   * them (its link count and times travel with them); a new inode not written yet changes in place.
   */
  async #settledFor(ino: number): Promise<void> {
    if (!this.metadata.solo || this.metadata.entriesPending(ino)) await this.#settled();
  }

  async chmod(path: string, mode: number): Promise<void> {
    const ino = await this.resolve(path);
    await this.#settledFor(ino);
    await this.metadata.update(ino, (i) => ({ inode: { ...i, mode: (i.mode & S_IFMT) | (mode & 0o7777), ctimeMs: Date.now() } }));
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    const ino = await this.resolve(path);
    const keep = (v: number) => v === -1 || v === 0xffffffff;
    await this.#settledFor(ino);
    await this.metadata.update(ino, (i) => ({ inode: { ...i, uid: keep(uid) ? i.uid : uid, gid: keep(gid) ? i.gid : gid, ctimeMs: Date.now() } }));
  }

  /** Sets times (milliseconds; undefined leaves that time alone). */
  async utimens(path: string, atimeMs: number | undefined, mtimeMs: number | undefined): Promise<void> {
    const ino = await this.resolve(path);
    await this.#settledFor(ino);
    const open = this.#files.get(ino);
    if (open?.dirty) await this.#files.flushFile(open);
    await this.metadata.update(ino, (i) => ({ inode: { ...i, atimeMs: atimeMs ?? i.atimeMs, mtimeMs: mtimeMs ?? i.mtimeMs, ctimeMs: Date.now() } }));
  }

  // ---- creating names ----

  async #allocIno(): Promise<number> {
    while (this.#inoPool.length === 0) {
      this.#inoRefill ??= this.#refillInos().finally(() => (this.#inoRefill = undefined));
      await this.#inoRefill;
    }
    return this.#inoPool.shift() as number;
  }

  async #refillInos(): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const current = await this.#client.getXattr(this.#meta, superObject, nextInoXattr);
      const next = Number(current.toString());
      if (!Number.isSafeInteger(next) || next < 2) throw new StorageError('CORRUPT_DATA', `bad inode counter ${current.toString()}`);
      try {
        await this.#client.compareAndSwap(this.#meta, superObject, nextInoXattr, current, [{ kind: Kind.KIND_SETXATTR, name: nextInoXattr, value: Buffer.from(String(next + inoBatch)) }]);
        for (let i = 0; i < inoBatch; i++) this.#inoPool.push(next + i);
        return;
      } catch (error) {
        if (!isPreconditionFailed(error)) throw error;
      }
    }
    throw new StorageError('BUSY', 'the inode counter kept changing');
  }

  /** Creates inode then entry: a crash between leaves an unreferenced inode (which check removes), never a dangling entry. */
  async #createNode(path: string, mode: number, target = ''): Promise<number> {
    const { parent, name } = parentAndName(path);
    if (this.metadata.solo) await this.#writeBack.room();
    const dir = await this.#resolveDir(parent);
    const existing = await this.metadata.lookup(dir, name);
    if (existing) throw new FsError('EEXIST', `${path} exists`);
    const type = typeOf(mode);
    const now = Date.now();
    const ino = await this.#allocIno();
    const inode: Inode = { ino, mode, uid: this.#uid, gid: this.#gid, size: type === 'symlink' ? Buffer.byteLength(target) : 0, nlink: type === 'dir' ? 2 : 1, atimeMs: now, mtimeMs: now, ctimeMs: now, parent: dir, target, gen: 0, dead: false };
    const addEntry = (d: Inode, entries: Map<string, Dentry | undefined>) => {
      if (entries.get(name)) throw new FsError('EEXIST', `${path} exists`);
      return { set: [[name, { ino, type }]] as [string, Dentry][], inode: { ...d, nlink: d.nlink + (type === 'dir' ? 1 : 0), mtimeMs: now, ctimeMs: now }, result: undefined };
    };
    if (this.metadata.solo) {
      if (await this.metadata.changeDirLater(dir, [name], addEntry, () => this.metadata.createLater(inode))) {
        this.#writeBack.changed();
        return ino;
      }
    }
    await this.#settled();
    await this.metadata.create(inode);
    try {
      await this.metadata.changeDir(dir, [name], addEntry);
    } catch (error) {
      await this.metadata.remove(ino).catch(() => {});
      throw error;
    }
    return ino;
  }

  async mkdir(path: string, mode: number): Promise<void> {
    await this.#createNode(path, S_IFDIR | (mode & 0o7777));
  }

  async mknod(path: string, mode: number): Promise<void> {
    const t = mode & S_IFMT;
    if (t === S_IFDIR || t === S_IFLNK) throw new FsError('EINVAL', 'mknod makes files, not directories or symlinks');
    await this.#createNode(path, t === 0 ? S_IFREG | mode : mode);
  }

  async create(path: string, mode: number, flags = 2): Promise<number> {
    const t = mode & S_IFMT;
    const ino = await this.#createNode(path, (t === 0 ? S_IFREG : t) | (mode & 0o7777));
    // Nobody else can have changed the inode this mount has just created: its cached attributes are current.
    return this.#files.open(ino, flags, await this.metadata.inode(ino));
  }

  async symlink(target: string, path: string): Promise<void> {
    if (Buffer.byteLength(target) > 4095) throw new FsError('ENAMETOOLONG', 'symlink target longer than 4095 bytes');
    await this.#createNode(path, S_IFLNK | 0o777, target);
  }

  async readlink(path: string): Promise<string> {
    const inode = await this.metadata.inode(await this.resolve(path));
    if (typeOf(inode.mode) !== 'symlink') throw new FsError('EINVAL', `${path} is not a symlink`);
    return inode.target;
  }

  /** A hard link: the link count goes up first, so a crash leaves a count too high (check fixes), never too low. */
  async link(from: string, to: string): Promise<void> {
    await this.#settled();
    const ino = await this.resolve(from);
    const inode = await this.metadata.inode(ino);
    if (typeOf(inode.mode) === 'dir') throw new FsError('EPERM', 'hard links to directories are not allowed');
    const { parent, name } = parentAndName(to);
    const dir = await this.#resolveDir(parent);
    if (await this.metadata.lookup(dir, name)) throw new FsError('EEXIST', `${to} exists`);
    const now = Date.now();
    await this.metadata.update(ino, (i) => {
      if (i.nlink === 0) throw new FsError('ENOENT', `${from} was removed`);
      return { inode: { ...i, nlink: i.nlink + 1, ctimeMs: now } };
    });
    try {
      await this.metadata.changeDir(dir, [name], (d, entries) => {
        if (entries.get(name)) throw new FsError('EEXIST', `${to} exists`);
        return { set: [[name, { ino, type: typeOf(inode.mode) }]], inode: { ...d, mtimeMs: now, ctimeMs: now }, result: undefined };
      });
    } catch (error) {
      await this.#dropLink(ino).catch(() => {});
      throw error;
    }
  }

  // ---- removing names ----

  /**
   * One fewer link to `ino`. The last link of a file nobody here has open removes the inode object at once (guarded,
   * so a link another mount made meanwhile keeps it) and then its data objects; a crash in between leaves data
   * objects without an inode, which check removes. A file still open here becomes a stray until its last close.
   */
  async #dropLink(ino: number): Promise<void> {
    const now = Date.now();
    const open = this.#files.get(ino);
    if (!open || open.opens === 0) {
      const indices = await this.#removeInode(ino, (i) => i.nlink <= 1);
      if (indices) {
        await this.data.removeAll(ino, indices);
        return;
      }
    }
    const inode = await this.metadata.update(ino, (i) => ({ inode: { ...i, nlink: Math.max(0, i.nlink - 1), ctimeMs: now } }));
    if (inode.nlink > 0) return;
    if (open && open.opens > 0) {
      open.unlinked = true;
      await this.#client.omapSet(this.#meta, superObject, [[`stray.${ino}`, Buffer.from(this.#client.clientName)]]);
      return;
    }
    await this.purge(ino);
  }

  /**
   * Removes the inode object if `when` holds for its attributes: the indices of its data objects ([] when it was
   * already gone), or undefined when `when` did not hold.
   */
  async #removeInode(ino: number, when: (inode: Inode) => boolean): Promise<number[] | undefined> {
    const objects = await this.metadata.removeIf(ino, when).catch((error: unknown) => {
      if (error instanceof FsError && error.errno === 'ENOENT') return [];
      throw error;
    });
    return objects?.map(parseObjectKey).filter((i): i is number => i !== undefined);
  }

  /** Removes an inode with no links: the inode object, then its data objects (and its stray record). */
  async purge(ino: number, stray = true): Promise<void> {
    const indices = (await this.#removeInode(ino, () => true)) ?? [];
    const open = this.#files.get(ino);
    if (open) for (const i of open.newIndices) if (!indices.includes(i)) indices.push(i);
    await this.data.removeAll(ino, indices);
    if (stray) await this.#client.omapRemove(this.#meta, superObject, [`stray.${ino}`]).catch(() => {});
  }

  async unlink(path: string): Promise<void> {
    const { dir, name, entry } = await this.#entry(path);
    if (entry.type === 'dir') throw new FsError('EISDIR', `${path} is a directory`);
    const now = Date.now();
    const removeEntry = (d: Inode, entries: Map<string, Dentry | undefined>) => {
      const current = entries.get(name);
      if (!current) throw new FsError('ENOENT', `${path} does not exist`);
      if (current.type === 'dir') throw new FsError('EISDIR', `${path} is a directory`);
      return { remove: [name], inode: { ...d, mtimeMs: now, ctimeMs: now }, result: undefined };
    };
    // Alone, the last link of a file not open here goes from the view at once and from the cluster with the next
    // round (a file still open, or with other links whose count must show at once, takes the synchronous path).
    if (this.metadata.solo && !this.#files.get(entry.ino) && (await this.metadata.inode(entry.ino)).nlink === 1) {
      if (await this.metadata.changeDirLater(dir, [name], removeEntry)) {
        if (this.metadata.cancelUnsent(entry.ino)) this.#writeBack.changed();
        else this.#writeBack.afterEntries(() => this.#dropLink(entry.ino));
        return;
      }
    }
    await this.#settled();
    await this.metadata.changeDir(dir, [name], removeEntry);
    await this.#dropLink(entry.ino);
  }

  /**
   * Marks an empty directory dead (so no entry can be added to it any more), or fails ENOTEMPTY. Entries libfuse
   * made for unlinked files still open (`.fuse_hidden*`) do not count: they are unlinked here for good.
   */
  async #killDir(ino: number, path: string): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const { names, more, inode, raw } = await this.metadata.firstEntries(ino, 16);
      if (more || names.some(([name]) => !isHidden(name))) throw new FsError('ENOTEMPTY', `${path} is not empty`);
      if (names.length > 0) {
        for (const [name] of names) await this.unlink(`${path.replace(/\/+$/, '')}/${name}`).catch(() => {});
        continue;
      }
      if (inode.dead) return;
      try {
        await this.metadata.execute(ino, [{ kind: Kind.KIND_CMPXATTR, name: 'a', value: raw }, { kind: Kind.KIND_SETXATTR, name: 'a', value: encodeInode({ ...inode, dead: true, nlink: 0, gen: inode.gen + 1 }) }]);
        this.metadata.invalidate(ino);
        return;
      } catch (error) {
        if (!isPreconditionFailed(error)) throw error;
      }
    }
    throw new StorageError('BUSY', `${path} kept changing`);
  }

  async rmdir(path: string): Promise<void> {
    await this.#settled();
    const { dir, name, entry } = await this.#entry(path);
    if (entry.type !== 'dir') throw new FsError('ENOTDIR', `${path} is not a directory`);
    await this.#killDir(entry.ino, path);
    const now = Date.now();
    await this.metadata.changeDir(dir, [name], (d, entries) => {
      const current = entries.get(name);
      if (!current || current.ino !== entry.ino) return { inode: d, result: undefined };
      return { remove: [name], inode: { ...d, nlink: Math.max(2, d.nlink - 1), mtimeMs: now, ctimeMs: now }, result: undefined };
    });
    await this.metadata.remove(entry.ino);
  }

  // ---- rename ----

  async #isAncestor(ancestor: number, of: number): Promise<boolean> {
    let ino = of;
    for (let depth = 0; depth < 4096; depth++) {
      if (ino === ancestor) return true;
      if (ino === rootIno) return false;
      ino = (await this.metadata.inode(ino)).parent;
    }
    throw new FsError('ELOOP', 'directory tree too deep');
  }

  async rename(from: string, to: string): Promise<void> {
    await this.#settled();
    const src = await this.#entry(from);
    const { parent, name: toName } = parentAndName(to);
    const toDir = await this.#resolveDir(parent);
    if (src.dir === toDir && src.name === toName) return;
    const moving = src.entry;
    if (moving.type === 'dir' && (await this.#isAncestor(moving.ino, toDir))) throw new FsError('EINVAL', `cannot move ${from} into itself`);
    const target = await this.metadata.lookup(toDir, toName);
    if (target) {
      if (target.ino === moving.ino) return;
      if (moving.type === 'dir' && target.type !== 'dir') throw new FsError('ENOTDIR', `${to} is not a directory`);
      if (moving.type !== 'dir' && target.type === 'dir') throw new FsError('EISDIR', `${to} is a directory`);
      if (target.type === 'dir') await this.#killDir(target.ino, to);
    }
    const now = Date.now();
    const dirDelta = moving.type === 'dir' ? 1 : 0;
    const replacedDir = target?.type === 'dir' ? 1 : 0;
    if (src.dir === toDir) {
      await this.metadata.changeDir(toDir, [src.name, toName], (d, entries) => {
        const current = entries.get(src.name);
        if (!current || current.ino !== moving.ino) throw new FsError('ENOENT', `${from} changed meanwhile`);
        const there = entries.get(toName);
        if ((there?.ino ?? 0) !== (target?.ino ?? 0)) throw new StorageError('BUSY', `${to} changed meanwhile; try again`);
        return { remove: [src.name], set: [[toName, moving]], inode: { ...d, nlink: d.nlink - replacedDir, mtimeMs: now, ctimeMs: now }, result: undefined };
      });
    } else {
      const intent: RenameIntent = { fromDir: src.dir, fromName: src.name, toDir, toName, ino: moving.ino, type: moving.type, replaced: target?.ino ?? 0, createdMs: now, owner: this.#client.clientName };
      const key = `intent.${now.toString(16).padStart(12, '0')}.${randomBytes(4).toString('hex')}`;
      await this.#client.omapSet(this.#meta, superObject, [[key, encodeIntent(intent)]]);
      await this.metadata.changeDir(toDir, [toName], (d, entries) => {
        const there = entries.get(toName);
        if ((there?.ino ?? 0) !== (target?.ino ?? 0)) throw new StorageError('BUSY', `${to} changed meanwhile; try again`);
        return { set: [[toName, moving]], inode: { ...d, nlink: d.nlink + dirDelta - replacedDir, mtimeMs: now, ctimeMs: now }, result: undefined };
      }).catch(async (error: unknown) => {
        await this.#client.omapRemove(this.#meta, superObject, [key]).catch(() => {});
        throw error;
      });
      await this.#finishRename(intent, now);
      await this.#client.omapRemove(this.#meta, superObject, [key]);
    }
    if (moving.type === 'dir' && src.dir !== toDir) await this.metadata.update(moving.ino, (i) => ({ inode: { ...i, parent: toDir, ctimeMs: now } }));
    else await this.metadata.update(moving.ino, (i) => ({ inode: { ...i, ctimeMs: now } })).catch(() => {});
    if (target) {
      if (target.type === 'dir') await this.metadata.remove(target.ino);
      else await this.#dropLink(target.ino);
    }
  }

  /** The second half of a cross-directory rename: the old entry goes (idempotent, also used by recovery). */
  async #finishRename(intent: RenameIntent, now: number): Promise<void> {
    await this.metadata.changeDir(intent.fromDir, [intent.fromName], (d, entries) => {
      const current = entries.get(intent.fromName);
      if (!current || current.ino !== intent.ino) return { inode: d, result: undefined };
      return { remove: [intent.fromName], inode: { ...d, nlink: d.nlink - (intent.type === 'dir' ? 1 : 0), mtimeMs: now, ctimeMs: now }, result: undefined };
    }).catch((error: unknown) => {
      if (!(error instanceof FsError && (error.errno === 'ENOENT' || error.errno === 'ENOTDIR'))) throw error;
    });
  }

  /** Rolls forward the cross-directory renames whose mount died half way (with `all`: every one). */
  async recoverIntents(all = false): Promise<number> {
    const page = await this.#client.omapList(this.#meta, superObject, { prefix: 'intent.', limit: 10_000 });
    if (page.entries.length === 0) return 0;
    const live = all ? new Set<string>() : await this.liveClients();
    let done = 0;
    for (const [key, value] of page.entries) {
      const intent = decodeIntent(value);
      if (live.has(intent.owner)) continue;
      // Whether the new entry was written decides: if it was, finish; if not, the rename never happened.
      const there = await this.metadata.lookup(intent.toDir, intent.toName).catch(() => undefined);
      if (there?.ino === intent.ino) {
        await this.#finishRename(intent, Date.now());
        if (intent.type === 'dir') await this.metadata.update(intent.ino, (i) => ({ inode: { ...i, parent: intent.toDir } })).catch(() => {});
        if (intent.replaced) {
          const replaced = await this.metadata.inode(intent.replaced, true).catch(() => undefined);
          if (replaced && typeOf(replaced.mode) === 'dir') await this.metadata.remove(intent.replaced);
          else if (replaced) await this.#dropLink(intent.replaced).catch(() => {});
        }
      }
      await this.#client.omapRemove(this.#meta, superObject, [key]);
      done++;
    }
    return done;
  }

  // ---- directories ----

  async readdir(path: string): Promise<string[]> {
    const ino = await this.resolve(path);
    const inode = await this.metadata.inode(ino);
    if (typeOf(inode.mode) !== 'dir') throw new FsError('ENOTDIR', `${path} is not a directory`);
    const known = this.metadata.knownEntries(ino);
    if (!known) await this.#settled();
    const entries = (known ?? (await this.metadata.list(ino))).filter(([name]) => !isHidden(name));
    const key = '/' + splitPath(path).join('/');
    this.#listings.delete(key);
    this.#listings.set(key, { atMs: Date.now(), position: new Map(entries.map(([name], i) => [name, i])), inos: entries.map(([, e]) => e.ino), prefetchedTo: 0 });
    for (const old of this.#listings.keys()) if (this.#listings.size > 4) this.#listings.delete(old);
    return entries.map(([name]) => name);
  }

  // ---- open files (open-files.ts) ----

  async open(path: string, flags: number): Promise<number> {
    const ino = await this.resolve(path);
    const inode = await this.metadata.inode(ino);
    if (typeOf(inode.mode) === 'dir' && (flags & 3) !== 0) throw new FsError('EISDIR', `${path} is a directory`);
    return this.#openIno(ino, flags);
  }

  async #openIno(ino: number, flags: number): Promise<number> {
    // Close-to-open: what other mounts closed before this open is what this open sees.
    return this.#files.open(ino, flags, await this.metadata.inode(ino, true));
  }

  async write(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
    return this.#files.write(fd, buffer, length, position);
  }

  async read(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
    return this.#files.read(fd, buffer, length, position);
  }

  async flush(fd: number): Promise<void> {
    await this.#files.flush(fd);
  }

  async fsync(fd: number): Promise<void> {
    // Durable means the file's name too: whatever this mount holds back goes first.
    await this.#settled();
    await this.#files.flush(fd);
  }

  async release(fd: number): Promise<void> {
    const ino = this.#files.handle(fd).ino;
    await this.locks.released(fd);
    if (await this.#files.release(fd)) await this.purge(ino);
  }

  async truncate(path: string, size: number): Promise<void> {
    await this.#truncateIno(await this.resolve(path), size);
  }

  async ftruncate(fd: number, size: number): Promise<void> {
    await this.#truncateIno(this.#files.handle(fd).ino, size);
  }

  async #truncateIno(ino: number, size: number): Promise<void> {
    await this.#settled();
    if (size < 0 || size > fileSizeMax) throw new FsError(size < 0 ? 'EINVAL' : 'EFBIG', `bad size ${size}`);
    const inode = await this.metadata.inode(ino);
    if (typeOf(inode.mode) === 'dir') throw new FsError('EISDIR', 'cannot truncate a directory');
    const file = this.#files.get(ino);
    if (file) await this.#files.flushFile(file);
    const listed = await this.metadata.execute(ino, [{ kind: Kind.KIND_OMAP_LIST, prefix: 'o.', after: '', limit: 100_000 }]);
    const indices = (listed.results[0]?.entries ?? []).map((e) => parseObjectKey(e.key ?? '')).filter((i): i is number => i !== undefined);
    // Data first, then the size: a crash in between leaves the old size over zeros, never old bytes past a new end.
    if (file) file.readahead.clear();
    const removed = await this.data.truncate(ino, size, indices);
    const now = Date.now();
    await this.metadata.update(ino, (i) => ({
      inode: { ...i, size, mtimeMs: now, ctimeMs: now },
      ops: removed.length ? [{ kind: Kind.KIND_OMAP_RM, keys: removed.map(objectKey) }] : [],
    }));
    if (file) {
      file.size = size;
      file.mtimeMs = now;
      file.dirty = false;
    }
  }

  // ---- extended attributes ----

  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    checkXattrNamespace(name);
    await this.#settled();
    const ino = await this.resolve(path);
    if (name.length === 0 || Buffer.byteLength(name) > 255) throw new FsError('ERANGE', 'xattr names are 1-255 bytes');
    if (value.length > 64 * 1024) throw new FsError('ERANGE', 'xattr values are at most 64 KiB');
    const key = xattrPrefix + name;
    const exists = async () => (await this.metadata.execute(ino, [{ kind: Kind.KIND_GETXATTRS }])).results[0]?.entries?.some((e) => e.key === key) ?? false;
    if (flags & 1 && (await exists())) throw new FsError('EEXIST', `xattr ${name} exists`);
    if (flags & 2 && !(await exists())) throw new FsError('ENODATA', `no xattr ${name}`);
    const now = Date.now();
    await this.metadata.update(ino, (i) => ({ inode: { ...i, ctimeMs: now }, ops: [{ kind: Kind.KIND_SETXATTR, name: key, value }] }));
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    // ACLs and security labels are not stored (ls -l asks for them on every file): answer without a round trip.
    if (!storedXattr(name)) {
      await this.resolve(path);
      throw new FsError('ENODATA', `no xattr ${name}`);
    }
    await this.#settled();
    const ino = await this.resolve(path);
    // All of them in one read: a missing xattr must be ENODATA, not the ENOENT of a missing inode.
    const reply = await this.metadata.execute(ino, [{ kind: Kind.KIND_GETXATTRS }]);
    const found = (reply.results[0]?.entries ?? []).find((e) => e.key === xattrPrefix + name);
    if (!found) throw new FsError('ENODATA', `no xattr ${name}`);
    return Buffer.from(found.value ?? new Uint8Array());
  }

  async listxattr(path: string): Promise<string[]> {
    await this.#settled();
    const ino = await this.resolve(path);
    const reply = await this.metadata.execute(ino, [{ kind: Kind.KIND_GETXATTRS }]);
    return (reply.results[0]?.entries ?? []).map((e) => e.key ?? '').filter((k) => k.startsWith(xattrPrefix)).map((k) => k.slice(xattrPrefix.length));
  }

  async removexattr(path: string, name: string): Promise<void> {
    const ino = await this.resolve(path);
    const names = await this.listxattr(path);
    if (!names.includes(name)) throw new FsError('ENODATA', `no xattr ${name}`);
    const now = Date.now();
    await this.metadata.update(ino, (i) => ({ inode: { ...i, ctimeMs: now }, ops: [{ kind: Kind.KIND_RMXATTR, name: xattrPrefix + name }] }));
  }

  // ---- the filesystem ----

  async statfs(): Promise<{ bsize: number; frsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number; favail: number; namemax: number }> {
    const stats = await this.#client.monitors.stats();
    const total = stats.reduce((s, x) => s + Number(x.totalBytes ?? 0), 0);
    const avail = stats.reduce((s, x) => s + Number(x.availableBytes ?? 0), 0);
    const size = this.#client.map().pools.find((p) => p.name === this.superblock.dataPool)?.size || 1;
    const bsize = 4096;
    const blocks = Math.min(0xffffffff, Math.floor(total / size / bsize));
    const free = Math.min(blocks, Math.floor(avail / size / bsize));
    return { bsize, frsize: bsize, blocks, bfree: free, bavail: free, files: 0xffffffff, ffree: 0xffffff00, favail: 0xffffff00, namemax: nameMaxBytes };
  }

  /** Test hook and tool: forget what this mount cached (its own changes are already in the cluster). */
  invalidate(): void {
    this.metadata.invalidate();
  }

  typeOfEntry(entry: Dentry): FileType {
    return entry.type;
  }
}
