/**
 * File data in the data pool: a file is striped over objects of `objectSize` bytes (layout.ts). A missing object or
 * a short one reads as zeros, so holes cost nothing. Which objects were ever written is recorded in the inode's omap
 * (`o.<index>`), so removing or truncating a sparse file of many TiB touches only the objects that exist.
 */
import { forEachLimited, type ObjectClient } from '../../src/index.js';
import { dataObject, extents } from './layout.js';
import { isNotFound } from './metadata.js';

/** Concurrent object requests one file operation may have in flight. */
const parallelMax = 16;

export function objectKey(index: number): string {
  return `o.${index.toString(16).padStart(8, '0')}`;
}

export function parseObjectKey(key: string): number | undefined {
  if (!key.startsWith('o.')) return undefined;
  const n = parseInt(key.slice(2), 16);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export class FileData {
  readonly pool: string;
  readonly objectSize: number;
  readonly #client: ObjectClient;

  constructor(client: ObjectClient, pool: string, objectSize: number) {
    this.#client = client;
    this.pool = pool;
    this.objectSize = objectSize;
  }

  /** Reads [offset, offset + length) of a file of `size` bytes into `target`; returns the bytes read. */
  async read(ino: number, size: number, offset: number, length: number, target: Buffer): Promise<number> {
    const n = Math.max(0, Math.min(length, size - offset));
    if (n === 0) return 0;
    await forEachLimited(extents(offset, n, this.objectSize), parallelMax, async (e) => {
      let got: Buffer = Buffer.alloc(0);
      try {
        got = await this.#client.get(this.pool, dataObject(ino, e.index), { offset: e.offset, length: e.length });
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      const copied = got.copy(target, e.bufferOffset, 0, Math.min(got.length, e.length));
      target.fill(0, e.bufferOffset + copied, e.bufferOffset + e.length);
    });
    return n;
  }

  /** One whole data object (empty when it does not exist: a hole). */
  async readObject(ino: number, index: number): Promise<Buffer> {
    try {
      return await this.#client.get(this.pool, dataObject(ino, index));
    } catch (error) {
      if (isNotFound(error)) return Buffer.alloc(0);
      throw error;
    }
  }

  /** Writes `data` at `offset`; returns the indices of the objects it touched. */
  async write(ino: number, offset: number, data: Buffer): Promise<number[]> {
    const pieces = extents(offset, data.length, this.objectSize);
    await forEachLimited(pieces, parallelMax, async (e) => {
      await this.#client.write(this.pool, dataObject(ino, e.index), e.offset, data.subarray(e.bufferOffset, e.bufferOffset + e.length));
    });
    return pieces.map((e) => e.index);
  }

  /** Cuts the file's objects to `size` bytes: objects past it go, the one holding the end is truncated. */
  async truncate(ino: number, size: number, indices: number[]): Promise<number[]> {
    const keep = size === 0 ? -1 : Math.floor((size - 1) / this.objectSize);
    const removed = indices.filter((i) => i > keep);
    await forEachLimited(removed, parallelMax, (i) => this.#removeObject(ino, i));
    if (keep >= 0 && indices.includes(keep)) {
      await this.#client.truncate(this.pool, dataObject(ino, keep), size - keep * this.objectSize).catch((error: unknown) => {
        if (!isNotFound(error)) throw error;
      });
    }
    return removed;
  }

  async removeAll(ino: number, indices: number[]): Promise<void> {
    await forEachLimited(indices, parallelMax, (i) => this.#removeObject(ino, i));
  }

  async #removeObject(ino: number, index: number): Promise<void> {
    await this.#client.remove(this.pool, dataObject(ino, index)).catch((error: unknown) => {
      if (!isNotFound(error)) throw error;
    });
  }
}
