import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  StorageError,
  applyIncremental,
  decodeClusterMap,
  diffClusterMap,
  emptyClusterMap,
  encodeClusterMap,
  weightOne,
  wire,
  type ClusterMap,
  type MonitorCommand,
} from '../../../src/index.js';
import { applyCommand } from '../../../monitor/map/commands.js';
import { seededRandom } from '../../helpers/seed.js';

function run(map: ClusterMap, command: MonitorCommand): ClusterMap {
  return applyCommand(map, { timestampMs: 1000 + map.epoch, ...command }).map;
}

function initialised(): ClusterMap {
  return run(emptyClusterMap('0123456789abcdef'), { init: { fsid: '0123456789abcdef', monitors: [{ name: 'a', address: '127.0.0.1:7400' }] } });
}

function withOsds(count: number, hosts = count): ClusterMap {
  let map = initialised();
  for (let i = 0; i < count; i++) map = run(map, { osdCreate: { host: `h${i % hosts}` } });
  return map;
}

function rejects(map: ClusterMap, command: MonitorCommand, code: StorageError['code'], pattern?: RegExp): void {
  const before = JSON.stringify(map);
  assert.throws(
    () => applyCommand(map, { timestampMs: 5, ...command }),
    (e: unknown) => e instanceof StorageError && e.code === code && (!pattern || pattern.test(e.message)),
  );
  assert.equal(JSON.stringify(map), before, 'a rejected command leaves the map unchanged');
}

test('init creates the default root and rules at epoch 1; commands before init are refused', () => {
  const map = initialised();
  assert.equal(map.epoch, 1);
  assert.equal(map.crush.buckets[0]?.name, 'default');
  assert.deepEqual(map.crush.rules.map((r) => r.name), ['replicated_rule', 'erasure_rule', 'erasure_osd_rule']);
  rejects(emptyClusterMap('x'), { poolCreate: { name: 'p' } }, 'UNAVAILABLE');
  const again = applyCommand(map, { init: { fsid: 'other' } });
  assert.equal(again.map, map, 'a second init changes nothing');
});

test('osd create places OSDs under host buckets with summed weights', () => {
  const map = withOsds(4, 2);
  assert.deepEqual(map.osds.map((o) => o.id), [0, 1, 2, 3]);
  const h0 = map.crush.buckets.find((b) => b.name === 'h0');
  assert.deepEqual(h0?.items.map((i) => i.id), [0, 2]);
  const root = map.crush.buckets.find((b) => b.name === 'default');
  assert.deepEqual(root?.items.map((i) => i.weight), [2 * weightOne, 2 * weightOne]);
  rejects(map, { osdCreate: { hasId: true, id: 2, host: 'h0' } }, 'ALREADY_EXISTS');
  const result = applyCommand(map, { osdCreate: { host: 'h9' } });
  assert.equal(result.id, 4);
});

