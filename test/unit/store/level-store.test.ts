/**
 * LevelStore behaviour beyond the shared conformance suite: group commit, on-disk damage, replay of deferred writes,
 * the start-up sweep, garbage collection, bounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Random, StorageError, bufferPool, pooledBytesMin } from '../../../src/common/index.js';
import { LevelStore, MemStore, Transaction, type LevelStoreOptions, type ObjectStore } from '../../../osd/store/index.js';

async function withLevelStore(options: Omit<LevelStoreOptions, 'dir'>, body: (store: LevelStore, dir: string) => Promise<LevelStore | void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-level-'));
  let store = new LevelStore({ ...options, dir });
  await store.start();
  try {
    store = (await body(store, dir)) ?? store;
  } finally {
    await store.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function reopen(store: LevelStore, dir: string, options: Omit<LevelStoreOptions, 'dir'> = {}): Promise<LevelStore> {
  await store.stop();
  const next = new LevelStore({ ...options, dir });
  await next.start();
  return next;
}

async function dataFiles(dir: string): Promise<string[]> {
  const root = join(dir, 'data');
  const out: string[] = [];
  for (const sub of await readdir(root)) for (const name of await readdir(join(root, sub))) out.push(join(sub, name));
  return out.sort();
}

function code(expected: string) {
  return (error: unknown) => error instanceof StorageError && error.code === expected;
}

const oid = (name: string, pg = '1.0') => ({ pg, name });

test('group commit: concurrent transactions share LevelDB syncs (small objects and 4 KiB overwrites of large ones)', () =>
  withLevelStore({}, async (store) => {
    const count = 48;
    const block = Buffer.alloc(4096, 7);
    let before = store.stats;
    await Promise.all(Array.from({ length: count }, (_, i) => store.apply(new Transaction().write(oid(`small${i}`), 0, block))));
    let after = store.stats;
    assert.equal(after.transactions - before.transactions, count);
    assert.ok(after.kvSyncs - before.kvSyncs < count, `${after.kvSyncs - before.kvSyncs} syncs for ${count} transactions`);
    assert.equal(after.fileSyncs, before.fileSyncs, 'inline objects need no file sync');

    await store.apply(new Transaction().write(oid('big'), 0, new Random(1).bytes(1024 * 1024)));
    before = store.stats;
    await Promise.all(Array.from({ length: count }, (_, i) => store.apply(new Transaction().write(oid('big'), i * 8192, block))));
    after = store.stats;
    assert.ok(after.kvSyncs - before.kvSyncs < count, `${after.kvSyncs - before.kvSyncs} syncs for ${count} overwrites`);
    assert.ok(after.fileSyncs - before.fileSyncs < count, `${after.fileSyncs - before.fileSyncs} file syncs for ${count} overwrites`);
    assert.equal(after.deferredWrites - before.deferredWrites <= count, true);
    const data = await store.read(oid('big'), 0, count * 8192);
    for (let i = 0; i < count; i++) assert.ok(data.subarray(i * 8192, i * 8192 + 4096).equals(block));
  }));

test('a flipped byte or a torn write in a data file is caught on read; untouched blocks still read', () =>
  withLevelStore({}, async (store) => {
    const data = new Random(2).bytes(300_000);
    await store.apply(new Transaction().write(oid('victim'), 0, data));
    const where = await store.locate(oid('victim'));
    assert.equal(where.kind, 'file');
    const path = (where as { path: string }).path;
    const handle = await open(path, 'r+');
    try {
      const one = Buffer.alloc(1);
      await handle.read(one, 0, 1, 123_456);
      one[0] = (one[0] as number) ^ 0x01;
      await handle.write(one, 0, 1, 123_456);
      // A torn write: part of a block replaced by zeros, as if the disk wrote only its first sectors.
      await handle.write(Buffer.alloc(3000), 0, 3000, 200_000 + 1000);
    } finally {
      await handle.close();
    }
    await assert.rejects(store.read(oid('victim')), code('CHECKSUM_MISMATCH'));
    await assert.rejects(store.read(oid('victim'), 123_456, 1), code('CHECKSUM_MISMATCH'));
    await assert.rejects(store.read(oid('victim'), 201_000, 10), code('CHECKSUM_MISMATCH'));
    assert.deepEqual(await store.read(oid('victim'), 0, 100_000), data.subarray(0, 100_000));
    // A partial overwrite of a damaged block must not launder it into a valid checksum.
    await assert.rejects(store.apply(new Transaction().write(oid('victim'), 123_450, Buffer.from('x'))), code('CHECKSUM_MISMATCH'));
    // The failed transaction took nothing else down with it.
    await Promise.all([
      assert.rejects(store.apply(new Transaction().write(oid('victim'), 123_450, Buffer.from('x'))), code('CHECKSUM_MISMATCH')),
      store.apply(new Transaction().write(oid('bystander'), 0, Buffer.from('fine'))),
    ]);
    assert.equal((await store.read(oid('bystander'))).toString(), 'fine');
  }));

test('deferred writes committed but never copied into the file are replayed on start', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-replay-'));
  try {
    const data = new Random(3).bytes(1024 * 1024);
    const first = new LevelStore({ dir });
    await first.start();
    await first.apply(new Transaction().write(oid('o'), 0, data));
    await first.stop();

    const crashing = new LevelStore({ dir, debugSkipDeferredApply: true });
    await crashing.start();
    const patch = Buffer.alloc(4096, 0xab);
    await crashing.apply(new Transaction().write(oid('o'), 65536, patch).zero(oid('o'), 200_000, 10_000));
    assert.equal(crashing.stats.deferredWrites, 1);
    await crashing.crashForTest();

    const store = new LevelStore({ dir });
    await store.start();
    const expected = Buffer.from(data);
    patch.copy(expected, 65536);
    expected.fill(0, 200_000, 210_000);
    assert.deepEqual(await store.read(oid('o')), expected);
    await store.stop();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** `bytes` in a buffer of `bufferPool`, which starts aligned for O_DIRECT (so writes skip the staging copy). */
