import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StorageError } from '../../../src/common/index.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultyStore, LevelStore, MemStore, Transaction } from '../../../osd/store/index.js';
import { seededRandom } from '../../helpers/seed.js';

const oid = (name: string) => ({ pg: '1.0', name });
const isCode = (code: string) => (error: unknown) => error instanceof StorageError && error.code === code;

test('FaultyStore: planned apply faults strike before (nothing applied) or after (applied, ack lost)', async () => {
  const inner = new MemStore();
  const store = new FaultyStore(inner, { seed: 1, plan: { failApplyCalls: [2, 3], applyErrorTiming: 'before' } });
  await store.start();
  await store.apply(new Transaction().touch(oid('a')));
  await assert.rejects(store.apply(new Transaction().touch(oid('b'))), isCode('INTERNAL'));
  store.setPlan({ failApplyCalls: [3], applyErrorTiming: 'after', errorCode: 'UNAVAILABLE' });
  await assert.rejects(store.apply(new Transaction().touch(oid('c'))), isCode('UNAVAILABLE'));
  await store.apply(new Transaction().touch(oid('d')));
  assert.deepEqual((await inner.listObjects('1.0', { limit: 10 })).names, ['a', 'c', 'd']);
  assert.equal(store.stats.injectedErrors, 2);
  await store.stop();
});

test('FaultyStore: random faults follow the seed, so a run replays exactly', async (t) => {
  const seed = seededRandom(t).seed;
  async function run(): Promise<string> {
    const store = new FaultyStore(new MemStore(), { seed, plan: { applyErrorProbability: 0.3, readErrorProbability: 0.3, applyErrorTiming: 'random' } });
    await store.start();
    let trace = '';
    for (let i = 0; i < 40; i++) {
      trace += await store.apply(new Transaction().write(oid(`o${i % 5}`), i, Buffer.from([i]))).then(
        () => 'a',
        () => 'A',
      );
      trace += await store.read(oid(`o${i % 5}`)).then(
        () => 'r',
        (e: unknown) => (isCode('NOT_FOUND')(e) ? 'n' : 'R'),
      );
    }
    await store.stop();
    return trace;
  }
  const first = await run();
  assert.equal(await run(), first, `seed ${seed}`);
  assert.match(first, /A/, `seed ${seed}: some applies failed`);
  assert.match(first, /R/, `seed ${seed}: some reads failed`);
});

test('FaultyStore: a crash fails calls in flight and later ones; restart brings the store back with what it applied', async () => {
  const store = new FaultyStore(new MemStore(), { seed: 2 });
  await store.start();
  await store.apply(new Transaction().write(oid('kept'), 0, Buffer.from('durable')));
  const inFlight = store.apply(new Transaction().touch(oid('maybe')));
  store.crash();
  await assert.rejects(inFlight, isCode('SHUTTING_DOWN'));
  await assert.rejects(store.read(oid('kept')), isCode('SHUTTING_DOWN'));
  await assert.rejects(store.apply(new Transaction().touch(oid('never'))), isCode('SHUTTING_DOWN'));
  await store.restart();
  assert.equal((await store.read(oid('kept'))).toString(), 'durable');
  assert.equal(await store.exists(oid('never')), false);
  await store.stop();
});

test('FaultyStore: damage is delegated to the wrapped store', async () => {
  const store = new FaultyStore(new MemStore(), { seed: 3, plan: { failReadCalls: [2] } });
  await store.start();
  await store.apply(new Transaction().write(oid('x'), 0, Buffer.alloc(10_000, 5)));
  assert.equal((await store.read(oid('x'))).length, 10_000);
  await assert.rejects(store.read(oid('x')), isCode('INTERNAL'));
  await store.corrupt(oid('x'), { kind: 'flip', offset: 9000 });
  await assert.rejects(store.read(oid('x')), isCode('CHECKSUM_MISMATCH'));
  assert.equal((await store.read(oid('x'), 0, 4096)).length, 4096);
  await store.stop();
});

test('FaultyStore over LevelStore: a crash drops the process state, restart replays, and acknowledged data is there', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-faulty-'));
  const store = new FaultyStore(new LevelStore({ dir }), { seed: 4 });
  await store.start();
  try {
    const data = Buffer.alloc(300_000, 9);
    await store.apply(new Transaction().write(oid('big'), 0, data));
    await store.apply(new Transaction().write(oid('big'), 8192, Buffer.alloc(4096, 1)));
    store.crash();
    await store.restart();
    data.fill(1, 8192, 8192 + 4096);
    assert.deepEqual(await store.read(oid('big')), data);
    await store.corrupt(oid('big'), { kind: 'flip', offset: 150_000 });
    await assert.rejects(store.read(oid('big')), isCode('CHECKSUM_MISMATCH'));
  } finally {
    await store.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
