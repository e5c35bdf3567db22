/**
 * Golden placement vectors: for fixed maps, the exact `shoal crush test` output over x = 0..1023, and known answers
 * of the hashes and the log table. A difference moves data in every cluster: it needs a design note (see
 * src/crush/README.md). To rewrite the files deliberately: SHOAL_UPDATE_VECTORS=1 node scripts/test.mjs vectors/crush
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clusterMapFromJson, clusterMapToJson, type ClusterMap } from '../../../src/index.js';
import { buildClusterMap, hash2, hash3, hashName, negLog, testRule } from '../../../src/crush/index.js';

const update = process.env['SHOAL_UPDATE_VECTORS'] === '1';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test');
    dir = up;
  }
  return dir;
}

const vectorDir = join(repoRoot(), 'test', 'vectors', 'crush');

/** The two fixed maps, as built; the checked-in JSON files are what the vectors are computed from. */
const maps: Record<string, () => ClusterMap> = {
  '3x10': () => buildClusterMap({ hosts: 3, osdsPerHost: 10 }),
  'racks-weighted': () => {
    const map = buildClusterMap({
      hosts: 12,
      osdsPerHost: 4,
      racks: 3,
      osdWeight: (osd) => (1 + ((osd * 7) % 5)) * 0x8000,
    });
    // Pin the out-ness rules too: one OSD out, one with a partial reweight.
    map.osds[5]!.in = false;
    map.osds[9]!.reweight = 0x8000;
    return map;
  },
};

/** map, rule id, num-rep: each becomes `<map>.rule-<id>.num-rep-<n>.txt`. */
const runs: [string, number, number][] = [
  ['3x10', 0, 3],
  ['3x10', 1, 3],
  ['3x10', 2, 6],
  ['racks-weighted', 0, 3],
  ['racks-weighted', 1, 6],
  ['racks-weighted', 2, 6],
  ['racks-weighted', 3, 3],
];

function compare(file: string, actual: string[]): void {
  const path = join(vectorDir, file);
  if (update) {
    writeFileSync(path, actual.join('\n') + '\n');
    return;
  }
  assert.ok(existsSync(path), `${file} is missing: run with SHOAL_UPDATE_VECTORS=1 to create it`);
  const expected = readFileSync(path, 'utf8').replace(/\n$/, '').split('\n');
  const length = Math.max(expected.length, actual.length);
  for (let i = 0; i < length; i++) {
    if (expected[i] !== actual[i]) {
      assert.fail(
        `${file} line ${i + 1} changed: expected ${JSON.stringify(expected[i])}, got ${JSON.stringify(actual[i])}. ` +
          'Placement changed for existing clusters: this needs a design note (src/crush/README.md).',
      );
    }
  }
}

function loadMap(name: string): ClusterMap {
  const path = join(vectorDir, `map-${name}.json`);
  const built = maps[name]!();
  if (update) writeFileSync(path, clusterMapToJson(built));
  const map = clusterMapFromJson(readFileSync(path, 'utf8'));
  assert.deepEqual(map, built, `map-${name}.json no longer matches what the builder makes`);
  return map;
}

for (const [name, rule, numRep] of runs) {
  test(`golden mappings: ${name} rule ${rule} num-rep ${numRep}, x = 0..1023`, () => {
    const map = loadMap(name);
    compare(`${name}.rule-${rule}.num-rep-${numRep}.txt`, testRule(map, { rule, numRep, minX: 0, maxX: 1023 }).lines);
  });
}

test('golden known answers: hashName, hash2, hash3, negLog', () => {
  const lines: string[] = [];
  for (let i = 0; i < 64; i++) {
    const name = i % 2 === 0 ? `obj-${i}` : `rbd_data.${(i * 0x9e37).toString(16)}.${'x'.repeat(i)}`;
    lines.push(`hashName ${JSON.stringify(name)} ${hashName(name)}`);
  }
  for (let i = 0; i < 64; i++) {
    const a = (i * 0x01000193) | 0;
    const b = -1 - i;
    const c = i % 7;
    lines.push(`hash2 ${a} ${b} ${hash2(a, b)}`, `hash3 ${a} ${b} ${c} ${hash3(a, b, c)}`);
  }
  for (let u = 0; u < 65536; u += 1021) lines.push(`negLog ${u} ${negLog[u]}`);
  lines.push(`negLog 65535 ${negLog[65535]}`);
  compare('known-answers.txt', lines);
});
