import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StorageError, defaultTimeouts, parseClusterConfig } from '../../../src/index.js';

const good = { fsid: 'a1b2c3d4-0000-4000-8000-000000000000', monitors: [{ name: 'a', address: '127.0.0.1:7400' }] };

test('config: defaults fill what the file leaves out', () => {
  const config = parseClusterConfig(JSON.stringify({ ...good, timeouts: { osdGraceMs: 3000 } }));
  assert.equal(config.timeouts.osdGraceMs, 3000);
  assert.equal(config.timeouts.tickMs, defaultTimeouts.tickMs);
  assert.equal(config.monitors[0]?.address, '127.0.0.1:7400');
});

test('config: mistakes are named, not defaulted', () => {
  const cases: [unknown, RegExp][] = [
    ['{', /not valid JSON/],
    [{ ...good, fsid: 'NOPE' }, /fsid/],
    [{ ...good, monitors: [] }, /1 to 7/],
    [{ ...good, monitors: [{ name: 'a', address: 'localhost' }] }, /host:port/],
    [{ ...good, monitors: [{ name: 'a', address: 'h:1' }, { name: 'a', address: 'h:2' }] }, /unique/],
    [{ ...good, timeouts: { osdGraceMS: 1 } }, /unknown key.*osdGraceMS/],
    [{ ...good, timeouts: { tickMs: -5 } }, /positive integer/],
    [{ ...good, timeouts: { electionTicks: 1, heartbeatTicks: 1 } }, /electionTicks/],
    [{ ...good, extra: 1 }, /unknown key/],
  ];
  for (const [input, pattern] of cases) {
    assert.throws(
      () => parseClusterConfig(typeof input === 'string' ? input : JSON.stringify(input)),
      (e: unknown) => e instanceof StorageError && e.code === 'INVALID_ARGUMENT' && pattern.test(e.message),
      String(pattern),
    );
  }
});
