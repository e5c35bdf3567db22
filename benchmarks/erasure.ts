/**
 * `npm run bench -- erasure`: Reed-Solomon encode and decode throughput per (k,m) over 4 MiB of data, beside
 * memcpy (Buffer.copy of the same 4 MiB) measured in the same run. Decode loses the first m data shards (the worst
 * case: every lost byte is rebuilt) and counts the object's data bytes per second, as encode does.
 */
import { Random } from '../src/common/index.js';
import { Codec } from '../src/erasure/index.js';
import { record } from './lib/results.js';

const MiB = 1024 * 1024;
const dataBytes = 4 * MiB;
const profiles: [number, number][] = [[2, 1], [4, 2], [6, 3], [8, 3], [10, 4]];

/** MB/s of `fn` over `bytes` per call, repeated for at least `minMs` after one warm-up call. */
function measure(bytes: number, fn: () => void, minMs = 600): number {
  fn();
  let calls = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    fn();
    calls++;
    elapsed = performance.now() - started;
  }
  return (bytes * calls) / MiB / (elapsed / 1000);
}

export function codecFigures(): void {
  const random = new Random(9);
  const source = Buffer.from(random.bytes(dataBytes));
  const target = Buffer.alloc(dataBytes);
  const memcpy = measure(dataBytes, () => source.copy(target));
  process.stdout.write(`npm run bench -- erasure: ${dataBytes / MiB} MiB of data per call, one core\n`);
  process.stdout.write(`${'memcpy (Buffer.copy)'.padEnd(24)} ${memcpy.toFixed(0).padStart(7)} MB/s\n`);
  for (const [k, m] of profiles) {
    const codec = new Codec(k, m);
    const size = Math.floor(dataBytes / k);
    const data = Array.from({ length: k }, (_, i) => source.subarray(i * size, (i + 1) * size));
    const parity = codec.encode(data);
    const bytes = size * k;
    const encode = measure(bytes, () => codec.encode(data));
    const lossy = [...data, ...parity].map((s, i) => (i < m ? undefined : s));
    const decode = measure(bytes, () => codec.reconstruct(lossy));
    record({ benchmark: 'erasure', workload: `${k}+${m} encode 4 MiB`, metric: 'MiB/s', value: encode, unit: 'MiB/s', higherIsBetter: true, limit: memcpy, limitName: 'memcpy (Buffer.copy), one core' });
    record({ benchmark: 'erasure', workload: `${k}+${m} decode 4 MiB, ${m} lost`, metric: 'MiB/s', value: decode, unit: 'MiB/s', higherIsBetter: true, limit: memcpy, limitName: 'memcpy (Buffer.copy), one core' });
    process.stdout.write(
      `${`${k}+${m} encode`.padEnd(24)} ${encode.toFixed(0).padStart(7)} MB/s  ${(encode / memcpy).toFixed(3)}x memcpy\n` +
        `${`${k}+${m} decode (${m} data lost)`.padEnd(24)} ${decode.toFixed(0).padStart(7)} MB/s  ${(decode / memcpy).toFixed(3)}x memcpy\n`,
    );
  }
}

export async function run(): Promise<void> {
  codecFigures();
}
