import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random, isStorageError } from '../../../src/common/index.js';
import { RaftNode, type Message, type PersistedState, type RaftConfig } from '../../../src/consensus/index.js';
import { TestCluster, encodeState, entry, logWithTerms } from './cluster.js';

const abc = ['a', 'b', 'c'];

function config(id: string, extra: Partial<RaftConfig> = {}): RaftConfig {
  return { id, voters: abc, electionTicks: 10, heartbeatTicks: 1, random: new Random(7), preVote: true, checkQuorum: true, ...extra };
}

function message(partial: Partial<Message> & Pick<Message, 'type' | 'from' | 'to' | 'term'>): Message {
  return { logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, snapshot: null, ...partial };
}

/** The leader compacts its log up to what it applied, as an application would after enough entries. */
function compactAll(c: TestCluster, id: string): number {
  const node = c.node(id);
  const record = c.record(id);
  const snapshot = node.compact(node.appliedIndex, encodeState(record.state));
  record.store.snapshot = snapshot;
  record.store.entries = record.store.entries.filter((e) => e.index > snapshot.index);
  return snapshot.index;
}

test('Raft §7: a lagging follower is sent the leader’s snapshot, loads it, then receives the entries after it', () => {
  const c = new TestCluster(abc);
  c.elect('a');
  c.heartbeats('a');
  c.crash('c');
  for (let i = 0; i < 20; i++) c.propose('a', `p${i}`);
  c.deliverAll();
  c.heartbeats('a');
  const snapshotIndex = compactAll(c, 'a');
  assert.equal(snapshotIndex, 21);
  assert.equal(c.node('a').snapshotIndex, 21);
  for (let i = 20; i < 23; i++) c.propose('a', `p${i}`);
  c.restart('c');
  c.sent.length = 0;
  c.heartbeats('a', 5);
  const snapshots = c.sent.filter((m) => m.type === 'snapshot');
  assert.equal(snapshots.length, 1, 'one snapshot, not one per heartbeat');
  assert.equal(snapshots[0]?.to, 'c');
  const store = c.record('c').store;
  assert.equal(store.snapshot?.index, 21);
  assert.deepEqual(store.entries.map((e) => e.index), [22, 23, 24]);
  assert.equal(c.node('c').commitIndex, 24);
  assert.deepEqual(c.record('c').state, c.record('a').state);
  assert.equal(c.record('c').state.length, 23);
});

test('Raft §7: a lost snapshot is sent again after an election timeout', () => {
  const c = new TestCluster(abc);
  c.elect('a');
  c.heartbeats('a');
  c.crash('c');
  for (let i = 0; i < 5; i++) c.propose('a', `p${i}`);
  c.deliverAll();
  c.heartbeats('a');
  compactAll(c, 'a');
  c.restart('c');
  let dropped = 0;
  c.filter = (m) => !(m.type === 'snapshot' && dropped++ === 0);
  c.sent.length = 0;
  c.heartbeats('a', 30);
  assert.equal(c.sent.filter((m) => m.type === 'snapshot').length, 2);
  assert.deepEqual(c.record('c').state, c.record('a').state);
});

test('Raft §7 (Figure 13 step 6): a follower holding the snapshot’s last entry keeps the entries after it', () => {
  const node = new RaftNode(config('b'), logWithTerms([1, 1, 1, 1, 1], 1, 2));
  node.step(
    message({
      type: 'snapshot',
      from: 'a',
      to: 'b',
      term: 1,
      index: 3,
      logTerm: 1,
      snapshot: { index: 3, term: 1, voters: abc, data: new Uint8Array([9]) },
    }),
  );
  const rd = node.ready();
  assert.equal(rd.snapshot, null, 'nothing to load: the entries are here');
  assert.equal(node.commitIndex, 3);
  assert.equal(node.lastIndex, 5);
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [1, 2, 3]);
  assert.deepEqual(rd.messages.map((m) => [m.type, m.index, m.reject]), [['append-response', 3, false]]);
});

