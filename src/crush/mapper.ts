/**
 * Rule execution: take / choose / chooseleaf / emit over a compiled hierarchy. A {@link CompiledCrush} is built once
 * per CRUSH map (validation, an id → bucket index, typed arrays per bucket) so that one mapping costs only the
 * straw2 draws it needs and allocates nothing but its result array.
 *
 * Semantics (README.md has the full statement):
 * - firstn (replicated): slot `rep` tries r = rep + ftotal for ftotal = 0, 1, … < chooseTotalTries; a failed descent,
 *   a collision with an earlier slot, or an out OSD moves to the next try. Slots that never succeed are dropped, so
 *   the result is compact and may be shorter than asked.
 * - indep (erasure): position `rep` tries r = rep + numRep · ftotal, round by round over the still-empty positions;
 *   positions never filled hold {@link CRUSH_ITEM_NONE}. A rejected choice retries that position only.
 * - chooseleaf: after a failure domain is chosen, one OSD is picked under it with its own tries r' = 0, 1, … that do
 *   not depend on the slot or position, so a domain yields the same OSD whichever slot reached it, and an out OSD is
 *   replaced by a sibling in the same domain before the domain itself is given up.
 */
import { StorageError } from '../common/index.js';
import type { CrushMap, CrushRule } from '../protocol/index.js';
import { hash2i } from './hash.js';
import { straw2ChooseFast } from './straw2.js';
import { crushTypeRank, numRepMax, validateCrushMap } from './validate.js';

/**
 * The value of an indep position that could not be filled (and of a down OSD's position in an erasure up set).
 * 0x7fffffff, printed as 2147483647 as crushtool does; never a valid OSD id (those are below 2^24).
 */
export const CRUSH_ITEM_NONE = 0x7fffffff;
/** An indep position not decided yet. */
const itemUndecided = 0x7ffffffe;
/** A descent that ended without reaching an item of the wanted type. */
const descentFailed = 0x7ffffffd;

/** Answers whether `osd` counts as out for input x (then CRUSH never chooses it). */
export type IsOut = (osd: number, x: number) => boolean;

/** Reweight of an OSD that is always in (16.16 fixed point, 1.0). */
export const reweightIn = 0x10000;

interface CompiledBucket {
  readonly id: number;
  readonly type: number;
  readonly ids: Int32Array;
  readonly weights: Float64Array;
  /** 1 / weight (0 for weight 0), for straw2ChooseFast. */
  readonly inverses: Float64Array;
  /** Parallel to ids: the child bucket, or null for an OSD. */
  readonly children: (CompiledBucket | null)[];
  readonly totalWeight: number;
}

const opTake = 0;
const opChoose = 1;
const opEmit = 2;

interface CompiledStep {
  readonly op: number;
  readonly item: number;
  readonly firstn: boolean;
  readonly leaf: boolean;
  readonly num: number;
  readonly type: number;
}

interface CompiledRule {
  readonly rule: CrushRule;
  readonly steps: CompiledStep[];
}

/** A CRUSH map prepared for fast mapping. Build one per map (maps are immutable once compiled). Not reentrant. */
export class CompiledCrush {
  readonly crush: CrushMap;
  readonly chooseTotalTries: number;
  readonly #buckets = new Map<number, CompiledBucket>();
  readonly #rules = new Map<number, CompiledRule>();

  // State of the mapping in progress, kept in fields so the recursive helpers take few arguments.
  #x = 0;
  #reweights: Float64Array | null = null;
  #isOut: IsOut | null = null;
  #descended: CompiledBucket | null = null;
  #busy = false;
  #scratchA = new Int32Array(64);
  #scratchB = new Int32Array(64);
  #scratchC = new Int32Array(64);
  #result = new Int32Array(64);

