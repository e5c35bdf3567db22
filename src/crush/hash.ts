/**
 * The fixed 32-bit hashes of placement. Their outputs decide where every byte of every cluster lives, so they are
 * specified bit for bit in README.md and pinned by known-answer tests: never change them without a design note.
 *
 * All arithmetic is on 32-bit words: `| 0` and `>>> 0` wrap like C's uint32_t, `<<` drops high bits, `>>>` is the
 * unsigned shift. Results are returned as unsigned 32-bit numbers.
 */

/** Bob Jenkins' golden ratio constant (lookup2's initial a and b). */
const golden = 0x9e3779b9 | 0;
/** Initial c of hash3 (so hash3(a, b, 0) differs from hash2(a, b)). */
const seed3 = 0x2545f491 | 0;
/** Initial c of hash2. */
const seed2 = 0x5bd1e995 | 0;
/** Added to a between the two mix rounds of hash2/hash3. */
const roundKey = 0x6b43a9b5 | 0;

/**
 * hash3 as a signed 32-bit value (same bits as {@link hash3}). Returning an int32 keeps V8 from boxing the result,
 * which matters in the straw2 loop.
 * @internal
 */
export function hash3i(x: number, y: number, z: number): number {
  let a = (golden + x) | 0;
  let b = (golden + y) | 0;
  let c = (seed3 + z) | 0;
  // Jenkins' 96-bit mix, twice: one round leaves visible correlations in the low 16 bits between neighbouring
  // negative ids (bucket ids), which straw2 uses.
  a = ((a - b - c) | 0) ^ (c >>> 13);
  b = ((b - c - a) | 0) ^ (a << 8);
  c = ((c - a - b) | 0) ^ (b >>> 13);
  a = ((a - b - c) | 0) ^ (c >>> 12);
  b = ((b - c - a) | 0) ^ (a << 16);
  c = ((c - a - b) | 0) ^ (b >>> 5);
  a = ((a - b - c) | 0) ^ (c >>> 3);
  b = ((b - c - a) | 0) ^ (a << 10);
  c = ((c - a - b) | 0) ^ (b >>> 15);
  a = (a + roundKey) | 0;
  a = ((a - b - c) | 0) ^ (c >>> 13);
  b = ((b - c - a) | 0) ^ (a << 8);
  c = ((c - a - b) | 0) ^ (b >>> 13);
  a = ((a - b - c) | 0) ^ (c >>> 12);
  b = ((b - c - a) | 0) ^ (a << 16);
  c = ((c - a - b) | 0) ^ (b >>> 5);
  a = ((a - b - c) | 0) ^ (c >>> 3);
  b = ((b - c - a) | 0) ^ (a << 10);
  c = ((c - a - b) | 0) ^ (b >>> 15);
  return c;
}

/** hash2 as a signed 32-bit value (same bits as {@link hash2}). @internal */
export function hash2i(x: number, y: number): number {
  let a = (golden + x) | 0;
  let b = (golden + y) | 0;
  let c = seed2;
  a = ((a - b - c) | 0) ^ (c >>> 13);
  b = ((b - c - a) | 0) ^ (a << 8);
  c = ((c - a - b) | 0) ^ (b >>> 13);
  a = ((a - b - c) | 0) ^ (c >>> 12);
  b = ((b - c - a) | 0) ^ (a << 16);
  c = ((c - a - b) | 0) ^ (b >>> 5);
  a = ((a - b - c) | 0) ^ (c >>> 3);
  b = ((b - c - a) | 0) ^ (a << 10);
  c = ((c - a - b) | 0) ^ (b >>> 15);
  a = (a + roundKey) | 0;
  a = ((a - b - c) | 0) ^ (c >>> 13);
  b = ((b - c - a) | 0) ^ (a << 8);
  c = ((c - a - b) | 0) ^ (b >>> 13);
  a = ((a - b - c) | 0) ^ (c >>> 12);
  b = ((b - c - a) | 0) ^ (a << 16);
  c = ((c - a - b) | 0) ^ (b >>> 5);
  a = ((a - b - c) | 0) ^ (c >>> 3);
  b = ((b - c - a) | 0) ^ (a << 10);
  c = ((c - a - b) | 0) ^ (b >>> 15);
  return c;
}

/** Mixes three 32-bit words into one unsigned 32-bit hash (straw2 draws: x, item id, r). */
export function hash3(a: number, b: number, c: number): number {
  return hash3i(a, b, c) >>> 0;
}

