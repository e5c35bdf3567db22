/**
 * Pure reducers: (map, command) -> new map. Every monitor applies the same committed commands in the same order and
 * so holds the same map for each epoch; nothing here reads a clock (the leader stamps `timestampMs` into the command)
 * or any other state. A command that changes nothing leaves the epoch alone; an invalid command throws a StorageError
 * and the map is untouched (the reducer works on a copy).
 */
import {
  StorageError,
  check,
  commandName,
  weightOne,
  type ClusterMap,
  type CrushType,
  type MonitorCommand,
  type OsdInfo,
  type Pool,
  type PoolType,
  crushSetWeight,
  defaultRootName,
  defaultRules as defaultCrushRules,
  wire,
} from '../../src/index.js';
import { addBucket, countDomains, moveItem, osdCrushWeight, placeOsd, removeOsd } from './crush-edit.js';

export interface CommandResult {
  map: ClusterMap;
  message: string;
  /** An id the command assigned (osd create). */
  id?: number;
}

export const knownFlags = [
  'noout', 'noin', 'nodown', 'noup', 'pause', 'noscrub', 'nodeep-scrub', 'norecover', 'nobackfill', 'norebalance',
] as const;

export const limits = {
  poolsMax: 1024,
  pgNumMax: 65_536,
  replicatedSizeMax: 10,
  erasureChunksMax: 32,
  osdsMax: 65_536,
  defaultPgNum: 32,
} as const;

export const defaultRules = { replicated: 'replicated_rule', erasure: 'erasure_rule' } as const;

const crushTypeNames: Record<number, CrushType> = {
  [wire.CrushType.CRUSH_TYPE_OSD]: 'osd',
  [wire.CrushType.CRUSH_TYPE_HOST]: 'host',
  [wire.CrushType.CRUSH_TYPE_RACK]: 'rack',
  [wire.CrushType.CRUSH_TYPE_ZONE]: 'zone',
  [wire.CrushType.CRUSH_TYPE_ROOT]: 'root',
};

function osd(map: ClusterMap, id: number): OsdInfo {
  const found = map.osds.find((o) => o.id === id);
  if (!found) throw new StorageError('NOT_FOUND', `osd.${id} does not exist`);
  return found;
}

function pool(map: ClusterMap, name: string): Pool {
  const found = map.pools.find((p) => p.name === name);
  if (!found) throw new StorageError('NOT_FOUND', `pool ${JSON.stringify(name)} does not exist`);
  return found;
}

function ruleId(map: ClusterMap, name: string, type: PoolType): number {
  const rule = map.crush.rules.find((r) => r.name === name);
  if (!rule) throw new StorageError('NOT_FOUND', `CRUSH rule ${JSON.stringify(name)} does not exist`);
  if (rule.type !== type) throw new StorageError('INVALID_ARGUMENT', `rule ${name} is for ${rule.type} pools, not ${type}`);
  return rule.id;
}

/** Rejects an erasure profile the CRUSH map can never place: more chunks than failure domains under the rule. */
function checkPlaceable(map: ClusterMap, rule: number, size: number): void {
  const crushRule = map.crush.rules.find((r) => r.id === rule);
  const take = crushRule?.steps.find((s) => s.op === 'take');
  const choose = crushRule?.steps.find((s) => s.op === 'choose' || s.op === 'chooseleaf');
  if (!take || take.op !== 'take' || !choose || choose.op === 'take' || choose.op === 'emit') return;
  const domains = countDomains(map.crush, take.item, choose.type);
  if (map.osds.length > 0 && domains < size) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `erasure profile needs ${size} failure domains of type ${choose.type}, the CRUSH map has ${domains}`,
    );
  }
}

function checkName(what: string, name: string): void {
  check(/^[A-Za-z0-9_.-]{1,64}$/.test(name), `${what} name ${JSON.stringify(name)} must be 1-64 of [A-Za-z0-9_.-]`);
}

function checkOsdIds(map: ClusterMap, ids: readonly number[] | null | undefined): number[] {
  check(ids && ids.length > 0, 'no OSD ids given');
  for (const id of ids) osd(map, id);
  return [...new Set(ids)];
}

