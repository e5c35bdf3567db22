/**
 * Hostile and broken requests against the S3 gateway of `shoal up`, sent raw (node:http signed with `signRequest`,
 * aws-chunked bodies from `encodeAwsChunked`, or bare TCP): tampered chunk signatures, wrong trailer checksums,
 * bodies cut short, malformed XML, absurd headers and garbage bytes. Each is refused with the S3 error it deserves
 * (or a closed connection where HTTP itself is broken), stores nothing, and the gateway goes on serving.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { encodeAwsChunked } from '../../gateway/s3/aws-chunked.js';
import { streamingSignedPayload, streamingUnsignedPayloadTrailer, unsignedPayload } from '../../gateway/s3/sigv4.js';
import { checksumBase64 } from '../../gateway/s3/checksums.js';
import { openSigned, rawExchange, signFor, signedRequest, startS3Cluster, type S3Cluster } from '../helpers/s3-cluster.js';

let cluster: S3Cluster;
const bucket = 'hostile';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A normal PUT and GET round trip: the gateway still serves. */
async function assertServes(after: string): Promise<void> {
  const data = randomBytes(100_000);
  const key = `alive-${randomBytes(4).toString('hex')}`;
  const put = await signedRequest(cluster, { method: 'PUT', path: `/${bucket}/${key}`, body: data });
  assert.equal(put.status, 200, `PUT after ${after}: ${put.body.toString()}`);
  const get = await signedRequest(cluster, { method: 'GET', path: `/${bucket}/${key}` });
  assert.equal(get.status, 200, `GET after ${after}`);
  assert.equal(sha256(get.body), sha256(data), `the data read back after ${after}`);
}

async function assertAbsent(key: string): Promise<void> {
  const head = await signedRequest(cluster, { method: 'HEAD', path: `/${bucket}/${key}` });
  assert.equal(head.status, 404, `${key} must not exist`);
  const list = await signedRequest(cluster, { method: 'GET', path: `/${bucket}`, query: `list-type=2&prefix=${key}` });
  assert.equal(list.status, 200);
  assert.doesNotMatch(list.body.toString(), /<Key>/, `${key} must not be listed`);
}

before(async () => {
  cluster = await startS3Cluster('s3-hostile');
  const created = await signedRequest(cluster, { method: 'PUT', path: `/${bucket}` });
  assert.equal(created.status, 200, created.body.toString());
});

after(async () => {
  await cluster?.stop();
});

test('a signed aws-chunked body with one data byte flipped: SignatureDoesNotMatch, nothing stored', async () => {
  const data = randomBytes(200_000);
  const chunks = [data.subarray(0, 65536), data.subarray(65536, 131072), data.subarray(131072)];
  const input = {
    method: 'PUT',
    path: `/${bucket}/tampered`,
    payloadHash: streamingSignedPayload,
    headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(data.length) },
  };
  // The chunk signatures chain from the request's own signature, so sign first, then encode, then send.
  const seed = signFor(cluster, input);
  const encode = (signing: typeof seed) =>
    encodeAwsChunked(chunks, { signed: { signingKey: signing.signingKey, seedSignature: signing.signature, amzDate: signing.amzDate, scope: signing.scope } });
  const lengthOf = encode(seed).length;
  const { request, reply, signed } = openSigned(cluster, { ...input, headers: { ...input.headers, 'content-length': String(lengthOf) } });
  const body = encode(signed);
  assert.equal(body.length, lengthOf);
  // Flip a byte in the second chunk's data (after its size line).
  const second = body.indexOf('\r\n', body.indexOf('\r\n') + 2 + 65536 + 2) + 2;
  body[second + 1000] = (body[second + 1000] as number) ^ 0x01;
  request.end(body);
  const r = await reply;
  assert.equal(r.status, 403, r.body.toString());
  assert.equal(r.code, 'SignatureDoesNotMatch');
  await assertAbsent('tampered');
  // The same body untampered is accepted (so the refusal above was the flipped byte).
  body[second + 1000] = (body[second + 1000] as number) ^ 0x01;
  const again = openSigned(cluster, { ...input, headers: { ...input.headers, 'content-length': String(lengthOf) } });
  again.request.end(encode(again.signed));
  const ok = await again.reply;
  assert.equal(ok.status, 200, ok.body.toString());
  const get = await signedRequest(cluster, { method: 'GET', path: `/${bucket}/tampered` });
  assert.equal(sha256(get.body), sha256(data));
  await signedRequest(cluster, { method: 'DELETE', path: `/${bucket}/tampered` });
  await assertServes('a tampered chunk');
});

