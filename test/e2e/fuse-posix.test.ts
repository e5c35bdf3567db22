/**
 * Issue 8 acceptance, through a real kernel FUSE mount of `shoal up --mount`: every POSIX operation the namespace
 * offers and its error cases, then real programs (cp -a, tar, diff -r, git, sqlite3). The mount is served by a
 * child process, so this test may use synchronous fs calls on it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fuseAvailable, startFuseCluster, type FuseCluster } from '../helpers/fuse-cluster.js';
import { repoRoot, tempDir, removeDir } from '../helpers/processes.js';

const skip = fuseAvailable();
if (skip) process.stdout.write(`# skipping the FUSE tests: ${skip}\n`);

let cluster: FuseCluster;
let m: string;

function sh(command: string, options: { cwd?: string; uid?: number } = {}): { status: number; stdout: string; stderr: string } {
  const argv = options.uid !== undefined ? ['setpriv', `--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups', 'sh', '-c', command] : ['sh', '-c', command];
  const r = spawnSync(argv[0] as string, argv.slice(1), { cwd: options.cwd ?? m, encoding: 'utf8', timeout: 120_000, env: { ...process.env, LC_ALL: 'C' } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function ok(command: string, options: { cwd?: string; uid?: number } = {}): string {
  const r = sh(command, options);
  assert.equal(r.status, 0, `${command} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code;
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(async () => {
  if (skip) return;
  cluster = await startFuseCluster('fuse-posix');
  m = cluster.mnt;
});

after(async () => {
  if (cluster) await cluster.stop();
});

describe('POSIX operations through the kernel', { skip }, () => {
  test('files: create, write at offsets, read, append, truncate, sparse holes, fsync', () => {
    const f = join(m, 'file');
    fs.writeFileSync(f, 'hello world');
    assert.equal(fs.readFileSync(f, 'utf8'), 'hello world');
    fs.appendFileSync(f, '!');
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, Buffer.from('W'), 0, 1, 6);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    assert.equal(fs.readFileSync(f, 'utf8'), 'hello World!');
    fs.truncateSync(f, 5);
    assert.equal(fs.readFileSync(f, 'utf8'), 'hello');
    fs.truncateSync(f, 8);
    assert.deepEqual(fs.readFileSync(f), Buffer.from('hello\0\0\0'));
    // Sparse: a write 1 TiB in costs one object; the hole reads as zeros.
    const big = join(m, 'sparse');
    const bfd = fs.openSync(big, 'w');
    const tail = randomBytes(100_000);
    const tiB = 1024 ** 4;
    fs.writeSync(bfd, tail, 0, tail.length, tiB);
    fs.closeSync(bfd);
    assert.equal(fs.statSync(big).size, tiB + tail.length);
    const rfd = fs.openSync(big, 'r');
    const back = Buffer.alloc(tail.length + 4096);
    assert.equal(fs.readSync(rfd, back, 0, back.length, tiB - 4096), back.length);
    assert.ok(back.subarray(0, 4096).every((b) => b === 0));
    assert.deepEqual(back.subarray(4096), tail);
    fs.closeSync(rfd);
    // Large I/O through the page cache and across object boundaries (4 MiB objects).
    const data = randomBytes(9 * 1024 * 1024 + 123);
    fs.writeFileSync(join(m, 'large'), data);
    assert.equal(sha(fs.readFileSync(join(m, 'large'))), sha(data));
    fs.unlinkSync(big);
  });

  test('directories, rename (same dir, across dirs, over an existing target), no EXDEV', () => {
    fs.mkdirSync(join(m, 'a/b/c'), { recursive: true });
    fs.writeFileSync(join(m, 'a/one'), '1');
    fs.writeFileSync(join(m, 'a/two'), '2');
    assert.deepEqual(fs.readdirSync(join(m, 'a')).sort(), ['b', 'one', 'two']);
    assert.equal(fs.statSync(join(m, 'a')).nlink, 3);
    fs.renameSync(join(m, 'a/one'), join(m, 'a/uno'));
    fs.renameSync(join(m, 'a/uno'), join(m, 'a/b/c/uno'));
    assert.equal(fs.readFileSync(join(m, 'a/b/c/uno'), 'utf8'), '1');
    fs.renameSync(join(m, 'a/two'), join(m, 'a/b/c/uno'));
    assert.equal(fs.readFileSync(join(m, 'a/b/c/uno'), 'utf8'), '2');
    assert.equal(code(() => fs.statSync(join(m, 'a/two'))), 'ENOENT');
    fs.renameSync(join(m, 'a/b/c'), join(m, 'c-moved'));
    assert.equal(fs.statSync(join(m, 'a/b')).nlink, 2);
    assert.deepEqual(fs.readdirSync(join(m, 'c-moved')), ['uno']);
    fs.mkdirSync(join(m, 'empty'));
    fs.renameSync(join(m, 'c-moved'), join(m, 'empty'));
    assert.deepEqual(fs.readdirSync(join(m, 'empty')), ['uno']);
    assert.equal(code(() => fs.renameSync(join(m, 'a'), join(m, 'a/b/inside'))), 'EINVAL');
  });

  test('hard links, symlinks, chmod and chown seen at once through every name', () => {
    fs.writeFileSync(join(m, 'orig'), 'linked');
    fs.linkSync(join(m, 'orig'), join(m, 'a/hard'));
    assert.equal(fs.statSync(join(m, 'orig')).nlink, 2);
    assert.equal(fs.statSync(join(m, 'orig')).ino, fs.statSync(join(m, 'a/hard')).ino);
    fs.chmodSync(join(m, 'a/hard'), 0o600);
    assert.equal(fs.statSync(join(m, 'orig')).mode & 0o777, 0o600);
    fs.chownSync(join(m, 'orig'), 1234, 5678);
    const st = fs.statSync(join(m, 'a/hard'));
    assert.deepEqual([st.uid, st.gid], [1234, 5678]);
    fs.renameSync(join(m, 'orig'), join(m, 'renamed'));
    assert.ok(fs.statSync(join(m, 'a/hard')).ctimeMs >= st.ctimeMs);
    fs.unlinkSync(join(m, 'renamed'));
    assert.equal(fs.statSync(join(m, 'a/hard')).nlink, 1);
    assert.equal(fs.readFileSync(join(m, 'a/hard'), 'utf8'), 'linked');
    fs.symlinkSync('a/hard', join(m, 'sym'));
    assert.equal(fs.readlinkSync(join(m, 'sym')), 'a/hard');
    assert.equal(fs.readFileSync(join(m, 'sym'), 'utf8'), 'linked');
    assert.ok(fs.lstatSync(join(m, 'sym')).isSymbolicLink());
  });

  test("a directory's attributes change at once after each change to it or its entries (the FUSE thread keeps them briefly)", () => {
    const d = join(m, 'attrs');
    fs.mkdirSync(d);
    const pause = () => spawnSync('sleep', ['0.01']);
    // Each stat right after a change lands within the FUSE thread's 250 ms of the stat before it.
    fs.statSync(d);
    fs.chmodSync(d, 0o750);
    assert.equal(fs.statSync(d).mode & 0o777, 0o750);
    fs.chownSync(d, 1234, 5678);
    assert.deepEqual([fs.statSync(d).uid, fs.statSync(d).gid], [1234, 5678]);
    const dir = fs.statSync(d);
    pause();
    fs.writeFileSync(join(d, 'file'), 'x');
    assert.ok(fs.statSync(d).mtimeMs > dir.mtimeMs, 'creating an entry did not change the directory mtime');
    fs.mkdirSync(join(d, 'sub'));
    assert.equal(fs.statSync(d).nlink, dir.nlink + 1);
    fs.statSync(join(d, 'sub'));
    fs.utimesSync(join(d, 'sub'), 1_000, 2_000);
    assert.equal(fs.statSync(join(d, 'sub')).mtimeMs, 2_000_000);
    fs.renameSync(join(d, 'sub'), join(d, 'moved'));
    assert.equal(code(() => fs.statSync(join(d, 'sub'))), 'ENOENT');
    assert.ok(fs.statSync(join(d, 'moved')).isDirectory());
    fs.mkdirSync(join(d, 'moved/deeper'));
    fs.statSync(join(d, 'moved/deeper'));
    fs.renameSync(join(d, 'moved'), join(m, 'attrs-moved'));
    assert.equal(code(() => fs.statSync(join(d, 'moved/deeper'))), 'ENOENT');
    assert.ok(fs.statSync(join(m, 'attrs-moved/deeper')).isDirectory());
    assert.equal(fs.statSync(d).nlink, dir.nlink);
    fs.rmdirSync(join(m, 'attrs-moved/deeper'));
    assert.equal(code(() => fs.statSync(join(m, 'attrs-moved/deeper'))), 'ENOENT');
    fs.rmdirSync(join(m, 'attrs-moved'));
    fs.unlinkSync(join(d, 'file'));
    fs.rmdirSync(d);
    assert.equal(code(() => fs.statSync(d)), 'ENOENT');
  });

  test('times: utimensat with UTIME_OMIT leaves that time alone', () => {
    const f = join(m, 'times');
    fs.writeFileSync(f, 't');
    ok('touch -m -d @1000000000 times');
    let st = fs.statSync(f);
    assert.equal(Math.floor(st.mtimeMs / 1000), 1000000000);
    const atime = Math.floor(st.atimeMs / 1000);
    assert.notEqual(atime, 1000000000);
    ok('touch -a -d @1100000000 times');
    st = fs.statSync(f);
    assert.equal(Math.floor(st.atimeMs / 1000), 1100000000);
    assert.equal(Math.floor(st.mtimeMs / 1000), 1000000000);
    fs.utimesSync(f, 1200000000, 1300000000);
    st = fs.statSync(f);
    assert.deepEqual([Math.floor(st.atimeMs / 1000), Math.floor(st.mtimeMs / 1000)], [1200000000, 1300000000]);
  });

  test('xattrs: set, get, list, remove, create/replace flags', () => {
    fs.writeFileSync(join(m, 'x'), 'x');
    ok('setfattr -n user.color -v blue x && setfattr -n user.size -v 42 x');
    assert.match(ok('getfattr -d x'), /user\.color="blue"[\s\S]*user\.size="42"/);
    assert.equal(ok('getfattr --only-values -n user.color x'), 'blue');
    ok('setfattr -x user.color x');
    assert.doesNotMatch(ok('getfattr -d x'), /color/);
    assert.match(sh('getfattr -n user.color x').stderr, /No such attribute/);
    assert.match(sh('setfattr -x user.color x').stderr, /No such attribute/);
  });

  test('an unlinked open file keeps its data until the last close and does not keep rmdir from working', () => {
    fs.mkdirSync(join(m, 'opendir'));
    fs.writeFileSync(join(m, 'opendir/f'), 'still here');
    const fd = fs.openSync(join(m, 'opendir/f'), 'r+');
    fs.unlinkSync(join(m, 'opendir/f'));
    assert.deepEqual(fs.readdirSync(join(m, 'opendir')), []);
    const buf = Buffer.alloc(10);
    assert.equal(fs.readSync(fd, buf, 0, 10, 0), 10);
    assert.equal(buf.toString(), 'still here');
    fs.writeSync(fd, 'STILL', 0);
    assert.equal(fs.fstatSync(fd).size, 10);
    fs.rmdirSync(join(m, 'opendir'));
    fs.closeSync(fd);
    assert.equal(code(() => fs.statSync(join(m, 'opendir'))), 'ENOENT');
  });

  test('statfs and flock', () => {
    const s = fs.statfsSync(m);
    assert.ok(s.blocks > 0 && s.bsize === 4096, JSON.stringify(s));
    fs.writeFileSync(join(m, 'lock'), '');
    // flock held by one process: another's non-blocking attempt fails, and succeeds after release.
    assert.equal(sh('flock -x lock -c "flock -n -x lock -c true"').status, 1);
    ok('flock -n -x lock -c true');
  });

  test('errors: ENOENT, EEXIST, ENOTEMPTY, EISDIR, ENOTDIR, ENAMETOOLONG', () => {
    assert.equal(code(() => fs.statSync(join(m, 'nope'))), 'ENOENT');
    assert.equal(code(() => fs.readFileSync(join(m, 'nope/x'))), 'ENOENT');
    assert.equal(code(() => fs.unlinkSync(join(m, 'nope'))), 'ENOENT');
    assert.equal(code(() => fs.rmdirSync(join(m, 'nope'))), 'ENOENT');
    assert.equal(code(() => fs.renameSync(join(m, 'nope'), join(m, 'nope2'))), 'ENOENT');
    fs.mkdirSync(join(m, 'e'));
    fs.writeFileSync(join(m, 'e/f'), 'f');
    assert.equal(code(() => fs.mkdirSync(join(m, 'e'))), 'EEXIST');
    assert.equal(code(() => fs.openSync(join(m, 'e/f'), 'wx')), 'EEXIST');
    assert.equal(code(() => fs.linkSync(join(m, 'e/f'), join(m, 'e/f'))), 'EEXIST');
    assert.equal(code(() => fs.symlinkSync('x', join(m, 'e/f'))), 'EEXIST');
    assert.equal(code(() => fs.rmdirSync(join(m, 'e'))), 'ENOTEMPTY');
    fs.mkdirSync(join(m, 'e2'));
    fs.writeFileSync(join(m, 'e2/g'), 'g');
    assert.equal(code(() => fs.renameSync(join(m, 'e'), join(m, 'e2'))), 'ENOTEMPTY');
    assert.equal(code(() => fs.openSync(join(m, 'e'), 'w')), 'EISDIR');
    assert.equal(code(() => fs.renameSync(join(m, 'e/f'), join(m, 'e2'))), 'EISDIR');
    assert.equal(code(() => fs.unlinkSync(join(m, 'e'))), 'EISDIR');
    assert.equal(code(() => fs.mkdirSync(join(m, 'e/f/sub'))), 'ENOTDIR');
    assert.equal(code(() => fs.rmdirSync(join(m, 'e/f'))), 'ENOTDIR');
    assert.equal(code(() => fs.renameSync(join(m, 'e2'), join(m, 'e/f'))), 'ENOTDIR');
    assert.equal(code(() => fs.writeFileSync(join(m, 'n'.repeat(256)), 'x')), 'ENAMETOOLONG');
    fs.writeFileSync(join(m, 'n'.repeat(255)), 'x');
    assert.equal(code(() => fs.renameSync(join(m, 'e/f'), join(m, 'e2/f'))), undefined);
  });

  test('EACCES with default_permissions for a non-root uid', () => {
    // The test's temporary directory (mode 0700) would refuse uid 1000 before the mount is even reached.
    fs.chmodSync(cluster.dir, 0o755);
    fs.mkdirSync(join(m, 'private'), { mode: 0o700 });
    fs.writeFileSync(join(m, 'secret'), 's', { mode: 0o600 });
    fs.mkdirSync(join(m, 'shared'), { mode: 0o777 });
    fs.chmodSync(join(m, 'shared'), 0o777);
    assert.match(sh('touch newfile', { uid: 1000 }).stderr, /Permission denied/);
    assert.match(sh('ls private', { uid: 1000 }).stderr, /Permission denied/);
    assert.match(sh('cat secret', { uid: 1000 }).stderr, /Permission denied/);
    ok('echo mine > shared/mine && cat shared/mine', { uid: 1000 });
    fs.chmodSync(join(m, 'secret'), 0o644);
    assert.equal(ok('cat secret', { uid: 1000 }), 's');
  });
});

describe('real programs on the mount', { skip }, () => {
  test('cp -a, diff -r, tar c/x', () => {
    const src = join(repoRoot, 'src');
    ok(`cp -a ${src} ./cp-src && diff -r ${src} ./cp-src`);
    const local = tempDir('fuse-tar');
    try {
      ok(`tar cf ${local}/a.tar -C ${repoRoot} src fuse && mkdir tarx && tar xf ${local}/a.tar -C tarx && diff -r ${src} tarx/src && diff -r ${join(repoRoot, 'fuse')} tarx/fuse`);
      ok(`tar cf ${local}/b.tar -C tarx src && mkdir ${local}/x && tar xf ${local}/b.tar -C ${local}/x && diff -r ${src} ${local}/x/src`);
      // mtimes survive (tar x sets them with utimensat).
      assert.equal(fs.statSync(join(m, 'tarx/src/index.ts')).mtimeMs, Math.floor(fs.statSync(join(src, 'index.ts')).mtimeMs / 1000) * 1000);
    } finally {
      removeDir(local);
    }
  });

  test('git init, add, commit, log', () => {
    fs.mkdirSync(join(m, 'repo'));
    const cwd = join(m, 'repo');
    ok('git init -q . && git config user.email t@example.com && git config user.name tester', { cwd });
    fs.writeFileSync(join(cwd, 'README'), 'first\n');
    ok('git add README && git commit -qm first', { cwd });
    fs.writeFileSync(join(cwd, 'README'), 'second\n');
    fs.mkdirSync(join(cwd, 'dir'));
    fs.writeFileSync(join(cwd, 'dir/file'), 'x\n');
    ok('git add -A && git commit -qm second && git mv dir/file dir/renamed && git commit -qm third', { cwd });
    assert.deepEqual(ok('git log --format=%s', { cwd }).trim().split('\n'), ['third', 'second', 'first']);
    ok('git fsck --strict', { cwd });
    assert.equal(ok('git status --porcelain', { cwd }), '');
  });

  test('sqlite3 database with integrity_check', () => {
    const inserts = Array.from({ length: 500 }, (_, i) => `insert into t values(${i}, '${'v'.repeat(i % 50)}');`).join('');
    ok(`sqlite3 db.sqlite "create table t(a integer primary key, b text); begin; ${inserts} commit; create index tb on t(b);"`);
    ok(`sqlite3 db.sqlite "update t set b = b || 'x' where a % 3 = 0; delete from t where a % 7 = 0; vacuum;"`);
    assert.equal(ok('sqlite3 db.sqlite "pragma integrity_check;"').trim(), 'ok');
    assert.equal(ok('sqlite3 db.sqlite "select count(*) from t;"').trim(), String(500 - Math.ceil(500 / 7)));
  });

  test('fs check is clean after all of it', () => {
    const r = cluster.cli(['fs', 'check', 'default']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /clean/);
  });
});
