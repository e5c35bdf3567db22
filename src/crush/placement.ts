/**
 * object → PG → OSDs. An object's PG is its name hash stable-modded by the pool's pg_num; a PG's OSDs are what the
 * pool's rule returns for x = hash2(pg seed, pool id), minus the OSDs that are down (the "up set").
 */
import { StorageError } from '../common/index.js';
import type { ClusterMap, Pool } from '../protocol/index.js';
import { hash2, hashName } from './hash.js';
import { CRUSH_ITEM_NONE, CompiledCrush, compileCrush } from './mapper.js';
import { osdIdLimit } from './validate.js';

/** A placement group: the pool it belongs to and its seed in [0, pg_num). */
export interface PgId {
  pool: number;
  seed: number;
}

export interface PgMapping {
  pgId: PgId;
  /**
   * The OSDs that serve the PG, in rule order. Replicated pools: the up OSDs CRUSH chose (down ones dropped).
   * Erasure pools: one entry per shard position, CRUSH_ITEM_NONE where the OSD is down or none could be chosen.
   */
  up: number[];
  /** The first entry of `up` that is not CRUSH_ITEM_NONE, or -1 when there is none. */
  primary: number;
}

/**
 * An up set as a PG keeps and reports it (its acting set): shard positions kept, a hole (CRUSH_ITEM_NONE) as -1.
 * The OSD's PGs and `shoal pg ls` compare acting sets in this form.
 */
export function actingFromUp(up: readonly number[]): number[] {
  return up.map((o) => (o === CRUSH_ITEM_NONE ? -1 : o));
}

/** The largest pg_num (and so seed count) a pool may have. */
export const pgNumMax = 1 << 24;

/** 2^k − 1 for the smallest 2^k >= pgNum: the mask of {@link stableMod}. */
export function pgNumMask(pgNum: number): number {
  if (!Number.isInteger(pgNum) || pgNum < 1 || pgNum > pgNumMax) {
    throw new StorageError('INVALID_ARGUMENT', `pg_num must be an integer in [1, ${pgNumMax}], not ${pgNum}`);
  }
  return pgNum === 1 ? 0 : 2 ** (32 - Math.clz32(pgNum - 1)) - 1;
}

/**
 * x "stable mod" b: x & mask when that is below b, else x & (mask >> 1), where mask = pgNumMask(b). Unlike x % b,
 * raising b from 2^k to 2^k + j only splits PGs: seed s < j gains the objects whose bit k is set, which move to the
 * new PG s + 2^k, and no other object moves.
 */
export function stableMod(x: number, b: number, mask: number): number {
  const low = x & mask;
  return low < b ? low : x & (mask >>> 1);
}

/** The PG of object `name` in `pool`. */
export function objectToPg(pool: Pool, name: string): PgId {
  return { pool: pool.id, seed: stableMod(hashName(name), pool.pgNum, pgNumMask(pool.pgNum)) };
}

/** The CRUSH input of a PG: pools with equal pg_num do not put their PGs on the same OSDs. */
export function pgPlacementSeed(pgId: PgId): number {
  return hash2(pgId.seed, pgId.pool);
}

/** `1.3f`: the pool id in decimal, a dot, the seed in lowercase hex (as Ceph prints PG ids). */
export function pgIdToString(pgId: PgId): string {
  return `${pgId.pool}.${pgId.seed.toString(16)}`;
}

/** Parses `pool.seedhex`; INVALID_ARGUMENT otherwise. */
export function parsePgId(text: string): PgId {
  const match = /^(\d{1,10})\.([0-9a-fA-F]{1,8})$/.exec(text);
  const pool = match ? Number(match[1]) : NaN;
  if (!match || pool > 0xffff_ffff) throw new StorageError('INVALID_ARGUMENT', `bad PG id ${JSON.stringify(text)}`);
  return { pool, seed: parseInt(match[2]!, 16) };
}

/**
 * Placement for one cluster map: its CRUSH map compiled, each OSD's out-ness as a reweight table (not in, or
 * unknown to the map → 0), and which OSDs are up. Build one per map epoch; mapping is then allocation-light.
 */
export class Placement {
  readonly map: ClusterMap;
  readonly crush: CompiledCrush;
  readonly #reweights: Float64Array;
  readonly #up: Uint8Array;
  readonly #pools: Map<number, Pool>;

