/**
 * The kernel side: a FileSystem mounted through fuse-native (libfuse2, high-level path API). The only module that
 * loads fuse-native. Mount options chosen for correctness across mounts:
 * - attr_timeout=0, entry_timeout=0, negative_timeout=0: the kernel asks us for every lookup and stat, so a chmod,
 *   link or rename through one name (or another mount) is seen at once through any other name;
 * - no hard_remove: libfuse2 then renames a file unlinked while open to `.fuse_hidden*` (the only way its handle
 *   keeps working: libfuse2 answers ENOENT to fstat of a nameless node); the namespace hides those names from
 *   readdir and `rmdir` removes them for good, so an unlinked open file never keeps `rmdir` from working;
 * - use_ino: st_ino is ours, so hard links show one inode number;
 * - flock and POSIX (fcntl) locks go to the namespace (cluster-wide), with no time limit for a blocking one;
 * - big_writes, max_read/max_write of 1 MiB: large requests (past libfuse2's 128 KiB through the patched channel,
 *   fuse/README.md); the page cache is used for reads and dropped at
 *   each open (libfuse2's default without kernel_cache), which is close-to-open.
 * fuse-native builds its option string from a fixed list and drops what it does not know, so the others ride in
 * after `fsname` (libfuse splits the string at commas).
 */
import Fuse from 'fuse-native';
import type { Logger } from '../../src/index.js';
import type { FileSystem } from '../fs/index.js';
import { errnoFor, errnoNameFor } from './errno.js';

export interface MountOptions {
  /** Extra `-o` options passed through (allow_other, ro, ...). */
  options?: string[];
  debug?: boolean;
  /** How long one kernel request may take before the caller gets ETIMEDOUT. */
  timeoutMs?: number;
  logger?: Logger;
}

export interface Mount {
  mountPoint: string;
  unmount(): Promise<void>;
  /** Read and write requests the kernel sent, and the largest of each (bytes): shows whether 1 MiB requests are in use. */
  requests(): RequestCounts;
}

export interface RequestCounts {
  reads: number;
  largestRead: number;
  writes: number;
  largestWrite: number;
}

const safeOptions = ['use_ino', 'attr_timeout=0', 'entry_timeout=0', 'negative_timeout=0', 'big_writes', 'max_read=1048576', 'max_write=1048576', 'default_permissions'];

function checkOption(option: string): string {
  if (!/^[A-Za-z0-9_]+(=[A-Za-z0-9_.:/-]*)?$/.test(option)) throw new Error(`bad mount option ${JSON.stringify(option)}`);
  return option;
}

type Cb = (errno: number, ...results: unknown[]) => void;

/**
 * How long the FUSE thread may answer getattr of a directory with what the namespace last said (fuse-native.patch,
 * "directory attributes"). Below the namespace's own lease, so another mount's change still shows within 1 s; this
 * mount's own changes forget the directories they touch before they are answered.
 */
const directoryAttrMs = 250;

/** The patched fuse-native passes UTIME_OMIT as 2^48-1 ms (fuse/adapter/fuse-native.patch). */
const utimeOmitMs = 0xffffffffffff;

function parentOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at <= 0 ? '/' : path.slice(0, at);
}

function timeOrOmit(ms: number): number | undefined {
  return ms === utimeOmitMs ? undefined : ms;
}

