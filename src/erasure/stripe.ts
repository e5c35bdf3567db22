/**
 * Stripe math for erasure-coded objects, as pure functions. An object is cut into stripes of k chunks of
 * `stripeUnit` bytes (stripe width = k × stripeUnit); chunk i of every stripe goes to shard i, so shard i is the
 * concatenation of its chunks and shard offset = stripe × stripeUnit + offset in chunk. The last stripe is padded
 * with zeros; the logical object size is kept beside the shards, never inferred from them.
 */
import { StorageError } from '../common/errors.js';

export interface StripeLayout {
  /** Data shards per stripe. */
  readonly k: number;
  /** Bytes of one chunk (one shard's part of one stripe). */
  readonly stripeUnit: number;
}

/** A run of whole stripes: [first, first + count). */
export interface StripeRange {
  readonly first: number;
  readonly count: number;
}

export function checkLayout(layout: StripeLayout): void {
  if (!Number.isInteger(layout.k) || layout.k < 1) throw new StorageError('INVALID_ARGUMENT', `k must be >= 1, got ${layout.k}`);
  if (!Number.isInteger(layout.stripeUnit) || layout.stripeUnit < 1) {
    throw new StorageError('INVALID_ARGUMENT', `stripe unit must be a positive integer, got ${layout.stripeUnit}`);
  }
}

export function stripeWidth(layout: StripeLayout): number {
  return layout.k * layout.stripeUnit;
}

/** Number of stripes an object of `objectSize` bytes occupies (the last one padded). */
export function stripeCount(layout: StripeLayout, objectSize: number): number {
  return Math.ceil(objectSize / stripeWidth(layout));
}

/** Bytes each shard (data or parity) holds for an object of `objectSize` bytes. */
export function shardSize(layout: StripeLayout, objectSize: number): number {
  return stripeCount(layout, objectSize) * layout.stripeUnit;
}

/** Where object byte `offset` lives: its stripe, the data shard holding it, and the byte offset in that shard. */
export function locate(layout: StripeLayout, offset: number): { stripe: number; shard: number; shardOffset: number } {
  const width = stripeWidth(layout);
  const stripe = Math.floor(offset / width);
  const inStripe = offset - stripe * width;
  const shard = Math.floor(inStripe / layout.stripeUnit);
  return { stripe, shard, shardOffset: stripe * layout.stripeUnit + (inStripe - shard * layout.stripeUnit) };
}

/** The whole stripes that object bytes [offset, offset + length) touch; empty (count 0) when length is 0. */
export function stripesTouched(layout: StripeLayout, offset: number, length: number): StripeRange {
  if (length <= 0) return { first: Math.floor(offset / stripeWidth(layout)), count: 0 };
  const width = stripeWidth(layout);
  const first = Math.floor(offset / width);
  const last = Math.floor((offset + length - 1) / width);
  return { first, count: last - first + 1 };
}

/** Object byte range a stripe range covers. */
export function stripeBytes(layout: StripeLayout, range: StripeRange): { offset: number; length: number } {
  const width = stripeWidth(layout);
  return { offset: range.first * width, length: range.count * width };
}

/** Shard byte range a stripe range covers (the same in every shard). */
export function shardBytes(layout: StripeLayout, range: StripeRange): { offset: number; length: number } {
  return { offset: range.first * layout.stripeUnit, length: range.count * layout.stripeUnit };
}

/** Throws TypeError unless `length` object bytes fit in `count` stripes. */
export function checkFits(layout: StripeLayout, length: number, count: number): void {
  const width = stripeWidth(layout);
  if (length > count * width) throw new TypeError(`${length} bytes do not fit in ${count} stripes of ${width}`);
}

/**
 * Visits the chunks of `count` whole stripes over an object of `length` bytes, stripe by stripe: object bytes
 * [from, from + bytes) go to data shard `shard` at shard offset `at`. `bytes` is short where the object ends (0 past
 * it); the rest of that chunk is zero padding. `splitStripes` and `Codec.encodeStripes` both cut objects this way;
 * `stripes` limits the walk to some of them (`Codec.encodeStripes` codes a segment of stripes at a time).
 */
export function forEachChunk(
  layout: StripeLayout,
  length: number,
  count: number,
  visit: (shard: number, at: number, from: number, bytes: number) => void,
  stripes: { first: number; end: number } = { first: 0, end: count },
): void {
  checkFits(layout, length, count);
  const { k, stripeUnit: su } = layout;
  for (let s = stripes.first; s < Math.min(stripes.end, count); s++) {
    for (let i = 0; i < k; i++) {
      const from = (s * k + i) * su;
      visit(i, s * su, from, Math.max(0, Math.min(su, length - from)));
    }
  }
}

/**
 * Cuts `data` (the object bytes of whole stripes; a short tail is padded with zeros) into k data shards of
 * `count × stripeUnit` bytes each.
 */
export function splitStripes(layout: StripeLayout, data: Uint8Array, count: number): Uint8Array[] {
  const shards = Array.from({ length: layout.k }, () => new Uint8Array(count * layout.stripeUnit));
  forEachChunk(layout, data.length, count, (shard, at, from, bytes) => {
    if (bytes > 0) shards[shard]!.set(data.subarray(from, from + bytes), at);
  });
  return shards;
}

/** Inverse of splitStripes: the object bytes of `count` whole stripes from the k data shards. */
export function joinStripes(layout: StripeLayout, shards: readonly Uint8Array[], count: number): Uint8Array {
  const { k, stripeUnit: su } = layout;
  if (shards.length < k) throw new TypeError(`need ${k} data shards, got ${shards.length}`);
  const out = new Uint8Array(count * k * su);
  for (let s = 0; s < count; s++) {
    for (let i = 0; i < k; i++) {
      const shard = shards[i]!;
      if (shard.length < (s + 1) * su) throw new TypeError(`data shard ${i} is shorter than ${count} stripes`);
      out.set(shard.subarray(s * su, (s + 1) * su), (s * k + i) * su);
    }
  }
  return out;
}
