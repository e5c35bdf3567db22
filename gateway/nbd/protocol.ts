/**
 * The NBD wire protocol (NetworkBlockDevice/nbd doc/proto.md), as pure functions: constants, encoders for every
 * message the server sends and decoders for what a client sends. No sockets here, so all of it is unit-tested.
 * Every number on the wire is big-endian.
 */

export const NBDMAGIC = 0x4e42444d41474943n;
export const IHAVEOPT = 0x49484156454f5054n;
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server) and client flags. */
export const FLAG_FIXED_NEWSTYLE = 1;
export const FLAG_NO_ZEROES = 2;

export const Opt = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  PEEK_EXPORT: 4,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
} as const;

const errorBit = 0x80000000;
export const Rep = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: errorBit + 1,
  ERR_POLICY: errorBit + 2,
  ERR_INVALID: errorBit + 3,
  ERR_PLATFORM: errorBit + 4,
  ERR_TLS_REQD: errorBit + 5,
  ERR_UNKNOWN: errorBit + 6,
  ERR_SHUTDOWN: errorBit + 7,
  ERR_BLOCK_SIZE_REQD: errorBit + 8,
  ERR_TOO_BIG: errorBit + 9,
} as const;

export const Info = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

/** Transmission flags. */
export const TFlag = {
  HAS_FLAGS: 1 << 0,
  READ_ONLY: 1 << 1,
  SEND_FLUSH: 1 << 2,
  SEND_FUA: 1 << 3,
  ROTATIONAL: 1 << 4,
  SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6,
  SEND_DF: 1 << 7,
  CAN_MULTI_CONN: 1 << 8,
  SEND_RESIZE: 1 << 9,
  SEND_CACHE: 1 << 10,
  SEND_FAST_ZERO: 1 << 11,
} as const;

export const Cmd = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7 } as const;

/** Command flags. */
export const CmdFlag = { FUA: 1 << 0, NO_HOLE: 1 << 1, DF: 1 << 2, REQ_ONE: 1 << 3, FAST_ZERO: 1 << 4 } as const;

export const ReplyType = { NONE: 0, OFFSET_DATA: 1, OFFSET_HOLE: 2, BLOCK_STATUS: 5, ERROR: (1 << 15) + 1, ERROR_OFFSET: (1 << 15) + 2 } as const;
export const REPLY_FLAG_DONE = 1;

/** Error values of the transmission phase. */
export const NbdErrno = { EPERM: 1, EIO: 5, ENOMEM: 12, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75, ENOTSUP: 95, ESHUTDOWN: 108 } as const;
export type NbdError = (typeof NbdErrno)[keyof typeof NbdErrno];

/** base:allocation extent flags. */
export const STATE_HOLE = 1;
export const STATE_ZERO = 2;
export const BASE_ALLOCATION = 'base:allocation';

/** The longest string the spec allows (export names, queries, messages). */
export const STRING_MAX = 4096;

export class NbdProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NbdProtocolError';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Handshake

/** The server's greeting: NBDMAGIC, IHAVEOPT, handshake flags. */
export function encodeGreeting(): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
  return b;
}

export interface OptionHeader {
  option: number;
  length: number;
}

/** The 16 bytes before each option's data. Throws on a bad magic (the connection cannot be trusted further). */
export function decodeOptionHeader(b: Buffer): OptionHeader {
  if (b.length < 16) throw new NbdProtocolError('short option header');
  if (b.readBigUInt64BE(0) !== IHAVEOPT) throw new NbdProtocolError('bad option magic');
  return { option: b.readUInt32BE(8), length: b.readUInt32BE(12) };
}

export function encodeOptionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(20 + data.length);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, 20);
  return b;
}

export function encodeOptionError(option: number, type: number, message: string): Buffer {
  return encodeOptionReply(option, type, Buffer.from(message, 'utf8'));
}

