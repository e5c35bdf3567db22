/**
 * straw2 selection (Weil et al., CRUSH, 2006; straw2 as refined in Ceph): every item draws an independent straw
 * whose length depends only on (x, item id, r) and its own weight, and the shortest wins. Because no draw depends on
 * another item, changing one item's weight moves inputs only to or from that item.
 *
 * For item i with weight w_i > 0:  u = hash3(x, id_i, r) & 0xffff,  draw_i = floor(negLog[u] · 2^16 / w_i).
 * negLog[u] ≈ −log2(U) for a uniform U, so draw_i is an exponential variable with rate ∝ w_i, and the minimum of
 * exponentials lands on item i with probability w_i / Σw. Ties go to the lowest index; weight-0 items never win.
 */
import { hash3i } from './hash.js';
import { negLog } from './ln.js';

/**
 * floor(n / d) for integers 0 <= n < 2^53, 0 < d < 2^32 with n + d < 2^53. The double quotient may round up across
 * an integer; the exact remainder n − q·d (all terms below 2^53) tells, and one step fixes it.
 */
export function floorDiv(n: number, d: number): number {
  let q = Math.floor(n / d);
  const rest = n - q * d;
  if (rest < 0) q -= 1;
  else if (rest >= d) q += 1;
  return q;
}

/** The straw2 draw of one item: smaller is better. `weight` is 16.16 fixed point and must be > 0. */
export function straw2Draw(x: number, id: number, r: number, weight: number): number {
  return floorDiv(negLog[hash3i(x, id, r) & 0xffff]! * 0x10000, weight);
}

/** Initial words of hash3 (must match hash.ts; the known-answer tests compare straw2Draw with straw2Choose). */
const golden = 0x9e3779b9 | 0;
const seed3 = 0x2545f491 | 0;
const roundKey = 0x6b43a9b5 | 0;

/**
 * {@link straw2Choose} for the mapper, with `inverses[i] = 1 / weights[i]` precomputed per bucket. Same result.
 *
 * This is the hot loop of placement. hash3 is one long chain of dependent operations, so it is inlined here for two
 * items at a time: the two chains interleave and the CPU runs them side by side, which halves the cost per draw.
 * Most items cannot beat the best draw so far: scaled · (1/w) is within 2^−6 of scaled / w (scaled < 2^45, two
 * roundings of 2^−53), so when it is at least bestDraw + 1 the exact draw is at least bestDraw and loses (ties go to
 * the lower index). Only the others pay for the exact floor division. No allocation.
 * @internal
 */
export function straw2ChooseFast(
  ids: Int32Array,
  weights: Float64Array,
  inverses: Float64Array,
  x: number,
  r: number,
): number {
  let best = -1;
  let bestDraw = Infinity;
  const n = ids.length;
  const a0 = (golden + x) | 0;
  const c0 = (seed3 + r) | 0;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    let a = a0;
    let b = (golden + ids[i]!) | 0;
    let c = c0;
    let p = a0;
    let q = (golden + ids[i + 1]!) | 0;
    let s = c0;
    a = ((a - b - c) | 0) ^ (c >>> 13);
    p = ((p - q - s) | 0) ^ (s >>> 13);
    b = ((b - c - a) | 0) ^ (a << 8);
    q = ((q - s - p) | 0) ^ (p << 8);
    c = ((c - a - b) | 0) ^ (b >>> 13);
    s = ((s - p - q) | 0) ^ (q >>> 13);
    a = ((a - b - c) | 0) ^ (c >>> 12);
    p = ((p - q - s) | 0) ^ (s >>> 12);
    b = ((b - c - a) | 0) ^ (a << 16);
    q = ((q - s - p) | 0) ^ (p << 16);
    c = ((c - a - b) | 0) ^ (b >>> 5);
    s = ((s - p - q) | 0) ^ (q >>> 5);
    a = ((a - b - c) | 0) ^ (c >>> 3);
    p = ((p - q - s) | 0) ^ (s >>> 3);
    b = ((b - c - a) | 0) ^ (a << 10);
    q = ((q - s - p) | 0) ^ (p << 10);
    c = ((c - a - b) | 0) ^ (b >>> 15);
    s = ((s - p - q) | 0) ^ (q >>> 15);
    a = (a + roundKey) | 0;
    p = (p + roundKey) | 0;
    a = ((a - b - c) | 0) ^ (c >>> 13);
    p = ((p - q - s) | 0) ^ (s >>> 13);
    b = ((b - c - a) | 0) ^ (a << 8);
    q = ((q - s - p) | 0) ^ (p << 8);
    c = ((c - a - b) | 0) ^ (b >>> 13);
    s = ((s - p - q) | 0) ^ (q >>> 13);
    a = ((a - b - c) | 0) ^ (c >>> 12);
    p = ((p - q - s) | 0) ^ (s >>> 12);
    b = ((b - c - a) | 0) ^ (a << 16);
    q = ((q - s - p) | 0) ^ (p << 16);
    c = ((c - a - b) | 0) ^ (b >>> 5);
    s = ((s - p - q) | 0) ^ (q >>> 5);
    a = ((a - b - c) | 0) ^ (c >>> 3);
    p = ((p - q - s) | 0) ^ (s >>> 3);
    b = ((b - c - a) | 0) ^ (a << 10);
    q = ((q - s - p) | 0) ^ (p << 10);
    c = ((c - a - b) | 0) ^ (b >>> 15);
    s = ((s - p - q) | 0) ^ (q >>> 15);
    const w0 = weights[i]!;
    const scaled0 = negLog[c & 0xffff]! * 0x10000;
    if (w0 !== 0 && scaled0 * inverses[i]! < bestDraw + 1) {
      const scaled = scaled0;
      let draw = Math.floor(scaled / w0);
      const rest = scaled - draw * w0;
      if (rest < 0) draw -= 1;
      else if (rest >= w0) draw += 1;
      if (draw < bestDraw) {
        bestDraw = draw;
        best = i;
      }
    }
    const w1 = weights[i + 1]!;
    const scaled1 = negLog[s & 0xffff]! * 0x10000;
    if (w1 !== 0 && scaled1 * inverses[i + 1]! < bestDraw + 1) {
      const scaled = scaled1;
      let draw = Math.floor(scaled / w1);
      const rest = scaled - draw * w1;
      if (rest < 0) draw -= 1;
      else if (rest >= w1) draw += 1;
      if (draw < bestDraw) {
        bestDraw = draw;
        best = i + 1;
      }
    }
  }
  if (i < n) {
    const w = weights[i]!;
    if (w !== 0) {
      const scaled = negLog[hash3i(x, ids[i]!, r) & 0xffff]! * 0x10000;
      let draw = Math.floor(scaled / w);
      const rest = scaled - draw * w;
      if (rest < 0) draw -= 1;
      else if (rest >= w) draw += 1;
      if (draw < bestDraw) best = i;
    }
  }
  return best;
}

/**
 * The index of the winning item among `ids` (weights 16.16, parallel arrays), or −1 when every weight is 0.
 * Written plainly, one draw at a time: the definition, and the reference the tests hold {@link straw2ChooseFast} to.
 */
export function straw2Choose(ids: Int32Array, weights: Float64Array, x: number, r: number): number {
  let best = -1;
  let bestDraw = Infinity;
  for (let i = 0; i < ids.length; i++) {
    const w = weights[i]!;
    if (w === 0) continue;
    const draw = straw2Draw(x, ids[i]!, r, w);
    if (draw < bestDraw) {
      bestDraw = draw;
      best = i;
    }
  }
  return best;
}
