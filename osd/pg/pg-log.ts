/**
 * A placement group's log: the most recent changes in version order, bounded to `entriesMax` (plus one trim batch). It serves duplicate
 * detection (a resent request is recognised by its request id and answered without applying it again) and log-based
 * recovery (what a member that is behind lacks is what the log holds after its last version). Pure: persisting
 * entries is the caller's job (they travel in the same store transaction as the change they describe).
 */
import { compareVersions, encodeVersionKey, versionFromWire, wire, type Eversion } from '../../src/index.js';

export interface LogEntry {
  version: Eversion;
  priorVersion: Eversion;
  object: string;
  op: 'modify' | 'delete';
  reqid: { client: string; tid: number } | null;
  mtimeMs: number;
}

export const logKeyPrefix = 'log.';
export const logKey = (version: Eversion) => logKeyPrefix + encodeVersionKey(version);

function reqKey(reqid: { client: string; tid: number }): string {
  return `${reqid.client}/${reqid.tid}`;
}

export function entryToWire(e: LogEntry): wire.PgLogEntry.$Properties {
  return {
    version: e.version,
    priorVersion: e.priorVersion,
    object: e.object,
    op: e.op === 'delete' ? wire.PgLogEntry.Op.OP_DELETE : wire.PgLogEntry.Op.OP_MODIFY,
    reqid: e.reqid,
    mtimeMs: e.mtimeMs,
  };
}

export function entryFromWire(e: wire.PgLogEntry.$Properties): LogEntry {
  return {
    version: versionFromWire(e.version),
    priorVersion: versionFromWire(e.priorVersion),
    object: e.object ?? '',
    op: e.op === wire.PgLogEntry.Op.OP_DELETE ? 'delete' : 'modify',
    reqid: e.reqid && e.reqid.client ? { client: e.reqid.client, tid: Number(e.reqid.tid ?? 0) } : null,
    mtimeMs: Number(e.mtimeMs ?? 0),
  };
}

export class PgLog {
  readonly entriesMax: number;
  #tail: Eversion;
  #head: Eversion;
  #entries: LogEntry[];
  #dups = new Map<string, Eversion>();

  constructor(entriesMax: number, tail: Eversion = { epoch: 0, seq: 0 }, entries: LogEntry[] = []) {
    this.entriesMax = entriesMax;
    this.#tail = tail;
    this.#entries = entries.slice().sort((a, b) => compareVersions(a.version, b.version));
    this.#head = this.#entries.at(-1)?.version ?? tail;
    for (const e of this.#entries) if (e.reqid) this.#dups.set(reqKey(e.reqid), e.version);
  }

  /** The newest version in this PG (its last_update). */
  get head(): Eversion {
    return this.#head;
  }

  /** The log holds every change after this version. */
  get tail(): Eversion {
    return this.#tail;
  }

  get entries(): readonly LogEntry[] {
    return this.#entries;
  }

  findDup(reqid: { client: string; tid: number }): Eversion | undefined {
    return this.#dups.get(reqKey(reqid));
  }

  /** Appends an entry (newer than the head); returns the entries trimmed off the front, for the caller to delete. */
  append(entry: LogEntry): LogEntry[] {
    if (compareVersions(entry.version, this.#head) <= 0) {
      throw new TypeError(`log append out of order: ${entry.version.epoch}'${entry.version.seq} after head ${this.#head.epoch}'${this.#head.seq}`);
    }
    this.#entries.push(entry);
    this.#head = entry.version;
    if (entry.reqid) this.#dups.set(reqKey(entry.reqid), entry.version);
    return this.#trim();
  }

  /** What must be trimmed if `extra` more entries were appended (for writing the deletions in the same transaction). */
  wouldTrim(extra: number): LogEntry[] {
    const over = this.#entries.length + extra - this.entriesMax;
    return over > 0 ? this.#entries.slice(0, over) : [];
  }

  /**
   * Trims in batches (a sixteenth of the bound at a time), so the deletions and the new tail, which must be written
   * with them, cost one store write per batch rather than one per change.
   */
  #trim(): LogEntry[] {
    const over = this.#entries.length - this.entriesMax;
    if (over < Math.max(1, Math.floor(this.entriesMax / 16))) return [];
    const trimmed = this.#entries.splice(0, over);
    this.#tail = trimmed.at(-1)?.version ?? this.#tail;
    for (const e of trimmed) {
      if (e.reqid && this.#dups.get(reqKey(e.reqid)) === e.version) this.#dups.delete(reqKey(e.reqid));
    }
    return trimmed;
  }

  /** Entries after `version`, or undefined when the log no longer reaches back that far (backfill needed). */
  entriesAfter(version: Eversion): LogEntry[] | undefined {
    if (compareVersions(version, this.#tail) < 0) return undefined;
    return this.#entries.filter((e) => compareVersions(e.version, version) > 0);
  }

  has(version: Eversion): boolean {
    return this.#entries.some((e) => compareVersions(e.version, version) === 0);
  }
}
