/**
 * The write-back of metadata while this mount is the only one (see fuse/README.md, "Consistency model"): creates,
 * unlinks and their directories' changes answer from the mount's view and reach the cluster in rounds, one after
 * the other. A round writes its new inodes (in parallel), then each directory's entry changes (one atomic op per
 * directory), then runs what had to wait for those entries to be gone (dropping the unlinked inodes). A crash loses
 * the changes of the rounds not yet written and leaves at worst unreferenced inodes, as a crash mid-create always
 * could; `drain` (fsync, every operation that is not written back, going out of solo mode) waits for all of it.
 */
import { forEachLimited, type Logger } from '../../src/index.js';
import type { Metadata, PendingRound } from './metadata.js';

/** Requests of one kind in flight at once in a round. */
const parallelMax = 32;
/** Changes waiting beyond this make new ones wait for the round in flight (bounded memory and lag). */
const backlogMax = 4096;
/**
 * A round waits this long for more changes to join it (unless something waits for it), so that the attribute
 * changes which follow a create (touch's utimens, a chmod) find the inode not written yet and change it in place.
 */
const gatherMs = 10;

export class WriteBack {
  readonly #metadata: Metadata;
  readonly #logger: Logger | undefined;
  /** Work to run once the entries changed so far are in the cluster (unlinked inodes to drop). */
  #after: (() => Promise<void>)[] = [];
  #running: Promise<void> | undefined;
  /** Ends the gathering wait of the next round at once. */
  #wake: (() => void) | undefined;
  /** Settles when the round in flight has been written. */
  #roundDone: Promise<void> = Promise.resolve();

  constructor(metadata: Metadata, logger?: Logger) {
    this.#metadata = metadata;
    this.#logger = logger;
  }

  /** Something was changed in the view: a round starts unless one runs (which loops until nothing is left). */
  changed(): void {
    this.#running ??= this.#loop().finally(() => (this.#running = undefined));
  }

  /** Runs `task` after the round that carries the entry changes made so far. */
  afterEntries(task: () => Promise<void>): void {
    this.#after.push(task);
    this.changed();
  }

  /** Waits while too much is waiting (the caller is about to add more). */
  async room(): Promise<void> {
    while (this.#metadata.backlog >= backlogMax && this.#running) {
      this.#wake?.();
      await this.#roundDone;
      // The round that takes what waits may only start on the next turn.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Resolves when everything changed before the call is in the cluster. */
  async drain(): Promise<void> {
    while (this.#running) {
      this.#wake?.();
      await this.#running;
    }
  }

  async #loop(): Promise<void> {
    for (;;) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, gatherMs);
      });
      this.#wake = undefined;
      const round = this.#metadata.takePending();
      const after = this.#after.splice(0);
      if (round.inodes.length === 0 && round.dirs.size === 0 && after.length === 0) return;
      let done = () => {};
      this.#roundDone = new Promise((resolve) => (done = resolve));
      try {
        await this.#write(round, after);
      } finally {
        done();
      }
    }
  }

  async #write(round: PendingRound, after: (() => Promise<void>)[]): Promise<void> {
    const failed = new Set<number>();
    await forEachLimited(round.inodes, parallelMax, async (ino) => {
      await this.#metadata.sendCreate(ino).catch((error: unknown) => {
        failed.add(ino);
        this.#logger?.error('a created inode could not be written; its entry is dropped', { ino, error: String(error) });
      });
    });
    await forEachLimited([...round.dirs], parallelMax, async ([dir, pending]) => {
      await this.#metadata.sendDir(dir, pending, failed).catch((error: unknown) => {
        this.#logger?.error('directory changes could not be written', { dir, names: [...pending.names.keys()].slice(0, 10), error: String(error) });
        // The view holds changes the cluster does not: read the directory again.
        this.#metadata.invalidate(dir);
      });
    });
    for (const ino of failed) this.#metadata.cancelUnsent(ino);
    await forEachLimited(after, parallelMax, async (task) => {
      await task().catch((error: unknown) => this.#logger?.warn('removing an unlinked inode failed (fs check removes it)', { error: String(error) }));
    });
  }
}
