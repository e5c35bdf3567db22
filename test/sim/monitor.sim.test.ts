/**
 * The monitors' quorum in simulation: Raft (src/consensus) carrying the real encoded admin and OSD commands, applied
 * by the real cluster-map reducers, under the same faults as the Raft simulation. On top of Raft's checkers: every
 * monitor that holds epoch E holds the same map for E (after every apply, snapshot install and restart).
 * `SHOAL_SIM_SEEDS=N` and `SHOAL_SEED=S` work as for the Raft simulation.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSimulation } from './harness.js';
import { monitorMapMachine, monitorCommand } from './monitor-map.js';
import { runSeeds } from './seed-loop.js';

test('monitor simulation: every monitor holding epoch E has the same cluster map for E, over many seeds', (t) => {
  let epochs = 0;
  const runs = runSeeds(t, 200, (seed, traceEvents) => {
    const stateMachine = monitorMapMachine();
    const stats = runSimulation({ seed, traceEvents, stateMachine, command: monitorCommand });
    epochs += stateMachine.highestEpoch;
    return stats;
  });
  t.diagnostic(`${epochs} map epochs reached in all (summed over runs)`);
  assert.ok(epochs > runs.length * 10, 'commands changed the map (the reducers were exercised, not only refused)');
});
