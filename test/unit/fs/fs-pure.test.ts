/** The filesystem's pure cores: formats, striping math, lock compatibility and the errno table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StorageError } from '../../../src/index.js';
import {
  FsError,
  compatible,
  conflictOf,
  withoutRange,
  dataObject,
  decodeDentry,
  decodeHolders,
  decodeInode,
  decodeIntent,
  decodeSuperblock,
  encodeDentry,
  encodeInode,
  encodeIntent,
  encodeSuperblock,
  extents,
  inodeObject,
  parseDataObject,
  parseInodeObject,
  typeOf,
  type Inode,
} from '../../../fuse/fs/index.js';
import { errnoFor, errnoNameFor, errnoValues } from '../../../fuse/adapter/errno.js';

const inode: Inode = { ino: 77, mode: 0o100644, uid: 1000, gid: 100, size: 123456, nlink: 2, atimeMs: 1, mtimeMs: 2, ctimeMs: 3, parent: 1, target: '', gen: 9, dead: false };

test('formats round-trip and carry a version marker', () => {
  assert.deepEqual(decodeInode(encodeInode(inode)), inode);
  assert.deepEqual(decodeDentry(encodeDentry({ ino: 5, type: 'symlink' })), { ino: 5, type: 'symlink' });
  assert.equal(encodeDentry({ ino: 5, type: 'dir' }).toString(), '1 5 d');
  const sb = { name: 'fs1', dataPool: 'p', objectSize: 4194304, createdMs: 10 };
  assert.deepEqual(decodeSuperblock(encodeSuperblock(sb)), sb);
  const intent = { fromDir: 1, fromName: 'a', toDir: 2, toName: 'b', ino: 3, type: 'file' as const, replaced: 0, createdMs: 4, owner: 'client.x' };
  assert.deepEqual(decodeIntent(encodeIntent(intent)), intent);
  assert.equal(typeOf(0o040755), 'dir');
  assert.equal(typeOf(0o120777), 'symlink');
  assert.equal(typeOf(0o100600), 'file');
});

test('unknown versions and damage are refused, not guessed', () => {
  const refuses = (fn: () => unknown, code: string) => assert.throws(fn, (e: unknown) => e instanceof StorageError && e.code === code);
  refuses(() => decodeInode(Buffer.from(JSON.stringify({ ...inode, v: 2 }))), 'UNSUPPORTED_VERSION');
  refuses(() => decodeInode(Buffer.from('{')), 'CORRUPT_DATA');
  refuses(() => decodeInode(Buffer.from(JSON.stringify({ v: 1, ino: 1 }))), 'CORRUPT_DATA');
  refuses(() => decodeDentry(Buffer.from('2 5 f')), 'UNSUPPORTED_VERSION');
  refuses(() => decodeDentry(Buffer.from('1 x f')), 'CORRUPT_DATA');
  refuses(() => decodeDentry(Buffer.from('1 5 q')), 'CORRUPT_DATA');
  refuses(() => decodeHolders(Buffer.from(JSON.stringify({ v: 3 }))), 'UNSUPPORTED_VERSION');
});

test('object names parse back', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.integer({ min: 0, max: 2 ** 22 }), (ino, index) => {
    assert.equal(parseInodeObject(inodeObject(ino)), ino);
    assert.deepEqual(parseDataObject(dataObject(ino, index)), { ino, index });
  }));
  assert.equal(parseInodeObject('super'), undefined);
  assert.equal(parseDataObject('i.5'), undefined);
});

test('extents cover a byte range exactly once, in order, never crossing an object (against a byte loop)', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: 1, max: 700 }), (offset, length, objectSize) => {
    const pieces = extents(offset, length, objectSize);
    const seen: number[] = [];
    for (const e of pieces) {
      assert.ok(e.offset + e.length <= objectSize && e.length > 0);
      for (let i = 0; i < e.length; i++) {
        const absolute = e.index * objectSize + e.offset + i;
        assert.equal(absolute, offset + e.bufferOffset + i);
        seen.push(absolute);
      }
    }
    assert.deepEqual(seen, Array.from({ length }, (_, i) => offset + i));
  }));
});

test('flock compatibility: shared with shared only', () => {
  const h = (mode: 'sh' | 'ex') => ({ owner: 'o', mode, untilMs: 0 });
  assert.equal(compatible('sh', []), true);
  assert.equal(compatible('ex', []), true);
  assert.equal(compatible('sh', [h('sh'), h('sh')]), true);
  assert.equal(compatible('ex', [h('sh')]), false);
  assert.equal(compatible('sh', [h('ex')]), false);
});

test('POSIX range locks: conflicts need an overlap with a writer of another owner; unlocking splits ranges', () => {
  const l = (owner: string, type: 'r' | 'w', start: number, end: number | null) => ({ owner, type, start, end, untilMs: 0 });
  const held = [l('a', 'w', 0, 100), l('b', 'r', 200, null)];
  assert.equal(conflictOf(held, l('c', 'r', 100, 200)), undefined);
  assert.equal(conflictOf(held, l('c', 'r', 99, 100))?.owner, 'a');
  assert.equal(conflictOf(held, l('c', 'r', 5000, 5001)), undefined);
  assert.equal(conflictOf(held, l('c', 'w', 5000, null))?.owner, 'b');
  assert.equal(conflictOf(held, l('a', 'w', 0, 100)), undefined);
  assert.deepEqual(withoutRange(held, 'a', 10, 20).map((x) => [x.owner, x.start, x.end]), [['a', 0, 10], ['a', 20, 100], ['b', 200, null]]);
  assert.deepEqual(withoutRange(held, 'b', 300, null).map((x) => [x.owner, x.start, x.end]), [['a', 0, 100], ['b', 200, 300]]);
  assert.deepEqual(withoutRange(held, 'a', 0, null).map((x) => x.owner), ['b']);
});

test('one errno table: namespace errors name theirs, other codes map, the rest is EIO', () => {
  assert.equal(errnoFor(new FsError('ENOTEMPTY', 'x')), -39);
  assert.equal(errnoFor(new FsError('ENAMETOOLONG', 'x')), -36);
  assert.equal(errnoNameFor(new StorageError('TIMEOUT', 'x')), 'ETIMEDOUT');
  assert.equal(errnoNameFor(new StorageError('NOT_FOUND', 'x')), 'ENOENT');
  assert.equal(errnoNameFor(new StorageError('CHECKSUM_MISMATCH', 'x')), 'EIO');
  assert.equal(errnoNameFor(new Error('boom')), 'EIO');
  // Linux x86-64 values.
  assert.deepEqual([errnoValues.ENOENT, errnoValues.EEXIST, errnoValues.ENOTDIR, errnoValues.EISDIR, errnoValues.EACCES, errnoValues.ENODATA, errnoValues.ETIMEDOUT], [2, 17, 20, 21, 13, 61, 110]);
  // Every FsError is also a StorageError with a stable code.
  assert.equal(new FsError('EEXIST', 'x').code, 'ALREADY_EXISTS');
});
