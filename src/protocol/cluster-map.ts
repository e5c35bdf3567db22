/**
 * The cluster map as the rest of Shoal sees it: strict TypeScript types (no optional wire fields, enums as words),
 * with conversion to and from the protobuf messages of cluster_map.proto, the versioned binary encoding, and the JSON
 * form used for map files (`shoal crush build > map.json`).
 */
import { StorageError } from '../common/index.js';
import { shoal } from './generated/shoal.js';
import { readMarker, unsupportedVersion, withMarker } from './versioned.js';

export const crushTypes = ['osd', 'host', 'rack', 'zone', 'root'] as const;
export type CrushType = (typeof crushTypes)[number];

/** 16.16 fixed point: 0x10000 is a weight of 1.0. */
export const weightOne = 0x10000;

export interface CrushItem {
  /** >= 0: an OSD id; < 0: a bucket id. */
  id: number;
  /** 16.16 fixed point. */
  weight: number;
}

export interface CrushBucket {
  id: number;
  name: string;
  type: CrushType;
  items: CrushItem[];
}

export type ChooseMode = 'firstn' | 'indep';

export type CrushStep =
  | { op: 'take'; item: number }
  | { op: 'choose' | 'chooseleaf'; mode: ChooseMode; num: number; type: CrushType }
  | { op: 'emit' };

export type RuleType = 'replicated' | 'erasure';

export interface CrushRule {
  id: number;
  name: string;
  type: RuleType;
  steps: CrushStep[];
}

export interface CrushTunables {
  chooseTotalTries: number;
}

export interface CrushMap {
  buckets: CrushBucket[];
  rules: CrushRule[];
  tunables: CrushTunables;
}

export interface MonitorInfo {
  name: string;
  address: string;
}

export interface OsdInfo {
  id: number;
  address: string;
  host: string;
  reweight: number;
  up: boolean;
  in: boolean;
  upFromEpoch: number;
  downAtMs: number;
  metricsAddress: string;
  autoOut: boolean;
}

export type PoolType = 'replicated' | 'erasure';

export interface Pool {
  id: number;
  name: string;
  type: PoolType;
  size: number;
  minSize: number;
  ecK: number;
  ecM: number;
  pgNum: number;
  rule: number;
  stripeUnit: number;
  application: string;
}

export interface ClusterMap {
  fsid: string;
  epoch: number;
  monitors: MonitorInfo[];
  osds: OsdInfo[];
  crush: CrushMap;
  pools: Pool[];
  flags: string[];
  createdMs: number;
  modifiedMs: number;
  nextPoolId: number;
}

export const defaultTunables: CrushTunables = { chooseTotalTries: 50 };

const crushTypeToWire: Record<CrushType, shoal.CrushType> = {
  osd: shoal.CrushType.CRUSH_TYPE_OSD,
  host: shoal.CrushType.CRUSH_TYPE_HOST,
  rack: shoal.CrushType.CRUSH_TYPE_RACK,
  zone: shoal.CrushType.CRUSH_TYPE_ZONE,
  root: shoal.CrushType.CRUSH_TYPE_ROOT,
};

function crushTypeFromWire(value: number | null | undefined): CrushType {
  const found = crushTypes.find((t) => crushTypeToWire[t] === (value ?? 0));
  if (!found) throw new StorageError('CORRUPT_DATA', `unknown CRUSH type ${value}`);
  return found;
}

const Op = shoal.CrushStep.Op;

function stepToWire(step: CrushStep): shoal.CrushStep.$Properties {
  switch (step.op) {
    case 'take':
      return { op: Op.OP_TAKE, item: step.item };
    case 'emit':
      return { op: Op.OP_EMIT };
    case 'choose':
    case 'chooseleaf': {
      const op =
        step.op === 'choose'
          ? step.mode === 'firstn' ? Op.OP_CHOOSE_FIRSTN : Op.OP_CHOOSE_INDEP
          : step.mode === 'firstn' ? Op.OP_CHOOSELEAF_FIRSTN : Op.OP_CHOOSELEAF_INDEP;
      return { op, num: step.num, type: crushTypeToWire[step.type] };
    }
  }
}

