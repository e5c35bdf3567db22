import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { S3Error, type S3ErrorCode } from '../../../gateway/s3/s3-error.js';
import {
  canonicalUri,
  deriveSigningKey,
  presignUrl,
  signRequest,
  uriEncode,
  verifyRequest,
  type IncomingHeaders,
  type SigV4Request,
  type SignedAuth,
  type VerifyOptions,
} from '../../../gateway/s3/sigv4.js';

// The examples of the AWS S3 API reference ("Signature Calculations for the Authorization Header: Transferring Payload
// in a Single Chunk", "... Query Parameters", "... Multiple Chunks").
const accessKey = 'AKIAIOSFODNN7EXAMPLE';
const secretKey = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const exampleMs = Date.UTC(2013, 4, 24, 0, 0, 0);
const emptySha = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const lookup = (key: string): string | undefined => (key === accessKey ? secretKey : undefined);

function authHeader(signedHeaders: string, signature: string): string {
  return `AWS4-HMAC-SHA256 Credential=${accessKey}/20130524/us-east-1/s3/aws4_request,SignedHeaders=${signedHeaders},Signature=${signature}`;
}

function request(method: string, rawPath: string, rawQuery: string, headers: IncomingHeaders): SigV4Request {
  return { method, rawPath, rawQuery, headers };
}

function verify(req: SigV4Request, nowMs = exampleMs, options: VerifyOptions = {}): SignedAuth {
  const result = verifyRequest(req, lookup, nowMs, options);
  assert.equal(result.anonymous, false);
  return result as SignedAuth;
}

function refused(fn: () => unknown, code: S3ErrorCode, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof S3Error, `expected an S3Error, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

const getObject = (): SigV4Request =>
  request('GET', '/test.txt', '', {
    host: 'examplebucket.s3.amazonaws.com',
    range: 'bytes=0-9',
    'x-amz-content-sha256': emptySha,
    'x-amz-date': '20130524T000000Z',
    authorization: authHeader('host;range;x-amz-content-sha256;x-amz-date', 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'),
  });

const putObject = (): SigV4Request =>
  request('PUT', '/test%24file.text', '', {
    host: 'examplebucket.s3.amazonaws.com',
    date: 'Fri, 24 May 2013 00:00:00 GMT',
    'x-amz-date': '20130524T000000Z',
    'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    'x-amz-content-sha256': '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
    authorization: authHeader(
      'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
      '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
    ),
  });

/** The GET bucket lifecycle and list objects examples: a GET of the bucket with a query. */
const getBucket = (rawQuery: string, signature: string): SigV4Request =>
  request('GET', '/', rawQuery, {
    host: 'examplebucket.s3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-content-sha256': emptySha,
    authorization: authHeader('host;x-amz-content-sha256;x-amz-date', signature),
  });
const getLifecycle = (): SigV4Request => getBucket('lifecycle', 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543');
const listObjects = (): SigV4Request => getBucket('max-keys=2&prefix=J', '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7');

const chunkedPut = (): SigV4Request =>
  request('PUT', '/examplebucket/chunkObject.txt', '', {
    host: 's3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': '66560',
    'content-length': '66824',
    authorization: authHeader(
      'content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class',
      '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
    ),
  });

const presigned =
  '/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
  '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
  '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';

function presignedRequest(url: string, host = 'examplebucket.s3.amazonaws.com'): SigV4Request {
  const q = url.indexOf('?');
  return request('GET', url.slice(0, q), url.slice(q + 1), { host });
}

test('sigv4: the AWS documented examples verify', () => {
  for (const [name, req] of [
    ['GET Object', getObject()],
    ['PUT Object', putObject()],
    ['GET bucket lifecycle', getLifecycle()],
    ['list objects', listObjects()],
  ] as const) {
    const auth = verify(req, exampleMs, { region: 'us-east-1' });
    assert.equal(auth.accessKey, accessKey, name);
    assert.equal(auth.scope, '20130524/us-east-1/s3/aws4_request');
    assert.equal(auth.amzDate, '20130524T000000Z');
  }
  assert.deepEqual(verify(getObject()).payload, { kind: 'sha256', hex: emptySha });
  assert.deepEqual(verify(putObject()).payload, { kind: 'sha256', hex: '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072' });
  const chunked = verify(chunkedPut());
  assert.deepEqual(chunked.payload, { kind: 'streaming-signed', trailer: false });
  assert.equal(chunked.seedSignature, '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9');
  assert.deepEqual(chunked.signingKey, deriveSigningKey(secretKey, '20130524', 'us-east-1', 's3'));
});

test('sigv4: the AWS presigned URL example verifies within its 24 hours and not after', () => {
  const auth = verify(presignedRequest(presigned), exampleMs + 3_600_000);
  assert.equal(auth.presigned, true);
  assert.deepEqual(auth.payload, { kind: 'unsigned' });
  verify(presignedRequest(presigned), exampleMs + 86_400_000);
  refused(() => verifyRequest(presignedRequest(presigned), lookup, exampleMs + 86_400_001), 'AccessDenied', /Request has expired/);
  refused(() => verifyRequest(presignedRequest(presigned), lookup, exampleMs - 16 * 60_000), 'AccessDenied', /not valid yet/);
  // presignUrl reproduces the example byte for byte.
  const url = presignUrl({ method: 'GET', host: 'examplebucket.s3.amazonaws.com', path: '/test.txt', accessKey, secretKey, region: 'us-east-1', nowMs: exampleMs, expiresSec: 86400 });
  assert.equal(url, `https://examplebucket.s3.amazonaws.com${presigned}`);
});