  /** Validates `crush` (INVALID_ARGUMENT on any problem) and indexes it. */
  constructor(crush: CrushMap) {
    validateCrushMap(crush);
    this.crush = crush;
    this.chooseTotalTries = crush.tunables.chooseTotalTries;
    const source = new Map(crush.buckets.map((b) => [b.id, b]));
    const compile = (id: number): CompiledBucket => {
      const done = this.#buckets.get(id);
      if (done) return done;
      const bucket = source.get(id)!;
      const compiled: CompiledBucket = {
        id,
        type: crushTypeRank(bucket.type),
        ids: Int32Array.from(bucket.items, (i) => i.id),
        weights: Float64Array.from(bucket.items, (i) => i.weight),
        inverses: Float64Array.from(bucket.items, (i) => (i.weight > 0 ? 1 / i.weight : 0)),
        children: bucket.items.map((i) => (i.id < 0 ? compile(i.id) : null)),
        totalWeight: bucket.items.reduce((s, i) => s + i.weight, 0),
      };
      this.#buckets.set(id, compiled);
      return compiled;
    };
    for (const bucket of crush.buckets) compile(bucket.id);
    for (const rule of crush.rules) {
      const steps = rule.steps.map((step): CompiledStep => {
        switch (step.op) {
          case 'take':
            return { op: opTake, item: step.item, firstn: false, leaf: false, num: 0, type: 0 };
          case 'emit':
            return { op: opEmit, item: 0, firstn: false, leaf: false, num: 0, type: 0 };
          case 'choose':
          case 'chooseleaf':
            return {
              op: opChoose,
              item: 0,
              firstn: step.mode === 'firstn',
              leaf: step.op === 'chooseleaf' && step.type !== 'osd',
              num: step.num,
              type: crushTypeRank(step.type),
            };
        }
      });
      this.#rules.set(rule.id, { rule, steps });
    }
  }

  hasRule(ruleId: number): boolean {
    return this.#rules.has(ruleId);
  }

  /** The rule with this id; NOT_FOUND when there is none. */
  rule(ruleId: number): CrushRule {
    return this.#compiledRule(ruleId).rule;
  }

  /** The rule named `name` or with the id `name` spells; NOT_FOUND when there is none. */
  findRule(name: string): CrushRule {
    const byName = this.crush.rules.find((r) => r.name === name);
    if (byName) return byName;
    if (/^\d+$/.test(name)) return this.rule(Number(name));
    throw new StorageError('NOT_FOUND', `no CRUSH rule named ${JSON.stringify(name)}`);
  }

  /**
   * Runs rule `ruleId` for input x, asking for numRep items. `isOut(osd, x)` marks OSDs CRUSH must not choose
   * (default: none). firstn rules give a compact list; indep rules give numRep positions, CRUSH_ITEM_NONE for holes.
   */
  doRule(ruleId: number, x: number, numRep: number, isOut?: IsOut): number[] {
    const count = this.mapRaw(ruleId, x, numRep, null, isOut ?? null);
    const raw = this.#result;
    const result: number[] = [];
    for (let i = 0; i < count; i++) result.push(raw[i]!);
    return result;
  }

  /**
   * doRule without allocating: out-ness as a reweight table (16.16 per OSD id: 0 out, >= 0x10000 in, in between
   * rejected for a hash-chosen share of inputs; ids beyond the table are out) and/or a predicate. The output is
   * {@link rawResult}[0, returned count), valid until the next call.
   * @internal
   */
  mapRaw(ruleId: number, x: number, numRep: number, reweights: Float64Array | null, isOut: IsOut | null): number {
    const rule = this.#compiledRule(ruleId);
    if (!Number.isInteger(numRep) || numRep < 0 || numRep > numRepMax) {
      throw new StorageError('INVALID_ARGUMENT', `numRep must be an integer in [0, ${numRepMax}], not ${numRep}`);
    }
    if (this.#busy) throw new TypeError('CompiledCrush is not reentrant (isOut called back into it)');
    this.#busy = true;
    this.#x = x | 0;
    this.#reweights = reweights;
    this.#isOut = isOut;
    try {
      return this.#run(rule, numRep);
    } finally {
      this.#busy = false;
      this.#reweights = null;
      this.#isOut = null;
      this.#descended = null;
    }
  }

  /** The output buffer of {@link mapRaw}. @internal */
  get rawResult(): Int32Array {
    return this.#result;
  }

  #compiledRule(ruleId: number): CompiledRule {
    const rule = this.#rules.get(ruleId);
    if (!rule) throw new StorageError('NOT_FOUND', `no CRUSH rule with id ${ruleId}`);
    return rule;
  }