function stepFromWire(step: shoal.CrushStep.$Properties): CrushStep {
  const num = step.num ?? 0;
  const type = crushTypeFromWire(step.type);
  switch (step.op ?? Op.OP_TAKE) {
    case Op.OP_TAKE:
      return { op: 'take', item: step.item ?? 0 };
    case Op.OP_EMIT:
      return { op: 'emit' };
    case Op.OP_CHOOSE_FIRSTN:
      return { op: 'choose', mode: 'firstn', num, type };
    case Op.OP_CHOOSE_INDEP:
      return { op: 'choose', mode: 'indep', num, type };
    case Op.OP_CHOOSELEAF_FIRSTN:
      return { op: 'chooseleaf', mode: 'firstn', num, type };
    case Op.OP_CHOOSELEAF_INDEP:
      return { op: 'chooseleaf', mode: 'indep', num, type };
    default:
      throw new StorageError('CORRUPT_DATA', `unknown CRUSH step op ${step.op}`);
  }
}

export function crushMapToWire(crush: CrushMap): shoal.CrushMap.$Properties {
  return {
    buckets: crush.buckets.map((b) => ({
      id: b.id,
      name: b.name,
      type: crushTypeToWire[b.type],
      items: b.items.map((i) => ({ id: i.id, weight: i.weight })),
    })),
    rules: crush.rules.map((r) => ({
      id: r.id,
      name: r.name,
      type: r.type === 'replicated' ? shoal.RuleType.RULE_TYPE_REPLICATED : shoal.RuleType.RULE_TYPE_ERASURE,
      steps: r.steps.map(stepToWire),
    })),
    tunables: { chooseTotalTries: crush.tunables.chooseTotalTries },
  };
}

export function crushMapFromWire(crush: shoal.CrushMap.$Properties | null | undefined): CrushMap {
  return {
    buckets: (crush?.buckets ?? []).map((b) => ({
      id: b.id ?? 0,
      name: b.name ?? '',
      type: crushTypeFromWire(b.type),
      items: (b.items ?? []).map((i) => ({ id: i.id ?? 0, weight: i.weight ?? 0 })),
    })),
    rules: (crush?.rules ?? []).map((r) => ({
      id: r.id ?? 0,
      name: r.name ?? '',
      type: (r.type ?? 0) === shoal.RuleType.RULE_TYPE_ERASURE ? 'erasure' : 'replicated',
      steps: (r.steps ?? []).map(stepFromWire),
    })),
    tunables: { chooseTotalTries: crush?.tunables?.chooseTotalTries || defaultTunables.chooseTotalTries },
  };
}

export function clusterMapToWire(map: ClusterMap): shoal.ClusterMap.$Properties {
  return {
    fsid: map.fsid,
    epoch: map.epoch,
    monitors: map.monitors.map((m) => ({ name: m.name, address: m.address })),
    osds: map.osds.map((o) => ({ ...o })),
    crush: crushMapToWire(map.crush),
    pools: map.pools.map((p) => ({
      ...p,
      type: p.type === 'replicated' ? shoal.PoolType.POOL_TYPE_REPLICATED : shoal.PoolType.POOL_TYPE_ERASURE,
    })),
    flags: map.flags.slice(),
    createdMs: map.createdMs,
    modifiedMs: map.modifiedMs,
    nextPoolId: map.nextPoolId,
  };
}

export function clusterMapFromWire(m: shoal.ClusterMap.$Properties): ClusterMap {
  return {
    fsid: m.fsid ?? '',
    epoch: Number(m.epoch ?? 0),
    monitors: (m.monitors ?? []).map((x) => ({ name: x.name ?? '', address: x.address ?? '' })),
    osds: (m.osds ?? []).map((o) => ({
      id: o.id ?? 0,
      address: o.address ?? '',
      host: o.host ?? '',
      reweight: o.reweight ?? 0,
      up: o.up ?? false,
      in: o.in ?? false,
      upFromEpoch: Number(o.upFromEpoch ?? 0),
      downAtMs: Number(o.downAtMs ?? 0),
      metricsAddress: o.metricsAddress ?? '',
      autoOut: o.autoOut ?? false,
    })),
    crush: crushMapFromWire(m.crush),
    pools: (m.pools ?? []).map((p) => ({
      id: p.id ?? 0,
      name: p.name ?? '',
      type: (p.type ?? 0) === shoal.PoolType.POOL_TYPE_ERASURE ? 'erasure' : 'replicated',
      size: p.size ?? 0,
      minSize: p.minSize ?? 0,
      ecK: p.ecK ?? 0,
      ecM: p.ecM ?? 0,
      pgNum: p.pgNum ?? 0,
      rule: p.rule ?? 0,
      stripeUnit: p.stripeUnit ?? 0,
      application: p.application ?? '',
    })),
    flags: (m.flags ?? []).slice(),
    createdMs: Number(m.createdMs ?? 0),
    modifiedMs: Number(m.modifiedMs ?? 0),
    nextPoolId: m.nextPoolId ?? 0,
  };
}

