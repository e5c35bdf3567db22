/**
 * Issue 7: a real filesystem on a Shoal image. nbdfuse exposes the export as a file, the kernel's ext4 runs on it
 * through a loop device; files survive unmount and e2fsck; a snapshot taken while the image is in use comes back by
 * rollback; a clone of it mounts the snapshot's tree while its parent keeps changing; export/import round-trip.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, lstatSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../helpers/processes.js';
import { missingTool, run, startNbdCluster, type NbdCluster } from './nbd-cluster.js';

function why(): string | false {
  const tool = missingTool(['nbdfuse', 'nbdcopy', 'mkfs.ext4', 'e2fsck', 'losetup', 'mount', 'umount', 'fusermount3', 'cmp']);
  if (tool) return `${tool} is not installed (apt-get install libnbd-bin fuse3 e2fsprogs)`;
  if (process.getuid?.() !== 0) return 'mounting needs root';
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  if (!existsSync('/dev/loop-control')) return 'no loop devices';
  return false;
}
const skip = why();
if (skip) process.stdout.write(`# skipping the NBD filesystem tests: ${skip}\n`);

let cluster: NbdCluster;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  if (skip) return;
  cluster = await startNbdCluster('nbd-fs');
});

after(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
  await cluster?.stop();
});

function ok(r: { status: number; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.status, 0, `${what} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** An export as a file (nbdfuse, tracked by pid) and, on request, mounted through a loop device. */
class Attached {
  readonly dir: string;
  readonly file: string;
  readonly mnt: string;
  #nbdfuse: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #loop: string | undefined;

  constructor(readonly name: string, tag: string) {
    this.dir = join(cluster.dir, `fuse-${tag}`);
    this.file = join(this.dir, 'disk');
    this.mnt = join(cluster.dir, `mnt-${tag}`);
    mkdirSync(this.dir, { recursive: true });
    mkdirSync(this.mnt, { recursive: true });
  }

