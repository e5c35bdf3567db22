/** Shared measuring helpers for benchmarks: closed-loop load with a fixed number in flight, percentiles, baselines. */
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { startCpuMeter, type CpuUse } from './cpu.js';

export interface LoadResult {
  ops: number;
  bytes: number;
  seconds: number;
  latenciesMs: number[];
  errors: number;
  /** The machine's CPU use during the phase (undefined where /proc cannot be read). */
  cpu?: CpuUse;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/**
 * Seconds each timed phase is preceded by the same load, untimed (fio's `ramp_time`): a daemon that just started
 * runs its first seconds in V8's interpreter and baseline compiler (measured: a fresh cluster's OSDs spent 0.63 ms
 * of CPU per 4 KiB write over its first 10 s and 0.45 ms over 25 s), and an operator's daemons have long since
 * warmed up. `SHOAL_BENCH_WARMUP_SECONDS` (0 turns it off).
 */
export const warmupSeconds = Math.max(0, Number(process.env['SHOAL_BENCH_WARMUP_SECONDS'] ?? 3) || 0);

/** `closedLoop` after `warmupSeconds` of the same load (the same op indexes from 0, so it touches the same objects). */
export async function warmedLoop(inFlight: number, limits: { count?: number; seconds?: number }, op: (i: number) => Promise<number>): Promise<LoadResult> {
  if (warmupSeconds > 0) await closedLoop(inFlight, { seconds: warmupSeconds, ...(limits.count === undefined ? {} : { count: limits.count }) }, op);
  return closedLoop(inFlight, limits, op);
}

/** Runs `op(i)` with `inFlight` concurrent workers until `count` ops, `seconds` elapsed or `until()`, whichever comes first. */
export async function closedLoop(inFlight: number, limits: { count?: number; seconds?: number; until?: () => boolean }, op: (i: number) => Promise<number>): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  let next = 0;
  let bytes = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + (limits.seconds ?? 3600) * 1000;
  const worker = async () => {
    while (performance.now() < deadline && (limits.count === undefined || next < limits.count) && !limits.until?.()) {
      const i = next++;
      const t0 = performance.now();
      try {
        // Not `bytes += await op(i)`: that reads `bytes` before awaiting, so concurrent workers would lose updates.
        const done = await op(i);
        bytes += done;
        latenciesMs.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  const cpu = startCpuMeter();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - started) / 1000;
  latenciesMs.sort((a, b) => a - b);
  const use = cpu.stop(latenciesMs.length);
  return { ops: latenciesMs.length, bytes, seconds, latenciesMs, errors, ...(use ? { cpu: use } : {}) };
}

export function describe(name: string, r: LoadResult): string {
  const opsPerSecond = r.ops / r.seconds;
  const mbPerSecond = r.bytes / r.seconds / 1e6;
  return `${name.padEnd(28)} ${opsPerSecond.toFixed(0).padStart(8)} ops/s ${mbPerSecond.toFixed(1).padStart(8)} MB/s  p50 ${percentile(r.latenciesMs, 50).toFixed(2).padStart(8)} ms  p99 ${percentile(r.latenciesMs, 99).toFixed(2).padStart(8)} ms${r.errors ? `  errors ${r.errors}` : ''}${r.cpu ? `  ${describeCpu(r.cpu)}` : ''}`;
}

/** "cpu 92% (steal 4%), 3.1 ms/op: osd 71%, bench 20%, other 9%" */
export function describeCpu(cpu: CpuUse): string {
  const shares = Object.entries(cpu.shares).sort((a, b) => b[1] - a[1]).map(([who, share]) => `${who} ${(share * 100).toFixed(0)}%`);
  const perOp = cpu.msPerOp !== undefined ? `, ${cpu.msPerOp.toFixed(cpu.msPerOp < 10 ? 2 : 0)} ms/op` : '';
  return `cpu ${(cpu.busy * 100).toFixed(0)}% (steal ${(cpu.steal * 100).toFixed(0)}%)${perOp}: ${shares.join(', ')}`;
}

/** Sequential write bandwidth of a plain file in `dir` (MB/s), `chunkBytes` per write, fdatasync after each when `durable`. */
export function plainFileWriteMBps(dir: string, totalBytes: number, chunkBytes: number, durable: boolean): number {
  const path = join(dir, `baseline-${process.pid}.bin`);
  const chunk = Buffer.alloc(chunkBytes, 0x5a);
  const fd = openSync(path, 'w');
  const started = performance.now();
  try {
    for (let written = 0; written < totalBytes; written += chunkBytes) {
      writeSync(fd, chunk);
      if (durable) fdatasyncSync(fd);
    }
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const seconds = (performance.now() - started) / 1000;
  rmSync(path, { force: true });
  return totalBytes / seconds / 1e6;
}
