/**
 * Where things live (pure): object names in the metadata and data pools, and how a byte range of a file splits over
 * its data objects. A file is striped over objects `<ino hex>.<index hex>` of `objectSize` bytes; an object that does
 * not exist reads as zeros (sparse files), so a file of many TiB costs only what was written.
 */
export const rootIno = 1;
export const superObject = 'super';
export const nameMaxBytes = 255;
export const defaultObjectSize = 4 * 1024 * 1024;
/** Largest file size (16 TiB): also keeps offsets exact in doubles. */
export const fileSizeMax = 16 * 1024 ** 4;

export function inodeObject(ino: number): string {
  return `i.${ino.toString(16)}`;
}

export function parseInodeObject(name: string): number | undefined {
  if (!name.startsWith('i.')) return undefined;
  const n = parseInt(name.slice(2), 16);
  return Number.isSafeInteger(n) && n > 0 && inodeObject(n) === name ? n : undefined;
}

export function dataObject(ino: number, index: number): string {
  return `${ino.toString(16)}.${index.toString(16).padStart(8, '0')}`;
}

export function parseDataObject(name: string): { ino: number; index: number } | undefined {
  const m = /^([0-9a-f]+)\.([0-9a-f]{8,})$/.exec(name);
  if (!m) return undefined;
  return { ino: parseInt(m[1] as string, 16), index: parseInt(m[2] as string, 16) };
}

export interface Extent {
  index: number;
  /** Offset inside the object. */
  offset: number;
  length: number;
  /** Offset of this piece inside the caller's buffer. */
  bufferOffset: number;
}

/** The pieces of [offset, offset + length) per data object, in order. */
export function extents(offset: number, length: number, objectSize: number): Extent[] {
  const out: Extent[] = [];
  let done = 0;
  while (done < length) {
    const at = offset + done;
    const index = Math.floor(at / objectSize);
    const inner = at - index * objectSize;
    const n = Math.min(objectSize - inner, length - done);
    out.push({ index, offset: inner, length: n, bufferOffset: done });
    done += n;
  }
  return out;
}

/** Splits an absolute path into its components; rejects names longer than NAME_MAX with the name. */
export function splitPath(path: string): string[] {
  return path.split('/').filter((c) => c.length > 0);
}
