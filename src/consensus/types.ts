import type { Random } from '../common/index.js';
import type { Entry, HardState, Message, NodeId, Snapshot } from '../protocol/raft-types.js';

export type { Entry, EntryType, HardState, Message, MessageType, NodeId, Snapshot } from '../protocol/raft-types.js';
export { entryTypes, messageTypes } from '../protocol/raft-types.js';

/** A pre-candidate asks for pre-votes (thesis §9.6) before it becomes a candidate and bumps its term. */
export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

export interface SoftState {
  /** '' when unknown. */
  leader: NodeId;
  role: Role;
}

/**
 * Everything the node needs the caller to do, in this order (see README.md, "The caller's duties"):
 * persist `snapshot`, `entries` and `hardState`; then send `messages`; then load `snapshot` into the application and
 * apply `committedEntries`; then call `advance(ready)`.
 */
export interface Ready {
  /** Persist when not null (it changed since the last Ready). */
  hardState: HardState | null;
  /** Append to stable storage, first deleting every stored entry with index >= entries[0].index. */
  entries: Entry[];
  /** Received from the leader: persist it, delete every stored entry, and load it into the application. */
  snapshot: Snapshot | null;
  /** Apply in order, after persisting. Contiguous, and the first follows what was applied (or `snapshot`). */
  committedEntries: Entry[];
  /** Send after persisting. Each may be lost, delayed, duplicated or reordered: Raft tolerates all of that. */
  messages: Message[];
  /** Not null when the leader or this node's role changed. Nothing to persist. */
  softState: SoftState | null;
}

export interface RaftConfig {
  id: NodeId;
  /** Every member, this node included. Membership is static. */
  voters: NodeId[];
  /** A follower starts an election after a random timeout in [electionTicks, 2*electionTicks) ticks without a leader. */
  electionTicks: number;
  /** A leader sends heartbeats every heartbeatTicks ticks; must be below electionTicks. */
  heartbeatTicks: number;
  /** Election timeouts come from here, so a seeded run repeats exactly. */
  random: Random;
  /** Thesis §9.6: ask before campaigning, so a node returning from a partition cannot depose a healthy leader. */
  preVote: boolean;
  /**
   * Thesis §6.2: a leader that has not heard from a majority for an election timeout steps down. Also turns on the
   * leader lease of thesis §4.2.3: a node that heard from a leader within the election timeout ignores vote requests.
   */
  checkQuorum: boolean;
  /** At most this many entries in one append message (default 64). */
  maxEntriesPerMessage?: number;
  /** At most about this many bytes of entry data in one append message, but always at least one entry (default 1 MiB). */
  maxMessageBytes?: number;
  /** A leader pipelines at most this many append messages to one follower before hearing back (default 256). */
  maxInflightMessages?: number;
  /** `propose` refuses with BUSY while this many entries are uncommitted, e.g. while there is no quorum (default 4096). */
  maxUncommittedEntries?: number;
  /**
   * The index the application has already applied, when it keeps its own state durably (default: the persisted
   * snapshot's index, or 0). Committed entries above it are delivered again after a restart.
   */
  applied?: number;
}

/** What the caller persisted through earlier Readies, handed back to a restarting node. */
export interface PersistedState {
  hardState: HardState;
  snapshot: Snapshot | null;
  /** The stored entries after the snapshot, in order and contiguous. */
  entries: Entry[];
}
