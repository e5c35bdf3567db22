/**
 * Building and editing maps. Every function returns a new map and leaves its argument untouched, so a compiled map
 * (cached per map object) never goes stale. Edits keep the weight invariant: a bucket's weight in its parent is the
 * sum of its items' weights, all the way up to the root. Epochs are the caller's business (the monitor bumps them).
 */
import { StorageError } from '../common/index.js';
import {
  defaultTunables,
  weightOne,
  type ClusterMap,
  type CrushBucket,
  type CrushMap,
  type CrushRule,
  type OsdInfo,
} from '../protocol/index.js';
import { crushTypeRank, osdIdLimit, validateCrushMap } from './validate.js';

/** The name of the root bucket that built maps and the default rules use. */
export const defaultRootName = 'default';
/** Rule ids of built maps. */
export const replicatedRuleId = 0;
export const erasureRuleId = 1;
/** Erasure rule whose failure domain is the OSD (for more shards than hosts, e.g. tests and one-host clusters). */
export const erasureOsdRuleId = 2;
/** Replicated rule across racks (only in maps built with racks). */
export const replicatedRackRuleId = 3;

export interface BuildOptions {
  hosts: number;
  osdsPerHost: number;
  /** Racks between root and hosts; hosts are split into contiguous runs, one per rack. 0 or absent: none. */
  racks?: number;
  /** 16.16 crush weight of each OSD (default 0x10000), or a function of the OSD id, its host and index in it. */
  osdWeight?: number | ((osd: number, host: number, indexInHost: number) => number);
  fsid?: string;
  chooseTotalTries?: number;
}

/** A deterministic placeholder, so that a built map is a pure function of its options. */
export const defaultFsid = '00000000-0000-4000-8000-000000000000';

const buildLimits = { hosts: 100_000, osdsPerHost: 10_000 };

function checkCount(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new StorageError('INVALID_ARGUMENT', `${name} must be an integer in [${min}, ${max}], not ${value}`);
  }
}

function checkWeight(what: string, weight: number): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 0xffff_ffff) {
    throw new StorageError('INVALID_ARGUMENT', `${what}: weight ${weight} must be a 16.16 integer in [0, 2^32)`);
  }
}

function newOsdInfo(id: number, host: string): OsdInfo {
  return {
    id,
    address: '',
    host,
    reweight: weightOne,
    up: true,
    in: true,
    upFromEpoch: 1,
    downAtMs: 0,
    metricsAddress: '',
    autoOut: false,
  };
}

/** The rules every built map has (ids 0–2), plus the rack rule (id 3) when `racks`. */
export function defaultRules(rootId: number, racks: boolean): CrushRule[] {
  const rules: CrushRule[] = [
    {
      id: replicatedRuleId,
      name: 'replicated_rule',
      type: 'replicated',
      steps: [
        { op: 'take', item: rootId },
        { op: 'chooseleaf', mode: 'firstn', num: 0, type: 'host' },
        { op: 'emit' },
      ],
    },
    {
      id: erasureRuleId,
      name: 'erasure_rule',
      type: 'erasure',
      steps: [
        { op: 'take', item: rootId },
        { op: 'chooseleaf', mode: 'indep', num: 0, type: 'host' },
        { op: 'emit' },
      ],
    },
    {
      id: erasureOsdRuleId,
      name: 'erasure_osd_rule',
      type: 'erasure',
      steps: [{ op: 'take', item: rootId }, { op: 'choose', mode: 'indep', num: 0, type: 'osd' }, { op: 'emit' }],
    },
  ];
  if (racks) {
    rules.push({
      id: replicatedRackRuleId,
      name: 'replicated_rack_rule',
      type: 'replicated',
      steps: [
        { op: 'take', item: rootId },
        { op: 'chooseleaf', mode: 'firstn', num: 0, type: 'rack' },
        { op: 'emit' },
      ],
    });
  }
  return rules;
}

/**
 * A complete cluster map: root `default`, optional racks `rack-0…`, hosts `host-0…`, OSDs 0…N−1 numbered host by
 * host, all up and in with reweight 1.0; rules as {@link defaultRules}; no pools or monitors; epoch 1.
 */
