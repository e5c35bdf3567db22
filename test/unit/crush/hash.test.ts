import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hash2, hash3, hashBytes, hashName } from '../../../src/crush/index.js';
import { testSeed } from './helpers.js';

const seed = testSeed('crush/hash');

// Known answers. The lookup2 values were cross-checked against a C transcription of Bob Jenkins' public-domain
// lookup2.c hash(); hash2/hash3 against a C transcription of the construction in src/crush/README.md. A change
// here moves data in every cluster.
const nameAnswers: [string, number][] = [
  ['', 3175731469],
  ['a', 703514648],
  ['abc', 622741395],
  ['foo', 2143417350],
  ['rbd_data.1234', 1649385036],
  ['hello world!', 516731539],
  ['0123456789ab', 2465405648],
  ['0123456789abc', 2294398249],
  ['The quick brown fox jumps over the lazy dog', 4229257438],
  ['été 🐟', 3081550931],
];

// hashBytes(bytes[0..n), initval 3n) with bytes[i] = (7i + 1) & 0xff: every tail length and 0–3 full blocks.
const byteAnswers = [
  3175731469, 4203467432, 916488827, 3006613170, 1818971210, 2747080057, 791104561, 3737840427, 723190528, 457583499,
  36911937, 2713479414, 1710947471, 4091590062, 791159341, 773291400, 4227097062, 3146348529, 1158963154, 11382324,
  1961142295, 2441289786, 892110342, 2486344129, 4250898621, 1203540140, 626268, 3118491470, 1075653153, 2495574666,
  3852220144, 4137178346, 1544915032, 3055248665, 802787325, 241187953, 2177758283, 3193973770, 3316378415, 3129116217,
  4236445230,
];

const mixAnswers: [number, number, number, number, number][] = [
  // a, b, c, hash3(a, b, c), hash2(a, b)
  [0, 0, 0, 3365246265, 2187809540],
  [1, 2, 3, 1463139070, 1609316983],
  [-1, -2, -3, 2824561242, 3222542726],
  [123456, -7, 2, 1410997496, 2445575201],
  [0x7fffffff, -0x80000000, 5, 3623601358, 1874180177],
  [17, 4, 1, 164444240, 560639663],
];

test('hashName: lookup2 over UTF-8, initval 0 (known answers)', () => {
  for (const [name, expected] of nameAnswers) assert.equal(hashName(name), expected, JSON.stringify(name));
});

test('hashBytes: lookup2 known answers for every tail length', () => {
  const bytes = Uint8Array.from({ length: 40 }, (_, i) => (i * 7 + 1) & 0xff);
  byteAnswers.forEach((expected, n) => assert.equal(hashBytes(bytes.subarray(0, n), n * 3), expected, `length ${n}`));
});

test('hash2/hash3: known answers; unsigned 32-bit results; inputs taken modulo 2^32', () => {
  for (const [a, b, c, h3, h2] of mixAnswers) {
    assert.equal(hash3(a, b, c), h3, `hash3(${a}, ${b}, ${c})`);
    assert.equal(hash2(a, b), h2, `hash2(${a}, ${b})`);
    assert.equal(hash3(a + 2 ** 32, b, c), h3, 'hash3 reads its inputs as 32-bit words');
    assert.equal(hash2(a >>> 0, b >>> 0), h2, 'signed and unsigned spellings of a word hash alike');
  }
});

test('hashName equals hashBytes of the UTF-8 encoding (long names, any text)', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 400 }), (name) => {
      assert.equal(hashName(name), hashBytes(Buffer.from(name, 'utf8')), `seed ${seed}`);
    }),
    { seed, numRuns: 300 },
  );
  const huge = 'é'.repeat(5000) + '🐟'.repeat(3000);
  assert.equal(hashName(huge), hashBytes(Buffer.from(huge, 'utf8')));
  // Lone surrogates encode as U+FFFD, as TextEncoder and Buffer both do.
  assert.equal(hashName('a\ud800b'), hashBytes(Buffer.from('a\ufffdb', 'utf8')));
});

test('hash3: low 16 bits look uniform for neighbouring ids (what straw2 consumes)', () => {
  // A coarse chi-square over 256 cells of (u_i >> 12, u_{i+1} >> 12): catches a broken mix, not subtle bias.
  const cells = new Float64Array(256);
  const n = 1 << 16;
  for (let x = 0; x < n; x++) {
    const u = hash3(x, -7, 0) & 0xffff;
    const v = hash3(x, -8, 0) & 0xffff;
    cells[((u >> 12) << 4) | (v >> 12)]! += 1;
  }
  const expected = n / 256;
  const chi2 = cells.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
  // 255 degrees of freedom: the 99.99th percentile is about 340.
  assert.ok(chi2 < 340, `chi2 ${chi2.toFixed(1)}`);
});
