/**
 * The structured side of a benchmark's output. Besides its printed lines, a benchmark records each figure here; when
 * the report (`npm run bench -- report`) runs it in a child process, SHOAL_REPORT_OUT names a file that receives one
 * JSON line per figure. Without that variable recording does nothing, so a benchmark run by hand prints only.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import type { CpuUse } from './cpu.js';

export interface Figure {
  /** `objects`, `s3`, `block`, ... (the name given to `npm run bench`). */
  benchmark: string;
  /** A fixed workload shape, e.g. `write 4 KiB c16`; stable across runs, since the report groups by it. */
  workload: string;
  /** What was measured: `ops/s`, `MB/s`, `p99`, ... */
  metric: string;
  value: number;
  /** `ops/s`, `IOPS`, `MB/s` (1e6 bytes), `MiB/s`, `s`, `ms`, `x`. */
  unit: string;
  higherIsBetter: boolean;
  /** Ceph's figure for the same workload measured in this run (recorded anchors are attached by the report). */
  ceph?: number;
  /** A limit the benchmark measured itself for this figure (else the report uses the machine limits it measures). */
  limit?: number;
  limitName?: string;
  /** The goal from the front end's issue, as text, e.g. `>= 2x Ceph`. */
  goal?: string;
  /** The machine's CPU use during the phase that produced the figure (lib/cpu.ts). */
  cpu?: CpuUse;
}

/** `{ cpu }` of a phase's result when it was measured, to spread into a figure. */
export function cpuOf(result: { cpu?: CpuUse | undefined }): { cpu?: CpuUse } {
  return result.cpu ? { cpu: result.cpu } : {};
}

export function record(figure: Figure): void {
  const out = process.env['SHOAL_REPORT_OUT'];
  if (!out || !Number.isFinite(figure.value)) return;
  appendFileSync(out, `${JSON.stringify(figure)}\n`);
}

/** The figures a child wrote, each tagged with its repetition; a line that does not parse is an error, not skipped. */
export function readFigures(path: string): Figure[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Figure);
}