  constructor(map: ClusterMap) {
    this.map = map;
    this.crush = compileCrush(map.crush);
    let maxId = -1;
    for (const osd of map.osds) {
      if (!Number.isInteger(osd.id) || osd.id < 0 || osd.id >= osdIdLimit) {
        throw new StorageError('INVALID_ARGUMENT', `cluster map: bad OSD id ${osd.id}`);
      }
      maxId = Math.max(maxId, osd.id);
    }
    this.#reweights = new Float64Array(maxId + 1);
    this.#up = new Uint8Array(maxId + 1);
    for (const osd of map.osds) {
      if (!Number.isInteger(osd.reweight) || osd.reweight < 0 || osd.reweight > 0xffff_ffff) {
        throw new StorageError('INVALID_ARGUMENT', `cluster map: osd.${osd.id} has bad reweight ${osd.reweight}`);
      }
      this.#reweights[osd.id] = osd.in ? osd.reweight : 0;
      this.#up[osd.id] = osd.up ? 1 : 0;
    }
    this.#pools = new Map(map.pools.map((p) => [p.id, p]));
  }

  /** The pool with this id; NOT_FOUND otherwise. */
  pool(poolId: number): Pool {
    const pool = this.#pools.get(poolId);
    if (!pool) throw new StorageError('NOT_FOUND', `no pool with id ${poolId}`);
    return pool;
  }

  objectToPg(poolId: number, name: string): PgId {
    return objectToPg(this.pool(poolId), name);
  }

  /** Whether the OSD exists in the map and is up. */
  isUp(osd: number): boolean {
    return osd >= 0 && osd < this.#up.length && this.#up[osd] === 1;
  }

  /** Mappings computed so far, by pool and seed: a map never changes, and OSDs and clients map a PG per request. */
  readonly #mapped = new Map<number, PgMapping[]>();

  /**
   * The up set and primary of a PG (computed once per map; frozen, as callers share it). NOT_FOUND for an unknown
   * pool or rule, INVALID_ARGUMENT for a seed >= pg_num.
   */
  mapPg(pgId: PgId): PgMapping {
    const pool = this.pool(pgId.pool);
    if (!Number.isInteger(pgId.seed) || pgId.seed < 0 || pgId.seed >= pool.pgNum) {
      throw new StorageError('INVALID_ARGUMENT', `PG ${pgIdToString(pgId)}: pool ${pool.name} has pg_num ${pool.pgNum}`);
    }
    let mapped = this.#mapped.get(pool.id);
    if (!mapped) {
      mapped = [];
      this.#mapped.set(pool.id, mapped);
    }
    const known = mapped[pgId.seed];
    if (known) return known;
    const mapping = this.#compute(pool, pgId);
    Object.freeze(mapping.up);
    Object.freeze(mapping.pgId);
    mapped[pgId.seed] = Object.freeze(mapping);
    return mapping;
  }

  #compute(pool: Pool, pgId: PgId): PgMapping {
    const count = this.crush.mapRaw(pool.rule, pgPlacementSeed(pgId), pool.size, this.#reweights, null);
    const raw = this.crush.rawResult;
    const isUp = this.#up;
    const erasure = pool.type === 'erasure';
    const up: number[] = [];
    let primary = -1;
    for (let i = 0; i < count; i++) {
      const osd = raw[i]!;
      if (osd !== CRUSH_ITEM_NONE && osd < isUp.length && isUp[osd] === 1) {
        if (primary === -1) primary = osd;
        up.push(osd);
      } else if (erasure) {
        up.push(CRUSH_ITEM_NONE);
      }
    }
    return { pgId: { pool: pgId.pool, seed: pgId.seed }, up, primary };
  }

  /** The PG of object `name` in pool `poolId`, and that PG's up set. */
  mapObject(poolId: number, name: string): PgMapping {
    return this.mapPg(this.objectToPg(poolId, name));
  }
}

const placementByMap = new WeakMap<ClusterMap, Placement>();

/** The Placement of `map`, built on first use and cached for the map object (do not mutate it afterwards). */
export function placementFor(map: ClusterMap): Placement {
  let placement = placementByMap.get(map);
  if (!placement) {
    placement = new Placement(map);
    placementByMap.set(map, placement);
  }
  return placement;
}

/** PG → up set on `map` (see {@link Placement.mapPg}). */
export function mapPg(map: ClusterMap, pgId: PgId): PgMapping {
  return placementFor(map).mapPg(pgId);
}

/** object → PG → up set on `map` (see {@link Placement.mapObject}). */
export function mapObject(map: ClusterMap, poolId: number, name: string): PgMapping {
  return placementFor(map).mapObject(poolId, name);
}