function createPool(map: ClusterMap, c: wire.PoolCreate.$Properties): string {
  const name = c.name ?? '';
  checkName('pool', name);
  if (map.pools.some((p) => p.name === name)) throw new StorageError('ALREADY_EXISTS', `pool ${name} exists`);
  check(map.pools.length < limits.poolsMax, `at most ${limits.poolsMax} pools`);
  const type: PoolType = c.type === wire.PoolType.POOL_TYPE_ERASURE ? 'erasure' : 'replicated';
  const pgNum = c.pgNum || limits.defaultPgNum;
  check(pgNum >= 1 && pgNum <= limits.pgNumMax, `pg_num must be within 1..${limits.pgNumMax}`);
  let size: number;
  let minSize: number;
  let ecK = 0;
  let ecM = 0;
  let stripeUnit = 0;
  if (type === 'replicated') {
    check(!c.ecK && !c.ecM, 'k and m are for erasure pools');
    size = c.size || 3;
    check(size >= 1 && size <= limits.replicatedSizeMax, `size must be within 1..${limits.replicatedSizeMax}`);
    minSize = c.minSize || size - Math.floor(size / 2);
  } else {
    ecK = c.ecK ?? 0;
    ecM = c.ecM ?? 0;
    check(ecK >= 1 && ecM >= 1, `erasure profile k=${ecK},m=${ecM}: k and m must both be at least 1`);
    check(ecK + ecM <= limits.erasureChunksMax, `erasure profile k+m must be at most ${limits.erasureChunksMax}`);
    check(!c.size || c.size === ecK + ecM, `an erasure pool's size is k+m = ${ecK + ecM}`);
    size = ecK + ecM;
    minSize = c.minSize || (ecM > 1 ? ecK + 1 : ecK);
    check(minSize >= ecK, `min_size of an erasure pool must be at least k = ${ecK}`);
    stripeUnit = c.stripeUnit || 64 * 1024;
    check(stripeUnit % 4096 === 0 && stripeUnit <= 16 * 1024 * 1024, 'stripe unit must be a multiple of 4 KiB, at most 16 MiB');
  }
  check(minSize >= 1 && minSize <= size, `min_size must be within 1..size (${size})`);
  const rule = ruleId(map, c.rule || defaultRules[type], type);
  if (type === 'erasure') checkPlaceable(map, rule, size);
  const id = map.nextPoolId;
  map.pools.push({ id, name, type, size, minSize, ecK, ecM, pgNum, rule, stripeUnit, application: c.application ?? '' });
  map.nextPoolId = id + 1;
  return `pool ${name} created (id ${id})`;
}

function setPool(map: ClusterMap, c: wire.PoolSet.$Properties): string {
  const target = pool(map, c.name ?? '');
  const key = c.key ?? '';
  const value = c.value ?? '';
  const integer = () => {
    check(/^\d{1,9}$/.test(value), `${key} must be a non-negative integer, got ${JSON.stringify(value)}`);
    return Number(value);
  };
  switch (key) {
    case 'size': {
      check(target.type === 'replicated', "an erasure pool's size is fixed at k+m");
      const size = integer();
      check(size >= 1 && size <= limits.replicatedSizeMax, `size must be within 1..${limits.replicatedSizeMax}`);
      target.size = size;
      target.minSize = Math.min(target.minSize, size);
      break;
    }
    case 'min_size': {
      const minSize = integer();
      const low = target.type === 'erasure' ? target.ecK : 1;
      check(minSize >= low && minSize <= target.size, `min_size must be within ${low}..${target.size}`);
      target.minSize = minSize;
      break;
    }
    case 'pg_num': {
      const pgNum = integer();
      check(pgNum >= target.pgNum, `pg_num can only grow (merging placement groups is not supported): ${target.pgNum} -> ${pgNum}`);
      check(pgNum <= limits.pgNumMax, `pg_num must be at most ${limits.pgNumMax}`);
      target.pgNum = pgNum;
      break;
    }
    case 'rule':
      target.rule = ruleId(map, value, target.type);
      break;
    case 'application':
      check(/^[a-z0-9_-]{0,32}$/.test(value), 'application must be [a-z0-9_-], at most 32 characters');
      target.application = value;
      break;
    default:
      throw new StorageError('INVALID_ARGUMENT', `unknown pool setting ${JSON.stringify(key)}; known: size, min_size, pg_num, rule, application`);
  }
  return `pool ${target.name}: ${key} = ${value}`;
}

