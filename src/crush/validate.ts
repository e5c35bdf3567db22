/**
 * Structural checks of a CRUSH map, run before a map is compiled for mapping. The mapper relies on them: every
 * descent ends (types strictly decrease downwards), a bucket with weight > 0 always yields an OSD (item weights are
 * the sums of their children), and no arithmetic leaves its exact range (weights < 2^32).
 */
import { StorageError } from '../common/index.js';
import { crushTypes, type CrushMap, type CrushType } from '../protocol/index.js';

/** OSD ids are below this (they index dense per-OSD tables; Ceph's practical limits are far lower). */
export const osdIdLimit = 1 << 24;
/** Bound on a choose step's `num` and on the replica count asked of a rule. */
export const numRepMax = 256;
/** Bound on the chooseTotalTries tunable (each try is one descent of the hierarchy). */
export const chooseTotalTriesMax = 1000;

const weightLimit = 2 ** 32;

/** Rank of a CRUSH type: osd 0, host 1, rack 2, zone 3, root 4. A bucket's children rank strictly lower. */
export function crushTypeRank(type: CrushType): number {
  return crushTypes.indexOf(type);
}

function invalid(message: string): StorageError {
  return new StorageError('INVALID_ARGUMENT', `crush map: ${message}`);
}

function isWeight(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < weightLimit;
}

/**
 * Throws INVALID_ARGUMENT naming the first problem found: bucket ids (unique, negative), names (unique, non-empty),
 * types, items (existing buckets or OSD ids in [0, 2^24), each item in at most one bucket), no cycles, children
 * ranked below their parent, each bucket's weight in its parent equal to the sum of its items (all below 2^32),
 * rules (unique ids and names, take of an existing bucket, valid choose steps, ending with emit), tunables.
 */
