/**
 * Block checksums of data files: crc32c (SSE4.2/NEON: `@node-rs/crc32`, imported only by src/common/crc.ts) of each
 * `blockBytes` block, over the block's bytes up to the object's end (so the last, partial block is checksummed by its
 * real length).
 */
import { StorageError, crc32c } from '../../../src/common/index.js';
import { checksumsPerChunk, decodeChecksums, keys } from './codec.js';
import type { KvStore } from './kv.js';
import type { Lru } from './lru.js';

export { crc32c };

const zeroCrcs = new Map<number, number>();

/** crc32c of `length` zero bytes (holes are checksummed without being read). */
export function zeroCrc(length: number): number {
  let crc = zeroCrcs.get(length);
  if (crc === undefined) {
    crc = crc32c(Buffer.alloc(length));
    if (zeroCrcs.size < 64) zeroCrcs.set(length, crc);
  }
  return crc;
}

/** Committed checksum chunks by `fileId:chunk` (never modified in place; replaced when a commit rewrites them). */
export type ChecksumCache = Lru<string, Uint32Array>;

/** Reads the committed checksums of blocks [first, end) of file `fileId`. */
export async function loadChecksums(kv: KvStore, fileId: number, first: number, end: number, cache: ChecksumCache): Promise<Uint32Array> {
  const out = new Uint32Array(end - first);
  if (end <= first) return out;
  const firstChunk = Math.floor(first / checksumsPerChunk);
  const lastChunk = Math.floor((end - 1) / checksumsPerChunk);
  const chunks = new Map<number, Uint32Array>();
  const missing: number[] = [];
  for (let c = firstChunk; c <= lastChunk; c++) {
    const cached = cache.get(`${fileId}:${c}`);
    if (cached) chunks.set(c, cached);
    else missing.push(c);
  }
  const values = await kv.getMany(missing.map((c) => keys.checksums(fileId, c)));
  missing.forEach((c, i) => {
    const value = values[i];
    if (!value) throw new StorageError('CORRUPT_DATA', `checksums of data file ${fileId} chunk ${c} are missing`);
    const crcs = decodeChecksums(value);
    cache.set(`${fileId}:${c}`, crcs);
    chunks.set(c, crcs);
  });
  for (let c = firstChunk; c <= lastChunk; c++) {
    const crcs = chunks.get(c) as Uint32Array;
    for (let b = Math.max(first, c * checksumsPerChunk); b < Math.min(end, (c + 1) * checksumsPerChunk); b++) {
      const crc = crcs[b - c * checksumsPerChunk];
      if (crc === undefined) throw new StorageError('CORRUPT_DATA', `checksum of data file ${fileId} block ${b} is missing`);
      out[b - first] = crc;
    }
  }
  return out;
}

/**
 * Checks `data`, which holds the blocks from `firstBlock` on, cut at the object's end (`data.length` may stop short of
 * a whole last block only where the object ends).
 */
export function verifyBlocks(data: Buffer, firstBlock: number, blockBytes: number, crcs: Uint32Array, what: string): void {
  for (let i = 0, at = 0; at < data.length; i++, at += blockBytes) {
    const actual = crc32c(data.subarray(at, Math.min(at + blockBytes, data.length)));
    if (actual !== crcs[i]) {
      throw new StorageError('CHECKSUM_MISMATCH', `${what}: block ${firstBlock + i} has crc32c ${actual >>> 0}, expected ${crcs[i]}`);
    }
  }
}
