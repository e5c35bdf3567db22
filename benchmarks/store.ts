/**
 * `npm run bench -- store`: LevelStore transactions, 16 in flight, against a plain baseline on the same disk
 * (each op a file write followed by its own fsync, 16 in flight). Directory: $SHOAL_BENCH_DIR or the temp dir.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Random } from '../src/common/index.js';
import { LevelStore, Transaction } from '../osd/store/index.js';

const inFlight = 16;
const KiB = 1024;
const MiB = 1024 * KiB;

interface Result {
  ops: number;
  seconds: number;
  bytes: number;
}

async function runConcurrent(total: number, op: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < total) await op(next++);
    }),
  );
  return (performance.now() - started) / 1000;
}

/** Baseline: each worker writes `size` bytes into its own file and fsyncs it, op after op. */
async function baseline(dir: string, size: number, total: number): Promise<Result> {
  const data = new Random(1).bytes(size);
  const handles = await Promise.all(Array.from({ length: inFlight }, (_, w) => open(join(dir, `baseline-${size}-${w}`), 'w')));
  let next = 0;
  const started = performance.now();
  await Promise.all(
    handles.map(async (handle) => {
      let slot = 0;
      while (next < total) {
        next++;
        await handle.write(data, 0, size, (slot++ % 64) * size);
        await handle.sync();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(handles.map((h) => h.close()));
  return { ops: total, seconds, bytes: total * size };
}

function line(name: string, result: Result, base: Result, extra = ''): void {
  const opsPerSecond = result.ops / result.seconds;
  const mbPerSecond = result.bytes / MiB / result.seconds;
  const ratio = opsPerSecond / (base.ops / base.seconds);
  process.stdout.write(
    `${name.padEnd(44)} ${opsPerSecond.toFixed(0).padStart(7)} ops/s ${mbPerSecond.toFixed(1).padStart(8)} MB/s   ${ratio.toFixed(2)}x baseline${extra}\n`,
  );
}

export async function run(): Promise<void> {
  const root = await mkdtemp(join(process.env['SHOAL_BENCH_DIR'] ?? tmpdir(), 'shoal-bench-store-'));
  const store = new LevelStore({ dir: join(root, 'store') });
  await store.start();
  try {
    process.stdout.write(`npm run bench -- store: LevelStore, ${inFlight} transactions in flight, in ${root}\n`);
    const small = new Random(2).bytes(4 * KiB);
    const large = new Random(3).bytes(4 * MiB);
    const smallOps = 3000;
    const largeOps = 48;

    const base4k = await baseline(root, 4 * KiB, smallOps);
    line('baseline: 4 KiB pwrite + fsync', base4k, base4k);

    let before = store.stats;
    let seconds = await runConcurrent(smallOps, (i) => store.apply(new Transaction().write({ pg: '1.0', name: `small.${i}` }, 0, small)));
    let after = store.stats;
    const syncsPerTx = (b: typeof before, a: typeof after, n: number) =>
      `  (${((a.kvSyncs - b.kvSyncs + a.fileSyncs - b.fileSyncs) / n).toFixed(2)} syncs/tx)`;
    line('store: 4 KiB new objects (inline)', { ops: smallOps, seconds, bytes: smallOps * 4 * KiB }, base4k, syncsPerTx(before, after, smallOps));

    const images = 16;
    await runConcurrent(images, (i) => store.apply(new Transaction().writeFull({ pg: '1.1', name: `rbd.${i}` }, large)));
    const random = new Random(4);
    const offsets = Array.from({ length: smallOps }, () => random.int(0, 1023) * 4 * KiB);
    before = store.stats;
    seconds = await runConcurrent(smallOps, (i) =>
      store.apply(new Transaction().write({ pg: '1.1', name: `rbd.${i % images}` }, offsets[i] as number, small)),
    );
    after = store.stats;
    line('store: 4 KiB overwrites in 4 MiB objects', { ops: smallOps, seconds, bytes: smallOps * 4 * KiB }, base4k, syncsPerTx(before, after, smallOps));

    const base4m = await baseline(root, 4 * MiB, largeOps);
    line('baseline: 4 MiB pwrite + fsync', base4m, base4m);
    before = store.stats;
    seconds = await runConcurrent(largeOps, (i) => store.apply(new Transaction().writeFull({ pg: '1.2', name: `big.${i % 24}` }, large)));
    after = store.stats;
    line('store: 4 MiB writeFull', { ops: largeOps, seconds, bytes: largeOps * 4 * MiB }, base4m, syncsPerTx(before, after, largeOps));

    // What O_DIRECT data files save: new 4 MiB objects (files kept, so the page cache grows as on an OSD filling up),
    // in stores that differ only in `directWrites`, alternating; CPU of this process (the store's threads included).
    for (let round = 0; round < 2; round++) {
      for (const directWrites of [true, false]) {
        const other = new LevelStore({ dir: join(root, `files-${directWrites}-${round}`), directWrites });
        await other.start();
        try {
          const cpu = process.cpuUsage();
          const count = 48;
          const took = await runConcurrent(count, (i) => other.apply(new Transaction().writeFull({ pg: '1.3', name: `new.${i}` }, large)));
          const used = process.cpuUsage(cpu);
          const label = `store: new 4 MiB objects, ${directWrites ? 'O_DIRECT' : 'buffered'} files`;
          process.stdout.write(`${label.padEnd(44)} ${(count / took).toFixed(0).padStart(7)} ops/s   CPU per object: user ${(used.user / 1000 / count).toFixed(1)} ms, system ${(used.system / 1000 / count).toFixed(1)} ms\n`);
        } finally {
          await other.stop();
        }
      }
    }

    const readOps = 3000;
    seconds = await runConcurrent(readOps, (i) => store.read({ pg: '1.1', name: `rbd.${i % images}` }, offsets[i] as number, 4 * KiB).then(() => {}));
    process.stdout.write(`${'store: 4 KiB verified reads (page cache)'.padEnd(44)} ${(readOps / seconds).toFixed(0).padStart(7)} ops/s\n`);
  } finally {
    await store.stop();
    await rm(root, { recursive: true, force: true });
  }
}
