/**
 * Edits of a live CRUSH hierarchy made by monitor commands, on top of src/crush's builder (which owns the weight
 * sums and validation). Each returns a new CrushMap; maps already used for placement are never changed.
 */
import {
  StorageError,
  crushAddOsd,
  crushRemoveOsd,
  crushTypeRank,
  crushWeightOf,
  defaultRootName,
  parentBucket,
  validateCrushMap,
  withBucketWeights,
  type CrushBucket,
  type CrushMap,
  type CrushType,
} from '../../src/index.js';

export function findBucket(crush: CrushMap, name: string): CrushBucket | undefined {
  return crush.buckets.find((b) => b.name === name);
}

export function addBucket(crush: CrushMap, name: string, type: CrushType, parentName: string): { crush: CrushMap; bucket: CrushBucket } {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new StorageError('INVALID_ARGUMENT', `bad bucket name ${JSON.stringify(name)}`);
  if (/^osd\.\d+$/.test(name)) throw new StorageError('INVALID_ARGUMENT', `bucket name ${name} looks like an OSD`);
  if (findBucket(crush, name)) throw new StorageError('ALREADY_EXISTS', `bucket ${name} exists`);
  if (type === 'osd') throw new StorageError('INVALID_ARGUMENT', 'OSDs are created with `osd create`, not as buckets');
  const copy = structuredClone(crush);
  const bucket: CrushBucket = { id: Math.min(0, ...copy.buckets.map((b) => b.id)) - 1, name, type, items: [] };
  if (type !== 'root') {
    const parent = findBucket(copy, parentName || defaultRootName);
    if (!parent) throw new StorageError('NOT_FOUND', `parent bucket ${parentName || defaultRootName} does not exist`);
    if (crushTypeRank(parent.type) <= crushTypeRank(type)) {
      throw new StorageError('INVALID_ARGUMENT', `a ${type} cannot sit under ${parent.type} ${parent.name}`);
    }
    parent.items.push({ id: bucket.id, weight: 0 });
  } else if (parentName) {
    throw new StorageError('INVALID_ARGUMENT', 'a root has no parent');
  }
  copy.buckets.push(bucket);
  return { crush: withBucketWeights(copy), bucket };
}

/** Puts an OSD under host `host` (created under the default root when missing) with `weight`, moving it if needed. */
export function placeOsd(crush: CrushMap, osdId: number, host: string, weight: number): CrushMap {
  const without = parentBucket(crush, osdId) ? crushRemoveOsd(crush, osdId) : crush;
  return crushAddOsd(without, osdId, host, weight);
}

export function removeOsd(crush: CrushMap, osdId: number): CrushMap {
  return parentBucket(crush, osdId) ? crushRemoveOsd(crush, osdId) : crush;
}

export const osdCrushWeight = crushWeightOf;

/** Moves a bucket (by name) or an OSD (`osd.N`) under another bucket. */
export function moveItem(crush: CrushMap, name: string, parentName: string): CrushMap {
  const copy = structuredClone(crush);
  const parent = findBucket(copy, parentName);
  if (!parent) throw new StorageError('NOT_FOUND', `bucket ${parentName} does not exist`);
  const osdMatch = /^osd\.(\d+)$/.exec(name);
  const bucket = osdMatch ? undefined : findBucket(copy, name);
  const itemId = osdMatch ? Number(osdMatch[1]) : bucket?.id;
  if (itemId === undefined) throw new StorageError('NOT_FOUND', `bucket ${name} does not exist`);
  const oldParent = parentBucket(copy, itemId);
  const item = oldParent?.items.find((i) => i.id === itemId);
  if (osdMatch && !item) throw new StorageError('NOT_FOUND', `${name} is not in the CRUSH map`);
  const type: CrushType = bucket?.type ?? 'osd';
  if (crushTypeRank(parent.type) <= crushTypeRank(type)) {
    throw new StorageError('INVALID_ARGUMENT', `a ${type} cannot sit under ${parent.type} ${parent.name}`);
  }
  if (bucket) {
    for (let p: CrushBucket | undefined = parent; p; p = parentBucket(copy, p.id)) {
      if (p.id === bucket.id) throw new StorageError('INVALID_ARGUMENT', `moving ${name} under ${parentName} makes a cycle`);
    }
  }
  if (oldParent) oldParent.items = oldParent.items.filter((i) => i.id !== itemId);
  parent.items.push({ id: itemId, weight: item?.weight ?? 0 });
  const result = withBucketWeights(copy);
  validateCrushMap(result);
  return result;
}

/** Failure domains of `type` under the bucket a rule takes (to reject erasure profiles that cannot be placed). */
export function countDomains(crush: CrushMap, takeId: number, type: CrushType): number {
  const byId = new Map(crush.buckets.map((b) => [b.id, b]));
  const start = byId.get(takeId);
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
      const child = byId.get(item.id);
      if (!child) continue;
      if (child.type === type) count++;
      else visit(child, depth + 1);
    }
  };
  visit(start, 0);
  return count;
}
