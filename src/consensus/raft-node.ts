/**
 * One Raft node as a pure, synchronous state machine (Ongaro & Ousterhout 2014, "In Search of an Understandable
 * Consensus Algorithm", and Ongaro's 2014 thesis for pre-vote, check-quorum and the leader lease). Inputs are `tick`,
 * `step`, `propose` and `compact`; outputs are collected into a `Ready` for the caller to persist, send and apply.
 * No timers, promises, sockets or disk: the same inputs in the same order always give the same outputs, which is
 * what lets test/sim replay a whole cluster from a seed.
 *
 * Section references (§) are to the paper unless they say "thesis".
 */
import { StorageError, check, type Random } from '../common/index.js';
import { RaftLog } from './log.js';
import { Progress } from './progress.js';
import {
  entryTypes,
  messageTypes,
  type Entry,
  type HardState,
  type Message,
  type MessageType,
  type NodeId,
  type PersistedState,
  type RaftConfig,
  type Ready,
  type Role,
  type Snapshot,
  type SoftState,
} from './types.js';

export const raftDefaults = {
  maxEntriesPerMessage: 64,
  maxMessageBytes: 1 << 20,
  maxInflightMessages: 256,
  maxUncommittedEntries: 4096,
  maxCommittedEntriesPerReady: 1024,
} as const;

/** What `status()` reports about one follower, from the leader's side. */
export interface FollowerStatus {
  match: number;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot';
  /** Ticks since this follower was last heard from. */
  lastHeardTicksAgo: number;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  vote: NodeId;
  leader: NodeId;
  commit: number;
  applied: number;
  lastIndex: number;
  snapshotIndex: number;
  /** Only on a leader: one per other voter. */
  followers: Record<NodeId, FollowerStatus>;
}

const emptyData = new Uint8Array(0);

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function responseTypeOf(type: 'vote' | 'pre-vote'): MessageType {
  return type === 'vote' ? 'vote-response' : 'pre-vote-response';
}

export class RaftNode {
  readonly #id: NodeId;
  readonly #voters: readonly NodeId[];
  readonly #voterSet: ReadonlySet<NodeId>;
  readonly #peers: readonly NodeId[];
  readonly #quorum: number;
  readonly #electionTicks: number;
  readonly #heartbeatTicks: number;
  readonly #random: Random;
  readonly #preVote: boolean;
  readonly #checkQuorum: boolean;
  readonly #maxEntriesPerMessage: number;
  readonly #maxMessageBytes: number;
  readonly #maxInflight: number;
  readonly #maxUncommitted: number;
  readonly #maxCommittedPerReady: number;

  // Persistent state (§5.1, Figure 2), plus commit.
  #term = 0;
  #vote: NodeId = '';
  #commit = 0;
  #log: RaftLog;

  // Volatile state.
  #role: Role = 'follower';
  #leader: NodeId = '';
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  /** Leader: ticks since it became leader, the clock of Progress.lastHeardTick. */
  #leaderTicks = 0;
  #votes = new Map<NodeId, boolean>();
  #progress = new Map<NodeId, Progress>();
  #stepRole: (m: Message) => void;
  #tickRole: () => void;

  // What the caller has been told and has done.
  /** Highest index the caller has persisted (through Ready.entries or the restart state). */
  #stableIndex: number;
  /** Highest index the application has applied (or loaded with a snapshot), as confirmed by `advance`. */
  #applied: number;
  #persistedHardState: HardState;
  #reportedSoftState: SoftState = { leader: '', role: 'follower' };
  /** A snapshot received from the leader that the caller has not yet persisted and loaded. */
  #receivedSnapshot: Snapshot | null = null;
  #messages: Message[] = [];
  #outstanding: Ready | null = null;

