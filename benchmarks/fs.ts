/**
 * `npm run bench -- fs [--ceph-mount PATH]`: the FUSE filesystem of a real local cluster (`shoal up --mount`:
 * 1 monitor, 3 OSD processes, pools of size 3), measured with the same commands as the Ceph anchor's CephFS
 * figures (../shared/anchors/ceph/RESULTS.md): fio psync direct=1 with 4 jobs (1 MiB sequential write and read,
 * 4 KiB random write and read) and metadata rates (create 10,000 empty files with `xargs touch`, `ls -l`, `rm -rf`).
 * Each figure is printed as a ratio to the recorded ceph-fuse figure (or, with --ceph-mount, to a live ceph-fuse
 * mount measured in the same run). SHOAL_BENCH_FS_SIZE (default 512M per job), SHOAL_BENCH_FS_RUNTIME (default
 * 20 s) and SHOAL_BENCH_FS_FILES (default 10000) shorten a run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterConfigToText, defaultMonitorSettings, defaultTimeouts } from '../src/index.js';
import { freePort } from './lib/ports.js';
import { cpuOf, record } from './lib/results.js';
import type { CpuUse } from './lib/cpu.js';
import { runFio } from './lib/fio.js';

const size = process.env['SHOAL_BENCH_FS_SIZE'] ?? '512M';
const runtime = Number(process.env['SHOAL_BENCH_FS_RUNTIME'] ?? 20);
const files = Number(process.env['SHOAL_BENCH_FS_FILES'] ?? 10_000);

/** ceph-fuse on this machine, from ../shared/anchors/ceph/RESULTS.md (median of 3 runs). */
const recordedCeph: Figures = { seqWriteMiBs: 50.7, seqReadMiBs: 259, randWriteIops: 507, randReadIops: 3345, createS: 12.1, lsS: 5.1, rmS: 10.5 };

interface Figures {
  seqWriteMiBs: number;
  seqReadMiBs: number;
  randWriteIops: number;
  randReadIops: number;
  createS: number;
  lsS: number;
  rmS: number;
  /** CPU use during each fio phase (ours only). */
  cpu?: Record<'seqWrite' | 'seqRead' | 'randWrite' | 'randRead', CpuUse | undefined>;
}

function fio(dir: string, name: string, rw: string, bs: string, timed: boolean): { bwMiBs: number; iops: number; command: string; cpu?: CpuUse } {
  const args = [`--directory=${dir}`, '--filename_format=f.$jobnum', '--ioengine=psync', '--direct=1', '--numjobs=4', '--group_reporting', `--name=${name}`, `--rw=${rw}`, `--bs=${bs}`, `--size=${size}`, ...(timed ? ['--time_based', `--runtime=${runtime}`] : [])];
  const { side, cpu } = runFio(args);
  return { bwMiBs: side.bw_bytes / 2 ** 20, iops: side.iops, command: `fio ${args.join(' ')}`, ...(cpu ? { cpu } : {}) };
}

