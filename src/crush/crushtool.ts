/**
 * What `shoal crush test` and `shoal crush show` print, as functions, so the golden vectors are regenerated in
 * process by exactly the code the CLI runs.
 */
import { StorageError } from '../common/index.js';
import type { ClusterMap, CrushBucket, CrushStep } from '../protocol/index.js';
import { CRUSH_ITEM_NONE, compileCrush, reweightIn } from './mapper.js';
import { osdIdLimit } from './validate.js';

export interface RuleTestOptions {
  /** Rule id, or name. */
  rule: number | string;
  numRep: number;
  minX: number;
  maxX: number;
  /** OSDs to treat as out in addition to those the map marks out. */
  markOut?: readonly number[];
}

export interface RuleTestResult {
  ruleId: number;
  /** One line per input x: `rule R x N [a,b,c]` (holes print as CRUSH_ITEM_NONE, 2147483647). */
  lines: string[];
  /** Placements per OSD id over all inputs (OSDs never chosen are absent). */
  counts: Map<number, number>;
}

/** Bound on the inputs of one test run, so a typo cannot run for hours. */
export const ruleTestInputsMax = 10_000_000;

/** The crushtool-style line for one mapping. */
export function formatMappingLine(ruleId: number, x: number, items: readonly number[]): string {
  return `rule ${ruleId} x ${x} [${items.join(',')}]`;
}

/**
 * Runs a rule over inputs minX..maxX. Out-ness comes from the map (not in, or reweight 0 → out; a reweight in
 * between rejects a hash-chosen share; OSDs missing from the OSD list are out) plus `markOut`; up/down is ignored,
 * as this is CRUSH's raw output.
 */
export function testRule(map: ClusterMap, options: RuleTestOptions): RuleTestResult {
  const crush = compileCrush(map.crush);
  const rule = typeof options.rule === 'number' ? crush.rule(options.rule) : crush.findRule(options.rule);
  const { minX, maxX, numRep } = options;
  if (!Number.isInteger(minX) || !Number.isInteger(maxX) || minX < 0 || maxX > 0xffff_ffff || maxX < minX) {
    throw new StorageError('INVALID_ARGUMENT', `inputs must satisfy 0 <= min-x <= max-x < 2^32, not ${minX}..${maxX}`);
  }
  if (maxX - minX + 1 > ruleTestInputsMax) {
    throw new StorageError('INVALID_ARGUMENT', `at most ${ruleTestInputsMax} inputs per run`);
  }
  const reweights = reweightTable(map, options.markOut ?? []);
  const lines: string[] = [];
  const counts = new Map<number, number>();
  for (let x = minX; x <= maxX; x++) {
    const count = crush.mapRaw(rule.id, x, numRep, reweights, null);
    const result = Array.from(crush.rawResult.subarray(0, count));
    lines.push(formatMappingLine(rule.id, x, result));
    for (const osd of result) if (osd !== CRUSH_ITEM_NONE) counts.set(osd, (counts.get(osd) ?? 0) + 1);
  }
  return { ruleId: rule.id, lines, counts };
}

function reweightTable(map: ClusterMap, markOut: readonly number[]): Float64Array {
  let size = 0;
  for (const osd of map.osds) {
    if (!Number.isInteger(osd.id) || osd.id < 0 || osd.id >= osdIdLimit) {
      throw new StorageError('INVALID_ARGUMENT', `cluster map: bad OSD id ${osd.id}`);
    }
    size = Math.max(size, osd.id + 1);
  }
  const table = new Float64Array(size);
  for (const osd of map.osds) table[osd.id] = osd.in ? osd.reweight : 0;
  for (const id of markOut) {
    if (!Number.isInteger(id) || id < 0) throw new StorageError('INVALID_ARGUMENT', `bad OSD id to mark out: ${id}`);
    if (id < size) table[id] = 0;
  }
  return table;
}

