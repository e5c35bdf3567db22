/**
 * The monitor's durable Raft state in LevelDB: hard state, log entries and the latest snapshot (which holds the whole
 * cluster map). Every write the Raft core asks for in a Ready is one LevelDB batch written with `sync: true`, so an
 * acknowledged vote, entry or snapshot survives a crash of the process or the machine.
 *
 * Keys: `raft/hard` (HardState), `raft/log/<index as 16 hex digits>` (Entry), `raft/snap` (Snapshot). Values use the
 * versioned codecs of src/protocol (two-byte format marker first).
 */
import { Level } from 'level';
import {
  decodeEntry,
  decodeHardState,
  decodeSnapshot,
  encodeEntry,
  encodeHardState,
  encodeSnapshot,
  type Entry,
  type HardState,
  type Snapshot,
} from '../../src/index.js';

const hardKey = 'raft/hard';
const snapKey = 'raft/snap';
const logPrefix = 'raft/log/';
const logKey = (index: number) => logPrefix + index.toString(16).padStart(16, '0');

export interface PersistedRaftState {
  hardState: HardState;
  snapshot: Snapshot | null;
  entries: Entry[];
}

export interface RaftWrite {
  hardState: HardState | null;
  entries: Entry[];
  snapshot: Snapshot | null;
}

export class RaftStore {
  readonly #db: Level<string, Uint8Array>;
  /** Index of the last stored entry, to delete a conflicting suffix when the log is overwritten. */
  #lastIndex = 0;
  #snapshotIndex = 0;

  constructor(path: string) {
    this.#db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' });
  }

  async open(): Promise<PersistedRaftState> {
    await this.#db.open();
    const hardBytes = await this.#db.get(hardKey);
    const snapBytes = await this.#db.get(snapKey);
    const hardState = hardBytes ? decodeHardState(hardBytes) : { term: 0, vote: '', commit: 0 };
    const snapshot = snapBytes ? decodeSnapshot(snapBytes) : null;
    this.#snapshotIndex = snapshot?.index ?? 0;
    const entries: Entry[] = [];
    for await (const value of this.#db.values({ gt: logKey(this.#snapshotIndex), lt: logPrefix + '~' })) {
      const entry = decodeEntry(value);
      // A crash between writing a snapshot and clearing older entries leaves them behind; they are not part of the log.
      if (entry.index > this.#snapshotIndex) entries.push(entry);
    }
    this.#lastIndex = entries.at(-1)?.index ?? this.#snapshotIndex;
    return { hardState, snapshot, entries };
  }

  async write(w: RaftWrite): Promise<void> {
    if (!w.hardState && w.entries.length === 0 && !w.snapshot) return;
    const batch = this.#db.batch();
    let lastIndex = this.#lastIndex;
    if (w.snapshot) {
      batch.put(snapKey, encodeSnapshot(w.snapshot));
      for (let i = this.#snapshotIndex + 1; i <= Math.min(w.snapshot.index, this.#lastIndex); i++) batch.del(logKey(i));
      lastIndex = Math.max(lastIndex, w.snapshot.index);
    }
    const first = w.entries[0];
    if (first) {
      for (let i = first.index; i <= this.#lastIndex; i++) batch.del(logKey(i));
      for (const entry of w.entries) batch.put(logKey(entry.index), encodeEntry(entry));
      lastIndex = w.entries.at(-1)?.index ?? lastIndex;
    }
    if (w.hardState) batch.put(hardKey, encodeHardState(w.hardState));
    await batch.write({ sync: true });
    this.#lastIndex = lastIndex;
    if (w.snapshot) this.#snapshotIndex = w.snapshot.index;
  }

  /** Stores a snapshot the application took itself and drops the log entries it covers. */
  async compact(snapshot: Snapshot): Promise<void> {
    if (snapshot.index <= this.#snapshotIndex) return;
    const batch = this.#db.batch();
    batch.put(snapKey, encodeSnapshot(snapshot));
    for (let i = this.#snapshotIndex + 1; i <= Math.min(snapshot.index, this.#lastIndex); i++) batch.del(logKey(i));
    await batch.write({ sync: true });
    this.#snapshotIndex = snapshot.index;
  }

  /** Entries currently stored (for `mon stat` and the bounded-log test). */
  async countEntries(): Promise<number> {
    let count = 0;
    for await (const _ of this.#db.keys({ gte: logPrefix, lt: logPrefix + '~' })) count++;
    return count;
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}
