/**
 * The files this mount has open: handles, write-behind (in-order buffers of up to 4 MiB, at most 4 in flight, written
 * through for O_DIRECT/O_SYNC), sequential read-ahead of whole objects, and the flush of size, mtime and object list
 * to the inode at close and fsync (close-to-open consistency; see fuse/README.md).
 */
import { StorageError, wire } from '../../src/index.js';
import { objectKey, type FileData } from './data.js';
import type { Inode } from './encoding.js';
import { FsError } from './errors.js';
import { fileSizeMax } from './layout.js';
import type { Metadata } from './metadata.js';

const Kind = wire.ObjectOp.Kind;
const writeBufferMax = 4 * 1024 * 1024;
const writesInflightMax = 4;
/** open(2) flags (Linux x86-64) that turn write-behind off. */
const O_DIRECT = 0o40000;
const O_DSYNC = 0o10000;
const O_SYNC = 0o4010000;

interface WriteBuffer {
  offset: number;
  parts: Buffer[];
  length: number;
}

/** Per-inode state of the files this mount has open. */
export interface OpenFile {
  ino: number;
  opens: number;
  dirty: boolean;
  size: number;
  mtimeMs: number;
  newIndices: Set<number>;
  pending: WriteBuffer | undefined;
  inflight: Set<Promise<void>>;
  error: unknown;
  unlinked: boolean;
  /** Whole data objects read ahead for sequential reads (dropped by writes, truncates and each open). */
  readahead: Map<number, Promise<Buffer>>;
  lastReadEnd: number;
}

interface Handle {
  ino: number;
  flags: number;
}

export class OpenFiles {
  readonly #data: FileData;
  readonly #metadata: Metadata;
  readonly #files = new Map<number, OpenFile>();
  readonly #handles = new Map<number, Handle>();
  #nextFd = 1;

  constructor(data: FileData, metadata: Metadata) {
    this.#data = data;
    this.#metadata = metadata;
  }

  handle(fd: number): Handle {
    const h = this.#handles.get(fd);
    if (!h) throw new FsError('EBADF', `no open file ${fd}`);
    return h;
  }

  /** Opens inode `ino` (whose attributes were just read from the cluster: close-to-open); returns the handle. */
  open(ino: number, flags: number, inode: Inode): number {
    let file = this.#files.get(ino);
    if (!file) {
      file = { ino, opens: 0, dirty: false, size: inode.size, mtimeMs: inode.mtimeMs, newIndices: new Set(), pending: undefined, inflight: new Set(), error: undefined, unlinked: false, readahead: new Map(), lastReadEnd: 0 };
      this.#files.set(ino, file);
    }
    file.opens++;
    // Close-to-open: data read ahead before this open may be older than what another mount closed since.
    file.readahead.clear();
    const fd = this.#nextFd++;
    this.#handles.set(fd, { ino, flags });
    return fd;
  }

  file(ino: number): OpenFile {
    const file = this.#files.get(ino);
    if (!file) throw new FsError('EBADF', `inode ${ino} is not open`);
    return file;
  }

