import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ReedSolomonErasure } from '@subspace/reed-solomon-erasure.wasm';
import { Codec, simdKernel, splitStripes, useSimdKernel } from '../../../src/erasure/index.js';
import { gfInv, gfInvert, gfMul } from '../../../src/erasure/gf.js';
import { SimdKernel, coefficientTables } from '../../../src/erasure/simd-kernel.js';

/** Parity from the package's own encoder on a fresh instance: what the kernel must reproduce byte for byte. */
function packageParity(k: number, m: number, data: readonly Uint8Array[]): Uint8Array[] {
  const size = data[0]?.length ?? 0;
  const all = new Uint8Array((k + m) * size);
  data.forEach((shard, i) => all.set(shard, i * size));
  assert.equal(packageInstance().encode(all, k, m), ReedSolomonErasure.RESULT_OK);
  return Array.from({ length: m }, (_, j) => all.slice((k + j) * size, (k + j + 1) * size));
}

let instance: ReedSolomonErasure | undefined;
function packageInstance(): ReedSolomonErasure {
  // Encoding alone is safe on one instance (src/erasure/README.md); a fresh one per case would compile 1,000 modules.
  instance ??= ReedSolomonErasure.fromBytes(wasmBytes());
  return instance;
}

function wasmBytes(): Uint8Array {
  const main = createRequire(import.meta.url).resolve('@subspace/reed-solomon-erasure.wasm');
  return readFileSync(join(dirname(main), 'reed_solomon_erasure_bg.wasm'));
}

test('this engine has WebAssembly SIMD, so EC pools code with the kernel (not the package\'s byte-at-a-time loop)', () => {
  assert.ok(simdKernel() instanceof SimdKernel);
});

test('property: the kernel\'s parity equals the package\'s, for random profiles, shard sizes (not only multiples of 16) and data', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 3000 }),
      fc.integer(),
      (k, m, size, seed) => {
        let x = seed >>> 0 || 1;
        const data = Array.from({ length: k }, () =>
          Uint8Array.from({ length: size }, () => {
            x = (Math.imul(x, 1103515245) + 12345) >>> 0;
            return x >>> 24;
          }),
        );
        const ours = new Codec(k, m).encode(data);
        const theirs = packageParity(k, m, data);
        ours.forEach((p, j) => assert.ok(Buffer.from(p).equals(Buffer.from(theirs[j] as Uint8Array)), `parity ${j} of ${k}+${m}, ${size} bytes`));
      },
    ),
    { numRuns: 300 },
  );
});

test('the kernel codes large profiles and every coefficient: 128+128 with all 256 byte values', () => {
  const k = 128;
  const m = 128;
  const size = 256;
  const data = Array.from({ length: k }, (_, i) => Uint8Array.from({ length: size }, (_, b) => (b * 7 + i) & 0xff));
  const ours = new Codec(k, m).encode(data);
  const theirs = packageParity(k, m, data);
  ours.forEach((p, j) => assert.ok(Buffer.from(p).equals(Buffer.from(theirs[j] as Uint8Array)), `parity ${j}`));
});

test('coefficient tables: the low and high nibble products of each coefficient', () => {
  const tables = coefficientTables(Uint8Array.from([0, 1, 2, 0x8e]));
  for (let n = 0; n < 4; n++) {
    const c = [0, 1, 2, 0x8e][n] as number;
    for (let v = 0; v < 16; v++) {
      assert.equal(tables[n * 32 + v], gfMul(c, v));
      assert.equal(tables[n * 32 + 16 + v], gfMul(c, v << 4));
    }
  }
  // x^8 = x^4 + x^3 + x^2 + 1 in this field: 2 · 0x80 = 0x1d.
  assert.equal(gfMul(2, 0x80), 0x1d);
});

