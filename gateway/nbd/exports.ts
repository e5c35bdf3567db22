/**
 * The images the gateway has open, shared by every connection to the same export (`pool/image`, or
 * `pool/image@snap` read-only), so several connections see one consistent image and one lock holder. An image is
 * closed (its lock released) when its last connection ends.
 */
import { StorageError, parseImageSpec, type BlockImages, type Image, type ObjectClient } from '../../src/index.js';

interface Entry {
  opening: Promise<{ image: Image; close(): Promise<void> }>;
  users: number;
}

export interface ExportHandle {
  image: Image;
  release(): Promise<void>;
}

export class ExportRegistry {
  readonly #images: BlockImages;
  readonly #client: ObjectClient;
  readonly #owner: string;
  readonly #breakDeadLocks: boolean;
  #open = new Map<string, Entry>();
  /** Images being closed: a new open of the same name waits, so it never races the old lock's release. */
  #closing = new Map<string, Promise<void>>();

  constructor(client: ObjectClient, images: BlockImages, owner: string, breakDeadLocks: boolean) {
    this.#client = client;
    this.#images = images;
    this.#owner = owner;
    this.#breakDeadLocks = breakDeadLocks;
  }

  async acquire(name: string): Promise<ExportHandle> {
    if (name === '') throw new StorageError('NOT_FOUND', 'name an export: POOL/IMAGE (or POOL/IMAGE@SNAP, read-only)');
    let spec: ReturnType<typeof parseImageSpec>;
    try {
      spec = parseImageSpec(name);
    } catch (error) {
      throw new StorageError('NOT_FOUND', `no export ${JSON.stringify(name)}: ${(error as Error).message}`);
    }
    let entry = this.#open.get(name);
    while (!entry && this.#closing.has(name)) {
      await this.#closing.get(name);
      entry = this.#open.get(name);
    }
    if (!entry) {
      const opening = this.#images.open(spec.pool, spec.image, {
        owner: this.#owner,
        breakDeadLock: this.#breakDeadLocks,
        ...(spec.snap !== undefined ? { snap: spec.snap } : {}),
      });
      entry = { opening, users: 0 };
      this.#open.set(name, entry);
      opening.catch(() => this.#open.delete(name));
    }
    entry.users++;
    const current = entry;
    let opened;
    try {
      opened = await current.opening;
    } catch (error) {
      current.users--;
      throw error;
    }
    let released = false;
    return {
      image: opened.image,
      release: async () => {
        if (released) return;
        released = true;
        if (--current.users > 0) return;
        if (this.#open.get(name) === current) this.#open.delete(name);
        const closing = opened.close().finally(() => {
          if (this.#closing.get(name) === closing) this.#closing.delete(name);
        });
        this.#closing.set(name, closing);
        await closing;
      },
    };
  }

  /** Every image of every pool that holds images. */
  async list(): Promise<string[]> {
    const names: string[] = [];
    for (const pool of this.#client.map().pools) {
      for (const image of await this.#images.list(pool.name)) names.push(`${pool.name}/${image}`);
    }
    return names;
  }

  async closeAll(): Promise<void> {
    const entries = [...this.#open.values()];
    this.#open.clear();
    for (const e of entries) await (await e.opening.catch(() => undefined))?.close();
  }
}
