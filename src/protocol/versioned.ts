/**
 * Every persisted or long-lived encoding starts with a two-byte marker: the format (what kind of thing this is) and
 * its version. Decoders dispatch on the version and keep decoding every old version forever; a wrong format or an
 * unknown version is a clear error instead of garbage. Golden encodings of each version live in test/vectors/protocol.
 */
import { StorageError } from '../common/index.js';

/** Format ids are forever: never reuse or renumber one. */
export const formatIds = {
  clusterMap: 0x01,
  clusterMapIncremental: 0x02,
  raftHardState: 0x10,
  raftEntry: 0x11,
  raftSnapshot: 0x12,
  monitorCommand: 0x13,
  pgLogEntry: 0x20,
  pgInfo: 0x21,
  ecRollback: 0x22,
  s3Record: 0x30,
} as const;

export type FormatName = keyof typeof formatIds;

export const markerBytes = 2;

export function withMarker(format: FormatName, version: number, body: Uint8Array): Buffer {
  if (!Number.isInteger(version) || version < 1 || version > 255) throw new TypeError(`bad format version ${version}`);
  const out = Buffer.allocUnsafe(markerBytes + body.length);
  out[0] = formatIds[format];
  out[1] = version;
  out.set(body, markerBytes);
  return out;
}

/** Splits off the marker, checking the format; returns the version for the caller to dispatch on. */
export function readMarker(format: FormatName, bytes: Uint8Array): { version: number; body: Uint8Array } {
  if (bytes.length < markerBytes) {
    throw new StorageError('CORRUPT_DATA', `${format}: ${bytes.length} bytes is too short for a format marker`);
  }
  if (bytes[0] !== formatIds[format]) {
    throw new StorageError('CORRUPT_DATA', `${format}: format id ${bytes[0]} is not ${formatIds[format]}`);
  }
  return { version: bytes[1] as number, body: bytes.subarray(markerBytes) };
}

export function unsupportedVersion(format: FormatName, version: number): StorageError {
  return new StorageError('UNSUPPORTED_VERSION', `${format}: version ${version} is not known to this build`);
}
