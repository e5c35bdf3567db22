import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StorageError } from '../../../src/common/index.js';
import { Codec, erasureSelfTest, goldenCases, goldenInput, type GoldenCase } from '../../../src/erasure/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const vectors = JSON.parse(readFileSync(join(root, 'test', 'vectors', 'erasure', 'golden-shards.json'), 'utf8')) as GoldenCase[];

test('the compiled-in golden table equals the checked-in vectors, and the codec reproduces them', () => {
  assert.deepEqual(goldenCases.map((c) => ({ ...c, shardSha256: [...c.shardSha256] })), vectors);
  assert.ok(vectors.some((c) => c.k === 4 && c.m === 2) && vectors.some((c) => c.k === 8 && c.m === 3));
  erasureSelfTest(vectors);
});

test('the self-test fails with CORRUPT_DATA when a shard hash differs', () => {
  const bad = vectors.map((c, i) => (i === 1 ? { ...c, shardSha256: c.shardSha256.map((h, j) => (j === 5 ? '00' + h.slice(2) : h)) } : c));
  assert.throws(() => erasureSelfTest(bad), (e: unknown) => e instanceof StorageError && e.code === 'CORRUPT_DATA' && /k=4 m=2 shard 5/.test(e.message));
});

// An independent GF(2^8) Reed-Solomon (polynomial 0x11d, Vandermonde matrix made systematic by the inverse of its
// top k rows, as Backblaze's JavaReedSolomon defines it), so the golden vectors are not only the codec's own output.
const exp = new Uint8Array(512);
const log = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    exp[i] = x;
    log[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (let i = 255; i < 512; i++) exp[i] = exp[i - 255]!;
}
const mul = (a: number, b: number): number => (a === 0 || b === 0 ? 0 : exp[log[a]! + log[b]!]!);
const inv = (a: number): number => exp[255 - log[a]!]!;
const pow = (a: number, n: number): number => (n === 0 ? 1 : a === 0 ? 0 : exp[(log[a]! * n) % 255]!);

function invert(matrix: number[][]): number[][] {
  const n = matrix.length;
  const a = matrix.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < n; c++) {
    const p = a.findIndex((row, r) => r >= c && row[c] !== 0);
    [a[c], a[p]] = [a[p]!, a[c]!];
    const scale = inv(a[c]![c]!);
    a[c] = a[c]!.map((v) => mul(v, scale));
    for (let r = 0; r < n; r++) {
      if (r === c || a[r]![c] === 0) continue;
      const f = a[r]![c]!;
      a[r] = a[r]!.map((v, j) => v ^ mul(f, a[c]![j]!));
    }
  }
  return a.map((row) => row.slice(n));
}

function referenceParity(k: number, m: number, data: Uint8Array[]): Uint8Array[] {
  const vandermonde = Array.from({ length: k + m }, (_, r) => Array.from({ length: k }, (_, c) => pow(r, c)));
  const topInverse = invert(vandermonde.slice(0, k));
  const rows = vandermonde.slice(k).map((row) => topInverse[0]!.map((_, c) => row.reduce((acc, v, j) => acc ^ mul(v, topInverse[j]![c]!), 0)));
  const size = data[0]!.length;
  return rows.map((row) => {
    const out = new Uint8Array(size);
    for (let b = 0; b < size; b++) out[b] = row.reduce((acc, coef, j) => acc ^ mul(coef, data[j]![b]!), 0);
    return out;
  });
}

test('parity equals an independent GF(2^8) Reed-Solomon reference for the golden inputs', () => {
  for (const c of vectors) {
    const data = goldenInput(c.k, c.m, c.shardSize);
    assert.deepEqual(new Codec(c.k, c.m).encode(data).map((p) => Buffer.from(p)), referenceParity(c.k, c.m, data).map((p) => Buffer.from(p)), `${c.k}+${c.m}`);
  }
});
