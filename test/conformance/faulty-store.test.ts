import { FaultyStore, MemStore, type ObjectStore } from '../../osd/store/index.js';
import { objectStoreSuite } from './object-store.suite.js';

// With no faults planned, FaultyStore must be invisible.
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
