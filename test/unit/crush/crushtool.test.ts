import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StorageError } from '../../../src/index.js';
import {
  CRUSH_ITEM_NONE,
  buildClusterMap,
  formatMappingLine,
  formatTree,
  formatUtilization,
  testRule,
} from '../../../src/crush/index.js';

const code = (c: string) => (e: unknown) => e instanceof StorageError && e.code === c;

test('crush test lines: crushtool format, NONE as 2147483647, map out-ness plus mark-out', () => {
  assert.equal(formatMappingLine(0, 17, [4, 12, 27]), 'rule 0 x 17 [4,12,27]');
  assert.equal(formatMappingLine(1, 0, [3, CRUSH_ITEM_NONE]), 'rule 1 x 0 [3,2147483647]');
  const map = buildClusterMap({ hosts: 3, osdsPerHost: 2 });
  map.osds[0]!.in = false;
  const run = testRule(map, { rule: 'erasure_rule', numRep: 4, minX: 10, maxX: 59, markOut: [3] });
  assert.equal(run.ruleId, 1);
  assert.equal(run.lines.length, 50);
  assert.match(run.lines[0]!, /^rule 1 x 10 \[/);
  assert.ok(run.lines.every((l) => l.includes('2147483647')), 'four positions, three hosts: one hole each');
  assert.ok(!run.counts.has(0) && !run.counts.has(3));
  assert.equal([...run.counts.values()].reduce((s, c) => s + c, 0), 150);
  const utilization = formatUtilization(map, run);
  assert.equal(utilization[0], 'rule 1 placements 150 over 4 OSDs');
  assert.equal(utilization.length, 7);
  assert.match(utilization[1]!, /^osd\.0 count 0 expected 25\.0$/);
  assert.ok(formatTree(map).some((l) => /osd osd\.0 up out reweight 1\.00000$/.test(l)));
});

test('crush test rejects bad ranges and unknown rules', () => {
  const map = buildClusterMap({ hosts: 2, osdsPerHost: 2 });
  assert.throws(() => testRule(map, { rule: 0, numRep: 2, minX: 5, maxX: 4 }), code('INVALID_ARGUMENT'));
  assert.throws(() => testRule(map, { rule: 0, numRep: 2, minX: -1, maxX: 4 }), code('INVALID_ARGUMENT'));
  assert.throws(() => testRule(map, { rule: 0, numRep: 2, minX: 0, maxX: 2 ** 32 }), code('INVALID_ARGUMENT'));
  assert.throws(() => testRule(map, { rule: 0, numRep: 2, minX: 0, maxX: 20_000_000 }), code('INVALID_ARGUMENT'));
  assert.throws(() => testRule(map, { rule: 0, numRep: 2, minX: 0, maxX: 1, markOut: [-3] }), code('INVALID_ARGUMENT'));
  assert.throws(() => testRule(map, { rule: 7, numRep: 2, minX: 0, maxX: 1 }), code('NOT_FOUND'));
  assert.throws(() => testRule(map, { rule: '7', numRep: 2, minX: 0, maxX: 1 }), code('NOT_FOUND'));
  assert.throws(() => testRule(map, { rule: 0, numRep: 999, minX: 0, maxX: 1 }), code('INVALID_ARGUMENT'));
});
