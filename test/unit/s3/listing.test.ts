import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  compareUtf8,
  decodeContinuationToken,
  encodeContinuationToken,
  listPage,
  mergeSources,
  type KeySource,
  type ListParams,
} from '../../../gateway/s3/listing.js';
import { S3Error } from '../../../gateway/s3/s3-error.js';
import { seededRandom } from '../../helpers/seed.js';

/** A sorted in-memory source that counts what it is asked and what it returns. */
function arraySource(keys: readonly string[]): KeySource<number> & { calls: number; read: number } {
  const sorted = [...new Set(keys)].sort(compareUtf8);
  const source = async (after: string, limit: number) => {
    assert.ok(limit >= 1, 'limit ≥ 1');
    source.calls++;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareUtf8(sorted[mid]!, after) <= 0) lo = mid + 1;
      else hi = mid;
    }
    const entries = sorted.slice(lo, lo + limit).map((key) => ({ key, value: key.length }));
    source.read += entries.length;
    return { entries, more: lo + limit < sorted.length };
  };
  source.calls = 0;
  source.read = 0;
  return source;
}

interface Listing {
  contents: string[];
  commonPrefixes: string[];
  isTruncated: boolean;
}

/** The reference: filter by prefix and start-after, group by delimiter, slice. */
function reference(keys: readonly string[], p: ListParams): Listing {
  const prefix = p.prefix ?? '';
  const delimiter = p.delimiter ?? '';
  const startAfter = p.startAfter ?? '';
  const maxKeys = p.maxKeys ?? 1000;
  const groupOf = (key: string): string | undefined => {
    if (delimiter === '' || !key.startsWith(prefix)) return undefined;
    const at = key.indexOf(delimiter, prefix.length);
    return at < 0 ? undefined : key.slice(0, at + delimiter.length);
  };
  const startIsGroup = groupOf(startAfter) === startAfter;
  const items: { key?: string; prefix?: string }[] = [];
  for (const key of [...new Set(keys)].sort(compareUtf8)) {
    if (!key.startsWith(prefix) || compareUtf8(key, startAfter) <= 0) continue;
    if (startIsGroup && key.startsWith(startAfter)) continue;
    const group = groupOf(key);
    if (group === undefined) items.push({ key });
    else if (items[items.length - 1]?.prefix !== group) items.push({ prefix: group });
  }
  const page = items.slice(0, maxKeys);
  return {
    contents: page.flatMap((i) => (i.key === undefined ? [] : [i.key])),
    commonPrefixes: page.flatMap((i) => (i.prefix === undefined ? [] : [i.prefix])),
    isTruncated: maxKeys > 0 && items.length > maxKeys,
  };
}

// Few characters, so that keys share prefixes and delimiters; with characters whose UTF-8 and UTF-16 orders differ
// (U+E000, U+FFFD against U+1F600, U+10FFFF), the highest code point (the seek character) and NUL.
const alphabet = ['a', 'b', '/', '-', '.', ' ', 'é', '\0', '\ue000', '\ufffd', '\u{1f600}', '\u{10ffff}'];
const charArb = fc.constantFrom(...alphabet);
const strArb = (min: number, max: number) => fc.array(charArb, { minLength: min, maxLength: max }).map((cs) => cs.join(''));
const keysArb = fc.array(strArb(1, 6), { maxLength: 60 });
const paramsArb = fc.record({
  prefix: fc.oneof(fc.constant(''), strArb(1, 2)),
  delimiter: fc.constantFrom('', '/', '-', 'a/', '\u{1f600}', '\u{10ffff}', '//'),
  startAfter: fc.oneof(fc.constant(''), strArb(1, 4)),
  maxKeys: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constant(1000)),
});

function fcSeed(t: Parameters<typeof seededRandom>[0]): number {
  return seededRandom(t).int(0, 0x7fff_ffff);
}

