import { compareUtf8 } from './limits.js';
import type { ListOptions } from './types.js';

/**
 * A string-keyed map that lists in UTF-8 byte order (the order LevelDB gives the real store), for MemStore.
 * Keys live in a sorted array: appends (PG logs, growing indexes) are cheap, inserts in the middle cost O(n).
 */
export class SortedStringMap<V> {
  #keys: string[] = [];
  #values = new Map<string, V>();

  get size(): number {
    return this.#keys.length;
  }

  get(key: string): V | undefined {
    return this.#values.get(key);
  }

  has(key: string): boolean {
    return this.#values.has(key);
  }

  set(key: string, value: V): void {
    if (!this.#values.has(key)) {
      const keys = this.#keys;
      const last = keys[keys.length - 1];
      if (last === undefined || compareUtf8(last, key) < 0) keys.push(key);
      else keys.splice(this.#lowerBound(key), 0, key);
    }
    this.#values.set(key, value);
  }

  delete(key: string): boolean {
    if (!this.#values.delete(key)) return false;
    this.#keys.splice(this.#lowerBound(key), 1);
    return true;
  }

  clear(): void {
    this.#keys = [];
    this.#values.clear();
  }

  /** First index whose key is >= `key`. */
  #lowerBound(key: string): number {
    let lo = 0;
    let hi = this.#keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareUtf8(this.#keys[mid] as string, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** A page of entries: keys after `after` (exclusive) that start with `prefix`, at most `limit`. */
  page(options: ListOptions): { entries: [string, V][]; more: boolean } {
    const prefix = options.prefix ?? '';
    let i = this.#lowerBound(options.after !== undefined && compareUtf8(options.after, prefix) >= 0 ? options.after : prefix);
    if (options.after !== undefined && this.#keys[i] === options.after) i++;
    const entries: [string, V][] = [];
    for (; i < this.#keys.length; i++) {
      const key = this.#keys[i] as string;
      if (!key.startsWith(prefix)) break;
      if (entries.length === options.limit) return { entries, more: true };
      entries.push([key, this.#values.get(key) as V]);
    }
    return { entries, more: false };
  }

  *entries(): IterableIterator<[string, V]> {
    for (const key of this.#keys) yield [key, this.#values.get(key) as V];
  }

  keys(): readonly string[] {
    return this.#keys;
  }
}
