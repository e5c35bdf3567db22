import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { S3Error, type S3ErrorCode } from '../../../gateway/s3/s3-error.js';
import { deriveSigningKey } from '../../../gateway/s3/sigv4.js';
import { checksumBase64 } from '../../../gateway/s3/checksums.js';
import {
  decodeAwsChunked,
  encodeAwsChunked,
  trailerChecksumAlgorithm,
  verifyTrailerChecksum,
  type AwsChunkedOptions,
  type AwsChunkedResult,
  type ChunkSigning,
} from '../../../gateway/s3/aws-chunked.js';
import { seededRandom } from '../../helpers/seed.js';

// The AWS example "Signature Calculations for the Authorization Header: Transferring Payload in Multiple Chunks":
// 66560 bytes of 'a' in a 65536-byte chunk and a 1024-byte chunk.
const example: ChunkSigning = {
  signingKey: deriveSigningKey('wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', '20130524', 'us-east-1', 's3'),
  seedSignature: '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
  amzDate: '20130524T000000Z',
  scope: '20130524/us-east-1/s3/aws4_request',
};
const exampleSignatures = [
  'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
  '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
  'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
];
const exampleBody = Buffer.concat([
  Buffer.from(`10000;chunk-signature=${exampleSignatures[0]}\r\n`),
  Buffer.alloc(65536, 'a'),
  Buffer.from(`\r\n400;chunk-signature=${exampleSignatures[1]}\r\n`),
  Buffer.alloc(1024, 'a'),
  Buffer.from(`\r\n0;chunk-signature=${exampleSignatures[2]}\r\n\r\n`),
]);

async function* pieces(body: Buffer, cuts: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    yield body.subarray(at, cut);
    at = cut;
  }
  yield body.subarray(at);
}

async function decode(body: Buffer, options: AwsChunkedOptions, cuts: number[] = []): Promise<{ data: Buffer; result: AwsChunkedResult }> {
  const out: Buffer[] = [];
  const gen = decodeAwsChunked(pieces(body, cuts), options);
  for (;;) {
    const next = await gen.next();
    if (next.done) return { data: Buffer.concat(out), result: next.value };
    out.push(next.value);
  }
}