function checkWeight(weight: number | null | undefined, max?: number): number {
  const w = weight ?? 0;
  check(Number.isInteger(w) && w >= 0 && (max === undefined || w <= max), `weight ${w / weightOne} is out of range`);
  return w;
}

function newOsd(id: number, host: string): OsdInfo {
  return { id, address: '', host, reweight: weightOne, up: false, in: true, upFromEpoch: 0, downAtMs: 0, metricsAddress: '', autoOut: false };
}

function lowestFreeOsdId(map: ClusterMap): number {
  const used = new Set(map.osds.map((o) => o.id));
  let id = 0;
  while (used.has(id)) id++;
  return id;
}

function insertOsd(map: ClusterMap, info: OsdInfo, crushWeight: number): void {
  check(map.osds.length < limits.osdsMax, `at most ${limits.osdsMax} OSDs`);
  checkName('host', info.host);
  map.crush = placeOsd(map.crush, info.id, info.host, crushWeight);
  map.osds.push(info);
  map.osds.sort((a, b) => a.id - b.id);
}

/** Applies one command to a copy of `map`. Throws StorageError (and changes nothing) when the command is invalid. */
export function applyCommand(current: ClusterMap, command: MonitorCommand): CommandResult {
  const map = structuredClone(current);
  const nowMs = Number(command.timestampMs ?? 0);
  const name = commandName(command);
  if (name === undefined) throw new StorageError('INVALID_ARGUMENT', 'empty command');
  if (name !== 'init' && current.epoch === 0) throw new StorageError('UNAVAILABLE', 'the cluster map is not initialised yet');
  let message: string;
  let id: number | undefined;
  switch (name) {
    case 'init': {
      if (current.epoch !== 0) return { map: current, message: 'map already initialised' };
      const c = command.init ?? {};
      map.fsid = c.fsid ?? '';
      map.monitors = (c.monitors ?? []).map((m) => ({ name: m.name ?? '', address: m.address ?? '' }));
      map.createdMs = nowMs;
      const { crush, bucket: root } = addBucket(map.crush, defaultRootName, 'root', '');
      map.crush = { ...crush, rules: defaultCrushRules(root.id, false) };
      message = 'map initialised';
      break;
    }
    case 'poolCreate':
      message = createPool(map, command.poolCreate ?? {});
      break;
    case 'poolRm': {
      const target = pool(map, command.poolRm?.name ?? '');
      map.pools = map.pools.filter((p) => p.id !== target.id);
      message = `pool ${target.name} removed`;
      break;
    }
    case 'poolSet':
      message = setPool(map, command.poolSet ?? {});
      break;
    case 'osdCreate': {
      const c = command.osdCreate ?? {};
      id = c.hasId ? (c.id ?? 0) : lowestFreeOsdId(map);
      if (map.osds.some((o) => o.id === id)) throw new StorageError('ALREADY_EXISTS', `osd.${id} exists`);
      const host = c.host || `host-${id}`;
      insertOsd(map, newOsd(id, host), checkWeight(c.crushWeight) || weightOne);
      message = `osd.${id} created on host ${host}`;
      break;
    }
    case 'osdRm': {
      const target = osd(map, command.osdRm?.id ?? 0);
      if (target.up) throw new StorageError('INVALID_ARGUMENT', `osd.${target.id} is up; stop it (or mark it down) first`);
      map.osds = map.osds.filter((o) => o.id !== target.id);
      map.crush = removeOsd(map.crush, target.id);
      message = `osd.${target.id} removed`;
      break;
    }
    case 'osdOut':
    case 'osdIn': {
      const ids = checkOsdIds(map, (command.osdOut ?? command.osdIn)?.ids);
      const markIn = name === 'osdIn';
      for (const target of ids.map((i) => osd(map, i))) {
        target.in = markIn;
        target.autoOut = !markIn && (command.osdOut?.reason ?? '') === 'auto';
      }
      message = `${ids.map((i) => `osd.${i}`).join(' ')} marked ${markIn ? 'in' : 'out'}`;
      break;
    }
    case 'osdDown': {
      const ids = checkOsdIds(map, command.osdDown?.ids);
      for (const target of ids.map((i) => osd(map, i))) {
        if (!target.up) continue;
        target.up = false;
        target.downAtMs = nowMs;
      }
      message = `${ids.map((i) => `osd.${i}`).join(' ')} marked down`;
      break;
    }
    case 'osdReweight': {
      const c = command.osdReweight ?? {};
      const target = osd(map, c.id ?? 0);
      target.reweight = checkWeight(c.reweight, weightOne);
      message = `osd.${target.id} reweighted to ${(target.reweight / weightOne).toFixed(4)}`;
      break;
    }
    case 'osdBoot': {
      const c = command.osdBoot ?? {};
      const bootId = c.id ?? 0;
      const address = c.address ?? '';
      check(address.length > 0 && address.length < 256, 'an OSD boots with its address');
      let target = map.osds.find((o) => o.id === bootId);
      const host = c.host || target?.host || `host-${bootId}`;
      if (!target) {
        target = newOsd(bootId, host);
        insertOsd(map, target, checkWeight(c.crushWeight) || weightOne);
      } else if (host !== target.host || (c.crushWeight && c.crushWeight !== osdCrushWeight(map.crush, bootId))) {
        map.crush = placeOsd(map.crush, bootId, host, checkWeight(c.crushWeight) || osdCrushWeight(map.crush, bootId) || weightOne);
        target.host = host;
      }
      target.address = address;
      target.metricsAddress = c.metricsAddress ?? '';
      target.up = true;
      target.downAtMs = 0;
      target.upFromEpoch = current.epoch + 1;
      if (target.autoOut) {
        target.in = true;
        target.autoOut = false;
      }
      message = `osd.${bootId} booted at ${address}`;
      break;
    }
    case 'crushAddBucket': {
      const c = command.crushAddBucket ?? {};
      const type = crushTypeNames[c.type ?? -1];
      if (!type) throw new StorageError('INVALID_ARGUMENT', `unknown bucket type ${c.type}`);
      const { crush, bucket } = addBucket(map.crush, c.name ?? '', type, c.parent ?? '');
      map.crush = crush;
      message = `${type} ${bucket.name} added (id ${bucket.id})`;
      break;
    }
    case 'crushMove': {
      const c = command.crushMove ?? {};
      map.crush = moveItem(map.crush, c.name ?? '', c.parent ?? '');
      message = `${c.name} moved under ${c.parent}`;
      break;
    }
    case 'crushSetWeight': {
      const c = command.crushSetWeight ?? {};
      const match = /^osd\.(\d+)$/.exec(c.name ?? '');
      if (!match) throw new StorageError('INVALID_ARGUMENT', `crush set-weight takes osd.N, not ${JSON.stringify(c.name)}`);
      osd(map, Number(match[1]));
      map.crush = crushSetWeight(map.crush, Number(match[1]), checkWeight(c.weight));
      message = `${c.name} crush weight set to ${(checkWeight(c.weight) / weightOne).toFixed(4)}`;
      break;
    }
    case 'flagSet': {
      const c = command.flagSet ?? {};
      const flag = c.flag ?? '';
      if (!(knownFlags as readonly string[]).includes(flag)) {
        throw new StorageError('INVALID_ARGUMENT', `unknown flag ${JSON.stringify(flag)}; known: ${knownFlags.join(', ')}`);
      }
      map.flags = c.on ? [...new Set([...map.flags, flag])].sort() : map.flags.filter((f) => f !== flag);
      message = `flag ${flag} ${c.on ? 'set' : 'unset'}`;
      break;
    }
  }
  if (JSON.stringify(map) === JSON.stringify(current)) return { map: current, message: `${message} (no change)`, ...(id !== undefined ? { id } : {}) };
  map.epoch = current.epoch + 1;
  map.modifiedMs = nowMs;
  return { map, message, ...(id !== undefined ? { id } : {}) };
}
