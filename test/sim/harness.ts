/**
 * Deterministic simulation of a Raft cluster (TigerBeetle's VOPR and FoundationDB's simulator are the models): 3 or 5
 * RaftNodes on one thread, over a simulated network and simulated durable storage, with every choice drawn from one
 * seeded Random. The same seed replays the same run exactly, so a failure is a seed, not a flake.
 *
 * Fault model (each run draws its own intensity of each, so some runs are calm and others stormy):
 * - network: loss, delay, very late delivery, duplication, reordering; partitions (a split, an isolated node, the
 *   leader cut off, one-way cuts) that heal;
 * - nodes: crash and restart, losing everything not persisted; crashes in the middle of handling a Ready, after any
 *   prefix of its writes (snapshot, entries, hard state, in the order README.md prescribes), and in the middle of a
 *   compaction;
 * - clients: commands proposed at random, mostly to whoever believes it leads, sometimes to anyone;
 * - compaction at random, so lagging and restarted followers are brought up to date with snapshots.
 *
 * Checkers, run after every event:
 * - election safety (Raft §5.2): at most one leader per term, and no node grants two candidates in one term;
 * - leader completeness (Raft §5.4): a new leader's durable log holds every entry committed so far;
 * - the commit rule (Raft §5.4.2): a leader moves its commit index only onto an entry of its own term;
 * - state machine safety (Raft §5.4.3): an index, once applied anywhere, has the same entry everywhere, forever,
 *   across crashes; every node applies indices in order without gaps;
 * - the application: every node that has applied up to index i has the same state digest at i (snapshots included);
 * - durable state: a term never goes back, a vote is never changed within a term, the commit index never goes back,
 *   a written log is contiguous and a committed entry is never deleted from it;
 * - liveness, after healing every fault: a leader is elected, every node reaches the same commit within a bound, a
 *   last command commits, and every command a client saw committed is in the final log.
 */
import { Random, isStorageError } from '../../src/common/index.js';
import {
  RaftNode,
  type Entry,
  type HardState,
  type Message,
  type PersistedState,
  type RaftConfig,
  type Snapshot,
} from '../../src/consensus/index.js';
import { decodeRaftMessage, encodeRaftMessage } from '../../src/protocol/index.js';
import { SimNetwork, type NetworkConditions } from './network.js';
import { kvCommand, kvStateMachine, type CommandGenerator, type KvState, type StateMachine } from './state-machine.js';

export interface FaultProfile {
  network: NetworkConditions;
  /** Per simulated millisecond, the chance that some node crashes. */
  crashRatePerMs: number;
  /** A crashed node restarts after up to this long. */
  downMsMax: number;
  /** Per Ready, the chance that the node crashes while handling it. */
  crashInReadyRate: number;
  /** Per granted vote, the chance that the voter crashes right after sending it and restarts soon. */
  crashAfterVoteRate: number;
  /** Per simulated millisecond, the chance that a partition starts (one at a time). */
  partitionRatePerMs: number;
  partitionMsMax: number;
  /** Per simulated millisecond, the chance that a client proposes a command. */
  proposalRatePerMs: number;
  /** Per Ready, the chance that the node compacts its log (once it has applied `compactionMinEntries` past the last snapshot). */
  compactionRate: number;
  compactionMinEntries: number;
}

export type RaftTuning = Pick<
  RaftConfig,
  'electionTicks' | 'heartbeatTicks' | 'preVote' | 'checkQuorum' | 'maxEntriesPerMessage' | 'maxInflightMessages' | 'maxUncommittedEntries'
>;

export interface SimOptions<S = KvState> {
  seed: number;
  /** Cluster size; by default 3 or 5, chosen by the seed. */
  nodes?: number;
  stateMachine?: StateMachine<S>;
  command?: CommandGenerator;
  /** How long faults are injected (simulated ms). */
  chaosMs?: number;
  /** After healing, the cluster must elect a leader and converge within this long (simulated ms), plus one round
   * trip per message's worth of entries the most lagging node lacks (default: 100 election timeouts). */
  livenessMs?: number;
  /** Simulated ms per Raft tick. */
  tickMs?: number;
  /** Overrides of the seed-drawn Raft settings. */
  raft?: Partial<RaftTuning>;
  /** Overrides of the seed-drawn fault profile. */
  faults?: Partial<FaultProfile>;
  /** Pass every message through the protobuf codec (default true): catches aliasing and codec gaps. */
  wireCodec?: boolean;
  /** Keep the last N events, printed when a check fails (default 0: none, for speed). */
  traceEvents?: number;
}

