/**
 * `npm run bench -- recovery`: what recovery costs clients. A `shoal up` cluster of 1 monitor and 4 OSD processes, a
 * pool of size 3 loaded with 64 KiB objects; 4 KiB reads and writes (8 + 8 in flight) first on the idle cluster, then
 * while osd.3 is marked out and its PGs are backfilled onto the others. Prints p50/p99 of both against idle (goal:
 * client p99 within 3× of idle) and the recovery throughput (object copies and MB per second, from the cluster's own
 * PG reports), with the command that produced them.
 */
import { randomBytes } from 'node:crypto';
import { ObjectClient, wire } from '../src/index.js';
import { pgRows, recoverySummary } from '../src/cli/pgs.js';
import { startBenchCluster } from './lib/cluster.js';
import { closedLoop, percentile, type LoadResult } from './lib/stats.js';
import { cpuOf, record } from './lib/results.js';

const loadObjects = Number(process.env['SHOAL_BENCH_RECOVERY_OBJECTS'] ?? 3000);
const objectBytes = 64 * 1024;
const hotObjects = 1000;
const idleSeconds = Number(process.env['SHOAL_BENCH_SECONDS'] ?? 10);
const recoverySecondsMax = 180;

interface Mixed {
  reads: LoadResult;
  writes: LoadResult;
}

async function mixedLoad(client: ObjectClient, limits: { seconds?: number; until?: () => boolean }): Promise<Mixed> {
  const small = randomBytes(4096);
  const bounds = { seconds: limits.seconds ?? recoverySecondsMax, ...(limits.until ? { until: limits.until } : {}) };
  const [reads, writes] = await Promise.all([
    closedLoop(8, bounds, async (i) => (await client.get('bench', `hot-${(i * 7919) % hotObjects}`)).length),
    closedLoop(8, bounds, async (i) => (await client.put('bench', `hot-${(i * 104_729) % hotObjects}`, small), small.length)),
  ]);
  return { reads, writes };
}

function line(name: string, r: LoadResult, idle?: LoadResult): string {
  const p50 = percentile(r.latenciesMs, 50);
  const p99 = percentile(r.latenciesMs, 99);
  const vs = idle ? `   p99 ${(p99 / percentile(idle.latenciesMs, 99)).toFixed(2)}x idle` : '';
  return `${name.padEnd(30)} ${(r.ops / r.seconds).toFixed(0).padStart(7)} ops/s  p50 ${p50.toFixed(2).padStart(7)} ms  p99 ${p99.toFixed(2).padStart(7)} ms${vs}`;
}

export async function run(): Promise<void> {
  const cluster = await startBenchCluster('recovery', { osds: 4 });
  const client = new ObjectClient(cluster.config, { opTimeoutMs: 60_000 });
  try {
    await client.start();
    await client.monitors.command({ poolCreate: { name: 'bench', size: 3, pgNum: 64 } });
    while (!client.map().pools.some((p) => p.name === 'bench')) await new Promise((r) => setTimeout(r, 50));
    const data = randomBytes(objectBytes);
    await closedLoop(16, { count: loadObjects }, async (i) => (await client.put('bench', `load-${i}`, data), data.length));
    await closedLoop(16, { count: hotObjects }, async (i) => (await client.put('bench', `hot-${i}`, data.subarray(0, 4096)), 4096));
    console.log(`cluster: 1 monitor + 4 OSD processes on 127.0.0.1, pool size 3, 64 PGs, ${loadObjects} objects of 64 KiB + ${hotObjects} of 4 KiB; data in ${cluster.dir}`);

    const idle = await mixedLoad(client, { seconds: idleSeconds });
    console.log(line('idle: read 4 KiB (8 in flight)', idle.reads));
    console.log(line('idle: write 4 KiB (8 in flight)', idle.writes));

    // Recovery: osd.3 goes out, its PG copies are rebuilt on the other three.
    let summary = { degraded: 0, misplaced: 0, recovered: 0, perSec: 0 };
    let clean = false;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const [map, stats] = await Promise.all([client.monitors.getMap(), client.monitors.stats()]).catch(() => [undefined, [] as wire.OsdStats.$Properties[]] as const);
        if (map) {
          const rows = pgRows(map, stats, 'bench');
          const s = recoverySummary(map, stats, rows);
          summary = { ...s, recovered: Math.max(summary.recovered, s.recovered) };
          clean = rows.every((r) => r.state === 'active+clean') && Number(stats.find((o) => o.id === 3)?.objects ?? 0) === 0;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const started = performance.now();
    await client.monitors.command({ osdOut: { ids: [3], reason: 'bench' } });
    await new Promise((r) => setTimeout(r, 500));
    const during = await mixedLoad(client, { until: () => clean });
    const recoveryMs = performance.now() - started;
    polling = false;
    await poll;
    console.log(line('recovering: read 4 KiB', during.reads, idle.reads));
    console.log(line('recovering: write 4 KiB', during.writes, idle.writes));
    const moved = summary.recovered;
    console.log(
      `recovery: osd.3 out, ${moved} object copies rebuilt in ${(recoveryMs / 1000).toFixed(1)} s = ${((moved * 1000) / recoveryMs).toFixed(0)} copies/s, ~${((moved * objectBytes) / recoveryMs / 1000).toFixed(1)} MB/s${clean ? '' : ' (not finished: stopped after ' + recoverySecondsMax + ' s)'}`,
    );
    const worst = Math.max(percentile(during.reads.latenciesMs, 99) / percentile(idle.reads.latenciesMs, 99), percentile(during.writes.latenciesMs, 99) / percentile(idle.writes.latenciesMs, 99));
    console.log(`client p99 during recovery / idle: ${worst.toFixed(2)}x (goal <= 3x)`);
    if (clean) record({ benchmark: 'recovery', workload: 'backfill after osd out, 64 KiB objects', metric: 'MB/s', value: (moved * objectBytes) / recoveryMs / 1000, unit: 'MB/s', higherIsBetter: true });
    record({ benchmark: 'recovery', workload: 'client 4 KiB p99 during recovery / idle', metric: 'ratio', value: worst, unit: 'x', higherIsBetter: false, goal: '<= 3x', ...cpuOf(during.writes) });
    console.log('command: npm run bench -- recovery   (SHOAL_BENCH_SECONDS sets the idle phase, SHOAL_BENCH_RECOVERY_OBJECTS the load)');
  } finally {
    await client.stop().catch(() => {});
    await cluster.stop();
  }
}