test('an unsigned-trailer aws-chunked body whose x-amz-checksum-crc32 trailer is wrong: BadDigest, nothing stored', async () => {
  for (const size of [3000, 300_000]) {
    const data = randomBytes(size);
    const wrong = checksumBase64('crc32', Buffer.concat([data, Buffer.from('x')]));
    const body = encodeAwsChunked([data.subarray(0, size >> 1), data.subarray(size >> 1)], { trailers: { 'x-amz-checksum-crc32': wrong } });
    const r = await signedRequest(cluster, {
      method: 'PUT',
      path: `/${bucket}/bad-trailer-${size}`,
      payloadHash: streamingUnsignedPayloadTrailer,
      headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(size), 'x-amz-trailer': 'x-amz-checksum-crc32', 'x-amz-sdk-checksum-algorithm': 'CRC32' },
      body,
    });
    assert.equal(r.status, 400, r.body.toString());
    assert.equal(r.code, 'BadDigest');
    await assertAbsent(`bad-trailer-${size}`);
    // With the right trailer the same body is stored.
    const right = encodeAwsChunked([data], { trailers: { 'x-amz-checksum-crc32': checksumBase64('crc32', data) } });
    const ok = await signedRequest(cluster, {
      method: 'PUT',
      path: `/${bucket}/good-trailer-${size}`,
      payloadHash: streamingUnsignedPayloadTrailer,
      headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(size), 'x-amz-trailer': 'x-amz-checksum-crc32' },
      body: right,
    });
    assert.equal(ok.status, 200, ok.body.toString());
    assert.equal(ok.headers['x-amz-checksum-crc32'], checksumBase64('crc32', data));
  }
  await assertServes('a wrong trailer checksum');
});

