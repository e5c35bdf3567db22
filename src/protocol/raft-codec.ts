/**
 * Binary encodings of Raft's data (raft.proto). HardState, Entry and Snapshot are persisted, so they start with a
 * format marker (versioned.ts) and every old version keeps decoding. A Message is only ever on the wire, inside an RPC
 * that already says what it carries, so it is the bare protobuf message.
 *
 * Decoding never trusts its input: anything that is not a well-formed encoding of the expected kind raises
 * CORRUPT_DATA (an unknown version UNSUPPORTED_VERSION), never a TypeError or a half-filled object. Whether a
 * well-formed message makes sense (a known sender, contiguous entries) is the Raft node's business: it ignores
 * messages that do not.
 */
import { StorageError } from '../common/index.js';
import { shoal } from './generated/shoal.js';
import {
  entryTypes,
  messageTypes,
  type Entry,
  type EntryType,
  type HardState,
  type Message,
  type MessageType,
  type Snapshot,
} from './raft-types.js';
import { readMarker, unsupportedVersion, withMarker, type FormatName } from './versioned.js';

export * from './raft-types.js';

const currentVersion = 1;

const entryTypeToWire: Record<EntryType, shoal.RaftEntryType> = {
  normal: shoal.RaftEntryType.RAFT_ENTRY_NORMAL,
  noop: shoal.RaftEntryType.RAFT_ENTRY_NOOP,
};

const W = shoal.RaftMessageType;
const messageTypeToWire: Record<MessageType, shoal.RaftMessageType> = {
  'pre-vote': W.RAFT_MESSAGE_PRE_VOTE,
  'pre-vote-response': W.RAFT_MESSAGE_PRE_VOTE_RESPONSE,
  vote: W.RAFT_MESSAGE_VOTE,
  'vote-response': W.RAFT_MESSAGE_VOTE_RESPONSE,
  append: W.RAFT_MESSAGE_APPEND,
  'append-response': W.RAFT_MESSAGE_APPEND_RESPONSE,
  heartbeat: W.RAFT_MESSAGE_HEARTBEAT,
  'heartbeat-response': W.RAFT_MESSAGE_HEARTBEAT_RESPONSE,
  snapshot: W.RAFT_MESSAGE_SNAPSHOT,
};

function corrupt(what: string, detail: string): StorageError {
  return new StorageError('CORRUPT_DATA', `${what}: ${detail}`);
}

/** uint64 fields decode as JavaScript numbers; above 2^53 they would silently lose precision, so refuse them. */
function count(what: string, field: string, value: number | null | undefined): number {
  const n = value ?? 0;
  if (!Number.isSafeInteger(n) || n < 0) throw corrupt(what, `${field} ${String(n)} is not a count below 2^53`);
  return n;
}

function bytesOf(value: Uint8Array | null | undefined): Uint8Array {
  return value ?? new Uint8Array(0);
}

