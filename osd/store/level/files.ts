/**
 * The data files of a LevelStore: `data/<xx>/<id as 16 hex digits>`, where `xx` is (id / 1024) mod 256, so no
 * directory grows past about 1/256 of the files and files created together share a directory. Files are raw object bytes; a file may be shorter than its object (the
 * rest reads as zeros) and may hold stale bytes past the object's end (never read).
 */
import { constants } from 'node:fs';
import { mkdir, open, readdir, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { bufferPool, webAssembly } from '../../../src/common/index.js';

const fanout = 256;
/** Data files kept open between uses. */
const openFilesMax = 128;
/** Of those, O_DIRECT handles kept for appends. */
const directHandlesMax = 32;

interface CachedFile {
  fh: FileHandle;
  users: number;
  /** Removed while leased: closed when the last lease ends. */
  doomed: boolean;
}

/** Use of an open data file; `close` ends the lease (the file may stay open for the next user). */
export interface FileLease {
  readonly fh: FileHandle;
  close(): Promise<void>;
}
const idsPerDirRun = 1024;
const zeroChunk = Buffer.alloc(1024 * 1024);
/** O_DIRECT where the platform has it (Linux), else 0 (never used). */
const directFlag = constants.O_DIRECT ?? 0;
/** Alignment of direct writes' memory, file offset and length: 4 KiB suits every block device's logical block. */
export const directAlign = 4096;
/** Bytes written per direct write call, through one staging buffer. */
const directPieceBytes = 1024 * 1024;
/** Directory handles kept open for fsync (see `DataFiles.syncDir`). */
const dirHandlesMax = 16;
/** Staging buffers per store: new files written at once beyond this wait for one. */
const stagingBuffersMax = 4;


/** A data file being written by a commit. */
export interface NewFile {
  fh: FileHandle;
  /** Opened with O_DIRECT: written only through `DataFiles.writeNew`. */
  direct: boolean;
  readonly path: string;
}

/**
 * Memory aligned for O_DIRECT: WebAssembly memory starts on a page boundary (Node has no other way to ask for
 * aligned memory), cut into equal buffers at multiples of 4 KiB and lent to one writer at a time.
 */
class StagingBuffers {
  readonly #free: Buffer[] = [];
  readonly #waiting: ((buffer: Buffer) => void)[] = [];
  readonly #count: number;
  readonly #bytes: number;
  #made = false;

  constructor(count: number, bytes: number) {
    this.#count = count;
    this.#bytes = bytes;
  }

  take(): Promise<Buffer> {
    if (!this.#made) {
      // Made on first use, so a store that never writes a data file holds none of it.
      const memory = new webAssembly.Memory({ initial: Math.ceil((this.#count * this.#bytes) / 65536) });
      for (let i = 0; i < this.#count; i++) this.#free.push(Buffer.from(memory.buffer, i * this.#bytes, this.#bytes));
      this.#made = true;
    }
    const buffer = this.#free.pop();
    if (buffer) return Promise.resolve(buffer);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  give(buffer: Buffer): void {
    const waiter = this.#waiting.shift();
    if (waiter) waiter(buffer);
    else this.#free.push(buffer);
  }
}

export class DataFiles {
  readonly root: string;
  /** fsync calls on files and directories, for tests that count how well commits share them. */
  syncs = 0;

  /** `direct`: write new files with O_DIRECT where the platform and file system allow it (default true). */
  constructor(root: string, options: { direct?: boolean } = {}) {
    this.root = root;
    this.#direct = (options.direct ?? true) && directFlag !== 0;
  }

  /** Runs of 1024 consecutive ids share a directory, so the files of one commit group need one directory fsync. */
  dirOf(id: number): string {
    return join(this.root, (Math.floor(id / idsPerDirRun) % fanout).toString(16).padStart(2, '0'));
  }

  pathOf(id: number): string {
    return join(this.dirOf(id), id.toString(16).padStart(16, '0'));
  }

  /** Fan-out directories known to exist durably. */
  #dirs = new Set<string>();

  /**
   * Creates the root (durably) and learns which fan-out directories exist; the rest are made on first use. Files
   * left in the staging directory belong to no commit (see staging.ts): they go.
   */
  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await this.syncDir(join(this.root, '..'));
    await rm(this.#stagingDir, { recursive: true, force: true });
    this.#dirs = new Set((await readdir(this.root)).map((name) => join(this.root, name)));
  }

  /** Where files written ahead of their commit wait (staging.ts); its name is no fan-out directory's. */
  get #stagingDir(): string {
    return join(this.root, 'staging');
  }

  #stagedCount = 0;

  /** Creates a file in the staging directory, to be filled by `writeNew`, synced, and later given an id by `promote`. */
  async createStaged(): Promise<NewFile> {
    await this.#ensureDir(this.#stagingDir);
    const path = join(this.#stagingDir, String(this.#stagedCount++));
    return this.#openNew(path);
  }

  /** Renames a staged file to the path of data file `id`; the caller syncs that directory before committing. */
  async promote(stagedPath: string, id: number): Promise<void> {
    await this.#ensureDir(this.dirOf(id));
    await rename(stagedPath, this.pathOf(id));
  }

  async #ensureDir(dir: string): Promise<void> {
    if (this.#dirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    await this.syncDir(this.root);
    this.#dirs.add(dir);
  }

  /**
   * fsync of a directory, through a handle kept open (fan-out directories are never removed, and new ids fill one
   * run of them at a time, so a few handles serve): opening and closing it for each sync were two more thread-pool
   * round trips per commit group and per garbage pass.
   */
  async syncDir(dir: string): Promise<void> {
    let opening = this.#dirHandles.get(dir);
    if (opening === undefined) {
      opening = open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
      this.#dirHandles.set(dir, opening);
      if (this.#dirHandles.size > dirHandlesMax) {
        const [oldest, handle] = this.#dirHandles.entries().next().value as [string, Promise<FileHandle>];
        this.#dirHandles.delete(oldest);
        // FileHandle.close waits for operations still running on it (a sync of another caller).
        void handle.then((h) => h.close()).catch(() => {});
      }
    }
    try {
      await (await opening).sync();
      this.syncs++;
    } catch (error) {
      this.#dirHandles.delete(dir);
      await opening.then((handle) => handle.close()).catch(() => {});
      throw error;
    }
  }

  readonly #dirHandles = new Map<string, Promise<FileHandle>>();

  /** Whether new files are still written with O_DIRECT (off for good after the file system refused it once). */
  #direct: boolean;
  readonly #staging = new StagingBuffers(stagingBuffersMax, directPieceBytes);

  /** Creates a new data file to be filled by `writeNew` (then synced and closed by the caller). */
  async create(id: number): Promise<NewFile> {
    await this.#ensureDir(this.dirOf(id));
    return this.#openNew(this.pathOf(id));
  }

  async #openNew(path: string): Promise<NewFile> {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC;
    if (this.#direct) {
      try {
        return { fh: await open(path, flags | directFlag, 0o644), direct: true, path };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
        // tmpfs and some other file systems have no O_DIRECT: buffered writes from now on.
        this.#direct = false;
      }
    }
    return { fh: await open(path, flags, 0o644), direct: false, path };
  }

  /**
   * Writes `data` at `position` (a multiple of 4 KiB when the file is direct) of a file from `create`. A direct file
   * is written through an aligned staging buffer, its last piece padded with zeros to 4 KiB: bytes past an object's
   * end are never read. Why O_DIRECT: on the VMs Shoal was measured on, filling fresh page-cache pages cost 10-25 ms
   * of kernel CPU per 4 MiB file against about 1 ms written directly (BlueStore writes directly too).
   */
  async writeNew(file: NewFile, data: Uint8Array, position: number): Promise<void> {
    if (!file.direct) return writeAll(file.fh, data, position);
    const done = await this.#writeStaged(file.fh, data, position);
    if (done === data.length) return;
    // The device wants a larger alignment than 4 KiB: this file and every later one buffered.
    file.direct = false;
    await file.fh.close();
    file.fh = await open(file.path, constants.O_WRONLY);
    return writeAll(file.fh, data.subarray(done), position + done);
  }

  /**
   * Writes `data` at `position` (a multiple of 4 KiB) of existing file `id` (leased as `lease`) with O_DIRECT. A
   * length that is not a multiple of 4 KiB is padded with zeros, so such a write must end at the object's end (an
   * append): the padding lands where nothing is read. Buffered through the lease where direct writes are off. The
   * caller syncs.
   */
  async writeDirect(id: number, lease: FileLease, data: Uint8Array, position: number): Promise<void> {
    if (!this.#direct) return writeAll(lease.fh, data, position);
    let fh = this.#directHandles.get(id);
    if (fh) {
      this.#directHandles.delete(id);
    } else {
      fh = await open(this.pathOf(id), constants.O_WRONLY | directFlag);
      while (this.#directHandles.size >= directHandlesMax) {
        const [oldest, handle] = this.#directHandles.entries().next().value as [number, FileHandle];
        this.#directHandles.delete(oldest);
        await handle.close();
      }
    }
    this.#directHandles.set(id, fh);
    const done = await this.#writeStaged(fh, data, position);
    if (done < data.length) await writeAll(lease.fh, data.subarray(done), position + done);
  }

  /** O_DIRECT handles of existing files, for appends (most recently used last); closed with the file's removal. */
  readonly #directHandles = new Map<number, FileHandle>();

  /**
   * Writes with O_DIRECT (position a multiple of 4 KiB): the whole 4 KiB blocks of a pooled buffer that starts
   * aligned (`bufferPool.startsAligned`: a payload the messenger received, a coded shard) from where they lie, the
   * rest through the aligned staging buffers, the last piece padded. Returns the bytes written: fewer than
   * `data.length` when the device refused the alignment (direct writes are then off).
   */
  async #writeStaged(fh: FileHandle, data: Uint8Array, position: number): Promise<number> {
    if (position % directAlign !== 0) throw new TypeError(`direct write at ${position}, not a multiple of ${directAlign}`);
    let done = 0;
    try {
      while (done < data.length) {
        const rest = data.subarray(done);
        const blocks = rest.length - (rest.length % directAlign);
        if (blocks > 0 && bufferPool.startsAligned(rest, directAlign)) {
          await writeAll(fh, rest.subarray(0, blocks), position + done);
          done += blocks;
        } else {
          const piece = rest.subarray(0, directPieceBytes);
          await this.#writeThroughStaging(fh, piece, position + done);
          done += piece.length;
        }
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
      this.#direct = false;
    }
    return done;
  }

  async #writeThroughStaging(fh: FileHandle, piece: Uint8Array, position: number): Promise<void> {
    const padded = Math.ceil(piece.length / directAlign) * directAlign;
    const buffer = await this.#staging.take();
    try {
      buffer.set(piece);
      buffer.fill(0, piece.length, padded);
      await writeAll(fh, buffer.subarray(0, padded), position);
    } finally {
      this.#staging.give(buffer);
    }
  }

  /** Open files kept for reuse (most recently used last). */
  #cache = new Map<number, CachedFile>();
  #opening = new Map<number, Promise<CachedFile | undefined>>();

  /** Leases an existing file (from the cache of open files); undefined when it does not exist. */
  async openExisting(id: number): Promise<FileLease | undefined> {
    let entry = this.#cache.get(id);
    if (entry) {
      this.#cache.delete(id);
      this.#cache.set(id, entry);
    } else {
      let opening = this.#opening.get(id);
      if (!opening) {
        opening = open(this.pathOf(id), constants.O_RDWR)
          .then(
            (fh) => {
              const created: CachedFile = { fh, users: 0, doomed: false };
              this.#cache.set(id, created);
              return created;
            },
            (error: unknown) => {
              if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
              throw error;
            },
          )
          .finally(() => this.#opening.delete(id));
        this.#opening.set(id, opening);
      }
      entry = await opening;
      if (!entry) return undefined;
    }
    if (entry.doomed) return undefined;
    const leased = entry;
    leased.users++;
    let released = false;
    return {
      fh: leased.fh,
      close: async () => {
        if (released) return;
        released = true;
        leased.users--;
        if (leased.doomed && leased.users === 0) await leased.fh.close();
        else await this.#evict();
      },
    };
  }

  /** Leases an existing file; a missing one is an ENOENT error. */
  async openRead(id: number): Promise<FileLease> {
    const lease = await this.openExisting(id);
    if (!lease) throw Object.assign(new Error(`data file ${id} does not exist`), { code: 'ENOENT' });
    return lease;
  }

  async #evict(): Promise<void> {
    if (this.#cache.size <= openFilesMax) return;
    for (const [id, entry] of this.#cache) {
      if (this.#cache.size <= openFilesMax) return;
      if (entry.users > 0) continue;
      this.#cache.delete(id);
      await entry.fh.close();
    }
  }

  /** Closes every cached file (at stop; nothing may hold a lease). */
  async closeAll(): Promise<void> {
    const dirs = await Promise.allSettled(this.#dirHandles.values());
    const handles = [...this.#cache.values()].map((e) => e.fh).concat([...this.#directHandles.values()]);
    for (const dir of dirs) if (dir.status === 'fulfilled') handles.push(dir.value);
    this.#cache.clear();
    this.#directHandles.clear();
    this.#dirHandles.clear();
    await Promise.allSettled(handles.map((fh) => fh.close()));
  }

  /** fdatasync: the data and what reading it needs (the size), not the times. */
  async sync(handle: FileHandle): Promise<void> {
    await handle.datasync();
    this.syncs++;
  }

  /** Removes a file; a missing one is fine (removal is retried after a crash). */
  async remove(id: number): Promise<void> {
    const direct = this.#directHandles.get(id);
    if (direct) {
      this.#directHandles.delete(id);
      await direct.close();
    }
    const entry = this.#cache.get(id);
    if (entry) {
      this.#cache.delete(id);
      entry.doomed = true;
      if (entry.users === 0) await entry.fh.close();
    }
    try {
      await unlink(this.pathOf(id));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /** Every data file on disk, by id (ids past 2^53 cannot be ours and come back as Infinity). */
  async list(): Promise<{ id: number; path: string }[]> {
    const out: { id: number; path: string }[] = [];
    for (const dir of this.#dirs) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      for (const name of names) {
        if (!/^[0-9a-f]{16}$/.test(name)) continue;
        const id = parseInt(name, 16);
        out.push({ id: Number.isSafeInteger(id) ? id : Infinity, path: join(dir, name) });
      }
    }
    return out;
  }

  async removePath(path: string): Promise<void> {
    try {
      await unlink(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/** Writes all of `data` at `position` (looping over short writes). */
export async function writeAll(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

export async function writeZeros(handle: FileHandle, position: number, length: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const n = Math.min(zeroChunk.length, length - done);
    await writeAll(handle, zeroChunk.subarray(0, n), position + done);
    done += n;
  }
}

/**
 * Reads `length` bytes at `position`; bytes past the end of the file read as zeros. The buffer comes from the
 * process's pool: an OSD hands it to the messenger as a reply payload, which gives it back once sent.
 */
export async function readFully(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const out = bufferPool.acquire(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  out.fill(0, done);
  return out;
}
