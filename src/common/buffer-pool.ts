/**
 * Reuses large buffers: the ones messenger payloads are received into and the ones the OSD store reads data into.
 *
 * Why: an OSD under 4 MiB writes receives every payload of the cluster's writes (each reaches all replicas), and under
 * 4 MiB reads allocates every reply. Fresh Buffers live outside V8's heap and are freed only when a collection finds
 * them dead; they live long enough to be promoted, so between two full collections tens of MiB of dead buffers stay
 * resident (the OSD peak RSS of issue 10), and each fresh 4 MiB buffer pays its page faults again.
 *
 * Ownership is counted, never guessed. `acquire` returns a buffer with one holder, its caller. `retain` adds one,
 * `release` drops one, and the last release returns the buffer to its free list. The holders in Shoal:
 * - the messenger server holds a request's payload until its handler settles (a handler may not keep it longer:
 *   `MessengerRequest.payload`), and takes over the hold on a response payload the handler returns;
 * - the frame writer holds the bytes of every frame it queues until the socket has written (or dropped) them;
 * - any other caller of `acquire` (the store's reads, a client's received replies) holds its buffer and may simply
 *   drop it: a buffer nobody releases is collected like any other. A missing release costs memory, never data.
 *
 * Pooled buffers start on a 64 KiB boundary (each is a WebAssembly memory: Node has no other way to ask for aligned
 * memory), so the store writes a payload received into one with O_DIRECT from where it lies (`startsAligned`)
 * instead of copying it into an aligned staging buffer first: under 4 MiB writes that copy was ~3 % of each OSD's
 * CPU (`__memmove_avx512_unaligned_erms` in `perf`). Creating one costs ~75 µs (mostly reserving its address space;
 * paid once per buffer, since they are reused).
 */

import { webAssembly } from './wasm.js';

/** Buffers smaller than this are not pooled (Node's own allocator serves them well). */
export const pooledBytesMin = 64 * 1024;

export interface BufferPoolStats {
  /** Buffers handed out, and how many of them were reused rather than allocated. */
  acquired: number;
  reused: number;
  /** Bytes held in free lists now. */
  freeBytes: number;
}

/**
 * Size classes are 2^k and 3·2^(k-1) bytes (at most a third wasted, rarely touched: the pages past a payload's end are
 * never written by it). Free lists hold at most `freeBytesMax` bytes together and are dropped after `idleMs` without an
 * acquire, so an idle daemon gives the memory back.
 */
export class BufferPool {
  readonly #freeBytesMax: number;
  readonly #idleMs: number;
  readonly #free = new Map<number, ArrayBuffer[]>();
  /** Holders of each pooled buffer in use. Weak: a buffer never released is garbage like any other. */
  readonly #holders = new WeakMap<ArrayBuffer, number>();
  /** Pooled buffers that start on a 64 KiB boundary (all but those made when a WebAssembly memory was refused). */
  readonly #aligned = new WeakSet<ArrayBuffer>();
  #freeBytes = 0;
  #acquired = 0;
  #reused = 0;
  #lastAcquireMs = 0;
  #trimTimer: NodeJS.Timeout | undefined;

  constructor(options: { freeBytesMax?: number; idleMs?: number } = {}) {
    this.#freeBytesMax = options.freeBytesMax ?? 64 * 1024 * 1024;
    this.#idleMs = options.idleMs ?? 10_000;
  }

  /** A buffer of exactly `bytes` (uninitialised: the caller fills all of it before anyone reads it), one holder. */
  acquire(bytes: number): Buffer {
    this.#acquired++;
    this.#lastAcquireMs = Date.now();
    if (bytes < pooledBytesMin) return Buffer.allocUnsafe(bytes);
    // Whole WebAssembly pages (only the 96 KiB class is not one), so a class's buffers all come back to its list.
    const size = Math.ceil(sizeClass(bytes) / wasmPageBytes) * wasmPageBytes;
    let arrayBuffer = this.#free.get(size)?.pop();
    if (arrayBuffer === undefined) {
      arrayBuffer = this.#allocate(size);
    } else {
      this.#freeBytes -= size;
      this.#reused++;
    }
    this.#holders.set(arrayBuffer, 1);
    return Buffer.from(arrayBuffer, 0, bytes);
  }

  /**
   * Whether `view` starts at a multiple of `align` (at most 64 KiB) in memory: true for views at such offsets of the
   * pooled buffers made aligned, false for everything else (which may be aligned by chance; nobody can tell).
   */
  startsAligned(view: Uint8Array, align: number): boolean {
    return align <= wasmPageBytes && view.byteOffset % align === 0 && this.#aligned.has(view.buffer as ArrayBuffer);
  }

  /** A new pooled buffer of at least `size` bytes (its length is a whole number of WebAssembly pages). */
  #allocate(size: number): ArrayBuffer {
    try {
      const pages = Math.ceil(size / wasmPageBytes);
      const { buffer } = new webAssembly.Memory({ initial: pages, maximum: pages });
      this.#aligned.add(buffer);
      return buffer;
    } catch {
      // The engine refused another memory (address space reserved for WebAssembly is bounded): unaligned will do.
      return Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
    }
  }

  /** Adds a holder to the buffer under `view` if it is a pooled one in use; returns whether it was. */
  retain(view: Uint8Array): boolean {
    const holders = this.#holders.get(view.buffer as ArrayBuffer);
    if (holders === undefined) return false;
    this.#holders.set(view.buffer as ArrayBuffer, holders + 1);
    return true;
  }

  /** Drops one holder of the buffer under `view`; the last one returns it to its free list. Others are ignored. */
  release(view: Uint8Array): void {
    const arrayBuffer = view.buffer as ArrayBuffer;
    const holders = this.#holders.get(arrayBuffer);
    if (holders === undefined) return;
    if (holders > 1) {
      this.#holders.set(arrayBuffer, holders - 1);
      return;
    }
    this.#holders.delete(arrayBuffer);
    const size = arrayBuffer.byteLength;
    if (this.#freeBytes + size > this.#freeBytesMax) return;
    const list = this.#free.get(size);
    if (list) list.push(arrayBuffer);
    else this.#free.set(size, [arrayBuffer]);
    this.#freeBytes += size;
    this.#scheduleTrim();
  }

  stats(): BufferPoolStats {
    return { acquired: this.#acquired, reused: this.#reused, freeBytes: this.#freeBytes };
  }

  #scheduleTrim(): void {
    if (this.#trimTimer !== undefined) return;
    this.#trimTimer = setTimeout(() => {
      this.#trimTimer = undefined;
      if (Date.now() - this.#lastAcquireMs >= this.#idleMs) {
        this.#free.clear();
        this.#freeBytes = 0;
      } else if (this.#freeBytes > 0) {
        this.#scheduleTrim();
      }
    }, this.#idleMs);
    this.#trimTimer.unref();
  }
}

const wasmPageBytes = 65536;

/** The smallest class (2^k or 3·2^(k-1)) that holds `bytes`. */
export function sizeClass(bytes: number): number {
  let size = pooledBytesMin;
  while (size < bytes) {
    const between = size + size / 2;
    if (between >= bytes) return between;
    size *= 2;
  }
  return size;
}

/** The one pool of a process: a payload an OSD receives is forwarded to its replicas from the same buffer. */
export const bufferPool = new BufferPool();
