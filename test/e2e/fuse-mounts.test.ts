/**
 * Issue 8 acceptance: two mounts of one filesystem in two processes (changes seen within 1 s, close-to-open data,
 * flock shared), crashes (kill -9 of the mount during a rename-heavy workload, then of every daemon after an fsync),
 * and the checker against crash states built directly with the namespace (no kernel needed for those).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ObjectClient, parseClusterConfig, wire } from '../../src/index.js';
import { FileSystem, checkFileSystem, createFileSystem, dataObject, encodeDentry, encodeIntent, encodeInode, inodeObject, metaPoolName, superObject } from '../../fuse/fs/index.js';
import { fuseAvailable, isMounted, startFuseCluster, type FuseCluster } from '../helpers/fuse-cluster.js';
import { waitFor } from '../helpers/processes.js';

const skip = fuseAvailable();
if (skip) process.stdout.write(`# skipping the FUSE tests: ${skip}\n`);

let cluster: FuseCluster;
let m: string;

before(async () => {
  if (skip) return;
  cluster = await startFuseCluster('fuse-mounts');
  m = cluster.mnt;
});

after(async () => {
  if (cluster) await cluster.stop();
});

/** How long until `probe` holds, in ms (fails after 5 s). */
async function msUntil(what: string, probe: () => boolean): Promise<number> {
  const start = Date.now();
  await waitFor(what, 5000, () => (probe() ? true : undefined), 10);
  return Date.now() - start;
}

const exists = (p: string) => fs.existsSync(p);

