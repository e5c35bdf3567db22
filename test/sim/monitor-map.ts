/**
 * The monitors' application for the simulation: the real cluster-map reducers (`monitor/map/commands.ts`) applied to
 * the real encoded commands, exactly as `monitor/monitor.ts` applies committed entries (a refused command leaves the
 * map as it was, on every monitor). Its checker: every monitor that holds epoch E holds the same map for E.
 */
import { createHash } from 'node:crypto';
import {
  StorageError,
  decodeClusterMap,
  decodeMonitorCommand,
  emptyClusterMap,
  encodeClusterMap,
  encodeMonitorCommand,
  wire,
  type ClusterMap,
  type MonitorCommand,
  type Random,
} from '../../src/index.js';
import { applyCommand, knownFlags } from '../../monitor/map/commands.js';
import type { CommandGenerator, StateMachine } from './state-machine.js';

const one = 0x10000;
const hosts = ['node-0', 'node-1', 'node-2', 'node-3', ''];
const poolNames = ['data', 'rbd', 'ec', 'logs', '', 'bad name/'];

/** The map every monitor starts from: initialised, 3 hosts × 2 OSDs, one pool (as `shoal up` would leave it). */
function bootstrapMap(): ClusterMap {
  const commands: MonitorCommand[] = [
    { init: { fsid: 'sim', monitors: [{ name: 'a', address: '127.0.0.1:7400' }] } },
    ...[0, 1, 2, 3, 4, 5].map((id): MonitorCommand => ({ osdBoot: { id, address: `127.0.0.1:${7600 + id}`, host: `node-${id % 3}` } })),
    { poolCreate: { name: 'data', pgNum: 16 } },
  ];
  let map = emptyClusterMap('');
  for (const [i, command] of commands.entries()) map = applyCommand(map, { ...command, timestampMs: 1000 + i }).map;
  return map;
}

export interface MonitorMapMachine extends StateMachine<ClusterMap> {
  /** The highest epoch any monitor reached, and how many epochs were compared. */
  readonly highestEpoch: number;
}

/** A fresh application per simulated run (the per-epoch record belongs to one run). */
export function monitorMapMachine(): MonitorMapMachine {
  const initial = bootstrapMap();
  const digestAt = new Map<number, string>();
  const digest = (map: ClusterMap) => createHash('sha256').update(encodeClusterMap(map)).digest('hex');
  let highestEpoch = initial.epoch;
  return {
    get highestEpoch() {
      return highestEpoch;
    },
    initial: () => structuredClone(initial),
    apply(state, data) {
      try {
        return applyCommand(state, decodeMonitorCommand(data)).map;
      } catch (error) {
        if (error instanceof StorageError) return state;
        throw error;
      }
    },
    digest,
    snapshot: (state) => encodeClusterMap(state),
    restore: (bytes) => decodeClusterMap(bytes),
    check(state) {
      const d = digest(state);
      const known = digestAt.get(state.epoch);
      if (state.epoch > highestEpoch) highestEpoch = state.epoch;
      if (known === undefined) digestAt.set(state.epoch, d);
      else if (known !== d) return `map epoch ${state.epoch} is ${d.slice(0, 16)}, another monitor had ${known.slice(0, 16)} for that epoch`;
      return undefined;
    },
  };
}

function ids(random: Random): number[] {
  return Array.from({ length: random.int(1, 3) }, () => random.int(0, 9));
}

/** One admin or OSD command, valid or not (unknown names, impossible profiles, weights out of range). */
function randomCommand(random: Random): MonitorCommand {
  switch (random.int(0, 14)) {
    case 0: {
      const erasure = random.chance(0.3);
      return {
        poolCreate: {
          name: random.pick(poolNames),
          type: erasure ? wire.PoolType.POOL_TYPE_ERASURE : wire.PoolType.POOL_TYPE_REPLICATED,
          size: random.int(0, 5),
          minSize: random.int(0, 4),
          pgNum: random.pick([0, 1, 8, 32, 100_000]),
          ecK: erasure ? random.int(0, 6) : 0,
          ecM: erasure ? random.int(0, 3) : 0,
          rule: random.pick(['', '', 'replicated_rule', 'erasure_rule', 'nope']),
        },
      };
    }
    case 1:
      return { poolRm: { name: random.pick(poolNames) } };
    case 2:
      return {
        poolSet: {
          name: random.pick(poolNames),
          key: random.pick(['size', 'min_size', 'pg_num', 'rule', 'application', 'bogus']),
          value: random.pick(['1', '2', '3', '64', '-1', 'x', 'replicated_rule', 's3']),
        },
      };
    case 3:
      return { osdCreate: { hasId: random.chance(0.5), id: random.int(0, 9), host: random.pick(hosts), crushWeight: random.pick([0, one / 2, one, 2 * one]) } };
    case 4:
      return { osdRm: { id: random.int(0, 9) } };
    case 5:
      return { osdOut: { ids: ids(random), reason: 'sim' } };
    case 6:
      return { osdIn: { ids: ids(random) } };
    case 7:
      return { osdDown: { ids: ids(random), reason: 'sim' } };
    case 8:
      return { osdReweight: { id: random.int(0, 9), reweight: random.pick([0, one / 2, one, 2 * one]) } };
    case 9: {
      const id = random.int(0, 9);
      return { osdBoot: { id, address: `127.0.0.1:${7600 + id}`, host: random.pick(hosts), crushWeight: random.pick([0, one]) } };
    }
    case 10:
      return {
        crushAddBucket: {
          name: random.pick(['rack-a', 'rack-b', 'zone-1', 'node-3', 'default']),
          type: random.pick([wire.CrushType.CRUSH_TYPE_HOST, wire.CrushType.CRUSH_TYPE_RACK, wire.CrushType.CRUSH_TYPE_ZONE]),
          parent: random.pick(['', 'rack-a', 'zone-1', 'missing']),
        },
      };
    case 11:
      return { crushMove: { name: random.pick(['node-0', 'node-1', 'node-3', 'osd.1', 'osd.7', 'rack-a']), parent: random.pick(['rack-a', 'rack-b', 'default', 'node-2']) } };
    case 12:
      return { crushSetWeight: { name: `osd.${random.int(0, 9)}`, weight: random.pick([0, one, 3 * one]) } };
    case 13:
      return { flagSet: { flag: random.pick([...knownFlags, 'bogus']), on: random.chance(0.5) } };
    default:
      return { init: { fsid: 'again', monitors: [] } };
  }
}

/** Commands as the leader stamps them: the time comes from the sequence, so every run of a seed is the same. */
export const monitorCommand: CommandGenerator = (random, sequence) =>
  encodeMonitorCommand({ ...randomCommand(random), timestampMs: 1_000_000 + sequence * 1000 });