/** Mixes two 32-bit words into one unsigned 32-bit hash (PG seed with pool id; reweight rejection). */
export function hash2(a: number, b: number): number {
  return hash2i(a, b) >>> 0;
}

/**
 * Bob Jenkins' lookup2 `hash()` (1996, public domain) over `bytes` with the given initial value: 12 bytes at a time
 * little-endian into a, b, c, then the tail with the total length added to c.
 */
export function hashBytes(bytes: Uint8Array, initval = 0): number {
  return lookup2(bytes, bytes.length, initval);
}

function lookup2(bytes: Uint8Array, length: number, initval: number): number {
  let a = golden;
  let b = golden;
  let c = initval | 0;
  let k = 0;
  let len = length;
  while (len >= 12) {
    a = (a + (bytes[k]! | (bytes[k + 1]! << 8) | (bytes[k + 2]! << 16) | (bytes[k + 3]! << 24))) | 0;
    b = (b + (bytes[k + 4]! | (bytes[k + 5]! << 8) | (bytes[k + 6]! << 16) | (bytes[k + 7]! << 24))) | 0;
    c = (c + (bytes[k + 8]! | (bytes[k + 9]! << 8) | (bytes[k + 10]! << 16) | (bytes[k + 11]! << 24))) | 0;
    a = ((a - b - c) | 0) ^ (c >>> 13);
    b = ((b - c - a) | 0) ^ (a << 8);
    c = ((c - a - b) | 0) ^ (b >>> 13);
    a = ((a - b - c) | 0) ^ (c >>> 12);
    b = ((b - c - a) | 0) ^ (a << 16);
    c = ((c - a - b) | 0) ^ (b >>> 5);
    a = ((a - b - c) | 0) ^ (c >>> 3);
    b = ((b - c - a) | 0) ^ (a << 10);
    c = ((c - a - b) | 0) ^ (b >>> 15);
    k += 12;
    len -= 12;
  }
  c = (c + length) | 0;
  // The tail falls through like lookup2's switch; the low byte of c is left for the length.
  if (len >= 11) c = (c + (bytes[k + 10]! << 24)) | 0;
  if (len >= 10) c = (c + (bytes[k + 9]! << 16)) | 0;
  if (len >= 9) c = (c + (bytes[k + 8]! << 8)) | 0;
  if (len >= 8) b = (b + (bytes[k + 7]! << 24)) | 0;
  if (len >= 7) b = (b + (bytes[k + 6]! << 16)) | 0;
  if (len >= 6) b = (b + (bytes[k + 5]! << 8)) | 0;
  if (len >= 5) b = (b + bytes[k + 4]!) | 0;
  if (len >= 4) a = (a + (bytes[k + 3]! << 24)) | 0;
  if (len >= 3) a = (a + (bytes[k + 2]! << 16)) | 0;
  if (len >= 2) a = (a + (bytes[k + 1]! << 8)) | 0;
  if (len >= 1) a = (a + bytes[k]!) | 0;
  a = ((a - b - c) | 0) ^ (c >>> 13);
  b = ((b - c - a) | 0) ^ (a << 8);
  c = ((c - a - b) | 0) ^ (b >>> 13);
  a = ((a - b - c) | 0) ^ (c >>> 12);
  b = ((b - c - a) | 0) ^ (a << 16);
  c = ((c - a - b) | 0) ^ (b >>> 5);
  a = ((a - b - c) | 0) ^ (c >>> 3);
  b = ((b - c - a) | 0) ^ (a << 10);
  c = ((c - a - b) | 0) ^ (b >>> 15);
  return c >>> 0;
}

const encoder = new TextEncoder();
/** Reused so hashing a name allocates nothing unless the name is longer than any before. */
let scratch = new Uint8Array(256);
const scratchCodeUnitsMax = 4096;

/** The object-name hash: lookup2 over the UTF-8 bytes of `name`, initval 0 (lone surrogates encode as U+FFFD). */
export function hashName(name: string): number {
  // A rare huge name is encoded on its own rather than growing the buffer kept for the common short ones.
  if (name.length > scratchCodeUnitsMax) return hashBytes(encoder.encode(name), 0);
  // UTF-8 takes at most 3 bytes per UTF-16 code unit.
  if (name.length * 3 > scratch.length) scratch = new Uint8Array(name.length * 3);
  const { written } = encoder.encodeInto(name, scratch);
  return lookup2(scratch, written, 0);
}
