/**
 * GF(2^8) arithmetic with the field polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d), the field the Reed-Solomon package
 * codes in: products for the SIMD kernel's tables and the matrix inverse that decoding needs. Pure.
 */

const gfExp = new Uint8Array(510);
const gfLog = new Uint8Array(256);
for (let e = 0, v = 1; e < 255; e++) {
  gfExp[e] = v;
  gfExp[e + 255] = v;
  gfLog[v] = e;
  v = v & 0x80 ? ((v << 1) ^ 0x11d) & 0xff : v << 1;
}

export function gfMul(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : (gfExp[(gfLog[a] as number) + (gfLog[b] as number)] as number);
}

/** The multiplicative inverse of a non-zero element. */
export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('0 has no inverse in GF(2^8)');
  return gfExp[255 - (gfLog[a] as number)] as number;
}

/**
 * The inverse of the n×n matrix `rows` (row-major, n² bytes) by Gauss-Jordan elimination; undefined when singular
 * (which k rows of a Reed-Solomon encoding matrix never are).
 */
export function gfInvert(rows: Uint8Array, n: number): Uint8Array | undefined {
  const a = Uint8Array.from(rows);
  const inv = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && a[pivot * n + col] === 0) pivot++;
    if (pivot === n) return undefined;
    if (pivot !== col) swapRows(a, inv, n, pivot, col);
    const scale = gfInv(a[col * n + col] as number);
    for (let c = 0; c < n; c++) {
      a[col * n + c] = gfMul(a[col * n + c] as number, scale);
      inv[col * n + c] = gfMul(inv[col * n + c] as number, scale);
    }
    for (let r = 0; r < n; r++) {
      const factor = a[r * n + col] as number;
      if (r === col || factor === 0) continue;
      for (let c = 0; c < n; c++) {
        a[r * n + c] = (a[r * n + c] as number) ^ gfMul(factor, a[col * n + c] as number);
        inv[r * n + c] = (inv[r * n + c] as number) ^ gfMul(factor, inv[col * n + c] as number);
      }
    }
  }
  return inv;
}

function swapRows(a: Uint8Array, b: Uint8Array, n: number, x: number, y: number): void {
  for (const m of [a, b]) {
    const row = m.slice(x * n, x * n + n);
    m.copyWithin(x * n, y * n, y * n + n);
    m.set(row, y * n);
  }
}
