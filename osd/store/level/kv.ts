/**
 * The one place osd/store touches the `level` package: binary keys and values, atomic batches, range reads.
 */
import { Level } from 'level';

export type KvOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

export interface KvRange {
  gt?: Buffer;
  gte?: Buffer;
  lt: Buffer;
  limit?: number;
}

export interface KvStore {
  get(key: Buffer): Promise<Buffer | undefined>;
  getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]>;
  /** Applies every op or none; with `sync`, durable when it resolves (the LevelDB log is fsync'd). */
  batch(ops: KvOp[], sync: boolean): Promise<void>;
  /** Entries of a key range in key order. */
  entries(range: KvRange): Promise<[Buffer, Buffer][]>;
  keys(range: KvRange): Promise<Buffer[]>;
  /** Deletes a key range (not atomic; for garbage nothing refers to any more). */
  clear(range: { gte: Buffer; lt: Buffer }): Promise<void>;
  close(): Promise<void>;
  /** Synchronous LevelDB writes issued (each one an fsync of its log). */
  readonly syncs: number;
}

const encodings = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;

export async function openKv(location: string): Promise<KvStore> {
  const db = new Level<Buffer, Buffer>(location, { ...encodings, createIfMissing: true });
  await db.open();
  let syncs = 0;
  return {
    // Synchronous gets: LevelDB answers from its memtable, block cache or the page cache in a few microseconds, while
    // an async get costs 15-25 µs of CPU for the thread-pool round trip (measured here; more on an oversubscribed
    // machine), which made onode lookups a tenth of an OSD's main thread under 4 KiB writes. A read that must go to
    // the disk blocks the event loop for that read, as in a store whose op threads read RocksDB directly.
    get: async (key) => db.getSync(key),
    getMany: async (keys) => keys.map((key) => db.getSync(key)),
    async batch(ops, sync) {
      if (ops.length === 0) return;
      // A chained batch, not db.batch(array): classic-level converts an array batch op by op through N-API property
      // reads on the main thread, measured at ~16 µs per op against ~3 µs for chained puts (it is the OSD's hot path).
      const batch = db.batch();
      for (const op of ops) {
        if (op.type === 'put') batch.put(op.key, op.value);
        else batch.del(op.key);
      }
      await batch.write({ sync });
      if (sync) syncs++;
    },
    async entries(range) {
      return db.iterator({ ...range, limit: range.limit ?? -1 }).all() as Promise<[Buffer, Buffer][]>;
    },
    async keys(range) {
      return db.keys({ ...range, limit: range.limit ?? -1 }).all();
    },
    clear: (range) => db.clear(range),
    close: () => db.close(),
    get syncs() {
      return syncs;
    },
  };
}