test('a body shorter than its Content-Length (the client closes early): nothing stored, the gateway serves on', async () => {
  for (const [declared, sent] of [[1_000_000, 10_000], [20 * 1024 * 1024, 9 * 1024 * 1024]] as const) {
    const key = `short-${declared}`;
    const signed = signFor(cluster, { method: 'PUT', path: `/${bucket}/${key}`, payloadHash: unsignedPayload, headers: { 'content-length': String(declared) } });
    const head = `PUT /${bucket}/${key} HTTP/1.1\r\n${Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
    await new Promise<void>((resolve, reject) => {
      const socket = connect(cluster.port, '127.0.0.1');
      socket.on('error', reject);
      socket.on('connect', () => {
        socket.write(head);
        socket.write(randomBytes(sent), () => {
          // Let the gateway take in what was sent (and write stripes of it), then go away mid-body.
          setTimeout(() => {
            socket.destroy();
            resolve();
          }, 500);
        });
      });
    });
    await assertServes(`a body cut at ${sent} of ${declared} bytes`);
    await assertAbsent(key);
  }
});

test('malformed XML to POST ?delete and to CompleteMultipartUpload: MalformedXML', async () => {
  const bodies = [
    '<Delete><Object><Key>a</Key></Object>',
    'not xml at all',
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;&x;&x;&x;">]><Delete><Object><Key>&y;</Key></Object></Delete>',
    '<Delete><Object><Key>a</Key></Object></Delete><Delete/>',
    `${'<a>'.repeat(100)}${'</a>'.repeat(100)}`,
  ];
  for (const text of bodies) {
    const body = Buffer.from(text);
    const r = await signedRequest(cluster, { method: 'POST', path: `/${bucket}`, query: 'delete', body, headers: { 'content-md5': createHash('md5').update(body).digest('base64') } });
    assert.equal(r.status, 400, `${text}: ${r.body.toString()}`);
    assert.equal(r.code, 'MalformedXML', text);
  }
  const created = await signedRequest(cluster, { method: 'POST', path: `/${bucket}/mpu`, query: 'uploads' });
  assert.equal(created.status, 200, created.body.toString());
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.body.toString())?.[1] ?? '';
  assert.ok(uploadId);
  const part = randomBytes(1000);
  const put = await signedRequest(cluster, { method: 'PUT', path: `/${bucket}/mpu`, query: `partNumber=1&uploadId=${uploadId}`, body: part });
  assert.equal(put.status, 200);
  for (const text of ['<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>', '<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>', '<Other/>', '']) {
    const r = await signedRequest(cluster, { method: 'POST', path: `/${bucket}/mpu`, query: `uploadId=${uploadId}`, body: Buffer.from(text) });
    assert.equal(r.status, 400, `${text}: ${r.body.toString()}`);
    assert.equal(r.code, 'MalformedXML', text);
  }
  await assertAbsent('mpu');
  // The upload is still there and completes with a good body.
  const good = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${String(put.headers.etag)}</ETag></Part></CompleteMultipartUpload>`;
  const done = await signedRequest(cluster, { method: 'POST', path: `/${bucket}/mpu`, query: `uploadId=${uploadId}`, body: Buffer.from(good) });
  assert.equal(done.status, 200, done.body.toString());
  const get = await signedRequest(cluster, { method: 'GET', path: `/${bucket}/mpu` });
  assert.equal(sha256(get.body), sha256(part));
  await assertServes('malformed XML');
});

test('absurd headers (100 KiB header, thousands of headers, Content-Length 10^18): a 4xx or a closed connection', async () => {
  const host = `host: 127.0.0.1:${cluster.port}\r\nconnection: close\r\n`;
  const refused = (r: { status: number | undefined; timedOut: boolean }, what: string) => {
    assert.ok(!r.timedOut, `${what}: the gateway neither answered nor closed the connection`);
    assert.ok(r.status === undefined || (r.status >= 400 && r.status < 500), `${what}: status ${r.status}`);
  };
  const big = await rawExchange(cluster.port, `GET /${bucket}/k HTTP/1.1\r\n${host}x-big: ${'a'.repeat(100 * 1024)}\r\n\r\n`);
  refused(big, 'a 100 KiB header');
  await assertServes('a 100 KiB header');
  for (const count of [3000, 20_000]) {
    const many = Array.from({ length: count }, (_, i) => `x-h${i}: ${i}\r\n`).join('');
    const r = await rawExchange(cluster.port, `GET /${bucket}/k HTTP/1.1\r\n${host}${many}\r\n`);
    refused(r, `${count} headers`);
    // Past Node's header count limit the request is unsigned as far as the gateway can tell: AccessDenied.
    if (r.status === 403) assert.match(r.text, /<Code>AccessDenied<\/Code>/);
    await assertServes(`${count} headers`);
  }
  // A signed PUT that announces 10^18 bytes (far over the 5 GiB single-PUT limit) and sends a few.
  const signed = signFor(cluster, { method: 'PUT', path: `/${bucket}/huge`, payloadHash: unsignedPayload, headers: { 'content-length': '1000000000000000000' } });
  const head = `PUT /${bucket}/huge HTTP/1.1\r\n${Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  const huge = await rawExchange(cluster.port, Buffer.concat([Buffer.from(head), randomBytes(1000)]));
  assert.ok(!huge.timedOut, 'Content-Length 10^18: the gateway neither answered nor closed the connection');
  assert.equal(huge.status, 400, huge.text);
  assert.match(huge.text, /<Code>EntityTooLarge<\/Code>/);
  await assertAbsent('huge');
  await assertServes('Content-Length 10^18');
});

test('garbage bytes on a raw TCP socket: refused, the gateway serves on', async () => {
  for (const bytes of [randomBytes(64 * 1024), Buffer.from('\r\n\r\n\0\0\0GET / HTTP/9.9\r\n\r\n'), Buffer.concat([Buffer.from('PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), randomBytes(1000)])]) {
    const r = await rawExchange(cluster.port, bytes);
    assert.ok(!r.timedOut, 'the gateway neither answered nor closed the connection');
    assert.ok(r.status === undefined || (r.status >= 400 && r.status < 500), `status ${r.status}`);
    await assertServes('garbage bytes');
  }
});