test('Raft §7: a snapshot covering no more than the follower’s commit is acknowledged and ignored', () => {
  const node = new RaftNode(config('b'), logWithTerms([1, 1, 1, 1], 1, 4));
  node.step(
    message({
      type: 'snapshot',
      from: 'a',
      to: 'b',
      term: 1,
      index: 2,
      logTerm: 1,
      snapshot: { index: 2, term: 1, voters: abc, data: new Uint8Array([9]) },
    }),
  );
  const rd = node.ready();
  assert.equal(rd.snapshot, null);
  assert.equal(node.lastIndex, 4);
  assert.deepEqual(rd.messages.map((m) => [m.type, m.index]), [['append-response', 4]]);
});

test('Raft §7: a snapshot that conflicts with the follower’s log replaces the whole log', () => {
  const node = new RaftNode(config('b'), logWithTerms([1, 2, 2, 2], 2, 1));
  const snapshot = { index: 3, term: 3, voters: abc, data: new Uint8Array([9]) };
  node.step(message({ type: 'snapshot', from: 'a', to: 'b', term: 3, index: 3, logTerm: 3, snapshot }));
  const rd = node.ready();
  assert.equal(rd.snapshot, snapshot);
  assert.deepEqual(rd.entries, []);
  assert.deepEqual(rd.committedEntries, [], 'entries below the snapshot are never delivered');
  assert.equal(node.lastIndex, 3);
  assert.equal(node.commitIndex, 3);
  assert.deepEqual(rd.hardState, { term: 3, vote: '', commit: 3 });
  node.advance(rd);
  assert.equal(node.appliedIndex, 3);
  assert.equal(node.hasReady(), false);
});

test('compact refuses an index that is not applied yet or not after the current snapshot', () => {
  const c = new TestCluster(abc);
  c.elect('a');
  c.propose('a', 'x');
  c.deliverAll();
  c.heartbeats('a');
  const a = c.node('a');
  const data = new Uint8Array(0);
  assert.throws(() => a.compact(a.appliedIndex + 1, data), (e) => isStorageError(e, 'INVALID_ARGUMENT'));
  a.compact(a.appliedIndex, data);
  assert.throws(() => a.compact(a.appliedIndex, data), (e) => isStorageError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => a.compact(0, data), (e) => isStorageError(e, 'INVALID_ARGUMENT'));
});

test('restart from PersistedState: term, vote, log and commit survive; the application replays after its snapshot', () => {
  const c = new TestCluster(abc);
  c.elect('b');
  for (let i = 0; i < 10; i++) c.propose('b', `p${i}`);
  c.deliverAll();
  c.heartbeats('b');
  compactAll(c, 'b');
  for (let i = 10; i < 15; i++) c.propose('b', `p${i}`);
  c.deliverAll();
  c.heartbeats('b');
  const before = new Map(abc.map((id) => [id, { ...c.node(id).status(), state: c.record(id).state.slice() }]));
  for (const id of abc) c.crash(id);
  for (const id of abc) c.restart(id);
  for (const id of abc) {
    const was = before.get(id);
    const now = c.node(id);
    assert.ok(was);
    assert.equal(now.term, was.term, id);
    assert.equal(now.status().vote, was.vote, id);
    assert.equal(now.lastIndex, was.lastIndex, id);
    assert.equal(now.commitIndex, was.commit, id);
    assert.equal(now.role, 'follower', 'everyone restarts as a follower');
    assert.deepEqual(c.record(id).state, was.state, `${id} rebuilt the same state from snapshot + log`);
  }
  for (let i = 0; i < 100 && !abc.some((id) => c.node(id).role === 'leader'); i++) {
    for (const id of abc) c.tick(id);
    c.deliverAll();
  }
  const leader = abc.find((id) => c.node(id).role === 'leader');
  assert.ok(leader);
  c.propose(leader, 'after restart');
  c.deliverAll();
  c.heartbeats(leader);
  for (const id of abc) assert.deepEqual(c.record(id).state.slice(-2), ['p14', 'after restart'], id);
});

test('restart with `applied`: committed entries the application kept are not delivered again', () => {
  const node = new RaftNode(config('a', { applied: 3 }), logWithTerms([1, 1, 1, 1, 1], 1, 5));
  const rd = node.ready();
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [4, 5]);
  assert.throws(
    () => new RaftNode(config('a', { applied: 6 }), logWithTerms([1, 1, 1, 1, 1], 1, 5)),
    (e) => isStorageError(e, 'INVALID_ARGUMENT'),
  );
});

