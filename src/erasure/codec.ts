/**
 * Reed-Solomon coding of k data shards into m parity shards over GF(2^8), through the WASM build of the Rust
 * `reed-solomon-erasure` crate (this file is the one importer of that package). The code is systematic: data
 * shards are stored as they are, so a healthy read needs no decoding. Coding is byte-wise, so a shard may hold the
 * chunks of many stripes back to back and one call codes them all (which is how the OSD lays shards out on disk).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ReedSolomonErasure } from '@subspace/reed-solomon-erasure.wasm';
import { bufferPool } from '../common/buffer-pool.js';
import { StorageError } from '../common/errors.js';
import { webAssembly } from '../common/wasm.js';
import { gfInvert } from './gf.js';
import { SimdKernel, coefficientTables, vectorBytes } from './simd-kernel.js';
import { checkFits, forEachChunk } from './stripe.js';

/** Limits of GF(2^8) Reed-Solomon: at most 256 shards in all. */
export const ecShardsMax = 256;

let wasmBytes: Uint8Array | undefined;
let coder: CoderExports | undefined;
/** The SIMD kernel of this process (null: the engine has none), and its tables per profile `k,m`. */
let kernel: SimdKernel | null | undefined;
const kernelTables = new Map<string, Uint8Array>();
/** Coefficients per profile `k,m` (see `Codec.#coefficients`). */
const profileCoefficients = new Map<string, Uint8Array>();

/**
 * Codes with the package's own encoder and decoder from now on, as on an engine without WebAssembly SIMD (`false`),
 * or with the kernel again (`true`). For tests of that path, which this engine would otherwise never take.
 */
export function useSimdKernel(on: boolean): void {
  kernel = on ? undefined : null;
}

/** The SIMD kernel shared by every codec of the process (coding is synchronous, so one memory serves all). */
export function simdKernel(): SimdKernel | undefined {
  if (kernel === undefined) kernel = SimdKernel.create() ?? null;
  return kernel ?? undefined;
}

/** The WASM binary, read once per process (about 30 KiB). */
function wasmModule(): Uint8Array {
  if (wasmBytes === undefined) {
    const require = createRequire(import.meta.url);
    const main = require.resolve('@subspace/reed-solomon-erasure.wasm');
    wasmBytes = readFileSync(join(dirname(main), 'reed_solomon_erasure_bg.wasm'));
  }
  return wasmBytes;
}

/** The WASM module's own exports, as the package's wrapper calls them (wasm-bindgen's ABI). */
interface CoderExports {
  memory: { buffer: ArrayBuffer };
  /** Codes in place: `length` bytes at `shards` hold k data shards then room for m parity shards. */
  encode(shards: number, length: number, dataShards: number, parityShards: number): number;
  __wbindgen_malloc(length: number): number;
  __wbindgen_free(pointer: number, length: number): void;
}

/**
 * Encoding calls the module's exports on one instance directly, so data is cut into shards straight in the coder's
 * memory and copied out once: the package's `encode` wants the shards already contiguous in a buffer of ours, which
 * it copies in and back (under 4 MiB EC writes those copies and zero-filled temporaries cost more than the coding).
 * Encode alone was checked on one instance against fresh ones over 5,000 random profiles and sizes.
 */
function sharedCoder(): CoderExports {
  coder ??= new webAssembly.Instance(new webAssembly.Module(wasmModule())).exports as unknown as CoderExports;
  return coder;
}

/**
 * The package's allocator (wee_alloc) corrupts its heap after some sequences of reconstruct calls (seen here: a
 * 1-byte-shard reconstruct followed by a larger one traps with "memory access out of bounds", and every later call
 * on that instance fails). So each reconstruct gets a fresh instance (about 0.3 ms), through the package's wrapper:
 * rare work (degraded reads, recovery).
 */
function freshInstance(): ReedSolomonErasure {
  return ReedSolomonErasure.fromBytes(wasmModule());
}

