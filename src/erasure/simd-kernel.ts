/**
 * Parity coding with WebAssembly SIMD: parity_j = Σ_i c_ji · data_i over GF(2^8), 16 bytes at a time, each product
 * by the split-nibble method (c·x = L_c[x & 15] ^ H_c[x >> 4], two 16-entry tables per coefficient looked up with
 * `i8x16.swizzle`, the PSHUFB technique of ISA-L and klauspost/reedsolomon).
 *
 * Why here and not in the package: `@subspace/reed-solomon-erasure.wasm` is built without SIMD and multiplies a byte
 * at a time through a 64 KiB table: 4+2 encodes at ~420 MB/s, ~10 ms of a core per 4 MiB EC write, a fifth of an
 * OSD's CPU under EC writes on a machine whose cores are the limit. The package stays the source of truth: the
 * coefficients are read from it (`Codec`), it codes where an engine has no SIMD, and the tests hold this kernel to
 * its output.
 *
 * The module is written out byte by byte below (no assembler among the dependencies); its text form is beside each
 * part. It imports its memory, so the caller owns and grows it.
 */
import { webAssembly } from '../common/wasm.js';
import { gfMul } from './gf.js';

/** Bytes per coefficient's tables: 16 products of the low nibble, then 16 of the high nibble. */
export const tableBytes = 32;
/** The kernel codes whole 16-byte vectors: shard strides are multiples of this. */
export const vectorBytes = 16;

const i32 = 0x7f;
const v128 = 0x7b;
const simd = 0xfd;
const op = {
  loop: 0x03, end: 0x0b, brIf: 0x0d, localGet: 0x20, localSet: 0x21, localTee: 0x22, i32Const: 0x41,
  i32LtU: 0x49, i32Add: 0x6a,
} as const;
const simdOp = { load: 0x00, store: 0x0b, const: 0x0c, swizzle: 0x0e, and: 0x4e, xor: 0x51, shrU: 0x6d } as const;
/** memarg of a v128 access: alignment 2^4, then the offset. */
const memarg = (offset: number) => [4, offset];

/** Parameters of `encode(tables, data, parity, k, m, stride)`, then its locals. */
const L = { tables: 0, data: 1, parity: 2, k: 3, m: 4, stride: 5, off: 6, j: 7, i: 8, t: 9, src: 10, dst: 11, acc: 12, x: 13, mask: 14 } as const;

/** `local += x`, where x is what the instructions `by` leave on the stack. */
const addTo = (local: number, by: number[]) => [op.localGet, local, ...by, op.i32Add, op.localSet, local];
/** `local += 1; br_if depth (local < limit)`, the tail of a do-while loop. */
const countUp = (local: number, step: number, limit: number) => [op.localGet, local, op.i32Const, step, op.i32Add, op.localTee, local, op.localGet, limit, op.i32LtU, op.brIf, 0];

/*
 * for (off = 0; off < stride; off += 16) {          // callers ensure stride, k, m >= 1 and stride % 16 == 0
 *   t = tables; dst = parity + off;
 *   for (j = 0; j < m; j++, dst += stride) {
 *     acc = 0; src = data + off;
 *     for (i = 0; i < k; i++, t += 32, src += stride) {
 *       x = load(src); acc ^= swizzle(load(t), x & 0x0f) ^ swizzle(load(t + 16), x >> 4);
 *     }
 *     store(dst, acc);
 *   }
 * }
 */
const body = [
  2, 6, i32, 3, v128, // locals: off j i t src dst (i32), acc x mask (v128)
  simd, simdOp.const, ...new Array<number>(16).fill(0x0f), op.localSet, L.mask,
  op.i32Const, 0, op.localSet, L.off,
  op.loop, 0x40,
  op.localGet, L.tables, op.localSet, L.t,
  op.localGet, L.parity, op.localGet, L.off, op.i32Add, op.localSet, L.dst,
  op.i32Const, 0, op.localSet, L.j,
  op.loop, 0x40,
  simd, simdOp.const, ...new Array<number>(16).fill(0), op.localSet, L.acc,
  op.localGet, L.data, op.localGet, L.off, op.i32Add, op.localSet, L.src,
  op.i32Const, 0, op.localSet, L.i,
  op.loop, 0x40,
  op.localGet, L.src, simd, simdOp.load, ...memarg(0), op.localSet, L.x,
  op.localGet, L.acc,
  op.localGet, L.t, simd, simdOp.load, ...memarg(0),
  op.localGet, L.x, op.localGet, L.mask, simd, simdOp.and,
  simd, simdOp.swizzle, simd, simdOp.xor,
  op.localGet, L.t, simd, simdOp.load, ...memarg(16),
  op.localGet, L.x, op.i32Const, 4, simd, simdOp.shrU,
  simd, simdOp.swizzle, simd, simdOp.xor,
  op.localSet, L.acc,
  ...addTo(L.t, [op.i32Const, tableBytes]),
  ...addTo(L.src, [op.localGet, L.stride]),
  ...countUp(L.i, 1, L.k),
  op.end,
  op.localGet, L.dst, op.localGet, L.acc, simd, simdOp.store, ...memarg(0),
  ...addTo(L.dst, [op.localGet, L.stride]),
  ...countUp(L.j, 1, L.m),
  op.end,
  ...countUp(L.off, vectorBytes, L.stride),
  op.end,
  op.end,
];

