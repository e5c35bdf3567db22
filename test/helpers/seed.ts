import type { TestContext } from 'node:test';
import { Random, seedFromEnv } from '../../src/index.js';

/** The seed for a seeded test, printed as a diagnostic so any run can be replayed with SHOAL_SEED. */
export function seededRandom(t: TestContext): Random {
  const seed = seedFromEnv();
  t.diagnostic(`seed ${seed} (replay: SHOAL_SEED=${seed} node scripts/test.mjs --test-name-pattern=${JSON.stringify(t.name)})`);
  return new Random(seed);
}