function timedShell(command: string, cwd: string): number {
  const start = performance.now();
  const r = spawnSync('sh', ['-c', command], { cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} failed: ${r.stderr}`);
  return (performance.now() - start) / 1000;
}

function measure(mount: string, label: string): Figures {
  const fioDir = join(mount, 'fio');
  mkdirSync(fioDir, { recursive: true });
  const sw = fio(fioDir, 'seqwrite', 'write', '1M', false);
  console.log(`${label} seq write 1 MiB: ${sw.bwMiBs.toFixed(1)} MiB/s   (${sw.command})`);
  const sr = fio(fioDir, 'seqread', 'read', '1M', false);
  console.log(`${label} seq read 1 MiB: ${sr.bwMiBs.toFixed(1)} MiB/s`);
  const rw = fio(fioDir, 'randwrite', 'randwrite', '4k', true);
  console.log(`${label} rand write 4 KiB: ${rw.iops.toFixed(0)} IOPS`);
  const rr = fio(fioDir, 'randread', 'randread', '4k', true);
  console.log(`${label} rand read 4 KiB: ${rr.iops.toFixed(0)} IOPS`);
  rmSync(fioDir, { recursive: true, force: true });
  const metaDir = join(mount, 'meta');
  mkdirSync(metaDir);
  const createS = timedShell(`seq -f 'f%05g' 1 ${files} | xargs touch`, metaDir);
  console.log(`${label} create ${files} files: ${createS.toFixed(2)} s   (seq -f 'f%05g' 1 ${files} | xargs touch)`);
  const lsS = timedShell('ls -l > /dev/null', metaDir);
  console.log(`${label} ls -l: ${lsS.toFixed(2)} s`);
  const rmS = timedShell(`rm -rf ${metaDir}`, mount);
  console.log(`${label} rm -rf: ${rmS.toFixed(2)} s`);
  return { seqWriteMiBs: sw.bwMiBs, seqReadMiBs: sr.bwMiBs, randWriteIops: rw.iops, randReadIops: rr.iops, createS, lsS, rmS, cpu: { seqWrite: sw.cpu, seqRead: sr.cpu, randWrite: rw.cpu, randRead: rr.cpu } };
}

function ratioLine(name: string, ours: number, theirs: number, higherIsBetter: boolean, unit: string): string {
  const ratio = higherIsBetter ? ours / theirs : theirs / ours;
  const fmt = (v: number) => v.toFixed(v < 10 ? 2 : 1).padStart(8);
  return `  ${name.padEnd(22)} shoal ${fmt(ours)} ${unit.padEnd(6)} ceph-fuse ${fmt(theirs)} ${unit.padEnd(6)} ${ratio.toFixed(2)}x ${ratio >= 1 ? 'ahead' : 'behind'}`;
}

export async function run(): Promise<void> {
  const cephMountAt = process.argv.indexOf('--ceph-mount');
  // SHOAL_BENCH_CEPH_MOUNT does the same for runs that take no arguments (the report's).
  const cephMount = cephMountAt >= 0 ? process.argv[cephMountAt + 1] : process.env['SHOAL_BENCH_CEPH_MOUNT'] || undefined;
  if (spawnSync('fio', ['--version']).status !== 0) throw new Error('fio is not installed (apt-get install fio)');
  const dir = mkdtempSync(join(process.env['SHOAL_BENCH_DIR'] ?? tmpdir(), 'shoal-bench-fs-'));
  // OSDs take any free port: a fixed base could meet a port the OS lent to an outgoing connection.
  const monPort = await freePort();
  writeFileSync(join(dir, 'shoal.conf'), clusterConfigToText({ fsid: 'b0000000-0000-4000-8000-000000000008', monitors: [{ name: 'a', address: `127.0.0.1:${monPort}` }], timeouts: { ...defaultTimeouts }, monitor: { ...defaultMonitorSettings } }));
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  const cli = new URL('../src/cli/main.js', import.meta.url).pathname;
  const up = spawn(process.execPath, [...process.execArgv, cli, 'up', '--dir', dir, '--osds', '3', '--osd-port', '0', '--no-s3', '--mount', mnt], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  up.stdout.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise((resolve) => up.once('exit', resolve));
  try {
    for (let waited = 0; !output.includes('is up'); waited += 100) {
      if (waited > 90_000 || up.exitCode !== null) throw new Error(`shoal up --mount did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`cluster: 1 monitor + 3 OSD processes on 127.0.0.1, pools of size 3, FUSE mount ${mnt}; fio psync direct=1 numjobs=4 size=${size}/job, random phases ${runtime} s; ${files} files`);
    const ours = measure(mnt, 'shoal');
    let theirs = recordedCeph;
    let source = 'ceph-fuse figures recorded in ../shared/anchors/ceph/RESULTS.md (Ceph 16.2.15, same machine; not measured in this run)';
    if (cephMount) {
      theirs = measure(cephMount, 'ceph-fuse');
      source = `ceph-fuse mount ${cephMount} measured in this run`;
    }
    const goal = '>= 1x Ceph';
    record({ benchmark: 'fs', workload: 'seq write 1 MiB x4', metric: 'MiB/s', value: ours.seqWriteMiBs, unit: 'MiB/s', higherIsBetter: true, goal, ...(cephMount ? { ceph: theirs.seqWriteMiBs } : {}), ...cpuOf({ cpu: ours.cpu?.seqWrite }) });
    record({ benchmark: 'fs', workload: 'seq read 1 MiB x4', metric: 'MiB/s', value: ours.seqReadMiBs, unit: 'MiB/s', higherIsBetter: true, goal, ...(cephMount ? { ceph: theirs.seqReadMiBs } : {}), ...cpuOf({ cpu: ours.cpu?.seqRead }) });
    record({ benchmark: 'fs', workload: 'rand write 4 KiB x4', metric: 'IOPS', value: ours.randWriteIops, unit: 'IOPS', higherIsBetter: true, goal, ...(cephMount ? { ceph: theirs.randWriteIops } : {}), ...cpuOf({ cpu: ours.cpu?.randWrite }) });
    record({ benchmark: 'fs', workload: 'rand read 4 KiB x4', metric: 'IOPS', value: ours.randReadIops, unit: 'IOPS', higherIsBetter: true, goal, ...(cephMount ? { ceph: theirs.randReadIops } : {}), ...cpuOf({ cpu: ours.cpu?.randRead }) });
    // Metadata as files per second (the anchor's times were for 10,000 files; a report run uses fewer).
    const rate = (seconds: number) => files / seconds;
    record({ benchmark: 'fs', workload: 'create empty files (xargs touch)', metric: 'files/s', value: rate(ours.createS), unit: 'files/s', higherIsBetter: true, goal, ...(cephMount ? { ceph: rate(theirs.createS) } : {}) });
    record({ benchmark: 'fs', workload: 'ls -l of a directory', metric: 'files/s', value: rate(ours.lsS), unit: 'files/s', higherIsBetter: true, goal, ...(cephMount ? { ceph: rate(theirs.lsS) } : {}) });
    record({ benchmark: 'fs', workload: 'rm -rf of a directory', metric: 'files/s', value: rate(ours.rmS), unit: 'files/s', higherIsBetter: true, goal, ...(cephMount ? { ceph: rate(theirs.rmS) } : {}) });
    console.log(`\nshoal FUSE vs ${source}:`);
    console.log(ratioLine('seq write 1 MiB', ours.seqWriteMiBs, theirs.seqWriteMiBs, true, 'MiB/s'));
    console.log(ratioLine('seq read 1 MiB', ours.seqReadMiBs, theirs.seqReadMiBs, true, 'MiB/s'));
    console.log(ratioLine('rand write 4 KiB', ours.randWriteIops, theirs.randWriteIops, true, 'IOPS'));
    console.log(ratioLine('rand read 4 KiB', ours.randReadIops, theirs.randReadIops, true, 'IOPS'));
    // The recorded times are for 10,000 files; a live ceph-fuse did the same number as Shoal.
    const scale = cephMount ? 1 : files / 10_000;
    console.log(ratioLine(`create ${files} files`, ours.createS, theirs.createS * scale, false, 's'));
    console.log(ratioLine('ls -l', ours.lsS, theirs.lsS * scale, false, 's'));
    console.log(ratioLine('rm -rf', ours.rmS, theirs.rmS * scale, false, 's'));
    const env = ['SHOAL_BENCH_FS_SIZE', 'SHOAL_BENCH_FS_RUNTIME', 'SHOAL_BENCH_FS_FILES'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]} `).join('');
    console.log(`(command: ${env}npm run bench -- fs${cephMount ? ` --ceph-mount ${cephMount}` : ''}${cephMount ? ')' : `; the recorded ceph-fuse figures used size=512M per job and 10000 files, its metadata times are scaled to ${files} files)`}`);
  } finally {
    up.kill('SIGTERM');
    await exited;
    if (readFileSync('/proc/self/mounts', 'utf8').includes(` ${mnt} `)) spawnSync('fusermount', ['-uz', mnt]);
    rmSync(dir, { recursive: true, force: true });
  }
}