export interface SimStats {
  nodes: number;
  simulatedMs: number;
  /** Simulated ms from healing until every node converged. */
  convergedAfterMs: number;
  /** Entries the most lagging node lacked when the faults were healed. */
  backlogAtHeal: number;
  leaders: number;
  highestTerm: number;
  committed: number;
  proposals: number;
  refused: number;
  acked: number;
  crashes: number;
  crashesInReady: number;
  partitions: number;
  compactions: number;
  snapshotsInstalled: number;
  messages: number;
  preVote: boolean;
  checkQuorum: boolean;
}

export class SimulationFailure extends Error {
  readonly seed: number;

  constructor(seed: number, nodes: number, nowMs: number, what: string, trace: string[]) {
    const lines = [
      `raft simulation failed (seed ${seed}, ${nodes} nodes, at ${nowMs} ms): ${what}`,
      `reproduce with SHOAL_SEED=${seed} node scripts/test.mjs sim`,
    ];
    if (trace.length > 0) lines.push(`last ${trace.length} events:`, ...trace.map((t) => `  ${t}`));
    super(lines.join('\n'));
    this.name = 'SimulationFailure';
    this.seed = seed;
  }
}

/** What a simulated node keeps on its simulated disk: exactly what Readies told it to persist. */
export interface SimDisk {
  hardState: HardState;
  snapshot: Snapshot | null;
  /** Contiguous; may start at or before the snapshot when a crash interrupted a compaction. */
  entries: Entry[];
}

interface Proposal {
  index: number;
  term: number;
  data: Uint8Array;
}

export class SimNode<S> {
  readonly id: string;
  disk: SimDisk = { hardState: { term: 0, vote: '', commit: 0 }, snapshot: null, entries: [] };
  /** null while crashed. */
  raft: RaftNode | null = null;
  state: S;
  appliedIndex = 0;
  nextTickMs = 0;
  restartAtMs = 0;
  /** Commands this node accepted as leader, by index, until applied here (then acked) or lost. */
  readonly pending = new Map<number, Proposal>();

  constructor(id: string, state: S) {
    this.id = id;
    this.state = state;
  }

  get up(): boolean {
    return this.raft !== null;
  }
}

/** Draws a fault profile: the seed decides how hostile this run is. */
function drawProfile(random: Random): FaultProfile {
  const stormy = random.chance(0.7);
  const delayMaxMs = random.int(2, stormy ? 40 : 10);
  return {
    network: {
      lossRate: stormy ? random.pick([0, 0.01, 0.05, 0.1, 0.2]) : 0,
      duplicateRate: random.pick([0, 0, 0.01, 0.05]),
      delayMinMs: 1,
      delayMaxMs,
      longDelayRate: stormy ? random.pick([0, 0.001, 0.01]) : 0,
      longDelayMaxMs: random.int(100, 1500),
    },
    crashRatePerMs: random.pick([0, 1 / 4000, 1 / 1500, 1 / 500]),
    downMsMax: random.int(50, 2000),
    crashInReadyRate: random.pick([0, 0.0005, 0.002, 0.01]),
    crashAfterVoteRate: random.pick([0, 0.1, 0.3]),
    partitionRatePerMs: random.pick([0, 1 / 3000, 1 / 1000, 1 / 300]),
    partitionMsMax: random.int(100, 3000),
    proposalRatePerMs: random.pick([0.005, 0.02, 0.05, 0.15]),
    compactionRate: random.pick([0, 0.02, 0.1, 0.5]),
    compactionMinEntries: random.int(1, 40),
  };
}

