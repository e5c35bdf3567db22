import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  StorageError,
  decodeFrameHeader,
  encodeFrameHead,
  type FrameHeader,
  type FrameKind,
} from '../../../src/index.js';
import { FrameParser } from '../../../src/net/messenger-frame.js';
import { seededRandom } from '../../helpers/seed.js';

const limits = { headerBytesMax: 64 * 1024, payloadBytesMax: 1024 * 1024 };

test('messenger frame: header fields round-trip; defaults stay empty', () => {
  const header: FrameHeader = {
    id: 0xffff_ffff,
    kind: 'response',
    op: 'osd.op',
    errorCode: 'NOT_FOUND',
    errorMessage: 'no such object',
    opHeader: Buffer.from([1, 2, 3]),
  };
  const head = encodeFrameHead(header, 5);
  assert.deepEqual([...head.subarray(0, 4)], [0x53, 0x4d, 1, 0]);
  assert.equal(head.readUInt32BE(4), head.length - 12);
  assert.equal(head.readUInt32BE(8), 5);
  const decoded = decodeFrameHeader(head.subarray(12));
  assert.deepEqual({ ...decoded, opHeader: Buffer.from(decoded.opHeader) }, header);

  const bare = decodeFrameHeader(encodeFrameHead({ ...header, id: 0, op: '', errorCode: '', errorMessage: '', opHeader: new Uint8Array(0) }, 0).subarray(12));
  assert.deepEqual([bare.id, bare.op, bare.errorCode, bare.opHeader.length], [0, '', '', 0]);
  assert.throws(() => decodeFrameHeader(Buffer.from([0x10, 0x00])), (e: unknown) => e instanceof StorageError && e.code === 'CORRUPT_DATA');
});

test('messenger frame: any split of a frame stream into chunks yields the same frames', (t) => {
  const random = seededRandom(t);
  const kinds: FrameKind[] = ['request', 'response', 'oneWay', 'handshake'];
  for (let round = 0; round < 30; round++) {
    const frames = Array.from({ length: random.int(1, 20) }, (_, i) => ({
      header: {
        id: i + 1,
        kind: random.pick(kinds),
        op: `op${random.int(0, 9)}`,
        errorCode: '',
        errorMessage: '',
        opHeader: random.bytes(random.int(0, 40)),
      } satisfies FrameHeader,
      payload: random.bytes(random.pick([0, 1, 100, 5000, 70_000, 300_000])),
    }));
    const stream = Buffer.concat(frames.flatMap((f) => [encodeFrameHead(f.header, f.payload.length), f.payload]));
    const parser = new FrameParser(limits);
    const out: { id: number; opHeader: Buffer; payload: Buffer }[] = [];
    let at = 0;
    while (at < stream.length) {
      const size = random.pick([1, 7, 12, 100, 4096, 65_536, 200_000]);
      parser.push(stream.subarray(at, at + size));
      at += size;
      for (let f = parser.next(); f !== undefined; f = parser.next()) {
        assert.ok(f.payload !== undefined);
        out.push({ id: f.header.id, opHeader: Buffer.from(f.header.opHeader), payload: f.payload });
      }
    }
    assert.equal(out.length, frames.length);
    frames.forEach((f, i) => {
      assert.equal(out[i]?.id, f.header.id);
      assert.ok(out[i]?.opHeader.equals(f.header.opHeader));
      assert.ok(out[i]?.payload.equals(f.payload), `round ${round} frame ${i}`);
    });
    assert.equal(parser.bufferedBytes, 0);
  }
});

test('messenger frame: reads in place (scratch buffer, then straight into large payloads) yield the same frames', (t) => {
  const random = seededRandom(t);
  for (let round = 0; round < 30; round++) {
    const frames = Array.from({ length: random.int(1, 12) }, (_, i) => ({
      id: i + 1,
      payload: random.bytes(random.pick([0, 3, 5000, 65_535, 65_536, 70_000, 300_000])),
    }));
    const stream = Buffer.concat(
      frames.flatMap((f) => [encodeFrameHead({ id: f.id, kind: 'request', op: 'w', errorCode: '', errorMessage: '', opHeader: new Uint8Array(0) }, f.payload.length), f.payload]),
    );
    const parser = new FrameParser(limits);
    const out: Buffer[] = [];
    let at = 0;
    let direct = 0;
    while (at < stream.length) {
      // A socket read: up to the target's length, often less; the receiver does not always parse at once (paused).
      const target = parser.readTarget();
      const n = Math.min(target.length, stream.length - at, random.pick([1, 12, 999, 4096, 65_536, 1 << 20]));
      stream.copy(target, 0, at, at + n);
      if (target.length !== 64 * 1024) direct++;
      parser.received(target, n);
      at += n;
      if (random.int(0, 3) === 0) continue;
      for (let f = parser.next(); f !== undefined; f = parser.next()) out.push(Buffer.from(f.payload ?? Buffer.alloc(0)));
    }
    for (let f = parser.next(); f !== undefined; f = parser.next()) out.push(Buffer.from(f.payload ?? Buffer.alloc(0)));
    assert.equal(out.length, frames.length, `round ${round}`);
    frames.forEach((f, i) => assert.ok(out[i]?.equals(f.payload), `round ${round} frame ${i}`));
    assert.equal(parser.bufferedBytes, 0);
    if (frames.some((f) => f.payload.length >= 300_000)) assert.ok(direct > 0, `round ${round}: no read went straight into a payload`);
  }
  const parser = new FrameParser(limits);
  assert.throws(() => parser.received(Buffer.alloc(10), 10), /did not hand out/);
});

test('messenger frame: an oversized payload is reported with its header and skipped, whatever the chunking', (t) => {
  const random = seededRandom(t);
  const small = { headerBytesMax: 1024, payloadBytesMax: 1000 };
  const head = (id: number, bytes: number) =>
    encodeFrameHead({ id, kind: 'request', op: 'x', errorCode: '', errorMessage: '', opHeader: new Uint8Array(0) }, bytes);
  const stream = Buffer.concat([head(1, 5000), random.bytes(5000), head(2, 3), Buffer.from('abc')]);
  for (const size of [1, 13, 999, 5000, stream.length]) {
    const parser = new FrameParser(small);
    const out: string[] = [];
    for (let at = 0; at < stream.length; at += size) {
      parser.push(stream.subarray(at, at + size));
      for (let f = parser.next(); f !== undefined; f = parser.next()) {
        out.push(f.payload === undefined ? `${f.header.id}:skipped ${f.discardedPayloadBytes}` : `${f.header.id}:${f.payload}`);
      }
    }
    assert.deepEqual(out, ['1:skipped 5000', '2:abc'], `chunks of ${size}`);
  }
});