test('sigv4: S3 canonical URIs are neither normalized nor encoded twice', () => {
  assert.equal(canonicalUri('/test$file.text'), '/test%24file.text');
  assert.equal(canonicalUri('/test%24file.text'), '/test%24file.text');
  assert.equal(canonicalUri('/a//b/../c/./d'), '/a//b/../c/./d');
  assert.equal(canonicalUri('/caf%C3%A9%20x~y'), '/caf%C3%A9%20x~y');
  assert.equal(canonicalUri('/café x'), '/caf%C3%A9%20x');
  assert.equal(canonicalUri('/%7e%2F%zz/a/b'), '/%7E%2F%25zz/a/b');
  assert.equal(canonicalUri(''), '/');
  assert.equal(uriEncode('a b+c/d~é', false), 'a%20b%2Bc/d~%C3%A9');
  assert.equal(uriEncode('a/b'), 'a%2Fb');
});

test('sigv4: signRequest and presignUrl round-trip through verifyRequest', () => {
  const keys = new Map([['AK1', 'secret/one'], ['AK2', 'secret+two']]);
  const look = (k: string): string | undefined => keys.get(k);
  const nowMs = Date.UTC(2024, 1, 29, 12, 34, 56);
  const paths = ['/bucket/key', '/bucket/a%20b/%C3%A9t%C3%A9%2B%24%26.txt', '/bucket/', '/b/x//y/../z'];
  const queries = ['', 'list-type=2&prefix=a%2Fb&delimiter=%2F', 'uploads', 'partNumber=3&uploadId=x%3Dy%2B', 'b=2&a=1&a=0&c'];
  for (const path of paths) {
    for (const query of queries) {
      const body = Buffer.from(`body of ${path}?${query}`);
      const signed = signRequest({
        method: 'PUT',
        path,
        query,
        headers: { Host: 'localhost:7480', 'Content-Type': 'text/plain', 'x-amz-meta-colour': '  blue   and  green ' },
        accessKey: 'AK2',
        secretKey: 'secret+two',
        region: 'shoal',
        nowMs,
        body,
      });
      const auth = verifyRequest({ method: 'PUT', rawPath: path, rawQuery: query, headers: signed.headers }, look, nowMs + 60_000, { region: 'shoal' });
      assert.equal(auth.anonymous, false);
      assert.equal((auth as SignedAuth).accessKey, 'AK2');
      assert.deepEqual(auth.payload, { kind: 'sha256', hex: signed.headers['x-amz-content-sha256'] });
      assert.equal((auth as SignedAuth).seedSignature, signed.signature);

      const url = presignUrl({ method: 'GET', host: 'localhost:7480', protocol: 'http', path, query, accessKey: 'AK1', secretKey: 'secret/one', region: 'shoal', nowMs, expiresSec: 60 });
      // As a server sees it (not through `new URL`, which would resolve `..`).
      const target = url.slice('http://localhost:7480'.length);
      const rawPath = target.slice(0, target.indexOf('?'));
      const rawQuery = target.slice(target.indexOf('?') + 1);
      assert.equal(rawPath, path);
      const p = verifyRequest({ method: 'GET', rawPath, rawQuery, headers: { host: 'localhost:7480' } }, look, nowMs + 59_000);
      assert.equal((p as SignedAuth).accessKey, 'AK1');
      refused(() => verifyRequest({ method: 'GET', rawPath, rawQuery, headers: { host: 'localhost:7480' } }, look, nowMs + 61_000), 'AccessDenied', /expired/);
    }
  }
});