  constructor(config: RaftConfig, persisted?: PersistedState) {
    validateConfig(config);
    this.#id = config.id;
    this.#voters = config.voters.slice();
    this.#voterSet = new Set(config.voters);
    this.#peers = config.voters.filter((v) => v !== config.id);
    this.#quorum = Math.floor(config.voters.length / 2) + 1;
    this.#electionTicks = config.electionTicks;
    this.#heartbeatTicks = config.heartbeatTicks;
    this.#random = config.random;
    this.#preVote = config.preVote;
    this.#checkQuorum = config.checkQuorum;
    this.#maxEntriesPerMessage = config.maxEntriesPerMessage ?? raftDefaults.maxEntriesPerMessage;
    this.#maxMessageBytes = config.maxMessageBytes ?? raftDefaults.maxMessageBytes;
    this.#maxInflight = config.maxInflightMessages ?? raftDefaults.maxInflightMessages;
    this.#maxUncommitted = config.maxUncommittedEntries ?? raftDefaults.maxUncommittedEntries;
    this.#maxCommittedPerReady = raftDefaults.maxCommittedEntriesPerReady;

    const stored = persisted ?? { hardState: { term: 0, vote: '', commit: 0 }, snapshot: null, entries: [] };
    const state = normalizePersisted(stored);
    this.#log = new RaftLog(state.snapshot, state.entries);
    this.#term = state.hardState.term;
    this.#vote = state.hardState.vote;
    this.#stableIndex = this.#log.lastIndex;
    const snapshotIndex = this.#log.snapshotIndex;
    const applied = config.applied ?? snapshotIndex;
    check(
      isCount(applied) && applied >= snapshotIndex && applied <= this.#log.lastIndex,
      `applied ${applied} must lie between the snapshot (${snapshotIndex}) and the last entry (${this.#log.lastIndex})`,
    );
    this.#applied = applied;
    // The hard state may have been written before a newer snapshot; what the application applied is committed too.
    this.#commit = Math.max(state.hardState.commit, snapshotIndex, applied);
    // Compared against the stored one, so that any repair above reaches the store with the first Ready.
    this.#persistedHardState = { ...stored.hardState };

    this.#stepRole = this.#stepFollower;
    this.#tickRole = this.#tickElection;
    this.#becomeFollower(this.#term, '');
  }

  get id(): NodeId {
    return this.#id;
  }

  get role(): Role {
    return this.#role;
  }

  get term(): number {
    return this.#term;
  }

  /** The leader of the current term as far as this node knows; '' when unknown. */
  get leader(): NodeId {
    return this.#leader;
  }

  get commitIndex(): number {
    return this.#commit;
  }

  get lastIndex(): number {
    return this.#log.lastIndex;
  }

  /** The index the application has applied, as confirmed by `advance`. */
  get appliedIndex(): number {
    return this.#applied;
  }

  /** The index of the latest snapshot this node holds (0 with none). */
  get snapshotIndex(): number {
    return this.#log.snapshotIndex;
  }

