import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random, isStorageError } from '../../../src/common/index.js';
import { seededRandom } from '../../helpers/seed.js';
import { RaftNode, type Message } from '../../../src/consensus/index.js';
import { TestCluster, logWithTerms } from './cluster.js';

const abc = ['a', 'b', 'c'];

function voteRequest(from: string, to: string, term: number, index: number, logTerm: number): Message {
  return { type: 'vote', from, to, term, index, logTerm, entries: [], commit: 0, reject: false, rejectHint: 0, snapshot: null };
}

test('Raft §5.2: a follower that times out campaigns, wins a majority and leads; the others follow it', () => {
  for (const preVote of [false, true]) {
    const c = new TestCluster(abc, { preVote });
    const a = c.elect('a');
    assert.equal(a.term, 1);
    assert.equal(a.leader, 'a');
    for (const id of ['b', 'c']) {
      assert.equal(c.node(id).role, 'follower');
      assert.equal(c.node(id).leader, 'a');
      assert.equal(c.node(id).term, 1);
      assert.equal(c.record(id).store.hardState.term, 1, 'the term is persisted');
    }
    assert.equal(c.record('b').store.hardState.vote, 'a', 'the vote is persisted before it is sent');
  }
});

test('Raft §5.2: a single-node cluster elects itself at its first election timeout', () => {
  const c = new TestCluster(['solo']);
  c.tick('solo', 20);
  assert.equal(c.node('solo').role, 'leader');
  const index = c.propose('solo', 'x');
  assert.equal(c.node('solo').commitIndex, index, 'a quorum of one commits at once');
  assert.deepEqual(c.record('solo').state, ['x']);
});

test('Raft §5.2: the election timeout is randomized in [electionTicks, 2*electionTicks)', () => {
  const seen = new Set<number>();
  for (let seed = 0; seed < 200; seed++) {
    const node = new RaftNode({
      id: 'a',
      voters: abc,
      electionTicks: 10,
      heartbeatTicks: 1,
      random: new Random(seed),
      preVote: false,
      checkQuorum: false,
    });
    let ticks = 0;
    while (node.role === 'follower') {
      node.tick();
      ticks++;
    }
    assert.ok(ticks >= 10 && ticks < 20, `timeout ${ticks}`);
    seen.add(ticks);
  }
  assert.ok(seen.size >= 8, 'timeouts spread over the range');
});

test('Raft §5.2: a node grants at most one vote per term, and remembers it across a restart', () => {
  const c = new TestCluster(abc, { preVote: false });
  const b = c.node('b');
  b.step(voteRequest('a', 'b', 5, 0, 0));
  c.process('b');
  b.step(voteRequest('c', 'b', 5, 0, 0));
  c.process('b');
  const answers = c.queue.filter((m) => m.type === 'vote-response');
  assert.deepEqual(
    answers.map((m) => [m.to, m.reject]),
    [['a', false], ['c', true]],
  );
  c.crash('b');
  c.restart('b');
  c.queue = [];
  c.node('b').step(voteRequest('c', 'b', 5, 0, 0));
  c.process('b');
  assert.equal(c.queue[0]?.reject, true, 'after a restart the persisted vote still holds');
  c.queue = [];
  c.node('b').step(voteRequest('a', 'b', 5, 0, 0));
  c.process('b');
  assert.equal(c.queue[0]?.reject, false, 'the same candidate may ask again (its request may have been lost)');
});

test('Raft §5.4.1: a node refuses its vote to a candidate whose log is less up-to-date', () => {
  // b's last entry has term 3; a's log is longer but ends in term 2; c's ends in term 3 at a higher index.
  const c = new TestCluster(abc, { preVote: false }, {
    a: logWithTerms([1, 2, 2, 2], 3),
    b: logWithTerms([1, 3], 3),
    c: logWithTerms([1, 3, 3], 3),
  });
  c.campaign('a');
  assert.notEqual(c.node('a').role, 'leader', 'a log ending in an older term loses, however long');
  c.campaign('c');
  assert.equal(c.node('c').role, 'leader');
});

