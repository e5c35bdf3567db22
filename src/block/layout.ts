/**
 * Pure parts of the block layer: the header's persisted format, object names, per-object metadata and how a byte
 * range of an image splits over its data objects. No I/O here.
 */
import { StorageError } from '../common/index.js';

export const defaultObjectSize = 4 * 1024 * 1024;
export const objectSizeMin = 4096;
export const objectSizeMax = 32 * 1024 * 1024;
/** Images up to 2^50 bytes (1 PiB) keep every offset an exact JavaScript number. */
export const imageSizeMax = 2 ** 50;

export interface SnapshotInfo {
  id: number;
  name: string;
  size: number;
  createdMs: number;
  /** The parent the image had when the snapshot was taken (a clone's snapshots fall through to it). */
  parent?: ParentRef;
}

export interface ParentRef {
  pool: string;
  image: string;
  snapId: number;
  /** Bytes of the image that still come from the parent (shrinks with resize, never grows back). */
  overlap: number;
}

export interface ImageHeader {
  name: string;
  size: number;
  objectSize: number;
  features: string[];
  createdMs: number;
  /** Increments with every snapshot; a snapshot's id is the value it took. */
  snapSeq: number;
  snapshots: SnapshotInfo[];
  parent?: ParentRef;
  /** Clones of this image's snapshots: `pool/image@snapId`. A snapshot with clones cannot be removed. */
  children: string[];
}

export const headerFormatVersion = 1;

export function encodeHeader(header: ImageHeader): Buffer {
  return Buffer.from(JSON.stringify({ v: headerFormatVersion, ...header }));
}

export function decodeHeader(data: Buffer): ImageHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch {
    throw new StorageError('CORRUPT_DATA', 'image header is not JSON');
  }
  const h = parsed as Partial<ImageHeader> & { v?: unknown };
  if (h.v !== headerFormatVersion) throw new StorageError('UNSUPPORTED_VERSION', `image header format ${String(h.v)} (this build reads ${headerFormatVersion})`);
  if (typeof h.name !== 'string' || typeof h.size !== 'number' || typeof h.objectSize !== 'number' || typeof h.snapSeq !== 'number' || !Array.isArray(h.snapshots)) {
    throw new StorageError('CORRUPT_DATA', 'image header lacks fields');
  }
  return {
    name: h.name,
    size: h.size,
    objectSize: h.objectSize,
    features: Array.isArray(h.features) ? h.features : [],
    createdMs: typeof h.createdMs === 'number' ? h.createdMs : 0,
    snapSeq: h.snapSeq,
    snapshots: h.snapshots,
    ...(h.parent ? { parent: h.parent } : {}),
    children: Array.isArray(h.children) ? h.children : [],
  };
}

const nameRe = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$/;

export function checkImageName(name: string): void {
  if (!nameRe.test(name) || name.endsWith('.header')) throw new StorageError('INVALID_ARGUMENT', `image names are 1-100 of A-Z a-z 0-9 _ - . (not ${JSON.stringify(name)})`);
}

export function checkSnapName(name: string): void {
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(name)) throw new StorageError('INVALID_ARGUMENT', `snapshot names are 1-100 of A-Z a-z 0-9 _ - . (not ${JSON.stringify(name)})`);
}

/** `pool/image` or `pool/image@snap`. */
export function parseImageSpec(spec: string): { pool: string; image: string; snap?: string } {
  const m = /^([^/@]+)\/([^/@]+)(?:@([^/@]+))?$/.exec(spec);
  if (!m) throw new StorageError('INVALID_ARGUMENT', `expected POOL/IMAGE or POOL/IMAGE@SNAP, not ${JSON.stringify(spec)}`);
  const [, pool = '', image = '', snap] = m;
  checkImageName(image);
  if (snap !== undefined) checkSnapName(snap);
  return snap === undefined ? { pool, image } : { pool, image, snap };
}

/** The pool's directory of images (omap: name → creation record). */
export const directoryObject = 'block.directory';

export function headerObject(image: string): string {
  return `${image}.header`;
}

/** Data object `index` of an image: a fixed-width hex index keeps names sorted by offset. */
export function dataObject(image: string, index: number): string {
  return `${image}.${index.toString(16).padStart(16, '0')}`;
}

