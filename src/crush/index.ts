/**
 * @packageDocumentation
 * Placement: where each object lives. CRUSH (Weil, Brandt, Miller, Maltzahn: "CRUSH: Controlled, Scalable,
 * Decentralized Placement of Replicated Data", SC 2006) with straw2 buckets, re-derived from the paper and the
 * documented behaviour of Ceph, in integer arithmetic so every client, OSD and monitor computes the same answer.
 *
 * Pure and synchronous; imports only `src/common` and `src/protocol`. README.md specifies the hashes, straw2, the
 * rule semantics and the promises, which the tests check as properties and the golden vectors freeze.
 *
 * For callers:
 * 1. Build one {@link Placement} per cluster map epoch (`placementFor(map)` caches it per map object); never mutate
 *    a map after it was used for placement — edit with the builder functions, which return new maps.
 * 2. object → PG: `placement.objectToPg(poolId, name)`; PG → OSDs: `placement.mapPg(pgId)` gives the up set and
 *    primary. Erasure pools keep shard positions: a missing shard is {@link CRUSH_ITEM_NONE}.
 * 3. A changed output for an unchanged map is a data-migration event for every cluster: see README.md.
 *
 * @example
 * const map = buildClusterMap({ hosts: 3, osdsPerHost: 10 });
 * map.pools.push({ id: 1, name: 'rbd', type: 'replicated', size: 3, minSize: 2, ecK: 0, ecM: 0, pgNum: 128,
 *   rule: 0, stripeUnit: 0, application: 'rbd' });
 * const { pgId, up, primary } = placementFor(map).mapObject(1, 'rbd_data.1234');
 * pgIdToString(pgId); // e.g. '1.3f'
 */
export { hash2, hash3, hashBytes, hashName } from './hash.js';
export { negLog, negLogFracBits } from './ln.js';
export { floorDiv, straw2Choose, straw2Draw } from './straw2.js';
export { CRUSH_ITEM_NONE, CompiledCrush, compileCrush, doRule, reweightIn, type IsOut } from './mapper.js';
export {
  Placement,
  actingFromUp,
  mapObject,
  mapPg,
  objectToPg,
  parsePgId,
  pgIdToString,
  pgNumMask,
  pgNumMax,
  pgPlacementSeed,
  placementFor,
  stableMod,
  type PgId,
  type PgMapping,
} from './placement.js';
export {
  addOsd,
  buildClusterMap,
  crushAddOsd,
  crushRemoveOsd,
  crushSetWeight,
  crushWeightOf,
  defaultFsid,
  defaultRootName,
  defaultRules,
  erasureOsdRuleId,
  erasureRuleId,
  parentBucket,
  removeOsd,
  replicatedRackRuleId,
  replicatedRuleId,
  setCrushWeight,
  withBucketWeights,
  type AddOsdOptions,
  type BuildOptions,
} from './builder.js';
export {
  formatMappingLine,
  formatTree,
  formatUtilization,
  ruleTestInputsMax,
  testRule,
  type RuleTestOptions,
  type RuleTestResult,
} from './crushtool.js';
export { chooseTotalTriesMax, crushTypeRank, numRepMax, osdIdLimit, validateCrushMap } from './validate.js';
