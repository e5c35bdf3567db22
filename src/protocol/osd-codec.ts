/** Codecs for OSD data-plane headers (carried by the messenger) and the per-PG records OSDs persist. */
import { decodeMessage } from './cluster-map.js';
import { shoal } from './generated/shoal.js';
import { protobufCodec, type MessageCodec } from './rpc.js';
import { readMarker, unsupportedVersion, withMarker } from './versioned.js';
import { StorageError } from '../common/index.js';

export type Eversion = { epoch: number; seq: number };
export const zeroVersion: Eversion = Object.freeze({ epoch: 0, seq: 0 });

export function compareVersions(a: Eversion, b: Eversion): number {
  return a.epoch !== b.epoch ? a.epoch - b.epoch : a.seq - b.seq;
}

export function versionFromWire(v: shoal.Eversion.$Properties | null | undefined): Eversion {
  return { epoch: Number(v?.epoch ?? 0), seq: Number(v?.seq ?? 0) };
}

export function versionToString(v: Eversion): string {
  return `${v.epoch}'${v.seq}`;
}

/** 16 bytes that sort like the version (used as object version xattr and in PG log keys). */
export function encodeVersionKey(v: Eversion): string {
  return v.epoch.toString(16).padStart(16, '0') + v.seq.toString(16).padStart(16, '0');
}

export function encodeVersionBytes(v: Eversion): Buffer {
  const out = Buffer.alloc(16);
  out.writeBigUInt64BE(BigInt(v.epoch), 0);
  out.writeBigUInt64BE(BigInt(v.seq), 8);
  return out;
}

export function decodeVersionBytes(bytes: Uint8Array | undefined): Eversion {
  if (!bytes || bytes.length !== 16) return { ...zeroVersion };
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { epoch: Number(b.readBigUInt64BE(0)), seq: Number(b.readBigUInt64BE(8)) };
}

const c = <T>(type: { encode(m: T): { finish(): Uint8Array }; decode(b: Uint8Array): T }, name: string): MessageCodec<T> =>
  protobufCodec<T>(type, name);

/** Typed headers of the OSD messenger ops, by op name. */
export const osdCodecs = {
  opRequest: c(shoal.OsdOpRequest, 'OsdOpRequest'),
  opReply: c(shoal.OsdOpReply, 'OsdOpReply'),
  pgListRequest: c(shoal.PgListRequest, 'PgListRequest'),
  pgListReply: c(shoal.PgListReply, 'PgListReply'),
  repOpRequest: c(shoal.RepOpRequest, 'RepOpRequest'),
  repOpReply: c(shoal.RepOpReply, 'RepOpReply'),
  pgInfoRequest: c(shoal.PgInfoRequest, 'PgInfoRequest'),
  pgInfoReply: c(shoal.PgInfoReply, 'PgInfoReply'),
  pullRequest: c(shoal.PullRequest, 'PullRequest'),
  objectState: c(shoal.ObjectState, 'ObjectState'),
  pushRequest: c(shoal.PushRequest, 'PushRequest'),
  scanRequest: c(shoal.ScanRequest, 'ScanRequest'),
  scanReply: c(shoal.ScanReply, 'ScanReply'),
  pgScrubRequest: c(shoal.PgScrubRequest, 'PgScrubRequest'),
  pgScrubReply: c(shoal.PgScrubReply, 'PgScrubReply'),
  ping: c(shoal.OsdPing, 'OsdPing'),
  pgActivate: c(shoal.PgActivate, 'PgActivate'),
  watchRequest: c(shoal.WatchRequest, 'WatchRequest'),
  watchPollRequest: c(shoal.WatchPollRequest, 'WatchPollRequest'),
  watchPollReply: c(shoal.WatchPollReply, 'WatchPollReply'),
  notifyRequest: c(shoal.NotifyRequest, 'NotifyRequest'),
  notifyAckRequest: c(shoal.NotifyAckRequest, 'NotifyAckRequest'),
  notifyReply: c(shoal.NotifyReply, 'NotifyReply'),
  ecReadRequest: c(shoal.EcReadRequest, 'EcReadRequest'),
  ecReadReply: c(shoal.EcReadReply, 'EcReadReply'),
  ecRollbackRequest: c(shoal.EcRollbackRequest, 'EcRollbackRequest'),
  ecCommitRequest: c(shoal.EcCommitRequest, 'EcCommitRequest'),
} as const;

/** An EC shard's undo record as stored: marker, 4-byte length of the EcRollback message, the message, the old bytes. */
export function encodeEcRollback(record: shoal.EcRollback.$Properties, oldBytes: Uint8Array): Buffer {
  const message = shoal.EcRollback.encode({ ...record, dataOffset: 0, dataLength: 0 }).finish();
  const body = Buffer.alloc(4 + message.length + oldBytes.length);
  body.writeUInt32BE(message.length, 0);
  body.set(message, 4);
  body.set(oldBytes, 4 + message.length);
  return withMarker('ecRollback', 1, body);
}

export function decodeEcRollback(bytes: Uint8Array): { record: shoal.EcRollback; oldBytes: Buffer } {
  const { version, body } = readMarker('ecRollback', bytes);
  if (version !== 1) throw unsupportedVersion('ecRollback', version);
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (b.length < 4 || b.readUInt32BE(0) > b.length - 4) throw new StorageError('CORRUPT_DATA', `ecRollback: ${b.length} bytes is too short`);
  const length = b.readUInt32BE(0);
  const record = decodeMessage('ecRollback', () => shoal.EcRollback.decode(b.subarray(4, 4 + length)));
  return { record, oldBytes: b.subarray(4 + length) };
}

export function encodePgLogEntry(entry: shoal.PgLogEntry.$Properties): Buffer {
  return withMarker('pgLogEntry', 1, shoal.PgLogEntry.encode(entry).finish());
}

export function decodePgLogEntry(bytes: Uint8Array): shoal.PgLogEntry {
  const { version, body } = readMarker('pgLogEntry', bytes);
  if (version !== 1) throw unsupportedVersion('pgLogEntry', version);
  return decodeMessage('pgLogEntry', () => shoal.PgLogEntry.decode(body));
}

export function encodePgInfo(info: shoal.PgStoredInfo.$Properties): Buffer {
  return withMarker('pgInfo', 1, shoal.PgStoredInfo.encode(info).finish());
}

export function decodePgInfo(bytes: Uint8Array): shoal.PgStoredInfo {
  const { version, body } = readMarker('pgInfo', bytes);
  if (version !== 1) throw unsupportedVersion('pgInfo', version);
  return decodeMessage('pgInfo', () => shoal.PgStoredInfo.decode(body));
}
