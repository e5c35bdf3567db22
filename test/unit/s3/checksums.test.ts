import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { crc32, crc32c } from '../../../src/index.js';
import { S3Error, type S3ErrorCode } from '../../../gateway/s3/s3-error.js';
import {
  checksumAlgorithms,
  checksumBase64,
  checksumHeaderName,
  createChecksum,
  createMd5,
  md5Hex,
  parseChecksumAlgorithm,
  verifyChecksum,
  verifyContentMd5,
} from '../../../gateway/s3/checksums.js';

const check = Buffer.from('123456789');

test('checksums: CRC check values and AWS header encodings', () => {
  assert.equal(crc32(check), 0xcbf43926);
  assert.equal(crc32c(check), 0xe3069283);
  assert.equal(crc32(Buffer.from('6789'), crc32(Buffer.from('12345'))), 0xcbf43926);
  assert.equal(crc32c(Buffer.from('6789'), crc32c(Buffer.from('12345'))), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  assert.equal(checksumBase64('crc32', check), Buffer.from('cbf43926', 'hex').toString('base64'));
  assert.equal(checksumBase64('crc32c', check), Buffer.from('e3069283', 'hex').toString('base64'));
  assert.equal(checksumBase64('crc32', Buffer.alloc(0)), 'AAAAAA==');
  assert.equal(checksumBase64('sha256', Buffer.alloc(0)), '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  assert.equal(checksumBase64('sha1', check), createHash('sha1').update(check).digest('base64'));
  assert.equal(md5Hex(Buffer.alloc(0)), 'd41d8cd98f00b204e9800998ecf8427e');
});

test('checksums: fed in pieces equals fed at once', () => {
  const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7919) % 251));
  for (const alg of checksumAlgorithms) {
    const whole = checksumBase64(alg, data);
    for (const step of [1, 3, 64, 4097]) {
      const c = createChecksum(alg);
      for (let at = 0; at < data.length; at += step) c.update(data.subarray(at, at + step));
      assert.equal(c.digestBase64(), whole, `${alg} in steps of ${step}`);
    }
  }
  const md5 = createMd5();
  md5.update(data.subarray(0, 5));
  md5.update(data.subarray(5));
  assert.equal(md5.digest().toString('hex'), md5Hex(data));
});

test('checksums: names and algorithms', () => {
  assert.equal(parseChecksumAlgorithm('CRC32C'), 'crc32c');
  assert.equal(parseChecksumAlgorithm('x-amz-checksum-sha1'), 'sha1');
  assert.equal(parseChecksumAlgorithm('CRC64NVME'), undefined);
  assert.equal(checksumHeaderName('sha256'), 'x-amz-checksum-sha256');
});

function refused(fn: () => unknown, code: S3ErrorCode): void {
  assert.throws(fn, (e: unknown) => e instanceof S3Error && e.code === code);
}

test('checksums: client values are checked: malformed is InvalidRequest/InvalidDigest, different is BadDigest', () => {
  const good = checksumBase64('crc32c', check);
  verifyChecksum('crc32c', good, good);
  verifyChecksum('crc32c', ` ${good} `, good);
  refused(() => verifyChecksum('crc32c', checksumBase64('crc32c', Buffer.from('x')), good), 'BadDigest');
  refused(() => verifyChecksum('crc32c', 'not base64!', good), 'InvalidRequest');
  refused(() => verifyChecksum('crc32c', checksumBase64('sha1', check), good), 'InvalidRequest');
  const md5 = createHash('md5').update(check).digest();
  verifyContentMd5(md5.toString('base64'), md5);
  refused(() => verifyContentMd5(createHash('md5').update('x').digest('base64'), md5), 'BadDigest');
  refused(() => verifyContentMd5(md5.toString('hex'), md5), 'InvalidDigest');
  refused(() => verifyContentMd5('AAAA', md5), 'InvalidDigest');
});
