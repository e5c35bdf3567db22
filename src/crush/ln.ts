/**
 * The integer log table of straw2. A floating-point log would make placement depend on the platform's libm, so the
 * table is built at module load from integer arithmetic on doubles: every value stays below 2^53 and every division
 * is floored, so each step is exact and any implementation that follows README.md gets the same table.
 *
 *   negLog[u] = floor((17·2^32 − ℓ(2u + 1)) / 2^8) ≈ 2^24 · −log2((u + ½) / 65536),  u in 0..65535,
 *
 * where ℓ(n) ≈ 2^32 · log2(n) comes from the identity
 *
 *   log2 n = ½ (log2(n − 1) + log2(n + 1)) − ½ log2(1 − 1/n²),   −½ log2(1 − t) = (1 / (2 ln 2)) · Σ_k t^k / k,
 *
 * applied to odd n in increasing order (n ± 1 are even, so their logs reduce to smaller odd numbers): ℓ(1) = 0,
 * ℓ(2^a · o) = a·2^32 + ℓ(o), and for odd n >= 3
 *
 *   ℓ(n) = floor((ℓ(n − 1) + ℓ(n + 1)) / 2) + Σ_{k >= 1, n^(2k) <= K} floor(K / (k · n^(2k))),   K = floor(2^31 / ln 2).
 *
 * Each step loses at most a few units of 2^−32 and a chain is at most 17 steps deep, so negLog is within one unit of
 * the exact value. The cost is one pass over 65536 entries (about 3 ms once optimised) instead of 24 squarings each.
 *
 * The half step treats the 16-bit hash as the midpoint of its interval, so negLog is never 0: with (u + 1) the top
 * value would give a draw of 0 whatever the weight, and the item would win regardless of weight.
 */

/** Fractional bits of negLog values. */
export const negLogFracBits = 24;

/** floor(2^31 / ln 2) = floor(2^31 · log2 e): the one constant the table derives from. */
export const log2Constant = 3098164009;

const scale = 2 ** 32;

function buildNegLog(): Uint32Array {
  // logs[i] = ℓ(2i + 1) at scale 2^32 (below 17·2^32 < 2^37).
  const logs = new Float64Array(65537);
  const table = new Uint32Array(65536);
  const top = 17 * scale;
  table[0] = top / 2 ** 8;
  for (let i = 1; i < 65536; i++) {
    const n = 2 * i + 1;
    const below = n - 1;
    const above = n + 1;
    // Trailing zero counts: below = 2^a · odd, above = 2^b · odd.
    const a = 31 - Math.clz32(below & -below);
    const b = 31 - Math.clz32(above & -above);
    const sum = a * scale + logs[(below >>> a) >>> 1]! + b * scale + logs[(above >>> b) >>> 1]!;
    let correction = 0;
    const square = n * n;
    // Terms stop once n^(2k) > K (they would be 0); the last product may be inexact but is only compared.
    for (let k = 1, power = square; power <= log2Constant; k++, power *= square) {
      correction += Math.floor(log2Constant / (k * power));
    }
    const log = Math.floor(sum / 2) + correction;
    logs[i] = log;
    table[i] = Math.floor((top - log) / 2 ** 8);
  }
  return table;
}

/**
 * negLog[u] ≈ 2^24 · (17 − log2(2u + 1)): strictly decreasing in u, from 17·2^24 (u = 0) to 184 (u = 65535).
 * Values are below 2^29, so negLog[u] · 2^16 stays below 2^45.
 */
export const negLog: Uint32Array = buildNegLog();
