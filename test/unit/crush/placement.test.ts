import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Random, StorageError } from '../../../src/index.js';
import {
  CRUSH_ITEM_NONE,
  Placement,
  buildClusterMap,
  erasureRuleId,
  hash2,
  mapObject,
  objectToPg,
  parsePgId,
  pgIdToString,
  pgNumMask,
  pgPlacementSeed,
  placementFor,
  replicatedRuleId,
  stableMod,
} from '../../../src/crush/index.js';
import { pool, randomMap, testSeed } from './helpers.js';

const seed = testSeed('crush/placement');

test('pgNumMask: next power of two minus one', () => {
  const cases: [number, number][] = [[1, 0], [2, 1], [3, 3], [4, 3], [5, 7], [64, 63], [65, 127], [1 << 24, (1 << 24) - 1]];
  for (const [pgNum, mask] of cases) assert.equal(pgNumMask(pgNum), mask, `pg_num ${pgNum}`);
  for (const bad of [0, -1, 1.5, (1 << 24) + 1, NaN]) {
    assert.throws(() => pgNumMask(bad), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT');
  }
});

test('stable mod: always below pg_num; raising pg_num from 2^k to 2^k + j only splits PGs', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 12 }), fc.nat(), fc.integer({ min: 0, max: 0xffff_ffff }), (k, jSeed, x) => {
      const old = 2 ** k;
      const j = 1 + (jSeed % old);
      const grown = old + j;
      const before = stableMod(x, old, pgNumMask(old));
      const after = stableMod(x, grown, pgNumMask(grown));
      assert.ok(before < old && after < grown, `seed ${seed}`);
      assert.ok(after === before || after === before + old, `seed ${seed}: ${x}: ${before} -> ${after}`);
      // Only PGs below j split (their children are j..2^k+j-1).
      if (after !== before) assert.ok(before < j, `seed ${seed}`);
    }),
    { seed, numRuns: 3000 },
  );
});

test('stable mod: growing pg_num one step at a time only ever splits, and spreads objects evenly at powers of two', () => {
  const names = Array.from({ length: 4000 }, (_, i) => `obj-${i}`);
  let previous = names.map((n) => objectToPg(pool({ id: 1, pgNum: 8, rule: 0, size: 3 }), n).seed);
  for (let pgNum = 9; pgNum <= 32; pgNum++) {
    const mask = pgNumMask(pgNum);
    const current = names.map((n) => objectToPg(pool({ id: 1, pgNum, rule: 0, size: 3 }), n).seed);
    current.forEach((s, i) => {
      const p = previous[i]!;
      // Each step adds PG pgNum-1, which takes objects from its parent (pgNum-1) & (mask >> 1) only.
      assert.ok(s === p || (s === pgNum - 1 && p === ((pgNum - 1) & (mask >>> 1))), `${names[i]}: ${p} -> ${s}`);
    });
    previous = current;
  }
  const counts = new Array<number>(32).fill(0);
  for (const s of previous) counts[s]! += 1;
  for (const c of counts) assert.ok(Math.abs(c - 125) < 45, `PG sizes ${counts}`);
});

test('PG ids print as pool.hexseed and parse back', () => {
  assert.equal(pgIdToString({ pool: 1, seed: 0x3f }), '1.3f');
  assert.equal(pgIdToString({ pool: 12, seed: 0 }), '12.0');
  assert.deepEqual(parsePgId('1.3f'), { pool: 1, seed: 63 });
  assert.deepEqual(parsePgId('7.A0'), { pool: 7, seed: 160 });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: (1 << 24) - 1 }), (p, s) => {
      assert.deepEqual(parsePgId(pgIdToString({ pool: p, seed: s })), { pool: p, seed: s });
    }),
    { seed, numRuns: 300 },
  );
  for (const bad of ['', '1', '1.', '.3', '1.3g', '-1.3', '1.3.4', ' 1.3', '99999999999.1']) {
    assert.throws(() => parsePgId(bad), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT', bad);
  }
});

test('object -> PG -> OSDs: CRUSH input is hash2(seed, pool); up set equals the rule output when all is well', () => {
  const map = buildClusterMap({ hosts: 4, osdsPerHost: 3 });
  map.pools.push(pool({ id: 1, pgNum: 64, rule: replicatedRuleId, size: 3 }));
  map.pools.push(pool({ id: 2, pgNum: 64, rule: erasureRuleId, size: 4, type: 'erasure', ecK: 2, ecM: 2 }));
  const placement = new Placement(map);
  for (let i = 0; i < 200; i++) {
    const name = `rbd_data.${i}`;
    const m = placement.mapObject(1, name);
    assert.deepEqual(m.pgId, objectToPg(map.pools[0]!, name));
    assert.equal(pgPlacementSeed(m.pgId), hash2(m.pgId.seed, 1));
    assert.deepEqual(m.up, placement.crush.doRule(replicatedRuleId, hash2(m.pgId.seed, 1), 3));
    assert.equal(m.primary, m.up[0]);
    assert.deepEqual(mapObject(map, 1, name), m);
    const ec = placement.mapObject(2, name);
    assert.equal(ec.up.length, 4);
    assert.ok(!ec.up.includes(CRUSH_ITEM_NONE));
  }
  // Same seeds in two pools land differently.
  let same = 0;
  for (let s = 0; s < 64; s++) {
    const a = placement.mapPg({ pool: 1, seed: s }).up;
    const b = placement.crush.doRule(replicatedRuleId, hash2(s, 2), 3);
    if (a.join() === b.join()) same++;
  }
  assert.ok(same < 8, `${same} of 64 PGs identical across pools`);
  assert.equal(placementFor(map), placementFor(map));
});