  #startWrite(file: OpenFile): void {
    const pending = file.pending;
    if (!pending) return;
    file.pending = undefined;
    file.readahead.clear();
    const data = pending.parts.length === 1 ? (pending.parts[0] as Buffer) : Buffer.concat(pending.parts, pending.length);
    const p: Promise<void> = this.#data
      .write(file.ino, pending.offset, data)
      .then((indices) => {
        for (const i of indices) file.newIndices.add(i);
      })
      .catch((error: unknown) => {
        file.error ??= error;
      })
      .finally(() => file.inflight.delete(p));
    file.inflight.add(p);
  }

  async drain(file: OpenFile): Promise<void> {
    this.#startWrite(file);
    while (file.inflight.size > 0) await Promise.all([...file.inflight]);
    if (file.error) {
      const error = file.error;
      file.error = undefined;
      throw error instanceof StorageError ? error : new FsError('EIO', String(error));
    }
  }

  async write(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
    const handle = this.handle(fd);
    const file = this.file(handle.ino);
    if (file.error) await this.drain(file);
    if (position + length > fileSizeMax) throw new FsError('EFBIG', `files end at ${fileSizeMax} bytes`);
    // The caller's buffer is reused as soon as we answer: keep a copy.
    const copy = Buffer.allocUnsafe(length);
    buffer.copy(copy, 0, 0, length);
    const pending = file.pending;
    if (pending && pending.offset + pending.length === position && pending.length + length <= writeBufferMax) {
      pending.parts.push(copy);
      pending.length += length;
    } else {
      this.#startWrite(file);
      file.pending = { offset: position, parts: [copy], length };
    }
    if ((file.pending?.length ?? 0) >= writeBufferMax) this.#startWrite(file);
    file.size = Math.max(file.size, position + length);
    file.mtimeMs = Date.now();
    file.dirty = true;
    // O_DIRECT: the data is in the cluster when write returns; O_SYNC/O_DSYNC: the size too.
    if (handle.flags & (O_DIRECT | O_SYNC | O_DSYNC)) {
      if (handle.flags & (O_SYNC | O_DSYNC)) await this.flushFile(file);
      else await this.drain(file);
      return length;
    }
    while (file.inflight.size >= writesInflightMax) await Promise.race([...file.inflight]);
    return length;
  }

  async read(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
    const file = this.file(this.handle(fd).ino);
    if (file.pending || file.inflight.size > 0) await this.drain(file);
    const size = Math.max(file.dirty ? file.size : (await this.#metadata.inode(file.ino)).size, file.size);
    const n = Math.max(0, Math.min(length, size - position));
    const objectSize = this.#data.objectSize;
    const index = Math.floor(position / objectSize);
    const sequential = position === file.lastReadEnd || file.readahead.has(index);
    file.lastReadEnd = position + n;
    if (n === 0 || !sequential || Math.floor((position + n - 1) / objectSize) !== index) return this.#data.read(file.ino, size, position, length, buffer);
    // Sequential: whole objects, the next one fetched while this one is served.
    const object = await this.#readAhead(file, index);
    if ((index + 1) * objectSize < size) void this.#readAhead(file, index + 1).catch(() => {});
    const inner = position - index * objectSize;
    const copied = object.copy(buffer, 0, Math.min(inner, object.length), Math.min(inner + n, object.length));
    buffer.fill(0, copied, n);
    return n;
  }

  #readAhead(file: OpenFile, index: number): Promise<Buffer> {
    let p = file.readahead.get(index);
    if (!p) {
      p = this.#data.readObject(file.ino, index);
      p.catch(() => file.readahead.delete(index));
      file.readahead.set(index, p);
      for (const old of file.readahead.keys()) if (file.readahead.size > 3 && old !== index) file.readahead.delete(old);
    }
    return p;
  }

  /** Writes buffered data and the new size, mtime and object list to the inode (one compare-and-swap). */
  async flushFile(file: OpenFile): Promise<void> {
    await this.drain(file);
    if (!file.dirty) return;
    const indices = [...file.newIndices];
    const size = file.size;
    const mtimeMs = file.mtimeMs;
    await this.#metadata.update(file.ino, (i) => ({
      inode: { ...i, size: Math.max(i.size, size), mtimeMs, ctimeMs: mtimeMs },
      ops: indices.length ? [{ kind: Kind.KIND_OMAP_SET, entries: indices.map((x) => ({ key: objectKey(x), value: Buffer.alloc(0) })) }] : [],
    }));
    for (const i of indices) file.newIndices.delete(i);
    if (file.size === size && file.mtimeMs === mtimeMs) file.dirty = false;
  }

  async flush(fd: number): Promise<void> {
    const file = this.file(this.handle(fd).ino);
    if (file.unlinked) return this.drain(file);
    await this.flushFile(file);
  }

  async fsync(fd: number): Promise<void> {
    await this.flush(fd);
  }

  /** Closes handle `fd`; true when it was the last of a file unlinked while open (the caller purges it). */
  async release(fd: number): Promise<boolean> {
    const handle = this.handle(fd);
    this.#handles.delete(fd);
    const file = this.file(handle.ino);
    try {
      if (!file.unlinked) await this.flushFile(file);
      else await this.drain(file).catch(() => {});
    } finally {
      file.opens--;
      if (file.opens === 0) this.#files.delete(handle.ino);
    }
    return file.opens === 0 && file.unlinked;
  }

  /** Size and mtime this mount wrote but has not flushed to the inode yet (undefined: nothing pending). */
  pendingAttributes(ino: number): { size: number; mtimeMs: number } | undefined {
    const file = this.#files.get(ino);
    return file?.dirty ? { size: file.size, mtimeMs: file.mtimeMs } : undefined;
  }

  get(ino: number): OpenFile | undefined {
    return this.#files.get(ino);
  }

  handles(): number[] {
    return [...this.#handles.keys()];
  }

  all(): OpenFile[] {
    return [...this.#files.values()];
  }
}
