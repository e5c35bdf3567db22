/**
 * Issue 8 acceptance: a seeded random sequence of POSIX operations (create, write at offsets, truncate, rename, link,
 * unlink, mkdir, rmdir, chmod, symlink, setxattr) applied both to the mount and to a local directory; after every
 * step the outcome (success or the same errno), the trees, metadata (type, permissions, size, link count, symlink
 * target) and the contents of what the step touched are compared; every 100 steps and at the end, every file's
 * content and xattrs. A failure prints the seed; SHOAL_SEED replays it.
 */
import { after, before, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fuseAvailable, startFuseCluster, type FuseCluster } from '../helpers/fuse-cluster.js';
import { removeDir, tempDir } from '../helpers/processes.js';
import { seededRandom } from '../helpers/seed.js';
import type { Random } from '../../src/index.js';

const skip = fuseAvailable();
if (skip) process.stdout.write(`# skipping the FUSE tests: ${skip}\n`);

const steps = Number(process.env['SHOAL_FS_STEPS'] ?? 2000);
// Three names a level keep the tree small (a compare after every step walks all of it) and collisions frequent.
const names = ['a', 'b', 'c'];

let cluster: FuseCluster;
let local: string;

before(async () => {
  if (skip) return;
  cluster = await startFuseCluster('fuse-diff');
  local = tempDir('fuse-diff-local');
});

after(async () => {
  if (cluster) await cluster.stop();
  if (local && (process.exitCode === undefined || process.exitCode === 0)) removeDir(local);
});

function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

function randomPath(random: Random): string {
  const depth = random.chance(0.8) ? random.int(1, 2) : 3;
  return Array.from({ length: depth }, () => random.pick(names)).join('/');
}

interface Entry {
  type: string;
  mode: number;
  size: number;
  nlink: number;
  target?: string;
}

function tree(root: string, rel = '', out = new Map<string, Entry>()): Map<string, Entry> {
  for (const name of fs.readdirSync(join(root, rel)).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const st = fs.lstatSync(join(root, path));
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
    out.set(path, { type, mode: st.mode & 0o7777, size: type === 'dir' ? 0 : st.size, nlink: st.nlink, ...(type === 'symlink' ? { target: fs.readlinkSync(join(root, path)) } : {}) });
    if (type === 'dir') tree(root, path, out);
  }
  return out;
}

function content(root: string, path: string): string {
  const full = join(root, path);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(full);
  } catch {
    return 'absent';
  }
  if (!st.isFile()) return st.isDirectory() ? 'dir' : 'symlink';
  return fs.readFileSync(full).toString('base64');
}

function xattrs(root: string, path: string): string {
  const r = spawnSync('getfattr', ['-h', '-d', '-m', '^user\\.', '--absolute-names', join(root, path)], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.startsWith('user.')).sort().join('\n');
}

test('random POSIX operations give the same results on the mount and on a local directory', { skip, timeout: 15 * 60_000 }, (t) => {
  const random = seededRandom(t);
  const m = cluster.mnt;
  const log: string[] = [];
  const fail = (message: string) => {
    throw new Error(`${message}\nseed ${random.seed} (replay: SHOAL_SEED=${random.seed} node scripts/test.mjs fuse-differential)\nlast steps:\n${log.slice(-15).join('\n')}`);
  };
  const compareAll = (step: number, touched: string[], full: boolean) => {
    const want = tree(local);
    const got = tree(m);
    const w = JSON.stringify([...want]);
    const g = JSON.stringify([...got]);
    if (w !== g) fail(`step ${step}: trees differ\nlocal: ${w}\nmount: ${g}`);
    const paths = full ? [...want.keys()] : touched;
    for (const p of paths) {
      if (content(local, p) !== content(m, p)) fail(`step ${step}: content of ${p} differs`);
      if (full && want.get(p)?.type === 'file' && xattrs(local, p) !== xattrs(m, p)) fail(`step ${step}: xattrs of ${p} differ`);
    }
  };
  for (let step = 1; step <= steps; step++) {
    const kind = random.pick(['create', 'create', 'write', 'write', 'write', 'truncate', 'rename', 'rename', 'link', 'unlink', 'mkdir', 'mkdir', 'rmdir', 'chmod', 'symlink', 'setxattr'] as const);
    const p = randomPath(random);
    const q = randomPath(random);
    let touched = [p];
    let apply: (root: string) => void;
    switch (kind) {
      case 'create': {
        const data = random.bytes(random.int(0, 3000));
        apply = (root) => fs.writeFileSync(join(root, p), data, { flag: 'wx' });
        break;
      }
      case 'write': {
        const data = random.bytes(random.int(1, 20_000));
        const offset = random.int(0, 70_000);
        apply = (root) => {
          const fd = fs.openSync(join(root, p), 'r+');
          try {
            fs.writeSync(fd, data, 0, data.length, offset);
          } finally {
            fs.closeSync(fd);
          }
        };
        break;
      }
      case 'truncate': {
        const size = random.int(0, 80_000);
        apply = (root) => fs.truncateSync(join(root, p), size);
        break;
      }
      case 'rename':
        touched = [p, q];
        apply = (root) => fs.renameSync(join(root, p), join(root, q));
        break;
      case 'link':
        touched = [p, q];
        apply = (root) => fs.linkSync(join(root, p), join(root, q));
        break;
      case 'unlink':
        apply = (root) => fs.unlinkSync(join(root, p));
        break;
      case 'mkdir':
        apply = (root) => fs.mkdirSync(join(root, p), 0o755);
        break;
      case 'rmdir':
        apply = (root) => fs.rmdirSync(join(root, p));
        break;
      case 'chmod': {
        const mode = random.pick([0o600, 0o644, 0o755, 0o700, 0o640]);
        apply = (root) => fs.chmodSync(join(root, p), mode);
        break;
      }
      case 'symlink': {
        const target = random.pick(['a', '../b', 'c/d', 'nowhere']);
        apply = (root) => fs.symlinkSync(target, join(root, p));
        break;
      }
      case 'setxattr': {
        const key = `user.${random.pick(['x', 'y'])}`;
        const value = random.bytes(random.int(1, 20)).toString('hex');
        apply = (root) => {
          const st = fs.lstatSync(join(root, p));
          if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'NOTFILE' });
          const r = spawnSync('setfattr', ['-n', key, '-v', value, join(root, p)], { encoding: 'utf8' });
          if (r.status !== 0) throw Object.assign(new Error(r.stderr), { code: 'SETFATTR' });
        };
        break;
      }
    }
    const want = outcome(() => apply(local));
    const got = outcome(() => apply(m));
    log.push(`${step}: ${kind} ${p}${touched.length > 1 ? ` ${q}` : ''} -> ${want}`);
    if (want !== got) fail(`step ${step}: ${kind} ${p} ${q}: local ${want}, mount ${got}`);
    compareAll(step, touched, step % 100 === 0 || step === steps);
  }
  t.diagnostic(`${steps} steps, ${tree(local).size} entries at the end`);
});