function pooled(bytes: Uint8Array): Buffer {
  const buffer = bufferPool.acquire(bytes.length);
  buffer.set(bytes);
  assert.ok(bufferPool.startsAligned(buffer, 4096), 'pooled buffers start aligned');
  return buffer;
}

for (const directWrites of [true, false]) {
  test(`new data files written ${directWrites ? 'with O_DIRECT (padded to 4 KiB on disk)' : 'through the page cache'} read back exactly, also after a restart`, () =>
    withLevelStore({ directWrites }, async (store, dir) => {
      const random = new Random(directWrites ? 11 : 12);
      // Odd sizes around the 4 KiB alignment and the 1 MiB write pieces; several at once share the staging buffers.
      const sizes = [16_385, 20_000, 65_536, 1_048_575, 1_048_577, 3 * 1_048_576 + 5, 4 * 1_048_576];
      // Some in pooled buffers, as received payloads are: their whole blocks go to the disk in place, the rest staged.
      const data = new Map(sizes.map((n, i) => [`obj-${n}`, n >= pooledBytesMin && i % 2 === 0 ? pooled(random.bytes(n)) : Buffer.from(random.bytes(n))]));
      await Promise.all([...data].map(([name, bytes]) => store.apply(new Transaction().writeFull(oid(name), bytes))));
      const onDisk = await Promise.all((await dataFiles(dir)).map(async (f) => (await stat(join(dir, 'data', f))).size));
      const expected = sizes.map((n) => (directWrites ? Math.ceil(n / 4096) * 4096 : n));
      assert.deepEqual(onDisk.sort((a, b) => a - b), expected.sort((a, b) => a - b), 'data file sizes on disk');
      const next = await reopen(store, dir, { directWrites });
      for (const [name, bytes] of data) assert.ok((await next.read(oid(name))).equals(bytes), `${name} reads back`);
      // A partial overwrite and an append on a file written directly go through the page cache and read back too.
      const name = `obj-${1_048_577}`;
      const patch = Buffer.from(random.bytes(10_000));
      await next.apply(new Transaction().write(oid(name), 5_000, patch).write(oid(name), 1_048_577, patch));
      const want = Buffer.concat([data.get(name) as Buffer, patch]);
      patch.copy(want, 5_000);
      assert.ok((await next.read(oid(name))).equals(want), 'overwrite and append read back');
      // A large aligned overwrite (its deferred piece copied with O_DIRECT), an append from an unaligned end, and a
      // shrink then a regrow past a gap (which must read as zeros, not as the bytes cut off).
      const big = pooled(random.bytes(256 * 1024));
      const tail = Buffer.from(random.bytes(70_000));
      await next.apply(new Transaction().write(oid(name), 4096 * 16, big));
      big.copy(want, 4096 * 16);
      await next.apply(new Transaction().write(oid(name), want.length, tail));
      const grown = Buffer.concat([want, tail]);
      assert.ok((await next.read(oid(name))).equals(grown), 'large overwrite and unaligned append read back');
      await next.apply(new Transaction().truncate(oid(name), 100_001));
      await next.apply(new Transaction().write(oid(name), 300_000, tail));
      const regrown = Buffer.concat([grown.subarray(0, 100_001), Buffer.alloc(300_000 - 100_001), tail]);
      assert.ok((await next.read(oid(name))).equals(regrown), 'shrink then regrow past a gap reads zeros in the gap');
      const again = await reopen(next, dir, { directWrites });
      assert.ok((await again.read(oid(name))).equals(regrown), 'the same after a restart');
      return again;
    }));
}

