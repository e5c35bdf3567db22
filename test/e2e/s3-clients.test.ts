/**
 * Issue 5 acceptance with real clients against `shoal up` (1 monitor, 3 OSDs, the S3 gateway): the newest
 * @aws-sdk/client-s3 with its default checksums (Buffer and stream bodies, multipart through lib-storage, ranges,
 * list v2 paging, presigned URLs via curl), Debian's aws-cli and boto3; refusals of bad signatures and digests with
 * nothing stored; and a gateway killed with -9 mid-upload.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Daemon, freePort, runCli, waitFor } from '../helpers/processes.js';
import { signedRequest, startS3Cluster, type S3Cluster } from '../helpers/s3-cluster.js';

let dir: string;
let cluster: S3Cluster | undefined;
let endpoint: string;
let keys: { accessKey: string; secretKey: string };
let s3: S3Client;

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

function client(secretKey = keys.secretKey, accessKey = keys.accessKey): S3Client {
  return new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: accessKey, secretAccessKey: secretKey } });
}

async function body(stream: unknown): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function s3Error(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof S3ServiceException) return error.name;
    throw error as Error;
  }
  assert.fail('expected an S3 error');
}

before(async () => {
  cluster = await startS3Cluster('s3');
  ({ dir, endpoint, keys } = cluster);
  assert.match(cluster.output(), /s3: +http:\/\/127\.0\.0\.1:\d+/);
  assert.match(cluster.output(), /access key \S+ +secret key \S+/, 'shoal up prints the admin keys');
  s3 = client();
});

after(async () => {
  s3?.destroy();
  await cluster?.stop();
});

test('AWS SDK v3 (default checksums): buckets, objects 0 B to 20 MiB (Buffer and stream bodies), ranges, HEAD, copy, delete', async () => {
  await s3.send(new CreateBucketCommand({ Bucket: 'sdk' }));
  const sizes = [0, 1, 4096, 4097, 1024 * 1024 + 3, 9 * 1024 * 1024 + 17];
  for (const size of sizes) {
    const data = randomBytes(size);
    const put = await s3.send(new PutObjectCommand({ Bucket: 'sdk', Key: `buf/${size}`, Body: data, ContentType: 'application/x-test', Metadata: { origin: 'buffer' } }));
    assert.equal(put.ETag, `"${md5(data)}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'sdk', Key: `buf/${size}` }));
    assert.equal(md5(await body(got.Body)), md5(data), `${size} bytes read back`);
    assert.equal(got.ContentType, 'application/x-test');
    assert.equal(got.Metadata?.['origin'], 'buffer');
    // A stream body: aws-chunked with a CRC32 trailer, no Content-Length.
    await s3.send(new PutObjectCommand({ Bucket: 'sdk', Key: `stream/${size}`, Body: Readable.from([data.subarray(0, size >> 1), data.subarray(size >> 1)]), ContentLength: size }));
    const streamed = await s3.send(new GetObjectCommand({ Bucket: 'sdk', Key: `stream/${size}` }));
    assert.equal(md5(await body(streamed.Body)), md5(data), `${size} bytes streamed in, read back`);
  }
  const big = randomBytes(9 * 1024 * 1024 + 17);
  await s3.send(new PutObjectCommand({ Bucket: 'sdk', Key: 'big', Body: big }));
  for (const [range, from, to] of [['bytes=0-0', 0, 0], ['bytes=4194300-4194400', 4194300, 4194400], ['bytes=-10', big.length - 10, big.length - 1], ['bytes=9000000-', 9000000, big.length - 1]] as const) {
    const part = await s3.send(new GetObjectCommand({ Bucket: 'sdk', Key: 'big', Range: range }));
    assert.equal(md5(await body(part.Body)), md5(big.subarray(from, to + 1)), range);
    assert.equal(part.ContentRange, `bytes ${from}-${to}/${big.length}`);
  }
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'sdk', Key: 'big' }));
  assert.equal(head.ContentLength, big.length);
  await s3.send(new CopyObjectCommand({ Bucket: 'sdk', Key: 'big-copy', CopySource: 'sdk/big' }));
  assert.equal(md5(await body((await s3.send(new GetObjectCommand({ Bucket: 'sdk', Key: 'big-copy' }))).Body)), md5(big));
  assert.equal(await s3Error(s3.send(new GetObjectCommand({ Bucket: 'sdk', Key: 'missing' }))), 'NoSuchKey');
  assert.equal(await s3Error(s3.send(new GetObjectCommand({ Bucket: 'sdk', Key: 'big', Range: `bytes=${big.length}-` }))), 'InvalidRange');
  assert.equal(await s3Error(s3.send(new DeleteBucketCommand({ Bucket: 'sdk' }))), 'BucketNotEmpty');
  await s3.send(new DeleteObjectCommand({ Bucket: 'sdk', Key: 'big-copy' }));
  assert.equal(await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'sdk', Key: 'big-copy' }))), 'NotFound');
});

test('AWS SDK v3: multipart upload through lib-storage (33 MiB in 5 MiB parts) reads back by hash', async () => {
  await s3.send(new CreateBucketCommand({ Bucket: 'multi' }));
  const data = randomBytes(33 * 1024 * 1024 + 5);
  const upload = new Upload({ client: s3, params: { Bucket: 'multi', Key: 'large.bin', Body: Readable.from([data]) }, partSize: 5 * 1024 * 1024, queueSize: 3 });
  const done = await upload.done();
  assert.match(String(done.ETag), /^"[0-9a-f]{32}-7"$/);
  const got = await s3.send(new GetObjectCommand({ Bucket: 'multi', Key: 'large.bin' }));
  assert.equal(got.ContentLength, data.length);
  assert.equal(md5(await body(got.Body)), md5(data));
  const middle = await s3.send(new GetObjectCommand({ Bucket: 'multi', Key: 'large.bin', Range: 'bytes=5242870-10485770' }));
  assert.equal(md5(await body(middle.Body)), md5(data.subarray(5242870, 10485771)));
});

test('AWS SDK v3: ListObjectsV2 pages over 2,500 keys with prefixes and delimiters; DeleteObjects', async () => {
  await s3.send(new CreateBucketCommand({ Bucket: 'many' }));
  const names = Array.from({ length: 2500 }, (_, i) => `${i % 2 ? 'odd' : 'even'}/${String(i).padStart(5, '0')}`);
  for (let i = 0; i < names.length; i += 50) {
    await Promise.all(names.slice(i, i + 50).map((Key) => s3.send(new PutObjectCommand({ Bucket: 'many', Key, Body: Key }))));
  }
  const listed: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: 'many', MaxKeys: 1000, ...(token ? { ContinuationToken: token } : {}) }));
    listed.push(...(page.Contents ?? []).map((c) => c.Key ?? ''));
    token = page.NextContinuationToken;
    pages++;
  } while (token);
  assert.equal(pages, 3);
  assert.deepEqual(listed, [...names].sort());
  const top = await s3.send(new ListObjectsV2Command({ Bucket: 'many', Delimiter: '/' }));
  assert.deepEqual((top.CommonPrefixes ?? []).map((p) => p.Prefix), ['even/', 'odd/']);
  const odd = await s3.send(new ListObjectsV2Command({ Bucket: 'many', Prefix: 'odd/', MaxKeys: 5, StartAfter: 'odd/00100' }));
  assert.deepEqual((odd.Contents ?? []).map((c) => c.Key), ['odd/00101', 'odd/00103', 'odd/00105', 'odd/00107', 'odd/00109']);
  const removed = await s3.send(new DeleteObjectsCommand({ Bucket: 'many', Delete: { Objects: names.slice(0, 1000).map((Key) => ({ Key })) } }));
  assert.equal(removed.Deleted?.length, 1000);
  const rest = await s3.send(new ListObjectsV2Command({ Bucket: 'many', MaxKeys: 1000 }));
  assert.equal(rest.KeyCount, 1000);
  assert.equal(rest.IsTruncated, true);
});

test('presigned GET and PUT work with curl; an expired URL is refused', async () => {
  await s3.send(new CreateBucketCommand({ Bucket: 'presign' }));
  const data = randomBytes(100_000);
  const file = join(dir, 'presign.bin');
  writeFileSync(file, data);
  const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'presign', Key: 'up.bin' }), { expiresIn: 300 });
  const put = spawnSync('curl', ['-sS', '-f', '-X', 'PUT', '--upload-file', file, putUrl], { encoding: 'utf8' });
  assert.equal(put.status, 0, put.stderr);
  const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'presign', Key: 'up.bin' }), { expiresIn: 300 });
  const get = spawnSync('curl', ['-sS', '-f', getUrl], { maxBuffer: 1 << 24 });
  assert.equal(get.status, 0, String(get.stderr));
  assert.equal(md5(get.stdout), md5(data));
  const expired = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'presign', Key: 'up.bin' }), { expiresIn: 1, signingDate: new Date(Date.now() - 3600_000) });
  const refused = spawnSync('curl', ['-sS', '-w', '%{http_code}', '-o', '/dev/null', expired], { encoding: 'utf8' });
  assert.equal(refused.stdout, '403');
});

test('bad requests are refused with the right S3 error and store nothing: wrong secret, bad Content-MD5, wrong checksum', async () => {
  await s3.send(new CreateBucketCommand({ Bucket: 'refuse' }));
  const wrong = client('not-the-secret');
  assert.equal(await s3Error(wrong.send(new PutObjectCommand({ Bucket: 'refuse', Key: 'k', Body: 'x' }))), 'SignatureDoesNotMatch');
  wrong.destroy();
  assert.equal(await s3Error(s3.send(new PutObjectCommand({ Bucket: 'refuse', Key: 'md5', Body: 'hello', ContentMD5: createHash('md5').update('other').digest('base64') }))), 'BadDigest');
  assert.equal(await s3Error(s3.send(new PutObjectCommand({ Bucket: 'refuse', Key: 'crc', Body: 'hello', ChecksumCRC32: 'AAAAAA==' }))), 'BadDigest');
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'refuse' }));
  assert.equal(listed.KeyCount, 0, 'nothing was stored');
});

test('aws-cli and boto3 (Debian): mb, cp up and down, ls, sync, rm, rb; multipart and copy through s3api', (t) => {
  const aws = '/usr/bin/aws';
  if (!existsSync(aws)) {
    t.skip('Debian awscli is not installed (npm test installs it when run as root)');
    return;
  }
  const env = { ...process.env, AWS_ACCESS_KEY_ID: keys.accessKey, AWS_SECRET_ACCESS_KEY: keys.secretKey, AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
  const run = (...args: string[]) => {
    const r = spawnSync(aws, ['--endpoint-url', endpoint, ...args], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, `aws ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const local = join(dir, 'awscli');
  mkdirSync(join(local, 'tree', 'sub'), { recursive: true });
  const files: Record<string, Buffer> = { 'tree/a.bin': randomBytes(12345), 'tree/sub/b.bin': randomBytes(20 * 1024 * 1024 + 1), 'tree/empty': Buffer.alloc(0) };
  for (const [name, data] of Object.entries(files)) writeFileSync(join(local, name), data);
  run('s3', 'mb', 's3://cli');
  run('s3', 'cp', '--only-show-errors', join(local, 'tree/sub/b.bin'), 's3://cli/b.bin');
  run('s3', 'cp', '--only-show-errors', 's3://cli/b.bin', join(local, 'b.back'));
  assert.equal(md5(readFileSync(join(local, 'b.back'))), md5(files['tree/sub/b.bin'] as Buffer));
  run('s3', 'sync', '--only-show-errors', join(local, 'tree'), 's3://cli/tree');
  assert.match(run('s3', 'ls', '--recursive', 's3://cli/tree/'), /tree\/sub\/b\.bin/);
  run('s3', 'sync', '--only-show-errors', 's3://cli/tree', join(local, 'down'));
  for (const [name, data] of Object.entries(files)) assert.equal(md5(readFileSync(join(local, 'down', name.slice('tree/'.length)))), md5(data), name);
  run('s3api', 'copy-object', '--bucket', 'cli', '--key', 'copied', '--copy-source', 'cli/b.bin');
  const head = JSON.parse(run('s3api', 'head-object', '--bucket', 'cli', '--key', 'copied')) as { ContentLength: number };
  assert.equal(head.ContentLength, (files['tree/sub/b.bin'] as Buffer).length);
  // s3api multipart by hand: two uploaded parts and one copied from an object, listed, completed; another aborted.
  const json = <T>(...args: string[]) => {
    const out = run(...args).trim();
    return (out === '' ? {} : JSON.parse(out)) as T; // aws prints nothing for an empty result
  };
  const part1 = randomBytes(5 * 1024 * 1024);
  const part3 = randomBytes(1234);
  writeFileSync(join(local, 'p1'), part1);
  writeFileSync(join(local, 'p3'), part3);
  const { UploadId: uploadId } = json<{ UploadId: string }>('s3api', 'create-multipart-upload', '--bucket', 'cli', '--key', 'assembled');
  const up1 = json<{ ETag: string }>('s3api', 'upload-part', '--bucket', 'cli', '--key', 'assembled', '--upload-id', uploadId, '--part-number', '1', '--body', join(local, 'p1'));
  const copied = json<{ CopyPartResult: { ETag: string } }>('s3api', 'upload-part-copy', '--bucket', 'cli', '--key', 'assembled', '--upload-id', uploadId, '--part-number', '2', '--copy-source', 'cli/b.bin', '--copy-source-range', 'bytes=0-5242879');
  const up3 = json<{ ETag: string }>('s3api', 'upload-part', '--bucket', 'cli', '--key', 'assembled', '--upload-id', uploadId, '--part-number', '3', '--body', join(local, 'p3'));
  const parts = json<{ Parts: { PartNumber: number; Size: number }[] }>('s3api', 'list-parts', '--bucket', 'cli', '--key', 'assembled', '--upload-id', uploadId);
  assert.deepEqual(parts.Parts.map((p) => [p.PartNumber, p.Size]), [[1, part1.length], [2, 5242880], [3, part3.length]]);
  const { UploadId: abandoned } = json<{ UploadId: string }>('s3api', 'create-multipart-upload', '--bucket', 'cli', '--key', 'abandoned');
  const uploads = json<{ Uploads: { Key: string; UploadId: string }[] }>('s3api', 'list-multipart-uploads', '--bucket', 'cli');
  assert.deepEqual(uploads.Uploads.map((u) => u.Key).sort(), ['abandoned', 'assembled']);
  run('s3api', 'abort-multipart-upload', '--bucket', 'cli', '--key', 'abandoned', '--upload-id', abandoned);
  const layout = { Parts: [{ PartNumber: 1, ETag: up1.ETag }, { PartNumber: 2, ETag: copied.CopyPartResult.ETag }, { PartNumber: 3, ETag: up3.ETag }] };
  const done = json<{ ETag: string }>('s3api', 'complete-multipart-upload', '--bucket', 'cli', '--key', 'assembled', '--upload-id', uploadId, '--multipart-upload', JSON.stringify(layout));
  assert.match(done.ETag, /-3"$/);
  run('s3', 'cp', '--only-show-errors', 's3://cli/assembled', join(local, 'assembled'));
  const expected = Buffer.concat([part1, (files['tree/sub/b.bin'] as Buffer).subarray(0, 5242880), part3]);
  assert.equal(md5(readFileSync(join(local, 'assembled'))), md5(expected));
  const after = json<{ Uploads?: unknown[] }>('s3api', 'list-multipart-uploads', '--bucket', 'cli');
  assert.equal(after.Uploads?.length ?? 0, 0, 'no upload left open');
  run('s3', 'rm', '--only-show-errors', '--recursive', 's3://cli');
  run('s3', 'rb', 's3://cli');

  const boto = spawnSync('/usr/bin/python3', ['-c', `
import boto3, hashlib, os
from botocore.config import Config
s3 = boto3.client('s3', endpoint_url='${endpoint}', region_name='us-east-1', config=Config(s3={'addressing_style': 'path'}, signature_version='s3v4'))
s3.create_bucket(Bucket='boto')
data = os.urandom(3 * 1024 * 1024 + 7)
s3.put_object(Bucket='boto', Key='k', Body=data)
got = s3.get_object(Bucket='boto', Key='k')['Body'].read()
assert hashlib.md5(got).hexdigest() == hashlib.md5(data).hexdigest()
s3.upload_fileobj(__import__('io').BytesIO(data * 4), 'boto', 'multi', Config=boto3.s3.transfer.TransferConfig(multipart_threshold=5*1024*1024, multipart_chunksize=5*1024*1024))
got = s3.get_object(Bucket='boto', Key='multi')['Body'].read()
assert hashlib.md5(got).hexdigest() == hashlib.md5(data * 4).hexdigest()
print('boto3 ok')
`], { env, encoding: 'utf8' });
  assert.equal(boto.status, 0, boto.stderr);
  assert.match(boto.stdout, /boto3 ok/);
});

test('users: shoal s3 user/key create, ls and rm; each user sees only their own buckets; a removed key stops working', async () => {
  const conf = join(dir, 'shoal.conf');
  const created = runCli(['--conf', conf, 's3', 'user', 'create', 'bob', '--json']);
  assert.equal(created.status, 0, created.stderr);
  const bob = JSON.parse(created.stdout) as { accessKey: string; secretKey: string };
  const again = runCli(['--conf', conf, 's3', 'user', 'create', 'bob']);
  assert.match(again.stderr, /ALREADY_EXISTS/);
  const bobClient = client(bob.secretKey, bob.accessKey);
  await s3.send(new CreateBucketCommand({ Bucket: 'admins-only' }));
  await bobClient.send(new CreateBucketCommand({ Bucket: 'bobs' }));
  const bobs = await bobClient.send(new ListBucketsCommand({}));
  assert.deepEqual((bobs.Buckets ?? []).map((b) => b.Name), ['bobs']);
  const admins = await s3.send(new ListBucketsCommand({}));
  assert.ok(!(admins.Buckets ?? []).some((b) => b.Name === 'bobs'));
  assert.equal(await s3Error(bobClient.send(new PutObjectCommand({ Bucket: 'admins-only', Key: 'k', Body: 'x' }))), 'AccessDenied');
  assert.equal(await s3Error(bobClient.send(new CreateBucketCommand({ Bucket: 'admins-only' }))), 'BucketAlreadyExists');
  const listed = JSON.parse(runCli(['--conf', conf, 's3', 'user', 'ls', '--json']).stdout) as { name: string; accessKeys: string[] }[];
  assert.deepEqual(listed.find((u) => u.name === 'bob')?.accessKeys, [bob.accessKey]);
  assert.match(runCli(['--conf', conf, 's3', 'user', 'rm', 'bob']).stderr, /NOT_EMPTY/);
  const second = JSON.parse(runCli(['--conf', conf, 's3', 'key', 'create', 'bob', '--json']).stdout) as { accessKey: string; secretKey: string };
  assert.equal(runCli(['--conf', conf, 's3', 'key', 'rm', bob.accessKey]).status, 0);
  await waitFor('the removed key to be refused', 15_000, async () => ((await s3Error(bobClient.send(new ListBucketsCommand({})))) === 'InvalidAccessKeyId' ? true : undefined), 1000);
  const secondClient = client(second.secretKey, second.accessKey);
  await secondClient.send(new DeleteBucketCommand({ Bucket: 'bobs' }));
  assert.equal(runCli(['--conf', conf, 's3', 'user', 'rm', 'bob']).status, 0);
  bobClient.destroy();
  secondClient.destroy();
});

test('virtual-host addressing: with --domain, <bucket>.<domain> addresses the bucket (path style keeps working)', async () => {
  const port = await freePort();
  const gateway = new Daemon('s3-vhost', ['s3', '--conf', join(dir, 'shoal.conf'), '--port', String(port), '--domain', 's3.test'], join(dir, 's3-vhost.log'));
  gateway.start();
  try {
    const target = { port, keys };
    await waitFor('the second gateway to listen', 30_000, async () => {
      const r = await signedRequest(target, { method: 'GET', path: '/' }).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    });
    const host = { host: `vhost.s3.test:${port}` };
    assert.equal((await signedRequest(target, { method: 'PUT', path: '/', headers: host })).status, 200, 'create bucket vhost');
    const data = randomBytes(10_000);
    assert.equal((await signedRequest(target, { method: 'PUT', path: '/dir/obj.bin', headers: host, body: data })).status, 200);
    const got = await signedRequest(target, { method: 'GET', path: '/dir/obj.bin', headers: host });
    assert.equal(got.status, 200);
    assert.equal(md5(got.body), md5(data));
    const listed = await signedRequest(target, { method: 'GET', path: '/', query: 'list-type=2', headers: host });
    assert.match(listed.body.toString(), /<Key>dir\/obj\.bin<\/Key>/);
    const pathStyle = await signedRequest(target, { method: 'GET', path: '/vhost/dir/obj.bin' });
    assert.equal(md5(pathStyle.body), md5(data), 'path style reaches the same object');
  } finally {
    await gateway.stop();
  }
});
