/**
 * Payload checksums as S3 clients send them: `x-amz-checksum-{crc32,crc32c,sha1,sha256}` (base64 of the big-endian
 * digest; the CRCs are 4 bytes) and `Content-MD5` (base64 of the 16-byte MD5), plus the hex MD5 of ETags. Pure: no
 * I/O; CRCs run natively (src/common's crc32/crc32c), hashes in node:crypto.
 */
import { createHash } from 'node:crypto';
import { crc32, crc32c } from '../../src/index.js';
import { S3Error } from './s3-error.js';

export type ChecksumAlgorithm = 'crc32' | 'crc32c' | 'sha1' | 'sha256';

export const checksumAlgorithms: readonly ChecksumAlgorithm[] = ['crc32', 'crc32c', 'sha1', 'sha256'];

/** A running checksum: feed it pieces in order, read the digest once at the end. */
export interface Checksum {
  readonly algorithm: ChecksumAlgorithm;
  update(chunk: Uint8Array): void;
  /** Base64 of the big-endian digest, as in `x-amz-checksum-*`. */
  digestBase64(): string;
}

/** The digest length in bytes of each algorithm (a well-formed header value decodes to exactly this many bytes). */
export const checksumBytes: Readonly<Record<ChecksumAlgorithm, number>> = { crc32: 4, crc32c: 4, sha1: 20, sha256: 32 };

export function createChecksum(algorithm: ChecksumAlgorithm): Checksum {
  if (algorithm === 'crc32' || algorithm === 'crc32c') {
    const fn = algorithm === 'crc32' ? crc32 : crc32c;
    let state = 0;
    return {
      algorithm,
      update(chunk) {
        state = fn(chunk, state);
      },
      digestBase64() {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(state >>> 0);
        return out.toString('base64');
      },
    };
  }
  const hash = createHash(algorithm);
  return {
    algorithm,
    update(chunk) {
      hash.update(chunk);
    },
    digestBase64() {
      return hash.digest('base64');
    },
  };
}

/** The checksum of a whole buffer, base64 as in `x-amz-checksum-*`. */
export function checksumBase64(algorithm: ChecksumAlgorithm, data: Uint8Array): string {
  const checksum = createChecksum(algorithm);
  checksum.update(data);
  return checksum.digestBase64();
}

/** The header (and trailer) name carrying an algorithm's value: `x-amz-checksum-crc32c`, ... */
export function checksumHeaderName(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm}`;
}

/**
 * The algorithm named by `x-amz-sdk-checksum-algorithm`/`x-amz-checksum-algorithm` ("CRC32C", any case) or by a
 * header/trailer name (`x-amz-checksum-crc32c`); undefined for anything else (the caller decides whether that is an
 * error: `InvalidRequest` for an unsupported algorithm).
 */
export function parseChecksumAlgorithm(value: string): ChecksumAlgorithm | undefined {
  const name = value.trim().toLowerCase().replace(/^x-amz-checksum-/, '');
  return (checksumAlgorithms as readonly string[]).includes(name) ? (name as ChecksumAlgorithm) : undefined;
}

/**
 * Checks a client's `x-amz-checksum-<algorithm>` value against the one computed over the stored bytes: a value that is
 * not base64 of the right length is `InvalidRequest`, a different one `BadDigest` (as AWS answers).
 */
export function verifyChecksum(algorithm: ChecksumAlgorithm, clientBase64: string, computedBase64: string): void {
  const value = clientBase64.trim();
  if (!isBase64Of(value, checksumBytes[algorithm])) {
    throw new S3Error('InvalidRequest', `Value for ${checksumHeaderName(algorithm)} header is invalid.`);
  }
  if (value !== computedBase64) {
    throw new S3Error('BadDigest', `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`, {
      [`Expected${algorithm.toUpperCase()}`]: value,
      [`Calculated${algorithm.toUpperCase()}`]: computedBase64,
    });
  }
}

/** A running MD5 (ETags, Content-MD5). */
export interface Md5 {
  update(chunk: Uint8Array): void;
  /** The 16-byte digest; call once. */
  digest(): Buffer;
}

export function createMd5(): Md5 {
  const hash = createHash('md5');
  return {
    update(chunk) {
      hash.update(chunk);
    },
    digest() {
      return hash.digest();
    },
  };
}

/** Hex MD5 of a buffer (an object's ETag without the quotes). */
export function md5Hex(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

/**
 * Checks a `Content-MD5` header against the MD5 of the received body: not base64 of 16 bytes is `InvalidDigest`, a
 * different digest `BadDigest`.
 */
export function verifyContentMd5(header: string, md5: Uint8Array): void {
  const value = header.trim();
  if (!isBase64Of(value, 16)) throw new S3Error('InvalidDigest', 'The Content-MD5 you specified was invalid.');
  const computed = Buffer.from(md5).toString('base64');
  if (value !== computed) {
    throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.', {
      ExpectedDigest: value,
      CalculatedDigest: computed,
    });
  }
}

/** Canonical (padded) base64 of exactly `bytes` bytes. */
function isBase64Of(value: string, bytes: number): boolean {
  return /^[A-Za-z0-9+/]*={0,2}$/.test(value) && value.length % 4 === 0 && Buffer.from(value, 'base64').toString('base64') === value && Buffer.from(value, 'base64').length === bytes;
}