test('large reads return exact bytes at any offset, and zeros past the end of a data file shorter than its object', () =>
  withLevelStore({}, async (store) => {
    const random = new Random(21);
    const data = Buffer.from(random.bytes(3 * 1_048_576 + 1234));
    await store.apply(new Transaction().writeFull(oid('r'), data));
    // A tail with no bytes in the file: the object grows by a truncate past 1 MiB, which leaves the file as it is.
    await store.apply(new Transaction().truncate(oid('r'), data.length + 1_500_000));
    const want = Buffer.concat([data, Buffer.alloc(1_500_000)]);
    const ranges: [number, number][] = [[0, want.length], [5000, 300_000], [4096, 262_144], [1_048_000, 1_050_000], [data.length - 10_000, 400_000], [data.length + 1000, 1_200_000]];
    for (const [offset, length] of ranges) {
      assert.ok((await store.read(oid('r'), offset, length)).equals(want.subarray(offset, offset + length)), `read ${offset}+${length}`);
    }
    const all = await Promise.all(ranges.map(([offset, length]) => store.read(oid('r'), offset, length)));
    ranges.forEach(([offset, length], i) => assert.ok(all[i]?.equals(want.subarray(offset, offset + length)), `concurrent read ${i}`));
  }));

test('start removes data files that no committed transaction owns', () =>
  withLevelStore({}, async (store, dir) => {
    await store.apply(new Transaction().write(oid('keep'), 0, Buffer.alloc(200_000, 1)));
    const kept = await dataFiles(dir);
    assert.equal(kept.length, 1);
    await store.stop();
    await mkdir(join(dir, 'data', 'ff'), { recursive: true });
    await writeFile(join(dir, 'data', 'ff', 'ffffffff00000fff'), 'stray');
    const next = new LevelStore({ dir });
    await next.start();
    assert.deepEqual(await dataFiles(dir), kept);
    assert.equal((await next.read(oid('keep'))).length, 200_000);
    return next;
  }));