export async function mountFileSystem(fs: FileSystem, mountPoint: string, options: MountOptions = {}): Promise<Mount> {
  const logger = options.logger;
  const extra = (options.options ?? []).flatMap((o) => o.split(',')).filter((o) => o.length > 0).map(checkOption);
  const fsname = [`shoal:${fs.name}`, ...safeOptions, ...extra].join(',');
  const counts: RequestCounts = { reads: 0, largestRead: 0, writes: 0, largestWrite: 0 };
  // Bumped by every change: a getattr that overlapped one does not leave its (maybe older) answer in the FUSE thread.
  let generation = 0;
  let fuse: Fuse | undefined;
  /** Directories a change touched, forgotten by the FUSE thread before the change is answered: [path, descendants]. */
  const forget = (paths: [string, boolean][]) => {
    generation++;
    for (const [path, descendants] of paths) fuse?.forgetDirectory(path, descendants);
  };
  const entryChange = (path: string): [string, boolean][] => [[path, true], [parentOf(path), false]];
  const run = <T>(op: string, work: () => Promise<T>, cb: Cb, answer: (value: T) => unknown[] = () => [], touched: [string, boolean][] = []) => {
    // Whether the change worked or not, the directories it touched are forgotten before it is answered.
    const settled = touched.length > 0 ? work().finally(() => forget(touched)) : work();
    settled.then(
      (value) => cb(0, ...answer(value)),
      (error: unknown) => {
        const name = errnoNameFor(error);
        if (name === 'EIO' || name === 'ETIMEDOUT') logger?.warn('operation failed', { op, error: String(error) });
        cb(errnoFor(error));
      },
    );
  };
  const ops = {
    getattr: (path: string, cb: Cb) => {
      const asked = generation;
      run('getattr', () => fs.getattr(path), cb, (s) => {
        if (asked === generation && (s.mode & 0o170000) === 0o040000) fuse?.cacheDirectory(path, s, directoryAttrMs);
        return [s];
      });
    },
    fgetattr: (path: string, fd: number, cb: Cb) => run('fgetattr', () => (fd ? fs.fgetattr(fd) : fs.getattr(path)), cb, (s) => [s]),
    flock: (_path: string, fd: number, op: number, cb: Cb) => run('flock', () => fs.flock(fd, op), cb),
    lock: (_path: string, fd: number, cmd: number, lock: { type: number; start: number; len: number }, owner: number, cb: Cb) =>
      run('lock', () => fs.lock(fd, cmd, lock, owner), cb, (found) => [found]),
    readdir: (path: string, cb: Cb) => run('readdir', () => fs.readdir(path), cb, (names) => [['.', '..', ...names]]),
    open: (path: string, flags: number, cb: Cb) => run('open', () => fs.open(path, flags), cb, (fd) => [fd]),
    create: (path: string, mode: number, cb: Cb) => run('create', () => fs.create(path, mode), cb, (fd) => [fd], entryChange(path)),
    read: (_path: string, fd: number, buffer: Buffer, length: number, position: number, cb: (n: number) => void) => {
      counts.reads++;
      counts.largestRead = Math.max(counts.largestRead, length);
      void fs.read(fd, buffer, length, position).then((n) => cb(n), (error: unknown) => cb(errnoFor(error)));
    },
    write: (_path: string, fd: number, buffer: Buffer, length: number, position: number, cb: (n: number) => void) => {
      counts.writes++;
      counts.largestWrite = Math.max(counts.largestWrite, length);
      void fs.write(fd, buffer, length, position).then((n) => cb(n), (error: unknown) => cb(errnoFor(error)));
    },
    flush: (_path: string, fd: number, cb: Cb) => run('flush', () => fs.flush(fd), cb),
    fsync: (_path: string, _datasync: boolean, fd: number, cb: Cb) => run('fsync', () => fs.fsync(fd), cb),
    release: (_path: string, fd: number, cb: Cb) => run('release', () => fs.release(fd), cb),
    truncate: (path: string, size: number, cb: Cb) => run('truncate', () => fs.truncate(path, size), cb, undefined, [[path, false]]),
    ftruncate: (_path: string, fd: number, size: number, cb: Cb) => run('ftruncate', () => fs.ftruncate(fd, size), cb),
    mkdir: (path: string, mode: number, cb: Cb) => run('mkdir', () => fs.mkdir(path, mode), cb, undefined, entryChange(path)),
    mknod: (path: string, mode: number, _dev: number, cb: Cb) => run('mknod', () => fs.mknod(path, mode), cb, undefined, entryChange(path)),
    rmdir: (path: string, cb: Cb) => run('rmdir', () => fs.rmdir(path), cb, undefined, entryChange(path)),
    unlink: (path: string, cb: Cb) => run('unlink', () => fs.unlink(path), cb, undefined, entryChange(path)),
    rename: (from: string, to: string, cb: Cb) => run('rename', () => fs.rename(from, to), cb, undefined, [...entryChange(from), ...entryChange(to)]),
    link: (from: string, to: string, cb: Cb) => run('link', () => fs.link(from, to), cb, undefined, entryChange(to)),
    symlink: (target: string, path: string, cb: Cb) => run('symlink', () => fs.symlink(target, path), cb, undefined, entryChange(path)),
    readlink: (path: string, cb: Cb) => run('readlink', () => fs.readlink(path), cb, (t) => [t]),
    chmod: (path: string, mode: number, cb: Cb) => run('chmod', () => fs.chmod(path, mode), cb, undefined, [[path, false]]),
    chown: (path: string, uid: number, gid: number, cb: Cb) => run('chown', () => fs.chown(path, uid, gid), cb, undefined, [[path, false]]),
    utimens: (path: string, atime: number, mtime: number, cb: Cb) => run('utimens', () => fs.utimens(path, timeOrOmit(atime), timeOrOmit(mtime)), cb, undefined, [[path, false]]),
    setxattr: (path: string, name: string, value: Buffer, _position: number, flags: number, cb: Cb) =>
      run('setxattr', () => fs.setxattr(path, name, Buffer.from(value), flags), cb, undefined, [[path, false]]),
    getxattr: (path: string, name: string, _position: number, cb: Cb) => run('getxattr', () => fs.getxattr(path, name), cb, (v) => [v]),
    listxattr: (path: string, cb: Cb) => run('listxattr', () => fs.listxattr(path), cb, (names) => [names]),
    removexattr: (path: string, name: string, cb: Cb) => run('removexattr', () => fs.removexattr(path, name), cb, undefined, [[path, false]]),
    statfs: (_path: string, cb: Cb) => run('statfs', () => fs.statfs(), cb, (s) => [s]),
  };
  const mounted = new Fuse(mountPoint, ops as unknown as Record<string, (...args: never[]) => void>, {
    fsname,
    force: true,
    debug: options.debug ?? false,
    // A blocking flock waits as long as the holder keeps its lock; everything else is bounded.
    timeout: { default: options.timeoutMs ?? 15_000, flock: false, lock: false },
  });
  fuse = mounted;
  await new Promise<void>((resolve, reject) => mounted.mount((error) => (error ? reject(error) : resolve())));
  let unmounted: Promise<void> | undefined;
  return {
    mountPoint,
    requests: () => ({ ...counts }),
    unmount: () =>
      (unmounted ??= (async () => {
        await new Promise<void>((resolve) => mounted.unmount((error) => {
          if (error) logger?.warn('unmount failed', { error: String(error) });
          resolve();
        }));
        await fs.close();
      })()),
  };
}