async function listOnce(source: KeySource<number>, p: ListParams): Promise<Listing & { nextMarker: string }> {
  const r = await listPage(source, p);
  for (const e of r.contents) assert.equal(e.value, e.key.length);
  return { contents: r.contents.map((e) => e.key), commonPrefixes: r.commonPrefixes, isTruncated: r.isTruncated, nextMarker: r.nextMarker };
}

test('compareUtf8 orders as the UTF-8 bytes do', (t) => {
  const seed = fcSeed(t);
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
      assert.equal(Math.sign(compareUtf8(a, b)), Buffer.compare(Buffer.from(a), Buffer.from(b)));
    }),
    { seed, numRuns: 2000 },
  );
  assert.ok(compareUtf8('\ufffd', '\u{1f600}') < 0 && '\ufffd' > '\u{1f600}', 'differs from code unit order');
});

test('listPage: one page equals the reference listing (prefix, delimiter, start-after, max-keys)', async (t) => {
  const seed = fcSeed(t);
  await fc.assert(
    fc.asyncProperty(keysArb, paramsArb, fc.boolean(), async (keys, params, startAtKey) => {
      const p = { ...params };
      if (startAtKey && keys.length > 0) p.startAfter = keys[0]!;
      const got = await listOnce(arraySource(keys), p);
      const want = reference(keys, p);
      assert.deepEqual({ contents: got.contents, commonPrefixes: got.commonPrefixes, isTruncated: got.isTruncated }, want);
    }),
    { seed, numRuns: 1500 },
  );
});

test('listPage: paging with nextMarker through all pages yields exactly the whole listing, for any max-keys', async (t) => {
  const seed = fcSeed(t);
  await fc.assert(
    fc.asyncProperty(keysArb, paramsArb, fc.integer({ min: 1, max: 7 }), async (keys, params, maxKeys) => {
      const whole = reference(keys, { ...params, maxKeys: 100_000 });
      const source = arraySource(keys);
      const contents: string[] = [];
      const prefixes: string[] = [];
      let startAfter = params.startAfter;
      for (let pages = 0; ; pages++) {
        assert.ok(pages <= keys.length + 1, 'paging terminates');
        const page = await listOnce(source, { ...params, maxKeys, startAfter });
        assert.ok(page.contents.length + page.commonPrefixes.length <= maxKeys);
        contents.push(...page.contents);
        prefixes.push(...page.commonPrefixes);
        if (!page.isTruncated) break;
        assert.equal(page.contents.length + page.commonPrefixes.length, maxKeys, 'a truncated page is full');
        startAfter = page.nextMarker;
      }
      assert.deepEqual({ contents, commonPrefixes: prefixes }, { contents: whole.contents, commonPrefixes: whole.commonPrefixes });
    }),
    { seed, numRuns: 1000 },
  );
});

test('listPage: keys under a common prefix are skipped by seeking, not read', async () => {
  const keys = [...Array.from({ length: 5000 }, (_, i) => `logs/${String(i).padStart(5, '0')}`), 'm', ...Array.from({ length: 5000 }, (_, i) => `z/${i}`)];
  const source = arraySource(keys);
  const r = await listPage(source, { delimiter: '/' });
  assert.deepEqual(r.commonPrefixes, ['logs/', 'z/']);
  assert.deepEqual(
    r.contents.map((e) => e.key),
    ['m'],
  );
  assert.equal(r.isTruncated, false);
  assert.ok(source.read < 3000, `read ${source.read} keys`);
  // Continuing after a common prefix does not re-list it.
  const source2 = arraySource(keys);
  const next = await listPage(source2, { delimiter: '/', maxKeys: 1, startAfter: 'logs/' });
  assert.deepEqual(next.contents.map((e) => e.key), ['m']);
  assert.equal(next.isTruncated, true);
  assert.ok(source2.read < 10, `read ${source2.read} keys`);
});

