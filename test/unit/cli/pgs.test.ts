import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actingFromUp, placementFor, type ClusterMap, type wire } from '../../../src/index.js';
import { buildClusterMap } from '../../../src/crush/index.js';
import { pgRows } from '../../../src/cli/pgs.js';

/** Six hosts of one OSD, one replicated pool of size 3 and 4 PGs, all up and in. */
function clusterMap(out: readonly number[] = []): ClusterMap {
  const map = buildClusterMap({ hosts: 6, osdsPerHost: 1 });
  map.pools.push({ id: 1, name: 'rbd', type: 'replicated', size: 3, minSize: 2, ecK: 0, ecM: 0, pgNum: 4, rule: 0, stripeUnit: 0, application: '' });
  for (const osd of map.osds) {
    osd.up = true;
    osd.in = !out.includes(osd.id);
  }
  return map;
}

/** What each PG's primary reports after peering under `map`: active, with the acting set it peered with. */
function reportsUnder(map: ClusterMap): wire.OsdStats.$Properties[] {
  const placement = placementFor(map);
  const byOsd = new Map<number, wire.PgStat.$Properties[]>();
  for (let seed = 0; seed < 4; seed++) {
    const { up, primary } = placement.mapPg({ pool: 1, seed });
    byOsd.set(primary, [...(byOsd.get(primary) ?? []), { pool: 1, seed, state: 'active', acting: actingFromUp(up), epoch: map.epoch }]);
  }
  return [...byOsd].map(([id, pgStats]) => ({ id, pgStats }));
}

test('pg ls: a PG is active+clean only while its primary reported it for the acting set the current map gives', () => {
  const before = clusterMap();
  assert.deepEqual(pgRows(before, reportsUnder(before)).map((r) => r.state), Array(4).fill('active+clean'));
  // One member of some PG goes out; until the (unchanged) primary reports the new interval, that PG is peering.
  const placement = placementFor(before);
  const { up, primary } = placement.mapPg({ pool: 1, seed: 0 });
  const member = up.find((o) => o !== primary) as number;
  const after = { ...clusterMap([member]), epoch: before.epoch + 1 };
  const stale = pgRows(after, reportsUnder(before));
  const changed = new Set<number>();
  for (let seed = 0; seed < 4; seed++) {
    const old = placement.mapPg({ pool: 1, seed });
    const now = placementFor(after).mapPg({ pool: 1, seed });
    if (old.up.join(',') !== now.up.join(',')) changed.add(seed);
  }
  assert.ok(changed.has(0), 'PG 1.0 lost a member');
  for (const [seed, row] of stale.entries()) {
    const samePrimary = placement.mapPg({ pool: 1, seed }).primary === row.primary;
    const expected = changed.has(seed) ? (samePrimary ? 'peering' : 'unknown') : 'active+clean';
    assert.equal(row.state, expected, `PG 1.${seed}`);
  }
  // Once the primaries report under the new map, it is clean again.
  assert.deepEqual(pgRows(after, reportsUnder(after)).map((r) => r.state), Array(4).fill('active+clean'));
});
