/**
 * The Raft simulation over many seeds, with the default key-value application. By default a few hundred fresh seeds
 * per run (3- and 5-node clusters, chosen by each seed); `SHOAL_SIM_SEEDS=N` runs N of them; `SHOAL_SEED=S` runs
 * exactly seed S, with an event trace printed if it fails.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSimulation } from './harness.js';
import { runSeeds, seedCount } from './seed-loop.js';

test('Raft simulation: safety under faults and liveness after healing, over many seeds (3 and 5 nodes)', (t) => {
  const runs = runSeeds(t, 800, (seed, traceEvents) => runSimulation({ seed, traceEvents }));
  if (seedCount(800) >= 20 && runs.length >= 20) {
    assert.ok(runs.some((s) => s.snapshotsInstalled > 0), 'snapshot install was exercised');
    assert.ok(runs.some((s) => s.crashesInReady > 0), 'crashes in the middle of a Ready were exercised');
  }
});