/** The copy of data object `index` that snapshot-preserving write made when snapshot `id` was the newest. */
export function cloneObject(image: string, index: number, id: number): string {
  return `${dataObject(image, index)}@${id}`;
}

/**
 * Per-data-object metadata (xattr `block` on the object; absent on images that never had snapshots or a parent):
 * `seq` is the image's snapSeq at the last write, `born` the snapSeq when this content lineage began (snapshots
 * with id <= born do not see it), `absent` marks an object that exists only to carry `clones` (reads fall through to
 * the parent or zeros), and `clones` lists preserved versions by the snapshot id that was newest when they were made.
 */
export interface ObjectMeta {
  seq: number;
  born: number;
  absent?: boolean;
  clones: CloneEntry[];
}

export interface CloneEntry {
  id: number;
  born: number;
  /** The preserved version was absent (falls through); no clone object exists. */
  absent?: boolean;
}

export const metaXattr = 'block';

export function encodeMeta(meta: ObjectMeta): Buffer {
  return Buffer.from(JSON.stringify(meta));
}

export function decodeMeta(value: Buffer | undefined): ObjectMeta {
  if (!value || value.length === 0) return { seq: 0, born: 0, clones: [] };
  try {
    const m = JSON.parse(value.toString('utf8')) as ObjectMeta;
    return { seq: m.seq ?? 0, born: m.born ?? 0, ...(m.absent ? { absent: true } : {}), clones: Array.isArray(m.clones) ? m.clones : [] };
  } catch {
    throw new StorageError('CORRUPT_DATA', 'data object metadata is not JSON');
  }
}

/**
 * Where snapshot `snapId` finds an object's content: a clone (by id), the head, or nothing (fall through to the
 * parent, or zeros). The clone made when the newest snapshot was `id` holds what every snapshot in
 * (previous clone id, id] saw; younger snapshots see the head.
 */
export function resolveSnapshot(meta: ObjectMeta | undefined, snapId: number): { from: 'clone'; id: number } | { from: 'head' } | { from: 'none' } {
  if (!meta) return { from: 'none' };
  const clone = meta.clones.filter((c) => c.id >= snapId).sort((a, b) => a.id - b.id)[0];
  if (clone) return clone.born < snapId && !clone.absent ? { from: 'clone', id: clone.id } : { from: 'none' };
  return meta.born < snapId && !meta.absent ? { from: 'head' } : { from: 'none' };
}

/** Clone entries no remaining snapshot resolves to (they and their objects can go). */
export function unreferencedClones(meta: ObjectMeta, snapIds: readonly number[]): CloneEntry[] {
  const sorted = [...meta.clones].sort((a, b) => a.id - b.id);
  return sorted.filter((c, i) => {
    const previous = i === 0 ? 0 : (sorted[i - 1]?.id ?? 0);
    return !snapIds.some((s) => s > previous && s <= c.id);
  });
}

export interface Piece {
  index: number;
  /** Offset inside the object. */
  objectOffset: number;
  length: number;
  /** Offset of this piece in the caller's buffer (from the start of the range). */
  bufferOffset: number;
}

/** Splits [offset, offset + length) into per-object pieces. */
export function pieces(offset: number, length: number, objectSize: number): Piece[] {
  const out: Piece[] = [];
  let at = offset;
  const end = offset + length;
  while (at < end) {
    const index = Math.floor(at / objectSize);
    const objectOffset = at - index * objectSize;
    const n = Math.min(objectSize - objectOffset, end - at);
    out.push({ index, objectOffset, length: n, bufferOffset: at - offset });
    at += n;
  }
  return out;
}

/** "10G", "4M", "512K", "1T", "4096" → bytes (binary units). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) throw new StorageError('INVALID_ARGUMENT', `expected a size such as 10G, 4M or 4096, not ${JSON.stringify(text)}`);
  const scale = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 }[(m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T' | 'P'];
  const bytes = Math.round(Number(m[1]) * scale);
  if (!Number.isSafeInteger(bytes)) throw new StorageError('INVALID_ARGUMENT', `size ${text} is too large`);
  return bytes;
}
