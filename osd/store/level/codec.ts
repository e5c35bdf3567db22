/**
 * LevelStore's on-disk encodings: LevelDB keys and versioned values. Every value starts with a two-byte marker
 * (format id, version); the ids below belong to osd/store (range 0x40–0x4F) and are never reused or renumbered.
 * Decoders never trust their input: a short or malformed value is CORRUPT_DATA, an unknown version
 * UNSUPPORTED_VERSION. Data files hold raw object bytes only; what they mean is recorded in the onode pointing at
 * them.
 */
import { StorageError } from '../../../src/common/index.js';

export const storeFormats = {
  superblock: 0x40,
  counters: 0x41,
  collection: 0x42,
  onode: 0x43,
  inlineData: 0x44,
  checksums: 0x45,
  omapValue: 0x46,
  pgMetaValue: 0x47,
  deferredWrite: 0x48,
  gcRecord: 0x49,
} as const;

export type StoreFormat = keyof typeof storeFormats;

const markerBytes = 2;

/** Key prefixes: one byte each, so each kind of record is one contiguous range of the key space. */
export const prefix = {
  superblock: 0x53, // 'S'
  counters: 0x4e, // 'N'
  collection: 0x43, // 'C' + pg
  onode: 0x4f, // 'O' + cid + name
  inlineData: 0x49, // 'I' + id
  checksums: 0x4b, // 'K' + file id + chunk index
  omap: 0x4d, // 'M' + omap id + key
  pgMeta: 0x50, // 'P' + cid + key
  deferredWrite: 0x57, // 'W' + seq
  gcRecord: 0x47, // 'G' + seq
} as const;

/** Block checksums of one data file are stored this many to a LevelDB value. */
export const checksumsPerChunk = 256;

// ---- keys ----

function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32BE(Math.floor(value / 0x1_0000_0000), at);
  buf.writeUInt32BE(value >>> 0, at + 4);
}

function readU64(buf: Uint8Array, at: number): number {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return view.readUInt32BE(at) * 0x1_0000_0000 + view.readUInt32BE(at + 4);
}

function idKey(kind: number, id: number, tail?: Buffer): Buffer {
  const key = Buffer.allocUnsafe(9 + (tail?.length ?? 0));
  key[0] = kind;
  writeU64(key, id, 1);
  if (tail) tail.copy(key, 9);
  return key;
}

export const keys = {
  superblock: Buffer.from([prefix.superblock]),
  counters: Buffer.from([prefix.counters]),
  collection: (pg: string) => Buffer.concat([Buffer.from([prefix.collection]), Buffer.from(pg, 'utf8')]),
  collectionRange: () => ({ gte: Buffer.from([prefix.collection]), lt: Buffer.from([prefix.collection + 1]) }),
  onode: (cid: number, name: string) => idKey(prefix.onode, cid, Buffer.from(name, 'utf8')),
  /** Onodes of collection `cid` whose names start with `namePrefix`. */
  onodeRange: (cid: number, namePrefix = '') => prefixRange(idKey(prefix.onode, cid, Buffer.from(namePrefix, 'utf8'))),
  inlineData: (id: number) => idKey(prefix.inlineData, id),
  checksums: (fileId: number, chunk: number) => {
    const key = Buffer.allocUnsafe(13);
    key[0] = prefix.checksums;
    writeU64(key, fileId, 1);
    key.writeUInt32BE(chunk, 9);
    return key;
  },
  checksumRange: (fileId: number) => prefixRange(idKey(prefix.checksums, fileId)),
  omap: (omapId: number, key: string) => idKey(prefix.omap, omapId, Buffer.from(key, 'utf8')),
  omapRange: (omapId: number, keyPrefix = '') => prefixRange(idKey(prefix.omap, omapId, Buffer.from(keyPrefix, 'utf8'))),
  pgMeta: (cid: number, key: string) => idKey(prefix.pgMeta, cid, Buffer.from(key, 'utf8')),
  pgMetaRange: (cid: number, keyPrefix = '') => prefixRange(idKey(prefix.pgMeta, cid, Buffer.from(keyPrefix, 'utf8'))),
  deferredWrite: (seq: number) => idKey(prefix.deferredWrite, seq),
  deferredWriteRange: () => ({ gte: Buffer.from([prefix.deferredWrite]), lt: Buffer.from([prefix.deferredWrite + 1]) }),
  gcRecord: (seq: number) => idKey(prefix.gcRecord, seq),
  gcRecordRange: () => ({ gte: Buffer.from([prefix.gcRecord]), lt: Buffer.from([prefix.gcRecord + 1]) }),
};

