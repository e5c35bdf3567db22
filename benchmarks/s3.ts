/**
 * `npm run bench -- s3`: a real local cluster (`shoal up`: 1 monitor, 3 OSD processes, the S3 gateway; pools of size
 * 3) driven over HTTP by the S3 load generator (lib/s3-load.ts, also `shoal bench s3`), each figure printed next to
 * Ceph radosgw's on this machine (../shared/anchors/ceph/RESULTS.md, s3bench, size-3 pools) as a ratio.
 * Goals: >= 2x radosgw's ops/s at 4 KiB, >= 1.5x its MB/s at 4 MiB.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterConfigToText, defaultMonitorSettings, defaultTimeouts } from '../src/index.js';
import { runS3Load, type S3PhaseResult } from './lib/s3-load.js';
import { freePort } from './lib/ports.js';
import { cpuOf, record } from './lib/results.js';

const seconds = Number(process.env['SHOAL_BENCH_SECONDS'] ?? 10);
/** Keys of the LIST phase; 0 skips it (its 10,000 creations take most of the run). */
const listKeys = Number(process.env['SHOAL_BENCH_S3_LIST_KEYS'] ?? 10_000);

/** radosgw (Ceph Pacific, beast) on this machine, from ../shared/anchors/ceph/RESULTS.md. */
const radosgw: { phase: string; unit: 'ops/s' | 'MB/s'; value: number; goal?: number }[] = [
  { phase: 'PUT 4 KiB c32', unit: 'ops/s', value: 102, goal: 2 },
  { phase: 'GET 4 KiB c32', unit: 'ops/s', value: 351, goal: 2 },
  { phase: 'DELETE 4 KiB c32', unit: 'ops/s', value: 145, goal: 2 },
  { phase: 'PUT 4 MiB c8', unit: 'MB/s', value: 114, goal: 1.5 },
  { phase: 'GET 4 MiB c8', unit: 'MB/s', value: 270, goal: 1.5 },
  { phase: 'DELETE 4 MiB c8', unit: 'ops/s', value: 107 },
];
const radosgwListSeconds = 0.67;

function figure(r: S3PhaseResult, unit: 'ops/s' | 'MB/s'): number {
  return unit === 'ops/s' ? r.ops / r.seconds : r.bytes / r.seconds / 1e6;
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(process.env['SHOAL_BENCH_DIR'] ?? tmpdir(), 'shoal-bench-s3-'));
  // OSDs take any free port: a fixed base could meet a port the OS lent to an outgoing connection.
  const monPort = await freePort();
  const s3Port = await freePort();
  writeFileSync(join(dir, 'shoal.conf'), clusterConfigToText({ fsid: 'b0000000-0000-4000-8000-000000000002', monitors: [{ name: 'a', address: `127.0.0.1:${monPort}` }], timeouts: { ...defaultTimeouts }, monitor: { ...defaultMonitorSettings } }));
  const cli = new URL('../src/cli/main.js', import.meta.url).pathname;
  const up = spawn(process.execPath, [...process.execArgv, cli, 'up', '--dir', dir, '--osds', '3', '--osd-port', '0', '--s3-port', String(s3Port), '--no-pool', '--no-nbd'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  up.stdout.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise((r) => up.once('exit', r));
  try {
    for (let waited = 0; !output.includes('is up'); waited += 100) {
      if (waited > 90_000 || up.exitCode !== null) throw new Error(`shoal up did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const keys = JSON.parse(readFileSync(join(dir, 's3-admin.json'), 'utf8')) as { accessKey: string; secretKey: string };
    const endpoint = `http://127.0.0.1:${s3Port}`;
    console.log(`cluster: 1 monitor + 3 OSD processes + the S3 gateway on ${endpoint}, pools of size 3; ${seconds} s per PUT/GET phase; data in ${dir}`);
    const report = await runS3Load({ endpoint, accessKey: keys.accessKey, secretKey: keys.secretKey, region: 'us-east-1', seconds, listKeys, print: (line) => console.log(line) });

    console.log("against Ceph radosgw on this machine (s3bench, size-3 pools; ../shared/anchors/ceph/RESULTS.md):");
    for (const anchor of radosgw) {
      const r = report.phases.find((p) => p.name === anchor.phase);
      if (!r) continue;
      const ours = figure(r, anchor.unit);
      const ratio = ours / anchor.value;
      if (!r.errors) record({ benchmark: 's3', workload: anchor.phase, metric: anchor.unit, value: ours, unit: anchor.unit, higherIsBetter: true, ...(anchor.goal ? { goal: `>= ${anchor.goal}x Ceph` } : {}), ...cpuOf(r) });
      const goal = anchor.goal === undefined ? '' : `  (goal >= ${anchor.goal}x: ${ratio >= anchor.goal ? 'met' : 'NOT met'})`;
      console.log(`  ${anchor.phase.padEnd(18)} ${ours.toFixed(anchor.unit === 'MB/s' ? 1 : 0).padStart(8)} ${anchor.unit} vs radosgw ${anchor.value} ${anchor.unit} = ${ratio.toFixed(2)}x${goal}${r.errors ? `  [${r.errors} errors]` : ''}`);
    }
    if (report.list && report.list.seconds.length === 0) console.log(`  ${'LIST 10000 keys'.padEnd(18)}      n/a   vs radosgw ${radosgwListSeconds} s  [${report.list.errors} errors]`);
    else if (report.list) {
      const ratio = radosgwListSeconds / report.list.medianSeconds;
      if (!report.list.errors) record({ benchmark: 's3', workload: `LIST ${report.list.keys} keys`, metric: 'seconds', value: report.list.medianSeconds, unit: 's', higherIsBetter: false });
      console.log(`  ${`LIST ${report.list.keys} keys`.padEnd(18)} ${report.list.medianSeconds.toFixed(2).padStart(8)} s     vs radosgw ${radosgwListSeconds} s = ${ratio.toFixed(2)}x as fast${report.list.errors ? `  [${report.list.errors} errors]` : ''}`);
    }
    if (report.errors > 0 || report.cleanupErrors.length > 0) {
      // The temp dir goes away below: show the gateway's own lines about the failures first.
      const failures = readFileSync(join(dir, 's3.log'), 'utf8').split('\n').filter((l) => /status[":= ]+[45]\d\d|error/i.test(l));
      console.log(`${report.errors} requests FAILED (figures with errors are not valid); ${failures.length} failure lines in s3.log, the first 10:`);
      for (const line of failures.slice(0, 10)) console.log(`  ${line.slice(0, 400)}`);
    }
    console.log('command: npm run bench -- s3   (SHOAL_BENCH_SECONDS sets the phase length, SHOAL_BENCH_S3_LIST_KEYS=0 skips LIST; `shoal bench s3 --endpoint URL --access-key K --secret-key S` runs the same load on any endpoint)');
  } finally {
    up.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}