test('up sets: down OSDs dropped (replicated) or holes (erasure); out OSDs never chosen; primary', () => {
  const random = new Random(seed);
  for (let round = 0; round < 20; round++) {
    const map = randomMap(random, { outs: true });
    map.pools.push(pool({ id: 1, pgNum: 128, rule: replicatedRuleId, size: 3 }));
    map.pools.push(pool({ id: 2, pgNum: 128, rule: erasureRuleId, size: 4, type: 'erasure', ecK: 2, ecM: 2 }));
    const placement = new Placement(map);
    const info = new Map(map.osds.map((o) => [o.id, o]));
    for (let s = 0; s < 128; s++) {
      for (const poolId of [1, 2]) {
        const { up, primary } = placement.mapPg({ pool: poolId, seed: s });
        const where = `seed ${seed} round ${round} pg ${poolId}.${s.toString(16)} [${up}]`;
        for (const osd of up) {
          if (osd === CRUSH_ITEM_NONE) continue;
          const o = info.get(osd)!;
          assert.ok(o.up && o.in && o.reweight > 0, where);
        }
        if (poolId === 1) assert.ok(!up.includes(CRUSH_ITEM_NONE) && up.length <= 3, where);
        else assert.equal(up.length, 4, where);
        assert.equal(primary, up.find((o) => o !== CRUSH_ITEM_NONE) ?? -1, where);
      }
    }
  }
  // Directly: a down OSD keeps its erasure position as a hole, leaves a replicated list, and stops being primary.
  const map = buildClusterMap({ hosts: 4, osdsPerHost: 2 });
  map.pools.push(pool({ id: 1, pgNum: 16, rule: replicatedRuleId, size: 3 }));
  map.pools.push(pool({ id: 2, pgNum: 16, rule: erasureRuleId, size: 4, type: 'erasure' }));
  const healthy = new Placement(map);
  const victim = healthy.mapPg({ pool: 2, seed: 5 }).up[0]!;
  const degraded = JSON.parse(JSON.stringify(map)) as typeof map;
  degraded.osds.find((o) => o.id === victim)!.up = false;
  const after = new Placement(degraded);
  const ec = after.mapPg({ pool: 2, seed: 5 });
  assert.equal(ec.up[0], CRUSH_ITEM_NONE);
  assert.deepEqual(ec.up.slice(1), healthy.mapPg({ pool: 2, seed: 5 }).up.slice(1));
  assert.equal(ec.primary, ec.up[1]);
  for (let s = 0; s < 16; s++) {
    const before = healthy.mapPg({ pool: 1, seed: s }).up;
    assert.deepEqual(after.mapPg({ pool: 1, seed: s }).up, before.filter((o) => o !== victim));
  }
  // Everything down: no primary.
  for (const o of degraded.osds) o.up = false;
  const dark = new Placement(degraded);
  assert.deepEqual(dark.mapPg({ pool: 1, seed: 0 }), { pgId: { pool: 1, seed: 0 }, up: [], primary: -1 });
  assert.equal(dark.mapPg({ pool: 2, seed: 0 }).primary, -1);
});

test('placement errors: unknown pool or rule NOT_FOUND, seed beyond pg_num INVALID_ARGUMENT', () => {
  const map = buildClusterMap({ hosts: 2, osdsPerHost: 2 });
  map.pools.push(pool({ id: 1, pgNum: 8, rule: 0, size: 2 }), pool({ id: 2, pgNum: 8, rule: 42, size: 2 }));
  const placement = new Placement(map);
  const code = (c: string) => (e: unknown) => e instanceof StorageError && e.code === c;
  assert.throws(() => placement.mapObject(9, 'x'), code('NOT_FOUND'));
  assert.throws(() => placement.mapObject(2, 'x'), code('NOT_FOUND'));
  assert.throws(() => placement.mapPg({ pool: 1, seed: 8 }), code('INVALID_ARGUMENT'));
  assert.throws(() => placement.mapPg({ pool: 1, seed: -1 }), code('INVALID_ARGUMENT'));
});