export function buildClusterMap(options: BuildOptions): ClusterMap {
  const { hosts, osdsPerHost } = options;
  const racks = options.racks ?? 0;
  checkCount('hosts', hosts, 1, buildLimits.hosts);
  checkCount('osdsPerHost', osdsPerHost, 1, buildLimits.osdsPerHost);
  checkCount('racks', racks, 0, hosts);
  if (hosts * osdsPerHost > osdIdLimit) throw new StorageError('INVALID_ARGUMENT', `more than ${osdIdLimit} OSDs`);
  const weightOf = options.osdWeight ?? weightOne;

  const root: CrushBucket = { id: -1, name: defaultRootName, type: 'root', items: [] };
  const rackBuckets: CrushBucket[] = [];
  for (let r = 0; r < racks; r++) rackBuckets.push({ id: -2 - r, name: `rack-${r}`, type: 'rack', items: [] });
  const hostBuckets: CrushBucket[] = [];
  const osds: OsdInfo[] = [];
  for (let h = 0; h < hosts; h++) {
    const host: CrushBucket = { id: -2 - racks - h, name: `host-${h}`, type: 'host', items: [] };
    for (let i = 0; i < osdsPerHost; i++) {
      const id = h * osdsPerHost + i;
      const weight = typeof weightOf === 'number' ? weightOf : weightOf(id, h, i);
      checkWeight(`osd.${id}`, weight);
      host.items.push({ id, weight });
      osds.push(newOsdInfo(id, host.name));
    }
    hostBuckets.push(host);
    const parent = racks > 0 ? rackBuckets[Math.floor((h * racks) / hosts)]! : root;
    parent.items.push({ id: host.id, weight: 0 });
  }
  for (const rack of rackBuckets) root.items.push({ id: rack.id, weight: 0 });
  const crush = withBucketWeights({
    buckets: [root, ...rackBuckets, ...hostBuckets],
    rules: defaultRules(root.id, racks > 0),
    tunables: { ...defaultTunables, chooseTotalTries: options.chooseTotalTries ?? defaultTunables.chooseTotalTries },
  });
  validateCrushMap(crush);
  return {
    fsid: options.fsid ?? defaultFsid,
    epoch: 1,
    monitors: [],
    osds,
    crush,
    pools: [],
    flags: [],
    createdMs: 0,
    modifiedMs: 0,
    nextPoolId: 1,
  };
}

function cloneCrush(crush: CrushMap): CrushMap {
  return {
    buckets: crush.buckets.map((b) => ({ ...b, items: b.items.map((i) => ({ ...i })) })),
    rules: crush.rules.map((r) => ({ ...r, steps: r.steps.map((s) => ({ ...s })) })),
    tunables: { ...crush.tunables },
  };
}

/**
 * A copy of `crush` in which each bucket's weight in its parent is the sum of its items (OSD weights are kept).
 * INVALID_ARGUMENT if the hierarchy has a cycle or a missing bucket.
 */
export function withBucketWeights(crush: CrushMap): CrushMap {
  const copy = cloneCrush(crush);
  const byId = new Map(copy.buckets.map((b) => [b.id, b]));
  const sums = new Map<number, number>();
  const sumOf = (bucket: CrushBucket, depth: number): number => {
    const known = sums.get(bucket.id);
    if (known !== undefined) return known;
    if (depth > copy.buckets.length) throw new StorageError('INVALID_ARGUMENT', 'crush map: the hierarchy has a cycle');
    let sum = 0;
    for (const item of bucket.items) {
      if (item.id < 0) {
        const child = byId.get(item.id);
        if (!child) throw new StorageError('INVALID_ARGUMENT', `crush map: item ${item.id} is not a bucket`);
        item.weight = sumOf(child, depth + 1);
      }
      sum += item.weight;
    }
    sums.set(bucket.id, sum);
    return sum;
  };
  for (const bucket of copy.buckets) sumOf(bucket, 0);
  return copy;
}

/** The bucket holding item `id` (an OSD id or bucket id), if any. */
export function parentBucket(crush: CrushMap, id: number): CrushBucket | undefined {
  return crush.buckets.find((b) => b.items.some((i) => i.id === id));
}

/** The crush weight of OSD `osd`, or undefined when it is not in the hierarchy. */
export function crushWeightOf(crush: CrushMap, osd: number): number | undefined {
  return parentBucket(crush, osd)?.items.find((i) => i.id === osd)?.weight;
}

/**
 * Adds OSD `osd` with `weight` to host bucket `hostName`, creating the host under `parentName` (default: the root
 * `default`) when missing. ALREADY_EXISTS if the OSD is in the hierarchy; NOT_FOUND if the parent is missing.
 */
