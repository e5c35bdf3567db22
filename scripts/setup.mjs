#!/usr/bin/env node
// Makes a fresh checkout runnable: Debian packages (as root, when missing), npm dependencies, then the build.
// `npm start`, `npm test` and `npm run bench` run this first, so the README's commands work on a new machine.
// Only Node built-ins here: this runs before node_modules exists.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// Packages the test suite and the front ends need. libfuse2 is what fuse-native loads; fuse3 gives the mount tools
// (not `fuse`, which conflicts with fuse3 that nbdfuse and s3fs need). The S3 tests drive real clients: Debian's
// awscli and boto3, s3cmd, rclone and curl.
const debianPackages = ['libfuse2', 'fuse3', 'awscli', 'python3-boto3', 's3cmd', 'rclone', 'curl',
  // NBD clients (gateway/nbd tests and benchmarks): nbdinfo, nbdcopy, nbdfuse; qemu-img, qemu-io; fio; mkfs.ext4, e2fsck
  'libnbd-bin', 'qemu-utils', 'fio', 'e2fsprogs'];
// The filesystem: fuse-native is patched and built here (libfuse-dev, build-essential; see
// scripts/patch-fuse-native.mjs); its tests drive attr, git, sqlite3 and fio.
debianPackages.push('libfuse-dev', 'build-essential', 'attr', 'git', 'sqlite3');

function log(message) {
  process.stderr.write(`[setup] ${message}\n`);
}

function missingDebianPackages(names) {
  return names.filter((name) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
    return r.status !== 0 || !r.stdout.includes('install ok installed');
  });
}

function installDebianPackages() {
  if (process.platform !== 'linux' || !existsSync('/usr/bin/dpkg-query')) return;
  const missing = missingDebianPackages(debianPackages);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    log(`not root, so not installing Debian packages: ${missing.join(' ')} (tests that need them will say so and skip)`);
    return;
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  }
  if (r.status !== 0) log(`apt-get failed (${r.status}); continuing, tests that need these packages will skip`);
}

function mtimeMs(path) {
  return existsSync(path) ? statSync(path).mtimeMs : 0;
}

function installNpmDependencies() {
  const lock = join(root, 'package-lock.json');
  const installedLock = join(root, 'node_modules', '.package-lock.json');
  const upToDate =
    existsSync(installedLock) &&
    mtimeMs(installedLock) >= mtimeMs(lock) &&
    mtimeMs(installedLock) >= mtimeMs(join(root, 'package.json'));
  if (upToDate) return;
  const args = existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'];
  log(`npm ${args[0]}`);
  execFileSync('npm', args, { cwd: root, stdio: 'inherit' });
}

installDebianPackages();
installNpmDependencies();
execFileSync(process.execPath, [join(root, 'scripts', 'patch-fuse-native.mjs')], { cwd: root, stdio: 'inherit' });
execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
