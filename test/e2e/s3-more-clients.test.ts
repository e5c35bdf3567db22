/**
 * More real S3 clients against `shoal up` (driven exactly as /work/shared/CLIENTS.md found them to work): s3cmd
 * (buckets, put/get/ls/info/del, a multipart put), rclone (copy of a directory with multipart, `check --download`,
 * lsl, purge) and a 200 MiB file through Debian's aws-cli up and down. Data is compared by hash. Last, Shoal's own S3
 * load generator (`shoal bench s3`) runs short phases against the gateway.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { startS3Cluster, type S3Cluster } from '../helpers/s3-cluster.js';
import { cliPath } from '../helpers/processes.js';

let cluster: S3Cluster;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(command, args, { env, encoding: 'utf8', maxBuffer: 1 << 26, timeout: 300_000 });
  assert.equal(r.status, 0, `${command} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

before(async () => {
  cluster = await startS3Cluster('s3-more');
});

after(async () => {
  await cluster?.stop();
});

test('s3cmd: mb, put, ls, info, get, a 12 MiB multipart put, del, rb', (t) => {
  if (!existsSync('/usr/bin/s3cmd')) {
    t.skip('Debian s3cmd is not installed');
    return;
  }
  const host = `127.0.0.1:${cluster.port}`;
  const s3cmd = (...args: string[]) =>
    run('/usr/bin/s3cmd', ['-c', '/dev/null', `--access_key=${cluster.keys.accessKey}`, `--secret_key=${cluster.keys.secretKey}`, `--host=${host}`, `--host-bucket=${host}`, '--no-ssl', '--region=us-east-1', '--no-progress', ...args]);
  const local = join(cluster.dir, 's3cmd');
  mkdirSync(local, { recursive: true });
  const small = randomBytes(54321);
  const large = randomBytes(12 * 1024 * 1024 + 333);
  writeFileSync(join(local, 'small.bin'), small);
  writeFileSync(join(local, 'large.bin'), large);

  s3cmd('mb', 's3://cmd');
  assert.match(s3cmd('ls'), /s3:\/\/cmd/);
  s3cmd('put', join(local, 'small.bin'), 's3://cmd/dir/small.bin');
  s3cmd('put', '--multipart-chunk-size-mb=5', join(local, 'large.bin'), 's3://cmd/large.bin');
  const listing = s3cmd('ls', '--recursive', 's3://cmd');
  assert.match(listing, /\s54321\s+s3:\/\/cmd\/dir\/small\.bin/);
  assert.match(listing, new RegExp(`\\s${large.length}\\s+s3://cmd/large\\.bin`));
  assert.match(s3cmd('ls', 's3://cmd'), /DIR\s+s3:\/\/cmd\/dir\//);
  const info = s3cmd('info', 's3://cmd/dir/small.bin');
  assert.match(info, /File size:\s+54321/);
  assert.match(info, new RegExp(`MD5 sum:\\s+${createHash('md5').update(small).digest('hex')}`));
  // s3cmd shows the file's MD5 (kept in x-amz-meta-s3cmd-attrs), not the multipart ETag; the access log shows the parts.
  assert.match(s3cmd('info', 's3://cmd/large.bin'), new RegExp(`MD5 sum:\\s+${createHash('md5').update(large).digest('hex')}`));
  const parts = readFileSync(join(cluster.dir, 's3.log'), 'utf8').split('\n').filter((l) => /method=PUT url="\/cmd\/large\.bin\?partNumber=\d+&uploadId=\w+" status=200/.test(l));
  assert.equal(parts.length, 3, 'a multipart upload of 3 parts (5 + 5 + 2 MiB)');
  s3cmd('get', '--force', 's3://cmd/dir/small.bin', join(local, 'small.back'));
  s3cmd('get', '--force', 's3://cmd/large.bin', join(local, 'large.back'));
  assert.equal(sha256(readFileSync(join(local, 'small.back'))), sha256(small));
  assert.equal(sha256(readFileSync(join(local, 'large.back'))), sha256(large));
  s3cmd('del', 's3://cmd/dir/small.bin', 's3://cmd/large.bin');
  assert.doesNotMatch(s3cmd('ls', '--recursive', 's3://cmd'), /small|large/);
  s3cmd('rb', 's3://cmd');
  assert.doesNotMatch(s3cmd('ls'), /s3:\/\/cmd/);
  rmSync(local, { recursive: true, force: true });
});

test('rclone: copy a directory (0 B, 1 KiB, 7 MiB multipart), check --download, lsl, purge', (t) => {
  if (!existsSync('/usr/bin/rclone')) {
    t.skip('Debian rclone is not installed');
    return;
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RCLONE_CONFIG_M_TYPE: 's3',
    RCLONE_CONFIG_M_PROVIDER: 'Other',
    RCLONE_CONFIG_M_ENDPOINT: cluster.endpoint,
    RCLONE_CONFIG_M_ACCESS_KEY_ID: cluster.keys.accessKey,
    RCLONE_CONFIG_M_SECRET_ACCESS_KEY: cluster.keys.secretKey,
    RCLONE_CONFIG_M_REGION: 'us-east-1',
    RCLONE_CONFIG_M_FORCE_PATH_STYLE: 'true',
  };
  // rclone 1.60 fails with AWS_CA_BUNDLE set ("LoadCustomCABundleError … unsupported transport").
  delete env['AWS_CA_BUNDLE'];
  const rclone = (...args: string[]) => run('/usr/bin/rclone', ['--config', '/dev/null', ...args], env);
  const local = join(cluster.dir, 'rclone');
  mkdirSync(join(local, 'sub'), { recursive: true });
  const files: Record<string, Buffer> = { 'empty': Buffer.alloc(0), 'sub/one-k': randomBytes(1024), 'sub/seven-m': randomBytes(7 * 1024 * 1024) };
  for (const [name, data] of Object.entries(files)) writeFileSync(join(local, name), data);

  rclone('copy', '--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M', local, 'M:rclone-b/tree');
  const check = spawnSync('/usr/bin/rclone', ['--config', '/dev/null', 'check', '--download', local, 'M:rclone-b/tree'], { env, encoding: 'utf8' });
  assert.equal(check.status, 0, `rclone check --download:\n${check.stdout}\n${check.stderr}`);
  assert.match(check.stderr, /0 differences found/);
  assert.match(check.stderr, /3 matching files/);
  const lsl = rclone('lsl', 'M:rclone-b');
  for (const [name, data] of Object.entries(files)) assert.match(lsl, new RegExp(`^\\s*${data.length} .* tree/${name}$`, 'm'), name);
  const down = join(cluster.dir, 'rclone-down');
  rclone('copy', 'M:rclone-b/tree', down);
  for (const [name, data] of Object.entries(files)) assert.equal(sha256(readFileSync(join(down, name))), sha256(data), name);
  rclone('purge', 'M:rclone-b');
  const buckets = rclone('lsd', 'M:');
  assert.doesNotMatch(buckets, /rclone-b/, 'purge removed the bucket');
  rmSync(local, { recursive: true, force: true });
  rmSync(down, { recursive: true, force: true });
});

test('aws-cli (Debian): a 200 MiB file up and down with s3 cp, compared by hash', async (t) => {
  const aws = '/usr/bin/aws';
  if (!existsSync(aws)) {
    t.skip('Debian awscli is not installed');
    return;
  }
  const env = { ...process.env, AWS_ACCESS_KEY_ID: cluster.keys.accessKey, AWS_SECRET_ACCESS_KEY: cluster.keys.secretKey, AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
  const cli = (...args: string[]) => run(aws, ['--endpoint-url', cluster.endpoint, ...args], env);
  const file = join(cluster.dir, 'big.bin');
  const back = join(cluster.dir, 'big.back');
  // Written in 1 MiB pieces of random data, hashed on the way.
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  for (let i = 0; i < 200; i++) {
    const piece = randomBytes(1024 * 1024);
    hash.update(piece);
    if (!out.write(piece)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const expected = hash.digest('hex');
  try {
    cli('s3', 'mb', 's3://huge');
    cli('s3', 'cp', '--only-show-errors', file, 's3://huge/big.bin');
    const head = JSON.parse(cli('s3api', 'head-object', '--bucket', 'huge', '--key', 'big.bin')) as { ContentLength: number; ETag: string };
    assert.equal(head.ContentLength, 200 * 1024 * 1024);
    assert.match(head.ETag, /^"[0-9a-f]{32}-\d+"$/, 'aws-cli uploaded it in parts');
    cli('s3', 'cp', '--only-show-errors', 's3://huge/big.bin', back);
    assert.equal(await sha256File(back), expected);
    cli('s3', 'rm', '--only-show-errors', 's3://huge/big.bin');
    cli('s3', 'rb', 's3://huge');
  } finally {
    rmSync(file, { force: true });
    rmSync(back, { force: true });
  }
});

test('shoal bench s3 drives the gateway without errors, lists its keys and removes its bucket; bad options are refused', () => {
  const base = ['--endpoint', `http://127.0.0.1:${cluster.port}`, '--access-key', cluster.keys.accessKey, '--secret-key', cluster.keys.secretKey];
  const env = { ...process.env, SHOAL_BENCH_WARMUP_SECONDS: '0' };
  const out = run(process.execPath, [cliPath, 'bench', 's3', ...base, '--seconds', '0.5', '--list-keys', '40'], env);
  for (const phase of ['PUT 4 KiB c32', 'GET 4 KiB c32', 'DELETE 4 KiB c32', 'PUT 4 MiB c8', 'GET 4 MiB c8', 'DELETE 4 MiB c8']) {
    const line = out.split('\n').find((l) => l.startsWith(phase));
    assert.ok(line, `a ${phase} line in:\n${out}`);
    assert.doesNotMatch(line, /ERRORS/, line);
    assert.ok(Number(/\s(\d+) ops\/s/.exec(line)?.[1]) > 0, line);
  }
  assert.match(out, /LIST 40 keys/);
  const listing = run('/usr/bin/python3', ['-c', `import boto3; c=boto3.client('s3', endpoint_url='http://127.0.0.1:${cluster.port}', region_name='us-east-1', aws_access_key_id='${cluster.keys.accessKey}', aws_secret_access_key='${cluster.keys.secretKey}'); print([b['Name'] for b in c.list_buckets()['Buckets']])`]);
  assert.doesNotMatch(listing, /shoal-bench-/, `the load's bucket is gone: ${listing}`);
  const skipped = run(process.execPath, [cliPath, 'bench', 's3', ...base, '--seconds', '0.3', '--list-keys', '0'], env);
  assert.doesNotMatch(skipped, /LIST/);
  const bad = spawnSync(process.execPath, [cliPath, 'bench', 's3', ...base, '--list-keys', '-1'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /INVALID_ARGUMENT: --list-keys must be a whole number >= 0/);
});
