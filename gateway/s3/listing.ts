/**
 * The S3 listing algorithm (ListObjects v1/v2, and any other prefix/delimiter listing), independent of storage.
 *
 * Order: keys are ordered by their UTF-8 bytes, as S3 lists them and as LevelDB (omap) stores them. For valid
 * Unicode strings that is code point order, which `compareUtf8` implements; it differs from JavaScript's `<` (UTF-16
 * code units) only for characters above U+FFFF against U+E000–U+FFFF. Every KeySource must use this order.
 */
import { S3Error } from './s3-error.js';

/** Keys strictly greater than `after` (UTF-8 byte order), ascending, at most `limit` (≥ 1) of them; `more` if any remain. */
export type KeySource<T> = (after: string, limit: number) => Promise<{ entries: { key: string; value: T }[]; more: boolean }>;

export interface ListParams {
  prefix?: string;
  /** Empty or absent: no grouping. May be longer than one character. */
  delimiter?: string;
  /** 0..1000; default 1000. */
  maxKeys?: number;
  /**
   * List keys strictly after this (marker, start-after or a decoded continuation token). If it is itself a common
   * prefix of this listing (prefix, then anything, then the delimiter at its end), everything under it is skipped too:
   * that is how a page that ended with a common prefix is continued.
   */
  startAfter?: string;
}

export interface ListResult<T> {
  contents: { key: string; value: T }[];
  commonPrefixes: string[];
  isTruncated: boolean;
  /** The last key or common prefix of this page ('' if the page is empty): the startAfter of the next page. */
  nextMarker: string;
}

export const listKeysMax = 1000;

/** Largest code point: in UTF-8 order, `p + highest` is above every key that starts with `p` and has no U+10FFFF next. */
const highest = '\u{10ffff}';

/** Compares strings by UTF-8 bytes (= code points): negative, 0 or positive. */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // At the first differing unit, whole code points compare in code point order (a high surrogate starts one above
    // U+FFFF; two differing low surrogates compare as themselves).
    return a.codePointAt(i)! - b.codePointAt(i)!;
  }
  return a.length - b.length;
}

/**
 * A string below `prefix` with (practically) nothing between it and `prefix`: the seek point for "keys ≥ prefix".
 * Keys that fall between it and `prefix` (possible only with U+10FFFF characters) are read and skipped.
 */
function justBelow(prefix: string): string {
  if (prefix === '') return '';
  const last = prefix.codePointAt(prefix.length - 1)!;
  const isLowSurrogate = last >= 0xdc00 && last <= 0xdfff;
  const cp = isLowSurrogate ? prefix.codePointAt(prefix.length - 2)! : last;
  const head = prefix.slice(0, prefix.length - (cp > 0xffff ? 2 : 1));
  if (cp === 0) return head;
  const below = cp === 0xe000 ? 0xd7ff : cp - 1;
  return head + String.fromCodePoint(below) + highest;
}

/** The seek point past every key under `commonPrefix` that is not above `key` (a key under it). */
function skipPast(commonPrefix: string, key: string): string {
  let run = 0;
  while (key.startsWith(highest, commonPrefix.length + run * highest.length)) run++;
  return commonPrefix + highest.repeat(run + 1);
}

function validMaxKeys(maxKeys: number | undefined): number {
  if (maxKeys === undefined) return listKeysMax;
  if (!Number.isInteger(maxKeys) || maxKeys < 0) throw new S3Error('InvalidArgument', 'max-keys must be a non-negative integer', { ArgumentName: 'max-keys' });
  return Math.min(maxKeys, listKeysMax);
}

/**
 * One page of a listing. Reads the source in pages; a run of keys under one common prefix is skipped by seeking past
 * the prefix once the current page holds nothing else. Common prefixes count toward maxKeys. isTruncated is exact:
 * true only if a further key or common prefix exists (that costs at most one look-ahead read). maxKeys 0 lists
 * nothing and is not truncated.
 */
