import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelStore, type LevelStoreOptions, type ObjectStore } from '../../osd/store/index.js';
import { objectStoreSuite, type StoreHarness } from './object-store.suite.js';

/** Each store gets its own temporary directory; reopen builds a new instance over the same directory. */
function levelHarness(options: Omit<LevelStoreOptions, 'dir'>): StoreHarness {
  const dirs = new WeakMap<ObjectStore, string>();
  return {
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'shoal-store-'));
      const store = new LevelStore({ ...options, dir });
      await store.start();
      dirs.set(store, dir);
      return store;
    },
    async reopen(store) {
      const dir = dirs.get(store) as string;
      await store.stop();
      const next = new LevelStore({ ...options, dir });
      await next.start();
      dirs.set(next, dir);
      return next;
    },
    async close(store) {
      await store.stop();
      const dir = dirs.get(store);
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

objectStoreSuite('LevelStore', levelHarness({}));
// Tiny inline limit and blocks: nearly every object lives in a data file and most writes straddle blocks.
objectStoreSuite('LevelStore (inline ≤ 1 KiB, 512-byte blocks)', levelHarness({ inlineBytesMax: 1024, blockBytes: 512 }));