export function crushAddOsd(
  crush: CrushMap,
  osd: number,
  hostName: string,
  weight: number = weightOne,
  parentName: string = defaultRootName,
): CrushMap {
  checkCount('OSD id', osd, 0, osdIdLimit - 1);
  checkWeight(`osd.${osd}`, weight);
  if (hostName === '') throw new StorageError('INVALID_ARGUMENT', 'host name is empty');
  if (parentBucket(crush, osd)) throw new StorageError('ALREADY_EXISTS', `osd.${osd} is already in the CRUSH map`);
  const copy = cloneCrush(crush);
  let host = copy.buckets.find((b) => b.name === hostName);
  if (!host) {
    const parent = copy.buckets.find((b) => b.name === parentName);
    if (!parent) throw new StorageError('NOT_FOUND', `no CRUSH bucket named ${parentName} to hold host ${hostName}`);
    if (crushTypeRank(parent.type) <= crushTypeRank('host')) {
      throw new StorageError('INVALID_ARGUMENT', `host ${hostName} cannot sit under ${parent.type} ${parent.name}`);
    }
    host = { id: Math.min(0, ...copy.buckets.map((b) => b.id)) - 1, name: hostName, type: 'host', items: [] };
    copy.buckets.push(host);
    parent.items.push({ id: host.id, weight: 0 });
  } else if (host.type !== 'host') {
    throw new StorageError('INVALID_ARGUMENT', `${hostName} is a ${host.type}, not a host`);
  }
  host.items.push({ id: osd, weight });
  const result = withBucketWeights(copy);
  validateCrushMap(result);
  return result;
}

/** Sets OSD `osd`'s crush weight and the sums above it. NOT_FOUND if it is not in the hierarchy. */
export function crushSetWeight(crush: CrushMap, osd: number, weight: number): CrushMap {
  if (!Number.isInteger(osd) || osd < 0) {
    throw new StorageError('INVALID_ARGUMENT', `only OSD weights are set directly (a bucket's is the sum), not ${osd}`);
  }
  checkWeight(`osd.${osd}`, weight);
  const copy = cloneCrush(crush);
  const item = parentBucket(copy, osd)?.items.find((i) => i.id === osd);
  if (!item) throw new StorageError('NOT_FOUND', `osd.${osd} is not in the CRUSH map`);
  item.weight = weight;
  const result = withBucketWeights(copy);
  validateCrushMap(result);
  return result;
}

/** Removes OSD `osd` from the hierarchy (its host stays, maybe empty). NOT_FOUND if it is not there. */
export function crushRemoveOsd(crush: CrushMap, osd: number): CrushMap {
  const copy = cloneCrush(crush);
  const parent = parentBucket(copy, osd);
  if (!parent || osd < 0) throw new StorageError('NOT_FOUND', `osd.${osd} is not in the CRUSH map`);
  parent.items = parent.items.filter((i) => i.id !== osd);
  return withBucketWeights(copy);
}

export interface AddOsdOptions {
  /** Default: the lowest id not used by any OSD. */
  id?: number;
  host: string;
  /** 16.16 crush weight, default 1.0. */
  weight?: number;
  /** Bucket to create a missing host under (default: the root `default`). */
  parent?: string;
  address?: string;
}

/** The map with a new OSD, up and in, placed in the hierarchy by {@link crushAddOsd}. */
export function addOsd(map: ClusterMap, options: AddOsdOptions): ClusterMap {
  const used = new Set(map.osds.map((o) => o.id));
  let id = options.id ?? 0;
  if (options.id === undefined) while (used.has(id)) id++;
  if (used.has(id)) throw new StorageError('ALREADY_EXISTS', `osd.${id} already exists`);
  const crush = crushAddOsd(map.crush, id, options.host, options.weight ?? weightOne, options.parent);
  const info = { ...newOsdInfo(id, options.host), address: options.address ?? '' };
  const osds = [...map.osds, info].sort((a, b) => a.id - b.id);
  return { ...map, crush, osds };
}

/** The map with OSD `osd`'s crush weight changed (and its ancestors' sums). */
export function setCrushWeight(map: ClusterMap, osd: number, weight: number): ClusterMap {
  return { ...map, crush: crushSetWeight(map.crush, osd, weight) };
}

/** The map without OSD `osd`, in the hierarchy and in the OSD list. NOT_FOUND if it is in neither. */
export function removeOsd(map: ClusterMap, osd: number): ClusterMap {
  const known = map.osds.some((o) => o.id === osd);
  const inCrush = parentBucket(map.crush, osd) !== undefined;
  if (!known && !inCrush) throw new StorageError('NOT_FOUND', `osd.${osd} does not exist`);
  return {
    ...map,
    crush: inCrush ? crushRemoveOsd(map.crush, osd) : map.crush,
    osds: map.osds.filter((o) => o.id !== osd),
  };
}