test('restart refuses a persisted state Raft could not have written, with CORRUPT_DATA', () => {
  const gap: PersistedState = { hardState: { term: 1, vote: '', commit: 0 }, snapshot: null, entries: [entry(1, 1), entry(3, 1)] };
  const decreasing = logWithTerms([2, 1], 2);
  const commitTooFar = logWithTerms([1, 1], 1, 5);
  const gapAfterSnapshot: PersistedState = {
    hardState: { term: 1, vote: '', commit: 4 },
    snapshot: { index: 4, term: 1, voters: abc, data: new Uint8Array(0) },
    entries: [entry(6, 1)],
  };
  for (const bad of [gap, decreasing, commitTooFar, gapAfterSnapshot]) {
    assert.throws(() => new RaftNode(config('a'), bad), (e) => isStorageError(e, 'CORRUPT_DATA'));
  }
});

test('restart repairs what a crash between the caller’s writes leaves behind', () => {
  // Snapshot written, older entries not yet deleted; and entries of term 3 written before the hard state moved on.
  const persisted: PersistedState = {
    hardState: { term: 2, vote: 'b', commit: 2 },
    snapshot: { index: 3, term: 2, voters: abc, data: new Uint8Array(0) },
    entries: [entry(1, 1), entry(2, 2), entry(3, 2), entry(4, 3)],
  };
  const node = new RaftNode(config('a'), persisted);
  assert.equal(node.lastIndex, 4);
  assert.equal(node.commitIndex, 3, 'the snapshot is committed');
  assert.equal(node.term, 3, 'an entry of term 3 means that term began');
  assert.equal(node.status().vote, '');
  assert.deepEqual(node.ready().hardState, { term: 3, vote: '', commit: 3 }, 'the repair is persisted');
  // A snapshot from the leader replaced the log, but the store kept entries after the snapshot's index.
  const leftovers: PersistedState = {
    hardState: { term: 5, vote: '', commit: 6 },
    snapshot: { index: 6, term: 5, voters: abc, data: new Uint8Array(0) },
    entries: [entry(7, 2), entry(8, 2)],
  };
  assert.equal(new RaftNode(config('a'), leftovers).lastIndex, 6, 'a suffix older than the snapshot is dropped');
});

test('Ready contract: step and tick may run between ready() and advance(); ready() twice is a programmer error', () => {
  const c = new TestCluster(abc);
  c.elect('a');
  c.heartbeats('a');
  const a = c.node('a');
  a.propose(new Uint8Array([1]));
  const rd = a.ready();
  assert.equal(a.hasReady(), false, 'nothing more until advance');
  assert.throws(() => a.ready(), TypeError);
  a.propose(new Uint8Array([2]));
  a.tick();
  assert.throws(() => a.advance({ ...rd }), TypeError);
  a.advance(rd);
  const next = a.ready();
  assert.deepEqual(next.entries.map((e) => e.data[0]), [2], 'only the entry proposed meanwhile is new');
  assert.ok(next.messages.some((m) => m.type === 'heartbeat'));
  a.advance(next);
});

test('Ready contract: a log rewritten between ready() and advance() is written again by the next Ready', () => {
  const node = new RaftNode(config('b'), logWithTerms([1], 1, 1));
  node.step(message({ type: 'append', from: 'a', to: 'b', term: 2, index: 1, logTerm: 1, entries: [entry(2, 2), entry(3, 2)] }));
  const rd = node.ready();
  assert.deepEqual(rd.entries.map((e) => [e.index, e.term]), [[2, 2], [3, 2]]);
  // Before the caller finished writing, a new leader overwrote index 3.
  node.step(message({ type: 'append', from: 'c', to: 'b', term: 3, index: 2, logTerm: 2, entries: [entry(3, 3)] }));
  node.advance(rd);
  const next = node.ready();
  assert.deepEqual(next.entries.map((e) => [e.index, e.term]), [[3, 3]]);
});