  #run(rule: CompiledRule, numRep: number): number {
    let work = this.#scratchA;
    let out = this.#scratchB;
    let leaves = this.#scratchC;
    let workCount = 0;
    let resultCount = 0;
    for (const step of rule.steps) {
      if (step.op === opTake) {
        work[0] = step.item;
        workCount = 1;
      } else if (step.op === opEmit) {
        if (resultCount + workCount > this.#result.length) {
          const grown = new Int32Array(Math.max(2 * this.#result.length, resultCount + workCount));
          grown.set(this.#result.subarray(0, resultCount));
          this.#result = grown;
        }
        const result = this.#result;
        for (let i = 0; i < workCount; i++) result[resultCount + i] = work[i]!;
        resultCount += workCount;
        workCount = 0;
      } else {
        const n = step.num > 0 ? step.num : numRep + step.num;
        if (n <= 0) {
          workCount = 0;
          continue;
        }
        const needed = workCount * n;
        if (needed > out.length) {
          if (needed > numRepMax * numRepMax) {
            throw new StorageError('INVALID_ARGUMENT', `rule ${rule.rule.name} would produce ${needed} items`);
          }
          const grown = Math.max(needed, out.length * 2);
          const w = new Int32Array(grown);
          w.set(work.subarray(0, workCount));
          work = w;
          out = new Int32Array(grown);
          leaves = new Int32Array(grown);
          this.#scratchA = work;
          this.#scratchB = out;
          this.#scratchC = leaves;
        }
        let outCount = 0;
        for (let i = 0; i < workCount; i++) {
          const bucket = this.#buckets.get(work[i]!);
          if (step.firstn) {
            if (bucket) outCount += this.#chooseFirstn(bucket, n, step.type, step.leaf, out, leaves, outCount);
          } else {
            if (bucket) this.#chooseIndep(bucket, n, step.type, step.leaf, out, leaves, outCount);
            else for (let j = 0; j < n; j++) out[outCount + j] = leaves[outCount + j] = CRUSH_ITEM_NONE;
            outCount += n;
          }
        }
        // The step's output becomes the working set; the other two arrays are free for the next step.
        const previous = work;
        if (step.leaf) {
          work = leaves;
          leaves = previous;
        } else {
          work = out;
          out = previous;
        }
        workCount = outCount;
      }
    }
    return resultCount;
  }

  /** Straw2 down from `bucket` until an item of rank `type`; remembers the bucket of a bucket result. */
  #descend(bucket: CompiledBucket, r: number, type: number): number {
    let b = bucket;
    for (;;) {
      const i = straw2ChooseFast(b.ids, b.weights, b.inverses, this.#x, r);
      if (i < 0) return descentFailed;
      const item = b.ids[i]!;
      if (item >= 0) return type === 0 ? item : descentFailed;
      const child = b.children[i]!;
      if (child.type === type) {
        this.#descended = child;
        return item;
      }
      if (child.type < type) return descentFailed;
      b = child;
    }
  }

  #isOsdOut(osd: number): boolean {
    const reweights = this.#reweights;
    if (reweights !== null) {
      if (osd >= reweights.length) return true;
      const w = reweights[osd]!;
      if (w < reweightIn && (w === 0 || (hash2i(this.#x, osd) & 0xffff) >= w)) return true;
    }
    const isOut = this.#isOut;
    return isOut !== null && isOut(osd, this.#x);
  }

  /** One in OSD under `domain` not already in leaves[from, from + span), or CRUSH_ITEM_NONE. */
  #chooseLeaf(domain: CompiledBucket, leaves: Int32Array, from: number, span: number): number {
    if (domain.totalWeight === 0) return CRUSH_ITEM_NONE;
    const tries = this.chooseTotalTries;
    const end = from + span;
    next: for (let t = 0; t < tries; t++) {
      const osd = this.#descend(domain, t, 0);
      if (osd === descentFailed) continue;
      for (let j = from; j < end; j++) if (leaves[j] === osd) continue next;
      if (this.#isOsdOut(osd)) continue;
      return osd;
    }
    return CRUSH_ITEM_NONE;
  }

  /** firstn from `bucket` into out[from…] (and leaves[from…]); returns how many slots were filled. */
  #chooseFirstn(
    bucket: CompiledBucket,
    numRep: number,
    type: number,
    leaf: boolean,
    out: Int32Array,
    leaves: Int32Array,
    from: number,
  ): number {
    if (bucket.totalWeight === 0) return 0;
    const tries = this.chooseTotalTries;
    let count = 0;
    for (let rep = 0; rep < numRep; rep++) {
      next: for (let ftotal = 0; ftotal < tries; ftotal++) {
        const item = this.#descend(bucket, rep + ftotal, type);
        if (item === descentFailed) continue;
        const end = from + count;
        for (let j = from; j < end; j++) if (out[j] === item) continue next;
        if (item >= 0) {
          if (this.#isOsdOut(item)) continue;
          if (leaf) leaves[end] = item;
        } else if (leaf) {
          const osd = this.#chooseLeaf(this.#descended!, leaves, from, count);
          if (osd === CRUSH_ITEM_NONE) continue;
          leaves[end] = osd;
        }
        out[end] = item;
        count++;
        break;
      }
    }
    return count;
  }

  /** indep from `bucket` into out[from, from + numRep) (and leaves), CRUSH_ITEM_NONE where nothing fits. */
  #chooseIndep(
    bucket: CompiledBucket,
    numRep: number,
    type: number,
    leaf: boolean,
    out: Int32Array,
    leaves: Int32Array,
    from: number,
  ): void {
    const end = from + numRep;
    for (let j = from; j < end; j++) out[j] = leaves[j] = itemUndecided;
    if (bucket.totalWeight > 0) {
      const tries = this.chooseTotalTries;
      let left = numRep;
      for (let ftotal = 0; left > 0 && ftotal < tries; ftotal++) {
        next: for (let rep = 0; rep < numRep; rep++) {
          if (out[from + rep] !== itemUndecided) continue;
          const item = this.#descend(bucket, rep + numRep * ftotal, type);
          if (item === descentFailed) continue;
          for (let j = from; j < end; j++) if (out[j] === item) continue next;
          if (item >= 0) {
            if (this.#isOsdOut(item)) continue;
            leaves[from + rep] = item;
          } else if (leaf) {
            const osd = this.#chooseLeaf(this.#descended!, leaves, from, numRep);
            if (osd === CRUSH_ITEM_NONE) continue;
            leaves[from + rep] = osd;
          }
          out[from + rep] = item;
          left--;
        }
      }
    }
    for (let j = from; j < end; j++) {
      if (out[j] === itemUndecided) out[j] = leaves[j] = CRUSH_ITEM_NONE;
    }
  }
}

const compiledByMap = new WeakMap<CrushMap, CompiledCrush>();

/** The CompiledCrush of `crush`, built on first use and cached for the map object (do not mutate it afterwards). */
export function compileCrush(crush: CrushMap): CompiledCrush {
  let compiled = compiledByMap.get(crush);
  if (!compiled) {
    compiled = new CompiledCrush(crush);
    compiledByMap.set(crush, compiled);
  }
  return compiled;
}

/** {@link CompiledCrush.doRule} on `crush`, compiling it on first use. */
export function doRule(crush: CrushMap, ruleId: number, x: number, numRep: number, isOut?: IsOut): number[] {
  return compileCrush(crush).doRule(ruleId, x, numRep, isOut);
}