/** The range of keys starting with `start` (for iterators and clears). */
export function prefixRange(start: Buffer): { gte: Buffer; lt: Buffer } {
  const end = Buffer.from(start);
  let i = end.length - 1;
  while (i >= 0 && end[i] === 0xff) i--;
  if (i < 0) return { gte: start, lt: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) };
  end[i] = (end[i] as number) + 1;
  return { gte: start, lt: end.subarray(0, i + 1) };
}

/** The text after the 9-byte `kind + id` head of a key. */
export function keyTail(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset + 9, key.byteLength - 9).toString('utf8');
}

export function keyId(key: Uint8Array): number {
  return readU64(key, 1);
}

export function collectionKeyPg(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset + 1, key.byteLength - 1).toString('utf8');
}

// ---- values: a tiny bounds-checked writer and reader ----

class Writer {
  #parts: Buffer[] = [];
  #head = Buffer.allocUnsafe(64);
  #used = 0;

  constructor(format: StoreFormat, version: number) {
    this.u8(storeFormats[format]).u8(version);
  }

  #room(bytes: number): void {
    if (this.#used + bytes <= this.#head.length) return;
    this.#parts.push(this.#head.subarray(0, this.#used));
    this.#head = Buffer.allocUnsafe(Math.max(64, bytes));
    this.#used = 0;
  }

  u8(value: number): this {
    this.#room(1);
    this.#head[this.#used++] = value;
    return this;
  }

  u32(value: number): this {
    this.#room(4);
    this.#head.writeUInt32BE(value >>> 0, this.#used);
    this.#used += 4;
    return this;
  }

