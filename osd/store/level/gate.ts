/**
 * A readers–writer gate: reads share it; publishing a commit (the LevelDB batch plus the deferred writes into data
 * files) holds it alone, so no read ever sees a new onode over old file bytes. Writers go first once waiting, so a
 * stream of reads cannot hold a commit back.
 */
export class Gate {
  #readers = 0;
  #writer = false;
  #waiting: { write: boolean; admit: () => void }[] = [];

  async read<T>(body: () => Promise<T>): Promise<T> {
    if (this.#writer || this.#waiting.length > 0) await new Promise<void>((admit) => this.#waiting.push({ write: false, admit }));
    else this.#readers++;
    try {
      return await body();
    } finally {
      this.#readers--;
      this.#admit();
    }
  }

  async write<T>(body: () => Promise<T>): Promise<T> {
    if (this.#writer || this.#readers > 0 || this.#waiting.length > 0) {
      await new Promise<void>((admit) => this.#waiting.push({ write: true, admit }));
    } else this.#writer = true;
    try {
      return await body();
    } finally {
      this.#writer = false;
      this.#admit();
    }
  }

  #admit(): void {
    while (this.#waiting.length > 0 && !this.#writer) {
      const next = this.#waiting[0] as { write: boolean; admit: () => void };
      if (next.write) {
        if (this.#readers > 0) return;
        this.#waiting.shift();
        this.#writer = true;
        next.admit();
        return;
      }
      this.#waiting.shift();
      this.#readers++;
      next.admit();
    }
  }
}
