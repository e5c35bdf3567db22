/**
 * Garbage-collector tuning for the daemons that move bulk data (OSDs, gateways). Every payload they receive is a
 * Buffer outside the JavaScript heap, and V8 schedules full collections by heap plus external memory: with a small
 * heap (an OSD's is ~17 MiB) a few 4 MiB payloads reached the limit, so an OSD under 4 MiB writes ran a full
 * collection every ~170 ms and spent about half its CPU on them (measured with --trace-gc; `npm run bench -- erasure`
 * went from 80 to ~42 ms of CPU per replicated 4 MiB write with the heap allowed to grow further between
 * collections). The price is memory: garbage waits longer. 200 % (the heap may triple between collections) kept the
 * OSDs' peak RSS within the 300 MiB goal in the report's runs (277-296 MiB under the objects benchmark, as before);
 * 300 % saved a little more CPU but reached 349 MiB.
 */
import { setFlagsFromString } from 'node:v8';

/** How far the heap (with external memory) may grow past what survived the last full collection, in percent. */
export const bulkDataHeapGrowingPercent = 200;

/** Applies the tuning to this process (calling it again changes nothing); daemons call it as they start. */
export function tuneGcForBulkData(): void {
  setFlagsFromString(`--heap-growing-percent=${bulkDataHeapGrowingPercent}`);
}