test('Raft §5.2 election safety: at most one leader per term, under random ticks, loss and reordering', (t) => {
  const random = seededRandom(t);
  const seed = random.seed;
  for (let run = 0; run < 30; run++) {
    const ids = random.chance(0.5) ? abc : ['a', 'b', 'c', 'd', 'e'];
    const c = new TestCluster(ids, { seed: random.u32(), preVote: random.chance(0.5), checkQuorum: random.chance(0.5) });
    const leaders = new Map<number, string>();
    for (let step = 0; step < 2000; step++) {
      if (random.chance(0.3)) c.tick(random.pick(ids));
      if (c.queue.length > 0 && random.chance(0.8)) {
        const i = random.int(0, c.queue.length - 1);
        const [m] = c.queue.splice(i, 1) as [Message];
        if (random.chance(0.9)) {
          c.node(m.to).step(m);
          c.process(m.to);
          if (random.chance(0.05)) c.queue.push(m); // duplicate
        }
      }
      for (const id of ids) {
        const node = c.node(id);
        if (node.role !== 'leader') continue;
        const known = leaders.get(node.term);
        assert.ok(known === undefined || known === id, `seed ${seed}: ${known} and ${id} both lead term ${node.term}`);
        leaders.set(node.term, id);
      }
    }
    assert.ok(leaders.size > 0, `seed ${seed}: someone was elected`);
  }
});

test('Raft §5.1: a leader that sees a higher term steps down to follower', () => {
  const c = new TestCluster(abc);
  const a = c.elect('a');
  a.step({ ...voteRequest('b', 'a', 7, 0, 0), type: 'heartbeat-response' });
  assert.equal(a.role, 'follower');
  assert.equal(a.term, 7);
  assert.throws(() => a.propose(new Uint8Array([1])), (e) => isStorageError(e, 'NOT_LEADER'));
});

test('Raft §5.1: a request from an older term is refused with the current term, deposing its stale sender', () => {
  const c = new TestCluster(abc, { preVote: false, checkQuorum: false });
  const a = c.elect('a');
  c.filter = (m) => m.from !== 'a' && m.to !== 'a';
  c.elect('b');
  assert.equal(a.role, 'leader', 'cut off, a still believes it leads term 1');
  c.filter = () => true;
  c.queue = [];
  c.heartbeats('a', 1);
  assert.equal(a.role, 'follower');
  assert.equal(a.term, c.node('b').term);
  assert.equal(c.node('b').role, 'leader', 'the refusal deposed only the stale leader');
});

test('propose on a follower throws NOT_LEADER naming the leader (the caller forwards)', () => {
  const c = new TestCluster(abc);
  c.elect('a');
  assert.throws(
    () => c.node('b').propose(new Uint8Array([1])),
    (e) => isStorageError(e, 'NOT_LEADER') && /the leader is a/.test(e.message),
  );
});

test('Thesis §9.6 pre-vote: a node rejoining from a partition cannot disrupt a healthy leader', () => {
  const c = new TestCluster(abc, { preVote: true, checkQuorum: true });
  const a = c.elect('a');
  c.heartbeats('a');
  const term = a.term;
  // c is cut off: it times out again and again, but pre-votes go nowhere, so its term never moves.
  c.filter = (m) => m.from !== 'c' && m.to !== 'c';
  for (let i = 0; i < 20; i++) {
    c.tick('c', 25);
    c.heartbeats('a', 1);
  }
  assert.equal(c.node('c').term, term, 'pre-vote keeps the partitioned node at its term');
  assert.equal(c.node('c').role, 'pre-candidate');
  c.filter = () => true;
  // It rejoins in the middle of a campaign: its pre-vote reaches nodes that still hear from a.
  c.tick('c', 25);
  c.deliverAll();
  c.heartbeats('a', 3);
  assert.equal(c.node('a').role, 'leader', 'the leader stays');
  assert.equal(c.node('a').term, term, 'nobody changed term');
  assert.equal(c.node('c').leader, 'a', 'the returning node follows the leader');
});

