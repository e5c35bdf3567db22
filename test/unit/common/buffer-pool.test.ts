import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BufferPool, pooledBytesMin, sizeClass } from '../../../src/common/index.js';

const MiB = 1024 * 1024;

test('buffer pool: size classes hold the size and waste less than half of it', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 256 * MiB }), (bytes) => {
      const size = sizeClass(bytes);
      assert.ok(size >= bytes);
      assert.ok(size === pooledBytesMin || size < 1.5 * bytes, `${bytes} -> ${size}`);
    }),
  );
  assert.equal(sizeClass(4 * MiB), 4 * MiB);
});

test('buffer pool: a released buffer is handed out again, at the length asked', () => {
  const pool = new BufferPool();
  const a = pool.acquire(4 * MiB);
  assert.equal(a.length, 4 * MiB);
  pool.release(a);
  const b = pool.acquire(4 * MiB - 100);
  assert.equal(b.length, 4 * MiB - 100);
  assert.equal(b.buffer, a.buffer);
  assert.deepEqual(pool.stats(), { acquired: 2, reused: 1, freeBytes: 0 });
});

test('buffer pool: a buffer goes back only when its last holder releases it, views included', () => {
  const pool = new BufferPool();
  const a = pool.acquire(MiB);
  assert.ok(pool.retain(a.subarray(10, 20)));
  pool.release(a);
  assert.notEqual(pool.acquire(MiB).buffer, a.buffer, 'still held by the retained view');
  pool.release(a.subarray(5));
  assert.equal(pool.acquire(MiB).buffer, a.buffer);
});

test('buffer pool: extra releases and foreign buffers are ignored; one buffer never has two owners', () => {
  const pool = new BufferPool();
  const a = pool.acquire(MiB);
  pool.release(a);
  pool.release(a);
  pool.release(Buffer.alloc(MiB));
  assert.equal(pool.retain(Buffer.alloc(MiB)), false);
  const b = pool.acquire(MiB);
  const c = pool.acquire(MiB);
  assert.notEqual(b.buffer, c.buffer);
  // Small buffers are not pooled at all.
  const small = pool.acquire(pooledBytesMin - 1);
  assert.equal(pool.retain(small), false);
});

test('buffer pool: free lists stay within their bound and are dropped when idle', async () => {
  const pool = new BufferPool({ freeBytesMax: 2 * MiB, idleMs: 30 });
  const held = [pool.acquire(MiB), pool.acquire(MiB), pool.acquire(MiB)];
  for (const buffer of held) pool.release(buffer);
  assert.equal(pool.stats().freeBytes, 2 * MiB);
  for (let i = 0; i < 100 && pool.stats().freeBytes > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(pool.stats().freeBytes, 0);
});

test('buffer pool: pooled buffers start aligned for O_DIRECT, and only views at aligned offsets of them count', () => {
  const pool = new BufferPool();
  const a = pool.acquire(MiB + 100);
  assert.ok(pool.startsAligned(a, 4096));
  assert.ok(pool.startsAligned(a.subarray(8192), 4096));
  assert.ok(!pool.startsAligned(a.subarray(512), 4096));
  assert.ok(pool.startsAligned(a.subarray(512), 512));
  assert.ok(!pool.startsAligned(a, 128 * 1024), 'no promise past the 64 KiB a WebAssembly page gives');
  assert.ok(!pool.startsAligned(Buffer.alloc(MiB), 4096), 'a buffer from elsewhere may be aligned by chance; it does not count');
  assert.ok(!pool.startsAligned(pool.acquire(100), 4096), 'small buffers are not pooled');
  // The 96 KiB class is rounded to whole 64 KiB pages, and its buffers still come back to it.
  const b = pool.acquire(80 * 1024);
  pool.release(b);
  assert.equal(pool.acquire(90 * 1024).buffer, b.buffer);
});