  async attach(): Promise<void> {
    const child = spawn('nbdfuse', [this.file, cluster.uri(this.name)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    this.#nbdfuse = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    cleanups.push(() => this.detach());
    await waitFor(`nbdfuse to expose ${this.name}`, 20_000, () => {
      if (child.exitCode !== null) throw new Error(`nbdfuse exited: ${stderr}`);
      return existsSync(this.file) ? true : undefined;
    });
  }

  mount(): void {
    this.#loop = ok(run('losetup', ['-f', '--show', this.file]), 'losetup').trim();
    ok(run('mount', [this.#loop, this.mnt]), 'mount');
  }

  unmount(): void {
    if (!this.#loop) return;
    ok(run('umount', [this.mnt]), 'umount');
    this.fsck();
    ok(run('losetup', ['-d', this.#loop]), 'losetup -d');
    this.#loop = undefined;
  }

  fsck(): void {
    ok(run('e2fsck', ['-fn', this.#loop ?? this.file]), 'e2fsck -fn');
  }

  async detach(): Promise<void> {
    if (this.#loop) {
      run('umount', [this.mnt]);
      run('losetup', ['-d', this.#loop]);
      this.#loop = undefined;
    }
    const child = this.#nbdfuse;
    if (!child || child.exitCode !== null) return;
    run('fusermount3', ['-u', this.dir]);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** path → sha256 (files) or link target (symlinks), for a whole tree. */
function treeHashes(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      if (name === 'lost+found') continue;
      const path = join(dir, name);
      const st = lstatSync(path);
      if (st.isSymbolicLink()) out.set(`${rel}${name}`, `-> ${readlinkSync(path)}`);
      else if (st.isDirectory()) walk(path, `${rel}${name}/`);
      else out.set(`${rel}${name}`, createHash('sha256').update(readFileSync(path)).digest('hex'));
    }
  };
  walk(root, '');
  return out;
}

function writeTree(root: string): void {
  for (let d = 0; d < 5; d++) {
    mkdirSync(join(root, `dir${d}`, 'sub'), { recursive: true });
    for (let f = 0; f < 12; f++) writeFileSync(join(root, `dir${d}`, f % 2 ? 'sub' : '', `file${f}`), randomBytes(1 + ((d * 7919 + f * 104729) % 300_000)));
  }
  writeFileSync(join(root, 'big.bin'), randomBytes(12 * 2 ** 20));
  symlinkSync('dir0/file0', join(root, 'link'));
}

let snapshotTree: Map<string, string>;

test('ext4 on an image through nbdfuse: mkfs, files, umount, e2fsck clean, remount, every hash matches', { skip }, async () => {
  ok(cluster.shoal(['image', 'create', 'data/fs', '--size', '256M']), 'image create');
  const a = new Attached('data/fs', 'a');
  await a.attach();
  ok(run('mkfs.ext4', ['-F', '-q', a.file]), 'mkfs.ext4');
  a.mount();
  writeTree(a.mnt);
  const written = treeHashes(a.mnt);
  assert.equal(written.size, 62);
  a.unmount();
  a.mount();
  assert.deepEqual(treeHashes(a.mnt), written);
  snapshotTree = written;
  // A snapshot of the image in use (nbdfuse holds it through the gateway): taken by the gateway between writes.
  ok(run('sync', []), 'sync');
  a.unmount();
  ok(cluster.shoal(['image', 'snap', 'create', 'data/fs@s1']), 'snap create');
  a.mount();
  writeFileSync(join(a.mnt, 'dir0', 'file0'), 'changed after the snapshot');
  rmSync(join(a.mnt, 'big.bin'));
  writeFileSync(join(a.mnt, 'new-after-snapshot'), randomBytes(100_000));
  const changed = treeHashes(a.mnt);
  assert.notDeepEqual(changed, written);
  a.unmount();
  await a.detach();
  assert.match(ok(cluster.shoal(['image', 'snap', 'ls', 'data/fs']), 'snap ls'), /s1 +256\.0 MiB/);
});

test('a clone of the snapshot mounts its tree while the parent keeps changing; the snapshot stays protected until flatten', { skip }, async () => {
  assert.ok(snapshotTree, 'needs the first test');
  ok(cluster.shoal(['image', 'clone', 'data/fs@s1', 'data/fsclone']), 'clone');
  const parent = new Attached('data/fs', 'p');
  const clone = new Attached('data/fsclone', 'c');
  await parent.attach();
  await clone.attach();
  parent.mount();
  clone.mount();
  assert.deepEqual(treeHashes(clone.mnt), snapshotTree);
  // Both change at once: the parent's writes never reach the clone, and the clone's never reach the parent.
  writeFileSync(join(parent.mnt, 'parent-only'), randomBytes(3 * 2 ** 20));
  writeFileSync(join(clone.mnt, 'clone-only'), randomBytes(3 * 2 ** 20));
  ok(run('sync', []), 'sync');
  const cloneTree = treeHashes(clone.mnt);
  assert.ok(!cloneTree.has('parent-only') && cloneTree.has('clone-only'));
  assert.ok(!treeHashes(parent.mnt).has('clone-only'));
  parent.unmount();
  clone.unmount();
  await parent.detach();
  await clone.detach();
  const busy = cluster.shoal(['image', 'snap', 'rm', 'data/fs@s1']);
  assert.match(busy.stderr, /NOT_EMPTY: snapshot s1 .* has clones \(data\/fsclone@1\)/);
  ok(cluster.shoal(['image', 'flatten', 'data/fsclone']), 'flatten');
  assert.match(ok(cluster.shoal(['image', 'info', 'data/fsclone']), 'info'), /parent: +none/);
  const flat = new Attached('data/fsclone', 'f');
  await flat.attach();
  flat.mount();
  assert.deepEqual(treeHashes(flat.mnt), cloneTree);
  flat.unmount();
  await flat.detach();
});

test('rollback brings the snapshot tree back (e2fsck clean, every hash matches); export and import round-trip', { skip }, async () => {
  assert.ok(snapshotTree, 'needs the first test');
  ok(cluster.shoal(['image', 'snap', 'rollback', 'data/fs@s1']), 'rollback');
  const a = new Attached('data/fs', 'r');
  await a.attach();
  a.fsck();
  a.mount();
  assert.deepEqual(treeHashes(a.mnt), snapshotTree);
  a.unmount();
  await a.detach();
  // Export the snapshot to a raw file (e2fsck reads it as is), import it as a new image, read that back byte for byte.
  const raw = join(cluster.dir, 'fs-s1.raw');
  const exported = cluster.shoal(['image', 'export', 'data/fs@s1', raw]);
  ok(exported, 'export');
  assert.match(exported.stderr, /export \[#+\] 100%/);
  ok(run('e2fsck', ['-fn', raw]), 'e2fsck on the exported file');
  const imported = cluster.shoal(['image', 'import', raw, 'data/fsimport']);
  ok(imported, 'import');
  assert.match(imported.stderr, /import \[#+\] 100%/);
  const back = join(cluster.dir, 'fs-import.raw');
  ok(run('nbdcopy', [cluster.uri('data/fsimport'), back]), 'nbdcopy out');
  ok(run('cmp', [raw, back]), 'cmp');
  // Cleanup through the CLI: snapshots first, then the images.
  assert.match(cluster.shoal(['image', 'rm', 'data/fs']).stderr, /NOT_EMPTY: .*has snapshots/);
  ok(cluster.shoal(['image', 'snap', 'rm', 'data/fs@s1']), 'snap rm');
  for (const name of ['fs', 'fsclone', 'fsimport']) ok(cluster.shoal(['image', 'rm', `data/${name}`]), `rm ${name}`);
  assert.doesNotMatch(ok(cluster.shoal(['image', 'ls', 'data']), 'ls'), /fs/);
  assert.equal(ok(cluster.shoal(['obj', 'ls', 'data']), 'obj ls').split('\n').filter((l) => /^fs/.test(l)).join('\n'), '', 'no data objects left');
});
