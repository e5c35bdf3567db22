/**
 * `npm run bench -- block`: a `shoal up` cluster (1 monitor, 3 OSD processes, pool size 3) with the NBD gateway,
 * driven by fio's nbd engine: 1 MiB sequential write then read at iodepth 4 (the write fills a 512 MiB image), then
 * 4 KiB random write and read at iodepth 16. IOPS, MB/s and p99 completion latency per phase, compared with Ceph
 * RBD on this machine: the figures recorded in ../shared/anchors/ceph/RESULTS.md (fio's rbd engine), or, when a
 * Ceph cluster is up and `SHOAL_BENCH_CEPH_RBD=POOL/IMAGE` (or `--ceph-rbd=POOL/IMAGE`) names an image, the same
 * four fio phases on it in this run (`SHOAL_BENCH_CEPH_FIO_ARGS` / `--ceph-fio-args="…"` add fio options, e.g.
 * `--clientname=admin`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ObjectClient, clusterConfigToText, dataObject, defaultMonitorSettings, defaultTimeouts, parseClusterConfig } from '../src/index.js';
import { freePort } from './lib/ports.js';
import { percentile, warmedLoop } from './lib/stats.js';
import { cpuOf, record } from './lib/results.js';
import type { CpuUse } from './lib/cpu.js';
import { runFio } from './lib/fio.js';

const seconds = Number(process.env['SHOAL_BENCH_SECONDS'] ?? 10);
const imageBytes = 512 * 2 ** 20;

interface Phase {
  name: string;
  rw: 'write' | 'read' | 'randwrite' | 'randread';
  bs: string;
  iodepth: number;
  /** Run over the whole image once instead of for `seconds` (the sequential write also fills the image). */
  once?: boolean;
}

const phases: Phase[] = [
  { name: 'seq write 1 MiB qd4', rw: 'write', bs: '1M', iodepth: 4, once: true },
  { name: 'seq read 1 MiB qd4', rw: 'read', bs: '1M', iodepth: 4 },
  { name: 'rand write 4 KiB qd16', rw: 'randwrite', bs: '4k', iodepth: 16 },
  { name: 'rand read 4 KiB qd16', rw: 'randread', bs: '4k', iodepth: 16 },
];

/** Ceph RBD with fio's rbd engine on this machine (../shared/anchors/ceph/RESULTS.md, median of 3). */
const recordedCeph: Record<string, { iops: number; mibps: number; p99Ms?: number }> = {
  'seq write 1 MiB qd4': { iops: 186, mibps: 186 },
  'seq read 1 MiB qd4': { iops: 538, mibps: 538 },
  'rand write 4 KiB qd16': { iops: 1434, mibps: (1434 * 4) / 1024, p99Ms: 89 },
  'rand read 4 KiB qd16': { iops: 4983, mibps: (4983 * 4) / 1024, p99Ms: 17 },
};

interface Figures {
  iops: number;
  mibps: number;
  p99Ms: number;
  cpu?: CpuUse;
}

function option(name: string, env: string): string | undefined {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  return flag ? flag.slice(name.length + 3) : process.env[env] || undefined;
}

function fio(args: string[], phase: Phase): Figures {
  const full = [
    '--name=bench', `--rw=${phase.rw}`, `--bs=${phase.bs}`, `--iodepth=${phase.iodepth}`, `--size=${imageBytes}`,
    ...(phase.once ? ['--runtime=120'] : ['--time_based', `--runtime=${seconds}`]),
    ...args,
  ];
  const { side, cpu } = runFio(full, { timeoutMs: 300_000 });
  return { iops: side.iops, mibps: side.bw_bytes / 2 ** 20, p99Ms: (side.clat_ns.percentile?.['99.000000'] ?? 0) / 1e6, ...(cpu ? { cpu } : {}) };
}

function line(name: string, f: Figures): string {
  return `${name.padEnd(24)} ${f.iops.toFixed(0).padStart(7)} IOPS  ${f.mibps.toFixed(1).padStart(7)} MiB/s  p99 ${f.p99Ms.toFixed(1).padStart(6)} ms`;
}