test('full writes are written ahead of their group: renamed into place, unused ones removed, leftovers gone at start', () =>
  withLevelStore({}, async (store, dir) => {
    const staging = join(dir, 'data', 'staging');
    const staged = async () => (await readdir(staging).catch(() => [] as string[])).sort();
    const a = new Random(11).bytes(1024 * 1024 + 5);
    await store.apply(new Transaction().writeFull(oid('full'), a));
    assert.deepEqual(await readdir(staging), [], 'the staged file was renamed into place');
    assert.equal((await dataFiles(dir)).length, 1);
    assert.ok((await store.read(oid('full'))).equals(a));

    // Two transactions in one group (the first keeps the pump busy): the second changes the object again, so the
    // group writes a file of its own and the staged one is dropped.
    const b = new Random(12).bytes(300_000);
    const first = store.apply(new Transaction().write(oid('other'), 0, Buffer.from('x')));
    const full = store.apply(new Transaction().writeFull(oid('full'), b));
    const patch = store.apply(new Transaction().write(oid('full'), 100, Buffer.from('patched')));
    await Promise.all([first, full, patch]);
    await store.settle();
    const expected = Buffer.from(b);
    Buffer.from('patched').copy(expected, 100);
    assert.ok((await store.read(oid('full'))).equals(expected));
    assert.deepEqual(await staged(), [], 'the unused staged file was removed');

    // A crash can leave staged files that no commit owns: the next start removes them, and the data stays.
    await store.stop();
    await writeFile(join(staging, '7'), 'left by a crash');
    const next = new LevelStore({ dir });
    await next.start();
    assert.deepEqual(await staged(), []);
    assert.ok((await next.read(oid('full'))).equals(expected));
    assert.ok((await next.read(oid('other'))).equals(Buffer.from('x')));
    return next;
  }));

test('a transaction waiting for its data to be written ahead holds back its own PG only', () =>
  withLevelStore({}, async (store) => {
    const order: string[] = [];
    const track = (name: string, p: Promise<void>) => p.then(() => order.push(name));
    const big = new Random(21).bytes(32 * 1024 * 1024);
    const done = Promise.all([
      track('big', store.apply(new Transaction().writeFull(oid('big', '1.0'), big))),
      track('same object', store.apply(new Transaction().write(oid('big', '1.0'), 0, Buffer.from('first')))),
      track('same pg', store.apply(new Transaction().write(oid('small', '1.0'), 0, Buffer.from('s')))),
      track('other pg', store.apply(new Transaction().write(oid('small', '2.0'), 0, Buffer.from('o')))),
    ]);
    await done;
    // The other PG's write did not wait for 32 MiB to reach the disk; the first PG's came after its big write.
    assert.equal(order[0], 'other pg', order.join(', '));
    assert.ok(order.indexOf('same object') > order.indexOf('big') && order.indexOf('same pg') > order.indexOf('big'), order.join(', '));
    const expected = Buffer.from(big);
    Buffer.from('first').copy(expected, 0);
    assert.ok((await store.read(oid('big', '1.0'))).equals(expected));
  }));

test('garbage: replaced, removed and renamed-over data files go, removed collections are emptied, in the background', () =>
  withLevelStore({}, async (store, dir) => {
    const big = (seed: number) => new Random(seed).bytes(150_000);
    const tx = new Transaction().write(oid('a'), 0, big(1)).write(oid('b'), 0, big(2)).write(oid('c'), 0, big(3)).omapSet(oid('c'), { k: Buffer.from('v') });
    for (let i = 0; i < 30; i++) tx.write(oid(`p${i}`, '9.9'), 0, big(10 + i)).omapSet(oid(`p${i}`, '9.9'), { k: Buffer.from('v') });
    // Enough small objects that collecting the removed collection takes several pages.
    for (let i = 0; i < 600; i++) tx.write(oid(`tiny${i}`, '9.9'), 0, Buffer.from([i & 0xff])).setXattr(oid(`tiny${i}`, '9.9'), 'v', Buffer.from('1'));
    tx.pgMetaSet('9.9', { info: Buffer.from('x') });
    await store.apply(tx);
    assert.equal((await dataFiles(dir)).length, 33);
    await store.apply(new Transaction().writeFull(oid('a'), big(4)).remove(oid('b')).rename(oid('c'), oid('a2')).removeCollection('9.9'));
    await store.settle();
    assert.equal((await dataFiles(dir)).length, 2);
    assert.ok(store.stats.gcRecords >= 2);
    // Nothing of the removed collection or the replaced data is left in LevelDB either.
    const counts = await store.recordCounts();
    assert.equal(counts['O'], 2, 'onodes');
    assert.equal(counts['I'], undefined, 'inline data');
    assert.equal(counts['M'], 1, 'omap entries');
    assert.equal(counts['P'], undefined, 'PG metadata');
    assert.equal(counts['G'], undefined, 'garbage records');
    assert.equal(counts['C'], 1, 'collections');
    assert.equal(counts['K'], 2, 'checksum chunks (one per file of < 1 MiB)');
    store = await reopen(store, dir);
    assert.deepEqual(await store.read(oid('a')), big(4));
    assert.deepEqual(await store.read(oid('a2')), big(3));
    assert.equal((await store.omapGet(oid('a2'), ['k'])).get('k')?.toString(), 'v');
    assert.deepEqual(await store.listCollections(), ['1.0']);
    assert.deepEqual((await store.statfs()).objects, 2);
    return store;
  }));