test('two mounts in two processes: changes within 1 s, close-to-open data, flock', { skip }, async () => {
  const m2 = join(cluster.dir, 'mnt2');
  await cluster.extraMount(m2);
  fs.writeFileSync(join(m, 'made-in-1'), 'one');
  const created = await msUntil('the new file in mount 2', () => exists(join(m2, 'made-in-1')));
  assert.equal(fs.readFileSync(join(m2, 'made-in-1'), 'utf8'), 'one');
  fs.mkdirSync(join(m2, 'dir'));
  fs.renameSync(join(m2, 'made-in-1'), join(m2, 'dir/renamed'));
  const renamed = await msUntil('the rename in mount 1', () => exists(join(m, 'dir/renamed')) && !exists(join(m, 'made-in-1')));
  fs.chmodSync(join(m, 'dir/renamed'), 0o640);
  const chmodded = await msUntil('the chmod in mount 2', () => (fs.statSync(join(m2, 'dir/renamed')).mode & 0o777) === 0o640);
  fs.unlinkSync(join(m, 'dir/renamed'));
  const deleted = await msUntil('the delete in mount 2', () => !exists(join(m2, 'dir/renamed')));
  process.stdout.write(`# seen in the other mount after: create ${created} ms, rename ${renamed} ms, chmod ${chmodded} ms, delete ${deleted} ms\n`);
  for (const ms of [created, renamed, chmodded, deleted]) assert.ok(ms <= 1000, `a change took ${ms} ms to show in the other mount`);

  // Close-to-open: what one mount wrote and closed, the other reads after its open.
  const data = randomBytes(300_000);
  fs.writeFileSync(join(m, 'shared'), data);
  assert.deepEqual(fs.readFileSync(join(m2, 'shared')), data);
  const data2 = randomBytes(1000);
  fs.writeFileSync(join(m2, 'shared'), data2);
  assert.deepEqual(fs.readFileSync(join(m, 'shared')), data2);

  // flock held in mount 1 blocks mount 2 until released.
  fs.writeFileSync(join(m, 'lockfile'), '');
  const holder = spawn('flock', ['-x', join(m, 'lockfile'), '-c', 'echo locked; sleep 2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => holder.stdout?.once('data', () => resolve()));
  assert.equal(spawnSync('flock', ['-n', '-x', join(m2, 'lockfile'), '-c', 'true']).status, 1, 'mount 2 took a lock mount 1 holds');
  const start = Date.now();
  assert.equal(spawnSync('flock', ['-x', join(m2, 'lockfile'), '-c', 'true'], { timeout: 20_000 }).status, 0);
  const waited = Date.now() - start;
  assert.ok(waited > 800, `the blocking flock in mount 2 returned after ${waited} ms, before mount 1 released`);
  await new Promise((resolve) => holder.once('exit', resolve));
});

test("direct I/O of 1 MiB reaches the filesystem as 1 MiB requests (past libfuse2's own 128 KiB)", { skip }, async () => {
  const m3 = join(cluster.dir, 'mnt3');
  const mount = await cluster.extraMount(m3);
  const data = randomBytes(4 * 1024 * 1024);
  const source = join(cluster.dir, 'direct-source');
  fs.writeFileSync(source, data);
  const dd = (args: string[]) => {
    const r = spawnSync('dd', [...args, 'bs=1M', 'status=none'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `dd ${args.join(' ')}: ${r.stderr}`);
  };
  dd([`if=${source}`, `of=${join(m3, 'direct')}`, 'oflag=direct']);
  dd([`if=${join(m3, 'direct')}`, `of=${join(cluster.dir, 'direct-back')}`, 'iflag=direct']);
  assert.deepEqual(fs.readFileSync(join(cluster.dir, 'direct-back')), data);
  await mount.stop();
  const line = /unmounted from .* \((\d+) read requests of up to (\d+) bytes, (\d+) write requests of up to (\d+) bytes\)/.exec(mount.log());
  assert.ok(line, `no request counts in the mount's log:\n${mount.log()}`);
  const [, reads, largestRead, writes, largestWrite] = line.map(Number);
  process.stdout.write(`# mount 3 served ${reads} reads of up to ${largestRead} bytes and ${writes} writes of up to ${largestWrite} bytes\n`);
  assert.equal(largestWrite, 1024 * 1024, 'a 1 MiB O_DIRECT write was split');
  assert.equal(largestRead, 1024 * 1024, 'a 1 MiB O_DIRECT read was split');
  assert.ok((writes as number) <= 4, `${writes} write requests for 4 MiB`);
});

test('POSIX (fcntl) byte-range locks are seen across mounts', { skip }, async () => {
  const m2 = join(cluster.dir, 'mnt2');
  fs.writeFileSync(join(m, 'ranges'), Buffer.alloc(1000));
  const py = (code: string, timeout = 20_000) => spawnSync('python3', ['-c', code], { encoding: 'utf8', timeout });
  const lockIn = (path: string, start: number, len: number, blocking: boolean) =>
    `import fcntl,os,sys\nfd=os.open(${JSON.stringify(path)},os.O_RDWR)\ntry:\n  fcntl.lockf(fd,fcntl.LOCK_EX${blocking ? '' : '|fcntl.LOCK_NB'},${len},${start})\nexcept OSError as e:\n  print('busy',e.errno); sys.exit(3)\nprint('locked')`;
  // Mount 1 holds bytes 0-99 for 2 s.
  const holder = spawn('python3', ['-c', `${lockIn(join(m, 'ranges'), 0, 100, true)}\nsys.stdout.flush()\nimport time\ntime.sleep(2)`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => holder.stdout?.once('data', () => resolve()));
  const busy = py(lockIn(join(m2, 'ranges'), 50, 10, false));
  assert.equal(busy.status, 3, `mount 2 locked a range mount 1 holds: ${busy.stdout}${busy.stderr}`);
  assert.equal(py(lockIn(join(m2, 'ranges'), 100, 100, false)).status, 0, 'a range next to the held one is free');
  const start = Date.now();
  const waited = py(lockIn(join(m2, 'ranges'), 0, 0, true));
  assert.equal(waited.status, 0, waited.stderr);
  assert.ok(Date.now() - start > 800, 'the blocking lock did not wait for mount 1 to release');
  await new Promise((resolve) => holder.once('exit', resolve));
});

test('kill -9 of the mount during renames, remount: fs check is clean', { skip }, async () => {
  fs.mkdirSync(join(m, 'ra'));
  fs.mkdirSync(join(m, 'rb'));
  for (let i = 0; i < 20; i++) fs.writeFileSync(join(m, 'ra', `f${i}`), `file ${i}`);
  fs.mkdirSync(join(m, 'ra/sub'));
  // Renames across directories (intents), within one, of a directory, and over existing targets, in a loop.
  const script = `cd ${m}; while true; do for i in $(seq 0 19); do mv ra/f$i rb/f$i; mv rb/f$i rb/g$i; mv rb/g$i ra/f$i; done; mv ra/sub rb/sub; mv rb/sub ra/sub; done`;
  const load = spawn('sh', ['-c', script], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 3000));
  const pid = cluster.mountPid();
  assert.ok(pid, 'no mount pid');
  process.kill(pid, 'SIGKILL');
  await waitFor('the workload to end', 20_000, () => (load.exitCode !== null || load.signalCode !== null ? true : undefined)).catch(() => load.kill('SIGKILL'));
  spawnSync('fusermount', ['-uz', m]);
  // Remount (finishes the dead mount's half-done renames), then the checker.
  const m3 = join(cluster.dir, 'mnt3');
  const again = await cluster.extraMount(m3);
  const check = cluster.cli(['fs', 'check', 'default']);
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /clean/);
  // Every file is in exactly one place, with its content.
  const names = [...fs.readdirSync(join(m3, 'ra')).map((n) => `ra/${n}`), ...fs.readdirSync(join(m3, 'rb')).map((n) => `rb/${n}`)];
  const files = names.filter((n) => !n.endsWith('/sub'));
  assert.equal(files.length, 20, names.join(' '));
  const contents = files.map((n) => fs.readFileSync(join(m3, n), 'utf8')).sort();
  assert.deepEqual(contents, Array.from({ length: 20 }, (_, i) => `file ${i}`).sort());
  assert.equal(names.filter((n) => n.endsWith('/sub')).length, 1);
  await again.stop();
  assert.ok(!isMounted(m3));
});

test('an unreachable cluster gives ETIMEDOUT in bounded time, and the mount still unmounts on SIGTERM', { skip }, async () => {
  const m2 = join(cluster.dir, 'mnt-frozen');
  const mount = await cluster.extraMount(m2);
  fs.writeFileSync(join(m2, 'before'), 'x');
  // Freeze every OSD (SIGSTOP): the cluster stops answering without closing connections.
  const osds = ['osd.0', 'osd.1', 'osd.2'].map((n) => cluster.pidOf(n)).filter((p): p is number => p !== undefined);
  for (const pid of osds) process.kill(pid, 'SIGSTOP');
  try {
    const start = Date.now();
    const r = spawnSync('stat', [join(m2, 'never-created')], { encoding: 'utf8', timeout: 60_000 });
    const tookMs = Date.now() - start;
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /timed out|Input\/output error/i);
    assert.ok(tookMs < 30_000, `stat took ${tookMs} ms`);
    process.stdout.write(`# stat on a frozen cluster failed after ${tookMs} ms: ${r.stderr.trim()}\n`);
    const stopStart = Date.now();
    await mount.stop();
    assert.ok(!isMounted(m2), 'still mounted after SIGTERM');
    assert.ok(Date.now() - stopStart < 15_000);
  } finally {
    for (const pid of osds) process.kill(pid, 'SIGCONT');
  }
  await waitFor('the cluster to answer again', 60_000, () => (cluster.cli(['fs', 'check', 'default']).status === 0 ? true : undefined), 1000);
});

test('data written and fsynced before kill -9 of every daemon is there after restart', { skip }, async () => {
  const m2 = join(cluster.dir, 'mnt-fsync');
  await cluster.extraMount(m2);
  const data = randomBytes(5 * 1024 * 1024 + 77);
  const fd = fs.openSync(join(m2, 'durable'), 'w');
  fs.writeSync(fd, data);
  fs.fsyncSync(fd);
  fs.mkdirSync(join(m2, 'durable-dir'));
  fs.writeFileSync(join(m2, 'durable-dir/small'), 'small');
  const fd2 = fs.openSync(join(m2, 'durable-dir/small'), 'r');
  fs.fsyncSync(fd2);
  fs.closeSync(fd2);
  await cluster.killAll();
  try {
    fs.closeSync(fd);
  } catch {
    // the mount is gone (ENOTCONN): the fsync above is what counts
  }
  cluster = await startFuseCluster('fuse-mounts', { dir: cluster.dir });
  assert.deepEqual(fs.readFileSync(join(m, 'durable')), data);
  assert.equal(fs.readFileSync(join(m, 'durable-dir/small'), 'utf8'), 'small');
  const check = cluster.cli(['fs', 'check', 'default']);
  assert.equal(check.status, 0, check.stdout + check.stderr);
});

/** Runs `body` with an object client of the test cluster (the namespace without a kernel). */
async function withClient(body: (client: ObjectClient) => Promise<void>): Promise<void> {
  const client = new ObjectClient(parseClusterConfig(fs.readFileSync(cluster.confPath, 'utf8')));
  await client.start();
  try {
    await body(client);
  } finally {
    await client.stop();
  }
}

test('the checker finds and repairs each crash state (namespace without a kernel)', { skip }, () =>
  withClient(async (client) => {
    await createFileSystem(client, 'ns');
    const nsfs = await FileSystem.open(client, 'ns', { cacheTtlMs: 0 });
    const meta = metaPoolName('ns');
    await nsfs.mkdir('/a', 0o755);
    await nsfs.mkdir('/b', 0o755);
    const fd = await nsfs.create('/a/file', 0o644);
    await nsfs.write(fd, Buffer.from('payload'), 7, 0);
    await nsfs.release(fd);
    const clean = await checkFileSystem(client, 'ns', { repair: false, graceMs: 0 });
    assert.deepEqual(clean.problems, []);
    const a = await nsfs.resolve('/a');
    const b = await nsfs.resolve('/b');
    const file = await nsfs.resolve('/a/file');
    const old = Date.now() - 60_000;
    // 1. A create that died after the inode, before the entry: an orphan.
    await nsfs.metadata.create({ ino: 900_001, mode: 0o100644, uid: 0, gid: 0, size: 0, nlink: 1, atimeMs: old, mtimeMs: old, ctimeMs: old, parent: a, target: '', gen: 0, dead: false });
    // 2. A cross-directory rename that died after the new entry, before removing the old one (with its intent).
    const intent = { fromDir: a, fromName: 'file', toDir: b, toName: 'moved', ino: file, type: 'file' as const, replaced: 0, createdMs: old, owner: 'client.dead' };
    await client.omapSet(meta, superObject, [['intent.0001', encodeIntent(intent)]]);
    await client.omapSet(meta, inodeObject(b), [['moved', encodeDentry({ ino: file, type: 'file' })]]);
    // 3. A link that died after raising the count, before the entry.
    await nsfs.release(await nsfs.create('/other', 0o644));
    const other = await nsfs.resolve('/other');
    const inode = await nsfs.metadata.inode(other, true);
    await client.execute(meta, inodeObject(other), [{ kind: wire.ObjectOp.Kind.KIND_SETXATTR, name: 'a', value: encodeInode({ ...inode, nlink: 2, gen: inode.gen + 1 }) }]);
    // 4. A data object written by a mount that died before recording it.
    await client.write(nsfs.superblock.dataPool, dataObject(file, 5), 0, Buffer.from('stray data'));
    const found = await checkFileSystem(client, 'ns', { repair: false, graceMs: 0 });
    const text = found.problems.join('\n');
    assert.match(text, /rename intent intent\.0001 of client\.dead is pending/);
    assert.match(text, /orphan inode 900001/);
    assert.match(text, new RegExp(`inode ${other} has link count 2, 1 entries name it`));
    assert.match(text, /data object .* is not in the object list/);
    const repaired = await checkFileSystem(client, 'ns', { repair: true, graceMs: 0 });
    assert.ok(repaired.repaired >= 4, JSON.stringify(repaired));
    const after = await checkFileSystem(client, 'ns', { repair: false, graceMs: 0 });
    assert.deepEqual(after.problems, []);
    const reopened = await FileSystem.open(client, 'ns', { cacheTtlMs: 0 });
    assert.deepEqual(await reopened.readdir('/a'), []);
    assert.deepEqual(await reopened.readdir('/b'), ['moved']);
    const rfd = await reopened.open('/b/moved', 0);
    const buf = Buffer.alloc(7);
    assert.equal(await reopened.read(rfd, buf, 7, 0), 7);
    assert.equal(buf.toString(), 'payload');
    await reopened.release(rfd);
    assert.equal((await reopened.getattr('/b/moved')).nlink, 1);
    assert.equal((await reopened.getattr('/other')).nlink, 1);
  }));

test('unlinking an empty file removes its inode in one guarded op; a link another mount made meanwhile keeps it', { skip }, () =>
  withClient(async (client) => {
    await createFileSystem(client, 'unlinks');
    const meta = metaPoolName('unlinks');
    // `one` trusts what it read for a minute; `two` reads the cluster every time.
    const one = await FileSystem.open(client, 'unlinks', { cacheTtlMs: 60_000 });
    const two = await FileSystem.open(client, 'unlinks', { cacheTtlMs: 0 });
    const gone = async (ino: number) => client.stat(meta, inodeObject(ino)).then(() => false, (error: unknown) => (error as { code?: string }).code === 'NOT_FOUND');

    await one.release(await one.create('/plain', 0o644));
    const plain = await one.resolve('/plain');
    await one.getattr('/plain');
    await one.unlink('/plain');
    assert.ok(await gone(plain), 'the inode of an unlinked empty file is removed');

    await one.release(await one.create('/linked', 0o644));
    const linked = await one.resolve('/linked');
    await one.getattr('/linked');
    // Another mount adds a link: `one`'s cached attributes (one link) are now stale, and its guard must notice.
    await two.link('/linked', '/second');
    await one.unlink('/linked');
    assert.equal(await gone(linked), false, 'the inode another link names is kept');
    assert.equal((await two.getattr('/second')).nlink, 1);
    await two.unlink('/second');
    assert.ok(await gone(linked), 'removed with its last link');
    assert.deepEqual((await checkFileSystem(client, 'unlinks', { repair: false, graceMs: 0 })).problems, []);
  }));

test('a mount alone writes its metadata back; fsync and the next client to open wait for all of it', { skip }, () =>
  withClient(async (client) => {
    await createFileSystem(client, 'wb');
    const meta = metaPoolName('wb');
    const inCluster = async (dirIno: number, name: string) => (await client.omapList(meta, inodeObject(dirIno), { prefix: name, limit: 10 })).entries.some(([key]) => key === name);
    const a = await FileSystem.open(client, 'wb', { live: true, writeBack: true });
    let b: FileSystem | undefined;
    try {
      assert.ok(a.writesBack, 'the only client writes back');
      await a.mkdir('/d', 0o755);
      const d = await a.resolve('/d');
      for (let i = 0; i < 300; i++) await a.release(await a.create(`/d/f${i}`, 0o644));

      // fsync: the file's name is in the cluster when it returns.
      const fd = await a.create('/d/synced', 0o644);
      await a.fsync(fd);
      assert.ok(await inCluster(d, 'synced'), 'fsync waits for the write-back of the name');
      await a.release(fd);

      // A burst answered from the view: creates, a time set on a file not written yet, unlinks (some of files that
      // never reached the cluster).
      await Promise.all([
        ...Array.from({ length: 40 }, (_, i) => a.create(`/d/g${i}`, 0o644).then((h) => a.release(h))),
        ...Array.from({ length: 100 }, (_, i) => a.unlink(`/d/f${i}`)),
      ]);
      await a.utimens('/d/g0', 1_000_000, 2_000_000);
      await Promise.all(Array.from({ length: 10 }, (_, i) => a.unlink(`/d/g${30 + i}`)));
      assert.ok(a.pendingChanges > 0, 'changes are held back when the next client comes');

      // The next client's open makes the mount write everything first: it sees the whole burst at once.
      b = await FileSystem.open(client, 'wb', { cacheTtlMs: 0 });
      assert.equal(a.writesBack, false, 'a mount that is not alone any more writes through');
      assert.equal(a.pendingChanges, 0);
      const expected = ['synced', ...Array.from({ length: 200 }, (_, i) => `f${i + 100}`), ...Array.from({ length: 30 }, (_, i) => `g${i}`)].sort();
      assert.deepEqual((await b.readdir('/d')).sort(), expected);
      assert.equal((await b.getattr('/d/g0')).mtime.getTime(), 2_000_000, 'the time set before the inode was written is in it');
      assert.deepEqual((await checkFileSystem(client, 'wb', { repair: false, graceMs: 0 })).problems, [], 'unlinked inodes are gone, no entry points nowhere');

      // Not alone: a change is in the cluster when it returns.
      await a.release(await a.create('/d/late', 0o644));
      assert.ok(await inCluster(d, 'late'));
    } finally {
      await b?.close();
      await a.close();
    }
  }));
