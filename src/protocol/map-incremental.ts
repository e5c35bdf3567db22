/**
 * Incremental map updates: what changed from one epoch to the next, so subscribers (OSDs, clients) follow the map
 * without receiving all of it on every change. `applyIncremental(prev, diffClusterMap(prev, next))` equals `next`.
 */
import { StorageError } from '../common/index.js';
import {
  clusterMapFromWire,
  clusterMapToWire,
  crushMapFromWire,
  crushMapToWire,
  type ClusterMap,
} from './cluster-map.js';
import { shoal } from './generated/shoal.js';

export type ClusterMapIncremental = shoal.ClusterMapIncremental.$Properties;

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function diffClusterMap(prev: ClusterMap, next: ClusterMap): ClusterMapIncremental {
  const wire = clusterMapToWire(next);
  const prevOsds = new Map(prev.osds.map((o) => [o.id, o]));
  const nextOsds = new Map(next.osds.map((o) => [o.id, o]));
  const prevPools = new Map(prev.pools.map((p) => [p.id, p]));
  const nextPools = new Map(next.pools.map((p) => [p.id, p]));
  const inc: ClusterMapIncremental = {
    epoch: next.epoch,
    modifiedMs: next.modifiedMs,
    osdsSet: (wire.osds ?? []).filter((o) => !sameJson(prevOsds.get(o.id ?? 0), nextOsds.get(o.id ?? 0))),
    osdsRemoved: prev.osds.filter((o) => !nextOsds.has(o.id)).map((o) => o.id),
    poolsSet: (wire.pools ?? []).filter((p) => !sameJson(prevPools.get(p.id ?? 0), nextPools.get(p.id ?? 0))),
    poolsRemoved: prev.pools.filter((p) => !nextPools.has(p.id)).map((p) => p.id),
    crush: sameJson(prev.crush, next.crush) ? null : crushMapToWire(next.crush),
    flagsChanged: !sameJson(prev.flags, next.flags),
    flags: next.flags.slice(),
    monitorsChanged: !sameJson(prev.monitors, next.monitors),
    monitors: next.monitors.map((m) => ({ ...m })),
    nextPoolId: next.nextPoolId,
    fsid: next.fsid,
    createdMs: next.createdMs,
  };
  return inc;
}

/** Applies an incremental to the map of the epoch before it; an incremental for another epoch is refused. */
export function applyIncremental(prev: ClusterMap, inc: ClusterMapIncremental): ClusterMap {
  const epoch = Number(inc.epoch ?? 0);
  if (epoch !== prev.epoch + 1) {
    throw new StorageError('STALE_EPOCH', `incremental for epoch ${epoch} does not follow epoch ${prev.epoch}`);
  }
  // Decode the changed entries through the same conversion as a full map, so defaults are filled the same way.
  const changed = clusterMapFromWire({ osds: inc.osdsSet ?? [], pools: inc.poolsSet ?? [] });
  const removedOsds = new Set(inc.osdsRemoved ?? []);
  const removedPools = new Set(inc.poolsRemoved ?? []);
  const osds = new Map(prev.osds.filter((o) => !removedOsds.has(o.id)).map((o) => [o.id, o]));
  for (const osd of changed.osds) osds.set(osd.id, osd);
  const pools = new Map(prev.pools.filter((p) => !removedPools.has(p.id)).map((p) => [p.id, p]));
  for (const pool of changed.pools) pools.set(pool.id, pool);
  return {
    fsid: inc.fsid || prev.fsid,
    epoch,
    monitors: inc.monitorsChanged ? (inc.monitors ?? []).map((m) => ({ name: m.name ?? '', address: m.address ?? '' })) : prev.monitors,
    osds: [...osds.values()].sort((a, b) => a.id - b.id),
    crush: inc.crush ? crushMapFromWire(inc.crush) : prev.crush,
    pools: [...pools.values()].sort((a, b) => a.id - b.id),
    flags: inc.flagsChanged ? (inc.flags ?? []).slice() : prev.flags,
    createdMs: Number(inc.createdMs ?? prev.createdMs),
    modifiedMs: Number(inc.modifiedMs ?? 0),
    nextPoolId: inc.nextPoolId ?? prev.nextPoolId,
  };
}
