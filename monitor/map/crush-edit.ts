/**
 * Edits of the CRUSH hierarchy made by monitor commands. Each works on a copy the caller owns and keeps the
 * invariant that a bucket's item weight in its parent is the sum of its own items' weights.
 */
import { StorageError, type CrushBucket, type CrushMap, type CrushType } from '../../src/index.js';

const typeRank: Record<CrushType, number> = { osd: 0, host: 1, rack: 2, zone: 3, root: 4 };

export const defaultRootName = 'default';

export function findBucket(crush: CrushMap, name: string): CrushBucket | undefined {
  return crush.buckets.find((b) => b.name === name);
}

function bucketById(crush: CrushMap, id: number): CrushBucket | undefined {
  return crush.buckets.find((b) => b.id === id);
}

function parentOf(crush: CrushMap, itemId: number): CrushBucket | undefined {
  return crush.buckets.find((b) => b.items.some((i) => i.id === itemId));
}

/** Sets every bucket's weight in its parent to the sum of its items, bottom-up. */
export function recomputeWeights(crush: CrushMap): void {
  const memo = new Map<number, number>();
  const weightOf = (bucket: CrushBucket, depth: number): number => {
    if (depth > crush.buckets.length) throw new StorageError('INVALID_ARGUMENT', 'CRUSH hierarchy has a cycle');
    const known = memo.get(bucket.id);
    if (known !== undefined) return known;
    let sum = 0;
    for (const item of bucket.items) {
      if (item.id < 0) {
        const child = bucketById(crush, item.id);
        item.weight = child ? weightOf(child, depth + 1) : 0;
      }
      sum += item.weight;
    }
    memo.set(bucket.id, sum);
    return sum;
  };
  for (const bucket of crush.buckets) weightOf(bucket, 0);
}

export function addBucket(crush: CrushMap, name: string, type: CrushType, parentName: string): CrushBucket {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new StorageError('INVALID_ARGUMENT', `bad bucket name ${JSON.stringify(name)}`);
  if (/^osd\.\d+$/.test(name)) throw new StorageError('INVALID_ARGUMENT', `bucket name ${name} looks like an OSD`);
  if (findBucket(crush, name)) throw new StorageError('ALREADY_EXISTS', `bucket ${name} exists`);
  if (type === 'osd') throw new StorageError('INVALID_ARGUMENT', 'OSDs are created with `osd create`, not as buckets');
  const id = Math.min(0, ...crush.buckets.map((b) => b.id)) - 1;
  const bucket: CrushBucket = { id, name, type, items: [] };
  if (type !== 'root') {
    const parent = findBucket(crush, parentName || defaultRootName);
    if (!parent) throw new StorageError('NOT_FOUND', `parent bucket ${parentName || defaultRootName} does not exist`);
    if (typeRank[parent.type] <= typeRank[type]) {
      throw new StorageError('INVALID_ARGUMENT', `a ${type} cannot sit under ${parent.type} ${parent.name}`);
    }
    parent.items.push({ id, weight: 0 });
  } else if (parentName) {
    throw new StorageError('INVALID_ARGUMENT', 'a root has no parent');
  }
  crush.buckets.push(bucket);
  return bucket;
}

/** The host bucket for an OSD, created under the default root when missing. */
export function ensureHost(crush: CrushMap, host: string): CrushBucket {
  const existing = findBucket(crush, host);
  if (existing) {
    if (existing.type !== 'host') throw new StorageError('INVALID_ARGUMENT', `${host} is a ${existing.type}, not a host`);
    return existing;
  }
  return addBucket(crush, host, 'host', defaultRootName);
}

export function placeOsd(crush: CrushMap, osdId: number, host: string, weight: number): void {
  removeItem(crush, osdId);
  ensureHost(crush, host).items.push({ id: osdId, weight });
  recomputeWeights(crush);
}

export function removeItem(crush: CrushMap, itemId: number): void {
  for (const bucket of crush.buckets) bucket.items = bucket.items.filter((i) => i.id !== itemId);
  recomputeWeights(crush);
}

export function osdCrushWeight(crush: CrushMap, osdId: number): number | undefined {
  return parentOf(crush, osdId)?.items.find((i) => i.id === osdId)?.weight;
}

export function setOsdCrushWeight(crush: CrushMap, osdId: number, weight: number): void {
  const item = parentOf(crush, osdId)?.items.find((i) => i.id === osdId);
  if (!item) throw new StorageError('NOT_FOUND', `osd.${osdId} is not in the CRUSH map`);
  item.weight = weight;
  recomputeWeights(crush);
}

/** Moves a bucket (by name) or an OSD (`osd.N`) under another bucket. */
export function moveItem(crush: CrushMap, name: string, parentName: string): void {
  const parent = findBucket(crush, parentName);
  if (!parent) throw new StorageError('NOT_FOUND', `bucket ${parentName} does not exist`);
  const osdMatch = /^osd\.(\d+)$/.exec(name);
  let itemId: number;
  let type: CrushType;
  let weight: number;
  if (osdMatch) {
    itemId = Number(osdMatch[1]);
    const current = osdCrushWeight(crush, itemId);
    if (current === undefined) throw new StorageError('NOT_FOUND', `${name} is not in the CRUSH map`);
    type = 'osd';
    weight = current;
  } else {
    const bucket = findBucket(crush, name);
    if (!bucket) throw new StorageError('NOT_FOUND', `bucket ${name} does not exist`);
    itemId = bucket.id;
    type = bucket.type;
    weight = 0;
    for (let p: CrushBucket | undefined = parent; p; p = parentOf(crush, p.id)) {
      if (p.id === bucket.id) throw new StorageError('INVALID_ARGUMENT', `moving ${name} under ${parentName} makes a cycle`);
    }
  }
  if (typeRank[parent.type] <= typeRank[type]) {
    throw new StorageError('INVALID_ARGUMENT', `a ${type} cannot sit under ${parent.type} ${parent.name}`);
  }
  removeItem(crush, itemId);
  parent.items.push({ id: itemId, weight });
  recomputeWeights(crush);
}

/** Failure domains of `type` under the bucket a rule takes (to reject erasure profiles that cannot be placed). */
export function countDomains(crush: CrushMap, takeId: number, type: CrushType): number {
  const start = bucketById(crush, takeId);
  if (!start) return 0;
  if (start.type === type) return 1;
  let count = 0;
  const visit = (bucket: CrushBucket, depth: number): void => {
    if (depth > crush.buckets.length) return;
    for (const item of bucket.items) {
      if (item.weight === 0) continue;
      if (item.id >= 0) {
        if (type === 'osd') count++;
        continue;
      }
      const child = bucketById(crush, item.id);
      if (!child) continue;
      if (child.type === type) count++;
      else visit(child, depth + 1);
    }
  };
  visit(start, 0);
  return count;
}
