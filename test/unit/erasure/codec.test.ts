import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { seedFromEnv, StorageError } from '../../../src/common/index.js';
import {
  Codec,
  joinStripes,
  locate,
  shardBytes,
  shardSize,
  splitStripes,
  stripeBytes,
  stripesTouched,
  stripeWidth,
} from '../../../src/erasure/index.js';

const seed = seedFromEnv();
process.stdout.write(`erasure/codec: seed=${seed} (rerun with SHOAL_SEED=${seed})\n`);

const profiles: [number, number][] = [[1, 1], [2, 1], [2, 2], [3, 2], [4, 2], [6, 3], [8, 3], [10, 4], [16, 4]];

/** An object of random bytes written at a random offset (the bytes before it are zeros, as a sparse write leaves). */
const scenario = fc
  .record({
    profile: fc.constantFrom(...profiles),
    stripeUnit: fc.constantFrom(1, 3, 16, 64, 512, 4096),
    offset: fc.integer({ min: 0, max: 20_000 }),
    data: fc.uint8Array({ minLength: 0, maxLength: 20_000 }),
    lossSeed: fc.nat(),
  })
  .map((s) => ({ ...s, k: s.profile[0], m: s.profile[1] }));

/** Picks exactly k shard indexes of k+m to keep, from `lossSeed`. */
function keepK(k: number, m: number, lossSeed: number): Set<number> {
  const order = Array.from({ length: k + m }, (_, i) => i);
  let x = lossSeed >>> 0 || 1;
  for (let i = order.length - 1; i > 0; i--) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const j = x % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return new Set(order.slice(0, k));
}

test('property: any k of k+m shards rebuild the object, for random data, sizes, offsets and (k,m)', () => {
  fc.assert(
    fc.property(scenario, ({ k, m, stripeUnit, offset, data, lossSeed }) => {
      const layout = { k, stripeUnit };
      const object = new Uint8Array(offset + data.length);
      object.set(data, offset);
      const stripes = Math.ceil(object.length / stripeWidth(layout));
      assert.equal(shardSize(layout, object.length), stripes * stripeUnit);
      const codec = new Codec(k, m);
      const dataShards = splitStripes(layout, object, stripes);
      const all = [...dataShards, ...codec.encode(dataShards)];
      const keep = keepK(k, m, lossSeed);
      const rebuilt = codec.reconstruct(all.map((s, i) => (keep.has(i) ? s : undefined)));
      assert.equal(rebuilt.length, k + m);
      rebuilt.forEach((s, i) => assert.deepEqual(s, all[i], `shard ${i} of ${k}+${m}`));
      const back = joinStripes(layout, rebuilt, stripes).subarray(0, object.length);
      assert.deepEqual(Buffer.from(back), Buffer.from(object));
    }),
    { seed, numRuns: 300 },
  );
});

test('property: encodeStripes (cut straight into the coder) equals splitStripes then encode, a short source padded', () => {
  fc.assert(
    fc.property(scenario, fc.nat(5), ({ k, m, stripeUnit, offset, data }, extraStripes) => {
      const layout = { k, stripeUnit };
      const object = new Uint8Array(offset + data.length);
      object.set(data, offset);
      // Sometimes more stripes than the bytes fill: the rest must code as zeros.
      const stripes = Math.ceil(object.length / stripeWidth(layout)) + (extraStripes % 2);
      const codec = new Codec(k, m);
      const dataShards = splitStripes(layout, object, stripes);
      const expected = [...dataShards, ...codec.encode(dataShards)];
      const got = codec.encodeStripes(object, stripeUnit, stripes);
      assert.equal(got.length, k + m);
      got.forEach((s, i) => assert.deepEqual(Buffer.from(s), Buffer.from(expected[i] as Uint8Array), `shard ${i} of ${k}+${m}, ${stripes} stripes`));
    }),
    { seed, numRuns: 300 },
  );
  assert.throws(() => new Codec(2, 1).encodeStripes(new Uint8Array(9), 4, 1), TypeError);
});

