/** `eachLimited` over the items of an array. */
export function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  return eachLimited(items.length, limit, (i) => fn(items[i] as T));
}

/** Runs `fn` over [0, count) with at most `limit` calls at once; rejects with the first failure. */
export async function eachLimited(count: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}
