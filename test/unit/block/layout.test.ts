import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  cloneObject,
  dataObject,
  decodeHeader,
  decodeMeta,
  encodeHeader,
  headerObject,
  parseImageSpec,
  parseSize,
  pieces,
  resolveSnapshot,
  unreferencedClones,
  type ImageHeader,
  type ObjectMeta,
} from '../../../src/block/index.js';

test('pieces cover a range exactly, in order, never crossing an object (property, against a byte loop)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1 << 16 }), fc.integer({ min: 0, max: 1 << 14 }), fc.constantFrom(512, 4096, 8192), (offset, length, objectSize) => {
      const ps = pieces(offset, length, objectSize);
      let at = 0;
      for (const p of ps) {
        assert.equal(p.bufferOffset, at);
        assert.ok(p.length > 0 && p.objectOffset + p.length <= objectSize);
        for (const byte of [0, p.length - 1]) {
          const absolute = offset + p.bufferOffset + byte;
          assert.equal(Math.floor(absolute / objectSize), p.index);
          assert.equal(absolute % objectSize, p.objectOffset + byte);
        }
        at += p.length;
      }
      assert.equal(at, length);
    }),
  );
});

test('object names sort by offset; header names cannot collide with data objects', () => {
  assert.equal(dataObject('vm', 255), 'vm.00000000000000ff');
  assert.equal(cloneObject('vm', 1, 3), 'vm.0000000000000001@3');
  assert.equal(headerObject('vm'), 'vm.header');
  assert.ok(dataObject('vm', 9) < dataObject('vm', 10));
  assert.throws(() => parseImageSpec('data/x.header'), /image names/);
  assert.throws(() => parseImageSpec('data'), /POOL\/IMAGE/);
  assert.deepEqual(parseImageSpec('data/vm@s1'), { pool: 'data', image: 'vm', snap: 's1' });
});

test('header round-trips with its version marker; other versions and garbage are refused', () => {
  const h: ImageHeader = { name: 'vm', size: 1 << 30, objectSize: 4 << 20, features: ['layering'], createdMs: 1, snapSeq: 2, snapshots: [{ id: 2, name: 's', size: 1 << 30, createdMs: 2 }], children: ['data/c@2'], parent: { pool: 'p', image: 'i', snapId: 1, overlap: 5 } };
  assert.deepEqual(decodeHeader(encodeHeader(h)), h);
  assert.equal(JSON.parse(encodeHeader(h).toString()).v, 1);
  assert.throws(() => decodeHeader(Buffer.from(JSON.stringify({ ...h, v: 9 }))), /format 9/);
  assert.throws(() => decodeHeader(Buffer.from('nope')), /not JSON/);
});

test('sizes: binary units', () => {
  assert.equal(parseSize('10G'), 10 * 2 ** 30);
  assert.equal(parseSize('4M'), 4 * 2 ** 20);
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize('1.5K'), 1536);
  assert.throws(() => parseSize('ten'), /size/);
});

/**
 * The copy-on-write rules against a dumb model: a history of writes and snapshots on one object, where the model
 * keeps every snapshot's content directly and the real metadata keeps only clones made on first write after a snapshot.
 */
test('resolveSnapshot finds what every snapshot saw (property, against a model that copies everything)', () => {
  type Step = { kind: 'write'; value: number } | { kind: 'snap' } | { kind: 'free' };
  const step = fc.oneof(fc.record({ kind: fc.constant('write' as const), value: fc.integer({ min: 1, max: 1000 }) }), fc.constant({ kind: 'snap' as const }), fc.constant({ kind: 'free' as const }));
  fc.assert(
    fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
      let snapSeq = 0;
      let head: number | undefined; // the model's current content (undefined: nothing)
      const model = new Map<number, number | undefined>(); // snapshot id -> content it saw
      // The real layout: head object with meta, clones by id.
      let exists = false;
      let content: number | undefined;
      let meta: ObjectMeta = decodeMeta(undefined);
      const clones = new Map<number, number>();
      const preserve = () => {
        if (!exists || !Array.from(model.keys()).some((s) => s > meta.seq) || meta.clones.some((c) => c.id === snapSeq)) return;
        if (meta.absent) meta.clones.push({ id: snapSeq, born: meta.born, absent: true });
        else {
          clones.set(snapSeq, content as number);
          meta.clones.push({ id: snapSeq, born: meta.born });
        }
      };
      for (const s of steps) {
        if (s.kind === 'snap') {
          snapSeq++;
          model.set(snapSeq, head);
        } else if (s.kind === 'write') {
          head = s.value;
          preserve();
          const live = exists && !meta.absent;
          meta = { seq: snapSeq, born: live ? meta.born : snapSeq, clones: meta.clones };
          exists = true;
          content = s.value;
        } else {
          head = undefined;
          if (!exists) continue;
          preserve();
          if (meta.clones.length > 0) meta = { ...meta, seq: snapSeq, absent: true };
          else exists = false;
          content = undefined;
        }
      }
      for (const [id, saw] of model) {
        const where = resolveSnapshot(exists ? meta : undefined, id);
        const got = where.from === 'clone' ? clones.get(where.id) : where.from === 'head' ? content : undefined;
        assert.equal(got, saw, `snapshot ${id}`);
      }
    }),
  );
});

test('unreferencedClones: a clone stays while any snapshot resolves to it', () => {
  const meta: ObjectMeta = { seq: 5, born: 0, clones: [{ id: 2, born: 0 }, { id: 4, born: 2 }] };
  assert.deepEqual(unreferencedClones(meta, [1, 2, 3, 4]), []);
  assert.deepEqual(unreferencedClones(meta, [1, 4]), []);
  assert.deepEqual(unreferencedClones(meta, [3]), [{ id: 2, born: 0 }]);
  assert.deepEqual(unreferencedClones(meta, [5]), meta.clones);
});
