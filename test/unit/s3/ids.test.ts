import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdSource } from '../../../gateway/s3/ids.js';

test('s3 ids: 24 hex digits, never repeated by one source, a fresh random prefix past 2^32 ids and per source', () => {
  const ids = new IdSource();
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) {
    const id = ids.next();
    assert.match(id, /^[0-9a-f]{24}$/);
    assert.ok(!seen.has(id), `repeated ${id}`);
    seen.add(id);
  }
  assert.notEqual(new IdSource().next().slice(0, 16), ids.next().slice(0, 16));
  const wrapping = new IdSource(0xffff_fffe);
  const [a, b, c] = [wrapping.next(), wrapping.next(), wrapping.next()];
  assert.equal(a.slice(16), 'fffffffe');
  assert.equal(b.slice(16), 'ffffffff');
  assert.equal(a.slice(0, 16), b.slice(0, 16));
  assert.equal(c.slice(16), '00000000');
  assert.notEqual(c.slice(0, 16), b.slice(0, 16), 'a new prefix once the counter wraps');
});