function drawTuning(random: Random): RaftTuning {
  const electionTicks = random.int(5, 15);
  return {
    electionTicks,
    heartbeatTicks: random.int(1, Math.max(1, Math.floor(electionTicks / 4))),
    preVote: random.chance(0.9),
    checkQuorum: random.chance(0.9),
    maxEntriesPerMessage: random.pick([1, 2, 8, 64]),
    maxInflightMessages: random.pick([1, 4, 64]),
    maxUncommittedEntries: random.pick([16, 4096]),
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describe(m: Message): string {
  const entries = m.entries.length > 0 ? ` [${m.entries[0]?.index}..${m.entries[m.entries.length - 1]?.index}]` : '';
  const snap = m.snapshot ? ` snapshot@${m.snapshot.index}` : '';
  const reject = m.reject ? ` reject hint=${m.rejectHint}` : '';
  return `${m.type} ${m.from}->${m.to} term=${m.term} index=${m.index} logTerm=${m.logTerm} commit=${m.commit}${entries}${snap}${reject}`;
}

export class Simulation<S = KvState> {
  readonly seed: number;
  readonly ids: string[];
  readonly nodes: Map<string, SimNode<S>>;
  readonly network: SimNetwork<Message>;
  readonly profile: FaultProfile;
  readonly tuning: RaftTuning;
  readonly stats: SimStats;
  nowMs = 0;

  readonly #machine: StateMachine<S>;
  readonly #command: CommandGenerator;
  readonly #tickMs: number;
  readonly #chaosMs: number;
  readonly #livenessMs: number;
  readonly #wireCodec: boolean;
  // Independent streams, so that e.g. one more proposal does not shift every later network decision.
  readonly #faultRandom: Random;
  readonly #clientRandom: Random;
  readonly #raftRandom: Random;
  #chaos = true;
  #partitionEndsMs = -1;
  #commandSequence = 0;
  #catchUpMs = 0;

  // What the checkers have seen.
  readonly #committed = new Map<number, { term: number; data: Uint8Array }>();
  #committedMax = 0;
  readonly #digests = new Map<number, string>();
  readonly #leaders = new Map<number, string>();
  /** `${term}/${voter}` -> the candidate it granted. */
  readonly #votes = new Map<string, string>();
  readonly #acked: Proposal[] = [];
  readonly #trace: string[] = [];
  readonly #traceEvents: number;

  constructor(options: SimOptions<S>) {
    this.seed = options.seed >>> 0;
    const random = new Random(this.seed);
    const count = options.nodes ?? random.pick([3, 5]);
    this.ids = Array.from({ length: count }, (_, i) => String.fromCharCode(97 + i));
    this.profile = { ...drawProfile(random.fork()), ...options.faults };
    this.tuning = { ...drawTuning(random.fork()), ...options.raft };
    this.network = new SimNetwork<Message>(random.fork(), this.profile.network);
    this.#faultRandom = random.fork();
    this.#clientRandom = random.fork();
    this.#raftRandom = random.fork();
    this.#machine = (options.stateMachine ?? kvStateMachine) as StateMachine<S>;
    this.#command = options.command ?? kvCommand;
    this.#tickMs = options.tickMs ?? 10;
    this.#chaosMs = options.chaosMs ?? 4000;
    this.#livenessMs = options.livenessMs ?? 100 * this.tuning.electionTicks * this.#tickMs;
    this.#wireCodec = options.wireCodec ?? true;
    this.#traceEvents = options.traceEvents ?? 0;
    this.stats = {
      nodes: count,
      simulatedMs: 0,
      convergedAfterMs: 0,
      backlogAtHeal: 0,
      leaders: 0,
      highestTerm: 0,
      committed: 0,
      proposals: 0,
      refused: 0,
      acked: 0,
      crashes: 0,
      crashesInReady: 0,
      partitions: 0,
      compactions: 0,
      snapshotsInstalled: 0,
      messages: 0,
      preVote: this.tuning.preVote,
      checkQuorum: this.tuning.checkQuorum,
    };
    this.nodes = new Map(this.ids.map((id) => [id, new SimNode<S>(id, this.#machine.initial())]));
    for (const node of this.nodes.values()) this.#start(node);
  }

  /** The whole run: chaos, then heal, then convergence and the final checks. Throws SimulationFailure. */
  run(): SimStats {
    try {
      return this.#run();
    } catch (error) {
      if (error instanceof SimulationFailure) throw error;
      // A throw from inside Raft or the harness is a failure of this seed like any other.
      const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
      throw new SimulationFailure(this.seed, this.ids.length, this.nowMs, `unexpected error: ${detail}`, this.#trace);
    }
  }

  #run(): SimStats {
    while (this.nowMs < this.#chaosMs) this.step();
    this.heal();
    const healedAtMs = this.nowMs;
    // The bound: elections get `livenessMs`; catching up gets one slowest round trip per message of entries a node
    // lacks (flow control may allow a single message in flight), so a long backlog is not mistaken for a stall.
    const nodes = [...this.nodes.values()];
    const backlog = Math.max(...nodes.map((n) => n.raft?.lastIndex ?? 0)) - Math.min(...nodes.map((n) => n.appliedIndex));
    const roundTripMs = 2 * (this.profile.network.delayMaxMs + this.#tickMs);
    this.stats.backlogAtHeal = backlog;
    this.#catchUpMs = Math.ceil(backlog / (this.tuning.maxEntriesPerMessage ?? 64)) * roundTripMs;
    this.#runUntil(() => this.#converged(), 'no convergence after healing');
    // The healed cluster must also accept a write, and every node must apply it.
    const leader = this.#singleLeader() as SimNode<S>;
    const last = this.#proposeOn(leader);
    if (last === undefined) this.#fail(`the converged leader ${leader.id} refused a proposal`);
    this.#runUntil(() => this.#converged() && [...this.nodes.values()].every((n) => n.appliedIndex >= last), 'the last command did not commit');
    this.stats.convergedAfterMs = this.nowMs - healedAtMs;
    this.#finalChecks();
    this.stats.simulatedMs = this.nowMs;
    this.stats.committed = this.#committedMax;
    this.stats.messages = this.network.stats.sent;
    return this.stats;
  }

  /** Advances simulated time by one millisecond. */
  step(): void {
    this.nowMs++;
    if (this.#chaos) this.#injectFaults();
    for (const node of this.nodes.values()) {
      if (!node.up && node.restartAtMs > 0 && this.nowMs >= node.restartAtMs) this.#start(node);
    }
    for (const m of this.network.due(this.nowMs)) this.#deliver(m);
    for (const node of this.nodes.values()) {
      if (node.raft === null || this.nowMs < node.nextTickMs) continue;
      node.nextTickMs = this.nowMs + this.#tickMs + this.#faultRandom.int(-1, 1);
      node.raft.tick();
      this.#drain(node);
    }
    if (this.#chaos && this.#clientRandom.chance(this.profile.proposalRatePerMs)) this.#clientProposes();
  }

  /** Ends every fault: restarts crashed nodes, heals partitions, and makes the network lossless (but still slow). */
  heal(): void {
    this.#chaos = false;
    this.network.heal();
    this.network.conditions = { ...this.network.conditions, lossRate: 0, longDelayRate: 0 };
    for (const node of this.nodes.values()) if (!node.up) this.#start(node);
    this.#event('heal: all nodes up, no partition, no loss');
  }

  // --- faults ---

  #injectFaults(): void {
    const r = this.#faultRandom;
    const p = this.profile;
    if (r.chance(p.crashRatePerMs)) {
      const up = [...this.nodes.values()].filter((n) => n.up);
      if (up.length > 1) this.#crash(r.pick(up), 'crash');
    }
    if (this.#partitionEndsMs >= 0 && this.nowMs >= this.#partitionEndsMs) {
      this.network.heal();
      this.#partitionEndsMs = -1;
      this.#event('partition healed');
    }
    if (this.#partitionEndsMs < 0 && r.chance(p.partitionRatePerMs)) this.#partition();
  }

  #partition(): void {
    const r = this.#faultRandom;
    const ids = this.ids;
    const leader = this.#believedLeaders()[0]?.id ?? r.pick(ids);
    const kind = r.pick(['split', 'isolate', 'isolate-leader', 'one-way', 'deaf', 'mute'] as const);
    let description: string;
    switch (kind) {
      case 'split': {
        const shuffled = r.shuffle(ids);
        const cut = r.int(1, ids.length - 1);
        const groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
        this.network.partition(groups);
        description = groups.map((g) => g.join('')).join(' | ');
        break;
      }
      case 'isolate':
      case 'isolate-leader': {
        const alone = kind === 'isolate' ? r.pick(ids) : leader;
        this.network.partition([[alone], ids.filter((id) => id !== alone)]);
        description = `${alone} alone`;
        break;
      }
      case 'deaf':
      case 'mute': {
        // One-way: the node hears but cannot speak (mute), or speaks but cannot hear (deaf).
        const node = r.chance(0.5) ? leader : r.pick(ids);
        for (const other of ids) {
          if (other === node) continue;
          if (kind === 'mute') this.network.block(node, other);
          else this.network.block(other, node);
        }
        description = `${node} ${kind}`;
        break;
      }
      case 'one-way': {
        const edges: string[] = [];
        for (const from of ids) {
          for (const to of ids) {
            if (from !== to && r.chance(0.3)) {
              this.network.block(from, to);
              edges.push(`${from}>${to}`);
            }
          }
        }
        description = edges.join(' ') || 'nothing';
        break;
      }
    }
    this.#partitionEndsMs = this.nowMs + r.int(50, this.profile.partitionMsMax);
    this.stats.partitions++;
    this.#event(`partition (${kind}): ${description} until ${this.#partitionEndsMs} ms`);
  }

  #crash(node: SimNode<S>, why: string, downMsMax = this.profile.downMsMax): void {
    node.raft = null;
    node.pending.clear();
    // Messages already on their way are not dropped: those arriving while it is down are lost on arrival, later
    // ones reach the restarted node, which must not trust anything it said before the crash but did not persist.
    node.restartAtMs = this.nowMs + this.#faultRandom.int(1, Math.max(1, downMsMax));
    this.stats.crashes++;
    this.#event(`${why}: ${node.id} down until ${node.restartAtMs} ms`);
  }

  /** Boots or reboots a node from its disk: everything else it knew is gone. */
  #start(node: SimNode<S>): void {
    const disk = node.disk;
    const persisted: PersistedState = { hardState: { ...disk.hardState }, snapshot: disk.snapshot, entries: disk.entries.slice() };
    node.raft = new RaftNode(
      { id: node.id, voters: this.ids, random: this.#raftRandom.fork(), ...this.tuning },
      persisted,
    );
    node.state = disk.snapshot ? this.#machine.restore(disk.snapshot.data) : this.#machine.initial();
    node.appliedIndex = disk.snapshot?.index ?? 0;
    if (disk.snapshot) this.#checkDigest(node, disk.snapshot.index, 'after restart from its snapshot');
    node.nextTickMs = this.nowMs + this.#faultRandom.int(1, this.#tickMs);
    node.restartAtMs = 0;
    this.#event(`${node.id} starts: term ${disk.hardState.term}, commit ${disk.hardState.commit}, snapshot ${disk.snapshot?.index ?? 0}, ${disk.entries.length} entries`);
    this.#drain(node);
  }

  // --- driving nodes ---

  #deliver(m: Message): void {
    const node = this.nodes.get(m.to);
    if (node?.raft == null) return;
    if (this.#traceEvents > 0) this.#event(`deliver ${describe(m)}`);
    node.raft.step(m);
    this.#drain(node);
  }

  #send(m: Message): void {
    this.network.send(this.#wireCodec ? decodeRaftMessage(encodeRaftMessage(m)) : m, this.nowMs);
  }

  #clientProposes(): void {
    const r = this.#clientRandom;
    const leaders = this.#believedLeaders();
    const target = leaders.length > 0 && r.chance(0.85) ? r.pick(leaders) : (this.nodes.get(r.pick(this.ids)) as SimNode<S>);
    if (!target.up) {
      this.stats.refused++;
      return;
    }
    this.#proposeOn(target);
  }

  #proposeOn(node: SimNode<S>): number | undefined {
    const raft = node.raft as RaftNode;
    const data = this.#command(this.#clientRandom, this.#commandSequence++);
    let index: number;
    try {
      index = raft.propose(data);
    } catch (error) {
      if (isStorageError(error, 'NOT_LEADER') || isStorageError(error, 'BUSY')) {
        this.stats.refused++;
        return undefined;
      }
      throw error;
    }
    this.stats.proposals++;
    node.pending.set(index, { index, term: raft.term, data });
    if (this.#traceEvents > 0) this.#event(`${node.id} accepts a command at index ${index}, term ${raft.term}`);
    this.#drain(node);
    return index;
  }

  /** Handles every Ready of `node` as README.md prescribes, possibly crashing part-way. */
  #drain(node: SimNode<S>): void {
    const raft = node.raft;
    if (raft === null) return;
    const r = this.#faultRandom;
    let readies = 0;
    while (node.raft === raft && raft.hasReady()) {
      // Each input yields a few Readies; an endless stream means the node is stuck, which must fail, not hang.
      if (++readies > 1000) this.#fail(`${node.id} keeps having a Ready: its Ready loop never ends`);
      const rd = raft.ready();
      // How many of the three writes happen before a crash (3: all written, nothing sent); 4: no crash.
      const crashAfter = this.#chaos && r.chance(this.profile.crashInReadyRate) ? r.int(0, 3) : 4;
      const crash = (done: number): boolean => {
        if (crashAfter !== done) return false;
        this.stats.crashesInReady++;
        this.#crash(node, `crash while handling a Ready, after ${done} of 3 writes`);
        return true;
      };
      if (crash(0)) return;
      if (rd.snapshot) this.#writeSnapshot(node, rd.snapshot, 'received');
      if (crash(1)) return;
      if (rd.entries.length > 0) this.#writeEntries(node, rd.entries);
      if (crash(2)) return;
      if (rd.hardState) {
        const committedBefore = node.disk.hardState.commit;
        this.#writeHardState(node, rd.hardState);
        if (raft.role === 'leader' && rd.hardState.commit > committedBefore) this.#checkCommitRule(node, rd.hardState);
      }
      if (crash(3)) return;
      let votedFor = '';
      for (const m of rd.messages) {
        if (m.type === 'vote-response' && !m.reject) {
          this.#checkVote(m);
          votedFor = m.to;
        }
        this.#send(m);
      }
      if (votedFor !== '' && this.#chaos && r.chance(this.profile.crashAfterVoteRate)) {
        // A targeted fault: a node that forgets its vote on restart would grant another candidate's late request.
        this.stats.crashesInReady++;
        this.#crash(node, `crash right after voting for ${votedFor}`, 2 * this.profile.network.delayMaxMs);
        return;
      }
      if (rd.snapshot) this.#loadSnapshot(node, rd.snapshot);
      for (const e of rd.committedEntries) this.#apply(node, e);
      raft.advance(rd);
      if (rd.softState) this.#event(`${node.id} is ${rd.softState.role} in term ${raft.term} (leader '${rd.softState.leader}')`);
      this.#checkLeader(node);
      this.#maybeCompact(node);
    }
  }

  #maybeCompact(node: SimNode<S>): void {
    const raft = node.raft as RaftNode;
    const p = this.profile;
    if (node.appliedIndex - raft.snapshotIndex < p.compactionMinEntries || !this.#faultRandom.chance(p.compactionRate)) return;
    const snapshot = raft.compact(node.appliedIndex, this.#machine.snapshot(node.state));
    this.stats.compactions++;
    this.#writeSnapshot(node, snapshot, 'compacted');
    if (this.#chaos && this.#faultRandom.chance(this.profile.crashInReadyRate)) {
      this.stats.crashesInReady++;
      this.#crash(node, `crash while compacting at ${snapshot.index}, before deleting entries`);
      return;
    }
    const disk = node.disk;
    disk.entries = disk.entries.filter((e) => e.index > snapshot.index);
  }

  // --- the simulated disk, and the checks on what is written to it ---

  #writeSnapshot(node: SimNode<S>, snapshot: Snapshot, how: 'received' | 'compacted'): void {
    const disk = node.disk;
    if (disk.snapshot && snapshot.index <= disk.snapshot.index) {
      this.#fail(`${node.id} ${how} snapshot ${snapshot.index}, not after its stored snapshot ${disk.snapshot.index}`);
    }
    const committed = this.#committed.get(snapshot.index);
    if (committed && committed.term !== snapshot.term) {
      this.#fail(`${node.id} ${how} snapshot at ${snapshot.index} with term ${snapshot.term}, but ${committed.term} committed there`);
    }
    disk.snapshot = snapshot;
    // A received snapshot replaces the whole log (Raft §7).
    if (how === 'received') disk.entries = [];
  }

  #writeEntries(node: SimNode<S>, entries: Entry[]): void {
    const disk = node.disk;
    const first = (entries[0] as Entry).index;
    const storedFirst = disk.entries[0]?.index ?? first;
    const keep = Math.max(0, first - storedFirst);
    for (let i = keep; i < disk.entries.length; i++) {
      const removed = disk.entries[i] as Entry;
      if (this.#committed.get(removed.index)?.term === removed.term) {
        this.#fail(`${node.id} deletes committed entry ${removed.index} (term ${removed.term}) from its log`);
      }
    }
    if (keep < disk.entries.length) disk.entries.length = keep;
    const lastStored = disk.entries[disk.entries.length - 1]?.index ?? disk.snapshot?.index ?? 0;
    if (first !== lastStored + 1) {
      this.#fail(`${node.id} was asked to write entries from ${first} after stored ${lastStored}: a gap`);
    }
    for (const e of entries) disk.entries.push(e);
  }

  #writeHardState(node: SimNode<S>, hs: HardState): void {
    const prev = node.disk.hardState;
    if (hs.term < prev.term) this.#fail(`${node.id} persists term ${hs.term} after term ${prev.term}`);
    if (hs.term === prev.term && prev.vote !== '' && hs.vote !== prev.vote) {
      this.#fail(`${node.id} changes its vote in term ${hs.term} from ${prev.vote} to '${hs.vote}'`);
    }
    if (hs.commit < prev.commit) this.#fail(`${node.id} persists commit ${hs.commit} after ${prev.commit}`);
    node.disk.hardState = { ...hs };
  }

  // --- the application ---

  #loadSnapshot(node: SimNode<S>, snapshot: Snapshot): void {
    node.state = this.#machine.restore(snapshot.data);
    node.appliedIndex = snapshot.index;
    for (const index of node.pending.keys()) if (index <= snapshot.index) node.pending.delete(index);
    this.stats.snapshotsInstalled++;
    this.#event(`${node.id} installs snapshot ${snapshot.index} (term ${snapshot.term})`);
    this.#checkDigest(node, snapshot.index, 'after installing a snapshot');
  }

  #apply(node: SimNode<S>, e: Entry): void {
    if (e.index !== node.appliedIndex + 1) this.#fail(`${node.id} applies ${e.index} after ${node.appliedIndex}`);
    const known = this.#committed.get(e.index);
    if (known === undefined) {
      this.#committed.set(e.index, { term: e.term, data: e.data });
      if (e.index > this.#committedMax) this.#committedMax = e.index;
    } else if (known.term !== e.term || !sameBytes(known.data, e.data)) {
      this.#fail(`${node.id} applies index ${e.index} with term ${e.term}, but term ${known.term} was applied there before`);
    }
    if (e.type === 'normal') node.state = this.#machine.apply(node.state, e.data);
    node.appliedIndex = e.index;
    this.#checkDigest(node, e.index, 'after applying');
    const proposal = node.pending.get(e.index);
    if (proposal !== undefined) {
      node.pending.delete(e.index);
      // The client is told "committed" only when the leader applies the very entry it proposed.
      if (proposal.term === e.term && sameBytes(proposal.data, e.data)) {
        this.#acked.push(proposal);
        this.stats.acked++;
      }
    }
  }

  #checkDigest(node: SimNode<S>, index: number, when: string): void {
    const broken = this.#machine.check?.(node.state);
    if (broken !== undefined) this.#fail(`${node.id} at index ${index} ${when}: ${broken}`);
    const digest = this.#machine.digest(node.state);
    const known = this.#digests.get(index);
    if (known === undefined) this.#digests.set(index, digest);
    else if (known !== digest) this.#fail(`${node.id} state at index ${index} ${when} is ${digest}, others had ${known}`);
  }

  // --- cluster-wide checks ---

  #checkLeader(node: SimNode<S>): void {
    const raft = node.raft as RaftNode;
    if (raft.role !== 'leader') return;
    const known = this.#leaders.get(raft.term);
    if (known === node.id) return;
    if (known !== undefined) this.#fail(`election safety: ${known} and ${node.id} both lead term ${raft.term}`);
    this.#leaders.set(raft.term, node.id);
    this.stats.leaders++;
    this.stats.highestTerm = Math.max(this.stats.highestTerm, raft.term);
    // Leader completeness (§5.4): its durable log must already hold everything committed.
    const disk = node.disk;
    const covered = disk.snapshot?.index ?? 0;
    const byIndex = new Map(disk.entries.map((e) => [e.index, e.term]));
    for (let i = covered + 1; i <= this.#committedMax; i++) {
      const committed = this.#committed.get(i);
      if (committed !== undefined && byIndex.get(i) !== committed.term) {
        this.#fail(`leader completeness: ${node.id} leads term ${raft.term} without committed entry ${i} (term ${committed.term})`);
      }
    }
  }

  /** Raft §5.2: each node grants at most one vote per term, whatever happens to it in between (crashes included). */
  #checkVote(m: Message): void {
    const key = `${m.term}/${m.from}`;
    const granted = this.#votes.get(key);
    if (granted === undefined) this.#votes.set(key, m.to);
    else if (granted !== m.to) this.#fail(`one vote per term: ${m.from} voted for ${granted} and ${m.to} in term ${m.term}`);
  }

  /** Raft §5.4.2: a leader moves its commit index only onto an entry of its own term (older ones commit with it). */
  #checkCommitRule(node: SimNode<S>, hs: HardState): void {
    const disk = node.disk;
    const at = disk.entries[hs.commit - (disk.entries[0]?.index ?? 0)];
    if (at === undefined || at.index !== hs.commit || at.term !== hs.term) {
      this.#fail(`commit rule: leader ${node.id} of term ${hs.term} commits ${hs.commit}, an entry of term ${at?.term ?? '?'}`);
    }
  }

  #believedLeaders(): SimNode<S>[] {
    return [...this.nodes.values()].filter((n) => n.raft?.role === 'leader');
  }

  #singleLeader(): SimNode<S> | undefined {
    const leaders = this.#believedLeaders();
    return leaders.length === 1 ? leaders[0] : undefined;
  }

  #converged(): boolean {
    const leader = this.#singleLeader()?.raft;
    if (!leader || leader.commitIndex !== leader.lastIndex) return false;
    for (const node of this.nodes.values()) {
      const raft = node.raft;
      if (!raft || raft.term !== leader.term || raft.leader !== leader.id) return false;
      if (raft.commitIndex !== leader.commitIndex || node.appliedIndex !== raft.commitIndex) return false;
    }
    return true;
  }

  #runUntil(done: () => boolean, failure: string): void {
    const limitMs = this.#livenessMs + this.#catchUpMs;
    const deadline = this.nowMs + limitMs;
    while (!done()) {
      if (this.nowMs >= deadline) {
        const states = [...this.nodes.values()].map((n) => {
          const s = n.raft?.status();
          return s ? `${n.id}: ${s.role} term ${s.term} leader '${s.leader}' commit ${s.commit} applied ${n.appliedIndex} last ${s.lastIndex}` : `${n.id}: down`;
        });
        this.#fail(`liveness: ${failure} within ${limitMs} ms (${states.join('; ')})`);
      }
      this.step();
    }
  }

  #finalChecks(): void {
    const nodes = [...this.nodes.values()];
    const applied = (nodes[0] as SimNode<S>).appliedIndex;
    const digest = this.#digests.get(applied);
    for (const node of nodes) {
      if (node.appliedIndex !== applied) this.#fail(`${node.id} ends at ${node.appliedIndex}, others at ${applied}`);
      if (this.#machine.digest(node.state) !== digest) this.#fail(`${node.id} ends with a different state`);
    }
    for (const p of this.#acked) {
      const committed = this.#committed.get(p.index);
      if (!committed || committed.term !== p.term || !sameBytes(committed.data, p.data) || p.index > applied) {
        this.#fail(`an acknowledged command (index ${p.index}, term ${p.term}) is not in the final log`);
      }
    }
  }

  // --- reporting ---

  #event(text: string): void {
    if (this.#traceEvents === 0) return;
    this.#trace.push(`${this.nowMs} ms: ${text}`);
    if (this.#trace.length > this.#traceEvents) this.#trace.shift();
  }

  #fail(what: string): never {
    throw new SimulationFailure(this.seed, this.ids.length, this.nowMs, what, this.#trace);
  }
}

/** Runs one whole simulation; throws SimulationFailure (with the seed and how to reproduce) when a check fails. */
export function runSimulation<S = KvState>(options: SimOptions<S>): SimStats {
  return new Simulation<S>(options).run();
}
