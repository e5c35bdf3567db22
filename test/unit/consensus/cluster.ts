/**
 * A hand-driven cluster for the unit tests: nothing happens unless the test ticks a node or delivers messages, so each
 * test sets up exactly the interleaving a case in the paper describes. Each node's Readies are handled as the README
 * prescribes (persist, send, apply, advance) into an in-memory store that survives `crash`/`restart`.
 */
import { Random } from '../../../src/common/index.js';
import {
  RaftNode,
  type Entry,
  type Message,
  type NodeId,
  type PersistedState,
  type RaftConfig,
  type Snapshot,
} from '../../../src/consensus/index.js';

export type ClusterOptions = Partial<Omit<RaftConfig, 'id' | 'voters' | 'random'>> & { seed?: number };

export interface NodeRecord {
  store: PersistedState;
  /** Every entry handed to the application, in order, across restarts (a snapshot load is recorded as a marker). */
  applied: Entry[];
  /** The application's state: the data of applied normal entries, as text, reset by a snapshot. */
  state: string[];
  appliedIndex: number;
}

export class TestCluster {
  readonly ids: NodeId[];
  readonly nodes = new Map<NodeId, RaftNode>();
  readonly records = new Map<NodeId, NodeRecord>();
  /** Messages sent and not yet delivered, in send order. */
  queue: Message[] = [];
  /** Every message ever sent, for tests that count them. */
  readonly sent: Message[] = [];
  /** Return false to drop a message when it is delivered. */
  filter: (m: Message) => boolean = () => true;
  readonly #options: ClusterOptions;
  readonly #random: Random;

  constructor(ids: NodeId[], options: ClusterOptions = {}, persisted: Record<NodeId, PersistedState> = {}) {
    this.ids = ids;
    this.#options = options;
    this.#random = new Random(options.seed ?? 1);
    for (const id of ids) {
      const store = persisted[id] ?? { hardState: { term: 0, vote: '', commit: 0 }, snapshot: null, entries: [] };
      this.records.set(id, { store: clone(store), applied: [], state: [], appliedIndex: store.snapshot?.index ?? 0 });
      this.restart(id);
    }
  }

  config(id: NodeId): RaftConfig {
    const { seed: _seed, ...rest } = this.#options;
    return {
      id,
      voters: this.ids,
      electionTicks: 10,
      heartbeatTicks: 1,
      preVote: true,
      checkQuorum: true,
      ...rest,
      random: this.#random.fork(),
    };
  }

  node(id: NodeId): RaftNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`node ${id} is down`);
    return node;
  }

  record(id: NodeId): NodeRecord {
    return this.records.get(id) as NodeRecord;
  }

  isUp(id: NodeId): boolean {
    return this.nodes.has(id);
  }

  /** Loses everything not persisted, and every message in flight to it. */
  crash(id: NodeId): void {
    this.nodes.delete(id);
    this.queue = this.queue.filter((m) => m.to !== id);
  }

  restart(id: NodeId): void {
    const record = this.record(id);
    const snapshot = record.store.snapshot;
    record.state = snapshot ? decodeState(snapshot.data) : [];
    record.appliedIndex = snapshot?.index ?? 0;
    this.nodes.set(id, new RaftNode(this.config(id), clone(record.store)));
    this.process(id);
  }

  /** Handles every Ready of `id`, as README.md's duties say. */
  process(id: NodeId): void {
    const node = this.nodes.get(id);
    if (!node) return;
    const record = this.record(id);
    while (node.hasReady()) {
      const rd = node.ready();
      const store = record.store;
      if (rd.snapshot) {
        store.snapshot = rd.snapshot;
        store.entries = [];
      }
      if (rd.entries.length > 0) {
        const first = (rd.entries[0] as Entry).index;
        store.entries = store.entries.filter((e) => e.index < first).concat(rd.entries);
      }
      if (rd.hardState) store.hardState = { ...rd.hardState };
      for (const m of rd.messages) {
        this.queue.push(m);
        this.sent.push(m);
      }
      if (rd.snapshot) {
        record.state = decodeState(rd.snapshot.data);
        record.appliedIndex = rd.snapshot.index;
      }
      for (const e of rd.committedEntries) {
        if (e.index !== record.appliedIndex + 1) throw new Error(`${id} applies ${e.index} after ${record.appliedIndex}`);
        record.applied.push(e);
        if (e.type === 'normal') record.state.push(new TextDecoder().decode(e.data));
        record.appliedIndex = e.index;
      }
      node.advance(rd);
    }
  }

  processAll(): void {
    for (const id of this.ids) this.process(id);
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.nodes.get(id)?.tick();
      this.process(id);
    }
  }

  /** Delivers queued messages in order (and whatever they cause) until none is left or `limit` were delivered. */
  deliverAll(limit = 100_000): number {
    let delivered = 0;
    while (this.queue.length > 0 && delivered < limit) {
      const m = this.queue.shift() as Message;
      const node = this.nodes.get(m.to);
      if (!node || !this.filter(m)) continue;
      node.step(m);
      this.process(m.to);
      delivered++;
    }
    return delivered;
  }

  /** Ticks `id` alone until it starts an election, then lets the election run. */
  campaign(id: NodeId): void {
    const asked = (): number => this.sent.filter((m) => m.from === id && (m.type === 'vote' || m.type === 'pre-vote')).length;
    const before = asked();
    const node = this.node(id);
    for (let i = 0; i < 1000 && asked() === before && node.role !== 'leader'; i++) this.tick(id);
    this.deliverAll();
  }

  /** Makes `id` leader: campaigns, then fails loudly if it did not win. */
  elect(id: NodeId): RaftNode {
    this.campaign(id);
    const node = this.node(id);
    if (node.role !== 'leader') throw new Error(`${id} did not win (role ${node.role}, term ${node.term})`);
    return node;
  }

  propose(id: NodeId, text: string): number {
    const index = this.node(id).propose(new TextEncoder().encode(text));
    this.process(id);
    return index;
  }

  /** Heartbeat rounds from the leader, delivering everything after each, so followers catch up and learn the commit. */
  heartbeats(leader: NodeId, rounds = 3): void {
    const ticks = this.config(leader).heartbeatTicks;
    for (let i = 0; i < rounds; i++) {
      this.tick(leader, ticks);
      this.deliverAll();
    }
  }

  /** The persisted log of `id` as (index, term) pairs after its snapshot. */
  logOf(id: NodeId): Array<[number, number]> {
    return this.record(id).store.entries.map((e) => [e.index, e.term]);
  }
}

export function entry(index: number, term: number, text = `e${index}t${term}`): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(text) };
}

/** A persisted state with the given terms at indices 1, 2, ... */
export function logWithTerms(terms: number[], hardTerm = Math.max(0, ...terms), commit = 0): PersistedState {
  return {
    hardState: { term: hardTerm, vote: '', commit },
    snapshot: null,
    entries: terms.map((t, i) => entry(i + 1, t)),
  };
}

export function encodeState(state: string[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(state));
}

export function decodeState(bytes: Uint8Array): string[] {
  return JSON.parse(new TextDecoder().decode(bytes)) as string[];
}

export function snapshotOf(record: NodeRecord): Snapshot | null {
  return record.store.snapshot;
}

function clone(state: PersistedState): PersistedState {
  return {
    hardState: { ...state.hardState },
    snapshot: state.snapshot,
    entries: state.entries.slice(),
  };
}
