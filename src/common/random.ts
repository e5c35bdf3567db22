/**
 * Seeded randomness: the only source of random choices in Shoal's logic (election timeouts, jitter, simulated
 * faults), so a simulation run is reproduced exactly from its seed. Backed by pure-rand's xoroshiro128+.
 */
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';

type Generator = ReturnType<typeof xoroshiro128plus>;

export class Random {
  readonly seed: number;
  #rng: Generator;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#rng = xoroshiro128plus(this.seed);
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  u32(): number {
    return this.#rng.next() >>> 0;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || max < min) {
      throw new TypeError(`Random.int: bad range [${min}, ${max}]`);
    }
    return uniformInt(this.#rng, min, max);
  }

  /** A float in [0, 1) with 32 bits of randomness. */
  float(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new TypeError('Random.pick: empty list');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** A new array with the items in random order (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }

  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    let i = 0;
    for (; i + 4 <= length; i += 4) out.writeUInt32LE(this.u32(), i);
    for (; i < length; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** An independent generator derived from this one (for giving each simulated node its own stream). */
  fork(): Random {
    return new Random(this.u32());
  }
}

/**
 * The seed for a seeded test: `$SHOAL_SEED` when set (to reproduce a failure), else a fresh one. Tests print the seed
 * they used so that any failure can be replayed.
 */
export function seedFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = env['SHOAL_SEED'];
  if (fromEnv !== undefined && fromEnv !== '') {
    const seed = Number(fromEnv);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) {
      throw new TypeError(`SHOAL_SEED must be an integer in [0, 2^32): ${fromEnv}`);
    }
    return seed;
  }
  return Math.floor(Math.random() * 0x1_0000_0000);
}
