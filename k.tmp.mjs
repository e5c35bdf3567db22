import { SimdKernel, coefficientTables, gfMul } from './dist/src/erasure/simd-kernel.js';
import { randomBytes } from 'node:crypto';
const kern = SimdKernel.create();
console.log('kernel', !!kern);
const k = 4, m = 2, stride = 1 << 20;
const c = Uint8Array.from(randomBytes(k * m));
const tables = coefficientTables(c);
const dataAt = 65536, parityAt = dataAt + k * stride;
kern.reserve(parityAt + m * stride);
let mem = kern.memory();
mem.set(tables, 0);
const data = randomBytes(k * stride); mem.set(data, dataAt);
kern.encode(0, dataAt, parityAt, k, m, stride);
mem = kern.memory();
let bad = 0;
for (let j = 0; j < m; j++) for (let b = 0; b < stride; b += 997) { let v = 0; for (let i = 0; i < k; i++) v ^= gfMul(c[j * k + i], data[i * stride + b]); if (mem[parityAt + j * stride + b] !== v) bad++; }
console.log('mismatches', bad);
const n = 50; const s = process.hrtime.bigint(); for (let r = 0; r < n; r++) kern.encode(0, dataAt, parityAt, k, m, stride); const ms = Number(process.hrtime.bigint() - s) / 1e6 / n;
console.log('4+2 encode of 4 MiB', ms.toFixed(2), 'ms', (4 / ms * 1000 * 1.048576).toFixed(0), 'MB/s');
