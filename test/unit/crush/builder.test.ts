import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StorageError, clusterMapFromJson, clusterMapToJson, type CrushMap } from '../../../src/index.js';
import {
  addOsd,
  buildClusterMap,
  crushWeightOf,
  removeOsd,
  setCrushWeight,
  validateCrushMap,
  withBucketWeights,
} from '../../../src/crush/index.js';

const invalid = (pattern: RegExp) => (e: unknown) =>
  e instanceof StorageError && e.code === 'INVALID_ARGUMENT' && pattern.test(e.message);

test('buildClusterMap: shape, ids, weights, rules; survives the JSON map-file round trip', () => {
  const map = buildClusterMap({ hosts: 5, osdsPerHost: 4, racks: 2 });
  validateCrushMap(map.crush);
  const byName = new Map(map.crush.buckets.map((b) => [b.name, b]));
  assert.equal(byName.get('default')?.type, 'root');
  assert.equal(byName.get('default')?.id, -1);
  assert.deepEqual(
    byName.get('default')?.items.map((i) => i.weight),
    [3 * 4 * 0x10000, 2 * 4 * 0x10000],
    'rack-0 holds host-0..2, rack-1 host-3..4',
  );
  assert.deepEqual(byName.get('host-3')?.items.map((i) => i.id), [12, 13, 14, 15]);
  assert.equal(map.osds.length, 20);
  assert.ok(map.osds.every((o) => o.up && o.in && o.reweight === 0x10000));
  assert.equal(map.osds[13]?.host, 'host-3');
  assert.deepEqual(map.crush.rules.map((r) => r.name), ['replicated_rule', 'erasure_rule', 'erasure_osd_rule', 'replicated_rack_rule']);
  assert.deepEqual(clusterMapFromJson(clusterMapToJson(map)), map);
  assert.deepEqual(buildClusterMap({ hosts: 5, osdsPerHost: 4, racks: 2 }), map, 'a pure function of its options');
  assert.equal(buildClusterMap({ hosts: 2, osdsPerHost: 1 }).crush.rules.length, 3, 'no rack rule without racks');
  for (const bad of [{ hosts: 0, osdsPerHost: 1 }, { hosts: 2, osdsPerHost: 1.5 }, { hosts: 2, osdsPerHost: 1, racks: 3 }]) {
    assert.throws(() => buildClusterMap(bad), invalid(/./));
  }
  assert.throws(() => buildClusterMap({ hosts: 1, osdsPerHost: 1, osdWeight: -1 }), invalid(/weight/));
});

test('addOsd / setCrushWeight / removeOsd keep weights summed to the root and never mutate their input', () => {
  const map = buildClusterMap({ hosts: 2, osdsPerHost: 2, racks: 1 });
  const snapshot = JSON.stringify(map);
  const rootWeight = (m: typeof map) => m.crush.buckets[0]!.items.reduce((s, i) => s + i.weight, 0);

  const added = addOsd(map, { host: 'host-9', weight: 0x20000 });
  validateCrushMap(added.crush);
  assert.equal(added.osds.at(-1)?.id, 4);
  assert.equal(added.osds.at(-1)?.host, 'host-9');
  assert.equal(rootWeight(added), 6 * 0x10000);
  const host9 = added.crush.buckets.find((b) => b.name === 'host-9')!;
  assert.ok(added.crush.buckets[0]!.items.some((i) => i.id === host9.id), 'new host under the root');

  const intoRack = addOsd(added, { id: 10, host: 'host-10', parent: 'rack-0' });
  assert.equal(intoRack.crush.buckets.find((b) => b.name === 'rack-0')!.items.length, 3);
  assert.equal(crushWeightOf(intoRack.crush, 10), 0x10000);
  assert.equal(addOsd(intoRack, { host: 'host-0' }).osds.find((o) => o.id === 5)?.host, 'host-0', 'lowest free id');

  const heavier = setCrushWeight(added, 0, 0x50000);
  validateCrushMap(heavier.crush);
  assert.equal(crushWeightOf(heavier.crush, 0), 0x50000);
  assert.equal(rootWeight(heavier), 10 * 0x10000);

  const removed = removeOsd(heavier, 1);
  validateCrushMap(removed.crush);
  assert.equal(crushWeightOf(removed.crush, 1), undefined);
  assert.ok(!removed.osds.some((o) => o.id === 1));
  assert.equal(rootWeight(removed), 9 * 0x10000);

  assert.equal(JSON.stringify(map), snapshot);
  const code = (c: string) => (e: unknown) => e instanceof StorageError && e.code === c;
  assert.throws(() => addOsd(map, { id: 0, host: 'host-0' }), code('ALREADY_EXISTS'));
  assert.throws(() => addOsd(map, { host: 'h', parent: 'nowhere' }), code('NOT_FOUND'));
  assert.throws(() => addOsd(map, { host: 'rack-0' }), code('INVALID_ARGUMENT'));
  assert.throws(() => setCrushWeight(map, 99, 1), code('NOT_FOUND'));
  assert.throws(() => setCrushWeight(map, -2, 1), code('INVALID_ARGUMENT'));
  assert.throws(() => setCrushWeight(map, 0, 2 ** 32), code('INVALID_ARGUMENT'));
  assert.throws(() => removeOsd(map, 99), code('NOT_FOUND'));
});

