/**
 * The one loop around the pure Raft core (src/consensus): it ticks the node on a timer, feeds it messages from peers,
 * and for each Ready (1) writes hard state, entries and snapshot to LevelDB in one synced batch, (2) sends the
 * messages, (3) hands committed entries to the application in order, (4) tells the node it is done. It also takes
 * snapshots every `snapshotEveryEntries` applied entries so the log stays bounded.
 */
import {
  StorageError,
  decodeRaftMessage,
  encodeRaftMessage,
  monitorRpc,
  type Clock,
  type Entry,
  type Logger,
  type Message,
  type Random,
  type Snapshot,
  type TimerHandle,
} from '../src/index.js';
import { RaftNode, type Role } from '../src/consensus/index.js';
import { RpcClient } from '../src/net/index.js';
import type { RaftStore } from './store/raft-store.js';

export interface QuorumApplication {
  /** Applies one committed entry (in log order, exactly once per process lifetime). */
  apply(entry: Entry): void;
  /** Replaces the application state with a snapshot's (received from the leader, or loaded at start). */
  restore(snapshot: Snapshot): void;
  /** The application state as of `appliedIndex`, for a snapshot. */
  snapshotData(): Uint8Array;
  /** Called when leadership or role changes. */
  roleChanged(role: Role, leader: string): void;
}

export interface QuorumOptions {
  id: string;
  peers: { name: string; address: string }[];
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  snapshotEveryEntries: number;
  rpcTimeoutMs: number;
}

export class Quorum {
  readonly #options: QuorumOptions;
  readonly #store: RaftStore;
  readonly #app: QuorumApplication;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #logger: Logger;
  readonly #clients = new Map<string, RpcClient>();
  #node: RaftNode | undefined;
  #timer: TimerHandle | undefined;
  #pumping = false;
  #pumpAgain = false;
  #stopped = false;
  #appliedIndex = 0;
  #snapshotIndex = 0;
  #failure: unknown;

  constructor(options: QuorumOptions, store: RaftStore, app: QuorumApplication, deps: { clock: Clock; random: Random; logger: Logger }) {
    this.#options = options;
    this.#store = store;
    this.#app = app;
    this.#clock = deps.clock;
    this.#random = deps.random;
    this.#logger = deps.logger;
  }

  get node(): RaftNode {
    if (!this.#node) throw new StorageError('SHUTTING_DOWN', 'quorum not started');
    return this.#node;
  }

  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  get snapshotIndex(): number {
    return this.#snapshotIndex;
  }

  async start(): Promise<void> {
    const persisted = await this.#store.open();
    if (persisted.snapshot) {
      this.#app.restore(persisted.snapshot);
      this.#appliedIndex = persisted.snapshot.index;
      this.#snapshotIndex = persisted.snapshot.index;
    }
    this.#node = new RaftNode(
      {
        id: this.#options.id,
        voters: this.#options.peers.map((p) => p.name),
        electionTicks: this.#options.electionTicks,
        heartbeatTicks: this.#options.heartbeatTicks,
        random: this.#random,
        preVote: true,
        checkQuorum: true,
      },
      persisted,
    );
    for (const peer of this.#options.peers) {
      if (peer.name !== this.#options.id) this.#clients.set(peer.name, new RpcClient(peer.address));
    }
    this.#scheduleTick();
    this.pump();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#timer?.cancel();
    while (this.#pumping) await new Promise((resolve) => setTimeout(resolve, 5));
    for (const client of this.#clients.values()) client.close();
    await this.#store.close();
  }

  /** Feeds a message from a peer (already decoded). */
  receive(message: Message): void {
    if (this.#stopped || !this.#node) return;
    if (message.to !== this.#options.id || !this.#clients.has(message.from)) return;
    this.#node.step(message);
    this.pump();
  }

  /** Proposes command data; returns the log index and term it will have if it commits. */
  propose(data: Uint8Array): { index: number; term: number } {
    const node = this.node;
    const index = node.propose(data);
    const term = node.term;
    this.pump();
    return { index, term };
  }

  #scheduleTick(): void {
    if (this.#stopped) return;
    this.#timer = this.#clock.setTimer(this.#options.tickMs, () => {
      this.#node?.tick();
      this.pump();
      this.#scheduleTick();
    });
  }

  /** Runs the Ready loop until the node has nothing more; re-entrant calls are folded into the running loop. */
  pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    if (this.#stopped || this.#failure !== undefined) return;
    this.#pumping = true;
    void this.#drain().then(
      () => {
        this.#pumping = false;
        if (this.#pumpAgain) {
          this.#pumpAgain = false;
          this.pump();
        }
      },
      (error: unknown) => {
        // A failed disk write leaves the node unable to promise durability: stop participating rather than lie.
        this.#failure = error;
        this.#pumping = false;
        this.#logger.error('raft storage failed; this monitor stops taking part in the quorum', { error: String(error) });
      },
    );
  }

  async #drain(): Promise<void> {
    const node = this.#node;
    if (!node) return;
    while (!this.#stopped && node.hasReady()) {
      const ready = node.ready();
      await this.#store.write({ hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot });
      this.#send(ready.messages);
      if (ready.snapshot) {
        this.#app.restore(ready.snapshot);
        this.#appliedIndex = ready.snapshot.index;
        this.#snapshotIndex = ready.snapshot.index;
      }
      for (const entry of ready.committedEntries) {
        if (entry.index <= this.#appliedIndex) continue;
        this.#app.apply(entry);
        this.#appliedIndex = entry.index;
      }
      if (ready.softState) this.#app.roleChanged(ready.softState.role, ready.softState.leader);
      node.advance(ready);
      if (this.#appliedIndex - this.#snapshotIndex >= this.#options.snapshotEveryEntries) {
        const snapshot = node.compact(this.#appliedIndex, this.#app.snapshotData());
        await this.#store.compact(snapshot);
        this.#snapshotIndex = snapshot.index;
      }
    }
  }

  #send(messages: Message[]): void {
    const byPeer = new Map<string, Uint8Array[]>();
    for (const message of messages) {
      const list = byPeer.get(message.to) ?? [];
      list.push(encodeRaftMessage(message));
      byPeer.set(message.to, list);
    }
    for (const [peer, encoded] of byPeer) {
      const client = this.#clients.get(peer);
      if (!client) continue;
      // Fire and forget: Raft retransmits whatever is lost.
      client.call(monitorRpc.raft, { messages: encoded }, { timeoutMs: this.#options.rpcTimeoutMs }).catch((error: unknown) => {
        this.#logger.debug('raft send failed', { peer, error: String(error) });
      });
    }
  }

  /** Decodes a batch from a peer; a malformed message is dropped and logged, never fatal. */
  receiveBatch(messages: Uint8Array[]): void {
    for (const bytes of messages) {
      let message: Message;
      try {
        message = decodeRaftMessage(bytes);
      } catch (error) {
        this.#logger.warn('dropping malformed raft message', { error: String(error) });
        continue;
      }
      this.receive(message);
    }
  }
}
