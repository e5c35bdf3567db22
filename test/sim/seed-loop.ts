/**
 * The seed loop every simulation test shares: a batch of fresh seeds by default, `SHOAL_SIM_SEEDS=N` for N of them,
 * `SHOAL_SEED=S` for exactly seed S with an event trace if it fails. Each failure names its seed.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { seedFromEnv } from '../../src/common/index.js';
import { SimulationFailure, type SimStats } from './harness.js';

export function seedCount(defaultSeeds: number): number {
  const raw = process.env['SHOAL_SIM_SEEDS'];
  if (raw === undefined || raw === '') return defaultSeeds;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`SHOAL_SIM_SEEDS must be a positive integer: ${raw}`);
  return n;
}

/** Seed i of a batch: spread over the whole 32-bit range so neighbouring batches do not overlap. */
function batchSeed(base: number, i: number): number {
  return (base + Math.imul(i, 0x9e3779b9)) >>> 0;
}

export function summarize(runs: SimStats[]): string {
  const sum = (f: (s: SimStats) => number) => runs.reduce((n, s) => n + f(s), 0);
  const share = (f: (s: SimStats) => boolean) => `${Math.round((100 * runs.filter(f).length) / runs.length)}%`;
  return [
    `${runs.length} runs (${runs.filter((s) => s.nodes === 3).length} of 3 nodes, ${runs.filter((s) => s.nodes === 5).length} of 5)`,
    `${sum((s) => s.leaders)} leaders elected, ${sum((s) => s.committed)} entries committed, ${sum((s) => s.acked)} commands acknowledged`,
    `${sum((s) => s.crashes)} crashes (${sum((s) => s.crashesInReady)} mid-write), ${sum((s) => s.partitions)} partitions`,
    `${sum((s) => s.compactions)} compactions, ${sum((s) => s.snapshotsInstalled)} snapshots installed (in ${share((s) => s.snapshotsInstalled > 0)} of runs)`,
    `${sum((s) => s.messages)} messages; slowest convergence after healing ${Math.max(...runs.map((s) => s.convergedAfterMs))} ms`,
  ].join('; ');
}

/**
 * Runs `run(seed, traceEvents)` for every seed of the batch (or the one `SHOAL_SEED`), failing the test with the
 * seed's message on the first SimulationFailure. Returns the stats of every run.
 */
export function runSeeds(
  t: TestContext,
  defaultSeeds: number,
  run: (seed: number, traceEvents: number) => SimStats,
): SimStats[] {
  const single = process.env['SHOAL_SEED'];
  const seeds: number[] = [];
  if (single !== undefined && single !== '') {
    seeds.push(seedFromEnv());
    t.diagnostic(`seed ${seeds[0]} alone`);
  } else {
    const base = seedFromEnv();
    const count = seedCount(defaultSeeds);
    for (let i = 0; i < count; i++) seeds.push(batchSeed(base, i));
    t.diagnostic(`${count} seeds from base ${base}; any failure prints its own SHOAL_SEED`);
  }
  const runs: SimStats[] = [];
  const started = process.hrtime.bigint();
  for (const seed of seeds) {
    try {
      runs.push(run(seed, seeds.length === 1 ? 400 : 0));
    } catch (error) {
      if (error instanceof SimulationFailure) {
        process.stderr.write(`\n${error.message}\n`);
        assert.fail(error.message);
      }
      throw error;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  t.diagnostic(`${summarize(runs)}; ${seconds.toFixed(1)} s`);
  return runs;
}
