import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  Cmd,
  IHAVEOPT,
  NBDMAGIC,
  NbdErrno,
  NbdProtocolError,
  OPTION_REPLY_MAGIC,
  Opt,
  REQUEST_MAGIC,
  Rep,
  ReplyType,
  STRUCTURED_REPLY_MAGIC,
  checkRange,
  decodeInfoRequest,
  decodeMetaContextRequest,
  decodeOptionHeader,
  decodeRequestHeader,
  encodeBlockStatus,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeOffsetDataHeader,
  encodeOffsetHole,
  encodeOptionReply,
  encodeRequestHeader,
  encodeServerReply,
  encodeSimpleReply,
  encodeStructuredError,
  mergeExtents,
} from '../../../gateway/nbd/protocol.js';

test('greeting: NBDMAGIC, IHAVEOPT, fixed newstyle + no zeroes', () => {
  const g = encodeGreeting();
  assert.equal(g.length, 18);
  assert.equal(g.toString('latin1', 0, 8), 'NBDMAGIC');
  assert.equal(g.toString('latin1', 8, 16), 'IHAVEOPT');
  assert.equal(g.readBigUInt64BE(0), NBDMAGIC);
  assert.equal(g.readUInt16BE(16), 3);
});

test('option header: decoded, and a bad magic is a protocol error', () => {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(IHAVEOPT, 0);
  b.writeUInt32BE(Opt.GO, 8);
  b.writeUInt32BE(42, 12);
  assert.deepEqual(decodeOptionHeader(b), { option: Opt.GO, length: 42 });
  b.writeUInt32BE(0, 0);
  assert.throws(() => decodeOptionHeader(b), NbdProtocolError);
});

test('option replies: magic, option, type (error bit kept), length, data', () => {
  const r = encodeOptionReply(Opt.INFO, Rep.ERR_UNKNOWN, Buffer.from('no'));
  assert.equal(r.readBigUInt64BE(0), OPTION_REPLY_MAGIC);
  assert.equal(r.readUInt32BE(8), Opt.INFO);
  assert.equal(r.readUInt32BE(12), 0x80000006);
  assert.equal(r.readUInt32BE(16), 2);
  assert.equal(r.toString('utf8', 20), 'no');
  const s = encodeServerReply('data/vm', 'desc');
  assert.equal(s.readUInt32BE(12), Rep.SERVER);
  assert.equal(s.readUInt32BE(20), 7);
  assert.equal(s.toString('utf8', 24, 31), 'data/vm');
  assert.equal(s.toString('utf8', 31), 'desc');
});

test('INFO replies: export size and flags, block sizes', () => {
  const e = encodeInfoExport(Opt.GO, 2 ** 40 + 5, 0x1ed);
  assert.equal(e.readUInt32BE(16), 12);
  assert.equal(e.readUInt16BE(20), 0);
  assert.equal(e.readBigUInt64BE(22), 2n ** 40n + 5n);
  assert.equal(e.readUInt16BE(30), 0x1ed);
  const b = encodeInfoBlockSize(Opt.GO, { minimum: 512, preferred: 4096, maximum: 32 << 20 });
  assert.deepEqual([b.readUInt16BE(20), b.readUInt32BE(22), b.readUInt32BE(26), b.readUInt32BE(30)], [3, 512, 4096, 32 << 20]);
  assert.equal(encodeExportNameReply(1, 1, true).length, 10);
  assert.equal(encodeExportNameReply(1, 1, false).length, 134);
});

test('INFO/GO and SET_META_CONTEXT data: decoded; truncated or trailing bytes are rejected', () => {
  const name = Buffer.from('data/vm1');
  const info = Buffer.alloc(4 + name.length + 2 + 4);
  info.writeUInt32BE(name.length, 0);
  name.copy(info, 4);
  info.writeUInt16BE(2, 4 + name.length);
  info.writeUInt16BE(3, 6 + name.length);
  info.writeUInt16BE(1, 8 + name.length);
  assert.deepEqual(decodeInfoRequest(info), { name: 'data/vm1', requests: [3, 1] });
  assert.throws(() => decodeInfoRequest(info.subarray(0, info.length - 1)), NbdProtocolError);
  assert.throws(() => decodeInfoRequest(Buffer.concat([info, Buffer.alloc(1)])), NbdProtocolError);
  const bogus = Buffer.alloc(4);
  bogus.writeUInt32BE(0xffffffff, 0);
  assert.throws(() => decodeInfoRequest(bogus), NbdProtocolError);
  const q = Buffer.from('base:allocation');
  const meta = Buffer.alloc(4 + name.length + 4 + 4 + q.length);
  meta.writeUInt32BE(name.length, 0);
  name.copy(meta, 4);
  meta.writeUInt32BE(1, 4 + name.length);
  meta.writeUInt32BE(q.length, 8 + name.length);
  q.copy(meta, 12 + name.length);
  assert.deepEqual(decodeMetaContextRequest(meta), { name: 'data/vm1', queries: ['base:allocation'] });
  assert.throws(() => decodeMetaContextRequest(meta.subarray(0, 20)), NbdProtocolError);
});