test('pools: create with defaults, set, remove; bad input is refused and changes nothing', () => {
  let map = withOsds(6);
  map = run(map, { poolCreate: { name: 'rbd' } });
  const rbd = map.pools.find((p) => p.name === 'rbd');
  assert.deepEqual([rbd?.size, rbd?.minSize, rbd?.pgNum, rbd?.type], [3, 2, 32, 'replicated']);
  map = run(map, { poolCreate: { name: 'ec', type: wire.PoolType.POOL_TYPE_ERASURE, ecK: 4, ecM: 2 } });
  const ec = map.pools.find((p) => p.name === 'ec');
  assert.deepEqual([ec?.size, ec?.minSize, ec?.rule, ec?.stripeUnit], [6, 5, 1, 65536]);
  map = run(map, { poolSet: { name: 'rbd', key: 'pg_num', value: '64' } });
  assert.equal(map.pools.find((p) => p.name === 'rbd')?.pgNum, 64);

  rejects(map, { poolCreate: { name: 'rbd' } }, 'ALREADY_EXISTS');
  rejects(map, { poolCreate: { name: 'bad name!' } }, 'INVALID_ARGUMENT');
  rejects(map, { poolCreate: { name: 'e2', type: wire.PoolType.POOL_TYPE_ERASURE, ecK: 0, ecM: 2 } }, 'INVALID_ARGUMENT', /k and m/);
  rejects(map, { poolCreate: { name: 'e3', type: wire.PoolType.POOL_TYPE_ERASURE, ecK: 8, ecM: 3 } }, 'INVALID_ARGUMENT', /failure domains/);
  rejects(map, { poolCreate: { name: 'e4', type: wire.PoolType.POOL_TYPE_ERASURE, ecK: 30, ecM: 5 } }, 'INVALID_ARGUMENT');
  rejects(map, { poolCreate: { name: 'r', size: 11 } }, 'INVALID_ARGUMENT');
  rejects(map, { poolCreate: { name: 'r', rule: 'erasure_rule' } }, 'INVALID_ARGUMENT', /erasure pools/);
  rejects(map, { poolCreate: { name: 'r', rule: 'nope' } }, 'NOT_FOUND');
  rejects(map, { poolSet: { name: 'nope', key: 'size', value: '2' } }, 'NOT_FOUND');
  rejects(map, { poolSet: { name: 'rbd', key: 'pg_num', value: '8' } }, 'INVALID_ARGUMENT', /only grow/);
  rejects(map, { poolSet: { name: 'rbd', key: 'size', value: '-1' } }, 'INVALID_ARGUMENT');
  rejects(map, { poolSet: { name: 'rbd', key: 'colour', value: '1' } }, 'INVALID_ARGUMENT');
  rejects(map, { poolRm: { name: 'nope' } }, 'NOT_FOUND');
  map = run(map, { poolRm: { name: 'rbd' } });
  assert.deepEqual(map.pools.map((p) => p.name), ['ec']);
});

test('osd boot, down, out, in, reweight, rm', () => {
  let map = withOsds(3);
  map = run(map, { osdBoot: { id: 1, address: '127.0.0.1:7601', host: 'h1' } });
  let osd1 = map.osds[1];
  assert.equal(osd1?.up, true);
  assert.equal(osd1?.upFromEpoch, map.epoch);
  map = run(map, { osdDown: { ids: [1] } });
  assert.equal(map.osds[1]?.up, false);
  assert.ok((map.osds[1]?.downAtMs ?? 0) > 0);
  map = run(map, { osdOut: { ids: [1], reason: 'auto' } });
  assert.deepEqual([map.osds[1]?.in, map.osds[1]?.autoOut], [false, true]);
  map = run(map, { osdBoot: { id: 1, address: '127.0.0.1:7601', host: 'h1' } });
  osd1 = map.osds[1];
  assert.deepEqual([osd1?.up, osd1?.in, osd1?.autoOut], [true, true, false], 'boot marks an auto-out OSD in again');
  map = run(map, { osdOut: { ids: [2] } });
  map = run(map, { osdBoot: { id: 2, address: '127.0.0.1:7602', host: 'h2' } });
  assert.equal(map.osds[2]?.in, false, 'an OSD an operator marked out stays out after boot');
  map = run(map, { osdReweight: { id: 0, reweight: weightOne / 2 } });
  assert.equal(map.osds[0]?.reweight, weightOne / 2);
  rejects(map, { osdReweight: { id: 0, reweight: weightOne + 1 } }, 'INVALID_ARGUMENT');
  rejects(map, { osdReweight: { id: 9, reweight: 1 } }, 'NOT_FOUND');
  rejects(map, { osdOut: { ids: [] } }, 'INVALID_ARGUMENT');
  rejects(map, { osdRm: { id: 1 } }, 'INVALID_ARGUMENT', /is up/);
  map = run(map, { osdRm: { id: 0 } });
  assert.deepEqual(map.osds.map((o) => o.id), [1, 2]);
  assert.ok(!map.crush.buckets.some((b) => b.items.some((i) => i.id === 0)));
});

