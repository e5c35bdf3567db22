import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random, isStorageError } from '../../../src/common/index.js';
import { seededRandom } from '../../helpers/seed.js';
import { messageTypes, type Entry, type Message } from '../../../src/consensus/index.js';
import { TestCluster, logWithTerms } from './cluster.js';

const abc = ['a', 'b', 'c'];
const five = ['a', 'b', 'c', 'd', 'e'];

function termsOf(c: TestCluster, id: string): number[] {
  return c.record(id).store.entries.map((e) => e.term);
}

test('Raft §5.3: a leader replicates entries, commits them once a majority holds them, and followers apply them', () => {
  const c = new TestCluster(abc);
  c.elect('a');
  const indices = ['x', 'y', 'z'].map((t) => c.propose('a', t));
  assert.deepEqual(indices, [2, 3, 4], 'index 1 is the leader’s no-op');
  c.deliverAll();
  c.heartbeats('a');
  for (const id of abc) {
    assert.equal(c.node(id).commitIndex, 4, id);
    assert.deepEqual(c.record(id).state, ['x', 'y', 'z'], id);
    assert.deepEqual(c.record(id).applied.map((e) => e.type), ['noop', 'normal', 'normal', 'normal']);
  }
});

test('Raft §5.3 log matching: a follower deletes its conflicting suffix and takes the leader’s entries', () => {
  const c = new TestCluster(abc, { preVote: false }, {
    a: logWithTerms([1, 1, 3, 3], 3),
    b: logWithTerms([1, 1, 2, 2, 2, 2], 2),
    c: logWithTerms([1, 1, 3], 3),
  });
  c.elect('a');
  c.deliverAll();
  c.heartbeats('a');
  const expected = [1, 1, 3, 3, 4];
  for (const id of abc) assert.deepEqual(termsOf(c, id), expected, id);
  assert.equal(c.node('b').commitIndex, 5);
  assert.deepEqual(
    c.record('b').applied.map((e) => [e.index, e.term]),
    [[1, 1], [2, 1], [3, 3], [4, 3], [5, 4]],
    'b never applied its own entries of term 2',
  );
});

test('Raft §5.3 fast backtracking: a follower with a long divergent log is found in a few round trips', () => {
  const leaderLog = [1, 1, ...Array<number>(50).fill(5)];
  const followerLog = [1, 1, ...Array<number>(33).fill(2), ...Array<number>(35).fill(3), ...Array<number>(32).fill(4)];
  const c = new TestCluster(abc, { preVote: false, maxEntriesPerMessage: 1000 }, {
    a: logWithTerms(leaderLog, 5),
    b: logWithTerms(followerLog, 4),
    c: logWithTerms(leaderLog, 5),
  });
  c.elect('a');
  c.deliverAll();
  c.heartbeats('a');
  const rejections = c.sent.filter((m) => m.type === 'append-response' && m.from === 'b' && m.reject);
  assert.ok(rejections.length <= 2, `${rejections.length} rejections (one entry at a time would take 50)`);
  assert.deepEqual(termsOf(c, 'b'), [...leaderLog, 6]);
});

test('Raft §5.3 fast backtracking: a follower behind the leader skips straight to its last entry', () => {
  const c = new TestCluster(abc, { preVote: false, maxEntriesPerMessage: 1000 }, {
    a: logWithTerms(Array<number>(80).fill(1), 1),
    b: logWithTerms([1, 1], 1),
    c: logWithTerms(Array<number>(80).fill(1), 1),
  });
  c.elect('a');
  c.deliverAll();
  const rejections = c.sent.filter((m) => m.type === 'append-response' && m.from === 'b' && m.reject);
  assert.equal(rejections.length, 1);
  assert.equal(c.record('b').store.entries.length, 81);
});

/**
 * Figure 8 of the paper, with S1..S5 as a..e. (a) a led term 2 and put index 2 on a and b. (b) e won term 3 with
 * votes from c, d, e and wrote a different index 2 on e alone. (c) a wins again; its term-2 entry reaches a majority.
 */
