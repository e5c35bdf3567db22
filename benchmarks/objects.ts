/**
 * `npm run bench -- objects`: a real local cluster (`shoal up`: 1 monitor, 3 OSD processes, pool size 3) driven by
 * the object client: 4 KiB and 4 MiB writes and reads with 16 in flight. The 4 MiB write throughput is compared with
 * its limit on this machine: sequential write bandwidth of a plain file on the same disk divided by 3 (every byte is
 * written three times), measured in the same run.
 */
import { randomBytes } from 'node:crypto';
import { ObjectClient } from '../src/index.js';
import { startBenchCluster } from './lib/cluster.js';
import { closedLoop, describe, plainFileWriteMBps, warmedLoop, warmupSeconds } from './lib/stats.js';
import { cpuOf, record } from './lib/results.js';

const inFlight = 16;
const seconds = Number(process.env['SHOAL_BENCH_SECONDS'] ?? 10);

export async function run(): Promise<void> {
  const cluster = await startBenchCluster('objects', { osds: 3 });
  const dir = cluster.dir;
  try {
    const client = new ObjectClient(cluster.config);
    await client.start();
    await client.monitors.command({ poolCreate: { name: 'bench', size: 3, pgNum: 64 } });
    while (!client.map().pools.some((p) => p.name === 'bench')) await new Promise((r) => setTimeout(r, 50));
    // Warm up: one write into every PG, so peering of the new pool is not timed.
    await closedLoop(inFlight, { count: 512 }, async (i) => (await client.put('bench', `warm-${i}`, Buffer.from('w')), 1));

    const small = randomBytes(4096);
    const large = randomBytes(4 * 1024 * 1024);
    const smallObjects = 2000;
    const largeObjects = 48;
    console.log(`cluster: 1 monitor + 3 OSD processes on 127.0.0.1, pool size 3, 64 PGs; ${inFlight} in flight; ${seconds} s per phase after ${warmupSeconds} s of warm-up; data in ${dir}`);
    const w4k = await warmedLoop(inFlight, { seconds }, async (i) => (await client.put('bench', `s-${i % smallObjects}`, small), small.length));
    console.log(describe('write 4 KiB', w4k));
    const written4k = Math.min(w4k.ops, smallObjects);
    const r4k = await warmedLoop(inFlight, { seconds }, async (i) => (await client.get('bench', `s-${i % written4k}`)).length);
    console.log(describe('read 4 KiB', r4k));
    const w4m = await warmedLoop(inFlight, { seconds }, async (i) => (await client.put('bench', `l-${i % largeObjects}`, large), large.length));
    console.log(describe('write 4 MiB', w4m));
    const written4m = Math.min(w4m.ops, largeObjects);
    const r4m = await warmedLoop(inFlight, { seconds }, async (i) => (await client.get('bench', `l-${i % written4m}`)).length);
    console.log(describe('read 4 MiB', r4m));
    await client.stop();

    const fileDurable = plainFileWriteMBps(dir, 1024 * 1024 * 1024, 4 * 1024 * 1024, true);
    const fileBuffered = plainFileWriteMBps(dir, 1024 * 1024 * 1024, 4 * 1024 * 1024, false);
    const limit = fileDurable / 3;
    const w4mMBps = w4m.bytes / w4m.seconds / 1e6;
    console.log(`baseline: plain file sequential write, 4 MiB chunks, same disk: ${fileDurable.toFixed(0)} MB/s with fdatasync per chunk, ${fileBuffered.toFixed(0)} MB/s with one fsync at the end`);
    console.log(`4 MiB write throughput / limit (durable plain-file bandwidth / 3 = ${limit.toFixed(0)} MB/s): ${(w4mMBps / limit).toFixed(2)} (goal >= 0.50)`);
    console.log(`4 MiB write throughput / (buffered plain-file bandwidth / 3 = ${(fileBuffered / 3).toFixed(0)} MB/s): ${(w4mMBps / (fileBuffered / 3)).toFixed(2)}`);
    const cephRados4k = 761;
    console.log(`4 KiB writes: ${(w4k.ops / w4k.seconds).toFixed(0)} ops/s = ${(w4k.ops / w4k.seconds / cephRados4k).toFixed(2)}x Ceph's rados bench -b 4096 -t 16 (${cephRados4k} ops/s, ../shared/anchors/ceph/RESULTS.md, same machine; goal >= 2x)`);
    const rate = (r: { ops: number; seconds: number }) => r.ops / r.seconds;
    const mbps = (r: { bytes: number; seconds: number }) => r.bytes / r.seconds / 1e6;
    record({ benchmark: 'objects', workload: 'write 4 KiB c16', metric: 'ops/s', value: rate(w4k), unit: 'ops/s', higherIsBetter: true, goal: '>= 2x Ceph', ...cpuOf(w4k) });
    record({ benchmark: 'objects', workload: 'read 4 KiB c16', metric: 'ops/s', value: rate(r4k), unit: 'ops/s', higherIsBetter: true, ...cpuOf(r4k) });
    record({ benchmark: 'objects', workload: 'write 4 MiB c16', metric: 'MB/s', value: w4mMBps, unit: 'MB/s', higherIsBetter: true, limit, limitName: 'plain file seq write, fdatasync per 4 MiB, / 3', goal: '>= 0.5x limit', ...cpuOf(w4m) });
    record({ benchmark: 'objects', workload: 'read 4 MiB c16', metric: 'MB/s', value: mbps(r4m), unit: 'MB/s', higherIsBetter: true, ...cpuOf(r4m) });
    console.log('command: npm run bench -- objects   (SHOAL_BENCH_SECONDS sets the phase length)');
  } finally {
    await cluster.stop();
  }
}
