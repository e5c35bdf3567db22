#!/usr/bin/env node
// fuse-native 2.2.6 as published cannot serve a correct POSIX filesystem: its utimens passes atime twice (mtime is
// lost, UTIME_OMIT becomes a time), ops on an unlinked open file fail with ENOENT (libfuse2's nullpath_ok is not
// set), fstat ignores the handle, and neither flock nor POSIX locks are wired (so locks cannot be shared across
// mounts). This applies
// fuse/adapter/fuse-native.patch to node_modules/fuse-native and builds it (node-gyp, which npm ships, against the
// Node headers in /usr/include/node and Debian's libfuse-dev). node-gyp-build then loads build/Release before the
// prebuild. Idempotent: a patched tree is left alone.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'node_modules', 'fuse-native');
const log = (m) => process.stderr.write(`[patch-fuse-native] ${m}\n`);

if (!existsSync(join(dir, 'fuse-native.c'))) {
  log('fuse-native is not installed; nothing to patch');
  process.exit(0);
}
// The marker of the current patch; an older one means node_modules was patched by an earlier version of it.
const marker = 'shoal patch: directory attributes answered in the FUSE thread';
let source = readFileSync(join(dir, 'fuse-native.c'), 'utf8');
if (!source.includes(marker) && source.includes('shoal patch')) {
  log('an older patch is applied: reinstalling fuse-native from the lock file');
  rmSync(dir, { recursive: true, force: true });
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`npm ci failed (${r.status})`);
  source = readFileSync(join(dir, 'fuse-native.c'), 'utf8');
}
const patched = source.includes(marker);
if (!patched) {
  const r = spawnSync('patch', ['-p1', '-N', '-d', dir, '-i', join(root, 'fuse', 'adapter', 'fuse-native.patch')], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`patching fuse-native failed (${r.status})`);
}
if (!patched || !existsSync(join(dir, 'build', 'Release', 'fuse.node'))) {
  const gyp = [
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  ].find(existsSync);
  if (!gyp) throw new Error('node-gyp (shipped with npm) not found');
  const nodedir = existsSync('/usr/include/node/node_api.h') ? ['--nodedir=/usr'] : [];
  log('building fuse-native');
  const r = spawnSync(process.execPath, [gyp, 'rebuild', ...nodedir], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  // Not fatal: everything but the FUSE mount works without it, and the FUSE tests say why they skip.
  if (r.status !== 0) log(`building fuse-native failed (${r.status}); it needs build-essential and libfuse-dev (npm run setup as root installs them):\n${r.stderr}`);
}
