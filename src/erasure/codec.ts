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
import { StorageError } from '../common/errors.js';

/** Limits of GF(2^8) Reed-Solomon: at most 256 shards in all. */
export const ecShardsMax = 256;

let wasmBytes: Uint8Array | undefined;
let encoder: ReedSolomonErasure | undefined;

/** The WASM binary, read once per process (about 30 KiB). */
function wasmModule(): Uint8Array {
  if (wasmBytes === undefined) {
    const require = createRequire(import.meta.url);
    const main = require.resolve('@subspace/reed-solomon-erasure.wasm');
    wasmBytes = readFileSync(join(dirname(main), 'reed_solomon_erasure_bg.wasm'));
  }
  return wasmBytes;
}

/**
 * The package's allocator (wee_alloc) corrupts its heap after some sequences of reconstruct calls (seen here: a
 * 1-byte-shard reconstruct followed by a larger one traps with "memory access out of bounds", and every later call
 * on that instance fails). Encode alone was checked on one instance against fresh ones over 5,000 random profiles
 * and sizes, so encoding shares one instance; each reconstruct gets a fresh instance (about 0.3 ms), which is rare
 * work (degraded reads, recovery).
 */
function sharedEncoder(): ReedSolomonErasure {
  encoder ??= ReedSolomonErasure.fromBytes(wasmModule());
  return encoder;
}

function freshInstance(): ReedSolomonErasure {
  return ReedSolomonErasure.fromBytes(wasmModule());
}

/** Checks an EC profile; throws INVALID_ARGUMENT naming what is wrong. */
export function checkProfile(k: number, m: number): void {
  if (!Number.isInteger(k) || k < 1) throw new StorageError('INVALID_ARGUMENT', `EC k must be an integer >= 1, got ${k}`);
  if (!Number.isInteger(m) || m < 1) throw new StorageError('INVALID_ARGUMENT', `EC m must be an integer >= 1, got ${m}`);
  if (k + m > ecShardsMax) throw new StorageError('INVALID_ARGUMENT', `EC k+m must be at most ${ecShardsMax}, got ${k + m}`);
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
    const all = new Uint8Array(size * (this.k + this.m));
    data.forEach((shard, i) => all.set(shard, i * size));
    this.#check(sharedEncoder().encode(all, this.k, this.m), 'encode');
    return Array.from({ length: this.m }, (_, j) => all.subarray((this.k + j) * size, (this.k + j + 1) * size));
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
    const all = new Uint8Array(size * n);
    shards.forEach((shard, i) => shard !== undefined && all.set(shard, i * size));
    const dataMissing = present.slice(0, this.k).some((p) => !p);
    if (dataMissing) this.#check(freshInstance().reconstruct(all, this.k, this.m, present), 'reconstruct');
    // The library restores data shards only; lost parity is re-encoded from the (now complete) data.
    if (present.slice(this.k).some((p) => !p)) this.#check(sharedEncoder().encode(all, this.k, this.m), 'encode');
    return shards.map((shard, i) => shard ?? all.subarray(i * size, (i + 1) * size));
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