test('validateCrushMap names each kind of problem', () => {
  const good = (): CrushMap => structuredClone(buildClusterMap({ hosts: 2, osdsPerHost: 2, racks: 1 }).crush);
  const cases: [string, (c: CrushMap) => void, RegExp][] = [
    ['positive bucket id', (c) => (c.buckets[1]!.id = 5), /negative/],
    ['duplicate bucket id', (c) => (c.buckets[2]!.id = c.buckets[1]!.id), /used twice/],
    ['duplicate name', (c) => (c.buckets[2]!.name = 'default'), /name default is used twice/],
    ['bucket of type osd', (c) => (c.buckets[2]!.type = 'osd'), /not a bucket type/],
    ['missing child', (c) => c.buckets[0]!.items.push({ id: -99, weight: 0 }), /-99 is not a bucket/],
    ['huge OSD id', (c) => c.buckets[2]!.items.push({ id: 2 ** 24, weight: 0 }), /OSD ids/],
    ['fractional weight', (c) => (c.buckets[2]!.items[0]!.weight = 1.5), /weight/],
    ['item in two buckets', (c) => c.buckets[3]!.items.push({ id: 0, weight: 0x10000 }), /one parent|also in/],
    ['cycle', (c) => c.buckets[2]!.items.push({ id: -1, weight: 0 }), /cycle/],
    ['wrong order of types', (c) => (c.buckets[1]!.type = 'host'), /cannot sit under/],
    ['weight not summed', (c) => (c.buckets[0]!.items[0]!.weight += 1), /sum to/],
    ['take of a missing bucket', (c) => (c.rules[0]!.steps[0] = { op: 'take', item: -42 }), /take item -42/],
    ['choose before take', (c) => c.rules[0]!.steps.shift(), /must follow a take/],
    ['no emit', (c) => c.rules[0]!.steps.pop(), /end with emit/],
    ['bad step type', (c) => ((c.rules[0]!.steps[1] as { type: string }).type = 'row'), /unknown type row/],
    ['bad num', (c) => ((c.rules[0]!.steps[1] as { num: number }).num = 1000), /num 1000/],
    ['duplicate rule id', (c) => (c.rules[1]!.id = 0), /rule id 0 is used twice/],
    ['duplicate rule name', (c) => (c.rules[1]!.name = 'replicated_rule'), /used twice/],
    ['tries', (c) => (c.tunables.chooseTotalTries = 0), /chooseTotalTries/],
  ];
  for (const [name, breakIt, pattern] of cases) {
    const crush = good();
    breakIt(crush);
    assert.throws(() => validateCrushMap(crush), invalid(pattern), name);
  }
  validateCrushMap(good());
  const unsummed = good();
  unsummed.buckets[0]!.items[0]!.weight = 0;
  assert.throws(() => validateCrushMap(unsummed), invalid(/sum to/));
  validateCrushMap(withBucketWeights(unsummed));
  const heavy = good();
  heavy.buckets[2]!.items[0]!.weight = 0xffff_ffff;
  heavy.buckets[2]!.items[1]!.weight = 0xffff_ffff;
  assert.throws(() => validateCrushMap(withBucketWeights(heavy)), invalid(/2\^32/));
});
