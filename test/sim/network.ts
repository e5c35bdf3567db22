/**
 * A simulated network between named nodes, driven by simulated time and one seeded Random. Fault model: each message
 * may be lost, delayed (occasionally for very long, so that it arrives stale), duplicated, and so reordered;
 * partitions block chosen directions (symmetric or one-way) until healed. It never corrupts a message: Raft assumes
 * an integrity-checked transport, and the codec tests cover garbage.
 */
import type { Random } from '../../src/common/index.js';

export interface NetworkConditions {
  /** Probability that a message is dropped. */
  lossRate: number;
  /** Probability that a message is delivered twice (each copy with its own delay). */
  duplicateRate: number;
  delayMinMs: number;
  delayMaxMs: number;
  /** Probability that a message takes up to `longDelayMaxMs` instead: it arrives long after newer ones. */
  longDelayRate: number;
  longDelayMaxMs: number;
}

export const calmNetwork: NetworkConditions = {
  lossRate: 0,
  duplicateRate: 0,
  delayMinMs: 1,
  delayMaxMs: 5,
  longDelayRate: 0,
  longDelayMaxMs: 0,
};

interface InFlight<T> {
  atMs: number;
  sequence: number;
  message: T;
}

export interface NetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  blocked: number;
  duplicated: number;
}

export class SimNetwork<T extends { from: string; to: string }> {
  conditions: NetworkConditions;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, lost: 0, blocked: 0, duplicated: 0 };
  readonly #random: Random;
  /** A binary min-heap on (atMs, sequence): the sequence makes equal times deliver in a seed-determined order. */
  readonly #heap: InFlight<T>[] = [];
  #sequence = 0;
  readonly #blocked = new Set<string>();

  constructor(random: Random, conditions: NetworkConditions = calmNetwork) {
    this.#random = random;
    this.conditions = conditions;
  }

  get inFlight(): number {
    return this.#heap.length;
  }

  send(message: T, nowMs: number): void {
    this.stats.sent++;
    const c = this.conditions;
    if (this.#random.chance(c.lossRate)) {
      this.stats.lost++;
      return;
    }
    const copies = this.#random.chance(c.duplicateRate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const delay = this.#random.chance(c.longDelayRate)
        ? this.#random.int(c.delayMaxMs, Math.max(c.delayMaxMs, c.longDelayMaxMs))
        : this.#random.int(c.delayMinMs, c.delayMaxMs);
      this.#push({ atMs: nowMs + delay, sequence: this.#sequence++, message });
    }
  }

  /** Removes and returns the messages due by `nowMs` that a partition does not block at delivery time. */
  due(nowMs: number): T[] {
    const out: T[] = [];
    while (this.#heap.length > 0 && (this.#heap[0] as InFlight<T>).atMs <= nowMs) {
      const { message } = this.#pop();
      if (this.#blocked.has(edge(message.from, message.to))) {
        this.stats.blocked++;
        continue;
      }
      this.stats.delivered++;
      out.push(message);
    }
    return out;
  }

  /** Drops every message in flight to `to` (a crashed node's socket buffers are gone). */
  dropTo(to: string): void {
    const kept = this.#heap.filter((f) => f.message.to !== to);
    this.stats.lost += this.#heap.length - kept.length;
    this.#heap.length = 0;
    for (const f of kept) this.#push(f);
  }

  /** Blocks messages from `from` to `to` (one way). */
  block(from: string, to: string): void {
    this.#blocked.add(edge(from, to));
  }

  /** Splits the nodes into groups that cannot reach each other, both ways. */
  partition(groups: string[][]): void {
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.block(x, y);
      }
    }
  }

  isBlocked(from: string, to: string): boolean {
    return this.#blocked.has(edge(from, to));
  }

  get partitioned(): boolean {
    return this.#blocked.size > 0;
  }

  heal(): void {
    this.#blocked.clear();
  }

  #push(item: InFlight<T>): void {
    const heap = this.#heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i] as InFlight<T>, heap[parent] as InFlight<T>)) break;
      [heap[i], heap[parent]] = [heap[parent] as InFlight<T>, heap[i] as InFlight<T>];
      i = parent;
    }
  }

  #pop(): InFlight<T> {
    const heap = this.#heap;
    const top = heap[0] as InFlight<T>;
    const last = heap.pop() as InFlight<T>;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l] as InFlight<T>, heap[m] as InFlight<T>)) m = l;
        if (r < heap.length && before(heap[r] as InFlight<T>, heap[m] as InFlight<T>)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m] as InFlight<T>, heap[i] as InFlight<T>];
        i = m;
      }
    }
    return top;
  }
}

function edge(from: string, to: string): string {
  return `${from}>${to}`;
}

function before<T>(a: InFlight<T>, b: InFlight<T>): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.sequence < b.sequence);
}