export function validateCrushMap(crush: CrushMap): void {
  const tries = crush.tunables.chooseTotalTries;
  if (!Number.isInteger(tries) || tries < 1 || tries > chooseTotalTriesMax) {
    throw invalid(`chooseTotalTries must be an integer in [1, ${chooseTotalTriesMax}], not ${tries}`);
  }
  const byId = new Map<number, CrushMap['buckets'][number]>();
  const names = new Set<string>();
  for (const bucket of crush.buckets) {
    if (!Number.isInteger(bucket.id) || bucket.id >= 0 || bucket.id < -0x8000_0000) {
      throw invalid(`bucket ${bucket.name}: id ${bucket.id} must be a negative 32-bit integer`);
    }
    if (byId.has(bucket.id)) throw invalid(`bucket id ${bucket.id} is used twice`);
    if (typeof bucket.name !== 'string' || bucket.name === '') throw invalid(`bucket ${bucket.id} has no name`);
    if (names.has(bucket.name)) throw invalid(`bucket name ${bucket.name} is used twice`);
    if (!crushTypes.includes(bucket.type) || bucket.type === 'osd') {
      throw invalid(`bucket ${bucket.name}: type ${String(bucket.type)} is not a bucket type`);
    }
    byId.set(bucket.id, bucket);
    names.add(bucket.name);
  }

  const parentOf = new Map<number, string>();
  for (const bucket of crush.buckets) {
    for (const item of bucket.items) {
      const where = `bucket ${bucket.name}: item ${item.id}`;
      if (!Number.isInteger(item.id)) throw invalid(`${where} is not an integer id`);
      if (item.id >= 0 && item.id >= osdIdLimit) throw invalid(`${where}: OSD ids must be below ${osdIdLimit}`);
      if (item.id < 0) {
        const child = byId.get(item.id);
        if (!child) throw invalid(`${where} is not a bucket`);
      }
      if (!isWeight(item.weight)) throw invalid(`${where}: weight ${item.weight} is not an integer in [0, 2^32)`);
      const other = parentOf.get(item.id);
      if (other !== undefined) {
        throw invalid(
          other === bucket.name ? `${where} appears twice` : `${where} is also in bucket ${other} (an item has one parent)`,
        );
      }
      parentOf.set(item.id, bucket.name);
    }
  }

  // Depth-first from every bucket; a bucket met again on the current path closes a cycle.
  const state = new Map<number, 'visiting' | 'done'>();
  const visit = (id: number, path: string[]): void => {
    const bucket = byId.get(id)!;
    const seen = state.get(id);
    if (seen === 'done') return;
    if (seen === 'visiting') throw invalid(`cycle: ${[...path, bucket.name].join(' -> ')}`);
    state.set(id, 'visiting');
    for (const item of bucket.items) if (item.id < 0) visit(item.id, [...path, bucket.name]);
    state.set(id, 'done');
  };
  for (const bucket of crush.buckets) visit(bucket.id, []);

  for (const bucket of crush.buckets) {
    let sum = 0;
    for (const item of bucket.items) {
      sum += item.weight;
      if (item.id >= 0) continue;
      const child = byId.get(item.id)!;
      if (crushTypeRank(child.type) >= crushTypeRank(bucket.type)) {
        throw invalid(`bucket ${bucket.name}: a ${child.type} (${child.name}) cannot sit under a ${bucket.type}`);
      }
      const childSum = child.items.reduce((s, i) => s + i.weight, 0);
      if (childSum !== item.weight) {
        throw invalid(
          `bucket ${bucket.name}: weight of ${child.name} is ${item.weight} but its items sum to ${childSum}`,
        );
      }
    }
    if (sum >= weightLimit) throw invalid(`bucket ${bucket.name}: total weight ${sum} is not below 2^32`);
  }

  const ruleIds = new Set<number>();
  const ruleNames = new Set<string>();
  for (const rule of crush.rules) {
    const where = `rule ${rule.id} (${rule.name})`;
    if (!Number.isInteger(rule.id) || rule.id < 0 || rule.id > 0xffff) {
      throw invalid(`${where}: id must be an integer in [0, 65535]`);
    }
    if (ruleIds.has(rule.id)) throw invalid(`rule id ${rule.id} is used twice`);
    if (typeof rule.name !== 'string' || rule.name === '') throw invalid(`rule ${rule.id} has no name`);
    if (ruleNames.has(rule.name)) throw invalid(`rule name ${rule.name} is used twice`);
    if (rule.type !== 'replicated' && rule.type !== 'erasure') throw invalid(`${where}: unknown type ${String(rule.type)}`);
    ruleIds.add(rule.id);
    ruleNames.add(rule.name);
    if (rule.steps.length === 0) throw invalid(`${where} has no steps`);
    let haveWorkingSet = false;
    rule.steps.forEach((step, index) => {
      const at = `${where} step ${index + 1}`;
      switch (step.op) {
        case 'take':
          if (!byId.has(step.item)) throw invalid(`${at}: take item ${step.item} is not a bucket`);
          haveWorkingSet = true;
          break;
        case 'choose':
        case 'chooseleaf':
          if (!haveWorkingSet) throw invalid(`${at}: ${step.op} must follow a take`);
          if (step.mode !== 'firstn' && step.mode !== 'indep') throw invalid(`${at}: unknown mode ${String(step.mode)}`);
          if (!crushTypes.includes(step.type)) throw invalid(`${at}: unknown type ${String(step.type)}`);
          if (!Number.isInteger(step.num) || Math.abs(step.num) > numRepMax) {
            throw invalid(`${at}: num ${step.num} must be an integer in [-${numRepMax}, ${numRepMax}]`);
          }
          break;
        case 'emit':
          haveWorkingSet = false;
          break;
        default:
          throw invalid(`${at}: unknown op ${String((step as { op: unknown }).op)}`);
      }
    });
    if (rule.steps[rule.steps.length - 1]?.op !== 'emit') throw invalid(`${where} must end with emit`);
  }
}