test('an object moves between inline and file storage as it grows and shrinks', () =>
  withLevelStore({}, async (store, dir) => {
    const data = new Random(5).bytes(100_000);
    await store.apply(new Transaction().write(oid('m'), 0, data.subarray(0, 1000)));
    assert.equal((await store.locate(oid('m'))).kind, 'inline');
    await store.apply(new Transaction().write(oid('m'), 1000, data.subarray(1000)));
    assert.equal((await store.locate(oid('m'))).kind, 'file');
    assert.deepEqual(await store.read(oid('m')), data);
    await store.apply(new Transaction().truncate(oid('m'), 500));
    assert.equal((await store.locate(oid('m'))).kind, 'inline');
    assert.deepEqual(await store.read(oid('m')), data.subarray(0, 500));
    await store.settle();
    assert.equal((await dataFiles(dir)).length, 0);
  }));

test('bounds: a full commit queue answers BUSY; stop finishes what was queued, then refuses work', () =>
  withLevelStore({ commitQueueMax: 4 }, async (store) => {
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.apply(new Transaction().touch(oid(`q${i}`)))));
    const busy = results.filter((r) => r.status === 'rejected' && code('BUSY')(r.reason)).length;
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    assert.ok(busy > 0, 'some transactions were refused');
    assert.equal(busy + ok, 20);
    const pending = store.apply(new Transaction().touch(oid('last')));
    await store.stop();
    await pending;
    await assert.rejects(store.apply(new Transaction().touch(oid('late'))), code('SHUTTING_DOWN'));
    await assert.rejects(store.read(oid('last')), code('SHUTTING_DOWN'));
    await store.start();
    assert.equal(await store.exists(oid('last')), true);
  }));

const capacityCases: [string, () => Promise<{ store: ObjectStore; cleanup: () => Promise<void> }>][] = [
  ['MemStore', async () => ({ store: new MemStore({ capacityBytes: 100_000 }), cleanup: async () => {} })],
  [
    'LevelStore',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'shoal-cap-'));
      return { store: new LevelStore({ dir, capacityBytes: 100_000 }), cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  ],
];

for (const [name, make] of capacityCases) {
  test(`capacity (${name}): growth past capacityBytes is NO_SPACE, shrinking a full store still works`, async () => {
    const { store, cleanup } = await make();
    await store.start();
    try {
      await store.apply(new Transaction().write(oid('x'), 0, Buffer.alloc(90_000, 1)));
      await assert.rejects(store.apply(new Transaction().write(oid('y'), 0, Buffer.alloc(20_000, 1))), code('NO_SPACE'));
      assert.equal(await store.exists(oid('y')), false);
      await store.apply(new Transaction().truncate(oid('x'), 50_000).write(oid('y'), 0, Buffer.alloc(20_000, 1)));
      await store.apply(new Transaction().remove(oid('x')));
      const stats = await store.statfs();
      assert.equal(stats.usedBytes, 20_000);
      assert.equal(stats.totalBytes, 100_000);
      assert.equal(stats.availableBytes, 80_000);
    } finally {
      await store.stop();
      await cleanup();
    }
  });
}