test('Thesis §9.6 (contrast): without pre-vote the same rejoin makes the cluster change term', () => {
  const c = new TestCluster(abc, { preVote: false, checkQuorum: false });
  const a = c.elect('a');
  const term = a.term;
  c.filter = (m) => m.from !== 'c' && m.to !== 'c';
  c.tick('c', 100);
  assert.ok(c.node('c').term > term + 1);
  c.filter = () => true;
  c.tick('c', 25);
  c.deliverAll();
  c.heartbeats('a', 3);
  assert.ok(c.node('a').term > term, 'the healthy leader was deposed by a term it had never seen');
});

test('Thesis §6.2 check-quorum: a leader that hears from no majority for an election timeout steps down', () => {
  const c = new TestCluster(abc, { checkQuorum: true });
  const a = c.elect('a');
  c.heartbeats('a');
  c.filter = (m) => m.from === 'a'; // a can send but hears nothing back
  c.heartbeats('a', 5);
  assert.equal(a.role, 'leader', 'still leader within the election timeout');
  let ticks = 5;
  while (a.role === 'leader' && ticks < 100) {
    c.heartbeats('a', 1);
    ticks++;
  }
  assert.equal(a.role, 'follower');
  assert.equal(ticks, 10, 'it steps down once a whole election timeout passed unheard');
  assert.equal(a.hasQuorumContact(), false);
  assert.throws(() => a.propose(new Uint8Array([1])), (e) => isStorageError(e, 'NOT_LEADER'));
});

test('Thesis §6.2 check-quorum: a leader in touch with a majority keeps leading, and reports quorum contact', () => {
  const c = new TestCluster(['a', 'b', 'c', 'd', 'e'], { checkQuorum: true });
  const a = c.elect('a');
  c.crash('d');
  c.crash('e');
  c.heartbeats('a', 100);
  assert.equal(a.role, 'leader');
  assert.equal(a.hasQuorumContact(), true);
  assert.equal(c.node('b').hasQuorumContact(), false, 'only a leader has quorum contact');
});

test('Thesis §4.2.3 leader lease: with check-quorum, a node hearing from its leader ignores vote requests', () => {
  const c = new TestCluster(abc, { preVote: false, checkQuorum: true });
  const a = c.elect('a');
  c.heartbeats('a');
  const b = c.node('b');
  c.queue = [];
  b.step(voteRequest('c', 'b', a.term + 1, 100, a.term));
  c.process('b');
  assert.equal(b.term, a.term, 'the term did not move');
  assert.equal(c.queue.length, 0, 'no answer');
  // Once the leader has been silent for an election timeout, the same request is heard.
  c.tick('b', 10);
  b.step(voteRequest('c', 'b', a.term + 1, 100, a.term));
  c.process('b');
  assert.equal(b.term, a.term + 1);
  assert.equal(c.queue.find((m) => m.type === 'vote-response')?.reject, false);
});

test('Raft §5.2: a candidate that sees a majority refuse gives up and waits for another election', () => {
  const c = new TestCluster(abc, { preVote: false }, {
    a: logWithTerms([1], 1),
    b: logWithTerms([1, 1], 1),
    c: logWithTerms([1, 1], 1),
  });
  c.campaign('a');
  assert.equal(c.node('a').role, 'follower');
  assert.equal(c.node('a').term, 2);
});

test('config is checked: INVALID_ARGUMENT for impossible settings', () => {
  const base = { id: 'a', voters: abc, electionTicks: 10, heartbeatTicks: 1, random: new Random(1), preVote: true, checkQuorum: true };
  for (const bad of [
    { ...base, voters: ['b', 'c'] },
    { ...base, voters: ['a', 'a', 'b'] },
    { ...base, heartbeatTicks: 10 },
    { ...base, electionTicks: 1 },
    { ...base, maxInflightMessages: 0 },
    { ...base, id: '' },
  ]) {
    assert.throws(() => new RaftNode(bad), (e) => isStorageError(e, 'INVALID_ARGUMENT'));
  }
});
