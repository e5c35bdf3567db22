/**
 * Data files written ahead of their commit group. A transaction that replaces an object's whole content with enough
 * bytes to need a file of its own (`writeFull`) has that file written, checksummed and fdatasync'd as soon as the
 * store accepts the transaction, while earlier groups commit; its group then only renames the file into place
 * (`commit.ts`, `writeNewFile`). Without this, the file was written inside its group, and every transaction queued
 * behind a 4 MiB write, however small, waited for it: under S3 PUTs of 4 MiB, an OSD's commit pipeline was 80 %
 * busy and a small omap write spent 17-19 ms in the store.
 *
 * A staged file lives in `DataFiles`' staging directory until its group renames it to its id's path (before the
 * group's batch, with the directory synced as for any new file), so the start-up sweep of files at or past the
 * committed id counter still covers a group that never committed; whatever is left in the staging directory at
 * start-up belongs to no commit and is removed (`DataFiles.init`).
 */
import type { DataFiles } from './files.js';
import { checksumsPerChunk } from './codec.js';
import { crc32c } from './checksums.js';

/** Data is copied, checksummed and written in pieces of this size (a multiple of any block size we use). */
export const pieceBytes = 1024 * 1024;

export interface StagedFile {
  /** The bytes the file holds: the `writeFull` op's own data (matched by identity of its memory). */
  readonly data: Uint8Array;
  readonly path: string;
  /** Block checksums by chunk, as stored under the file's id. */
  readonly chunks: Map<number, Uint32Array>;
  /** Set by the commit that renamed it into place. */
  used: boolean;
}

/** Checksum chunks for a file of `size` bytes, and a setter by block number. */
export function checksumChunks(size: number, blockBytes: number): { chunks: Map<number, Uint32Array>; setCrc: (block: number, crc: number) => void } {
  const chunks = new Map<number, Uint32Array>();
  const blockCount = Math.ceil(size / blockBytes);
  for (let c = 0; c * checksumsPerChunk < blockCount; c++) {
    chunks.set(c, new Uint32Array(Math.min(checksumsPerChunk, blockCount - c * checksumsPerChunk)));
  }
  const setCrc = (block: number, crc: number) => {
    (chunks.get(Math.floor(block / checksumsPerChunk)) as Uint32Array)[block % checksumsPerChunk] = crc;
  };
  return { chunks, setCrc };
}

/** Checksums the blocks of `bytes`, which sit at offset `from` of their file (a multiple of `blockBytes`). */
export function checksumPiece(bytes: Uint8Array, from: number, blockBytes: number, setCrc: (block: number, crc: number) => void): void {
  for (let at = 0; at < bytes.length; at += blockBytes) setCrc((from + at) / blockBytes, crc32c(bytes.subarray(at, Math.min(at + blockBytes, bytes.length))));
}

/**
 * Writes `data` to a new staged file and makes it durable. Never rejects: on any failure the partial file is removed
 * and the result is undefined (the commit then writes the data itself, and meets the error there if it persists).
 */
export async function stageFile(files: DataFiles, data: Uint8Array, blockBytes: number): Promise<StagedFile | undefined> {
  let file: Awaited<ReturnType<DataFiles['createStaged']>> | undefined;
  try {
    file = await files.createStaged();
    const { chunks, setCrc } = checksumChunks(data.length, blockBytes);
    for (let from = 0; from < data.length; from += pieceBytes) {
      const piece = data.subarray(from, Math.min(from + pieceBytes, data.length));
      checksumPiece(piece, from, blockBytes, setCrc);
      await files.writeNew(file, piece, from);
    }
    await files.sync(file.fh);
    await file.fh.close();
    return { data, path: file.path, chunks, used: false };
  } catch {
    if (file) {
      await file.fh.close().catch(() => {});
      await files.removePath(file.path).catch(() => {});
    }
    return undefined;
  }
}

/** Whether `extent data` is exactly the bytes of `staged` (the same memory, not merely equal bytes). */
export function isStagedData(data: Uint8Array, staged: StagedFile): boolean {
  return data.buffer === staged.data.buffer && data.byteOffset === staged.data.byteOffset && data.length === staged.data.length;
}
