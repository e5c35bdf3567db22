import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StorageError, tuneGcForBulkData } from '../../../src/common/index.js';

test('SHOAL_GC_HEAP_GROWING_PERCENT: integers 0..1000 are taken; anything else is a clear INVALID_ARGUMENT', () => {
  for (const value of ['0', '200', '1000', '']) assert.doesNotThrow(() => tuneGcForBulkData(0, { SHOAL_GC_HEAP_GROWING_PERCENT: value }));
  assert.doesNotThrow(() => tuneGcForBulkData(200, {}));
  for (const value of ['-1', '1001', '2.5', 'lots']) {
    assert.throws(
      () => tuneGcForBulkData(0, { SHOAL_GC_HEAP_GROWING_PERCENT: value }),
      (e: unknown) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT' && e.message.includes(JSON.stringify(value)),
    );
  }
});
