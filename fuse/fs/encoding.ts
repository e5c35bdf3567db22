/**
 * The persisted formats of the filesystem (pure): inode attributes (the `a` xattr of an inode object), directory
 * entries (omap values of a directory inode), the superblock and intent records. Every format starts with a version
 * marker (`v`); decoding rejects what it does not know instead of guessing.
 */
import { StorageError } from '../../src/index.js';

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

export type FileType = 'file' | 'dir' | 'symlink';

export interface Inode {
  ino: number;
  /** Type bits and permission bits, as st_mode. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Directories: the inode of the directory that holds the entry (for rename loops and `..`). */
  parent: number;
  /** Symlinks: the target. */
  target: string;
  /** Bumped by every change, so a compare-and-swap on the encoded bytes never mistakes an old state for a new one. */
  gen: number;
  /** A directory being removed accepts no new entries. */
  dead: boolean;
}

export interface Dentry {
  ino: number;
  type: FileType;
}

export interface Superblock {
  name: string;
  dataPool: string;
  objectSize: number;
  createdMs: number;
}

/** A cross-directory rename in progress: `fs check` and the next mount finish it (roll forward). */
export interface RenameIntent {
  fromDir: number;
  fromName: string;
  toDir: number;
  toName: string;
  ino: number;
  type: FileType;
  /** The inode the rename replaced (0: none). */
  replaced: number;
  createdMs: number;
  /** The client (mount) that does the rename: while it is alive, nobody else finishes it. */
  owner: string;
}

export function typeOf(mode: number): FileType {
  const t = mode & S_IFMT;
  if (t === S_IFDIR) return 'dir';
  if (t === S_IFLNK) return 'symlink';
  return 'file';
}

export function typeBits(type: FileType): number {
  return type === 'dir' ? S_IFDIR : type === 'symlink' ? S_IFLNK : S_IFREG;
}

function decodeJson(what: string, bytes: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new StorageError('CORRUPT_DATA', `${what} is not valid JSON`, { cause: error });
  }
  if (typeof value !== 'object' || value === null) throw new StorageError('CORRUPT_DATA', `${what} is not an object`);
  const record = value as Record<string, unknown>;
  if (record.v !== 1) throw new StorageError('UNSUPPORTED_VERSION', `${what} has format version ${String(record.v)}, this build reads 1`);
  return record;
}

function num(record: Record<string, unknown>, key: string, what: string): number {
  const value = record[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new StorageError('CORRUPT_DATA', `${what} lacks a numeric ${key}`);
  return value;
}

function str(record: Record<string, unknown>, key: string, what: string): string {
  const value = record[key];
  if (typeof value !== 'string') throw new StorageError('CORRUPT_DATA', `${what} lacks a string ${key}`);
  return value;
}

export function encodeInode(inode: Inode): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, ...inode }));
}

export function decodeInode(bytes: Buffer): Inode {
  const r = decodeJson('inode', bytes);
  return {
    ino: num(r, 'ino', 'inode'),
    mode: num(r, 'mode', 'inode'),
    uid: num(r, 'uid', 'inode'),
    gid: num(r, 'gid', 'inode'),
    size: num(r, 'size', 'inode'),
    nlink: num(r, 'nlink', 'inode'),
    atimeMs: num(r, 'atimeMs', 'inode'),
    mtimeMs: num(r, 'mtimeMs', 'inode'),
    ctimeMs: num(r, 'ctimeMs', 'inode'),
    parent: num(r, 'parent', 'inode'),
    target: str(r, 'target', 'inode'),
    gen: num(r, 'gen', 'inode'),
    dead: r.dead === true,
  };
}

const typeLetters: Record<FileType, string> = { file: 'f', dir: 'd', symlink: 'l' };

/** A directory entry: `1 <ino> <type letter>` (small: a directory holds millions). */
export function encodeDentry(entry: Dentry): Buffer {
  return Buffer.from(`1 ${entry.ino} ${typeLetters[entry.type]}`);
}

export function decodeDentry(bytes: Buffer): Dentry {
  const [v, ino, letter] = bytes.toString('utf8').split(' ');
  if (v !== '1') throw new StorageError('UNSUPPORTED_VERSION', `directory entry has format version ${String(v)}, this build reads 1`);
  const n = Number(ino);
  const type = letter === 'f' ? 'file' : letter === 'd' ? 'dir' : letter === 'l' ? 'symlink' : undefined;
  if (!Number.isSafeInteger(n) || n <= 0 || !type) throw new StorageError('CORRUPT_DATA', `bad directory entry ${JSON.stringify(bytes.toString('utf8'))}`);
  return { ino: n, type };
}

export function encodeSuperblock(sb: Superblock): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, ...sb }));
}

export function decodeSuperblock(bytes: Buffer): Superblock {
  const r = decodeJson('superblock', bytes);
  return { name: str(r, 'name', 'superblock'), dataPool: str(r, 'dataPool', 'superblock'), objectSize: num(r, 'objectSize', 'superblock'), createdMs: num(r, 'createdMs', 'superblock') };
}

export function encodeIntent(intent: RenameIntent): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, op: 'rename', ...intent }));
}

export function decodeIntent(bytes: Buffer): RenameIntent {
  const r = decodeJson('intent', bytes);
  const type = str(r, 'type', 'intent');
  if (type !== 'file' && type !== 'dir' && type !== 'symlink') throw new StorageError('CORRUPT_DATA', `intent has bad type ${type}`);
  return {
    fromDir: num(r, 'fromDir', 'intent'), fromName: str(r, 'fromName', 'intent'), toDir: num(r, 'toDir', 'intent'), toName: str(r, 'toName', 'intent'),
    ino: num(r, 'ino', 'intent'), type, replaced: num(r, 'replaced', 'intent'), createdMs: num(r, 'createdMs', 'intent'),
    owner: typeof r.owner === 'string' ? r.owner : '',
  };
}
