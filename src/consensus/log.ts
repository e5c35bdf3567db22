import type { Entry, Snapshot } from './types.js';

/**
 * The log as one node holds it in memory: a snapshot (possibly the empty one at index 0) followed by contiguous
 * entries. The entry at the snapshot's index is gone, but its term is remembered, because the consistency check of
 * Raft §5.3 needs the term of the entry just before the first one sent.
 * @internal
 */
export class RaftLog {
  #snapshot: Snapshot | null;
  #offset: number;
  #offsetTerm: number;
  #entries: Entry[];

  constructor(snapshot: Snapshot | null, entries: Entry[]) {
    this.#snapshot = snapshot;
    this.#offset = snapshot?.index ?? 0;
    this.#offsetTerm = snapshot?.term ?? 0;
    this.#entries = entries.slice();
  }

  /** The latest snapshot (what a lagging follower is sent); null before the first compaction. */
  get snapshot(): Snapshot | null {
    return this.#snapshot;
  }

  /** Index of the last entry covered by the snapshot (0 with none). */
  get snapshotIndex(): number {
    return this.#offset;
  }

  get firstIndex(): number {
    return this.#offset + 1;
  }

  get lastIndex(): number {
    return this.#offset + this.#entries.length;
  }

  get lastTerm(): number {
    return this.term(this.lastIndex) ?? 0;
  }

  /** The term of the entry at `index`; undefined when compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.#offset) return this.#offsetTerm;
    if (index < this.#offset || index > this.lastIndex) return undefined;
    return (this.#entries[index - this.#offset - 1] as Entry).term;
  }

  entry(index: number): Entry | undefined {
    if (index <= this.#offset) return undefined;
    return this.#entries[index - this.#offset - 1];
  }

  /** Entries with index in [from, to], clipped to what is held. */
  slice(from: number, to: number): Entry[] {
    const lo = Math.max(from, this.firstIndex) - this.#offset - 1;
    const hi = Math.min(to, this.lastIndex) - this.#offset;
    return lo < hi ? this.#entries.slice(lo, hi) : [];
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up-to-date as this one? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    return lastTerm > this.lastTerm || (lastTerm === this.lastTerm && lastIndex >= this.lastIndex);
  }

  append(entry: Entry): void {
    this.#entries.push(entry);
  }

  /**
   * Raft §5.3 step 3 and 4: skips the entries already held with the same term, deletes the first conflicting entry
   * and all after it, appends the rest. Returns the index of the first entry written (lastIndex+1 if none was).
   * `entries` must start at or before lastIndex+1 and after the snapshot.
   */
  merge(entries: Entry[]): number {
    let i = 0;
    while (i < entries.length) {
      const e = entries[i] as Entry;
      const held = this.term(e.index);
      if (held === undefined || held !== e.term) break;
      i++;
    }
    if (i === entries.length) return this.lastIndex + 1;
    const first = (entries[i] as Entry).index;
    this.#entries.length = first - this.#offset - 1;
    for (; i < entries.length; i++) this.#entries.push(entries[i] as Entry);
    return first;
  }

  /** Drops the entries up to `snapshot.index`, which the snapshot now stands for. */
  compact(snapshot: Snapshot): void {
    this.#entries.splice(0, snapshot.index - this.#offset);
    this.#snapshot = snapshot;
    this.#offset = snapshot.index;
    this.#offsetTerm = snapshot.term;
  }

  /** Replaces the whole log by a snapshot received from the leader (Raft §7, "discard the entire log"). */
  restore(snapshot: Snapshot): void {
    this.#entries = [];
    this.#snapshot = snapshot;
    this.#offset = snapshot.index;
    this.#offsetTerm = snapshot.term;
  }
}