const clusterMapVersion = 1;

export function encodeClusterMap(map: ClusterMap): Buffer {
  const body = shoal.ClusterMap.encode(clusterMapToWire(map)).finish();
  return withMarker('clusterMap', clusterMapVersion, body);
}

export function decodeClusterMap(bytes: Uint8Array): ClusterMap {
  const { version, body } = readMarker('clusterMap', bytes);
  if (version !== 1) throw unsupportedVersion('clusterMap', version);
  return clusterMapFromWire(decodeMessage('clusterMap', () => shoal.ClusterMap.decode(body)));
}

/** Runs a protobuf decode, turning its exceptions (truncated or malformed input) into CORRUPT_DATA. */
export function decodeMessage<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    throw new StorageError('CORRUPT_DATA', `${what}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

/** An empty map at epoch 0: no monitors, OSDs, buckets, rules or pools. */
export function emptyClusterMap(fsid: string): ClusterMap {
  return {
    fsid,
    epoch: 0,
    monitors: [],
    osds: [],
    crush: { buckets: [], rules: [], tunables: { ...defaultTunables } },
    pools: [],
    flags: [],
    createdMs: 0,
    modifiedMs: 0,
    nextPoolId: 1,
  };
}

/** The JSON form of a map file: the domain object under a format tag, so a wrong file is rejected by name. */
export const clusterMapJsonFormat = 'shoal-cluster-map/1';

export function clusterMapToJson(map: ClusterMap): string {
  return JSON.stringify({ format: clusterMapJsonFormat, map }, null, 2) + '\n';
}

/** Parses a map file; structural problems (bad JSON, wrong tag, unknown enum words, wrong types) are INVALID_ARGUMENT. */
export function clusterMapFromJson(text: string): ClusterMap {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new StorageError('INVALID_ARGUMENT', `map file is not JSON: ${(error as Error).message}`);
  }
  const doc = parsed as { format?: unknown; map?: unknown };
  if (typeof parsed !== 'object' || parsed === null || doc.format !== clusterMapJsonFormat) {
    throw new StorageError('INVALID_ARGUMENT', `map file must be {"format":"${clusterMapJsonFormat}","map":{...}}`);
  }
  try {
    const wire = clusterMapToWire(doc.map as ClusterMap);
    const problem = shoal.ClusterMap.verify(wire);
    if (problem) throw new Error(problem);
    for (const rule of doc.map ? (doc.map as ClusterMap).crush.rules : []) {
      for (const step of rule.steps) {
        if (!['take', 'choose', 'chooseleaf', 'emit'].includes(step.op)) throw new Error(`unknown step op ${step.op}`);
        if ((step.op === 'choose' || step.op === 'chooseleaf') && !crushTypes.includes(step.type)) {
          throw new Error(`unknown CRUSH type ${String(step.type)}`);
        }
      }
    }
    for (const bucket of (doc.map as ClusterMap).crush.buckets) {
      if (!crushTypes.includes(bucket.type)) throw new Error(`bucket ${bucket.name}: unknown type ${String(bucket.type)}`);
    }
    return clusterMapFromWire(shoal.ClusterMap.fromObject(wire));
  } catch (error) {
    if (error instanceof StorageError) throw error;
    throw new StorageError('INVALID_ARGUMENT', `map file: ${(error as Error).message}`, { cause: error });
  }
}
