/**
 * The S3 gateway's storage model over the object client (like radosgw over librados):
 *
 * - meta pool: object `users` (omap user → S3User), `keys` (access key → S3AccessKey), `buckets` (name → S3Bucket),
 *   `gc.<n>` (garbage records), and per bucket `<id>.uploads` (upload id → S3Upload, and `<upload id>.<part>` →
 *   S3Part).
 * - index pool: each bucket's index, sharded over `<id>.index.<n>` objects (omap: object key → S3Object), so a bucket
 *   holds millions of keys and listing merges the sorted shards.
 * - data pool (replicated or erasure-coded): object data in stripes `<id>.<instance>.<n>` of `stripeBytes`; objects
 *   up to `inlineBytesMax` live inside their index entry (one cluster write per PUT).
 *
 * A PUT writes a new instance (never in place), then swaps the index entry: a reader sees the old object or the new
 * one, never a mix. Before writing data the gateway records it as possible garbage (`gc.<n>`); the collector later
 * deletes any recorded instance that no index entry or part record references, so an interrupted upload or a
 * replaced object leaves nothing behind for long.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  StorageError,
  bufferPool,
  eachLimited,
  hashName,
  s3Codecs,
  wire,
  type Clock,
  type Logger,
  type ObjectClient,
} from '../../src/index.js';
import { IdSource } from './ids.js';
import { S3Error } from './s3-error.js';

const Kind = wire.ObjectOp.Kind;

export interface S3StoreOptions {
  metaPool: string;
  indexPool: string;
  dataPool: string;
  indexShards: number;
  stripeBytes: number;
  inlineBytesMax: number;
  /** How long replaced or unreferenced data is kept before the collector may delete it. */
  garbageGraceMs: number;
  clock: Clock;
  logger: Logger;
}

export const defaultS3StoreOptions = {
  metaPool: 's3.meta',
  indexPool: 's3.index',
  dataPool: 's3.data',
  indexShards: 8,
  stripeBytes: 4 * 1024 * 1024,
  inlineBytesMax: 4096,
  garbageGraceMs: 60_000,
} as const;

/** Garbage records are spread over this many objects of the meta pool, `gc.0` to `gc.7`. */
export const garbageShards = 8;
/** How long a gateway trusts its copy of a bucket record (another gateway's delete shows within this). */
const bucketCacheMs = 2000;
const stripesInFlight = 4;

export type Bucket = wire.S3Bucket;
export type ObjectEntry = wire.S3Object;
export type Header = { name: string; value: string };

export interface WrittenData {
  size: number;
  md5: Buffer;
  segment?: wire.S3Segment.$Properties;
  inline?: Buffer;
  /** The garbage record written before the data (see `writeData`): `retire` drops it once the data is in use. */
  record?: GarbageRecordName;
}

/** Where a garbage record is: its shard object and its key there. */
interface GarbageRecordName {
  object: string;
  name: string;
}

const notFound = (error: unknown) => error instanceof StorageError && error.code === 'NOT_FOUND';

function shardOf(key: string, shards: number): number {
  return hashName(key) % shards;
}

