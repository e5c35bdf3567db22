import { MemStore, type ObjectStore } from '../../osd/store/index.js';
import { objectStoreSuite } from './object-store.suite.js';

objectStoreSuite('MemStore', {
  async open() {
    const store = new MemStore();
    await store.start();
    return store;
  },
  async reopen(store: ObjectStore) {
    await store.stop();
    await store.start();
    return store;
  },
  close: (store) => store.stop(),
});