/** NBD_REP_SERVER for NBD_OPT_LIST: the name, then a description. */
export function encodeServerReply(name: string, description = ''): Buffer {
  const n = Buffer.from(name, 'utf8');
  const d = Buffer.from(description, 'utf8');
  const b = Buffer.alloc(4 + n.length + d.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  d.copy(b, 4 + n.length);
  return encodeOptionReply(Opt.LIST, Rep.SERVER, b);
}

export function encodeInfoExport(option: number, size: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(Info.EXPORT, 0);
  b.writeBigUInt64BE(BigInt(size), 2);
  b.writeUInt16BE(flags, 10);
  return encodeOptionReply(option, Rep.INFO, b);
}

export function encodeInfoName(option: number, name: string): Buffer {
  return encodeOptionReply(option, Rep.INFO, Buffer.concat([u16(Info.NAME), Buffer.from(name, 'utf8')]));
}

export function encodeInfoDescription(option: number, description: string): Buffer {
  return encodeOptionReply(option, Rep.INFO, Buffer.concat([u16(Info.DESCRIPTION), Buffer.from(description, 'utf8')]));
}

export interface BlockSizes {
  minimum: number;
  preferred: number;
  maximum: number;
}

export function encodeInfoBlockSize(option: number, sizes: BlockSizes): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(Info.BLOCK_SIZE, 0);
  b.writeUInt32BE(sizes.minimum, 2);
  b.writeUInt32BE(sizes.preferred, 6);
  b.writeUInt32BE(sizes.maximum, 10);
  return encodeOptionReply(option, Rep.INFO, b);
}

export function encodeMetaContextReply(option: number, id: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(4 + n.length);
  b.writeUInt32BE(id, 0);
  n.copy(b, 4);
  return encodeOptionReply(option, Rep.META_CONTEXT, b);
}

/** The reply to the old NBD_OPT_EXPORT_NAME: size, flags and (unless NO_ZEROES) 124 zero bytes. */
export function encodeExportNameReply(size: number, flags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  b.writeBigUInt64BE(BigInt(size), 0);
  b.writeUInt16BE(flags, 8);
  return b;
}