/** Per-OSD utilization lines after a test: count, and the count its crush weight share would give. */
export function formatUtilization(map: ClusterMap, test: RuleTestResult): string[] {
  const weights = new Map<number, number>();
  for (const bucket of map.crush.buckets) for (const item of bucket.items) if (item.id >= 0) weights.set(item.id, item.weight);
  let total = 0;
  for (const count of test.counts.values()) total += count;
  const totalWeight = [...weights.values()].reduce((s, w) => s + w, 0);
  const ids = [...new Set([...weights.keys(), ...test.counts.keys()])].sort((a, b) => a - b);
  const lines = [`rule ${test.ruleId} placements ${total} over ${test.counts.size} OSDs`];
  for (const id of ids) {
    const expected = totalWeight > 0 ? (total * (weights.get(id) ?? 0)) / totalWeight : 0;
    lines.push(`osd.${id} count ${test.counts.get(id) ?? 0} expected ${expected.toFixed(1)}`);
  }
  return lines;
}

function formatWeight(weight: number): string {
  return (weight / reweightIn).toFixed(5);
}

function formatStep(step: CrushStep, names: Map<number, string>): string {
  switch (step.op) {
    case 'take':
      return `take ${names.get(step.item) ?? step.item}`;
    case 'emit':
      return 'emit';
    default:
      return `${step.op} ${step.mode} ${step.num} type ${step.type}`;
  }
}

/** The hierarchy as an indented tree (id, weight, type, name; OSDs with up/down, in/out, reweight), then the rules. */
export function formatTree(map: ClusterMap): string[] {
  const crush = map.crush;
  const byId = new Map<number, CrushBucket>(crush.buckets.map((b) => [b.id, b]));
  const osds = new Map(map.osds.map((o) => [o.id, o]));
  const children = new Set<number>();
  for (const bucket of crush.buckets) for (const item of bucket.items) children.add(item.id);
  const lines = [`${'ID'.padEnd(8)}${'WEIGHT'.padStart(12)}  TYPE NAME`];
  const seen = new Set<number>();
  const row = (id: number, weight: number, depth: number, text: string): string =>
    `${String(id).padEnd(8)}${formatWeight(weight).padStart(12)}  ${'    '.repeat(depth)}${text}`;
  const visit = (bucket: CrushBucket, weight: number, depth: number): void => {
    // A malformed map may have cycles; show each bucket once.
    if (seen.has(bucket.id)) return;
    seen.add(bucket.id);
    lines.push(row(bucket.id, weight, depth, `${bucket.type} ${bucket.name}`));
    for (const item of bucket.items) {
      const child = byId.get(item.id);
      if (child) {
        visit(child, item.weight, depth + 1);
      } else if (item.id >= 0) {
        const info = osds.get(item.id);
        const status = info
          ? `${info.up ? 'up' : 'down'} ${info.in ? 'in' : 'out'} reweight ${formatWeight(info.reweight)}`
          : 'not in the OSD list';
        lines.push(row(item.id, item.weight, depth + 1, `osd osd.${item.id} ${status}`));
      } else {
        lines.push(row(item.id, item.weight, depth + 1, '(missing bucket)'));
      }
    }
  };
  for (const bucket of crush.buckets) {
    if (!children.has(bucket.id)) visit(bucket, bucket.items.reduce((s, i) => s + i.weight, 0), 0);
  }
  const orphans = map.osds.filter((o) => !children.has(o.id));
  for (const osd of orphans) lines.push(`osd.${osd.id} is not in the CRUSH hierarchy (${osd.up ? 'up' : 'down'})`);
  const names = new Map(crush.buckets.map((b) => [b.id, b.name]));
  for (const rule of crush.rules) {
    lines.push(`rule ${rule.id} ${rule.name} (${rule.type}): ${rule.steps.map((s) => formatStep(s, names)).join('; ')}`);
  }
  return lines;
}
