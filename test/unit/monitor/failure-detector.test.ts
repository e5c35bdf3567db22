import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultTimeouts, emptyClusterMap, type ClusterMap } from '../../../src/index.js';
import { applyCommand } from '../../../monitor/map/commands.js';
import { FailureDetector } from '../../../monitor/map/failure-detector.js';

const timeouts = { ...defaultTimeouts, osdGraceMs: 1000, downOutIntervalMs: 5000, failureReportersMin: 2 };

function clusterWith(upOsds: number): ClusterMap {
  let map = applyCommand(emptyClusterMap('f'), { timestampMs: 1, init: { fsid: 'f', monitors: [] } }).map;
  for (let id = 0; id < upOsds; id++) {
    map = applyCommand(map, { timestampMs: 1, osdBoot: { id, address: `127.0.0.1:${7600 + id}`, host: `h${id}` } }).map;
  }
  return map;
}

test('failure detector: silence beyond the grace marks an OSD down; heartbeats keep it up', () => {
  const map = clusterWith(3);
  const detector = new FailureDetector(timeouts);
  detector.reset(0);
  assert.deepEqual(detector.decide(map, 0), [], 'the detector sees the map from the start');
  for (const id of [0, 1, 2]) detector.heartbeat(id, 500);
  assert.deepEqual(detector.decide(map, 1400), []);
  detector.heartbeat(0, 1400);
  detector.heartbeat(1, 1400);
  const commands = detector.decide(map, 1600);
  assert.deepEqual(commands.map((c) => c.osdDown?.ids), [[2]]);
});

test('failure detector: an OSD that just booted gets a full grace period, also after a reboot', () => {
  let map = clusterWith(1);
  const detector = new FailureDetector(timeouts);
  detector.reset(0);
  assert.deepEqual(detector.decide(map, 5000), [], 'first sighting at 5000');
  assert.equal(detector.decide(map, 6100).length, 1);
  map = applyCommand(map, { timestampMs: 7000, osdDown: { ids: [0] } }).map;
  map = applyCommand(map, { timestampMs: 8000, osdBoot: { id: 0, address: '127.0.0.1:7600', host: 'h0' } }).map;
  assert.deepEqual(detector.decide(map, 8000), [], 'the reboot is a new sighting');
  assert.equal(detector.decide(map, 9100).length, 1);
});

test('failure detector: a new leader gives every OSD a fresh grace period', () => {
  const map = clusterWith(2);
  const detector = new FailureDetector(timeouts);
  detector.reset(10_000);
  assert.deepEqual(detector.decide(map, 10_000), []);
  assert.deepEqual(detector.decide(map, 10_900), []);
  assert.equal(detector.decide(map, 11_100).length, 1);
});

test('failure detector: two distinct up reporters mark a peer down; one is not enough; a heartbeat clears reports', () => {
  const map = clusterWith(4);
  const detector = new FailureDetector(timeouts);
  detector.reset(0);
  detector.decide(map, 0);
  for (const id of [0, 1, 2, 3]) detector.heartbeat(id, 100);
  detector.report(3, 0, true, 200);
  detector.report(3, 0, true, 250);
  assert.deepEqual(detector.decide(map, 300), [], 'one reporter, even twice');
  detector.report(3, 1, true, 300);
  assert.deepEqual(detector.decide(map, 350).map((c) => c.osdDown?.ids), [[3]]);
  detector.heartbeat(3, 400);
  assert.deepEqual(detector.decide(map, 450), [], 'the OSD spoke up after the reports');
  detector.report(3, 0, true, 500);
  detector.report(3, 1, true, 500);
  detector.report(3, 1, false, 510);
  assert.deepEqual(detector.decide(map, 520), [], 'a withdrawn report no longer counts');
});

test('failure detector: down OSDs go out after downOutIntervalMs unless noout; nodown suppresses down', () => {
  let map = clusterWith(2);
  map = applyCommand(map, { timestampMs: 1000, osdDown: { ids: [1] } }).map;
  const detector = new FailureDetector(timeouts);
  detector.reset(1000);
  detector.heartbeat(0, 5500);
  assert.deepEqual(detector.decide(map, 5500), []);
  assert.deepEqual(detector.decide(map, 6100).map((c) => c.osdOut), [{ ids: [1], reason: 'auto' }]);
  const noout = applyCommand(map, { timestampMs: 1000, flagSet: { flag: 'noout', on: true } }).map;
  assert.deepEqual(detector.decide(noout, 6100), []);
  const nodown = applyCommand(clusterWith(2), { timestampMs: 1, flagSet: { flag: 'nodown', on: true } }).map;
  assert.deepEqual(detector.decide(nodown, 100_000).filter((c) => c.osdDown), []);
});