function newId(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** The name of stripe `n` of an instance's data. */
export function stripeName(bucketId: string, instance: string, n: number): string {
  return `${bucketId}.${instance}.${n}`;
}

export class S3Store {
  readonly options: S3StoreOptions;
  readonly #client: ObjectClient;
  /** Names of data instances (one per PUT). */
  readonly #ids = new IdSource();
  readonly #keyCache = new Map<string, { key: wire.S3AccessKey; atMs: number }>();
  readonly #bucketCache = new Map<string, { bucket: Bucket; atMs: number }>();

  constructor(client: ObjectClient, options: Partial<S3StoreOptions> & { clock: Clock; logger: Logger }) {
    this.#client = client;
    this.options = { ...defaultS3StoreOptions, ...options };
  }

  get client(): ObjectClient {
    return this.#client;
  }

  /** Creates the gateway's pools when missing. */
  async ensurePools(): Promise<void> {
    const { metaPool, indexPool, dataPool } = this.options;
    for (const [name, pgNum] of [[metaPool, 16], [indexPool, 32], [dataPool, 64]] as const) {
      if (this.#client.map().pools.some((p) => p.name === name)) continue;
      await this.#client.monitors.command({ poolCreate: { name, pgNum, application: 's3' } }).catch((error: unknown) => {
        if (!(error instanceof StorageError && error.code === 'ALREADY_EXISTS')) throw error;
      });
    }
    const deadline = this.options.clock.monotonicMs() + 30_000;
    while (![metaPool, indexPool, dataPool].every((n) => this.#client.map().pools.some((p) => p.name === n))) {
      if (this.options.clock.monotonicMs() > deadline) throw new StorageError('TIMEOUT', 'the S3 pools did not appear in the map');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async #omapValue(pool: string, object: string, key: string): Promise<Buffer | undefined> {
    try {
      return (await this.#client.omapGet(pool, object, [key])).get(key);
    } catch (error) {
      if (notFound(error)) return undefined;
      throw error;
    }
  }

  async #omapAll(pool: string, object: string, prefix = ''): Promise<[string, Buffer][]> {
    const out: [string, Buffer][] = [];
    let after = '';
    for (;;) {
      let page: { entries: [string, Buffer][]; more: boolean };
      try {
        page = await this.#client.omapList(pool, object, { after, prefix, limit: 1000 });
      } catch (error) {
        if (notFound(error)) return out;
        throw error;
      }
      out.push(...page.entries);
      if (!page.more || page.entries.length === 0) return out;
      after = (page.entries.at(-1) as [string, Buffer])[0];
    }
  }

  // ---- users and keys ----

  async createUser(name: string): Promise<{ accessKey: string; secretKey: string }> {
    if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(name)) throw new StorageError('INVALID_ARGUMENT', `user names are 1-64 of A-Z a-z 0-9 _ . @ -: ${JSON.stringify(name)}`);
    const { metaPool } = this.options;
    const user = s3Codecs.user.encode({ name, createdMs: this.options.clock.nowMs() });
    // Exclusive: the omap key must not exist yet (checked and set in one op on the `users` object).
    const existing = await this.#omapValue(metaPool, 'users', name);
    if (existing) throw new StorageError('ALREADY_EXISTS', `user ${name} exists`);
    await this.#client.omapSet(metaPool, 'users', [[name, user]]);
    return this.createKey(name);
  }

  async listUsers(): Promise<{ name: string; createdMs: number; accessKeys: string[] }[]> {
    const { metaPool } = this.options;
    const users = await this.#omapAll(metaPool, 'users');
    const keys = (await this.#omapAll(metaPool, 'keys')).map(([, v]) => s3Codecs.accessKey.decode(v));
    return users.map(([name, v]) => ({
      name,
      createdMs: Number(s3Codecs.user.decode(v).createdMs),
      accessKeys: keys.filter((k) => k.user === name).map((k) => k.accessKey),
    }));
  }

  async removeUser(name: string): Promise<void> {
    const { metaPool } = this.options;
    if (!(await this.#omapValue(metaPool, 'users', name))) throw new StorageError('NOT_FOUND', `user ${name} does not exist`);
    const owned = (await this.listBuckets(name)).map((b) => b.name);
    if (owned.length > 0) throw new StorageError('NOT_EMPTY', `user ${name} owns buckets: ${owned.join(', ')}`);
    const keys = (await this.#omapAll(metaPool, 'keys')).filter(([, v]) => s3Codecs.accessKey.decode(v).user === name).map(([k]) => k);
    if (keys.length > 0) await this.#client.omapRemove(metaPool, 'keys', keys);
    await this.#client.omapRemove(metaPool, 'users', [name]);
    for (const k of keys) this.#keyCache.delete(k);
  }

  async createKey(user: string): Promise<{ accessKey: string; secretKey: string }> {
    const { metaPool } = this.options;
    if (!(await this.#omapValue(metaPool, 'users', user))) throw new StorageError('NOT_FOUND', `user ${user} does not exist`);
    const accessKey = 'SH' + randomBytes(9).toString('hex').toUpperCase();
    const secretKey = randomBytes(30).toString('base64').replace(/[+/=]/g, '').slice(0, 40);
    await this.#client.omapSet(metaPool, 'keys', [[accessKey, s3Codecs.accessKey.encode({ accessKey, secretKey, user, createdMs: this.options.clock.nowMs() })]]);
    return { accessKey, secretKey };
  }

  async removeKey(accessKey: string): Promise<void> {
    const { metaPool } = this.options;
    if (!(await this.#omapValue(metaPool, 'keys', accessKey))) throw new StorageError('NOT_FOUND', `access key ${accessKey} does not exist`);
    await this.#client.omapRemove(metaPool, 'keys', [accessKey]);
    this.#keyCache.delete(accessKey);
  }

  /** The secret and user of an access key (cached for a few seconds, so a removed key stops working soon). */
  async lookupKey(accessKey: string): Promise<wire.S3AccessKey | undefined> {
    const now = this.options.clock.monotonicMs();
    const cached = this.#keyCache.get(accessKey);
    if (cached && now - cached.atMs < 5000) return cached.key;
    const value = await this.#omapValue(this.options.metaPool, 'keys', accessKey);
    if (!value) {
      this.#keyCache.delete(accessKey);
      return undefined;
    }
    const key = s3Codecs.accessKey.decode(value);
    if (this.#keyCache.size > 10_000) this.#keyCache.clear();
    this.#keyCache.set(accessKey, { key, atMs: now });
    return key;
  }

  // ---- buckets ----

  async getBucket(name: string): Promise<Bucket> {
    // Cached briefly: every request names its bucket, and a bucket changes only when created or deleted.
    const now = this.options.clock.monotonicMs();
    const cached = this.#bucketCache.get(name);
    if (cached && now - cached.atMs < bucketCacheMs) return cached.bucket;
    const value = await this.#omapValue(this.options.metaPool, 'buckets', name);
    if (!value) {
      this.#bucketCache.delete(name);
      throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: name });
    }
    const bucket = s3Codecs.bucket.decode(value);
    if (this.#bucketCache.size > 10_000) this.#bucketCache.clear();
    this.#bucketCache.set(name, { bucket, atMs: now });
    return bucket;
  }

  async createBucket(name: string, owner: string, region: string): Promise<{ created: boolean; bucket: Bucket }> {
    const { metaPool } = this.options;
    const existing = await this.#omapValue(metaPool, 'buckets', name);
    if (existing) {
      const bucket = s3Codecs.bucket.decode(existing);
      if (bucket.owner === owner) return { created: false, bucket };
      throw new S3Error('BucketAlreadyExists', 'The requested bucket name is not available', { BucketName: name });
    }
    const record = {
      name,
      owner,
      createdMs: this.options.clock.nowMs(),
      id: newId(8),
      indexShards: this.options.indexShards,
      region,
      dataPool: this.options.dataPool,
    };
    await this.#client.omapSet(metaPool, 'buckets', [[name, s3Codecs.bucket.encode(record)]]);
    this.#bucketCache.delete(name);
    return { created: true, bucket: await this.getBucket(name) };
  }

  async listBuckets(owner: string): Promise<Bucket[]> {
    return (await this.#omapAll(this.options.metaPool, 'buckets')).map(([, v]) => s3Codecs.bucket.decode(v)).filter((b) => b.owner === owner);
  }

  async deleteBucket(bucket: Bucket): Promise<void> {
    const shards = await Promise.all(Array.from({ length: bucket.indexShards }, (_, n) => this.listShard(bucket, n, '', 1)));
    if (shards.some((page) => page.entries.length > 0)) throw new S3Error('BucketNotEmpty', 'The bucket you tried to delete is not empty', { BucketName: bucket.name });
    const uploads = await this.#omapAll(this.options.metaPool, `${bucket.id}.uploads`);
    await this.#client.omapRemove(this.options.metaPool, 'buckets', [bucket.name]);
    this.#bucketCache.delete(bucket.name);
    for (let n = 0; n < bucket.indexShards; n++) await this.#client.remove(this.options.indexPool, `${bucket.id}.index.${n}`).catch(() => {});
    // Parts of unfinished uploads become garbage (the bucket no longer references them).
    for (const [, v] of uploads.filter(([k]) => k.includes('.'))) {
      const part = s3Codecs.part.decode(v);
      if (part.segment) await this.#recordGarbage(bucket, part.segment, '', '', 0);
    }
    await this.#client.remove(this.options.metaPool, `${bucket.id}.uploads`).catch(() => {});
  }

  // ---- the index ----

  #shardObject(bucket: Bucket, key: string): string {
    return `${bucket.id}.index.${shardOf(key, bucket.indexShards)}`;
  }

  async getObject(bucket: Bucket, key: string): Promise<ObjectEntry> {
    const value = await this.#omapValue(this.options.indexPool, this.#shardObject(bucket, key), key);
    if (!value) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });
    return s3Codecs.object.decode(value);
  }

  async #findObject(bucket: Bucket, key: string): Promise<ObjectEntry | undefined> {
    const value = await this.#omapValue(this.options.indexPool, this.#shardObject(bucket, key), key);
    return value ? s3Codecs.object.decode(value) : undefined;
  }

  /** One page of one shard of the index, in key order (byte order of the UTF-8 keys). */
  async listShard(bucket: Bucket, shard: number, after: string, limit: number): Promise<{ entries: [string, Buffer][]; more: boolean }> {
    try {
      return await this.#client.omapList(this.options.indexPool, `${bucket.id}.index.${shard}`, { after, limit });
    } catch (error) {
      if (notFound(error)) return { entries: [], more: false };
      throw error;
    }
  }

  /**
   * Makes `entry` the object under `key` (one atomic omap write on the key's shard). Returns the entry it replaced,
   * whose data is still stored: hand it to `retire`, which may run after the client has its answer.
   */
  async commitObject(bucket: Bucket, key: string, entry: wire.S3Object.$Properties): Promise<ObjectEntry | undefined> {
    const set = { kind: Kind.KIND_OMAP_SET, entries: [{ key, value: s3Codecs.object.encode(entry) }] };
    return this.#swapIndexEntry(bucket, key, set, true);
  }

  /** Removes `key` from the index; returns the entry it removed, for `retire`. */
  async deleteObject(bucket: Bucket, key: string): Promise<ObjectEntry | undefined> {
    return this.#swapIndexEntry(bucket, key, { kind: Kind.KIND_OMAP_RM, keys: [key] }, false);
  }

  /**
   * What a commit or delete leaves to do, none of which the client's answer waits for (each is a replicated write,
   * and under 4 MiB PUTs a write queues behind the data writes' syncs): the data of the `replaced` entry goes to the
   * collector (kept for the grace period: readers that started before the swap may still stream it), and the record
   * written before `written`'s data is dropped (the collector would find that data in use anyway, with two lookups).
   * Never throws. A crash before the first part leaks the replaced data, as a crash just before this call did when
   * it ran before the answer; a failure is logged with what it leaves behind.
   */
  async retire(bucket: Bucket, key: string, replaced: ObjectEntry | undefined, written?: WrittenData): Promise<void> {
    try {
      for (const segment of replaced?.segments ?? []) await this.#recordGarbage(bucket, segment, key, '', this.options.garbageGraceMs);
    } catch (error) {
      this.options.logger.warn('replaced data not handed to the collector: it stays stored', { bucket: bucket.name, key, segments: replaced?.segments.map((s) => s.instance), error: String(error) });
    }
    if (written?.record) await this.#client.omapRemove(this.options.metaPool, written.record.object, [written.record.name]).catch(() => {});
  }

  /**
   * Reads and changes one index entry in a single atomic op on its shard (reads see the entry as it was before the
   * change), so the entry it returns is exactly the one replaced: one cluster round trip per PUT or DELETE, and two
   * racing writers each release only what they replaced.
   */
  async #swapIndexEntry(bucket: Bucket, key: string, change: wire.ObjectOp.$Properties, createShard: boolean): Promise<ObjectEntry | undefined> {
    const shard = this.#shardObject(bucket, key);
    try {
      const r = await this.#client.execute(this.options.indexPool, shard, [{ kind: Kind.KIND_OMAP_GET, keys: [key] }, change]);
      const value = r.reply.results[0]?.entries?.[0]?.value;
      return value && value.length > 0 ? s3Codecs.object.decode(value) : undefined;
    } catch (error) {
      if (!notFound(error)) throw error;
      // The shard object does not exist yet (its bucket's first key): nothing to replace.
      if (createShard) await this.#client.execute(this.options.indexPool, shard, [change]);
      return undefined;
    }
  }

  // ---- data ----

  /**
   * Writes a body as a new instance: inline when it fits `inlineBytesMax` and `allowInline`, else in stripes (a few
   * in flight). `onData` sees every byte (checksums). The instance is recorded as garbage first, so a crash or a
   * failed upload leaves nothing behind once the collector runs.
   */
  async writeData(
    bucket: Bucket,
    key: string,
    body: AsyncIterable<Uint8Array>,
    options: { allowInline: boolean; uploadId?: string; onData?: (chunk: Uint8Array) => void; sizeMax?: number },
  ): Promise<WrittenData> {
    const stripeBytes = this.options.stripeBytes;
    const md5 = createHash('md5');
    const instance = this.#ids.next();
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let size = 0;
    let stripes = 0;
    // Started as soon as the body is known not to go inline, so that it is written while the first stripe arrives
    // rather than after (the first stripe's write waits for it).
    let recording: Promise<GarbageRecordName> | undefined;
    const startRecord = () => {
      if (!recording) {
        recording = this.#recordGarbage(bucket, { instance, size: 0, stripeBytes }, key, options.uploadId ?? '', this.options.garbageGraceMs);
        // Awaited by the first flush; a body that fails before leaves a record of no data, which the collector drops.
        recording.catch(() => {});
      }
      return recording;
    };
    const inFlight = new Set<Promise<void>>();
    const sizeMax = options.sizeMax ?? 5 * 1024 ** 4;
    const flush = async (data: Buffer) => {
      await startRecord();
      const n = stripes++;
      const write = this.#client.put(bucket.dataPool, stripeName(bucket.id, instance, n), data).then(() => undefined);
      const tracked = write.finally(() => {
        inFlight.delete(tracked);
        // Once the put has settled only the messenger may still be sending it, and it holds the buffer itself.
        bufferPool.release(data);
      });
      // Observed later (race/all below); until then a failure must not count as unhandled, which would end the process.
      tracked.catch(() => {});
      inFlight.add(tracked);
      if (inFlight.size >= stripesInFlight) await Promise.race(inFlight);
    };
    try {
      for await (const raw of body) {
        const chunk = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
        size += chunk.length;
        if (size > sizeMax) throw new S3Error('EntityTooLarge', `Your proposed upload exceeds the maximum allowed size (${sizeMax} bytes)`);
        if (!options.allowInline || size > this.options.inlineBytesMax) void startRecord();
        md5.update(chunk);
        options.onData?.(chunk);
        pending.push(chunk);
        pendingBytes += chunk.length;
        while (pendingBytes >= stripeBytes) {
          // One copy, out of the socket's buffers the chunks are views of, into a pooled stripe the write owns.
          const stripe = bufferPool.acquire(stripeBytes);
          let used = 0;
          const rest: Buffer[] = [];
          for (const c of pending) {
            const take = Math.min(c.length, stripeBytes - used);
            if (take > 0) c.copy(stripe, used, 0, take);
            used += take;
            if (take < c.length) rest.push(c.subarray(take));
          }
          pending = rest;
          pendingBytes -= stripeBytes;
          await flush(stripe);
        }
      }
      const tail = Buffer.concat(pending); // a copy of its own, as above
      if (stripes === 0 && options.allowInline && tail.length <= this.options.inlineBytesMax) {
        return { size, md5: md5.digest(), inline: tail };
      }
      if (tail.length > 0 || stripes === 0) await flush(tail);
      await Promise.all(inFlight);
    } catch (error) {
      await Promise.allSettled(inFlight);
      throw error;
    }
    return { size, md5: md5.digest(), segment: { instance, size, stripeBytes }, ...(recording ? { record: await recording } : {}) };
  }

  /** Streams `length` bytes of an object from `offset`. */
  async *readData(bucket: Bucket, entry: ObjectEntry, offset: number, length: number): AsyncGenerator<Buffer> {
    if (entry.segments.length === 0) {
      yield Buffer.from(entry.inlineData).subarray(offset, offset + length);
      return;
    }
    let segmentStart = 0;
    let remaining = length;
    let position = offset;
    for (const segment of entry.segments) {
      const segmentSize = Number(segment.size);
      const segmentEnd = segmentStart + segmentSize;
      if (remaining > 0 && position < segmentEnd) {
        const stripeBytes = segment.stripeBytes || this.options.stripeBytes;
        // Read a couple of stripes ahead, in order.
        const reads: Promise<Buffer>[] = [];
        let within = position - segmentStart;
        const end = Math.min(segmentSize, within + remaining);
        const queue: { n: number; from: number; count: number }[] = [];
        while (within < end) {
          const n = Math.floor(within / stripeBytes);
          const from = within - n * stripeBytes;
          const count = Math.min(stripeBytes - from, end - within);
          queue.push({ n, from, count });
          within += count;
        }
        let next = 0;
        const issue = () => {
          const q = queue[next++];
          if (!q) return;
          const read = this.#client.get(bucket.dataPool, stripeName(bucket.id, segment.instance ?? '', q.n), { offset: q.from, length: q.count });
          // A reader that stops early (the client went away) leaves reads ahead unawaited: their failures are not
          // unhandled rejections (which would end the process).
          read.catch(() => {});
          reads.push(read);
        };
        for (let i = 0; i < 2; i++) issue();
        for (let i = 0; i < queue.length; i++) {
          // Each stripe read is its own buffer, yielded whole: a consumer may give it back to `bufferPool` once done.
          const data = await (reads[i] as Promise<Buffer>);
          issue();
          const want = (queue[i] as { count: number }).count;
          if (data.length !== want) throw new StorageError('CORRUPT_DATA', `stripe ${i} of ${entry.etag} has ${data.length} bytes, expected ${want}`);
          yield data;
          remaining -= data.length;
          position += data.length;
        }
      }
      segmentStart = segmentEnd;
    }
  }

  // ---- multipart ----

  async createUpload(bucket: Bucket, key: string, headers: Header[], checksumAlgorithm: string): Promise<string> {
    const uploadId = newId(16);
    await this.#client.omapSet(this.options.metaPool, `${bucket.id}.uploads`, [
      [uploadId, s3Codecs.upload.encode({ key, createdMs: this.options.clock.nowMs(), headers, checksumAlgorithm })],
    ]);
    return uploadId;
  }

  async getUpload(bucket: Bucket, uploadId: string, key?: string): Promise<wire.S3Upload> {
    const value = /^[0-9a-f]{32}$/.test(uploadId) ? await this.#omapValue(this.options.metaPool, `${bucket.id}.uploads`, uploadId) : undefined;
    const upload = value ? s3Codecs.upload.decode(value) : undefined;
    if (!upload || (key !== undefined && upload.key !== key)) {
      throw new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', { UploadId: uploadId });
    }
    return upload;
  }

  async listUploads(bucket: Bucket): Promise<{ uploadId: string; upload: wire.S3Upload }[]> {
    return (await this.#omapAll(this.options.metaPool, `${bucket.id}.uploads`))
      .filter(([k]) => !k.includes('.'))
      .map(([uploadId, v]) => ({ uploadId, upload: s3Codecs.upload.decode(v) }));
  }

  async putPart(bucket: Bucket, uploadId: string, key: string, part: wire.S3Part.$Properties): Promise<void> {
    const partKey = `${uploadId}.${String(part.number).padStart(5, '0')}`;
    const previous = await this.#omapValue(this.options.metaPool, `${bucket.id}.uploads`, partKey);
    await this.#client.omapSet(this.options.metaPool, `${bucket.id}.uploads`, [[partKey, s3Codecs.part.encode(part)]]);
    const old = previous ? s3Codecs.part.decode(previous) : undefined;
    if (old?.segment) await this.#recordGarbage(bucket, old.segment, key, '', this.options.garbageGraceMs);
  }

  async listParts(bucket: Bucket, uploadId: string): Promise<wire.S3Part[]> {
    return (await this.#omapAll(this.options.metaPool, `${bucket.id}.uploads`, `${uploadId}.`)).map(([, v]) => s3Codecs.part.decode(v));
  }

  /** Ends an upload: its record and part records go; parts not used by the final object become garbage. */
  async finishUpload(bucket: Bucket, uploadId: string, key: string, used: Set<string>): Promise<void> {
    const parts = await this.listParts(bucket, uploadId);
    const partKeys = parts.map((p) => `${uploadId}.${String(p.number).padStart(5, '0')}`);
    await this.#client.omapRemove(this.options.metaPool, `${bucket.id}.uploads`, [uploadId, ...partKeys]);
    for (const p of parts) if (p.segment && !used.has(p.segment.instance ?? '')) await this.#recordGarbage(bucket, p.segment, key, '', 0);
  }

  // ---- garbage ----

  async #recordGarbage(bucket: Bucket, segment: wire.S3Segment.$Properties, key: string, uploadId: string, delayMs: number): Promise<GarbageRecordName> {
    const afterMs = this.options.clock.nowMs() + delayMs;
    const record = s3Codecs.garbage.encode({ bucketId: bucket.id, bucketName: bucket.name, segment, afterMs, key, uploadId });
    const name = `${String(afterMs).padStart(15, '0')}.${bucket.id}.${segment.instance}`;
    const object = `gc.${shardOf(segment.instance ?? '', garbageShards)}`;
    await this.#client.omapSet(this.options.metaPool, object, [[name, record]]);
    return { object, name };
  }

  /** Whether an instance is still referenced: by the object under its key, or by its upload's part records. */
  async #referenced(record: wire.S3Garbage): Promise<boolean> {
    const value = await this.#omapValue(this.options.metaPool, 'buckets', record.bucketName);
    const bucket = value ? s3Codecs.bucket.decode(value) : undefined;
    if (!bucket || bucket.id !== record.bucketId) return false;
    const instance = record.segment?.instance ?? '';
    if (record.key) {
      const entry = await this.#findObject(bucket, record.key);
      if (entry?.segments.some((s) => s.instance === instance)) return true;
    }
    if (record.uploadId) {
      const parts = await this.#omapAll(this.options.metaPool, `${bucket.id}.uploads`, `${record.uploadId}.`);
      if (parts.some(([, v]) => s3Codecs.part.decode(v).segment?.instance === instance)) return true;
    }
    return false;
  }

  /**
   * One pass of the collector: every garbage record whose time has come is either dropped (its data is referenced)
   * or its data objects are deleted, then the record. Returns how many instances were deleted.
   */
  async collectGarbage(): Promise<number> {
    const now = this.options.clock.nowMs();
    let deleted = 0;
    for (let shard = 0; shard < garbageShards; shard++) {
      const object = `gc.${shard}`;
      const records = await this.#omapAll(this.options.metaPool, object);
      for (const [name, value] of records) {
        const record = s3Codecs.garbage.decode(value);
        if (Number(record.afterMs) > now) break; // names sort by time
        if (!(await this.#referenced(record))) {
          await this.#deleteInstance(record.bucketId, record.segment ?? { instance: '', size: 0, stripeBytes: 0 });
          deleted++;
        }
        await this.#client.omapRemove(this.options.metaPool, object, [name]);
      }
    }
    return deleted;
  }

  async #deleteInstance(bucketId: string, segment: wire.S3Segment.$Properties): Promise<void> {
    const size = Number(segment.size ?? 0);
    const stripeBytes = Number(segment.stripeBytes ?? 0);
    if (size > 0 && stripeBytes > 0) {
      // A completed write: its size says which stripes it has, and they go a few at a time. (Probing past the end
      // cost five removes of missing objects per replaced object, each a replicated op: a quarter of the OSDs' CPU
      // under 4 MiB overwrites.) A stripe already gone, from a pass that stopped half way, is fine.
      await eachLimited(Math.ceil(size / stripeBytes), stripesInFlight, (n) =>
        this.#client.remove(this.options.dataPool, stripeName(bucketId, segment.instance ?? '', n)).catch((error: unknown) => {
          if (!notFound(error)) throw error;
        }),
      );
      return;
    }
    // The size is unknown (an interrupted upload): delete stripes until a run of missing ones longer than the
    // number ever written in parallel.
    let missingRun = 0;
    for (let n = 0; missingRun <= stripesInFlight; n++) {
      try {
        await this.#client.remove(this.options.dataPool, stripeName(bucketId, segment.instance ?? '', n));
        missingRun = 0;
      } catch (error) {
        if (!notFound(error)) throw error;
        missingRun++;
      }
    }
  }
}