test('property: the stripes a range touches, encoded alone, equal those stripes of the whole object', () => {
  // This is what partial overwrites rely on: re-encoding only the touched stripes yields the same shard bytes.
  fc.assert(
    fc.property(scenario, fc.nat(), fc.nat(), ({ k, m, stripeUnit, offset, data }, a, b) => {
      const layout = { k, stripeUnit };
      const object = new Uint8Array(offset + data.length);
      object.set(data, offset);
      const stripes = Math.ceil(object.length / stripeWidth(layout));
      const codec = new Codec(k, m);
      const dataShards = splitStripes(layout, object, stripes);
      const whole = [...dataShards, ...codec.encode(dataShards)];
      const start = object.length === 0 ? 0 : a % object.length;
      const length = object.length - start === 0 ? 0 : 1 + (b % (object.length - start));
      const range = stripesTouched(layout, start, length);
      const bytes = stripeBytes(layout, range);
      assert.ok(bytes.offset <= start && start + length <= bytes.offset + bytes.length);
      const part = splitStripes(layout, object.subarray(bytes.offset, bytes.offset + bytes.length), range.count);
      const partAll = [...part, ...codec.encode(part)];
      const sb = shardBytes(layout, range);
      partAll.forEach((s, i) => assert.deepEqual(s, whole[i]!.subarray(sb.offset, sb.offset + sb.length)));
    }),
    { seed, numRuns: 200 },
  );
});

test('locate maps every object byte to the shard byte that holds it', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 3000 }), (k, su, size) => {
      const layout = { k, stripeUnit: su };
      const object = Uint8Array.from({ length: size }, (_, i) => (i * 7 + 3) & 0xff);
      const stripes = Math.ceil(size / (k * su));
      const shards = splitStripes(layout, object, stripes);
      for (let o = 0; o < size; o += 1 + (o % 5)) {
        const { shard, shardOffset } = locate(layout, o);
        assert.equal(shards[shard]![shardOffset], object[o]);
      }
    }),
    { seed, numRuns: 200 },
  );
});

test('stripe math: a 4+2 layout with a 64 KiB unit', () => {
  const layout = { k: 4, stripeUnit: 65536 };
  assert.equal(stripeWidth(layout), 262144);
  assert.equal(shardSize(layout, 0), 0);
  assert.equal(shardSize(layout, 1), 65536);
  assert.equal(shardSize(layout, 262144), 65536);
  assert.equal(shardSize(layout, 262145), 131072);
  assert.deepEqual(locate(layout, 262144 + 65536 * 2 + 5), { stripe: 1, shard: 2, shardOffset: 65536 + 5 });
  assert.deepEqual(stripesTouched(layout, 262143, 2), { first: 0, count: 2 });
  assert.deepEqual(stripesTouched(layout, 10, 0).count, 0);
});

test('reconstruct with fewer than k shards is INSUFFICIENT_SHARDS; bad profiles and uneven shards are refused', () => {
  const codec = new Codec(4, 2);
  const data = [1, 2, 3, 4].map((v) => new Uint8Array(8).fill(v));
  const all = [...data, ...codec.encode(data)];
  assert.throws(
    () => codec.reconstruct(all.map((s, i) => (i < 3 ? undefined : s))),
    (e: unknown) => e instanceof StorageError && e.code === 'INSUFFICIENT_SHARDS',
  );
  for (const [k, m] of [[0, 1], [1, 0], [200, 57], [2.5, 1]] as const) {
    assert.throws(() => new Codec(k, m), (e: unknown) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT');
  }
  assert.throws(
    () => codec.encode([new Uint8Array(8), new Uint8Array(8), new Uint8Array(8), new Uint8Array(7)]),
    (e: unknown) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT',
  );
  assert.deepEqual(codec.encode(data.map(() => new Uint8Array(0))), [new Uint8Array(0), new Uint8Array(0)]);
});