  u64(value: number): this {
    this.#room(8);
    writeU64(this.#head, value, this.#used);
    this.#used += 8;
    return this;
  }

  f64(value: number): this {
    this.#room(8);
    this.#head.writeDoubleBE(value, this.#used);
    this.#used += 8;
    return this;
  }

  /** A length-prefixed byte string. */
  bytes(value: Uint8Array): this {
    this.u32(value.length);
    this.raw(value);
    return this;
  }

  string(value: string): this {
    return this.bytes(Buffer.from(value, 'utf8'));
  }

  raw(value: Uint8Array): this {
    this.#parts.push(this.#head.subarray(0, this.#used));
    this.#parts.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    this.#head = Buffer.allocUnsafe(64);
    this.#used = 0;
    return this;
  }

  finish(): Buffer {
    this.#parts.push(this.#head.subarray(0, this.#used));
    return Buffer.concat(this.#parts);
  }
}

class Reader {
  readonly #what: StoreFormat;
  readonly #buf: Buffer;
  #at = markerBytes;
  readonly version: number;

  constructor(what: StoreFormat, bytes: Uint8Array, versions: readonly number[]) {
    this.#what = what;
    this.#buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.#buf.length < markerBytes) throw this.#corrupt('too short for a format marker');
    if (this.#buf[0] !== storeFormats[what]) throw this.#corrupt(`format id ${this.#buf[0]} is not ${storeFormats[what]}`);
    this.version = this.#buf[1] as number;
    if (!versions.includes(this.version)) {
      throw new StorageError('UNSUPPORTED_VERSION', `store ${what}: version ${this.version} is not known to this build`);
    }
  }

  #corrupt(why: string): StorageError {
    return new StorageError('CORRUPT_DATA', `store ${this.#what}: ${why}`);
  }

  #need(bytes: number): number {
    if (this.#at + bytes > this.#buf.length) throw this.#corrupt('truncated');
    const at = this.#at;
    this.#at += bytes;
    return at;
  }

  u8(): number {
    return this.#buf[this.#need(1)] as number;
  }

  u32(): number {
    return this.#buf.readUInt32BE(this.#need(4));
  }

  u64(): number {
    const value = readU64(this.#buf, this.#need(8));
    if (!Number.isSafeInteger(value)) throw this.#corrupt('64-bit value out of range');
    return value;
  }

  f64(): number {
    return this.#buf.readDoubleBE(this.#need(8));
  }

  bytes(): Buffer {
    const length = this.u32();
    const at = this.#need(length);
    return this.#buf.subarray(at, at + length);
  }

  string(): string {
    return this.bytes().toString('utf8');
  }

  rest(): Buffer {
    return this.#buf.subarray(this.#need(this.#buf.length - this.#at));
  }

  end(): void {
    if (this.#at !== this.#buf.length) throw this.#corrupt(`${this.#buf.length - this.#at} trailing bytes`);
  }
}

// ---- records ----

export interface Superblock {
  createdMs: number;
  /** Checksum block size of data files created from now on. */
  blockBytes: number;
}

export function encodeSuperblock(value: Superblock): Buffer {
  return new Writer('superblock', 1).f64(value.createdMs).u32(value.blockBytes).finish();
}

export function decodeSuperblock(bytes: Uint8Array): Superblock {
  const r = new Reader('superblock', bytes, [1]);
  const value = { createdMs: r.f64(), blockBytes: r.u32() };
  r.end();
  return value;
}

export interface Counters {
  /** Next id for collections, data files, inline blobs and omap sets (one sequence, never reused). */
  nextId: number;
}

export function encodeCounters(value: Counters): Buffer {
  return new Writer('counters', 1).u64(value.nextId).finish();
}

export function decodeCounters(bytes: Uint8Array): Counters {
  const r = new Reader('counters', bytes, [1]);
  const value = { nextId: r.u64() };
  r.end();
  return value;
}

export interface CollectionRecord {
  cid: number;
  objects: number;
  bytes: number;
}

export function encodeCollection(value: CollectionRecord): Buffer {
  return new Writer('collection', 1).u64(value.cid).u64(value.objects).u64(value.bytes).finish();
}

export function decodeCollection(bytes: Uint8Array): CollectionRecord {
  const r = new Reader('collection', bytes, [1]);
  const value = { cid: r.u64(), objects: r.u64(), bytes: r.u64() };
  r.end();
  return value;
}

export type OnodeData =
  | { kind: 'none' }
  /** Data in LevelDB under `I<id>`, with the crc32c of all of it. */
  | { kind: 'inline'; id: number; crc: number }
  /** Data in file `id`, with one crc32c per `blockBytes` block under `K<id><chunk>`. */
  | { kind: 'file'; id: number; blockBytes: number };

export interface Onode {
  size: number;
  mtimeMs: number;
  data: OnodeData;
  /** Omap entries live under `M<omapId>`; 0 when the object has none. */
  omapId: number;
  xattrs: Map<string, Buffer>;
}

const dataKinds = { none: 0, inline: 1, file: 2 } as const;

export function encodeOnode(value: Onode): Buffer {
  const w = new Writer('onode', 1).u64(value.size).f64(value.mtimeMs).u8(dataKinds[value.data.kind]);
  if (value.data.kind === 'inline') w.u64(value.data.id).u32(value.data.crc);
  else if (value.data.kind === 'file') w.u64(value.data.id).u32(value.data.blockBytes);
  w.u64(value.omapId).u32(value.xattrs.size);
  for (const [name, attr] of value.xattrs) w.string(name).bytes(attr);
  return w.finish();
}

export function decodeOnode(bytes: Uint8Array): Onode {
  const r = new Reader('onode', bytes, [1]);
  const size = r.u64();
  const mtimeMs = r.f64();
  const kind = r.u8();
  let data: OnodeData;
  if (kind === dataKinds.none) data = { kind: 'none' };
  else if (kind === dataKinds.inline) data = { kind: 'inline', id: r.u64(), crc: r.u32() };
  else if (kind === dataKinds.file) {
    data = { kind: 'file', id: r.u64(), blockBytes: r.u32() };
    if (data.blockBytes === 0) throw new StorageError('CORRUPT_DATA', 'store onode: zero block size');
  } else throw new StorageError('CORRUPT_DATA', `store onode: unknown data kind ${kind}`);
  const omapId = r.u64();
  const count = r.u32();
  const xattrs = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    const name = r.string();
    xattrs.set(name, Buffer.from(r.bytes()));
  }
  r.end();
  return { size, mtimeMs, data, omapId, xattrs };
}

/** Inline data, omap values and PG metadata values: the marker, then the bytes as given. */
export function encodeBlob(format: 'inlineData' | 'omapValue' | 'pgMetaValue', value: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(markerBytes + value.length);
  out[0] = storeFormats[format];
  out[1] = 1;
  out.set(value, markerBytes);
  return out;
}

export function decodeBlob(format: 'inlineData' | 'omapValue' | 'pgMetaValue', bytes: Uint8Array): Buffer {
  return new Reader(format, bytes, [1]).rest();
}

/** One chunk of block checksums: crc32c values, little-endian u32 each. */
export function encodeChecksums(crcs: Uint32Array): Buffer {
  const out = Buffer.allocUnsafe(markerBytes + crcs.length * 4);
  out[0] = storeFormats.checksums;
  out[1] = 1;
  for (let i = 0; i < crcs.length; i++) out.writeUInt32LE(crcs[i] as number, markerBytes + i * 4);
  return out;
}

export function decodeChecksums(bytes: Uint8Array): Uint32Array {
  const body = new Reader('checksums', bytes, [1]).rest();
  if (body.length % 4 !== 0 || body.length / 4 > checksumsPerChunk) {
    throw new StorageError('CORRUPT_DATA', `store checksums: ${body.length} bytes is not a whole chunk`);
  }
  const out = new Uint32Array(body.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = body.readUInt32LE(i * 4);
  return out;
}

/** A byte range of a data file, with its new bytes, or zeros when `data` is null. */
export interface FileExtent {
  offset: number;
  length: number;
  data: Buffer | null;
}

/** Write-ahead record of an in-place overwrite: applied to the file after the batch commits, and again on replay. */
export interface DeferredWrite {
  fileId: number;
  extents: FileExtent[];
}

export function encodeDeferredWrite(value: DeferredWrite): Buffer {
  const w = new Writer('deferredWrite', 1).u64(value.fileId).u32(value.extents.length);
  for (const extent of value.extents) {
    w.u64(extent.offset).u8(extent.data ? 1 : 0);
    if (extent.data) w.bytes(extent.data);
    else w.u64(extent.length);
  }
  return w.finish();
}

export function decodeDeferredWrite(bytes: Uint8Array): DeferredWrite {
  const r = new Reader('deferredWrite', bytes, [1]);
  const fileId = r.u64();
  const count = r.u32();
  const extents: FileExtent[] = [];
  for (let i = 0; i < count; i++) {
    const offset = r.u64();
    const hasData = r.u8();
    if (hasData === 1) {
      const data = r.bytes();
      extents.push({ offset, length: data.length, data });
    } else if (hasData === 0) extents.push({ offset, length: r.u64(), data: null });
    else throw new StorageError('CORRUPT_DATA', 'store deferredWrite: bad extent kind');
  }
  r.end();
  return { fileId, extents };
}

export type GcRecord = { kind: 'file' | 'omap' | 'collection'; id: number };

const gcKinds = { file: 1, omap: 2, collection: 3 } as const;

export function encodeGcRecord(value: GcRecord): Buffer {
  return new Writer('gcRecord', 1).u8(gcKinds[value.kind]).u64(value.id).finish();
}

export function decodeGcRecord(bytes: Uint8Array): GcRecord {
  const r = new Reader('gcRecord', bytes, [1]);
  const kind = r.u8();
  const id = r.u64();
  r.end();
  if (kind === gcKinds.file) return { kind: 'file', id };
  if (kind === gcKinds.omap) return { kind: 'omap', id };
  if (kind === gcKinds.collection) return { kind: 'collection', id };
  throw new StorageError('CORRUPT_DATA', `store gcRecord: unknown kind ${kind}`);
}