/** Checks an EC profile; throws INVALID_ARGUMENT naming what is wrong. */
export function checkProfile(k: number, m: number): void {
  if (!Number.isInteger(k) || k < 1) throw new StorageError('INVALID_ARGUMENT', `EC k must be an integer >= 1, got ${k}`);
  if (!Number.isInteger(m) || m < 1) throw new StorageError('INVALID_ARGUMENT', `EC m must be an integer >= 1, got ${m}`);
  if (k + m > ecShardsMax) throw new StorageError('INVALID_ARGUMENT', `EC k+m must be at most ${ecShardsMax}, got ${k + m}`);
}

/** Lays bytes [begin, end) of each input shard out in coder memory, shard i at `at + i × stride`. */
type Fill = (memory: Uint8Array, at: number, stride: number, begin: number, end: number) => void;

/** Bytes of each shard the kernel codes per call, so its memory stays small (k+m segments) and in cache. */
const segmentBytes = 128 * 1024;

/**
 * Runs the kernel over `size` bytes of `inputs` shards into `outputs` shards, a segment at a time (boundaries at
 * multiples of `align`; coding is byte-wise, so segments code independently): `fill` lays the inputs' bytes of a
 * segment out, the kernel writes the outputs after them (output j at `at + (inputs + j) × stride`), `drain` copies
 * them away. The stride is the segment rounded up to 16 bytes; what lies in the rounding only reaches output bytes
 * that are never drained.
 */
function codeInSegments(kernel: SimdKernel, tables: Uint8Array, inputs: number, outputs: number, size: number, align: number, fill: Fill, drain: Fill): void {
  const segment = Math.max(1, Math.floor(segmentBytes / align)) * align;
  const stride = Math.ceil(Math.min(segment, size) / vectorBytes) * vectorBytes;
  const at = Math.ceil(tables.length / vectorBytes) * vectorBytes;
  kernel.reserve(at + (inputs + outputs) * stride);
  const memory = kernel.memory();
  memory.set(tables, 0);
  for (let begin = 0; begin < size; begin += segment) {
    const end = Math.min(size, begin + segment);
    fill(memory, at, stride, begin, end);
    kernel.encode(0, at, at + inputs * stride, inputs, outputs, stride);
    drain(memory, at, stride, begin, end);
  }
}

export class Codec {
  readonly k: number;
  readonly m: number;

  constructor(k: number, m: number) {
    checkProfile(k, m);
    this.k = k;
    this.m = m;
  }

