/**
 * The plain data of Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm"): what a node
 * persists and what it sends. These live here, not in src/consensus, because src/protocol may not import
 * src/consensus yet has to encode them; src/consensus re-exports them as its own API. No protobuf in this file, so
 * importing it pulls in no generated code.
 */

export type NodeId = string;

/** What a node must persist before it sends any message that depends on it (Raft §5.1, Figure 2 "persistent state"). */
export interface HardState {
  term: number;
  /** The candidate voted for in `term`; '' when none. */
  vote: NodeId;
  /** Highest index known committed. Persisting it is an optimisation: a restarted node re-learns it from the leader. */
  commit: number;
}

/** A leader appends a `noop` at the start of its term so entries of earlier terms commit with it (Raft §8). */
export const entryTypes = ['normal', 'noop'] as const;
export type EntryType = (typeof entryTypes)[number];

export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/** The application's state after applying every entry up to `index`, whose term was `term` (Raft §7). */
export interface Snapshot {
  index: number;
  term: number;
  voters: NodeId[];
  data: Uint8Array;
}

/**
 * `pre-vote` (thesis §9.6) asks whether a node would vote, without anyone changing term. InstallSnapshot (`snapshot`)
 * is answered with an `append-response`, as it also moves the follower's log forward.
 */
export const messageTypes = [
  'pre-vote',
  'pre-vote-response',
  'vote',
  'vote-response',
  'append',
  'append-response',
  'heartbeat',
  'heartbeat-response',
  'snapshot',
] as const;
export type MessageType = (typeof messageTypes)[number];

/**
 * One message between nodes. Every field is always present (zero values when unused) so that code never handles
 * optional wire fields. Meaning by type:
 * - `vote`/`pre-vote`: `term` is the term asked for, `index`/`logTerm` the candidate's last entry (Raft §5.4.1).
 * - `vote-response`/`pre-vote-response`: `reject`; a granted pre-vote echoes the asked-for term.
 * - `append`: `index`/`logTerm` are prevLogIndex/prevLogTerm, then `entries` and the leader's `commit` (Raft §5.3).
 * - `append-response`: on success `index` is the last index known to match the leader; on rejection `index` is the
 *   rejected prevLogIndex and `rejectHint`/`logTerm` name the follower's last entry that might still match.
 * - `heartbeat`: `commit` is the leader's commit capped at what this follower is known to hold.
 * - `snapshot`: `snapshot` is the leader's latest snapshot (Raft §7).
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  snapshot: Snapshot | null;
}