export async function run(): Promise<void> {
  if (spawnSync('sh', ['-c', 'command -v fio']).status !== 0) {
    console.log('skipped: fio is not installed (apt-get install fio)');
    return;
  }
  const dir = mkdtempSync(join(process.env['SHOAL_BENCH_DIR'] ?? tmpdir(), 'shoal-bench-block-'));
  // OSDs take any free port: a fixed base could meet a port the OS lent to an outgoing connection.
  const monPort = await freePort();
  const nbdPort = await freePort();
  const conf = join(dir, 'shoal.conf');
  writeFileSync(conf, clusterConfigToText({ fsid: 'b0000000-0000-4000-8000-000000000007', monitors: [{ name: 'a', address: `127.0.0.1:${monPort}` }], timeouts: { ...defaultTimeouts }, monitor: { ...defaultMonitorSettings } }));
  const cli = new URL('../src/cli/main.js', import.meta.url).pathname;
  const up = spawn(process.execPath, [...process.execArgv, cli, 'up', '--dir', dir, '--osds', '3', '--osd-port', '0', '--no-s3', '--nbd-port', String(nbdPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  up.stdout.on('data', (d: Buffer) => (output += d.toString()));
  try {
    for (let waited = 0; !output.includes('is up'); waited += 100) {
      if (waited > 60_000 || up.exitCode !== null) throw new Error(`shoal up did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const create = spawnSync(process.execPath, [cli, '--conf', conf, 'image', 'create', 'data/bench', '--size', String(imageBytes)], { encoding: 'utf8' });
    if (create.status !== 0) throw new Error(`image create failed: ${create.stderr}`);
    console.log(`cluster: 1 monitor + 3 OSD processes + NBD gateway on 127.0.0.1, pool "data" size 3; image data/bench ${imageBytes / 2 ** 20} MiB, 4 MiB objects; fio ${spawnSync('fio', ['--version'], { encoding: 'utf8' }).stdout.trim()} nbd engine, 1 job; ${seconds} s per timed phase`);
    // The NBD layer's own cost: right after each 4 KiB phase, the same random I/O sent straight to the image's data
    // objects by the object client (what the gateway does per request), 16 in flight.
    const client = new ObjectClient(parseClusterConfig(readFileSync(conf, 'utf8')));
    await client.start();
    const objects = imageBytes / (4 * 2 ** 20);
    const block = randomBytes(4096);
    const where = () => ({ name: dataObject('bench', Math.floor(Math.random() * objects)), offset: Math.floor(Math.random() * 1024) * 4096 });
    const shoal = new Map<string, Figures>();
    const direct = new Map<string, Figures>();
    for (const phase of phases) {
      const f = fio(['--ioengine=nbd', `--uri=nbd://127.0.0.1:${nbdPort}/data/bench`], phase);
      shoal.set(phase.name, f);
      console.log(`shoal nbd  ${line(phase.name, f)}`);
      if (phase.bs !== '4k') continue;
      const result = await warmedLoop(16, { seconds }, async () => {
        const at = where();
        if (phase.rw === 'randwrite') await client.write('data', at.name, at.offset, block);
        else await client.get('data', at.name, { offset: at.offset, length: 4096 });
        return 4096;
      });
      const d = { iops: result.ops / result.seconds, mibps: result.bytes / result.seconds / 2 ** 20, p99Ms: percentile(result.latenciesMs, 99) };
      direct.set(phase.name, d);
      console.log(`objects    ${line(phase.name, d)}   (object client straight to the data objects)`);
    }
    await client.stop();
    for (const [name, d] of direct) {
      const ours = shoal.get(name) as Figures;
      console.log(`${name.padEnd(24)} NBD / object client: ${(ours.iops / d.iops).toFixed(2)} (the NBD layer's own cost, one more process hop; 1.00 = none)`);
    }
    const cephImage = option('ceph-rbd', 'SHOAL_BENCH_CEPH_RBD');
    let ceph: Map<string, Figures> | undefined;
    if (cephImage) {
      const [pool, image] = cephImage.split('/');
      const extra = (option('ceph-fio-args', 'SHOAL_BENCH_CEPH_FIO_ARGS') ?? '').split(/\s+/).filter(Boolean);
      ceph = new Map();
      for (const phase of phases) {
        const f = fio(['--ioengine=rbd', `--pool=${pool}`, `--rbdname=${image}`, ...extra], phase);
        ceph.set(phase.name, f);
        console.log(`ceph rbd   ${line(phase.name, f)}`);
      }
    }
    console.log(ceph ? `baseline: Ceph RBD image ${cephImage} measured in this run (fio rbd engine, same phases)` : 'baseline: Ceph RBD as recorded in ../shared/anchors/ceph/RESULTS.md (fio rbd engine, 4 GiB prefilled image, same machine; not measured in this run — set SHOAL_BENCH_CEPH_RBD=POOL/IMAGE with the anchor cluster up to measure it)');
    for (const phase of phases) {
      const ours = shoal.get(phase.name) as Figures;
      const base = ceph?.get(phase.name) ?? recordedCeph[phase.name];
      const measured = ceph?.get(phase.name);
      const small = phase.bs === '4k';
      record({ benchmark: 'block', workload: phase.name, metric: small ? 'IOPS' : 'MiB/s', value: small ? ours.iops : ours.mibps, unit: small ? 'IOPS' : 'MiB/s', higherIsBetter: true, ...(measured ? { ceph: small ? measured.iops : measured.mibps } : {}), ...(small ? { goal: '>= 2x Ceph' } : {}), ...cpuOf(ours) });
      if (!base) continue;
      const ratio = phase.bs === '4k' ? `${(ours.iops / base.iops).toFixed(2)}x its IOPS (${ours.iops.toFixed(0)} / ${base.iops.toFixed(0)})` : `${(ours.mibps / base.mibps).toFixed(2)}x its MiB/s (${ours.mibps.toFixed(0)} / ${base.mibps.toFixed(0)})`;
      console.log(`${phase.name.padEnd(24)} ${ratio}${phase.bs === '4k' ? '; goal >= 2x' : ''}${base.p99Ms ? `; p99 ${ours.p99Ms.toFixed(1)} ms vs ${base.p99Ms} ms` : ''}`);
    }
    console.log('command: npm run bench -- block   (SHOAL_BENCH_SECONDS sets the phase length; SHOAL_BENCH_CEPH_RBD=POOL/IMAGE adds Ceph in the same run)');
  } finally {
    up.kill('SIGTERM');
    await new Promise((r) => up.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}
