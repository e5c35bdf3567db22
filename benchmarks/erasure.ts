/**
 * `npm run bench -- erasure`:
 * 1. Reed-Solomon encode and decode throughput per (k,m) over 4 MiB of data, beside memcpy (Buffer.copy of the
 *    same 4 MiB) measured in the same run. Decode loses the first m data shards (the worst case: every lost byte is
 *    rebuilt) and counts the object's data bytes per second, as encode does.
 * 2. On one `shoal up` cluster of 6 OSD processes: 4 MiB object writes (8 in flight) to an EC 4+2 pool beside a
 *    size-3 replicated pool (goal: EC >= 1.5x, as it writes 1.5x the data instead of 3x). Phases alternate
 *    replicated, EC, replicated, EC so drift on a shared machine hits both alike.
 */
import { Random, bufferPool } from '../src/common/index.js';
import { Codec } from '../src/erasure/index.js';
import { ObjectClient, wire } from '../src/index.js';
import { startBenchCluster } from './lib/cluster.js';
import { closedLoop, describe, warmedLoop, type LoadResult } from './lib/stats.js';
import { cpuOf, record } from './lib/results.js';

const MiB = 1024 * 1024;
const dataBytes = 4 * MiB;
const profiles: [number, number][] = [[2, 1], [4, 2], [6, 3], [8, 3], [10, 4]];

/** MB/s of `fn` over `bytes` per call, repeated for at least `minMs` after one warm-up call. */
function measure(bytes: number, fn: () => void, minMs = 600): number {
  fn();
  let calls = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    fn();
    calls++;
    elapsed = performance.now() - started;
  }
  return (bytes * calls) / MiB / (elapsed / 1000);
}

export function codecFigures(): void {
  const random = new Random(9);
  const source = Buffer.from(random.bytes(dataBytes));
  const target = Buffer.alloc(dataBytes);
  const memcpy = measure(dataBytes, () => source.copy(target));
  process.stdout.write(`npm run bench -- erasure: ${dataBytes / MiB} MiB of data per call, one core\n`);
  process.stdout.write(`${'memcpy (Buffer.copy)'.padEnd(24)} ${memcpy.toFixed(0).padStart(7)} MB/s\n`);
  for (const [k, m] of profiles) {
    const codec = new Codec(k, m);
    const size = Math.floor(dataBytes / k);
    const data = Array.from({ length: k }, (_, i) => source.subarray(i * size, (i + 1) * size));
    const parity = codec.encode(data);
    const bytes = size * k;
    // The parity's buffer goes back to the pool, as the OSD gives its shards' back once a write has settled (kept, each
    // call would pay a fresh buffer's page faults).
    const encode = measure(bytes, () => bufferPool.release(codec.encode(data)[0] as Uint8Array));
    const lossy = [...data, ...parity].map((s, i) => (i < m ? undefined : s));
    const decode = measure(bytes, () => codec.reconstruct(lossy));
    record({ benchmark: 'erasure', workload: `${k}+${m} encode 4 MiB`, metric: 'MiB/s', value: encode, unit: 'MiB/s', higherIsBetter: true, limit: memcpy, limitName: 'memcpy (Buffer.copy), one core' });
    record({ benchmark: 'erasure', workload: `${k}+${m} decode 4 MiB, ${m} lost`, metric: 'MiB/s', value: decode, unit: 'MiB/s', higherIsBetter: true, limit: memcpy, limitName: 'memcpy (Buffer.copy), one core' });
    process.stdout.write(
      `${`${k}+${m} encode`.padEnd(24)} ${encode.toFixed(0).padStart(7)} MB/s  ${(encode / memcpy).toFixed(3)}x memcpy\n` +
        `${`${k}+${m} decode (${m} data lost)`.padEnd(24)} ${decode.toFixed(0).padStart(7)} MB/s  ${(decode / memcpy).toFixed(3)}x memcpy\n`,
    );
  }
}

const seconds = Number(process.env['SHOAL_BENCH_SECONDS'] ?? 10);
const inFlight = 8;

export async function clusterFigures(): Promise<void> {
  const cluster = await startBenchCluster('erasure', { osds: 6 });
  try {
    const client = new ObjectClient(cluster.config);
    await client.start();
    await client.monitors.command({ poolCreate: { name: 'rep', size: 3, pgNum: 32 } });
    await client.monitors.command({ poolCreate: { name: 'ec', type: wire.PoolType.POOL_TYPE_ERASURE, ecK: 4, ecM: 2, stripeUnit: 64 * 1024, pgNum: 32 } });
    while (client.map().pools.length < 2) await new Promise((r) => setTimeout(r, 50));
    // Warm up: one write into every PG of both pools, so peering is not timed.
    for (const pool of ['rep', 'ec']) await closedLoop(inFlight, { count: 256 }, async (i) => (await client.put(pool, `warm-${i}`, Buffer.from('w')), 1));
    const large = Buffer.from(new Random(5).bytes(4 * MiB));
    const objects = 32;
    process.stdout.write(`cluster: 1 monitor + 6 OSD processes on 127.0.0.1 (one host each); pools rep (size 3, 32 PGs) and ec (4+2, stripe unit 64 KiB, 32 PGs); 4 MiB writes, ${inFlight} in flight, 4 phases of ${seconds / 2} s; data in ${cluster.dir}\n`);
    const results: Record<string, LoadResult[]> = { rep: [], ec: [] };
    for (const [phase, pool] of ['rep', 'ec', 'rep', 'ec'].entries()) {
      const write = async (i: number) => (await client.put(pool, `l-${i % objects}`, large), large.length);
      // Each pool's first phase is warmed up (its code paths differ: encoding, shard messages).
      const r = phase < 2 ? await warmedLoop(inFlight, { seconds: seconds / 2 }, write) : await closedLoop(inFlight, { seconds: seconds / 2 }, write);
      results[pool]?.push(r);
      process.stdout.write(`${describe(`write 4 MiB to ${pool}`, r)}\n`);
    }
    await client.stop();
    const mbps = (rs: LoadResult[]) => rs.reduce((n, r) => n + r.bytes, 0) / 1e6 / rs.reduce((n, r) => n + r.seconds, 0);
    const rep = mbps(results['rep'] ?? []);
    const ec = mbps(results['ec'] ?? []);
    process.stdout.write(`4 MiB writes: EC 4+2 ${ec.toFixed(1)} MB/s, replicated size 3 ${rep.toFixed(1)} MB/s: EC = ${(ec / rep).toFixed(2)}x replicated (goal >= 1.5x)\n`);
    const lastEc = results['ec']?.at(-1) ?? {};
    record({ benchmark: 'erasure', workload: 'write 4 MiB c8, EC 4+2 pool', metric: 'MB/s', value: ec, unit: 'MB/s', higherIsBetter: true, ...cpuOf(lastEc) });
    record({ benchmark: 'erasure', workload: 'write 4 MiB c8, replicated size 3 pool', metric: 'MB/s', value: rep, unit: 'MB/s', higherIsBetter: true, ...cpuOf(results['rep']?.at(-1) ?? {}) });
    record({ benchmark: 'erasure', workload: 'write 4 MiB c8, EC 4+2 / replicated', metric: 'ratio', value: ec / rep, unit: 'x', higherIsBetter: true, goal: '>= 1.5x', ...cpuOf(lastEc) });
  } finally {
    await cluster.stop();
  }
}

export async function run(): Promise<void> {
  codecFigures();
  await clusterFigures();
  process.stdout.write('command: npm run bench -- erasure   (SHOAL_BENCH_SECONDS sets the cluster phase length)\n');
}