function figure8(): TestCluster {
  const c = new TestCluster(five, { preVote: false, checkQuorum: false, maxEntriesPerMessage: 1 }, {
    a: logWithTerms([1, 2], 3),
    b: logWithTerms([1, 2], 2),
    c: logWithTerms([1], 3),
    d: logWithTerms([1], 3),
    e: logWithTerms([1, 3], 3),
  });
  c.crash('e');
  return c;
}

test('Raft §5.4.2 (Figure 8 c–d): an entry from an earlier term is not committed by counting replicas, and may be overwritten', () => {
  const c = figure8();
  // a's term-2 entry reaches b and c, but its own no-op (index 3, term 4) reaches only b.
  // (c's first probe, which carries index 3 after an index 2 c lacks, is refused and so may pass.)
  const cHasIndex2 = (): boolean => c.record('c').store.entries.length >= 2;
  c.filter = (m) => m.to !== 'd' && !(m.to === 'c' && m.entries.some((e) => e.index === 3) && cHasIndex2());
  const a = c.elect('a');
  assert.equal(a.term, 4);
  c.heartbeats('a', 5);
  assert.deepEqual(termsOf(c, 'c'), [1, 2], 'index 2 (term 2) is now on a majority: a, b, c');
  assert.equal(a.commitIndex, 0, 'yet a does not count replicas of an old-term entry');
  // (d) a crashes; e comes back and wins with votes from c and d, then overwrites index 2 everywhere.
  c.crash('a');
  c.filter = () => true;
  c.restart('e');
  for (let i = 0; i < 5 && c.node('e').role !== 'leader'; i++) c.campaign('e');
  assert.equal(c.node('e').role, 'leader');
  c.deliverAll();
  c.heartbeats('e', 5);
  for (const id of ['b', 'c', 'd', 'e']) assert.equal(termsOf(c, id)[1], 3, `${id} index 2 now holds term 3`);
  for (const id of five) {
    assert.ok(!c.record(id).applied.some((e) => e.index === 2 && e.term === 2), `${id} never applied the lost entry`);
  }
});

test('Raft §5.4.2 (Figure 8 e): once an entry of the current term commits, earlier ones commit with it and survive', () => {
  const c = figure8();
  c.filter = (m) => m.to !== 'd';
  const a = c.elect('a');
  c.deliverAll();
  c.heartbeats('a', 5);
  assert.equal(a.commitIndex, 3, 'the no-op of term 4 is on a, b and c, so indices 2 and 3 commit');
  c.crash('a');
  c.filter = () => true;
  c.restart('e');
  for (let i = 0; i < 5; i++) c.campaign('e');
  assert.notEqual(c.node('e').role, 'leader', 'e cannot win: a majority holds a log more up-to-date than its own');
  c.campaign('b');
  c.deliverAll();
  c.heartbeats('b', 5);
  for (const id of ['b', 'c', 'd', 'e']) assert.deepEqual(termsOf(c, id).slice(0, 3), [1, 2, 4], id);
});

test('Raft §5.4 leader completeness and §5.3 log matching, under random elections, loss, reordering and crashes', (t) => {
  const random = seededRandom(t);
  const seed = random.seed;
  for (let run = 0; run < 20; run++) {
    const ids = random.chance(0.5) ? abc : five;
    const c = new TestCluster(ids, { seed: random.u32(), maxEntriesPerMessage: random.int(1, 5) });
    const committed = new Map<number, Entry>();
    let proposals = 0;
    for (let step = 0; step < 3000; step++) {
      const id = random.pick(ids);
      const roll = random.float();
      if (roll < 0.2) c.tick(id);
      else if (roll < 0.25 && c.isUp(id) && c.node(id).role === 'leader') c.propose(id, `p${proposals++}`);
      else if (roll < 0.253 && c.isUp(id)) c.crash(id);
      else if (roll < 0.27 && !c.isUp(id)) c.restart(id);
      else if (c.queue.length > 0) {
        const [m] = c.queue.splice(random.int(0, c.queue.length - 1), 1) as [Message];
        if (random.chance(0.9) && c.isUp(m.to)) {
          c.node(m.to).step(m);
          c.process(m.to);
        }
      }
      for (const node of ids) {
        for (const e of c.record(node).applied) {
          const known = committed.get(e.index);
          assert.ok(!known || (known.term === e.term && known.data.join() === e.data.join()), `seed ${seed}: index ${e.index} differs`);
          committed.set(e.index, e);
        }
        c.record(node).applied = [];
      }
      for (const node of ids) {
        if (!c.isUp(node) || c.node(node).role !== 'leader') continue;
        const log = new Map(c.record(node).store.entries.map((e) => [e.index, e.term]));
        for (const [index, e] of committed) {
          if (index > (c.record(node).store.snapshot?.index ?? 0)) {
            assert.equal(log.get(index), e.term, `seed ${seed}: leader ${node} lacks committed entry ${index}`);
          }
        }
      }
    }
    // Log matching: two logs with an entry of the same index and term are identical up to it.
    for (const x of ids) {
      for (const y of ids) {
        const lx = c.record(x).store.entries;
        const ly = new Map(c.record(y).store.entries.map((e) => [e.index, e.term]));
        let lastCommon = 0;
        for (const e of lx) if (ly.get(e.index) === e.term) lastCommon = e.index;
        for (const e of lx) {
          if (e.index <= lastCommon && ly.has(e.index)) assert.equal(ly.get(e.index), e.term, `seed ${seed}: ${x}/${y} at ${e.index}`);
        }
      }
    }
  }
});