/** Runs a protobuf decode, turning whatever it throws on truncated or malformed bytes into CORRUPT_DATA. */
function decodeWire<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    throw new StorageError('CORRUPT_DATA', `${what}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

function versionOne(format: FormatName, bytes: Uint8Array): Uint8Array {
  const { version, body } = readMarker(format, bytes);
  if (version !== currentVersion) throw unsupportedVersion(format, version);
  return body;
}

// --- conversion between the plain types and the wire messages ---

export function entryToWire(entry: Entry): shoal.RaftEntry.$Properties {
  return { index: entry.index, term: entry.term, type: entryTypeToWire[entry.type], data: entry.data };
}

export function entryFromWire(wire: shoal.RaftEntry.$Properties, what = 'raftEntry'): Entry {
  const type = entryTypes.find((t) => entryTypeToWire[t] === (wire.type ?? 0));
  if (type === undefined) throw corrupt(what, `unknown entry type ${String(wire.type)}`);
  return {
    index: count(what, 'index', wire.index),
    term: count(what, 'term', wire.term),
    type,
    data: bytesOf(wire.data),
  };
}

export function hardStateToWire(state: HardState): shoal.RaftHardState.$Properties {
  return { term: state.term, vote: state.vote, commit: state.commit };
}

export function hardStateFromWire(wire: shoal.RaftHardState.$Properties, what = 'raftHardState'): HardState {
  return { term: count(what, 'term', wire.term), vote: wire.vote ?? '', commit: count(what, 'commit', wire.commit) };
}

export function snapshotToWire(snapshot: Snapshot): shoal.RaftSnapshot.$Properties {
  return { index: snapshot.index, term: snapshot.term, voters: snapshot.voters.slice(), data: snapshot.data };
}

export function snapshotFromWire(wire: shoal.RaftSnapshot.$Properties, what = 'raftSnapshot'): Snapshot {
  return {
    index: count(what, 'index', wire.index),
    term: count(what, 'term', wire.term),
    voters: (wire.voters ?? []).slice(),
    data: bytesOf(wire.data),
  };
}

export function raftMessageToWire(message: Message): shoal.RaftMessage.$Properties {
  return {
    type: messageTypeToWire[message.type],
    from: message.from,
    to: message.to,
    term: message.term,
    logTerm: message.logTerm,
    index: message.index,
    entries: message.entries.map(entryToWire),
    commit: message.commit,
    reject: message.reject,
    rejectHint: message.rejectHint,
    snapshot: message.snapshot === null ? null : snapshotToWire(message.snapshot),
  };
}

export function raftMessageFromWire(wire: shoal.RaftMessage.$Properties): Message {
  const what = 'raftMessage';
  const type = messageTypes.find((t) => messageTypeToWire[t] === (wire.type ?? 0));
  if (type === undefined) throw corrupt(what, `unknown message type ${String(wire.type)}`);
  return {
    type,
    from: wire.from ?? '',
    to: wire.to ?? '',
    term: count(what, 'term', wire.term),
    logTerm: count(what, 'logTerm', wire.logTerm),
    index: count(what, 'index', wire.index),
    entries: (wire.entries ?? []).map((e) => entryFromWire(e, `${what} entry`)),
    commit: count(what, 'commit', wire.commit),
    reject: wire.reject ?? false,
    rejectHint: count(what, 'rejectHint', wire.rejectHint),
    snapshot: wire.snapshot ? snapshotFromWire(wire.snapshot, `${what} snapshot`) : null,
  };
}

// --- encodings ---

export function encodeEntry(entry: Entry): Buffer {
  return withMarker('raftEntry', currentVersion, shoal.RaftEntry.encode(entryToWire(entry)).finish());
}

export function decodeEntry(bytes: Uint8Array): Entry {
  const body = versionOne('raftEntry', bytes);
  return entryFromWire(decodeWire('raftEntry', () => shoal.RaftEntry.decode(body)));
}

export function encodeHardState(state: HardState): Buffer {
  return withMarker('raftHardState', currentVersion, shoal.RaftHardState.encode(hardStateToWire(state)).finish());
}

export function decodeHardState(bytes: Uint8Array): HardState {
  const body = versionOne('raftHardState', bytes);
  return hardStateFromWire(decodeWire('raftHardState', () => shoal.RaftHardState.decode(body)));
}

export function encodeSnapshot(snapshot: Snapshot): Buffer {
  return withMarker('raftSnapshot', currentVersion, shoal.RaftSnapshot.encode(snapshotToWire(snapshot)).finish());
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const body = versionOne('raftSnapshot', bytes);
  return snapshotFromWire(decodeWire('raftSnapshot', () => shoal.RaftSnapshot.decode(body)));
}

/** The bare protobuf message, for the RPC that carries it (no marker: messages are never persisted). */
export function encodeRaftMessage(message: Message): Uint8Array {
  return shoal.RaftMessage.encode(raftMessageToWire(message)).finish();
}

export function decodeRaftMessage(bytes: Uint8Array): Message {
  return raftMessageFromWire(decodeWire('raftMessage', () => shoal.RaftMessage.decode(bytes)));
}