test('the kernel refuses arguments outside its memory or off its 16-byte vectors', () => {
  const kernel = SimdKernel.create() as SimdKernel;
  kernel.reserve(65536);
  assert.throws(() => kernel.encode(0, 0, 4096, 2, 1, 24), RangeError);
  assert.throws(() => kernel.encode(0, 0, 4096, 0, 1, 16), RangeError);
  assert.throws(() => kernel.encode(0, 0, 65536 - 16, 2, 2, 16), RangeError);
  kernel.encode(0, 64, 4096, 2, 1, 16);
});

test('property: with and without the kernel (the package\'s path), encode and reconstruct give the same shards', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 2000 }), fc.integer(), (k, m, size, seed) => {
      let x = seed >>> 0 || 1;
      const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
      const data = Array.from({ length: k }, () => Uint8Array.from({ length: size }, next));
      const codec = new Codec(k, m);
      const all = [...data, ...codec.encode(data)];
      // Lose up to m shards, data ones included.
      const lost = new Set(Array.from({ length: m }, () => next() % (k + m)));
      const slots = all.map((s, i) => (lost.has(i) ? undefined : s));
      const withKernel = codec.reconstruct(slots);
      useSimdKernel(false);
      try {
        assert.equal(simdKernel(), undefined);
        const parity = codec.encode(data);
        parity.forEach((p, j) => assert.ok(Buffer.from(p).equals(Buffer.from(all[k + j] as Uint8Array)), `parity ${j}`));
        const withPackage = codec.reconstruct(slots);
        withPackage.forEach((s, i) => assert.ok(Buffer.from(s).equals(Buffer.from(withKernel[i] as Uint8Array)), `shard ${i}`));
      } finally {
        useSimdKernel(true);
      }
      withKernel.forEach((s, i) => assert.ok(Buffer.from(s).equals(Buffer.from(all[i] as Uint8Array)), `shard ${i} rebuilt`));
    }),
    { numRuns: 150 },
  );
});

test('GF(2^8) inverses: of elements, and of matrices (a singular one has none)', () => {
  for (let a = 1; a < 256; a++) assert.equal(gfMul(a, gfInv(a)), 1);
  assert.throws(() => gfInv(0), RangeError);
  const n = 5;
  let x = 7;
  for (let trial = 0; trial < 50; trial++) {
    const rows = Uint8Array.from({ length: n * n }, () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24);
    const inverse = gfInvert(rows, n);
    if (inverse === undefined) continue;
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) {
        let v = 0;
        for (let t = 0; t < n; t++) v ^= gfMul(rows[r * n + t] as number, inverse[t * n + c] as number);
        assert.equal(v, r === c ? 1 : 0, `(rows x inverse)[${r}][${c}]`);
      }
    }
  }
  assert.equal(gfInvert(Uint8Array.from([1, 2, 2, 4]), 2), undefined, 'the second row is twice the first');
});

test('shards longer than one segment of the kernel (128 KiB) code and rebuild the same as the package, stripe units not dividing it included', () => {
  for (const [k, m, stripeUnit, count] of [[3, 2, 4096, 100], [4, 2, 65536, 5], [2, 1, 1000, 300]] as const) {
    let x = k * 1000 + stripeUnit;
    const source = Uint8Array.from({ length: k * stripeUnit * count - 777 }, () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24);
    const codec = new Codec(k, m);
    const shards = codec.encodeStripes(source, stripeUnit, count);
    const data = splitStripes({ k, stripeUnit }, source, count);
    data.forEach((d, i) => assert.ok(Buffer.from(d).equals(shards[i] as Buffer), `data shard ${i}`));
    packageParity(k, m, data).forEach((p, j) => assert.ok(Buffer.from(p).equals(shards[k + j] as Buffer), `parity ${j} of ${k}+${m}, unit ${stripeUnit}`));
    const lost = shards.map((s, i) => (i < m ? undefined : s));
    codec.reconstruct(lost).forEach((s, i) => assert.ok(Buffer.from(s).equals(shards[i] as Buffer), `shard ${i} rebuilt`));
  }
});
