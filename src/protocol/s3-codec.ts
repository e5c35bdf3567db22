/**
 * Versioned codecs of the S3 gateway's records (s3.proto). One format id for all of them: the record kind is known
 * from where it is stored, and each kind decodes with its own message type.
 */
import { shoal } from './generated/shoal.js';
import { decodeMessage } from './cluster-map.js';
import { readMarker, unsupportedVersion, withMarker } from './versioned.js';

interface MessageType<T> {
  encode(m: T): { finish(): Uint8Array };
  decode(b: Uint8Array): T;
  name?: string;
}

export interface S3RecordCodec<P, T> {
  encode(value: P): Buffer;
  decode(bytes: Uint8Array): T;
}

function codec<P, T>(type: MessageType<P & T>, what: string): S3RecordCodec<P, T> {
  return {
    encode: (value) => withMarker('s3Record', 1, type.encode(value as P & T).finish()),
    decode(bytes) {
      const { version, body } = readMarker('s3Record', bytes);
      if (version !== 1) throw unsupportedVersion('s3Record', version);
      return decodeMessage(what, () => type.decode(body));
    },
  };
}

export const s3Codecs = {
  user: codec<shoal.S3User.$Properties, shoal.S3User>(shoal.S3User as never, 'S3User'),
  accessKey: codec<shoal.S3AccessKey.$Properties, shoal.S3AccessKey>(shoal.S3AccessKey as never, 'S3AccessKey'),
  bucket: codec<shoal.S3Bucket.$Properties, shoal.S3Bucket>(shoal.S3Bucket as never, 'S3Bucket'),
  object: codec<shoal.S3Object.$Properties, shoal.S3Object>(shoal.S3Object as never, 'S3Object'),
  upload: codec<shoal.S3Upload.$Properties, shoal.S3Upload>(shoal.S3Upload as never, 'S3Upload'),
  part: codec<shoal.S3Part.$Properties, shoal.S3Part>(shoal.S3Part as never, 'S3Part'),
  garbage: codec<shoal.S3Garbage.$Properties, shoal.S3Garbage>(shoal.S3Garbage as never, 'S3Garbage'),
} as const;
