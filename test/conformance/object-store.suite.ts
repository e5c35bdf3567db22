/**
 * The ObjectStore conformance suite: every backend (MemStore, LevelStore, FaultyStore over either) must pass all of
 * it. A backend's test file calls `objectStoreSuite(name, harness)`.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Random, StorageError, type ErrorCode } from '../../src/common/index.js';
import { isCorruptible, Transaction, type ObjectId, type ObjectStore } from '../../osd/store/index.js';
import { seededRandom } from '../helpers/seed.js';

export interface StoreHarness {
  /** A new, empty, started store. */
  open(): Promise<ObjectStore>;
  /** Stops `store` and starts one over the same storage (checks persistence); returns the running store. */
  reopen(store: ObjectStore): Promise<ObjectStore>;
  /** Stops the store and removes what it left behind. */
  close(store: ObjectStore): Promise<void>;
}

const pg = '1.0';
const oid = (name: string, inPg = pg): ObjectId => ({ pg: inPg, name });

function bytes(length: number, seed: number): Buffer {
  return new Random(seed).bytes(length);
}

function isCode(code: ErrorCode) {
  return (error: unknown) => {
    assert.ok(error instanceof StorageError, `expected StorageError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

async function allNames(store: ObjectStore, inPg: string): Promise<string[]> {
  const names: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.listObjects(inPg, after === undefined ? { limit: 3 } : { after, limit: 3 });
    names.push(...page.names);
    if (!page.more) return names;
    after = page.names[page.names.length - 1];
  }
}

async function allOmap(store: ObjectStore, id: ObjectId): Promise<[string, string][]> {
  const out: [string, string][] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.omapList(id, after === undefined ? { limit: 2 } : { after, limit: 2 });
    out.push(...page.entries.map((e): [string, string] => [e.key, e.value.toString('hex')]));
    if (!page.more) return out;
    after = page.entries[page.entries.length - 1]?.key;
  }
}

export function objectStoreSuite(name: string, harness: StoreHarness): void {
  async function withStore(body: (store: ObjectStore) => Promise<ObjectStore | void>): Promise<void> {
    let store = await harness.open();
    try {
      store = (await body(store)) ?? store;
    } finally {
      await harness.close(store);
    }
  }

  describe(`ObjectStore conformance: ${name}`, () => {
    test('write and read, with offsets, short reads at the end, empty reads past it', () =>
      withStore(async (store) => {
        const data = bytes(10_000, 1);
        await store.apply(new Transaction().write(oid('a'), 0, data));
        assert.deepEqual(await store.read(oid('a')), data);
        assert.deepEqual(await store.read(oid('a'), 100, 50), data.subarray(100, 150));
        assert.deepEqual(await store.read(oid('a'), 9_990, 100), data.subarray(9_990));
        assert.equal((await store.read(oid('a'), 20_000, 10)).length, 0);
        assert.equal((await store.stat(oid('a'))).size, 10_000);
        assert.equal(await store.exists(oid('a')), true);
        assert.equal(await store.exists(oid('b')), false);
      }));

    test('a write past the end zero-fills the hole; overwrites in one transaction apply in order', () =>
      withStore(async (store) => {
        await store.apply(new Transaction().write(oid('h'), 5000, Buffer.from('tail')));
        const got = await store.read(oid('h'));
        assert.equal(got.length, 5004);
        assert.ok(got.subarray(0, 5000).equals(Buffer.alloc(5000)));
        assert.equal(got.subarray(5000).toString(), 'tail');
        await store.apply(
          new Transaction().write(oid('h'), 10, Buffer.from('aaaa')).write(oid('h'), 12, Buffer.from('bbbb')).write(oid('h'), 8, Buffer.from('c')),
        );
        assert.equal((await store.read(oid('h'), 8, 8)).toString('latin1'), 'c\0aabbbb');
      }));

    test('writeFull replaces data but keeps xattrs and omap', () =>
      withStore(async (store) => {
        await store.apply(new Transaction().write(oid('f'), 0, bytes(3000, 2)).setXattr(oid('f'), 'x', Buffer.from('1')).omapSet(oid('f'), { k: Buffer.from('v') }));
        await store.apply(new Transaction().writeFull(oid('f'), Buffer.from('short')));
        assert.equal((await store.read(oid('f'))).toString(), 'short');
        assert.equal((await store.getXattr(oid('f'), 'x'))?.toString(), '1');
        assert.equal((await store.omapGet(oid('f'), ['k'])).get('k')?.toString(), 'v');
        await store.apply(new Transaction().writeFull(oid('f'), Buffer.alloc(0)));
        assert.equal((await store.stat(oid('f'))).size, 0);
      }));

    test('truncate shrinks, extends with zeros and creates; bytes cut off never come back', () =>
      withStore(async (store) => {
        const data = bytes(8192, 3);
        await store.apply(new Transaction().write(oid('t'), 0, data));
        await store.apply(new Transaction().truncate(oid('t'), 1000));
        assert.deepEqual(await store.read(oid('t')), data.subarray(0, 1000));
        await store.apply(new Transaction().truncate(oid('t'), 3000));
        const grown = await store.read(oid('t'));
        assert.deepEqual(grown.subarray(0, 1000), data.subarray(0, 1000));
        assert.ok(grown.subarray(1000).equals(Buffer.alloc(2000)));
        await store.apply(new Transaction().truncate(oid('t'), 10).write(oid('t'), 20, Buffer.from('x')));
        assert.deepEqual(await store.read(oid('t')), Buffer.concat([data.subarray(0, 10), Buffer.alloc(10), Buffer.from('x')]));
        await store.apply(new Transaction().truncate(oid('new'), 77));
        assert.ok((await store.read(oid('new'))).equals(Buffer.alloc(77)));
      }));

    test('zero clears a range, never changes the size, and does not create', () =>
      withStore(async (store) => {
        const data = bytes(6000, 4);
        await store.apply(new Transaction().write(oid('z'), 0, data).zero(oid('z'), 100, 200).zero(oid('z'), 5990, 1000).zero(oid('none'), 0, 10));
        const expected = Buffer.from(data);
        expected.fill(0, 100, 300);
        expected.fill(0, 5990);
        assert.deepEqual(await store.read(oid('z')), expected);
        assert.equal(await store.exists(oid('none')), false);
      }));

    test('remove: idempotent by default, NOT_FOUND when mustExist; a recreated object starts empty', () =>
      withStore(async (store) => {
        await store.apply(new Transaction().remove(oid('missing')));
        await assert.rejects(store.apply(new Transaction().remove(oid('missing'), { mustExist: true })), isCode('NOT_FOUND'));
        await store.apply(new Transaction().write(oid('r'), 0, Buffer.from('data')).setXattr(oid('r'), 'a', Buffer.from('1')).omapSet(oid('r'), { k: Buffer.from('v') }));
        await store.apply(new Transaction().remove(oid('r'), { mustExist: true }));
        await assert.rejects(store.read(oid('r')), isCode('NOT_FOUND'));
        await assert.rejects(store.stat(oid('r')), isCode('NOT_FOUND'));
        await assert.rejects(store.getXattrs(oid('r')), isCode('NOT_FOUND'));
        await assert.rejects(store.omapList(oid('r'), { limit: 10 }), isCode('NOT_FOUND'));
        await store.apply(new Transaction().touch(oid('r')));
        assert.equal((await store.stat(oid('r'))).size, 0);
        assert.equal((await store.getXattrs(oid('r'))).size, 0);
        assert.deepEqual(await allOmap(store, oid('r')), []);
        // Removing and recreating inside one transaction.
        await store.apply(new Transaction().omapSet(oid('r'), { old: Buffer.from('1') }).remove(oid('r')).omapSet(oid('r'), { fresh: Buffer.from('2') }));
        assert.deepEqual(await allOmap(store, oid('r')), [['fresh', '32']]);
      }));

    test('touch creates an empty object; mustNotExist refuses an existing one', () =>
      withStore(async (store) => {
        await store.apply(new Transaction().touch(oid('e')));
        assert.deepEqual(await store.read(oid('e')), Buffer.alloc(0));
        await assert.rejects(store.apply(new Transaction().touch(oid('e'), { mustNotExist: true })), isCode('ALREADY_EXISTS'));
        await store.apply(new Transaction().touch(oid('e2'), { mustNotExist: true }));
      }));

    test('xattrs: set, overwrite, list sorted, remove; bounded', () =>
      withStore(async (store) => {
        await store.apply(new Transaction().setXattrs(oid('x'), { b: Buffer.from('2'), a: Buffer.from('1'), 'é': Buffer.alloc(0) }));
        await store.apply(new Transaction().setXattr(oid('x'), 'b', Buffer.from('22')).rmXattr(oid('x'), 'a', 'nope'));
        const all = await store.getXattrs(oid('x'));
        assert.deepEqual([...all.keys()], ['b', 'é']);
        assert.equal(all.get('b')?.toString(), '22');
        assert.equal(await store.getXattr(oid('x'), 'a'), undefined);
        await assert.rejects(store.getXattr(oid('nobody'), 'a'), isCode('NOT_FOUND'));
        await assert.rejects(store.apply(new Transaction().setXattr(oid('x'), 'big', Buffer.alloc(1024 * 1024))), isCode('TOO_LARGE'));
      }));

    test('omap: set, get, remove, clear; listing sorted by UTF-8 bytes, paged, with prefix', () =>
      withStore(async (store) => {
        const keys = ['b', 'a', 'ab', 'abc', 'é', '\u{1F600}', '\uFFFD', 'a/1', 'a/2', ''];
        await store.apply(new Transaction().omapSet(oid('m'), keys.map((k, i) => [k, Buffer.from([i])] as const)));
        const listed = (await allOmap(store, oid('m'))).map(([k]) => k);
        assert.deepEqual(listed, ['', 'a', 'a/1', 'a/2', 'ab', 'abc', 'b', 'é', '\uFFFD', '\u{1F600}']);
        const withPrefix = await store.omapList(oid('m'), { prefix: 'a', limit: 3 });
        assert.deepEqual(withPrefix.entries.map((e) => e.key), ['a', 'a/1', 'a/2']);
        assert.equal(withPrefix.more, true);
        const next = await store.omapList(oid('m'), { prefix: 'a', after: 'a/2', limit: 3 });
        assert.deepEqual(next.entries.map((e) => e.key), ['ab', 'abc']);
        assert.equal(next.more, false);
        const slash = await store.omapList(oid('m'), { prefix: 'a/', after: 'a', limit: 5 });
        assert.deepEqual(slash.entries.map((e) => e.key), ['a/1', 'a/2']);
        const got = await store.omapGet(oid('m'), ['b', 'zzz', 'é']);
        assert.deepEqual([...got.keys()].sort(), ['b', 'é']);
        assert.deepEqual(got.get('é'), Buffer.from([4]));
        await store.apply(new Transaction().omapRemove(oid('m'), ['b', 'nope']).omapSet(oid('m'), { b2: Buffer.from('x') }));
        assert.equal((await store.omapGet(oid('m'), ['b'])).size, 0);
        assert.equal((await store.omapGet(oid('m'), ['b2'])).get('b2')?.toString(), 'x');
        await store.apply(new Transaction().omapClear(oid('m')).omapSet(oid('m'), { after: Buffer.from('1') }));
        assert.deepEqual(await allOmap(store, oid('m')), [['after', '31']]);
        await assert.rejects(store.omapList(oid('m'), { limit: 0 }), isCode('INVALID_ARGUMENT'));
      }));

    test('clone copies data, xattrs and omap; the copies are independent; it replaces the destination', () =>
      withStore(async (store) => {
        const small = bytes(3000, 5);
        const large = bytes(300_000, 6);
        await store.apply(
          new Transaction()
            .write(oid('s'), 0, small)
            .setXattr(oid('s'), 'v', Buffer.from('1'))
            .omapSet(oid('s'), { k1: Buffer.from('a'), k2: Buffer.from('b') })
            .write(oid('L'), 0, large)
            .omapSet(oid('d'), { stale: Buffer.from('x') })
            .setXattr(oid('d'), 'stale', Buffer.from('x')),
        );
        await store.apply(new Transaction().clone(oid('s'), oid('d')).clone(oid('L'), oid('L2', '1.1')));
        assert.deepEqual(await store.read(oid('d')), small);
        assert.deepEqual([...(await store.getXattrs(oid('d'))).keys()], ['v']);
        assert.deepEqual(await allOmap(store, oid('d')), [['k1', '61'], ['k2', '62']]);
        assert.deepEqual(await store.read(oid('L2', '1.1')), large);
        // Change the source and the copy: neither sees the other.
        await store.apply(new Transaction().write(oid('s'), 0, Buffer.from('SRC')).omapSet(oid('s'), { k3: Buffer.from('c') }).write(oid('L'), 1000, Buffer.from('SRC')));
        await store.apply(new Transaction().write(oid('L2', '1.1'), 2000, Buffer.from('DST')).omapRemove(oid('d'), ['k1']));
        assert.deepEqual(await store.read(oid('d')), small);
        assert.deepEqual(await allOmap(store, oid('s')), [['k1', '61'], ['k2', '62'], ['k3', '63']]);
        const L = await store.read(oid('L'));
        const L2 = await store.read(oid('L2', '1.1'));
        assert.equal(L.subarray(1000, 1003).toString(), 'SRC');
        assert.deepEqual(L.subarray(2000, 2003), large.subarray(2000, 2003));
        assert.equal(L2.subarray(2000, 2003).toString(), 'DST');
        assert.deepEqual(L2.subarray(1000, 1003), large.subarray(1000, 1003));
        await assert.rejects(store.apply(new Transaction().clone(oid('ghost'), oid('d'))), isCode('NOT_FOUND'));
        await assert.rejects(store.apply(new Transaction().clone(oid('d'), oid('d'))), isCode('INVALID_ARGUMENT'));
      }));

    test('clone of an object changed earlier in the same transaction copies the changed version', () =>
      withStore(async (store) => {
        const large = bytes(200_000, 7);
        await store.apply(new Transaction().write(oid('p'), 0, large));
        await store.apply(new Transaction().write(oid('p'), 100, Buffer.from('NEW')).truncate(oid('p'), 150_000).clone(oid('p'), oid('q')).write(oid('p'), 0, Buffer.from('LATER')));
        const expected = Buffer.from(large.subarray(0, 150_000));
        expected.write('NEW', 100, 'latin1');
        assert.deepEqual(await store.read(oid('q')), expected);
        expected.write('LATER', 0, 'latin1');
        assert.deepEqual(await store.read(oid('p')), expected);
      }));

    test('rename moves an object with its xattrs and omap, replacing the destination', () =>
      withStore(async (store) => {
        const data = bytes(100_000, 8);
        await store.apply(
          new Transaction().write(oid('from'), 0, data).setXattr(oid('from'), 'a', Buffer.from('1')).omapSet(oid('from'), { k: Buffer.from('v') }).write(oid('to', '1.2'), 0, Buffer.from('old')).omapSet(oid('to', '1.2'), { old: Buffer.from('1') }),
        );
        await store.apply(new Transaction().rename(oid('from'), oid('to', '1.2')));
        assert.equal(await store.exists(oid('from')), false);
        assert.deepEqual(await store.read(oid('to', '1.2')), data);
        assert.equal((await store.getXattr(oid('to', '1.2'), 'a'))?.toString(), '1');
        assert.deepEqual(await allOmap(store, oid('to', '1.2')), [['k', '76']]);
        await assert.rejects(store.apply(new Transaction().rename(oid('from'), oid('x'))), isCode('NOT_FOUND'));
        // Rename inside a transaction that then changes the destination.
        await store.apply(new Transaction().rename(oid('to', '1.2'), oid('back')).write(oid('back'), 0, Buffer.from('HEAD')));
        const back = await store.read(oid('back'));
        assert.equal(back.subarray(0, 4).toString(), 'HEAD');
        assert.deepEqual(back.subarray(4), data.subarray(4));
      }));

    test('listing objects: sorted, paged, with prefix; collections listed; a missing collection lists empty', () =>
      withStore(async (store) => {
        const names = ['b', 'a', 'a1', 'a2', 'c', 'é', 'A'];
        const tx = new Transaction();
        for (const n of names) tx.touch(oid(n));
        tx.touch(oid('other', '2.0'));
        await store.apply(tx);
        assert.deepEqual(await allNames(store, pg), ['A', 'a', 'a1', 'a2', 'b', 'c', 'é']);
        const prefixed = await store.listObjects(pg, { prefix: 'a', limit: 10 });
        assert.deepEqual(prefixed, { names: ['a', 'a1', 'a2'], more: false });
        assert.deepEqual(await store.listObjects('9.9', { limit: 10 }), { names: [], more: false });
        assert.deepEqual(await store.listCollections(), ['1.0', '2.0']);
        await store.apply(new Transaction().createCollection('3.0'));
        assert.deepEqual(await store.listCollections(), ['1.0', '2.0', '3.0']);
      }));

    test('PG metadata: set, get, list, remove, atomically with object changes', () =>
      withStore(async (store) => {
        await store.apply(
          new Transaction()
            .write(oid('o'), 0, Buffer.from('v1'))
            .pgMetaSet(pg, { info: Buffer.from('epoch=1'), 'log.0001': Buffer.from('e1'), 'log.0002': Buffer.from('e2') }),
        );
        assert.equal((await store.pgMetaGet(pg, 'info'))?.toString(), 'epoch=1');
        assert.equal(await store.pgMetaGet(pg, 'missing'), undefined);
        assert.equal(await store.pgMetaGet('7.7', 'info'), undefined);
        const log = await store.pgMetaList(pg, { prefix: 'log.', limit: 10 });
        assert.deepEqual(log.entries.map((e) => [e.key, e.value.toString()]), [['log.0001', 'e1'], ['log.0002', 'e2']]);
        await store.apply(new Transaction().pgMetaRemove(pg, ['log.0001']).pgMetaSet(pg, { 'log.0003': Buffer.from('e3') }));
        const after = await store.pgMetaList(pg, { prefix: 'log.', after: 'log.0001', limit: 1 });
        assert.deepEqual(after.entries.map((e) => e.key), ['log.0002']);
        assert.equal(after.more, true);
      }));

    test('removeCollection drops every object and PG metadata key in it; the name can be reused at once', () =>
      withStore(async (store) => {
        const tx = new Transaction();
        for (let i = 0; i < 20; i++) tx.write(oid(`o${i}`, '5.1'), 0, bytes(i * 5000, i)).omapSet(oid(`o${i}`, '5.1'), { k: Buffer.from('v') });
        tx.pgMetaSet('5.1', { info: Buffer.from('x') }).touch(oid('keep', '5.2'));
        await store.apply(tx);
        const before = await store.statfs();
        assert.equal(before.objects, 21);
        await store.apply(new Transaction().removeCollection('5.1'));
        assert.deepEqual(await store.listObjects('5.1', { limit: 100 }), { names: [], more: false });
        assert.equal(await store.pgMetaGet('5.1', 'info'), undefined);
        assert.deepEqual(await store.listCollections(), ['5.2']);
        const after = await store.statfs();
        assert.equal(after.objects, 1);
        assert.equal(after.usedBytes, 0);
        await store.apply(new Transaction().removeCollection('5.1').removeCollection('never'));
        // Remove and recreate in one transaction: the new collection holds only what follows the removal.
        await store.apply(new Transaction().touch(oid('a', '5.3')).pgMetaSet('5.3', { k: Buffer.from('1') }));
        await store.apply(new Transaction().removeCollection('5.3').touch(oid('b', '5.3')));
        assert.deepEqual(await allNames(store, '5.3'), ['b']);
        assert.equal(await store.pgMetaGet('5.3', 'k'), undefined);
        await assert.rejects(store.read(oid('o3', '5.1')), isCode('NOT_FOUND'));
      }));

    test('a transaction that fails on any op changes nothing', () =>
      withStore(async (store) => {
        await store.apply(new Transaction().write(oid('keep'), 0, Buffer.from('original')).omapSet(oid('keep'), { k: Buffer.from('1') }).touch(oid('guard', '1.9')));
        const failing = [
          new Transaction().remove(oid('absent'), { mustExist: true }),
          new Transaction().clone(oid('absent'), oid('x')),
          new Transaction().touch(oid('guard', '1.9'), { mustNotExist: true }),
          new Transaction().rename(oid('absent'), oid('x')),
        ];
        for (const last of failing) {
          const tx = new Transaction()
            .write(oid('keep'), 0, Buffer.from('CHANGED!'))
            .truncate(oid('keep'), 3)
            .omapClear(oid('keep'))
            .setXattr(oid('keep'), 'x', Buffer.from('1'))
            .write(oid('fresh', '8.8'), 0, bytes(200_000, 9))
            .pgMetaSet('8.8', { k: Buffer.from('v') })
            .removeCollection(pg)
            .rename(oid('fresh', '8.8'), oid('moved', '8.8'));
          tx.ops.push(...last.ops);
          await assert.rejects(store.apply(tx));
          assert.equal((await store.read(oid('keep'))).toString(), 'original');
          assert.equal((await store.omapGet(oid('keep'), ['k'])).size, 1);
          assert.equal((await store.getXattrs(oid('keep'))).size, 0);
          assert.deepEqual(await store.listCollections(), [pg, '1.9']);
          assert.equal(await store.pgMetaGet('8.8', 'k'), undefined);
        }
        const stats = await store.statfs();
        assert.equal(stats.objects, 2);
        assert.equal(stats.usedBytes, 8);
      }));

    test('arguments are validated: INVALID_ARGUMENT and TOO_LARGE, before anything changes', () =>
      withStore(async (store) => {
        const cases: [Transaction, ErrorCode][] = [
          [new Transaction().write(oid('v'), -1, Buffer.from('x')), 'INVALID_ARGUMENT'],
          [new Transaction().write(oid('v'), 1.5, Buffer.from('x')), 'INVALID_ARGUMENT'],
          [new Transaction().write(oid(''), 0, Buffer.from('x')), 'INVALID_ARGUMENT'],
          [new Transaction().write({ pg: '', name: 'x' }, 0, Buffer.from('x')), 'INVALID_ARGUMENT'],
          [new Transaction().write(oid('bad\uD800'), 0, Buffer.from('x')), 'INVALID_ARGUMENT'],
          [new Transaction().write(oid('v'), 2 ** 40, Buffer.from('x')), 'TOO_LARGE'],
          [new Transaction().truncate(oid('v'), 2 ** 40), 'TOO_LARGE'],
          [new Transaction().write(oid('n'.repeat(5000)), 0, Buffer.from('x')), 'TOO_LARGE'],
          [new Transaction().omapSet(oid('v'), { k: Buffer.alloc(10 * 1024 * 1024) }), 'TOO_LARGE'],
        ];
        for (const [tx, code] of cases) {
          tx.touch(oid('side-effect'));
          await assert.rejects(store.apply(tx), isCode(code));
        }
        assert.equal(await store.exists(oid('side-effect')), false);
        await assert.rejects(store.read(oid('v'), -5), isCode('INVALID_ARGUMENT'));
        await assert.rejects(store.listObjects(pg, { limit: 1_000_000 }), isCode('INVALID_ARGUMENT'));
        await store.apply(new Transaction());
      }));

    test('concurrent transactions all apply, in the order apply was called', () =>
      withStore(async (store) => {
        const applies: Promise<void>[] = [];
        for (let i = 0; i < 40; i++) {
          applies.push(store.apply(new Transaction().write(oid(`c${i % 8}`), i, Buffer.from([i])).omapSet(oid('log'), { [`k${String(i).padStart(2, '0')}`]: Buffer.from([i]) })));
        }
        await Promise.all(applies);
        for (let j = 0; j < 8; j++) {
          const data = await store.read(oid(`c${j}`));
          for (let i = j; i < 40; i += 8) assert.equal(data[i], i);
        }
        assert.equal((await allOmap(store, oid('log'))).length, 40);
      }));

    test('statfs counts objects and logical bytes', () =>
      withStore(async (store) => {
        const empty = await store.statfs();
        assert.equal(empty.objects, 0);
        assert.equal(empty.usedBytes, 0);
        assert.ok(empty.totalBytes > 0 && empty.availableBytes > 0);
        await store.apply(new Transaction().write(oid('s1'), 0, Buffer.alloc(1000, 1)).truncate(oid('s2'), 5000).write(oid('s3', '2.0'), 100_000, Buffer.from('x')));
        let stats = await store.statfs();
        assert.equal(stats.objects, 3);
        assert.equal(stats.usedBytes, 106_001);
        await store.apply(new Transaction().remove(oid('s1')).truncate(oid('s2'), 10));
        stats = await store.statfs();
        assert.equal(stats.objects, 2);
        assert.equal(stats.usedBytes, 100_011);
      }));

    test('everything survives a restart', () =>
      withStore(async (first) => {
        const large = bytes(500_000, 10);
        await first.apply(
          new Transaction()
            .write(oid('p1'), 0, large)
            .write(oid('p2'), 0, Buffer.from('small'))
            .setXattr(oid('p2'), 'x', Buffer.from('1'))
            .omapSet(oid('p2'), { a: Buffer.from('1'), b: Buffer.from('2') })
            .pgMetaSet(pg, { info: Buffer.from('i') }),
        );
        await first.apply(new Transaction().write(oid('p1'), 4096 * 10 + 7, Buffer.from('patch')).write(oid('p1'), 500_000, Buffer.from('tail')));
        const store = await harness.reopen(first);
        const expected = Buffer.concat([large, Buffer.from('tail')]);
        expected.write('patch', 4096 * 10 + 7, 'latin1');
        assert.deepEqual(await store.read(oid('p1')), expected);
        assert.equal((await store.read(oid('p2'))).toString(), 'small');
        assert.equal((await store.getXattr(oid('p2'), 'x'))?.toString(), '1');
        assert.deepEqual(await allOmap(store, oid('p2')), [['a', '31'], ['b', '32']]);
        assert.equal((await store.pgMetaGet(pg, 'info'))?.toString(), 'i');
        assert.deepEqual((await store.statfs()).objects, 2);
        await store.apply(new Transaction().write(oid('p3'), 0, Buffer.from('after restart')));
        assert.equal((await store.read(oid('p3'))).toString(), 'after restart');
        return store;
      }));

    test('damaged bytes: reads fail with CHECKSUM_MISMATCH, never return wrong data; writeFull repairs', () =>
      withStore(async (store) => {
        if (!isCorruptible(store)) return;
        const large = bytes(256 * 1024, 11);
        const small = bytes(2000, 12);
        await store.apply(new Transaction().write(oid('big'), 0, large).write(oid('tiny'), 0, small));
        await store.corrupt(oid('big'), { kind: 'flip', offset: 100_000 });
        await assert.rejects(store.read(oid('big')), isCode('CHECKSUM_MISMATCH'));
        await assert.rejects(store.read(oid('big'), 99_000, 2000), isCode('CHECKSUM_MISMATCH'));
        assert.deepEqual(await store.read(oid('big'), 0, 4096), large.subarray(0, 4096));
        await assert.rejects(store.apply(new Transaction().clone(oid('big'), oid('copy'))), isCode('CHECKSUM_MISMATCH'));
        assert.equal(await store.exists(oid('copy')), false);
        await store.corrupt(oid('tiny'), { kind: 'zero', offset: 10, length: 100 });
        await assert.rejects(store.read(oid('tiny')), isCode('CHECKSUM_MISMATCH'));
        await store.apply(new Transaction().writeFull(oid('big'), large).writeFull(oid('tiny'), small));
        assert.deepEqual(await store.read(oid('big')), large);
        assert.deepEqual(await store.read(oid('tiny')), small);
      }));

    test('random transactions agree with a reference model (seeded)', async (t: TestContext) => {
      const random = seededRandom(t);
      const seed = random.seed;
      let store = await harness.open();
      try {
        await randomWorkload(random, store, async () => (store = await harness.reopen(store)));
      } catch (error) {
        throw new Error(`random workload failed with seed ${seed} (replay: SHOAL_SEED=${seed}): ${String(error)}`, { cause: error });
      } finally {
        await harness.close(store);
      }
    });
  });
}

interface ModelObject {
  data: Buffer;
  xattrs: Map<string, Buffer>;
  omap: Map<string, Buffer>;
}

/** Random multi-op transactions over a few objects whose sizes cross the inline and block thresholds. */
async function randomWorkload(random: Random, first: ObjectStore, reopen: () => Promise<ObjectStore>): Promise<void> {
  let store = first;
  const names = ['r0', 'r1', 'r2', 'r3', 'r4'];
  const model = new Map<string, ModelObject>();
  const get = (name: string): ModelObject => {
    let o = model.get(name);
    if (!o) {
      o = { data: Buffer.alloc(0), xattrs: new Map(), omap: new Map() };
      model.set(name, o);
    }
    return o;
  };
  const writeModel = (o: ModelObject, offset: number, data: Buffer | null, length: number) => {
    const end = offset + length;
    if (end > o.data.length) o.data = Buffer.concat([o.data, Buffer.alloc(end - o.data.length)]);
    if (data) data.copy(o.data, offset);
    else o.data.fill(0, offset, end);
  };
  const size = () => random.pick([1, 100, 4096, 5000, 20_000, 70_000, 150_000]);
  const clone = (o: ModelObject): ModelObject => ({ data: Buffer.from(o.data), xattrs: new Map(o.xattrs), omap: new Map(o.omap) });
  for (let round = 0; round < 60; round++) {
    // Several transactions in flight at once (they may share a commit group); each one builds on the previous.
    const inFlight: Promise<void>[] = [];
    const batchSize = random.int(1, 4);
    for (let t = 0; t < batchSize; t++) {
      const tx = new Transaction();
      const staged = new Map([...model].map(([k, o]) => [k, clone(o)]));
      const stagedGet = (name: string): ModelObject => {
        let o = staged.get(name);
        if (!o) {
          o = { data: Buffer.alloc(0), xattrs: new Map(), omap: new Map() };
          staged.set(name, o);
        }
        return o;
      };
      let fails = false;
      const opCount = random.int(1, 4);
      for (let i = 0; i < opCount; i++) {
        const name = random.pick(names);
        const o = { pg: '1.7', name };
        const kind = random.int(0, 11);
        if (kind <= 3) {
          const current = staged.get(name)?.data.length ?? 0;
          const offset = random.chance(0.3) ? current : random.int(0, current + 10_000);
          const data = random.bytes(size());
          tx.write(o, offset, data);
          writeModel(stagedGet(name), offset, data, data.length);
        } else if (kind === 4) {
          const data = random.bytes(random.chance(0.2) ? 0 : size());
          tx.writeFull(o, data);
          stagedGet(name).data = Buffer.from(data);
        } else if (kind === 5) {
          const to = random.int(0, 160_000);
          tx.truncate(o, to);
          const m = stagedGet(name);
          m.data = to <= m.data.length ? Buffer.from(m.data.subarray(0, to)) : Buffer.concat([m.data, Buffer.alloc(to - m.data.length)]);
        } else if (kind === 6) {
          const m = staged.get(name);
          const offset = random.int(0, 160_000);
          const length = random.int(0, 50_000);
          tx.zero(o, offset, length);
          if (m && offset < m.data.length) m.data.fill(0, offset, Math.min(m.data.length, offset + length));
        } else if (kind === 7) {
          tx.remove(o);
          staged.delete(name);
        } else if (kind === 8) {
          const to = random.pick(names.filter((n) => n !== name));
          tx.clone(o, { pg: '1.7', name: to });
          const src = staged.get(name);
          if (!src) fails = true;
          else staged.set(to, clone(src));
        } else if (kind === 9) {
          const to = random.pick(names.filter((n) => n !== name));
          tx.rename(o, { pg: '1.7', name: to });
          const src = staged.get(name);
          if (!src) fails = true;
          else {
            staged.set(to, src);
            staged.delete(name);
          }
        } else if (kind === 10) {
          const key = `x${random.int(0, 3)}`;
          const value = random.bytes(random.int(0, 20));
          tx.setXattr(o, key, value);
          stagedGet(name).xattrs.set(key, value);
        } else {
          const key = `k${random.int(0, 9)}`;
          if (random.chance(0.7)) {
            const value = random.bytes(random.int(0, 30));
            tx.omapSet(o, { [key]: value });
            stagedGet(name).omap.set(key, value);
          } else {
            tx.omapRemove(o, [key]);
            staged.get(name)?.omap.delete(key);
          }
        }
      }
      if (fails) {
        inFlight.push(assert.rejects(store.apply(tx), isCode('NOT_FOUND')));
      } else {
        inFlight.push(store.apply(tx));
        model.clear();
        for (const [k, v] of staged) model.set(k, v);
      }
    }
    await Promise.all(inFlight);
    if (round % 20 === 19) store = await reopen();
    if (round % 5 === 4 || round === 59) {
      for (const name of names) {
        const o = { pg: '1.7', name };
        const m = model.get(name);
        if (!m) {
          assert.equal(await store.exists(o), false, `round ${round}: ${name} should not exist`);
          continue;
        }
        const data = await store.read(o);
        assert.equal(data.length, m.data.length, `round ${round}: size of ${name}`);
        assert.ok(data.equals(m.data), `round ${round}: data of ${name} differs`);
        if (m.data.length > 10) assert.deepEqual(await store.read(o, 7, 3), m.data.subarray(7, 10));
        const xattrs = await store.getXattrs(o);
        assert.deepEqual([...xattrs].sort(), [...m.xattrs].sort(), `round ${round}: xattrs of ${name}`);
        const omap = await store.omapList(o, { limit: 100 });
        assert.deepEqual(
          omap.entries.map((e) => [e.key, e.value.toString('hex')]),
          [...m.omap].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, v.toString('hex')]),
          `round ${round}: omap of ${name}`,
        );
      }
    }
  }
}