test('crush add-bucket, move and set-weight keep parent weights equal to the sum of children', () => {
  let map = withOsds(4);
  map = run(map, { crushAddBucket: { name: 'rack1', type: wire.CrushType.CRUSH_TYPE_RACK } });
  map = run(map, { crushMove: { name: 'h0', parent: 'rack1' } });
  map = run(map, { crushMove: { name: 'h1', parent: 'rack1' } });
  map = run(map, { crushSetWeight: { name: 'osd.0', weight: 3 * weightOne } });
  const root = map.crush.buckets.find((b) => b.name === 'default');
  const rack = map.crush.buckets.find((b) => b.name === 'rack1');
  assert.equal(rack?.items.reduce((s, i) => s + i.weight, 0), 4 * weightOne);
  assert.equal(root?.items.find((i) => i.id === rack?.id)?.weight, 4 * weightOne);
  rejects(map, { crushMove: { name: 'rack1', parent: 'h0' } }, 'INVALID_ARGUMENT');
  rejects(map, { crushMove: { name: 'default', parent: 'rack1' } }, 'INVALID_ARGUMENT');
  rejects(map, { crushAddBucket: { name: 'rack1', type: wire.CrushType.CRUSH_TYPE_RACK } }, 'ALREADY_EXISTS');
  rejects(map, { crushSetWeight: { name: 'rack1', weight: 1 } }, 'INVALID_ARGUMENT');
  rejects(map, { crushSetWeight: { name: 'osd.77', weight: 1 } }, 'NOT_FOUND');
});

test('flags: known ones toggle, unknown ones are refused; a no-op keeps the epoch', () => {
  let map = withOsds(1);
  map = run(map, { flagSet: { flag: 'noout', on: true } });
  assert.deepEqual(map.flags, ['noout']);
  const same = applyCommand(map, { flagSet: { flag: 'noout', on: true } });
  assert.equal(same.map.epoch, map.epoch);
  rejects(map, { flagSet: { flag: 'nonsense', on: true } }, 'INVALID_ARGUMENT');
  rejects(map, {}, 'INVALID_ARGUMENT');
});

test('incrementals: applying diff(prev, next) to prev gives next, over random command sequences', (t) => {
  const random = seededRandom(t);
  const seed = random.seed;
  let map = withOsds(4);
  for (let step = 0; step < 300; step++) {
    const id = random.int(0, 5);
    const commands: MonitorCommand[] = [
      { osdCreate: { host: `h${random.int(0, 3)}` } },
      { osdBoot: { id, address: `127.0.0.1:${7600 + id}`, host: `h${random.int(0, 3)}` } },
      { osdDown: { ids: [id] } },
      { osdOut: { ids: [id] } },
      { osdIn: { ids: [id] } },
      { osdReweight: { id, reweight: random.int(0, weightOne) } },
      { poolCreate: { name: `p${random.int(0, 9)}`, pgNum: random.int(1, 64) } },
      { poolRm: { name: `p${random.int(0, 9)}` } },
      { flagSet: { flag: 'noout', on: random.chance(0.5) } },
      { crushSetWeight: { name: `osd.${id}`, weight: random.int(0, 4 * weightOne) } },
    ];
    let next: ClusterMap;
    try {
      next = applyCommand(map, { timestampMs: step, ...random.pick(commands) }).map;
    } catch (error) {
      assert.ok(error instanceof StorageError, `seed ${seed}: only StorageErrors (${String(error)})`);
      continue;
    }
    if (next.epoch === map.epoch) continue;
    const rebuilt = applyIncremental(map, diffClusterMap(map, next));
    assert.deepEqual(rebuilt, next, `seed ${seed} step ${step}: incremental round trip`);
    assert.deepEqual(decodeClusterMap(encodeClusterMap(next)), next, `seed ${seed} step ${step}: encoding round trip`);
    map = next;
  }
  assert.throws(() => applyIncremental(map, { epoch: map.epoch + 2 }), (e: unknown) => e instanceof StorageError && e.code === 'STALE_EPOCH');
});
