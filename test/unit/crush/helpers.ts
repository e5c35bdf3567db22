/** Shared pieces of the CRUSH tests: seeds, random maps, failure domain lookup. */
import { Random, seedFromEnv, type ClusterMap, type CrushType, type Pool } from '../../../src/index.js';
import { buildClusterMap } from '../../../src/crush/index.js';

/** The seed of a seeded test file, printed once so a failure can be replayed with SHOAL_SEED. */
export function testSeed(file: string): number {
  const seed = seedFromEnv();
  process.stdout.write(`${file}: seed=${seed} (rerun with SHOAL_SEED=${seed})\n`);
  return seed;
}

/** A random map: 2–12 hosts of 1–8 OSDs, maybe racks, random weights (some 0), random reweights and out OSDs. */
export function randomMap(random: Random, options: { outs?: boolean } = {}): ClusterMap {
  const hosts = random.int(2, 12);
  const racks = random.chance(0.4) ? random.int(1, Math.min(4, hosts)) : 0;
  const map = buildClusterMap({
    hosts,
    osdsPerHost: random.int(1, 8),
    racks,
    osdWeight: () => (random.chance(0.05) ? 0 : random.int(0x4000, 0x40000)),
  });
  if (options.outs) {
    for (const osd of map.osds) {
      const roll = random.float();
      if (roll < 0.08) osd.in = false;
      else if (roll < 0.16) osd.reweight = random.int(0, 0xffff);
      if (random.chance(0.1)) osd.up = false;
    }
  }
  return map;
}

/** The id of the ancestor bucket of `type` that holds `osd` (the OSD itself for type osd). */
export function domainOf(map: ClusterMap, osd: number, type: CrushType): number {
  if (type === 'osd') return osd;
  const parent = new Map<number, number>();
  for (const bucket of map.crush.buckets) for (const item of bucket.items) parent.set(item.id, bucket.id);
  const types = new Map(map.crush.buckets.map((b) => [b.id, b.type]));
  for (let id = parent.get(osd); id !== undefined; id = parent.get(id)) if (types.get(id) === type) return id;
  throw new Error(`osd.${osd} has no ${type} above it`);
}

export function pool(fields: Partial<Pool> & Pick<Pool, 'id' | 'pgNum' | 'rule' | 'size'>): Pool {
  return {
    name: `pool-${fields.id}`,
    type: 'replicated',
    minSize: 1,
    ecK: 0,
    ecM: 0,
    stripeUnit: 0,
    application: '',
    ...fields,
  };
}

/** Counts per key. */
export function tally(values: Iterable<number>): Map<number, number> {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}
