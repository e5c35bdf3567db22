/**
 * The Raft simulation over many seeds. By default a few hundred fresh seeds per run (3- and 5-node clusters, chosen
 * by each seed); `SHOAL_SIM_SEEDS=N` runs N of them; `SHOAL_SEED=S` runs exactly seed S, with an event trace printed
 * if it fails. Each failure names its seed and the command that reproduces it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seedFromEnv } from '../../src/common/index.js';
import { SimulationFailure, runSimulation, type SimStats } from './harness.js';

const defaultSeeds = 800;

function seedCount(): number {
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

function summarize(runs: SimStats[]): string {
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

test('Raft simulation: safety under faults and liveness after healing, over many seeds (3 and 5 nodes)', (t) => {
  const single = process.env['SHOAL_SEED'];
  if (single !== undefined && single !== '') {
    const seed = seedFromEnv();
    t.diagnostic(`seed ${seed} alone`);
    const stats = runSimulation({ seed, traceEvents: 400 });
    t.diagnostic(summarize([stats]));
    return;
  }
  const base = seedFromEnv();
  const count = seedCount();
  t.diagnostic(`${count} seeds from base ${base}; any failure prints its own SHOAL_SEED`);
  const runs: SimStats[] = [];
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const seed = batchSeed(base, i);
    try {
      runs.push(runSimulation({ seed }));
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
  assert.ok(runs.some((s) => s.snapshotsInstalled > 0) || count < 20, 'snapshot install was exercised');
  assert.ok(runs.some((s) => s.crashesInReady > 0) || count < 20, 'crashes in the middle of a Ready were exercised');
});
