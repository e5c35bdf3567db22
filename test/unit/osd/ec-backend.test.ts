/**
 * The erasure-coded side of a PG, deterministically: k+m members, each an EcBackend over its own MemStore, linked by
 * an in-process PeerLink that delivers `ec-read` to the member's own handler (the same code the OSD's messenger
 * handler calls). Writes are applied to chosen members only, to set up the states a primary dying mid-write leaves:
 * fewer than k members with the new version is undone by reconcile; k or more is kept; committed is never undone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Random, StorageError, createLogger, osdCodecs, seedFromEnv, wire, type Eversion, type Pool } from '../../../src/index.js';
import { MemStore, Transaction } from '../../../osd/store/index.js';
import type { PeerLink } from '../../../osd/peers.js';
import { EcBackend } from '../../../osd/pg/ec-backend.js';
import { buildWriteTransaction } from '../../../osd/pg/object-ops.js';

const k = 4;
const m = 2;
const pool: Pool = { id: 1, name: 'ec', type: 'erasure', size: k + m, minSize: k, ecK: k, ecM: m, pgNum: 1, rule: 1, stripeUnit: 4096, application: '' };
const acting = [10, 11, 12, 13, 14, 15];
const pg = '1.0';
const Kind = wire.ObjectOp.Kind;

async function cluster() {
  const stores = new Map(acting.map((osd) => [osd, new MemStore()]));
  for (const store of stores.values()) await store.start();
  const backends = new Map<number, EcBackend>();
  const peers: PeerLink = {
    async call(osd, op, header) {
      const backend = backends.get(osd);
      if (!backend || op !== 'ec-read') throw new StorageError('UNAVAILABLE', `osd.${osd} cannot take ${op}`);
      const { header: reply, payload } = await backend.serveRead(osdCodecs.ecReadRequest.decode(header));
      return { header: osdCodecs.ecReadReply.encode(reply), payload };
    },
  };
  for (const osd of acting) {
    backends.set(osd, new EcBackend({
      name: pg, poolId: 1, seed: 0, osdId: osd, store: stores.get(osd) as MemStore, peers,
      logger: createLogger({ name: `osd.${osd}`, level: 'error' }), pool: () => pool, acting: () => acting, intervalEpoch: () => 1,
    }));
  }
  const primary = backends.get(acting[0] as number) as EcBackend;
  /** Plans a write at the primary and applies each shard on the members listed (as rep-ops would). */
  async function write(name: string, ops: wire.ObjectOp.$Properties[], payload: Buffer, version: Eversion, to: number[] = acting): Promise<void> {
    const oid = { pg, name };
    const before = await primary.evaluate(oid, []).catch(() => ({ results: [], chunks: [], exists: false, version: { epoch: 0, seq: 0 }, size: 0 }));
    const plan = await primary.planWrite(oid, ops, payload, before);
    for (const osd of to) {
      const position = acting.indexOf(osd);
      const shard = plan.shard(position);
      const tx = new Transaction();
      const applied = buildWriteTransaction(tx, oid, shard.ops, shard.payload, version, before.exists);
      EcBackend.shardMeta(tx, oid, { existsAfter: applied.existsAfter, sizeAfter: plan.sizeAfter, index: position, version, priorVersion: before.version }, shard.rollback, shard.payload);
      await (stores.get(osd) as MemStore).apply(tx);
    }
  }
  const read = async (name: string) => {
    const outcome = await primary.evaluate({ pg, name }, [{ kind: Kind.KIND_READ }]);
    return Buffer.concat(outcome.chunks);
  };
  const undo = (committed: Eversion) => (name: string) =>
    primary.reconcile(name, committed, (osd, version) => (backends.get(osd) as EcBackend).applyRollback(name, version, committed));
  return { stores, write, read, undo };
}

const v = (seq: number): Eversion => ({ epoch: 3, seq });
const seed = seedFromEnv();
process.stdout.write(`unit/osd/ec-backend: seed=${seed} (rerun with SHOAL_SEED=${seed})\n`);

test('a partial overwrite fewer than k members got is undone by reconcile; the object reads as before it', async () => {
  const random = new Random(seed);
  const c = await cluster();
  const original = Buffer.from(random.bytes(100_000));
  await c.write('obj', [{ kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: original.length }], original, v(1));
  const patch = Buffer.from(random.bytes(30_000));
  // The primary "died" after three members (fewer than k = 4) applied the overwrite.
  await c.write('obj', [{ kind: Kind.KIND_WRITE, offset: 50_000, dataOffset: 0, dataLength: patch.length }], patch, v(2), acting.slice(2, 5));
  assert.equal(await c.undo({ epoch: 0, seq: 0 })('obj'), true);
  assert.deepEqual(await c.read('obj'), original, 'the undone change left the old bytes, decodable from any k');
  // The same partial state, but the change is committed (every member had it once): never undone.
  await c.write('obj', [{ kind: Kind.KIND_WRITE, offset: 50_000, dataOffset: 0, dataLength: patch.length }], patch, v(3), acting.slice(2, 5));
  assert.equal(await c.undo(v(3))('obj'), false);
});

test('an append k members got is kept and decodes; a new object fewer than k got is removed', async () => {
  const random = new Random(seed + 1);
  const c = await cluster();
  const first = Buffer.from(random.bytes(10_000));
  await c.write('grow', [{ kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: first.length }], first, v(1));
  const more = Buffer.from(random.bytes(20_000));
  await c.write('grow', [{ kind: Kind.KIND_WRITE, offset: first.length, dataOffset: 0, dataLength: more.length }], more, v(2), acting.slice(0, 4));
  assert.equal(await c.undo({ epoch: 0, seq: 0 })('grow'), true);
  assert.deepEqual(await c.read('grow'), Buffer.concat([first, more]), 'k members have it: it stays');
  const fresh = Buffer.from(random.bytes(5_000));
  await c.write('fresh', [{ kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: fresh.length }], fresh, v(3), acting.slice(0, 2));
  assert.equal(await c.undo({ epoch: 0, seq: 0 })('fresh'), true);
  for (const store of c.stores.values()) assert.equal(await store.exists({ pg, name: 'fresh' }), false);
});