test('sigv4: streaming payload modes are reported', () => {
  const nowMs = Date.UTC(2025, 0, 1);
  for (const [hash, payload] of [
    ['UNSIGNED-PAYLOAD', { kind: 'unsigned' }],
    ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', { kind: 'streaming-signed', trailer: false }],
    ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', { kind: 'streaming-signed', trailer: true }],
    ['STREAMING-UNSIGNED-PAYLOAD-TRAILER', { kind: 'streaming-unsigned-trailer' }],
  ] as const) {
    const signed = signRequest({ method: 'PUT', path: '/b/k', headers: { host: 'h' }, accessKey, secretKey, region: 'us-east-1', nowMs, payloadHash: hash });
    assert.deepEqual(verifyRequest({ method: 'PUT', rawPath: '/b/k', rawQuery: '', headers: signed.headers }, lookup, nowMs).payload, payload);
  }
  const bad = signRequest({ method: 'PUT', path: '/b/k', headers: { host: 'h' }, accessKey, secretKey, region: 'us-east-1', nowMs, payloadHash: 'nonsense' });
  refused(() => verifyRequest({ method: 'PUT', rawPath: '/b/k', rawQuery: '', headers: bad.headers }, lookup, nowMs), 'InvalidArgument');
});

test('sigv4: requests without authentication are anonymous', () => {
  assert.deepEqual(verifyRequest(request('GET', '/b/k', 'x=1', { host: 'h' }), lookup, exampleMs), { anonymous: true, payload: { kind: 'unsigned' } });
  assert.deepEqual(verifyRequest(request('PUT', '/b/k', '', { host: 'h', 'x-amz-content-sha256': emptySha }), lookup, exampleMs), {
    anonymous: true,
    payload: { kind: 'sha256', hex: emptySha },
  });
  refused(() => verifyRequest(request('PUT', '/b/k', '', { host: 'h', 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' }), lookup, exampleMs), 'InvalidRequest');
  refused(() => verifyRequest(request('GET', '/b/k', 'AWSAccessKeyId=AK&Signature=x&Expires=1', { host: 'h' }), lookup, exampleMs), 'InvalidRequest');
});

/** Flips one character of a string at `at` to another valid one of the same class. */
function flip(text: string, at: number): string {
  const c = text[at] as string;
  const replacement = /[0-9a-f]/.test(c) ? (c === '0' ? '1' : '0') : c === 'a' ? 'b' : 'a';
  return text.slice(0, at) + replacement + text.slice(at + 1);
}

test('sigv4: every tamper is refused with the right code', () => {
  const withHeaders = (req: SigV4Request, patch: IncomingHeaders): SigV4Request => ({ ...req, headers: { ...req.headers, ...patch } });
  const auth = getObject().headers.authorization as string;
  const sigAt = auth.indexOf('Signature=') + 'Signature='.length;
  for (let i = 0; i < 64; i++) {
    refused(() => verify(withHeaders(getObject(), { authorization: flip(auth, sigAt + i) })), 'SignatureDoesNotMatch');
  }
  refused(() => verify(withHeaders(getObject(), { authorization: auth.slice(0, -1) })), 'SignatureDoesNotMatch');
  refused(() => verify(withHeaders(getObject(), { range: 'bytes=0-8' })), 'SignatureDoesNotMatch');
  refused(() => verify(withHeaders(getObject(), { host: 'other.s3.amazonaws.com' })), 'SignatureDoesNotMatch');
  refused(() => verify(withHeaders(putObject(), { 'x-amz-content-sha256': emptySha })), 'SignatureDoesNotMatch');
  refused(() => verify(withHeaders(putObject(), { 'x-amz-storage-class': 'STANDARD' })), 'SignatureDoesNotMatch');
  refused(() => verify({ ...putObject(), method: 'POST' }), 'SignatureDoesNotMatch');
  refused(() => verify({ ...getObject(), rawPath: '/test.txt2' }), 'SignatureDoesNotMatch');
  refused(() => verify({ ...listObjects(), rawQuery: 'max-keys=3&prefix=J' }), 'SignatureDoesNotMatch');
  refused(() => verify({ ...listObjects(), rawQuery: 'max-keys=2&prefix=J&extra' }), 'SignatureDoesNotMatch');
  // Inner whitespace is collapsed and ends trimmed, so these still verify.
  verify(withHeaders(getObject(), { range: '  bytes=0-9 ' }));

  refused(() => verify(getObject(), exampleMs + 15 * 60_000 + 1), 'RequestTimeTooSkewed');
  refused(() => verify(getObject(), exampleMs - 15 * 60_000 - 1), 'RequestTimeTooSkewed');
  verify(getObject(), exampleMs + 15 * 60_000);
  refused(() => verify(getObject(), exampleMs + 60_001, { maxSkewMs: 60_000 }), 'RequestTimeTooSkewed');
  refused(() => verifyRequest(getObject(), () => undefined, exampleMs), 'InvalidAccessKeyId');
  refused(() => verify(getObject(), exampleMs, { region: 'eu-west-1' }), 'AuthorizationHeaderMalformed', /region/);

  const noSha = getObject();
  delete noSha.headers['x-amz-content-sha256'];
  refused(() => verify(noSha), 'InvalidRequest', /x-amz-content-sha256/);
  const noDate = getObject();
  delete noDate.headers['x-amz-date'];
  refused(() => verify(noDate), 'AccessDenied', /Date/);
  refused(() => verify(withHeaders(getObject(), { 'x-amz-date': '20130524T000000' })), 'AccessDenied');
  refused(() => verify(withHeaders(getObject(), { 'x-amz-date': '20130525T000000Z' }), exampleMs + 86_400_000), 'AuthorizationHeaderMalformed', /date/);
  refused(() => verify(withHeaders(getObject(), { 'x-amz-acl': 'public-read' })), 'AccessDenied', /not signed/);

  for (const malformed of [
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host',
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3,SignedHeaders=host,Signature=00',
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/2013052/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=00',
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/ec2/aws4_request,SignedHeaders=host,Signature=00',
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=Host,Signature=00',
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=range,Signature=00',
    'AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request,Credential=a,SignedHeaders=host,Signature=00',
    'AWS4-HMAC-SHA512 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=00',
    'garbage',
  ]) {
    refused(() => verify(withHeaders(getObject(), { authorization: malformed })), 'AuthorizationHeaderMalformed');
  }
  refused(() => verify(withHeaders(getObject(), { authorization: 'AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=' })), 'InvalidRequest');
});

test('sigv4: presigned URL tampers and malformed query parameters are refused', () => {
  const at = exampleMs + 1000;
  const sigAt = presigned.indexOf('X-Amz-Signature=') + 'X-Amz-Signature='.length;
  for (let i = 0; i < 64; i += 7) refused(() => verify(presignedRequest(flip(presigned, sigAt + i)), at), 'SignatureDoesNotMatch');
  refused(() => verify(presignedRequest(presigned.replace('/test.txt', '/test.txu')), at), 'SignatureDoesNotMatch');
  refused(() => verify(presignedRequest(presigned, 'other.example.com'), at), 'SignatureDoesNotMatch');
  refused(() => verify(presignedRequest(presigned.replace('X-Amz-Expires=86400', 'X-Amz-Expires=86401')), at), 'SignatureDoesNotMatch');
  refused(() => verify(presignedRequest(`${presigned}&extra=1`), at), 'SignatureDoesNotMatch');
  refused(() => verifyRequest(presignedRequest(presigned), () => undefined, at), 'InvalidAccessKeyId');
  refused(() => verify(presignedRequest(presigned), at, { region: 'eu-west-1' }), 'AuthorizationQueryParametersError', /region/);
  for (const [from, to] of [
    ['X-Amz-Expires=86400', 'X-Amz-Expires=604801'],
    ['X-Amz-Expires=86400', 'X-Amz-Expires=0'],
    ['X-Amz-Expires=86400', 'X-Amz-Expires=-5'],
    ['X-Amz-Expires=86400', 'X-Amz-Expires=1e3'],
    ['X-Amz-Expires=86400&', ''],
    ['X-Amz-Algorithm=AWS4-HMAC-SHA256', 'X-Amz-Algorithm=AWS4-HMAC-SHA1'],
    ['X-Amz-Date=20130524T000000Z', 'X-Amz-Date=2013-05-24'],
    ['X-Amz-Date=20130524T000000Z', 'X-Amz-Date=20130525T000000Z'],
    ['%2Fs3%2F', '%2Fiam%2F'],
    ['X-Amz-SignedHeaders=host', 'X-Amz-SignedHeaders=range'],
    ['X-Amz-SignedHeaders=host', 'X-Amz-SignedHeaders=host&X-Amz-SignedHeaders=host'],
  ] as const) {
    refused(() => verify(presignedRequest(presigned.replace(from, to)), at), 'AuthorizationQueryParametersError');
  }
  const both = presignedRequest(presigned);
  both.headers.authorization = getObject().headers.authorization;
  refused(() => verify(both, at), 'InvalidArgument');
});

test('sigv4: the signing key matches AWS documentation example, from the cache too, and the cache stays bounded', () => {
  // https://docs.aws.amazon.com/general/latest/gr/sigv4-calculate-signature.html (example key derivation).
  const expected = 'f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d';
  const secret = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
  assert.equal(deriveSigningKey(secret, '20120215', 'us-east-1', 'iam').toString('hex'), expected);
  assert.equal(deriveSigningKey(secret, '20120215', 'us-east-1', 'iam').toString('hex'), expected);
  const fresh = (s: string) => createHmac('sha256', createHmac('sha256', createHmac('sha256', createHmac('sha256', `AWS4${s}`).update('20120215').digest()).update('us-east-1').digest()).update('s3').digest()).update('aws4_request').digest();
  for (let i = 0; i < 3000; i++) assert.deepEqual(deriveSigningKey(`secret-${i % 1500}`, '20120215', 'us-east-1', 's3'), fresh(`secret-${i % 1500}`));
  assert.notDeepEqual(deriveSigningKey(secret, '20120216', 'us-east-1', 'iam'), deriveSigningKey(secret, '20120215', 'us-east-1', 'iam'));
  assert.equal(deriveSigningKey(secret, '20120215', 'us-east-1', 'iam').toString('hex'), expected);
});
