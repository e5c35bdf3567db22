/**
 * CRC32 (IEEE, as zlib/Ethernet) and CRC32C (Castagnoli) over the native SIMD implementation in `@node-rs/crc32`
 * (the one importer of that package). Both continue from `initialState` when given, so a long stream can be summed
 * piece by piece: `crc32c(b, crc32c(a)) === crc32c(concat(a, b))`. Results are unsigned 32-bit integers.
 */
import { crc32 as nativeCrc32, crc32c as nativeCrc32c } from '@node-rs/crc32';

/** CRC32 (IEEE 802.3 polynomial) of `input`, continuing from `initialState` (default 0). */
export function crc32(input: Uint8Array, initialState?: number): number {
  return nativeCrc32(input, initialState) >>> 0;
}

/** CRC32C (Castagnoli polynomial) of `input`, continuing from `initialState` (default 0). */
export function crc32c(input: Uint8Array, initialState?: number): number {
  return nativeCrc32c(input, initialState) >>> 0;
}
