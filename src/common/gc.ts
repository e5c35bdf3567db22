/**
 * Garbage-collector tuning for the daemons that move bulk data. Every payload they receive is a Buffer outside the
 * JavaScript heap, and V8 schedules full collections by heap plus external memory: with a small heap (an OSD's is
 * ~17 MiB) a few 4 MiB payloads reach the limit. Measured with --trace-gc under `npm run bench -- erasure`: an OSD
 * ran a full collection every ~170 ms and spent about half its CPU on them; letting the heap triple between
 * collections (`--heap-growing-percent=200`) cut the CPU per replicated 4 MiB write from 80 to 42-57 ms.
 *
 * The price is memory: garbage waits longer. Under the objects benchmark (16 writes of 4 MiB in flight) an OSD
 * peaked at 293-335 MiB with it against 269-302 MiB without, and the OSD's goal is 300 MiB at default settings, so
 * OSDs keep V8's own pacing unless told otherwise; the gateways (S3, NBD, FUSE mount), which have no memory goal and
 * spent up to a third of their CPU collecting, use 200 %. `SHOAL_GC_HEAP_GROWING_PERCENT` sets it for any daemon.
 *
 * Since large payloads reuse pooled buffers (buffer-pool.ts) there is little such garbage left: two alternating runs
 * of the objects benchmark each (2026-11-24) gave 21-27 ms of CPU per 4 MiB write with 200 % against 24-25 without,
 * peak RSS 243-261 against 231-269 MiB. No clear gain, so the OSDs' default stays.
 */
import { setFlagsFromString } from 'node:v8';
import { StorageError } from './errors.js';

/** The gateways' default: the heap (with external memory) may triple between full collections. */
export const gatewayHeapGrowingPercent = 200;

/**
 * Applies the tuning to this process as a daemon starts: `SHOAL_GC_HEAP_GROWING_PERCENT` if set, else
 * `defaultPercent`; 0 keeps V8's own heuristics. Calling it again with the same value changes nothing.
 */
export function tuneGcForBulkData(defaultPercent: number, env: NodeJS.ProcessEnv = process.env): void {
  const raw = env['SHOAL_GC_HEAP_GROWING_PERCENT'];
  const percent = raw === undefined || raw === '' ? defaultPercent : Number(raw);
  if (!Number.isInteger(percent) || percent < 0 || percent > 1000) {
    throw new StorageError('INVALID_ARGUMENT', `SHOAL_GC_HEAP_GROWING_PERCENT must be an integer from 0 to 1000, got ${JSON.stringify(raw)}`);
  }
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
