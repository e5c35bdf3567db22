/**
 * Child process of the crash test: applies the crash workload from a given index, several transactions in flight,
 * until it is killed. It reports each transaction when submitted ("s <i>") and when acknowledged ("a <i>"),
 * synchronously, so nothing it printed is lost when SIGKILL arrives.
 * Usage: node crash-child.js <dir> <seed> <first index>
 */
import { writeSync } from 'node:fs';
import { LevelStore } from '../../../osd/store/index.js';
import { crashTransaction } from './crash-workload.js';

const [dir, seedText, firstText] = process.argv.slice(2);
const seed = Number(seedText);
let next = Number(firstText);
const inFlightMax = 8;

// Small retirement bounds so that retiring deferred writes also happens under fire.
const store = new LevelStore({ dir: dir as string, deferredBytesMax: 64 * 1024, deferredRecordsMax: 16, gcBatchMax: 4 });
await store.start();
writeSync(1, 'ready\n');

let inFlight = 0;
function pump(): void {
  while (inFlight < inFlightMax) {
    const index = next++;
    inFlight++;
    writeSync(1, `s ${index}\n`);
    store.apply(crashTransaction(seed, index)).then(
      () => {
        writeSync(1, `a ${index}\n`);
        inFlight--;
        pump();
      },
      (error: unknown) => {
        writeSync(2, `transaction ${index} failed: ${String(error)}\n`);
        process.exitCode = 3;
        void store.stop();
      },
    );
  }
}
pump();
