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
 * The exact draw floor(scaled / w) when it can beat `bestDraw`, else Infinity. scaled · (1/w) is within 2^−6 of
 * scaled / w (scaled < 2^45, two roundings of 2^−53), so when it is at least bestDraw + 1 the exact draw is at least
 * bestDraw and would lose (ties go to the lower index, which came first): only the others pay for the division.
 */
function consider(scaled: number, w: number, inverse: number, bestDraw: number): number {
  if (w === 0 || scaled * inverse >= bestDraw + 1) return Infinity;
  let draw = Math.floor(scaled / w);
  const rest = scaled - draw * w;
  if (rest < 0) draw -= 1;
  else if (rest >= w) draw += 1;
  return draw;
}

/**
 * {@link straw2Choose} for the mapper, with `inverses[i] = 1 / weights[i]` (0 for weight 0) precomputed per bucket.
 * Same result, faster: this is the hot loop of placement.
 *
 * hash3 is one long chain of dependent operations, so it is inlined here for four items at a time: the four chains
 * interleave and the CPU runs them side by side (about twice the draws per second of one at a time); a short last
 * group costs no more than a full one. No allocation.
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
  let d = 0;
  const n = ids.length;
  const aStart = (golden + x) | 0;
  const cStart = (seed3 + r) | 0;
  let i = 0;
  for (; i < n; i += 4) {
    // The last group may be short: its missing lanes hash id 0 and are never considered.
    let a0 = aStart;
    let b0 = (golden + ids[i]!) | 0;
    let c0 = cStart;
    let a1 = aStart;
    let b1 = (golden + (i + 1 < n ? ids[i + 1]! : 0)) | 0;
    let c1 = cStart;
    let a2 = aStart;
    let b2 = (golden + (i + 2 < n ? ids[i + 2]! : 0)) | 0;
    let c2 = cStart;
    let a3 = aStart;
    let b3 = (golden + (i + 3 < n ? ids[i + 3]! : 0)) | 0;
    let c3 = cStart;
    a0 = ((a0 - b0 - c0) | 0) ^ (c0 >>> 13);
    a1 = ((a1 - b1 - c1) | 0) ^ (c1 >>> 13);
    a2 = ((a2 - b2 - c2) | 0) ^ (c2 >>> 13);
    a3 = ((a3 - b3 - c3) | 0) ^ (c3 >>> 13);
    b0 = ((b0 - c0 - a0) | 0) ^ (a0 << 8);
    b1 = ((b1 - c1 - a1) | 0) ^ (a1 << 8);
    b2 = ((b2 - c2 - a2) | 0) ^ (a2 << 8);
    b3 = ((b3 - c3 - a3) | 0) ^ (a3 << 8);
    c0 = ((c0 - a0 - b0) | 0) ^ (b0 >>> 13);
    c1 = ((c1 - a1 - b1) | 0) ^ (b1 >>> 13);
    c2 = ((c2 - a2 - b2) | 0) ^ (b2 >>> 13);
    c3 = ((c3 - a3 - b3) | 0) ^ (b3 >>> 13);
    a0 = ((a0 - b0 - c0) | 0) ^ (c0 >>> 12);
    a1 = ((a1 - b1 - c1) | 0) ^ (c1 >>> 12);
    a2 = ((a2 - b2 - c2) | 0) ^ (c2 >>> 12);
    a3 = ((a3 - b3 - c3) | 0) ^ (c3 >>> 12);
    b0 = ((b0 - c0 - a0) | 0) ^ (a0 << 16);
    b1 = ((b1 - c1 - a1) | 0) ^ (a1 << 16);
    b2 = ((b2 - c2 - a2) | 0) ^ (a2 << 16);
    b3 = ((b3 - c3 - a3) | 0) ^ (a3 << 16);
    c0 = ((c0 - a0 - b0) | 0) ^ (b0 >>> 5);
    c1 = ((c1 - a1 - b1) | 0) ^ (b1 >>> 5);
    c2 = ((c2 - a2 - b2) | 0) ^ (b2 >>> 5);
    c3 = ((c3 - a3 - b3) | 0) ^ (b3 >>> 5);
    a0 = ((a0 - b0 - c0) | 0) ^ (c0 >>> 3);
    a1 = ((a1 - b1 - c1) | 0) ^ (c1 >>> 3);
    a2 = ((a2 - b2 - c2) | 0) ^ (c2 >>> 3);
    a3 = ((a3 - b3 - c3) | 0) ^ (c3 >>> 3);
    b0 = ((b0 - c0 - a0) | 0) ^ (a0 << 10);
    b1 = ((b1 - c1 - a1) | 0) ^ (a1 << 10);
    b2 = ((b2 - c2 - a2) | 0) ^ (a2 << 10);
    b3 = ((b3 - c3 - a3) | 0) ^ (a3 << 10);
    c0 = ((c0 - a0 - b0) | 0) ^ (b0 >>> 15);
    c1 = ((c1 - a1 - b1) | 0) ^ (b1 >>> 15);
    c2 = ((c2 - a2 - b2) | 0) ^ (b2 >>> 15);
    c3 = ((c3 - a3 - b3) | 0) ^ (b3 >>> 15);
    a0 = (a0 + roundKey) | 0;
    a1 = (a1 + roundKey) | 0;
    a2 = (a2 + roundKey) | 0;
    a3 = (a3 + roundKey) | 0;
    a0 = ((a0 - b0 - c0) | 0) ^ (c0 >>> 13);
    a1 = ((a1 - b1 - c1) | 0) ^ (c1 >>> 13);
    a2 = ((a2 - b2 - c2) | 0) ^ (c2 >>> 13);
    a3 = ((a3 - b3 - c3) | 0) ^ (c3 >>> 13);
    b0 = ((b0 - c0 - a0) | 0) ^ (a0 << 8);
    b1 = ((b1 - c1 - a1) | 0) ^ (a1 << 8);
    b2 = ((b2 - c2 - a2) | 0) ^ (a2 << 8);
    b3 = ((b3 - c3 - a3) | 0) ^ (a3 << 8);
    c0 = ((c0 - a0 - b0) | 0) ^ (b0 >>> 13);
    c1 = ((c1 - a1 - b1) | 0) ^ (b1 >>> 13);
    c2 = ((c2 - a2 - b2) | 0) ^ (b2 >>> 13);
    c3 = ((c3 - a3 - b3) | 0) ^ (b3 >>> 13);
    a0 = ((a0 - b0 - c0) | 0) ^ (c0 >>> 12);
    a1 = ((a1 - b1 - c1) | 0) ^ (c1 >>> 12);
    a2 = ((a2 - b2 - c2) | 0) ^ (c2 >>> 12);
    a3 = ((a3 - b3 - c3) | 0) ^ (c3 >>> 12);
    b0 = ((b0 - c0 - a0) | 0) ^ (a0 << 16);
    b1 = ((b1 - c1 - a1) | 0) ^ (a1 << 16);
    b2 = ((b2 - c2 - a2) | 0) ^ (a2 << 16);
    b3 = ((b3 - c3 - a3) | 0) ^ (a3 << 16);
    c0 = ((c0 - a0 - b0) | 0) ^ (b0 >>> 5);
    c1 = ((c1 - a1 - b1) | 0) ^ (b1 >>> 5);
    c2 = ((c2 - a2 - b2) | 0) ^ (b2 >>> 5);
    c3 = ((c3 - a3 - b3) | 0) ^ (b3 >>> 5);
    a0 = ((a0 - b0 - c0) | 0) ^ (c0 >>> 3);
    a1 = ((a1 - b1 - c1) | 0) ^ (c1 >>> 3);
    a2 = ((a2 - b2 - c2) | 0) ^ (c2 >>> 3);
    a3 = ((a3 - b3 - c3) | 0) ^ (c3 >>> 3);
    b0 = ((b0 - c0 - a0) | 0) ^ (a0 << 10);
    b1 = ((b1 - c1 - a1) | 0) ^ (a1 << 10);
    b2 = ((b2 - c2 - a2) | 0) ^ (a2 << 10);
    b3 = ((b3 - c3 - a3) | 0) ^ (a3 << 10);
    c0 = ((c0 - a0 - b0) | 0) ^ (b0 >>> 15);
    c1 = ((c1 - a1 - b1) | 0) ^ (b1 >>> 15);
    c2 = ((c2 - a2 - b2) | 0) ^ (b2 >>> 15);
    c3 = ((c3 - a3 - b3) | 0) ^ (b3 >>> 15);
    d = consider(negLog[c0 & 0xffff]! * 0x10000, weights[i]!, inverses[i]!, bestDraw);
    if (d < bestDraw) {
      bestDraw = d;
      best = i;
    }
    if (i + 1 < n) {
      d = consider(negLog[c1 & 0xffff]! * 0x10000, weights[i + 1]!, inverses[i + 1]!, bestDraw);
      if (d < bestDraw) {
        bestDraw = d;
        best = i + 1;
      }
    }
    if (i + 2 < n) {
      d = consider(negLog[c2 & 0xffff]! * 0x10000, weights[i + 2]!, inverses[i + 2]!, bestDraw);
      if (d < bestDraw) {
        bestDraw = d;
        best = i + 2;
      }
    }
    if (i + 3 < n) {
      d = consider(negLog[c3 & 0xffff]! * 0x10000, weights[i + 3]!, inverses[i + 3]!, bestDraw);
      if (d < bestDraw) {
        bestDraw = d;
        best = i + 3;
      }
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