async function refused(promise: Promise<unknown>, code: S3ErrorCode, what = ''): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof S3Error, `${what}: expected an S3Error, got ${String(e)}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    return true;
  });
}

test('aws-chunked: the AWS signed example decodes, and the encoder reproduces it', async () => {
  assert.equal(exampleBody.length, 66824); // its Content-Length
  const { data, result } = await decode(exampleBody, { signed: example, decodedLength: 66560 });
  assert.deepEqual(data, Buffer.alloc(66560, 'a'));
  assert.equal(result.decodedBytes, 66560);
  assert.equal(result.trailers.size, 0);
  assert.deepEqual(encodeAwsChunked([Buffer.alloc(65536, 'a'), Buffer.alloc(1024, 'a')], { signed: example }), exampleBody);
});

test('aws-chunked: the AWS example split at random places decodes the same', async (t) => {
  const random = seededRandom(t);
  const seed = random.int(0, 2 ** 31 - 1);
  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 0, max: exampleBody.length }), { maxLength: 40 }), async (cuts) => {
      const { data } = await decode(exampleBody, { signed: example, decodedLength: 66560 }, cuts);
      assert.equal(data.length, 66560);
      assert.ok(data.every((b) => b === 0x61));
    }),
    { seed, numRuns: 60 },
  );
});

const small = [Buffer.from('hello, '), Buffer.from('aws-chunked world\r\n0\r\n'), Buffer.from('!')];
const smallData = Buffer.concat(small);
const crc = checksumBase64('crc32c', smallData);
const modes: { name: string; body: Buffer; options: AwsChunkedOptions }[] = [
  { name: 'signed', body: encodeAwsChunked(small, { signed: example }), options: { signed: example } },
  {
    name: 'signed with trailer',
    body: encodeAwsChunked(small, { signed: example, trailers: { 'x-amz-checksum-crc32c': crc } }),
    options: { signed: example, trailer: true },
  },
  {
    name: 'unsigned with trailer',
    body: encodeAwsChunked(small, { trailers: { 'x-amz-checksum-crc32c': crc } }),
    options: { trailer: true },
  },
];

test('aws-chunked: every split of every mode decodes the same, byte by byte too', async () => {
  for (const { name, body, options } of modes) {
    const opts = { ...options, decodedLength: smallData.length };
    for (let cut = 0; cut <= body.length; cut++) {
      const { data, result } = await decode(body, opts, [cut]);
      assert.deepEqual(data, smallData, `${name} cut at ${cut}`);
      if (options.trailer) verifyTrailerChecksum(result.trailers, 'crc32c', crc);
    }
    const everyByte = Array.from({ length: body.length }, (_, i) => i);
    assert.deepEqual((await decode(body, opts, everyByte)).data, smallData, name);
  }
});

test('aws-chunked: truncation anywhere is IncompleteBody', async () => {
  for (const { name, body, options } of modes) {
    for (let length = 0; length < body.length; length++) {
      await refused(decode(body.subarray(0, length), options), 'IncompleteBody', `${name} truncated to ${length}`);
    }
  }
});

test('aws-chunked: a flipped byte of data, of a signature or of a trailer is refused', async () => {
  for (const { name, body, options } of modes) {
    for (let at = 0; at < body.length; at++) {
      const tampered = Buffer.from(body);
      tampered[at] = (tampered[at] as number) ^ 0x01;
      let outcome: string;
      try {
        const { data, result } = await decode(tampered, { ...options, decodedLength: smallData.length });
        if (options.trailer) verifyTrailerChecksum(result.trailers, 'crc32c', checksumBase64('crc32c', data));
        outcome = data.equals(smallData) ? 'same' : 'accepted';
      } catch (e) {
        outcome = e instanceof S3Error ? e.code : `not an S3Error: ${String(e)}`;
      }
      // Unsigned data is protected by the trailer checksum (checked by the caller); signed data by the signatures.
      assert.ok(
        ['SignatureDoesNotMatch', 'InvalidChunkSizeError', 'InvalidRequest', 'IncompleteBody', 'BadDigest'].includes(outcome) ||
          (outcome === 'same' && !options.signed),
        `${name}: flipping byte ${at} (${JSON.stringify(body.toString('latin1', Math.max(0, at - 8), at + 8))}) gave ${outcome}`,
      );
    }
  }
  // The signed trailer: its checksum value changed, signature kept.
  const signedTrailer = modes[1] as (typeof modes)[number];
  const text = signedTrailer.body.toString('latin1').replace(crc, checksumBase64('crc32c', Buffer.from('other')));
  await refused(decode(Buffer.from(text, 'latin1'), signedTrailer.options), 'SignatureDoesNotMatch', 'trailer value');
  // The unsigned trailer: decodes, and the caller's check says BadDigest.
  const unsigned = modes[2] as (typeof modes)[number];
  const other = Buffer.from(unsigned.body.toString('latin1').replace(crc, checksumBase64('crc32c', Buffer.from('other'))), 'latin1');
  const { result } = await decode(other, unsigned.options);
  assert.throws(() => verifyTrailerChecksum(result.trailers, 'crc32c', crc), (e: unknown) => e instanceof S3Error && e.code === 'BadDigest');
  assert.throws(() => verifyTrailerChecksum(result.trailers, 'crc32', crc), (e: unknown) => e instanceof S3Error && e.code === 'InvalidRequest');
});

test('aws-chunked: reordered, dropped or foreign chunks and a wrong seed are refused', async () => {
  const full = encodeAwsChunked(small, { signed: example }).toString('latin1');
  // The frames of the stream: size line, data, CRLF.
  const frames: string[] = [];
  for (let at = 0; at < full.length; ) {
    const lineEnd = full.indexOf('\r\n', at) + 2;
    const size = parseInt(full.slice(at, lineEnd), 16);
    const end = size === 0 ? full.length : lineEnd + size + 2;
    frames.push(full.slice(at, end));
    at = end;
  }
  assert.equal(frames.length, 4);
  const [f0, f1, f2, f3] = frames as [string, string, string, string];
  for (const [what, order] of [
    ['swapped', [f1, f0, f2, f3]],
    ['first dropped', [f1, f2, f3]],
    ['middle dropped', [f0, f2, f3]],
    ['repeated', [f0, f0, f1, f2, f3]],
  ] as const) {
    await refused(decode(Buffer.from(order.join(''), 'latin1'), { signed: example }), 'SignatureDoesNotMatch', what);
  }
  await refused(decode(Buffer.from(full, 'latin1'), { signed: { ...example, seedSignature: '0'.repeat(64) } }), 'SignatureDoesNotMatch', 'seed');
  const otherKey = { ...example, signingKey: deriveSigningKey('other', '20130524', 'us-east-1', 's3') };
  await refused(decode(Buffer.from(full, 'latin1'), { signed: otherKey }), 'SignatureDoesNotMatch', 'key');
  // A signed stream needs signatures; an unsigned one read as signed is refused.
  await refused(decode(encodeAwsChunked(small), { signed: example }), 'SignatureDoesNotMatch', 'unsigned as signed');
  const noTrailerSignature = encodeAwsChunked(small, { signed: example, trailers: { 'x-amz-checksum-crc32c': crc } })
    .toString('latin1')
    .replace(/x-amz-trailer-signature:.*\r\n/, '');
  await refused(decode(Buffer.from(noTrailerSignature, 'latin1'), { signed: example, trailer: true }), 'SignatureDoesNotMatch', 'no trailer signature');
});

test('aws-chunked: malformed framing and lengths are refused with the right code', async () => {
  const cases: [string, string | Buffer, AwsChunkedOptions, S3ErrorCode][] = [
    ['non-hex size', 'zz\r\nab\r\n0\r\n\r\n', {}, 'InvalidChunkSizeError'],
    ['empty size', '\r\n', {}, 'InvalidChunkSizeError'],
    ['negative size', '-1\r\n', {}, 'InvalidChunkSizeError'],
    ['17 hex digits', `${'1'.repeat(17)}\r\n`, {}, 'InvalidChunkSizeError'],
    ['over chunkBytesMax', '401\r\n', { chunkBytesMax: 1024 }, 'InvalidChunkSizeError'],
    ['huge size', 'ffffffffffffffff\r\n', {}, 'InvalidChunkSizeError'],
    ['size line too long', `1;${'x'.repeat(5000)}`, {}, 'InvalidChunkSizeError'],
    ['bare LF', '2\nab\r\n0\r\n\r\n', {}, 'InvalidRequest'],
    ['no CRLF after data', '2\r\nabc\r\n0\r\n\r\n', {}, 'InvalidRequest'],
    ['data after the end', '2\r\nab\r\n0\r\n\r\nxyz', {}, 'InvalidRequest'],
    ['trailer not announced', '2\r\nab\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n', {}, 'InvalidRequest'],
    ['malformed trailer', '2\r\nab\r\n0\r\nno colon here\r\n\r\n', { trailer: true }, 'InvalidRequest'],
    ['duplicate trailer', '0\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n', { trailer: true }, 'InvalidRequest'],
    ['trailer line too long', `0\r\nx-amz-meta:${'v'.repeat(5000)}\r\n\r\n`, { trailer: true }, 'InvalidRequest'],
    ['shorter than decoded length', '2\r\nab\r\n0\r\n\r\n', { decodedLength: 3 }, 'IncompleteBody'],
    ['longer than decoded length', '2\r\nab\r\n0\r\n\r\n', { decodedLength: 1 }, 'InvalidRequest'],
    ['bad chunk-signature', '2;chunk-signature=xyz\r\nab\r\n', { signed: example }, 'SignatureDoesNotMatch'],
    ['empty body', '', {}, 'IncompleteBody'],
  ];
  for (const [name, body, options, code] of cases) {
    await refused(decode(Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1'), options), code, name);
  }
  // Chunk extensions are ignored on unsigned streams; trailers reach onTrailers.
  let seen: Map<string, string> | undefined;
  const { data } = await decode(Buffer.from('2;ext=1\r\nab\r\n0\r\nX-Amz-Checksum-CRC32 : AAAAAA== \r\n\r\n'), {
    trailer: true,
    onTrailers: (trailers) => (seen = trailers),
  });
  assert.equal(data.toString(), 'ab');
  assert.deepEqual(seen, new Map([['x-amz-checksum-crc32', 'AAAAAA==']]));
});

test('aws-chunked: x-amz-trailer names its checksum algorithm', () => {
  assert.equal(trailerChecksumAlgorithm('x-amz-checksum-crc32c'), 'crc32c');
  assert.equal(trailerChecksumAlgorithm(' X-Amz-Checksum-SHA256 '), 'sha256');
  assert.equal(trailerChecksumAlgorithm('x-amz-checksum-md5'), undefined);
});
