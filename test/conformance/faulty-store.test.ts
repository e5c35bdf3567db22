import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultyStore, LevelStore, MemStore, type ObjectStore } from '../../osd/store/index.js';
import { objectStoreSuite } from './object-store.suite.js';

// With no faults planned, FaultyStore must be invisible, over either backend.
objectStoreSuite('FaultyStore over MemStore, faults off', {
  async open() {
    const store = new FaultyStore(new MemStore(), { seed: 1 });
    await store.start();
    return store;
  },
  async reopen(store: ObjectStore) {
    await (store as FaultyStore).restart();
    return store;
  },
  close: (store) => store.stop(),
});

const dirs = new WeakMap<ObjectStore, string>();
objectStoreSuite('FaultyStore over LevelStore, faults off', {
  async open() {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-faulty-'));
    const store = new FaultyStore(new LevelStore({ dir }), { seed: 2 });
    await store.start();
    dirs.set(store, dir);
    return store;
  },
  async reopen(store: ObjectStore) {
    await (store as FaultyStore).restart();
    return store;
  },
  async close(store) {
    await store.stop();
    const dir = dirs.get(store);
    if (dir) await rm(dir, { recursive: true, force: true });
  },
});