/** A bounds-checked reader over one option's data: any overrun is a malformed option (NBD_REP_ERR_INVALID). */
class Cursor {
  #offset = 0;
  constructor(readonly data: Buffer) {}
  u16(): number {
    this.#need(2);
    const v = this.data.readUInt16BE(this.#offset);
    this.#offset += 2;
    return v;
  }
  u32(): number {
    this.#need(4);
    const v = this.data.readUInt32BE(this.#offset);
    this.#offset += 4;
    return v;
  }
  string(length: number): string {
    if (length > STRING_MAX) throw new NbdProtocolError(`string of ${length} bytes (at most ${STRING_MAX})`);
    this.#need(length);
    const s = this.data.toString('utf8', this.#offset, this.#offset + length);
    this.#offset += length;
    return s;
  }
  end(): void {
    if (this.#offset !== this.data.length) throw new NbdProtocolError(`${this.data.length - this.#offset} unexpected bytes at the end of the option`);
  }
  #need(n: number): void {
    if (this.#offset + n > this.data.length) throw new NbdProtocolError('option data too short');
  }
}

/** NBD_OPT_INFO / NBD_OPT_GO data: export name and the information items asked for. */
export function decodeInfoRequest(data: Buffer): { name: string; requests: number[] } {
  const c = new Cursor(data);
  const name = c.string(c.u32());
  const count = c.u16();
  const requests: number[] = [];
  for (let i = 0; i < count; i++) requests.push(c.u16());
  c.end();
  return { name, requests };
}

/** NBD_OPT_SET_META_CONTEXT / LIST_META_CONTEXT data: export name and queries. */
export function decodeMetaContextRequest(data: Buffer): { name: string; queries: string[] } {
  const c = new Cursor(data);
  const name = c.string(c.u32());
  const count = c.u32();
  const queries: string[] = [];
  for (let i = 0; i < count; i++) queries.push(c.string(c.u32()));
  c.end();
  return { name, queries };
}

// ---------------------------------------------------------------------------------------------------------------
// Transmission

export const REQUEST_HEADER_LENGTH = 28;

export interface Request {
  flags: number;
  type: number;
  /** The client's opaque cookie, echoed in every reply. */
  handle: bigint;
  offset: number;
  length: number;
}

export function decodeRequestHeader(b: Buffer): Request {
  if (b.length < REQUEST_HEADER_LENGTH) throw new NbdProtocolError('short request header');
  const magic = b.readUInt32BE(0);
  if (magic !== REQUEST_MAGIC) throw new NbdProtocolError(`bad request magic 0x${magic.toString(16)}`);
  const offset = b.readBigUInt64BE(16);
  return {
    flags: b.readUInt16BE(4),
    type: b.readUInt16BE(6),
    handle: b.readBigUInt64BE(8),
    // Offsets beyond 2^53 cannot name a byte of any export; clamp so the range check rejects them.
    offset: offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(offset),
    length: b.readUInt32BE(24),
  };
}

export function encodeRequestHeader(r: Request): Buffer {
  const b = Buffer.alloc(REQUEST_HEADER_LENGTH);
  b.writeUInt32BE(REQUEST_MAGIC, 0);
  b.writeUInt16BE(r.flags, 4);
  b.writeUInt16BE(r.type, 6);
  b.writeBigUInt64BE(r.handle, 8);
  b.writeBigUInt64BE(BigInt(r.offset), 16);
  b.writeUInt32BE(r.length, 24);
  return b;
}

export function encodeSimpleReply(handle: bigint, error: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  b.writeBigUInt64BE(handle, 8);
  return b;
}

/** A structured reply chunk header (20 bytes) for a payload of `length` bytes. */
export function encodeChunkHeader(handle: bigint, type: number, flags: number, length: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(handle, 8);
  b.writeUInt32BE(length, 16);
  return b;
}

/** NBD_REPLY_TYPE_OFFSET_DATA: header + offset; the data follows (kept separate so it is never copied). */
export function encodeOffsetDataHeader(handle: bigint, offset: number, dataLength: number, done: boolean): Buffer {
  const h = encodeChunkHeader(handle, ReplyType.OFFSET_DATA, done ? REPLY_FLAG_DONE : 0, 8 + dataLength);
  const o = Buffer.alloc(8);
  o.writeBigUInt64BE(BigInt(offset), 0);
  return Buffer.concat([h, o]);
}

export function encodeOffsetHole(handle: bigint, offset: number, length: number, done: boolean): Buffer {
  const b = Buffer.alloc(12);
  b.writeBigUInt64BE(BigInt(offset), 0);
  b.writeUInt32BE(length, 8);
  return Buffer.concat([encodeChunkHeader(handle, ReplyType.OFFSET_HOLE, done ? REPLY_FLAG_DONE : 0, 12), b]);
}

export function encodeStructuredDone(handle: bigint): Buffer {
  return encodeChunkHeader(handle, ReplyType.NONE, REPLY_FLAG_DONE, 0);
}

export function encodeStructuredError(handle: bigint, error: number, message: string): Buffer {
  const m = Buffer.from(message.slice(0, 1024), 'utf8');
  const b = Buffer.alloc(6 + m.length);
  b.writeUInt32BE(error, 0);
  b.writeUInt16BE(m.length, 4);
  m.copy(b, 6);
  return Buffer.concat([encodeChunkHeader(handle, ReplyType.ERROR, REPLY_FLAG_DONE, b.length), b]);
}

export interface Extent {
  length: number;
  flags: number;
}

export function encodeBlockStatus(handle: bigint, contextId: number, extents: Extent[], done: boolean): Buffer {
  const b = Buffer.alloc(4 + 8 * extents.length);
  b.writeUInt32BE(contextId, 0);
  extents.forEach((e, i) => {
    b.writeUInt32BE(e.length, 4 + 8 * i);
    b.writeUInt32BE(e.flags, 8 + 8 * i);
  });
  return Buffer.concat([encodeChunkHeader(handle, ReplyType.BLOCK_STATUS, done ? REPLY_FLAG_DONE : 0, b.length), b]);
}

/** Adjacent extents with equal flags become one (clients and the spec prefer the shortest list). */
export function mergeExtents(extents: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    if (e.length === 0) continue;
    const last = out.at(-1);
    if (last && last.flags === e.flags && last.length + e.length <= 0xffffffff) last.length += e.length;
    else out.push({ ...e });
  }
  return out;
}

/**
 * Checks a request's range against the export: the NBD error to answer with, or undefined when it is fine.
 * `minimum` is the block size the server promised (1: none); writes past the end are ENOSPC as the spec asks.
 */
export function checkRange(r: Request, exportSize: number, minimum: number, maximumPayload: number): NbdError | undefined {
  const writes = r.type === Cmd.WRITE || r.type === Cmd.WRITE_ZEROES || r.type === Cmd.TRIM;
  if (r.length === 0 && r.type !== Cmd.FLUSH) return NbdErrno.EINVAL;
  if ((r.type === Cmd.READ || r.type === Cmd.WRITE) && r.length > maximumPayload) return r.type === Cmd.READ ? NbdErrno.EINVAL : NbdErrno.EOVERFLOW;
  if (minimum > 1 && (r.offset % minimum !== 0 || r.length % minimum !== 0)) return NbdErrno.EINVAL;
  if (r.offset + r.length > exportSize) return writes ? NbdErrno.ENOSPC : NbdErrno.EINVAL;
  return undefined;
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v, 0);
  return b;
}
