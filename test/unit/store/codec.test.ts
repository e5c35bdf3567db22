/**
 * LevelStore's persisted formats, pinned: these encodings are on disks and must decode forever. A change that
 * breaks one of these needs a new format version (and the old one kept decoding), never an edit of the vector.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StorageError } from '../../../src/common/index.js';
import * as codec from '../../../osd/store/level/codec.js';

const v1 = {
  superblock: '40014278bcfe5680000000001000',
  counters: '41010000000000001092',
  collection: '420100000000000000070000000000000003000000000001e240',
  onodeInline: '430100000000000000054278bcfe5687b000010000000000000009deadbeef00000000000000000000000100000001760000000131',
  onodeFile: '430100000000000493e04278bcfe569c800002000000000000000a00001000000000000000000b00000000',
  inlineData: '440168656c6c6f',
  omapValue: '460176',
  pgMetaValue: '47016c6f67',
  checksums: '450101000000ffffffff',
  deferredWrite: '4801000000000000000a00000002000000000000100001000000036162630000000000002000000000000000000064',
  gcRecord: '4901030000000000000007',
};
const hex = (s: string) => Buffer.from(s, 'hex');

test('store formats v1 decode to what they meant, and encode to the same bytes', () => {
  assert.deepEqual(codec.decodeSuperblock(hex(v1.superblock)), { createdMs: 1700000000000, blockBytes: 4096 });
  assert.deepEqual(codec.decodeCounters(hex(v1.counters)), { nextId: 4242 });
  assert.deepEqual(codec.decodeCollection(hex(v1.collection)), { cid: 7, objects: 3, bytes: 123456 });
  const inline = codec.decodeOnode(hex(v1.onodeInline));
  assert.deepEqual(inline, { size: 5, mtimeMs: 1700000000123, data: { kind: 'inline', id: 9, crc: 0xdeadbeef }, omapId: 0, xattrs: new Map([['v', Buffer.from('1')]]) });
  assert.equal(codec.encodeOnode(inline).toString('hex'), v1.onodeInline);
  const file = codec.decodeOnode(hex(v1.onodeFile));
  assert.deepEqual(file, { size: 300000, mtimeMs: 1700000000456, data: { kind: 'file', id: 10, blockBytes: 4096 }, omapId: 11, xattrs: new Map() });
  assert.equal(codec.encodeOnode(file).toString('hex'), v1.onodeFile);
  assert.equal(codec.decodeBlob('inlineData', hex(v1.inlineData)).toString(), 'hello');
  assert.equal(codec.decodeBlob('omapValue', hex(v1.omapValue)).toString(), 'v');
  assert.equal(codec.decodeBlob('pgMetaValue', hex(v1.pgMetaValue)).toString(), 'log');
  assert.deepEqual([...codec.decodeChecksums(hex(v1.checksums))], [1, 0xffffffff]);
  assert.deepEqual(codec.decodeDeferredWrite(hex(v1.deferredWrite)), {
    fileId: 10,
    extents: [
      { offset: 4096, length: 3, data: Buffer.from('abc') },
      { offset: 8192, length: 100, data: null },
    ],
  });
  assert.deepEqual(codec.decodeGcRecord(hex(v1.gcRecord)), { kind: 'collection', id: 7 });
  assert.equal(codec.encodeCollection({ cid: 7, objects: 3, bytes: 123456 }).toString('hex'), v1.collection);
});

test('decoders refuse the wrong kind of record, unknown versions and truncated bytes', () => {
  const is = (code: string) => (error: unknown) => error instanceof StorageError && error.code === code;
  assert.throws(() => codec.decodeOnode(hex(v1.collection)), is('CORRUPT_DATA'));
  assert.throws(() => codec.decodeOnode(hex('4302' + v1.onodeFile.slice(4))), is('UNSUPPORTED_VERSION'));
  assert.throws(() => codec.decodeOnode(hex(v1.onodeFile.slice(0, 30))), is('CORRUPT_DATA'));
  assert.throws(() => codec.decodeOnode(hex(v1.onodeFile + '00')), is('CORRUPT_DATA'));
  assert.throws(() => codec.decodeDeferredWrite(hex(v1.deferredWrite.slice(0, 40))), is('CORRUPT_DATA'));
  assert.throws(() => codec.decodeBlob('omapValue', hex('')), is('CORRUPT_DATA'));
  assert.throws(() => codec.decodeChecksums(hex('450101')), is('CORRUPT_DATA'));
});

test('store format ids stay within the range reserved for osd/store and are unique', () => {
  const ids = Object.values(codec.storeFormats);
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids) assert.ok(id >= 0x40 && id <= 0x4f);
});