test('bounded messages: at most maxEntriesPerMessage entries per append, maxInflightMessages unanswered appends', () => {
  const c = new TestCluster(abc, { maxEntriesPerMessage: 4, maxInflightMessages: 2 });
  c.elect('a');
  c.heartbeats('a');
  c.sent.length = 0;
  c.queue = [];
  for (let i = 0; i < 40; i++) c.propose('a', `p${i}`);
  const toB = c.queue.filter((m) => m.to === 'b' && m.type === 'append' && m.entries.length > 0);
  assert.equal(toB.length, 2, 'two appends in flight, then it waits');
  assert.ok(toB.every((m) => m.entries.length <= 4));
  c.deliverAll();
  c.heartbeats('a');
  assert.equal(c.node('b').commitIndex, c.node('a').lastIndex);
  assert.ok(c.sent.every((m) => m.entries.length <= 4));
});

test('bounded messages: maxMessageBytes caps an append, but always carries at least one entry', () => {
  const c = new TestCluster(abc, { maxMessageBytes: 250, maxEntriesPerMessage: 100 });
  c.elect('a');
  c.heartbeats('a');
  c.sent.length = 0;
  for (let i = 0; i < 10; i++) c.node('a').propose(new Uint8Array(100));
  c.node('a').propose(new Uint8Array(1000));
  c.process('a');
  c.deliverAll();
  c.heartbeats('a');
  const appends = c.sent.filter((m) => m.type === 'append' && m.entries.length > 0);
  for (const m of appends) {
    const bytes = m.entries.reduce((n, e) => n + e.data.length, 0);
    assert.ok(m.entries.length === 1 || bytes <= 250, `${m.entries.length} entries, ${bytes} bytes`);
  }
  assert.equal(c.node('c').commitIndex, c.node('a').lastIndex);
});

test('propose refuses with BUSY while maxUncommittedEntries wait for a quorum', () => {
  const c = new TestCluster(abc, { maxUncommittedEntries: 5, checkQuorum: false });
  c.elect('a');
  c.heartbeats('a');
  c.crash('b');
  c.crash('c');
  for (let i = 0; i < 5; i++) c.propose('a', `p${i}`);
  assert.throws(() => c.propose('a', 'one too many'), (e) => isStorageError(e, 'BUSY'));
  c.restart('b');
  c.heartbeats('a', 5);
  assert.doesNotThrow(() => c.propose('a', 'room again'));
});

test('Raft §5.3: a follower’s commit follows the leader’s but never passes what it holds', () => {
  const c = new TestCluster(abc);
  c.elect('a');
  c.heartbeats('a');
  c.filter = (m) => !(m.to === 'c' && m.type === 'append');
  c.propose('a', 'x');
  c.propose('a', 'y');
  c.deliverAll();
  c.heartbeats('a', 3);
  assert.equal(c.node('a').commitIndex, 3);
  assert.equal(c.node('c').commitIndex, 1, 'heartbeats carry only what c is known to hold');
  c.filter = () => true;
  c.heartbeats('a', 3);
  assert.equal(c.node('c').commitIndex, 3);
});