  /** Parity shards (m, each as long as the data shards) for `data` (k shards of equal length). */
  encode(data: readonly Uint8Array[]): Uint8Array[] {
    const size = this.#shardSize(data, this.k, 'data');
    if (size === 0) return Array.from({ length: this.m }, () => new Uint8Array(0));
    const parity = this.#code(size, this.k, 1, (memory, at, stride, begin, end) =>
      data.forEach((shard, i) => memory.set(shard.subarray(begin, end), at + i * stride)),
    );
    return Array.from({ length: this.m }, (_, j) => parity.subarray(j * size, (j + 1) * size));
  }

  /**
   * All k+m shards (each `count × stripeUnit` bytes, views of one buffer) of `count` whole stripes of object bytes
   * `source`, padded with zeros when shorter: the same as `splitStripes` then `encode`, with the data cut into shards
   * straight in the coder's memory. The buffer comes from `bufferPool`: a caller done with every shard may give it
   * back (`bufferPool.release(shards[0])`), or just drop it.
   */
  encodeStripes(source: Uint8Array, stripeUnit: number, count: number): Buffer[] {
    const layout = { k: this.k, stripeUnit };
    checkFits(layout, source.length, count);
    const size = count * stripeUnit;
    if (size === 0) return Array.from({ length: this.k + this.m }, () => Buffer.alloc(0));
    const all = this.#code(size, 0, stripeUnit, (memory, base, stride, begin, end) => {
      const stripes = { first: begin / stripeUnit, end: end / stripeUnit };
      forEachChunk(layout, source.length, count, (shard, at, from, bytes) => {
        // The coder's memory is reused: padding is written as zeros, not assumed.
        const to = base + shard * stride + at - begin;
        if (bytes > 0) memory.set(source.subarray(from, from + bytes), to);
        if (bytes < stripeUnit) memory.fill(0, to + bytes, to + stripeUnit);
      }, stripes);
    });
    return Array.from({ length: this.k + this.m }, (_, i) => all.subarray(i * size, (i + 1) * size));
  }

  /**
   * Codes k data shards of `size` bytes and returns a copy of the shards from index `from` on, `size` bytes each, in
   * one buffer from `bufferPool`. `fill(memory, at, stride, begin, end)` lays bytes [begin, end) of each data shard
   * out in coder memory, shard i at `at + i × stride`; segment boundaries fall on multiples of `align`.
   */
  #code(size: number, from: number, align: number, fill: Fill): Buffer {
    const kernel = simdKernel();
    if (kernel === undefined) return this.#codeWithPackage(size, from, (memory, at) => fill(memory, at, size, 0, size));
    const n = this.k + this.m;
    const out = bufferPool.acquire((n - from) * size);
    codeInSegments(kernel, this.#tables(), this.k, this.m, size, align, fill, (memory, at, stride, begin, end) => {
      for (let s = from; s < n; s++) out.set(memory.subarray(at + s * stride, at + s * stride + end - begin), (s - from) * size + begin);
    });
    return out;
  }

  /** `#code` through the package's own encoder, where the engine has no WebAssembly SIMD (stride = size). */
  #codeWithPackage(size: number, from: number, fill: (memory: Uint8Array, at: number) => void): Buffer {
    const coder = sharedCoder();
    const length = size * (this.k + this.m);
    const at = coder.__wbindgen_malloc(length);
    try {
      fill(new Uint8Array(coder.memory.buffer), at);
      this.#check(coder.encode(at, length, this.k, this.m), 'encode');
      // Views are taken after each call: the coder may grow its memory, which detaches older views.
      const out = bufferPool.acquire(length - from * size);
      out.set(new Uint8Array(coder.memory.buffer, at + from * size, out.length));
      return out;
    } finally {
      coder.__wbindgen_free(at, length);
    }
  }

  /**
   * The coefficients c_ji of parity shard j over data shard i (m rows of k), read from the package (the source of
   * truth for the matrix): data shard i holding a 1 at byte i and zeros elsewhere makes parity shard j hold c_ji there.
   */
  #coefficients(): Uint8Array {
    const key = `${this.k},${this.m}`;
    let c = profileCoefficients.get(key);
    if (c === undefined) {
      const { k, m } = this;
      const shards = new Uint8Array((k + m) * k);
      for (let i = 0; i < k; i++) shards[i * k + i] = 1;
      this.#check(freshInstance().encode(shards, k, m), 'encode');
      c = new Uint8Array(m * k);
      for (let j = 0; j < m; j++) for (let i = 0; i < k; i++) c[j * k + i] = shards[(k + j) * k + i] as number;
      profileCoefficients.set(key, c);
    }
    return c;
  }

  /** The SIMD kernel's tables for this profile's coefficients. */
  #tables(): Uint8Array {
    const key = `${this.k},${this.m}`;
    let tables = kernelTables.get(key);
    if (tables === undefined) {
      tables = coefficientTables(this.#coefficients());
      kernelTables.set(key, tables);
    }
    return tables;
  }

  /**
   * The missing data shards (by index) from the first k present shards, with the kernel: the rows of the encoding
   * matrix ([I; C]) that those shards were made with form a k×k matrix; row i of its inverse, applied to them, gives
   * data shard i.
   */
  #rebuildData(kernel: SimdKernel, shards: readonly (Uint8Array | undefined)[], size: number): Map<number, Uint8Array> {
    const { k } = this;
    const c = this.#coefficients();
    const chosen: Uint8Array[] = [];
    const rows = new Uint8Array(k * k);
    shards.forEach((shard, index) => {
      if (shard === undefined || chosen.length === k) return;
      if (index < k) rows[chosen.length * k + index] = 1;
      else rows.set(c.subarray((index - k) * k, (index - k + 1) * k), chosen.length * k);
      chosen.push(shard);
    });
    const inverse = gfInvert(rows, k);
    if (inverse === undefined) throw new StorageError('INTERNAL', `Reed-Solomon decode matrix is singular (k=${k}, m=${this.m})`);
    const missing = Array.from({ length: k }, (_, i) => i).filter((i) => shards[i] === undefined);
    const want = new Uint8Array(missing.length * k);
    missing.forEach((i, r) => want.set(inverse.subarray(i * k, (i + 1) * k), r * k));
    const rebuilt = missing.map(() => new Uint8Array(size));
    codeInSegments(
      kernel,
      coefficientTables(want),
      k,
      missing.length,
      size,
      1,
      (memory, at, stride, begin, end) => chosen.forEach((shard, t) => memory.set(shard.subarray(begin, end), at + t * stride)),
      (memory, at, stride, begin, end) =>
        rebuilt.forEach((shard, r) => shard.set(memory.subarray(at + (k + r) * stride, at + (k + r) * stride + end - begin), begin)),
    );
    return new Map(missing.map((i, r) => [i, rebuilt[r] as Uint8Array]));
  }

  /** `#rebuildData` through the package, where the engine has no WebAssembly SIMD. */
  #rebuildDataWithPackage(shards: readonly (Uint8Array | undefined)[], size: number): Map<number, Uint8Array> {
    const n = this.k + this.m;
    const all = new Uint8Array(size * n);
    shards.forEach((shard, i) => shard !== undefined && all.set(shard, i * size));
    this.#check(freshInstance().reconstruct(all, this.k, this.m, shards.map((s) => s !== undefined)), 'reconstruct');
    const missing = Array.from({ length: this.k }, (_, i) => i).filter((i) => shards[i] === undefined);
    return new Map(missing.map((i) => [i, all.subarray(i * size, (i + 1) * size)]));
  }

  /**
   * All k+m shards from `shards` (k+m entries, `undefined` where a shard is missing or known bad). Needs at least k
   * present; throws INSUFFICIENT_SHARDS otherwise. Present shards are returned as given.
   */
  reconstruct(shards: readonly (Uint8Array | undefined)[]): Uint8Array[] {
    const n = this.k + this.m;
    if (shards.length !== n) throw new TypeError(`expected ${n} shard slots, got ${shards.length}`);
    const present = shards.map((s) => s !== undefined);
    const count = present.filter(Boolean).length;
    if (count < this.k) {
      throw new StorageError('INSUFFICIENT_SHARDS', `only ${count} of ${n} shards are available, ${this.k} are needed`);
    }
    if (count === n) return shards as Uint8Array[];
    const size = this.#shardSize(shards.filter((s): s is Uint8Array => s !== undefined), count, 'present');
    if (size === 0) return shards.map(() => new Uint8Array(0));
    const dataMissing = present.slice(0, this.k).some((p) => !p);
    const kernel = simdKernel();
    const rebuilt = !dataMissing ? new Map<number, Uint8Array>() : kernel ? this.#rebuildData(kernel, shards, size) : this.#rebuildDataWithPackage(shards, size);
    const data = shards.map((shard, i) => shard ?? rebuilt.get(i));
    // Lost parity is re-encoded from the (now complete) data.
    if (!present.slice(this.k).some((p) => !p)) return data as Uint8Array[];
    const parity = this.encode(data.slice(0, this.k) as Uint8Array[]);
    return data.map((shard, i) => shard ?? (parity[i - this.k] as Uint8Array));
  }

  #shardSize(shards: readonly Uint8Array[], expected: number, what: string): number {
    if (shards.length !== expected) throw new TypeError(`expected ${expected} ${what} shards, got ${shards.length}`);
    const size = shards[0]?.length ?? 0;
    for (const s of shards) {
      if (s.length !== size) throw new StorageError('INVALID_ARGUMENT', `${what} shards differ in length (${s.length} vs ${size})`);
    }
    return size;
  }

  #check(result: number, what: string): void {
    if (result !== ReedSolomonErasure.RESULT_OK) {
      throw new StorageError('INTERNAL', `Reed-Solomon ${what} failed with result ${result} (k=${this.k}, m=${this.m})`);
    }
  }
}