test('listPage: keys containing U+10FFFF right after a common prefix are still grouped, not listed twice', async () => {
  const max = '\u{10ffff}';
  const keys = ['a/x', `a/${max}`, `a/${max}${max}`, `a/${max}${max}z`, `a/${max}b`, 'b'];
  for (const maxKeys of [1, 2, 1000]) {
    const first = await listPage(arraySource(keys), { delimiter: '/', maxKeys });
    assert.deepEqual(first.commonPrefixes, ['a/']);
  }
  const r = await listPage(arraySource(keys), { delimiter: '/', startAfter: 'a/' });
  assert.deepEqual(r.contents.map((e) => e.key), ['b']);
  assert.deepEqual((await listPage(arraySource([`a${max}`, `a${max}b`, 'b', 'c']), { prefix: 'b' })).contents.map((e) => e.key), ['b']);
});

test('listPage: max-keys outside 0..1000 is clamped or refused', async () => {
  const keys = Array.from({ length: 1500 }, (_, i) => `k${String(i).padStart(4, '0')}`);
  const r = await listPage(arraySource(keys), { maxKeys: 5000 });
  assert.equal(r.contents.length, 1000);
  assert.equal(r.isTruncated, true);
  assert.equal(r.nextMarker, 'k0999');
  await assert.rejects(listPage(arraySource(keys), { maxKeys: -1 }), (e) => e instanceof S3Error && e.code === 'InvalidArgument');
  assert.deepEqual(await listPage(arraySource(keys), { maxKeys: 0 }), { contents: [], commonPrefixes: [], isTruncated: false, nextMarker: '' });
});

test('mergeSources: merged shards list exactly as one source, at any page size', async (t) => {
  const seed = fcSeed(t);
  await fc.assert(
    fc.asyncProperty(
      keysArb,
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.nat(), { maxLength: 60 }),
      paramsArb,
      fc.integer({ min: 1, max: 4 }),
      async (keys, shardCount, assignment, params, limit) => {
        const shards: string[][] = Array.from({ length: shardCount }, () => []);
        keys.forEach((key, i) => shards[(assignment[i] ?? i) % shardCount]!.push(key));
        const merged = mergeSources(shards.map(arraySource));
        // Raw paging with a small limit yields every key once, in order.
        const seen: string[] = [];
        let after = '';
        for (;;) {
          const page = await merged(after, limit);
          assert.ok(page.entries.length <= limit);
          seen.push(...page.entries.map((e) => e.key));
          if (!page.more) break;
          after = page.entries[page.entries.length - 1]!.key;
        }
        assert.deepEqual(seen, [...new Set(keys)].sort(compareUtf8));
        // And a listing over the merge equals one over a single source.
        assert.deepEqual(await listOnce(merged, params), await listOnce(arraySource(keys), params));
      },
    ),
    { seed, numRuns: 800 },
  );
});

test('mergeSources: a key in several shards is returned once', async () => {
  const merged = mergeSources([arraySource(['a', 'c']), arraySource(['a', 'b', 'c'])]);
  assert.deepEqual(
    (await merged('', 10)).entries.map((e) => e.key),
    ['a', 'b', 'c'],
  );
});

test('continuation tokens: round trip, opaque base64url; garbled tokens are InvalidArgument', (t) => {
  const seed = fcSeed(t);
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), (marker) => {
      const token = encodeContinuationToken(marker);
      assert.match(token, /^[A-Za-z0-9_-]+$/);
      assert.equal(decodeContinuationToken(token), marker);
    }),
    { seed, numRuns: 1000 },
  );
  const bad = [
    '',
    'not a token!',
    'AWJj=',
    Buffer.from('\x02abc').toString('base64url'), // unknown version
    Buffer.from([1, 0xff, 0xfe]).toString('base64url'), // not UTF-8
    `${encodeContinuationToken('abc')}+`,
    'A'.repeat(5000),
  ];
  for (const token of bad) {
    assert.throws(() => decodeContinuationToken(token), (e) => e instanceof S3Error && e.code === 'InvalidArgument', token);
  }
});