test('step never throws on typed nonsense, whatever the node’s role', (t) => {
  const random = seededRandom(t);
  const numbers = [0, 1, 2, 3, 1000, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 2, Infinity];
  const names = ['a', 'b', 'c', '', 'zz'];
  for (let round = 0; round < 20; round++) {
    const c = new TestCluster(abc, { seed: random.u32() });
    c.elect('a');
    c.propose('a', 'x');
    c.deliverAll();
    for (let i = 0; i < 300; i++) {
      const entries: Entry[] = random.chance(0.5)
        ? []
        : Array.from({ length: random.int(1, 3) }, () => ({
            index: random.pick(numbers),
            term: random.pick(numbers),
            type: random.pick(['normal', 'noop', 'bogus'] as const) as Entry['type'],
            data: random.chance(0.9) ? new Uint8Array(2) : (null as unknown as Uint8Array),
          }));
      const m = {
        type: random.chance(0.95) ? random.pick(messageTypes) : 'bogus',
        from: random.pick(names),
        to: random.pick(names),
        term: random.pick(numbers),
        logTerm: random.pick(numbers),
        index: random.pick(numbers),
        entries,
        commit: random.pick(numbers),
        reject: random.chance(0.5),
        rejectHint: random.pick(numbers),
        snapshot: random.chance(0.5)
          ? null
          : { index: random.pick(numbers), term: random.pick(numbers), voters: abc, data: new Uint8Array(1) },
      } as Message;
      const node = c.node(random.pick(abc));
      assert.doesNotThrow(() => {
        node.step(m);
        if (random.chance(0.3)) node.tick();
        if (node.hasReady()) node.advance(node.ready());
      });
    }
  }
});

/** One defect that makes a real message malformed. */
const defects: Array<(m: Message) => Message> = [
  (m) => ({ ...m, term: -1 }),
  (m) => ({ ...m, term: m.term + 0.5 }),
  (m) => ({ ...m, index: Number.NaN }),
  (m) => ({ ...m, commit: Infinity }),
  (m) => ({ ...m, from: 'stranger' }),
  (m) => ({ ...m, to: 'someone-else' }),
  (m) => ({ ...m, type: 'bogus' as Message['type'] }),
  (m) => ({ ...m, entries: m.entries.map((e) => ({ ...e, index: e.index + 1 })) }),
  (m) => ({ ...m, entries: m.entries.map((e) => ({ ...e, term: m.term + 1 })) }),
  (m) => ({ ...m, entries: m.entries.map((e) => ({ ...e, type: 'bogus' as Entry['type'] })) }),
  (m) => ({ ...m, snapshot: m.type === 'snapshot' ? null : m.snapshot }),
];

test('step ignores malformed messages: a cluster fed corrupted copies of its traffic still agrees', (t) => {
  const random = seededRandom(t);
  const c = new TestCluster(abc, { seed: random.u32() });
  c.elect('a');
  for (let i = 0; i < 2000; i++) {
    if (random.chance(0.05) && c.node('a').role === 'leader') c.propose('a', `p${i}`);
    if (random.chance(0.2)) c.tick(random.pick(abc));
    const m = c.queue.shift();
    if (m === undefined) continue;
    const bad = defects
      .filter((_, k) => k < 7 || (k < 10 && m.entries.length > 0) || (k === 10 && m.type === 'snapshot'))
      .map((d) => d(m));
    const broken = random.pick(bad);
    const before = c.node(m.to).status();
    c.node(m.to).step(broken);
    assert.equal(c.node(m.to).hasReady(), false, 'nothing to persist or send');
    assert.deepEqual(c.node(m.to).status(), before, `${JSON.stringify(broken).slice(0, 200)} changed the node`);
    c.node(m.to).step(m);
    c.process(m.to);
  }
  c.heartbeats('a', 5);
  const states = abc.map((id) => c.record(id).state.join());
  assert.ok(states.every((s) => s === states[0]), JSON.stringify(states));
  assert.ok((states[0] as string).length > 0);
});
