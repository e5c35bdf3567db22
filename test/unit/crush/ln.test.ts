import { test } from 'node:test';
import assert from 'node:assert/strict';
import { negLog, negLogFracBits } from '../../../src/crush/index.js';
import { log2Constant } from '../../../src/crush/ln.js';

test('negLog: 65536 entries, strictly decreasing, never 0', () => {
  assert.equal(negLog.length, 65536);
  for (let u = 1; u < 65536; u++) assert.ok(negLog[u]! < negLog[u - 1]!, `negLog[${u}]`);
  assert.ok(negLog[65535]! > 0);
});

test('negLog: known values (a change moves data in every cluster)', () => {
  assert.equal(negLogFracBits, 24);
  assert.equal(negLog[0], 17 * 2 ** 24);
  assert.equal(negLog[1], 258621413);
  assert.equal(negLog[12345], 40404608);
  assert.equal(negLog[32767], 16777585);
  assert.equal(negLog[65535], 184);
});

test('negLog agrees with Math.log2 (the dumb reference) within one unit of 2^-24', () => {
  assert.equal(log2Constant, Math.floor(2 ** 31 * Math.LOG2E));
  let worst = 0;
  for (let u = 0; u < 65536; u++) {
    const exact = 2 ** 24 * (17 - Math.log2(2 * u + 1));
    worst = Math.max(worst, Math.abs(negLog[u]! - exact));
  }
  assert.ok(worst <= 1.5, `largest difference ${worst}`);
});
