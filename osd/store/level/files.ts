/**
 * The data files of a LevelStore: `data/<xx>/<id as 16 hex digits>`, where `xx` is (id / 1024) mod 256, so no
 * directory grows past about 1/256 of the files and files created together share a directory. Files are raw object bytes; a file may be shorter than its object (the
 * rest reads as zeros) and may hold stale bytes past the object's end (never read).
 */
import { constants } from 'node:fs';
import { mkdir, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

const fanout = 256;
const idsPerDirRun = 1024;
const zeroChunk = Buffer.alloc(1024 * 1024);

export class DataFiles {
  readonly root: string;
  /** fsync calls on files and directories, for tests that count how well commits share them. */
  syncs = 0;

  constructor(root: string) {
    this.root = root;
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

  /** Creates the root (durably) and learns which fan-out directories exist; the rest are made on first use. */
  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await this.syncDir(join(this.root, '..'));
    this.#dirs = new Set((await readdir(this.root)).map((name) => join(this.root, name)));
  }

  async #ensureDir(dir: string): Promise<void> {
    if (this.#dirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    await this.syncDir(this.root);
    this.#dirs.add(dir);
  }

  async syncDir(dir: string): Promise<void> {
    const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await handle.sync();
      this.syncs++;
    } finally {
      await handle.close();
    }
  }

  async create(id: number): Promise<FileHandle> {
    await this.#ensureDir(this.dirOf(id));
    return open(this.pathOf(id), constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o644);
  }

  /** Opens an existing file for reading and writing; undefined when it does not exist. */
  async openExisting(id: number): Promise<FileHandle | undefined> {
    try {
      return await open(this.pathOf(id), constants.O_RDWR);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async openRead(id: number): Promise<FileHandle> {
    return open(this.pathOf(id), constants.O_RDONLY);
  }

  async sync(handle: FileHandle): Promise<void> {
    await handle.sync();
    this.syncs++;
  }

  /** Removes a file; a missing one is fine (removal is retried after a crash). */
  async remove(id: number): Promise<void> {
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

/** Reads `length` bytes at `position`; bytes past the end of the file read as zeros. */
export async function readFully(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return out;
}
