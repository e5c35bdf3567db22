/**
 * CRUSH placement: PG → OSDs mappings per second and the spread of PGs per OSD, on two 1000-OSD maps (10 racks ×
 * 10 hosts × 10 OSDs, and a flat 100 hosts × 10 OSDs), plus object name → PG. Speed is shown against the goal of
 * 200,000 mappings/s; the spread against the ideal of independent uniform placement (binomial standard deviation).
 */
import { cpus, loadavg } from 'node:os';
import { CRUSH_ITEM_NONE, Placement, buildClusterMap, erasureRuleId, objectToPg } from '../src/crush/index.js';
import type { ClusterMap, Pool } from '../src/protocol/index.js';

const goalPerSecond = 200_000;
/** 32768 PGs × 3 replicas over 1000 OSDs: about 98 PGs per OSD. */
const pgNum = 32_768;
const measureMs = 1500;

function pool(id: number, type: 'replicated' | 'erasure', size: number, rule: number): Pool {
  return {
    id,
    name: `bench-${id}`,
    type,
    size,
    minSize: size,
    ecK: type === 'erasure' ? size - 2 : 0,
    ecM: type === 'erasure' ? 2 : 0,
    pgNum,
    rule,
    stripeUnit: 0,
    application: '',
  };
}

function line(text: string): void {
  process.stdout.write(text + '\n');
}

/**
 * Maps every PG of the pool in passes for at least measureMs (after a warm-up pass). The machine is shared, so
 * both the median pass and the best pass are reported: the best is the closest to an idle machine.
 */
function timeMappings(placement: Placement, poolId: number): { median: number; best: number; passes: number } {
  let sink = 0;
  for (let seed = 0; seed < pgNum; seed++) sink += placement.mapPg({ pool: poolId, seed }).primary;
  const rates: number[] = [];
  const start = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - start) / 1e6 < measureMs || rates.length < 3) {
    const passStart = process.hrtime.bigint();
    for (let seed = 0; seed < pgNum; seed++) sink += placement.mapPg({ pool: poolId, seed }).primary;
    rates.push(pgNum / (Number(process.hrtime.bigint() - passStart) / 1e9));
  }
  if (sink === 0.5) line('(unreachable: keeps the loop from being optimised away)');
  rates.sort((a, b) => a - b);
  return { median: rates[Math.floor(rates.length / 2)]!, best: rates[rates.length - 1]!, passes: rates.length };
}

function rate(perSecond: number): string {
  return `${Math.round(perSecond).toLocaleString('en-US')}/s`;
}

function spread(placement: Placement, poolId: number, osdCount: number): string {
  const counts = new Float64Array(osdCount);
  let holes = 0;
  for (let seed = 0; seed < pgNum; seed++) {
    for (const osd of placement.mapPg({ pool: poolId, seed }).up) {
      if (osd === CRUSH_ITEM_NONE) holes++;
      else counts[osd]! += 1;
    }
  }
  const mean = counts.reduce((s, c) => s + c, 0) / osdCount;
  const stddev = Math.sqrt(counts.reduce((s, c) => s + (c - mean) ** 2, 0) / osdCount);
  const ideal = Math.sqrt(mean) / mean;
  let min = Infinity;
  let max = -Infinity;
  for (const c of counts) {
    min = Math.min(min, c);
    max = Math.max(max, c);
  }
  return (
    `PGs per OSD min ${min} mean ${mean.toFixed(1)} max ${max}, stddev ${((stddev / mean) * 100).toFixed(1)}% ` +
    `(binomial ideal ${(ideal * 100).toFixed(1)}%, ratio ${(stddev / mean / ideal).toFixed(2)})` +
    (holes > 0 ? `, ${holes} holes` : '')
  );
}

function bench(name: string, map: ClusterMap): void {
  map.pools.push(pool(1, 'replicated', 3, 0), pool(2, 'erasure', 6, erasureRuleId));
  const placement = new Placement(map);
  const osds = map.osds.length;
  line(`${name}: ${osds} OSDs, pg_num ${pgNum}`);
  const replicated = timeMappings(placement, 1);
  line(
    `  replicated size 3 (chooseleaf firstn host): median ${rate(replicated.median)} ` +
      `(${(1e6 / replicated.median).toFixed(2)} µs per mapping), best pass ${rate(replicated.best)}; ` +
      `${(replicated.median / goalPerSecond).toFixed(2)}× the ${goalPerSecond.toLocaleString('en-US')}/s goal ` +
      `(${replicated.passes} passes of ${pgNum} PGs)`,
  );
  line(`    ${spread(placement, 1, osds)}`);
  const erasure = timeMappings(placement, 2);
  line(
    `  erasure size 6 (chooseleaf indep host): median ${rate(erasure.median)} ` +
      `(${(1e6 / erasure.median).toFixed(2)} µs per mapping), best pass ${rate(erasure.best)}`,
  );
  line(`    ${spread(placement, 2, osds)}`);
}

function benchNames(): void {
  const p = pool(1, 'replicated', 3, 0);
  const names = Array.from({ length: 4096 }, (_, i) => `rbd_data.5f3c2a1b.${i.toString(16).padStart(16, '0')}`);
  let sink = 0;
  for (const n of names) sink += objectToPg(p, n).seed;
  let count = 0;
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  while (elapsedMs < 500) {
    for (const n of names) sink += objectToPg(p, n).seed;
    count += names.length;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  const perSecond = count / (elapsedMs / 1000);
  // Baseline: the same names through a plain JavaScript string hash, to show what the UTF-8 + lookup2 path costs.
  let baseline = 0;
  const baseStart = process.hrtime.bigint();
  let baseMs = 0;
  while (baseMs < 500) {
    for (const n of names) {
      let h = 0;
      for (let i = 0; i < n.length; i++) h = (Math.imul(h, 31) + n.charCodeAt(i)) | 0;
      sink += h & 1;
    }
    baseline += names.length;
    baseMs = Number(process.hrtime.bigint() - baseStart) / 1e6;
  }
  const basePerSecond = baseline / (baseMs / 1000);
  line(
    `object name → PG (34-byte names, hashName + stable mod): ${Math.round(perSecond).toLocaleString('en-US')}/s ` +
      `(${(perSecond / basePerSecond).toFixed(2)}× a plain 31·h+c string hash loop)`,
  );
  if (sink === 0.5) line('(unreachable)');
}

export async function run(): Promise<void> {
  line(`command: node dist/benchmarks/run.js crush   (node ${process.version}, ${cpus().length} CPUs, load average ` +
    `${loadavg().map((l) => l.toFixed(2)).join(' ')} at start; ~${measureMs} ms per figure)`);
  bench('10 racks × 10 hosts × 10 OSDs', buildClusterMap({ hosts: 100, osdsPerHost: 10, racks: 10 }));
  bench('flat 100 hosts × 10 OSDs', buildClusterMap({ hosts: 100, osdsPerHost: 10 }));
  benchNames();
}