test('request headers round-trip (property), bad magic rejected', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.integer({ min: 0, max: 2 ** 50 }), fc.integer({ min: 0, max: 0xffffffff }), (flags, type, handle, offset, length) => {
      const r = { flags, type, handle, offset, length };
      assert.deepEqual(decodeRequestHeader(encodeRequestHeader(r)), r);
    }),
  );
  const b = encodeRequestHeader({ flags: 0, type: Cmd.READ, handle: 1n, offset: 0, length: 1 });
  assert.equal(b.readUInt32BE(0), REQUEST_MAGIC);
  b.writeUInt32BE(0x12345678, 0);
  assert.throws(() => decodeRequestHeader(b), NbdProtocolError);
});

test('replies: simple, data/hole chunks, errors, block status', () => {
  const s = encodeSimpleReply(0xdeadbeefn, NbdErrno.EINVAL);
  assert.deepEqual([s.readUInt32BE(0), s.readUInt32BE(4), s.readBigUInt64BE(8)], [0x67446698, 22, 0xdeadbeefn]);
  const d = encodeOffsetDataHeader(7n, 4096, 512, true);
  assert.deepEqual([d.readUInt32BE(0), d.readUInt16BE(4), d.readUInt16BE(6), d.readBigUInt64BE(8), d.readUInt32BE(16), Number(d.readBigUInt64BE(20))], [STRUCTURED_REPLY_MAGIC, 1, ReplyType.OFFSET_DATA, 7n, 520, 4096]);
  const h = encodeOffsetHole(7n, 8192, 1024, false);
  assert.deepEqual([h.readUInt16BE(4), h.readUInt16BE(6), h.readUInt32BE(16), Number(h.readBigUInt64BE(20)), h.readUInt32BE(28)], [0, ReplyType.OFFSET_HOLE, 12, 8192, 1024]);
  const e = encodeStructuredError(9n, NbdErrno.EIO, 'boom');
  assert.deepEqual([e.readUInt16BE(6), e.readUInt32BE(16), e.readUInt32BE(20), e.readUInt16BE(24), e.toString('utf8', 26)], [ReplyType.ERROR, 10, 5, 4, 'boom']);
  const bs = encodeBlockStatus(3n, 1, [{ length: 4096, flags: 0 }, { length: 8192, flags: 3 }], true);
  assert.deepEqual([bs.readUInt16BE(6), bs.readUInt32BE(16), bs.readUInt32BE(20), bs.readUInt32BE(24), bs.readUInt32BE(28), bs.readUInt32BE(32), bs.readUInt32BE(36)], [ReplyType.BLOCK_STATUS, 20, 1, 4096, 0, 8192, 3]);
});

test('mergeExtents joins neighbours with equal flags and drops empty ones; total length is kept (property)', () => {
  assert.deepEqual(mergeExtents([{ length: 1, flags: 0 }, { length: 2, flags: 0 }, { length: 0, flags: 3 }, { length: 4, flags: 3 }]), [{ length: 3, flags: 0 }, { length: 4, flags: 3 }]);
  fc.assert(
    fc.property(fc.array(fc.record({ length: fc.integer({ min: 0, max: 1 << 20 }), flags: fc.constantFrom(0, 3) })), (extents) => {
      const merged = mergeExtents(extents);
      assert.equal(merged.reduce((a, e) => a + e.length, 0), extents.reduce((a, e) => a + e.length, 0));
      for (let i = 1; i < merged.length; i++) assert.notEqual(merged[i]?.flags, merged[i - 1]?.flags);
    }),
  );
});

test('checkRange: beyond the end, misaligned when alignment is promised, too long, empty', () => {
  const r = (type: number, offset: number, length: number) => ({ flags: 0, type, handle: 0n, offset, length });
  const size = 1 << 20;
  assert.equal(checkRange(r(Cmd.READ, 0, 4096), size, 512, 32 << 20), undefined);
  assert.equal(checkRange(r(Cmd.READ, size - 512, 1024), size, 512, 32 << 20), NbdErrno.EINVAL);
  assert.equal(checkRange(r(Cmd.WRITE, size - 512, 1024), size, 512, 32 << 20), NbdErrno.ENOSPC);
  assert.equal(checkRange(r(Cmd.WRITE, 100, 512), size, 512, 32 << 20), NbdErrno.EINVAL);
  assert.equal(checkRange(r(Cmd.WRITE, 100, 512), size, 1, 32 << 20), undefined);
  assert.equal(checkRange(r(Cmd.READ, 0, 0), size, 1, 32 << 20), NbdErrno.EINVAL);
  assert.equal(checkRange(r(Cmd.WRITE, 0, 64 << 20), 1 << 30, 1, 32 << 20), NbdErrno.EOVERFLOW);
  assert.equal(checkRange(r(Cmd.TRIM, 0, 64 << 20), 1 << 30, 1, 32 << 20), undefined);
});
