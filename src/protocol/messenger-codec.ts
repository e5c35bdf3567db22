/**
 * The data-plane messenger's frame format (messenger.proto; transport in src/net/messenger*.ts). A frame is
 *
 *   offset  size  field
 *        0     2  magic 0x53 0x4d ("SM")
 *        2     1  version (1)
 *        3     1  flags (0; any other value is refused, so a later feature such as payload checksums cannot be
 *                 misread by an older build)
 *        4     4  header length, u32 big-endian
 *        8     4  payload length, u32 big-endian
 *       12     …  MessengerFrameHeader (protobuf), header length bytes
 *        …     …  payload, payload length bytes, raw
 *
 * The payload is never part of a protobuf message: it is written as its own buffer and read back as a slice of the
 * socket's bytes. Decoding never trusts its input: a bad magic, flags or kind, or an undecodable header raise
 * CORRUPT_DATA, a version this build does not speak UNSUPPORTED_VERSION.
 */
import $protobuf from 'protobufjs/minimal.js';
import { StorageError } from '../common/index.js';
import { decodeMessage } from './cluster-map.js';
import { shoal } from './generated/shoal.js';

export const framePrefixBytes = 12;
export const frameMagic0 = 0x53;
export const frameMagic1 = 0x4d;
export const frameVersion = 1;

export type FrameKind = 'request' | 'response' | 'oneWay' | 'handshake';

/** The decoded header of one frame; strings are empty and `opHeader` has length 0 where the wire leaves them out. */
export interface FrameHeader {
  id: number;
  kind: FrameKind;
  op: string;
  /** On responses: empty for success, else a Shoal ErrorCode (the receiver checks it is one it knows). */
  errorCode: string;
  errorMessage: string;
  opHeader: Uint8Array;
}

export interface FramePrefix {
  headerBytes: number;
  payloadBytes: number;
}

const K = shoal.MessengerFrameKind;
const kindToWire: Record<FrameKind, shoal.MessengerFrameKind> = {
  request: K.MESSENGER_FRAME_REQUEST,
  response: K.MESSENGER_FRAME_RESPONSE,
  oneWay: K.MESSENGER_FRAME_ONE_WAY,
  handshake: K.MESSENGER_FRAME_HANDSHAKE,
};
const kindFromWire = new Map<number, FrameKind>(
  (Object.entries(kindToWire) as [FrameKind, number][]).map(([kind, wire]) => [wire, kind]),
);

const emptyBytes = new Uint8Array(0);

/** The prefix and header of a frame, in one buffer; the payload is written after it as a buffer of its own. */
export function encodeFrameHead(header: FrameHeader, payloadBytes: number): Buffer {
  if (!Number.isInteger(payloadBytes) || payloadBytes < 0 || payloadBytes > 0xffff_ffff) {
    throw new TypeError(`frame payload length ${payloadBytes} does not fit in a u32`);
  }
  // Only non-default fields are set: protobufjs then skips the others, which keeps small frames small.
  const message: shoal.IMessengerFrameHeader = { kind: kindToWire[header.kind] };
  if (header.id !== 0) message.id = header.id;
  if (header.op !== '') message.op = header.op;
  if (header.errorCode !== '') message.errorCode = header.errorCode;
  if (header.errorMessage !== '') message.errorMessage = header.errorMessage;
  if (header.opHeader.length > 0) message.opHeader = header.opHeader;
  // The prefix is reserved in the same writer and filled in afterwards: one allocation, no copy of the header.
  const writer = $protobuf.Writer.create().fixed32(0).fixed32(0).fixed32(0);
  const bytes = shoal.MessengerFrameHeader.encode(message, writer).finish();
  const out = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  out[0] = frameMagic0;
  out[1] = frameMagic1;
  out[2] = frameVersion;
  out[3] = 0;
  writeU32(out, 4, out.length - framePrefixBytes);
  writeU32(out, 8, payloadBytes);
  return out;
}

/** Reads the 12-byte prefix at `offset` (the caller has checked that 12 bytes are there). */
export function decodeFramePrefix(bytes: Uint8Array, offset = 0): FramePrefix {
  if (bytes[offset] !== frameMagic0 || bytes[offset + 1] !== frameMagic1) {
    throw new StorageError('CORRUPT_DATA', 'messenger frame: bad magic (not a Shoal messenger peer?)');
  }
  const version = bytes[offset + 2] as number;
  if (version !== frameVersion) {
    throw new StorageError('UNSUPPORTED_VERSION', `messenger frame: version ${version} is not known to this build`);
  }
  if (bytes[offset + 3] !== 0) {
    throw new StorageError('CORRUPT_DATA', `messenger frame: unknown flags ${bytes[offset + 3]}`);
  }
  return { headerBytes: readU32(bytes, offset + 4), payloadBytes: readU32(bytes, offset + 8) };
}

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = (value >>> 16) & 0xff;
  bytes[at + 2] = (value >>> 8) & 0xff;
  bytes[at + 3] = value & 0xff;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (
    (bytes[at] as number) * 0x100_0000 +
    (((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number))
  );
}

export function decodeFrameHeader(bytes: Uint8Array): FrameHeader {
  const wire = decodeMessage('messenger frame header', () => shoal.MessengerFrameHeader.decode(bytes));
  const kind = kindFromWire.get(wire.kind);
  if (kind === undefined) throw new StorageError('CORRUPT_DATA', `messenger frame: unknown kind ${wire.kind}`);
  const id = wire.id;
  if (!Number.isInteger(id) || id < 0 || id > 0xffff_ffff) {
    throw new StorageError('CORRUPT_DATA', `messenger frame: bad id ${String(id)}`);
  }
  return {
    id,
    kind,
    op: wire.op,
    errorCode: wire.errorCode,
    errorMessage: wire.errorMessage,
    opHeader: wire.opHeader.length > 0 ? wire.opHeader : emptyBytes,
  };
}
