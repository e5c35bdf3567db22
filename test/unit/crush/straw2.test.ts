import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Random } from '../../../src/index.js';
import { floorDiv, straw2Choose, straw2Draw } from '../../../src/crush/index.js';
import { straw2ChooseFast } from '../../../src/crush/straw2.js';
import { testSeed } from './helpers.js';

const seed = testSeed('crush/straw2');

const bucketArb = fc.array(
  fc.record({
    id: fc.integer({ min: -1000, max: 1000 }),
    weight: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 0xffff_ffff }), fc.integer({ min: 0x100, max: 0x40000 })),
  }),
  { minLength: 1, maxLength: 40 },
);

function arrays(items: { id: number; weight: number }[]): [Int32Array, Float64Array, Float64Array] {
  const weights = Float64Array.from(items, (i) => i.weight);
  return [Int32Array.from(items, (i) => i.id), weights, weights.map((w) => (w > 0 ? 1 / w : 0))];
}

test('floorDiv is exact floor division (against BigInt)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 45 }), fc.integer({ min: 1, max: 0xffff_ffff }), (n, d) => {
      assert.equal(BigInt(floorDiv(n, d)), BigInt(n) / BigInt(d), `seed ${seed}`);
    }),
    { seed, numRuns: 2000 },
  );
  // Quotients the double division rounds up across an integer.
  for (const d of [3, 0xffff_fffb, 0x1_0001, 65537 * 3]) {
    for (const k of [2 ** 20, 2 ** 30, 2 ** 44 / d]) {
      const n = Math.floor(k) * d - 1;
      if (n >= 0 && n < 2 ** 53) assert.equal(BigInt(floorDiv(n, d)), BigInt(n) / BigInt(d), `${n} / ${d}`);
    }
  }
});

test('straw2ChooseFast (interleaved, reciprocal screening) picks what the plain definition picks', () => {
  fc.assert(
    fc.property(bucketArb, fc.integer(), fc.integer({ min: 0, max: 200 }), (items, x, r) => {
      const [ids, weights, inverses] = arrays(items);
      assert.equal(straw2ChooseFast(ids, weights, inverses, x, r), straw2Choose(ids, weights, x, r), `seed ${seed}`);
    }),
    { seed, numRuns: 3000 },
  );
});

test('straw2: the winner has the smallest draw, ties to the lowest index; weight 0 never wins', () => {
  fc.assert(
    fc.property(bucketArb, fc.integer(), fc.nat(100), (items, x, r) => {
      const [ids, weights] = arrays(items);
      const chosen = straw2Choose(ids, weights, x, r);
      if (items.every((i) => i.weight === 0)) return assert.equal(chosen, -1);
      assert.ok(chosen >= 0 && weights[chosen]! > 0);
      const draw = straw2Draw(x, ids[chosen]!, r, weights[chosen]!);
      items.forEach((item, i) => {
        if (item.weight === 0 || i === chosen) return;
        const other = straw2Draw(x, item.id, r, item.weight);
        assert.ok(other > draw || (other === draw && i > chosen), `seed ${seed}: item ${i} beats ${chosen}`);
      });
    }),
    { seed, numRuns: 1000 },
  );
});

test('straw2: changing one item weight moves inputs only to or from that item', () => {
  const random = new Random(seed);
  for (let round = 0; round < 30; round++) {
    const n = random.int(2, 20);
    const ids = Int32Array.from({ length: n }, (_, i) => (random.chance(0.5) ? i : -1 - i));
    const before = Float64Array.from({ length: n }, () => random.int(0, 0x30000));
    const after = before.slice();
    const changed = random.int(0, n - 1);
    after[changed] = random.chance(0.2) ? 0 : random.int(0, 0x30000);
    for (let x = 0; x < 2000; x++) {
      const r = x % 3;
      const a = straw2Choose(ids, before, x, r);
      const b = straw2Choose(ids, after, x, r);
      if (a !== b) assert.ok(a === changed || b === changed, `seed ${seed} round ${round} x ${x}: ${a} -> ${b}`);
    }
  }
});

test('straw2: shares follow weights', () => {
  const ids = Int32Array.from([10, 11, 12, 13, -5]);
  const weights = Float64Array.from([0x10000, 0x20000, 0x30000, 0x8000, 0x28000]);
  const total = weights.reduce((s, w) => s + w, 0);
  const counts = new Float64Array(ids.length);
  const inputs = 100_000;
  for (let x = 0; x < inputs; x++) counts[straw2Choose(ids, weights, x, 0)]! += 1;
  weights.forEach((w, i) => {
    const expected = (inputs * w) / total;
    assert.ok(Math.abs(counts[i]! - expected) < 0.03 * expected, `item ${i}: ${counts[i]} vs ${expected.toFixed(0)}`);
  });
});