/**
 * `bytes` prefixed by their length as unsigned LEB128 (every length here is below 16,384: one or two bytes). The
 * immediates in `body` (i32.const 0, 1, 4, 16, 32; memarg offsets 0 and 16; local indexes) are below 64, so each
 * is one LEB byte as written.
 */
function withLength(bytes: number[]): number[] {
  if (bytes.length >= 16384) throw new RangeError('a WebAssembly section this long needs a longer LEB128');
  return [...(bytes.length < 128 ? [bytes.length] : [0x80 | (bytes.length & 0x7f), bytes.length >> 7]), ...bytes];
}
const section = (id: number, contents: number[]) => [id, ...withLength(contents)];
const name = (text: string) => withLength([...Buffer.from(text, 'latin1')]);

const moduleBytes = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
  ...section(1, [1, 0x60, 6, i32, i32, i32, i32, i32, i32, 0]), // (type (func (param i32 x6)))
  ...section(2, [1, ...name('env'), ...name('memory'), 0x02, 0x00, 1]), // (import "env" "memory" (memory 1))
  ...section(3, [1, 0]), // (func (type 0))
  ...section(7, [1, ...name('encode'), 0x00, 0]), // (export "encode" (func 0))
  ...section(10, [1, ...withLength(body)]),
]);

interface KernelExports {
  encode(tables: number, data: number, parity: number, k: number, m: number, stride: number): void;
}

/** The kernel's tables for coefficients `c` (m rows of k, row-major): 32 bytes each, in the order the kernel reads. */
export function coefficientTables(c: Uint8Array): Uint8Array {
  const out = new Uint8Array(c.length * tableBytes);
  c.forEach((coefficient, n) => {
    for (let nibble = 0; nibble < 16; nibble++) {
      out[n * tableBytes + nibble] = gfMul(coefficient, nibble);
      out[n * tableBytes + 16 + nibble] = gfMul(coefficient, nibble << 4);
    }
  });
  return out;
}

/**
 * One kernel instance and the memory it codes in. `memory()` views go stale when `reserve` grows it: take them after.
 */
export class SimdKernel {
  readonly #memory = new webAssembly.Memory({ initial: 1 });
  readonly #exports: KernelExports;

  private constructor(module: object) {
    this.#exports = new webAssembly.Instance(module, { env: { memory: this.#memory } }).exports as unknown as KernelExports;
  }

  /** A kernel, or undefined where this engine has no WebAssembly SIMD (callers then code with the package). */
  static create(): SimdKernel | undefined {
    const module = compiled();
    return module ? new SimdKernel(module) : undefined;
  }

  /** Makes the memory at least `bytes` long. */
  reserve(bytes: number): void {
    const have = this.#memory.buffer.byteLength;
    if (bytes > have) this.#memory.grow(Math.ceil((bytes - have) / 65536));
  }

  memory(): Uint8Array {
    return new Uint8Array(this.#memory.buffer);
  }

  /**
   * Writes m parity shards at `parityAt` (each `stride` bytes apart) from k data shards at `dataAt`, with the tables
   * of `coefficientTables` at `tablesAt`. `stride` is a positive multiple of 16; all of it lies in `memory()`.
   */
  encode(tablesAt: number, dataAt: number, parityAt: number, k: number, m: number, stride: number): void {
    if (k < 1 || m < 1 || stride < vectorBytes || stride % vectorBytes !== 0) throw new RangeError(`bad kernel arguments k=${k} m=${m} stride=${stride}`);
    if (Math.max(tablesAt + k * m * tableBytes, dataAt + k * stride, parityAt + m * stride) > this.#memory.buffer.byteLength) {
      throw new RangeError('kernel arguments lie outside its memory');
    }
    this.#exports.encode(tablesAt, dataAt, parityAt, k, m, stride);
  }
}

let module: object | null | undefined;

function compiled(): object | undefined {
  if (module === undefined) {
    module = webAssembly.validate(moduleBytes) ? new webAssembly.Module(moduleBytes) : null;
  }
  return module ?? undefined;
}