  /**
   * True on a leader that has heard from a majority (itself included) within the last election timeout. A leader
   * answering reads from its own state should check this first: without it, a deposed leader cut off from the rest
   * could serve stale data (thesis §6.4).
   */
  hasQuorumContact(): boolean {
    if (this.#role !== 'leader') return false;
    let heard = 1;
    for (const pr of this.#progress.values()) {
      if (this.#leaderTicks - pr.lastHeardTick < this.#electionTicks) heard++;
    }
    return heard >= this.#quorum;
  }

  status(): RaftStatus {
    const followers: Record<NodeId, FollowerStatus> = {};
    if (this.#role === 'leader') {
      for (const [id, pr] of this.#progress) {
        followers[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          lastHeardTicksAgo: this.#leaderTicks - pr.lastHeardTick,
        };
      }
    }
    return {
      id: this.#id,
      role: this.#role,
      term: this.#term,
      vote: this.#vote,
      leader: this.#leader,
      commit: this.#commit,
      applied: this.#applied,
      lastIndex: this.#log.lastIndex,
      snapshotIndex: this.#log.snapshotIndex,
      followers,
    };
  }

  /** Advances logical time by one tick: election timeouts for followers and candidates, heartbeats for a leader. */
  tick(): void {
    this.#tickRole();
  }

  /**
   * Hands the node a message from a peer. Messages that are stale (an old term), duplicated, addressed to someone
   * else, from a non-member or malformed are ignored or refused as Raft prescribes; step never throws on them.
   */
  step(message: Message): void {
    if (!this.#isWellFormed(message)) return;
    const m = message;
    if (m.term > this.#term) {
      if (m.type === 'vote' || m.type === 'pre-vote') {
        // Thesis §4.2.3 (with check-quorum) and §9.6 (pre-vote): while a node hears from a leader it believes the
        // leader is alive, and a node asking for votes is only disruptive. Ignoring it keeps our term unchanged.
        const leaseHeld = this.#leader !== '' && this.#electionElapsed < this.#electionTicks;
        if (leaseHeld && (m.type === 'pre-vote' || this.#checkQuorum)) return;
      }
      if (m.type === 'pre-vote' || (m.type === 'pre-vote-response' && !m.reject)) {
        // A pre-vote asks about a future term without anyone moving to it (thesis §9.6); a granted one echoes it.
      } else {
        const fromLeader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot';
        this.#becomeFollower(m.term, fromLeader ? m.from : '');
      }
    } else if (m.term < this.#term) {
      this.#refuseStale(m);
      return;
    }

    if (m.type === 'vote' || m.type === 'pre-vote') {
      this.#handleVoteRequest(m);
      return;
    }
    this.#stepRole(m);
  }

  /**
   * Appends `data` to the log of this leader and starts replicating it. Returns the index the entry has; it is
   * committed once that index appears in Ready.committedEntries with the same term, and may instead be lost if this
   * node stops being leader first. Throws NOT_LEADER on any other node (proposals are not forwarded), BUSY while
   * maxUncommittedEntries are waiting for a quorum.
   */
  propose(data: Uint8Array): number {
    if (!(data instanceof Uint8Array)) throw new TypeError('propose: data must be a Uint8Array');
    if (this.#role !== 'leader') {
      const hint = this.#leader === '' ? 'the leader is unknown' : `the leader is ${this.#leader}`;
      throw new StorageError('NOT_LEADER', `raft node ${this.#id} is not the leader (${hint})`);
    }
    if (this.#log.lastIndex - this.#commit >= this.#maxUncommitted) {
      throw new StorageError('BUSY', `raft node ${this.#id}: ${this.#maxUncommitted} entries await a quorum`);
    }
    const index = this.#appendAsLeader('normal', data);
    return index;
  }

  /** Whether `ready()` has anything. False while a Ready is outstanding (returned but not yet advanced). */
  hasReady(): boolean {
    if (this.#outstanding !== null) return false;
    return (
      this.#messages.length > 0 ||
      this.#receivedSnapshot !== null ||
      this.#stableIndex < this.#log.lastIndex ||
      this.#commit > Math.max(this.#applied, this.#log.snapshotIndex) ||
      !sameHardState(this.#hardState(), this.#persistedHardState) ||
      this.#reportedSoftState.leader !== this.#leader ||
      this.#reportedSoftState.role !== this.#role
    );
  }

  /**
   * Collects what the caller must do. The caller may keep calling `step`, `tick` and `propose` while it works, but
   * must call `advance` with this object before the next `ready()`.
   */
  ready(): Ready {
    if (this.#outstanding !== null) throw new TypeError('raft: call advance(ready) before the next ready()');
    const hardState = this.#hardState();
    const firstToApply = Math.max(this.#applied, this.#log.snapshotIndex) + 1;
    const lastToApply = Math.min(this.#commit, firstToApply + this.#maxCommittedPerReady - 1);
    const softChanged =
      this.#reportedSoftState.leader !== this.#leader || this.#reportedSoftState.role !== this.#role;
    const rd: Ready = {
      hardState: sameHardState(hardState, this.#persistedHardState) ? null : hardState,
      entries: this.#log.slice(this.#stableIndex + 1, this.#log.lastIndex),
      snapshot: this.#receivedSnapshot,
      committedEntries: this.#log.slice(firstToApply, lastToApply),
      messages: this.#messages,
      softState: softChanged ? { leader: this.#leader, role: this.#role } : null,
    };
    this.#messages = [];
    this.#outstanding = rd;
    return rd;
  }

  /** Tells the node the caller has persisted, sent and applied everything in `ready`. */
  advance(ready: Ready): void {
    if (ready !== this.#outstanding) throw new TypeError('raft: advance() takes the Ready last returned by ready()');
    this.#outstanding = null;
    if (ready.hardState !== null) this.#persistedHardState = ready.hardState;
    // If the log was rewritten since ready(), only the written entries it still holds are stable (by log matching,
    // the last one that still matches vouches for all before it); the next Ready writes the rest again.
    for (let i = ready.entries.length - 1; i >= 0; i--) {
      const written = ready.entries[i] as Entry;
      if (this.#log.term(written.index) === written.term) {
        this.#stableIndex = Math.max(this.#stableIndex, written.index);
        break;
      }
    }
    if (ready.snapshot !== null) {
      if (this.#receivedSnapshot === ready.snapshot) this.#receivedSnapshot = null;
      this.#applied = Math.max(this.#applied, ready.snapshot.index);
    }
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined) this.#applied = Math.max(this.#applied, lastApplied.index);
    if (ready.softState !== null) this.#reportedSoftState = ready.softState;
  }

  /**
   * The application has applied every entry up to `index` and `data` is its state there (Raft §7). The node forgets
   * its entries up to `index` and sends this snapshot to followers that need them. The caller persists the returned
   * snapshot, then deletes its stored entries up to `index`. Throws INVALID_ARGUMENT unless
   * snapshotIndex < index <= appliedIndex.
   */
  compact(index: number, data: Uint8Array): Snapshot {
    check(isCount(index), `compact: index ${index} is not a count`);
    check(data instanceof Uint8Array, 'compact: data must be a Uint8Array');
    check(index > this.#log.snapshotIndex, `compact: index ${index} is not after the snapshot (${this.#log.snapshotIndex})`);
    check(index <= this.#applied, `compact: index ${index} is not applied yet (applied ${this.#applied})`);
    const term = this.#log.term(index) as number;
    const snapshot: Snapshot = { index, term, voters: this.#voters.slice(), data };
    this.#log.compact(snapshot);
    return snapshot;
  }

  // --- roles ---

  #becomeFollower(term: number, leader: NodeId): void {
    this.#resetTerm(term);
    this.#role = 'follower';
    this.#leader = leader;
    this.#stepRole = this.#stepFollower;
    this.#tickRole = this.#tickElection;
  }

  #resetTerm(term: number): void {
    if (term !== this.#term) {
      this.#term = term;
      this.#vote = '';
    }
    this.#leader = '';
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizedElectionTimeout = this.#random.int(this.#electionTicks, 2 * this.#electionTicks - 1);
    this.#votes.clear();
    this.#progress.clear();
  }

  /** §5.2 (candidate), thesis §9.6 (pre-candidate: asks first, at term+1, changing nothing). */
  #campaign(preVote: boolean): void {
    let askedTerm: number;
    if (preVote) {
      this.#role = 'pre-candidate';
      this.#leader = '';
      this.#votes.clear();
      this.#electionElapsed = 0;
      this.#randomizedElectionTimeout = this.#random.int(this.#electionTicks, 2 * this.#electionTicks - 1);
      askedTerm = this.#term + 1;
    } else {
      this.#resetTerm(this.#term + 1);
      this.#role = 'candidate';
      this.#vote = this.#id;
      askedTerm = this.#term;
    }
    this.#stepRole = this.#stepCandidate;
    this.#tickRole = this.#tickElection;
    this.#votes.set(this.#id, true);
    if (this.#tallyAndAct()) return;
    const type = preVote ? 'pre-vote' : 'vote';
    for (const peer of this.#peers) {
      this.#send({ ...this.#blank(type, peer), term: askedTerm, index: this.#log.lastIndex, logTerm: this.#log.lastTerm });
    }
  }

  /** §5.2: counts votes; wins (or, as pre-candidate, goes on to a real election) or gives up. True if it acted. */
  #tallyAndAct(): boolean {
    let granted = 0;
    let rejected = 0;
    for (const v of this.#votes.values()) v ? granted++ : rejected++;
    if (granted >= this.#quorum) {
      if (this.#role === 'pre-candidate') this.#campaign(false);
      else this.#becomeLeader();
      return true;
    }
    if (rejected >= this.#quorum) {
      this.#becomeFollower(this.#term, '');
      return true;
    }
    return false;
  }

  #becomeLeader(): void {
    this.#role = 'leader';
    this.#leader = this.#id;
    this.#stepRole = this.#stepLeader;
    this.#tickRole = this.#tickHeartbeat;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#leaderTicks = 0;
    this.#progress.clear();
    for (const peer of this.#peers) this.#progress.set(peer, new Progress(this.#log.lastIndex + 1, 0));
    // §8: a no-op of the new term lets entries of earlier terms commit with it (§5.4.2 forbids counting them).
    this.#appendAsLeader('noop', emptyData);
  }

  #appendAsLeader(type: 'normal' | 'noop', data: Uint8Array): number {
    const index = this.#log.lastIndex + 1;
    this.#log.append({ index, term: this.#term, type, data });
    if (!this.#maybeCommit()) {
      for (const peer of this.#peers) this.#sendAppend(peer, false);
    }
    return index;
  }

  // --- ticks ---

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0;
      this.#campaign(this.#preVote);
    }
  }

  #tickHeartbeat(): void {
    this.#leaderTicks++;
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    // The lease of thesis §4.2.3 needs electionElapsed to stay below electionTicks on a working leader.
    if (this.#electionElapsed >= this.#electionTicks) this.#electionElapsed = 0;
    if (this.#checkQuorum && !this.hasQuorumContact()) {
      // Thesis §6.2: a leader cut off from the majority stops accepting proposals that could never commit.
      this.#becomeFollower(this.#term, '');
      return;
    }
    for (const [peer, pr] of this.#progress) {
      if (pr.state !== 'snapshot') continue;
      // The snapshot or its answer was lost: try again from where the follower is known to be.
      if (++pr.snapshotTicks >= this.#electionTicks) {
        pr.becomeProbe();
        this.#sendAppend(peer, true);
      }
    }
    if (this.#heartbeatElapsed >= this.#heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      for (const [peer, pr] of this.#progress) {
        // §5.3 lets a heartbeat carry the commit index; cap it at what the follower is known to hold, since a
        // heartbeat carries no consistency check.
        this.#send({ ...this.#blank('heartbeat', peer), commit: Math.min(pr.match, this.#commit) });
      }
    }
  }

  // --- messages, by role ---

  /** Figure 2: a request from an older term is refused with the current term, which makes its sender step down. */
  #refuseStale(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        this.#send({ ...this.#blank('append-response', m.from), index: m.index, reject: true });
        return;
      case 'vote':
      case 'pre-vote':
        this.#send({ ...this.#blank(responseTypeOf(m.type), m.from), reject: true });
        return;
      default:
        return; // a late answer to something this node asked in an older term
    }
  }

  /** §5.2 (one vote per term, first come first served) and §5.4.1 (only for a log at least as up-to-date). */
  #handleVoteRequest(m: Message): void {
    const type = m.type as 'vote' | 'pre-vote';
    const canVote =
      this.#vote === m.from ||
      (this.#vote === '' && this.#leader === '') ||
      (type === 'pre-vote' && m.term > this.#term);
    if (canVote && this.#log.isUpToDate(m.index, m.logTerm)) {
      this.#send({ ...this.#blank(responseTypeOf(type), m.from), term: m.term });
      if (type === 'vote') {
        this.#vote = m.from;
        this.#electionElapsed = 0;
      }
    } else {
      this.#send({ ...this.#blank(responseTypeOf(type), m.from), reject: true });
    }
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        this.#electionElapsed = 0;
        this.#leader = m.from;
        this.#handleFromLeader(m);
        return;
      default:
        return;
    }
  }

  #stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // §5.2: another node won this term.
        this.#becomeFollower(m.term, m.from);
        this.#handleFromLeader(m);
        return;
      case 'pre-vote-response': {
        if (this.#role !== 'pre-candidate') return;
        // A grant echoes the asked-for term; a refusal carries the voter's term, at most ours.
        const current = m.reject ? m.term === this.#term : m.term === this.#term + 1;
        if (!current) return;
        this.#votes.set(m.from, !m.reject);
        this.#tallyAndAct();
        return;
      }
      case 'vote-response':
        if (this.#role !== 'candidate') return;
        this.#votes.set(m.from, !m.reject);
        this.#tallyAndAct();
        return;
      default:
        return;
    }
  }

  #stepLeader(m: Message): void {
    const pr = this.#progress.get(m.from);
    if (pr === undefined) return;
    pr.lastHeardTick = this.#leaderTicks;
    if (m.type === 'append-response') this.#handleAppendResponse(m, pr);
    else if (m.type === 'heartbeat-response') this.#handleHeartbeatResponse(m, pr);
  }

  #handleFromLeader(m: Message): void {
    if (m.type === 'append') this.#handleAppend(m);
    else if (m.type === 'heartbeat') this.#handleHeartbeat(m);
    else this.#handleSnapshot(m);
  }

  /** §5.3, Figure 2 "AppendEntries RPC, receiver implementation". */
  #handleAppend(m: Message): void {
    let prevIndex = m.index;
    let prevTerm = m.logTerm;
    let entries = m.entries;
    if (prevIndex < this.#commit) {
      // Committed entries are in every later leader's log (§5.4.3), so only what lies beyond them can differ;
      // this also keeps a late duplicate from rewriting what is committed.
      entries = entries.slice(Math.min(entries.length, this.#commit - prevIndex));
      prevIndex = this.#commit;
      prevTerm = this.#log.term(prevIndex) as number;
    }
    if (this.#log.term(prevIndex) !== prevTerm) {
      // §5.3, last paragraphs: instead of backing off one entry per round trip, name the last entry that could
      // still match: the last one at or before prevIndex whose term is not above the leader's term there.
      let hint = Math.min(prevIndex, this.#log.lastIndex);
      while (hint > this.#log.snapshotIndex && (this.#log.term(hint) as number) > prevTerm) hint--;
      this.#send({
        ...this.#blank('append-response', m.from),
        index: m.index,
        reject: true,
        rejectHint: hint,
        logTerm: this.#log.term(hint) ?? 0,
      });
      return;
    }
    const firstWritten = this.#log.merge(entries);
    if (firstWritten <= this.#stableIndex) this.#stableIndex = firstWritten - 1;
    // Only what this message proved matching counts; entries after it in our log might still be wrong (Figure 2 step 5).
    const lastNew = prevIndex + entries.length;
    this.#commit = Math.max(this.#commit, Math.min(m.commit, lastNew));
    this.#send({ ...this.#blank('append-response', m.from), index: lastNew });
  }

  #handleHeartbeat(m: Message): void {
    if (m.commit > this.#commit) this.#commit = Math.min(m.commit, this.#log.lastIndex);
    this.#send(this.#blank('heartbeat-response', m.from));
  }

  /** §7, Figure 13 "InstallSnapshot RPC, receiver implementation". */
  #handleSnapshot(m: Message): void {
    const snapshot = m.snapshot as Snapshot;
    if (snapshot.index <= this.#commit) {
      // Old news: everything it covers is committed here already.
      this.#send({ ...this.#blank('append-response', m.from), index: this.#commit });
      return;
    }
    if (this.#log.term(snapshot.index) === snapshot.term) {
      // Figure 13 step 6: the log already holds the snapshot's last entry, so keep the log and commit up to it.
      this.#commit = snapshot.index;
      this.#send({ ...this.#blank('append-response', m.from), index: snapshot.index });
      return;
    }
    // Figure 13 steps 7 and 8: discard the whole log and reset the state machine from the snapshot.
    this.#log.restore(snapshot);
    this.#commit = snapshot.index;
    this.#stableIndex = snapshot.index;
    this.#receivedSnapshot = snapshot;
    this.#send({ ...this.#blank('append-response', m.from), index: snapshot.index });
  }

  #handleAppendResponse(m: Message, pr: Progress): void {
    if (m.reject) {
      const stale =
        pr.state === 'snapshot' || m.index <= pr.match || (pr.state === 'probe' && m.index !== pr.next - 1);
      if (stale) return;
      const matchAt = this.#lastIndexNotAfterTerm(m.rejectHint, m.logTerm);
      pr.becomeProbe();
      pr.next = Math.max(pr.match + 1, Math.min(matchAt + 1, m.index));
      this.#sendAppend(m.from, true);
      return;
    }
    if (m.index > this.#log.lastIndex) return; // cannot match entries this leader never had
    const updated = pr.acknowledge(m.index);
    if (pr.state === 'probe' || (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot)) pr.becomeReplicate();
    if (updated) this.#maybeCommit();
    while (this.#sendAppend(m.from, false)) {
      // Fill the pipeline: each call sends one message and stops at maxInflightMessages.
    }
  }

  #handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.probeSent = false;
    // A full pipeline may be slow or may have lost a message. Freeing one slot keeps a slow link busy; if a message
    // was lost, the next append is refused and the follower is probed again.
    if (pr.state === 'replicate' && pr.inflight.length >= this.#maxInflight) pr.inflight.shift();
    if (pr.match < this.#log.lastIndex) this.#sendAppend(m.from, true);
  }

  /**
   * The leader's half of fast backtracking: the last index at or before `index` whose term is at most `term`. The
   * follower's log cannot match ours after it. Below our snapshot there is nothing to compare: return one less than
   * the snapshot index so that the follower is sent the snapshot.
   */
  #lastIndexNotAfterTerm(index: number, term: number): number {
    let i = Math.min(index, this.#log.lastIndex);
    while (i > this.#log.snapshotIndex && (this.#log.term(i) as number) > term) i--;
    if (i < this.#log.snapshotIndex) return this.#log.snapshotIndex - 1;
    if (i === this.#log.snapshotIndex && (this.#log.term(i) as number) > term) return i - 1;
    return i;
  }

  /** §5.3 and §5.4.2: commit the highest index a majority holds, but only by counting entries of the current term. */
  #maybeCommit(): boolean {
    const matches = this.#voters.map((v) => (v === this.#id ? this.#log.lastIndex : (this.#progress.get(v)?.match ?? 0)));
    matches.sort((a, b) => b - a);
    const candidate = matches[this.#quorum - 1] as number;
    if (candidate <= this.#commit || this.#log.term(candidate) !== this.#term) return false;
    this.#commit = candidate;
    // Tell the followers at once, so they apply it too.
    for (const peer of this.#peers) this.#sendAppend(peer, true);
    return true;
  }

  /**
   * Sends `peer` the entries from its next index (or a snapshot if those are compacted away). An empty append is
   * sent only when `allowEmpty` (to carry a new commit index, or to probe). Returns whether entries were sent.
   */
  #sendAppend(peer: NodeId, allowEmpty: boolean): boolean {
    const pr = this.#progress.get(peer);
    if (pr === undefined || pr.isPaused(this.#maxInflight)) return false;
    if (pr.next > this.#log.lastIndex + 1) pr.next = this.#log.lastIndex + 1;
    const prevIndex = pr.next - 1;
    const prevTerm = this.#log.term(prevIndex);
    if (prevTerm === undefined) {
      this.#sendSnapshot(peer, pr);
      return false;
    }
    const entries = this.#boundedEntries(pr.next);
    if (entries.length === 0 && !allowEmpty) return false;
    this.#send({
      ...this.#blank('append', peer),
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.#commit,
    });
    const last = entries[entries.length - 1];
    if (pr.state === 'probe') {
      pr.probeSent = true;
    } else if (last !== undefined) {
      pr.next = last.index + 1;
      pr.inflight.push(last.index);
    }
    return last !== undefined;
  }

  #sendSnapshot(peer: NodeId, pr: Progress): void {
    const snapshot = this.#log.snapshot;
    if (snapshot === null) return; // unreachable: only a snapshot removes entries
    this.#send({
      ...this.#blank('snapshot', peer),
      index: snapshot.index,
      logTerm: snapshot.term,
      commit: this.#commit,
      snapshot,
    });
    pr.becomeSnapshot(snapshot.index);
  }

  #boundedEntries(from: number): Entry[] {
    const candidates = this.#log.slice(from, from + this.#maxEntriesPerMessage - 1);
    let bytes = 0;
    let n = 0;
    for (const e of candidates) {
      bytes += e.data.length;
      if (n > 0 && bytes > this.#maxMessageBytes) break;
      n++;
    }
    return n === candidates.length ? candidates : candidates.slice(0, n);
  }

  // --- helpers ---

  #hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#commit };
  }

  #blank(type: MessageType, to: NodeId): Message {
    return {
      type,
      from: this.#id,
      to,
      term: this.#term,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      snapshot: null,
    };
  }

  #send(m: Message): void {
    this.#messages.push(m);
  }

  /** Typed messages can still be nonsense (a buggy or hostile peer): such messages are dropped before any state changes. */
  #isWellFormed(m: Message): boolean {
    if (typeof m !== 'object' || m === null) return false;
    if (!(messageTypes as readonly string[]).includes(m.type)) return false;
    if (m.to !== this.#id || m.from === this.#id || !this.#voterSet.has(m.from)) return false;
    if (!isCount(m.term) || !isCount(m.logTerm) || !isCount(m.index) || !isCount(m.commit) || !isCount(m.rejectHint)) {
      return false;
    }
    if (typeof m.reject !== 'boolean' || !Array.isArray(m.entries)) return false;
    if (m.type === 'append') {
      let previousTerm = m.logTerm;
      for (let i = 0; i < m.entries.length; i++) {
        const e = m.entries[i] as Entry;
        if (typeof e !== 'object' || e === null || e.index !== m.index + 1 + i) return false;
        if (!isCount(e.term) || e.term < previousTerm || e.term > m.term) return false;
        if (!(entryTypes as readonly string[]).includes(e.type) || !(e.data instanceof Uint8Array)) return false;
        previousTerm = e.term;
      }
      if (m.logTerm > m.term) return false;
    } else if (m.entries.length > 0) {
      return false;
    }
    if (m.type === 'snapshot') {
      const s = m.snapshot;
      if (typeof s !== 'object' || s === null || !isCount(s.index) || !isCount(s.term)) return false;
      if (s.index === 0 || s.term === 0 || s.term > m.term || !(s.data instanceof Uint8Array)) return false;
    }
    return true;
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function validateConfig(config: RaftConfig): void {
  check(typeof config.id === 'string' && config.id !== '', 'raft: id must be a non-empty string');
  check(Array.isArray(config.voters) && config.voters.includes(config.id), `raft: voters must include ${config.id}`);
  check(new Set(config.voters).size === config.voters.length, 'raft: voters must be distinct');
  check(config.voters.every((v) => typeof v === 'string' && v !== ''), 'raft: voter ids must be non-empty strings');
  check(Number.isSafeInteger(config.electionTicks) && config.electionTicks >= 2, 'raft: electionTicks must be >= 2');
  check(
    Number.isSafeInteger(config.heartbeatTicks) &&
      config.heartbeatTicks >= 1 &&
      config.heartbeatTicks < config.electionTicks,
    'raft: heartbeatTicks must be >= 1 and below electionTicks',
  );
  check(config.random !== null && typeof config.random === 'object', 'raft: random is required');
  for (const name of ['maxEntriesPerMessage', 'maxMessageBytes', 'maxInflightMessages', 'maxUncommittedEntries'] as const) {
    const value = config[name];
    check(value === undefined || (Number.isSafeInteger(value) && value >= 1), `raft: ${name} must be >= 1`);
  }
}

/**
 * What was persisted must be a log Raft could have produced; anything else means the store is damaged. Two states
 * that a crash between the caller's writes leaves behind (README, duty 1) are repaired instead: entries the snapshot
 * already covers (or that cannot follow it) are dropped, and a log that reached a newer term than the hard state moves the node to that term
 * (with no vote: any vote cast there was never sent, since messages go out only after persisting).
 */
function normalizePersisted(state: PersistedState): PersistedState {
  const corrupt = (what: string): never => {
    throw new StorageError('CORRUPT_DATA', `raft persisted state: ${what}`);
  };
  const { hardState, snapshot } = state;
  if (!isCount(hardState.term) || !isCount(hardState.commit) || typeof hardState.vote !== 'string') {
    corrupt('malformed hard state');
  }
  let index = 0;
  let term = 0;
  if (snapshot !== null) {
    if (!isCount(snapshot.index) || !isCount(snapshot.term) || !(snapshot.data instanceof Uint8Array)) {
      corrupt('malformed snapshot');
    }
    index = snapshot.index;
    term = snapshot.term;
  }
  let entries = state.entries.filter((e) => !(e.index <= index));
  // Entries from before a snapshot replaced the whole log, left behind by a caller that deleted only those the
  // snapshot covers: an older term cannot follow the snapshot, so that suffix is someone else's uncommitted history.
  if (snapshot !== null && entries.length > 0 && isCount(entries[0]?.term) && (entries[0] as Entry).term < term) {
    entries = [];
  }
  for (const e of entries) {
    if (e.index !== index + 1) corrupt(`entry ${e.index} follows ${index}`);
    if (!isCount(e.term) || e.term < term) corrupt(`entry ${e.index} has term ${e.term} after term ${term}`);
    if (!(entryTypes as readonly string[]).includes(e.type) || !(e.data instanceof Uint8Array)) {
      corrupt(`entry ${e.index} is malformed`);
    }
    index = e.index;
    term = e.term;
  }
  if (hardState.commit > index) corrupt(`commit ${hardState.commit} is beyond the last entry ${index}`);
  const repaired = term > hardState.term ? { term, vote: '', commit: hardState.commit } : { ...hardState };
  return { hardState: repaired, snapshot, entries };
}
