/**
 * src/block against a real cluster (`shoal up`), through its API: thin allocation, several snapshots and what each
 * sees after later writes and discards, rollback to an older one, snapshot removal freeing its copies, resize,
 * clones of clones with copy-up, discard hiding parent data, flatten, and the lock between two writers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BlockImages, ObjectClient, parseClusterConfig, type Image } from '../../src/index.js';
import { startNbdCluster, type NbdCluster } from './nbd-cluster.js';

let cluster: NbdCluster;
let client: ObjectClient;
let images: BlockImages;
const K = 1024;
const objectSize = 64 * K;

before(async () => {
  cluster = await startNbdCluster('nbd-images');
  client = new ObjectClient(parseClusterConfig(readFileSync(cluster.conf, 'utf8')));
  await client.start();
  images = new BlockImages(client);
});

after(async () => {
  await client?.stop();
  await cluster?.stop();
});

async function objectsOf(name: string): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.list('data', cursor === undefined ? {} : { cursor });
    names.push(...page.names.filter((n) => n.startsWith(`${name}.`) && n !== `${name}.header`));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return names.sort();
}

async function readAt(image: Image, offset: number, length: number): Promise<Buffer> {
  return image.read(offset, length);
}

test('thin: nothing stored until written; writes across objects read back; discard frees whole objects', async () => {
  await images.create('data', 'thin', 1024 * K, { objectSize });
  await images.withImage('data', 'thin', {}, async (img) => {
    assert.deepEqual(await objectsOf('thin'), []);
    assert.deepEqual(await readAt(img, 0, 200 * K), Buffer.alloc(200 * K));
    const data = randomBytes(150 * K);
    await img.write(50 * K, data); // objects 0..3
    assert.deepEqual(await readAt(img, 50 * K, 150 * K), data);
    assert.deepEqual(await objectsOf('thin'), ['thin.0000000000000000', 'thin.0000000000000001', 'thin.0000000000000002', 'thin.0000000000000003']);
    const map = await img.allocation(0, 1024 * K);
    // Allocation is per object: from the start of object 0 to the end of what object 3 holds.
    assert.deepEqual(map.filter((e) => !e.hole).map((e) => [e.offset, e.length]), [[0, 64 * K], [64 * K, 64 * K], [128 * K, 64 * K], [192 * K, 8 * K]]);
    await img.zero(64 * K, 128 * K, true); // objects 1 and 2 whole: removed
    assert.deepEqual(await objectsOf('thin'), ['thin.0000000000000000', 'thin.0000000000000003']);
    const expect = Buffer.concat([data.subarray(0, 14 * K), Buffer.alloc(128 * K), data.subarray(142 * K)]);
    assert.deepEqual(await readAt(img, 50 * K, 150 * K), expect);
    await img.zero(0, 60 * K, false); // NO_HOLE: zeros stored
    assert.deepEqual(await readAt(img, 0, 64 * K), Buffer.concat([Buffer.alloc(60 * K), data.subarray(10 * K, 14 * K)]));
  });
});

test('snapshots: each sees its moment through later writes, discards and resizes; rollback to an older one; removal frees copies', async () => {
  await images.create('data', 'snaps', 512 * K, { objectSize });
  const a = randomBytes(512 * K);
  const b = randomBytes(512 * K);
  await images.withImage('data', 'snaps', {}, async (img) => {
    await img.write(0, a.subarray(0, 256 * K)); // objects 0-3 written, 4-7 holes
    await img.snapCreate('s1');
    await img.write(100 * K, b.subarray(0, 200 * K)); // changes objects 1-4 (4 was a hole at s1)
    await img.zero(0, 64 * K, true); // frees object 0
    await img.snapCreate('s2');
    await img.write(0, b.subarray(0, 64 * K)); // object 0 again
    await img.resize(128 * K); // shrink: objects 2.. gone from the head
    await img.resize(512 * K); // grow back: zeros
    assert.deepEqual(await readAt(img, 128 * K, 384 * K), Buffer.alloc(384 * K));
  });
  const s1 = Buffer.concat([a.subarray(0, 256 * K), Buffer.alloc(256 * K)]);
  const s2 = Buffer.from(s1);
  s2.fill(0, 0, 64 * K);
  b.copy(s2, 100 * K, 0, 200 * K);
  for (const [snap, want] of [['s1', s1], ['s2', s2]] as const) {
    const opened = await images.open('data', 'snaps', { snap });
    assert.equal(opened.image.readOnly, true);
    assert.deepEqual(await opened.image.read(0, 512 * K), want, `snapshot ${snap}`);
    await assert.rejects(opened.image.write(0, Buffer.alloc(512)), /read-only/);
    await opened.close();
  }
  await images.withImage('data', 'snaps', {}, async (img) => {
    await img.snapRollback('s1');
    assert.deepEqual(await img.read(0, 512 * K), s1);
    const withClones = (await objectsOf('snaps')).filter((n) => n.includes('@')).length;
    assert.ok(withClones > 0);
    await img.snapRemove('s2');
    await img.snapRemove('s1');
    assert.deepEqual((await objectsOf('snaps')).filter((n) => n.includes('@')), [], 'no copies left once no snapshot needs them');
    assert.deepEqual(await img.read(0, 512 * K), s1, 'the head is untouched by snapshot removal');
  });
});

test('clones: read through, copy-up on write, discard hides the parent, clone of a clone, flatten, protected snapshots', async () => {
  await images.create('data', 'base', 256 * K, { objectSize });
  const base = randomBytes(256 * K);
  await images.withImage('data', 'base', {}, async (img) => {
    await img.write(0, base);
    await img.snapCreate('gold');
  });
  await images.clone('data', 'base', 'gold', 'data', 'child');
  const patch = randomBytes(10 * K);
  let childView = Buffer.alloc(0);
  await images.withImage('data', 'child', {}, async (img) => {
    assert.deepEqual(await img.read(0, 256 * K), base);
    assert.deepEqual(await objectsOf('child'), []);
    await img.write(70 * K, patch); // copy-up of object 1 only
    assert.deepEqual(await objectsOf('child'), ['child.0000000000000001']);
    await img.zero(128 * K, 64 * K, true); // object 2: parent data hidden by an empty object
    childView = Buffer.from(base);
    patch.copy(childView, 70 * K);
    childView.fill(0, 128 * K, 192 * K);
    assert.deepEqual(await img.read(0, 256 * K), childView);
    await img.snapCreate('c1');
  });
  // The parent keeps changing; the clone does not see it.
  await images.withImage('data', 'base', {}, (img) => img.write(0, Buffer.alloc(256 * K, 0xee)));
  await images.clone('data', 'child', 'c1', 'data', 'grandchild');
  await images.withImage('data', 'grandchild', {}, async (img) => {
    assert.deepEqual(await img.read(0, 256 * K), childView);
  });
  await assert.rejects(images.snapshotRequest('data', 'base', { op: 'snap-rm', name: 'gold' }), /has clones \(data\/child@1\)/);
  await images.flatten('data', 'grandchild');
  await images.flatten('data', 'child');
  const info = await images.info('data', 'child');
  assert.equal(info.header.parent, undefined);
  await images.withImage('data', 'grandchild', {}, async (img) => assert.deepEqual(await img.read(0, 256 * K), childView));
  // The child's own snapshot still reads through the parent it had when taken, so the parent keeps that reference.
  const c1 = await images.open('data', 'child', { snap: 'c1' });
  assert.deepEqual(await c1.image.read(0, 256 * K), childView);
  await c1.close();
});

test('the exclusive lock: a second writer is refused with the holder named; released on close', async () => {
  await images.create('data', 'locky', 64 * K, { objectSize });
  const first = await images.open('data', 'locky', { owner: 'writer-one' });
  await assert.rejects(images.open('data', 'locky', { owner: 'writer-two' }), /BUSY|locked by writer-one \(lease renewed/);
  await assert.rejects(images.open('data', 'locky', { owner: 'writer-two', breakDeadLock: true }), /locked by writer-one/);
  const reader = await images.open('data', 'locky', { readOnly: true });
  await first.image.write(0, Buffer.alloc(512, 1));
  assert.deepEqual(await reader.image.read(0, 512), Buffer.alloc(512, 1));
  await reader.close();
  await first.close();
  const second = await images.open('data', 'locky', { owner: 'writer-two' });
  await second.close();
  await images.remove('data', 'locky');
  assert.deepEqual(await images.list('data').then((l) => l.includes('locky')), false);
});
