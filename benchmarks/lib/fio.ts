/** fio with JSON output, as every benchmark that drives it runs it: one job, its read or write side, and the CPU meanwhile. */
import { spawnSync } from 'node:child_process';
import { startCpuMeter, type CpuUse } from './cpu.js';
import { warmupSeconds } from './stats.js';

/** The fields of one side (read or write) of a fio job that the benchmarks use. */
export interface FioSide {
  iops: number;
  bw_bytes: number;
  total_ios: number;
  clat_ns: { percentile?: Record<string, number> };
}

/**
 * Runs `fio ARGS --output-format=json` and returns the side of its first job that `--rw=` names (write for
 * write/randwrite, read otherwise) with the machine's CPU use during the run (its warm-up included, so CPU per op
 * reads a little high); a failing fio throws with its stderr.
 */
export function runFio(args: string[], options: { timeoutMs?: number } = {}): { side: FioSide; cpu?: CpuUse } {
  // Time-based phases start with the same untimed warm-up as the closed loops (a size-based one could end inside it).
  const ramp = warmupSeconds > 0 && args.includes('--time_based') ? [`--ramp_time=${warmupSeconds}`] : [];
  const full = [...args, ...ramp, '--output-format=json'];
  const meter = startCpuMeter();
  const r = spawnSync('fio', full, { encoding: 'utf8', maxBuffer: 64 * 2 ** 20, ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}) });
  if (r.status !== 0) throw new Error(`fio ${full.join(' ')} failed (${r.status}): ${r.stderr}`);
  // fio may print notices before its JSON.
  const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { jobs: Record<'read' | 'write', FioSide>[] };
  const job = json.jobs[0];
  if (!job) throw new Error('fio printed no job');
  const side = args.some((a) => /^--rw=\w*write$/.test(a)) ? job.write : job.read;
  const cpu = meter.stop(side.total_ios);
  return { side, ...(cpu ? { cpu } : {}) };
}