export async function listPage<T>(source: KeySource<T>, params: ListParams): Promise<ListResult<T>> {
  const prefix = params.prefix ?? '';
  const delimiter = params.delimiter ?? '';
  const maxKeys = validMaxKeys(params.maxKeys);
  const startAfter = params.startAfter ?? '';
  const contents: { key: string; value: T }[] = [];
  const commonPrefixes: string[] = [];
  const done = (isTruncated: boolean): ListResult<T> => ({
    contents,
    commonPrefixes,
    isTruncated,
    nextMarker: lastItem ?? '',
  });
  let lastItem: string | undefined;
  if (maxKeys === 0) return done(false);

  const commonPrefixOf = (key: string): string | undefined => {
    if (delimiter === '') return undefined;
    const at = key.indexOf(delimiter, prefix.length);
    return at < 0 ? undefined : key.slice(0, at + delimiter.length);
  };

  let after: string;
  /** The common prefix whose keys are being skipped (the last one listed, or startAfter if it is one). */
  let skipping: string | undefined;
  if (compareUtf8(startAfter, prefix) < 0) {
    after = justBelow(prefix);
  } else if (startAfter.startsWith(prefix) && commonPrefixOf(startAfter) === startAfter) {
    skipping = startAfter;
    after = skipPast(startAfter, startAfter);
  } else {
    after = startAfter;
  }

  for (;;) {
    const remaining = maxKeys - contents.length - commonPrefixes.length;
    const page = await source(after, Math.min(listKeysMax, remaining + 1));
    if (page.more && page.entries.length === 0) throw new Error('KeySource: more entries announced but none returned');
    let lastKey = after;
    for (const entry of page.entries) {
      const key = entry.key;
      if (compareUtf8(key, lastKey) <= 0) throw new Error('KeySource: keys out of order');
      lastKey = key;
      if (!key.startsWith(prefix)) {
        if (compareUtf8(key, prefix) < 0) continue; // between justBelow(prefix) and prefix
        return done(false); // past every key with the prefix
      }
      if (skipping !== undefined && key.startsWith(skipping)) continue;
      skipping = undefined;
      if (contents.length + commonPrefixes.length === maxKeys) return done(true);
      const commonPrefix = commonPrefixOf(key);
      if (commonPrefix === undefined) {
        contents.push(entry);
        lastItem = key;
      } else {
        commonPrefixes.push(commonPrefix);
        lastItem = commonPrefix;
        skipping = commonPrefix;
      }
    }
    if (!page.more) return done(false);
    after = skipping !== undefined && lastKey.startsWith(skipping) ? skipPast(skipping, lastKey) : lastKey;
  }
}

/**
 * A k-way merge of sorted sources (e.g. the shards of a bucket index) into one sorted source. Each call reads every
 * source once with the same limit and returns the merged entries up to the smallest last key among the sources that
 * have more (beyond it, those sources' next keys are unknown). A key present in several sources is returned once,
 * with the value of the first source that has it.
 */
export function mergeSources<T>(sources: readonly KeySource<T>[]): KeySource<T> {
  return async (after, limit) => {
    const pages = await Promise.all(sources.map((source) => source(after, limit)));
    let bound: string | undefined;
    for (const page of pages) {
      if (!page.more) continue;
      const last = page.entries[page.entries.length - 1];
      if (last === undefined) throw new Error('KeySource: more entries announced but none returned');
      if (bound === undefined || compareUtf8(last.key, bound) < 0) bound = last.key;
    }
    const merged: { key: string; value: T; source: number }[] = [];
    pages.forEach((page, source) => {
      for (const entry of page.entries) {
        if (bound !== undefined && compareUtf8(entry.key, bound) > 0) break;
        merged.push({ key: entry.key, value: entry.value, source });
      }
    });
    merged.sort((a, b) => compareUtf8(a.key, b.key) || a.source - b.source);
    const entries: { key: string; value: T }[] = [];
    for (const m of merged) {
      if (entries.length > 0 && entries[entries.length - 1]!.key === m.key) continue;
      if (entries.length === limit) return { entries, more: true };
      entries.push({ key: m.key, value: m.value });
    }
    return { entries, more: bound !== undefined };
  };
}

const tokenVersion = 1;

/** An opaque ListObjectsV2 continuation token for a marker (base64url of a version byte and the UTF-8 marker). */
export function encodeContinuationToken(marker: string): string {
  return Buffer.concat([Buffer.of(tokenVersion), Buffer.from(marker, 'utf8')]).toString('base64url');
}

/** The marker in a continuation token; anything not made by encodeContinuationToken → S3Error('InvalidArgument'). */
export function decodeContinuationToken(token: string): string {
  const invalid = (): S3Error =>
    new S3Error('InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token', ArgumentValue: token });
  if (token === '' || token.length > 4096 || !/^[A-Za-z0-9_-]+$/.test(token)) throw invalid();
  const bytes = Buffer.from(token, 'base64url');
  if (bytes.length === 0 || bytes[0] !== tokenVersion || bytes.toString('base64url') !== token) throw invalid();
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(1));
  } catch {
    throw invalid();
  }
}
