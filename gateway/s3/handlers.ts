/**
 * S3 operations: one handler per (method, bucket?, key?, sub-resource), over the S3Store. Request bodies are read
 * as streams and verified (x-amz-content-sha256, Content-MD5, x-amz-checksum-*, aws-chunked signatures and
 * trailers) before anything becomes visible: a failed check leaves the index untouched.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bufferPool, s3Codecs, wire, type Clock } from '../../src/index.js';
import { S3Error } from './s3-error.js';
import type { SignedAuth } from './sigv4.js';
import { decodeAwsChunked } from './aws-chunked.js';
import { checksumAlgorithms, createChecksum, verifyChecksum, verifyContentMd5, type ChecksumAlgorithm } from './checksums.js';
import type { Bucket, Header, ObjectEntry, S3Store } from './store.js';
import * as xml from './xml.js';
import { decodeContinuationToken, encodeContinuationToken, listPage, mergeSources, type KeySource } from './listing.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  bucketName: string;
  key: string;
  query: URLSearchParams;
  user: string;
  auth: SignedAuth;
  store: S3Store;
  clock: Clock;
  region: string;
}

const xmlBodyMax = 1024 * 1024;
const partSizeMin = 5 * 1024 * 1024;
const partsMax = 10_000;
const objectSizeMax = 5 * 1024 ** 4;
const singlePutMax = 5 * 1024 ** 3;
/** Request headers stored with an object and returned on GET/HEAD. */
const storedHeaders = ['content-type', 'content-encoding', 'content-disposition', 'content-language', 'cache-control', 'expires'];

// ---- small helpers ----

function send(ctx: RequestContext, status: number, headers: Record<string, string | number> = {}, body?: string | Buffer): void {
  const bytes = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
  ctx.res.writeHead(status, { ...(bytes ? { 'content-type': 'application/xml' } : {}), 'content-length': bytes?.length ?? 0, ...headers });
  ctx.res.end(bytes);
}

function sendXml(ctx: RequestContext, body: string, headers: Record<string, string | number> = {}): void {
  send(ctx, 200, { 'content-type': 'application/xml', ...headers }, body);
}

async function readSmallBody(ctx: RequestContext): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of requestBody(ctx)) {
    size += chunk.length;
    if (size > xmlBodyMax) throw new S3Error('MalformedXML', `The XML you provided was larger than ${xmlBodyMax} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function checkBucketName(name: string): void {
  const ok = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !/\.\.|\.-|-\./.test(name) && !/^\d+\.\d+\.\d+\.\d+$/.test(name);
  if (!ok) throw new S3Error('InvalidBucketName', 'The specified bucket is not valid.', { BucketName: name });
}

function checkKey(key: string): void {
  if (key.length === 0) throw new S3Error('InvalidRequest', 'An object key is required');
  if (Buffer.byteLength(key) > 1024) throw new S3Error('KeyTooLongError', 'Your key is too long');
}

function header(ctx: RequestContext, name: string): string | undefined {
  const v = ctx.req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** Whether an If-Match / If-None-Match style list (`"etag", etag, *`) names this object. */
function etagListMatches(list: string, entry: ObjectEntry): boolean {
  const quoted = xml.quoteEtag(entry.etag);
  return list.split(',').map((s) => s.trim()).some((t) => t === '*' || t === quoted || t === entry.etag);
}

/** The user headers of a request worth storing: content-*, cache-control, expires and x-amz-meta-*. */
function headersToStore(ctx: RequestContext): Header[] {
  const out: Header[] = [];
  let metaBytes = 0;
  for (const [name, value] of Object.entries(ctx.req.headers)) {
    if (value === undefined) continue;
    const v = Array.isArray(value) ? value.join(',') : value;
    if (name.startsWith('x-amz-meta-')) {
      metaBytes += name.length + v.length;
      out.push({ name, value: v });
    } else if (storedHeaders.includes(name)) {
      // aws-chunked is how the body travelled, not what it is.
      const stored = name === 'content-encoding' ? v.split(',').map((s) => s.trim()).filter((s) => s !== 'aws-chunked').join(',') : v;
      if (stored) out.push({ name, value: stored });
    }
  }
  if (metaBytes > 2048) throw new S3Error('MetadataTooLarge', 'Your metadata headers exceed the maximum allowed metadata size (2 KiB)');
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

// ---- request bodies ----

/** The decoded request body, verified against x-amz-content-sha256 (or the chunk signatures) as it is read. */
function requestBody(ctx: RequestContext, onTrailers?: (trailers: Map<string, string>) => void): AsyncIterable<Buffer> {
  const payload = ctx.auth.payload;
  // Not `for await (… of ctx.req)`: leaving that loop early (a bad chunk signature) destroys the request and with it
  // the connection, so the client never got the error answer. The server drains or closes the connection itself.
  const source = ctx.req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>;
  if (payload.kind === 'streaming-signed' || payload.kind === 'streaming-unsigned-trailer') {
    const decoded = header(ctx, 'x-amz-decoded-content-length');
    return decodeAwsChunked(source, {
      ...(payload.kind === 'streaming-signed'
        ? { signed: { signingKey: ctx.auth.signingKey, seedSignature: ctx.auth.seedSignature, amzDate: ctx.auth.amzDate, scope: ctx.auth.scope } }
        : {}),
      trailer: payload.kind === 'streaming-unsigned-trailer' || payload.trailer,
      ...(decoded !== undefined ? { decodedLength: Number(decoded) } : {}),
      ...(onTrailers ? { onTrailers } : {}),
    });
  }
  return (async function* () {
    const sha = payload.kind === 'sha256' ? createHash('sha256') : undefined;
    const declared = header(ctx, 'content-length');
    let size = 0;
    for await (const chunk of source) {
      size += chunk.length;
      sha?.update(chunk);
      yield chunk;
    }
    if (declared !== undefined && size !== Number(declared)) throw new S3Error('IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header');
    if (sha && payload.kind === 'sha256' && sha.digest('hex') !== payload.hex) {
      throw new S3Error('XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
  })();
}

interface BodyChecks {
  /** The Content-MD5 header, checked for form before the body is read. */
  md5?: string;
  checksums: { alg: ChecksumAlgorithm; expected?: string; state: ReturnType<typeof createChecksum> }[];
  trailers: Map<string, string>;
}

/** What the request says its body's digests are (Content-MD5, x-amz-checksum-*, a declared trailer). */
function bodyChecks(ctx: RequestContext, defaultAlgorithm?: string): BodyChecks {
  const checks: BodyChecks = { checksums: [], trailers: new Map() };
  const md5 = header(ctx, 'content-md5');
  if (md5 !== undefined) {
    const bytes = Buffer.from(md5, 'base64');
    if (bytes.length !== 16 || bytes.toString('base64') !== md5.trim()) throw new S3Error('InvalidDigest', 'The Content-MD5 you specified is not valid.');
    checks.md5 = md5;
  }
  const trailer = (header(ctx, 'x-amz-trailer') ?? '').toLowerCase();
  for (const alg of checksumAlgorithms) {
    const value = header(ctx, `x-amz-checksum-${alg}`);
    const inTrailer = trailer.includes(`x-amz-checksum-${alg}`);
    const wanted = (header(ctx, 'x-amz-sdk-checksum-algorithm') ?? defaultAlgorithm ?? '').toLowerCase() === alg;
    if (value !== undefined || inTrailer || wanted) checks.checksums.push({ alg, ...(value !== undefined ? { expected: value } : {}), state: createChecksum(alg) });
  }
  return checks;
}

function verifyChecks(checks: BodyChecks, md5: Buffer): Header[] {
  if (checks.md5 !== undefined) verifyContentMd5(checks.md5, md5);
  const stored: Header[] = [];
  for (const c of checks.checksums) {
    const actual = c.state.digestBase64();
    const expected = c.expected ?? checks.trailers.get(`x-amz-checksum-${c.alg}`);
    if (expected !== undefined) verifyChecksum(c.alg, expected, actual);
    stored.push({ name: c.alg, value: actual });
  }
  return stored;
}

function checksumHeaders(list: readonly { name?: string | null; value?: string | null }[]): Record<string, string> {
  return Object.fromEntries(list.map((c) => [`x-amz-checksum-${c.name ?? ''}`, c.value ?? '']));
}

/** Reads and stores a request body as a new instance; verifies every digest the request declared. */
async function storeBody(ctx: RequestContext, bucket: Bucket, key: string, allowInline: boolean, uploadId?: string, defaultAlgorithm?: string) {
  if (header(ctx, 'content-length') === undefined && header(ctx, 'transfer-encoding') === undefined) {
    throw new S3Error('MissingContentLength', 'You must provide the Content-Length HTTP header.');
  }
  // Refuse an announced size over the limit before reading anything (a Content-Length of 10^18 otherwise kept the
  // request open until that many bytes had come).
  const sizeMax = singlePutMax;
  const streaming = ctx.auth.payload.kind === 'streaming-signed' || ctx.auth.payload.kind === 'streaming-unsigned-trailer';
  for (const name of streaming ? ['x-amz-decoded-content-length'] : ['content-length']) {
    const declared = header(ctx, name);
    if (declared !== undefined && Number(declared) > sizeMax) {
      throw new S3Error('EntityTooLarge', `Your proposed upload exceeds the maximum allowed size (${sizeMax} bytes)`, { ProposedSize: declared, MaxSizeAllowed: String(sizeMax) });
    }
  }
  const checks = bodyChecks(ctx, defaultAlgorithm);
  const body = requestBody(ctx, (t) => {
    for (const [k, v] of t) checks.trailers.set(k.toLowerCase(), v);
  });
  const written = await ctx.store.writeData(bucket, key, body, {
    allowInline,
    ...(uploadId ? { uploadId } : {}),
    sizeMax,
    onData: (chunk) => {
      for (const c of checks.checksums) c.state.update(chunk);
    },
  });
  const checksums = verifyChecks(checks, written.md5);
  return { written, checksums };
}

// ---- buckets ----

async function ownedBucket(ctx: RequestContext): Promise<Bucket> {
  const bucket = await ctx.store.getBucket(ctx.bucketName);
  if (bucket.owner !== ctx.user) throw new S3Error('AccessDenied', 'Access Denied', { BucketName: ctx.bucketName });
  return bucket;
}

async function listBuckets(ctx: RequestContext): Promise<void> {
  const buckets = await ctx.store.listBuckets(ctx.user);
  sendXml(ctx, xml.listBucketsXml({ owner: { id: ctx.user, displayName: ctx.user }, buckets: buckets.map((b) => ({ name: b.name, creationDate: new Date(Number(b.createdMs)) })) }));
}

async function createBucket(ctx: RequestContext): Promise<void> {
  checkBucketName(ctx.bucketName);
  const body = await readSmallBody(ctx);
  const config = body.trim() ? xml.parseCreateBucketConfiguration(body) : {};
  const { created } = await ctx.store.createBucket(ctx.bucketName, ctx.user, config.locationConstraint ?? ctx.region);
  if (!created && ctx.region !== 'us-east-1') throw new S3Error('BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.', { BucketName: ctx.bucketName });
  send(ctx, 200, { location: `/${ctx.bucketName}` });
}

async function deleteBucket(ctx: RequestContext): Promise<void> {
  const bucket = await ownedBucket(ctx);
  await ctx.store.deleteBucket(bucket);
  send(ctx, 204);
}

function indexSource(ctx: RequestContext, bucket: Bucket): KeySource<ObjectEntry> {
  const shards: KeySource<ObjectEntry>[] = Array.from({ length: bucket.indexShards }, (_, n) => async (after: string, limit: number) => {
    const page = await ctx.store.listShard(bucket, n, after, limit);
    return { entries: page.entries.map(([key, v]) => ({ key, value: decodeEntry(v) })), more: page.more };
  });
  return mergeSources(shards);
}

function decodeEntry(bytes: Buffer): ObjectEntry {
  return s3Codecs.object.decode(bytes);
}

async function listObjects(ctx: RequestContext): Promise<void> {
  const bucket = await ownedBucket(ctx);
  const q = ctx.query;
  const v2 = q.get('list-type') === '2';
  const maxKeysRaw = q.get('max-keys');
  const maxKeys = maxKeysRaw === null ? 1000 : Number(maxKeysRaw);
  if (!Number.isInteger(maxKeys) || maxKeys < 0) throw new S3Error('InvalidArgument', 'max-keys must be a non-negative integer', { ArgumentName: 'max-keys' });
  const encodingRaw = q.get('encoding-type') ?? undefined;
  const encodingType: 'url' | undefined = encodingRaw === 'url' ? 'url' : undefined;
  if (encodingRaw !== undefined && encodingRaw !== 'url') throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', { ArgumentName: 'encoding-type' });
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const token = q.get('continuation-token') ?? undefined;
  const startAfter = v2 ? (token !== undefined ? decodeContinuationToken(token) : q.get('start-after') ?? '') : q.get('marker') ?? '';
  const page = await listPage(indexSource(ctx, bucket), { prefix, delimiter, maxKeys: Math.min(maxKeys, 1000), startAfter });
  const fetchOwner = !v2 || q.get('fetch-owner') === 'true';
  const owner = { id: ctx.user, displayName: ctx.user };
  const contents = page.contents.map((c) => ({ key: c.key, lastModified: new Date(Number(c.value.mtimeMs)), etag: c.value.etag, size: Number(c.value.size), owner }));
  const common = {
    name: bucket.name,
    prefix,
    delimiter,
    maxKeys,
    isTruncated: page.isTruncated,
    contents,
    commonPrefixes: page.commonPrefixes,
    fetchOwner,
    ...(encodingType ? { encodingType } : {}),
  };
  if (v2) {
    sendXml(ctx, xml.listObjectsV2Xml({
      ...common,
      keyCount: contents.length + page.commonPrefixes.length,
      ...(token !== undefined ? { continuationToken: token } : {}),
      ...(page.isTruncated ? { nextContinuationToken: encodeContinuationToken(page.nextMarker) } : {}),
      ...(q.get('start-after') !== null ? { startAfter: q.get('start-after') ?? '' } : {}),
    }));
  } else {
    sendXml(ctx, xml.listObjectsV1Xml({
      ...common,
      marker: q.get('marker') ?? '',
      ...(page.isTruncated && delimiter ? { nextMarker: page.nextMarker } : {}),
    }));
  }
}

// ---- objects ----

async function putObject(ctx: RequestContext): Promise<void> {
  const bucket = await ownedBucket(ctx);
  checkKey(ctx.key);
  const headers = headersToStore(ctx);
  const { written, checksums } = await storeBody(ctx, bucket, ctx.key, true);
  const etag = written.md5.toString('hex');
  const replaced = await ctx.store.commitObject(bucket, ctx.key, {
    size: written.size,
    etag,
    mtimeMs: ctx.clock.nowMs(),
    segments: written.segment ? [written.segment] : [],
    headers,
    checksums,
    ...(written.inline ? { inlineData: written.inline } : {}),
  });
  send(ctx, 200, { etag: xml.quoteEtag(etag), ...checksumHeaders(checksums) });
  await ctx.store.retire(bucket, ctx.key, replaced, written);
}

interface ParsedRange {
  offset: number;
  length: number;
}

/** A single `bytes=` range against `size`; undefined for none (or several: S3 then returns the whole object). */
function parseRange(value: string | undefined, size: number): ParsedRange | undefined {
  if (value === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m) return undefined;
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '' && b === '') return undefined;
  let start: number;
  let end: number;
  if (a === '') {
    const n = Number(b);
    if (n === 0) throw new S3Error('InvalidRange', 'The requested range is not satisfiable', { RangeRequested: value, ActualObjectSize: String(size) });
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return undefined;
  }
  if (start >= size) throw new S3Error('InvalidRange', 'The requested range is not satisfiable', { RangeRequested: value, ActualObjectSize: String(size) });
  return { offset: start, length: end - start + 1 };
}

/** If-Match / If-None-Match / If-(Un)Modified-Since, as S3 evaluates them. */
function checkConditions(ctx: RequestContext, entry: ObjectEntry, read: boolean): void {
  const mtime = Math.floor(Number(entry.mtimeMs) / 1000) * 1000;
  const matches = (list: string) => etagListMatches(list, entry);
  const ifMatch = header(ctx, 'if-match');
  const ifNoneMatch = header(ctx, 'if-none-match');
  const ifModified = header(ctx, 'if-modified-since');
  const ifUnmodified = header(ctx, 'if-unmodified-since');
  if (ifMatch !== undefined && !matches(ifMatch)) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Match' });
  if (ifMatch === undefined && ifUnmodified !== undefined) {
    const t = Date.parse(ifUnmodified);
    if (!Number.isNaN(t) && mtime > t) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-Unmodified-Since' });
  }
  if (ifNoneMatch !== undefined && matches(ifNoneMatch)) {
    if (read) throw new S3Error('NotModified', 'Not Modified');
    throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-None-Match' });
  }
  if (ifNoneMatch === undefined && ifModified !== undefined && read) {
    const t = Date.parse(ifModified);
    if (!Number.isNaN(t) && mtime <= t) throw new S3Error('NotModified', 'Not Modified');
  }
}

/** Headers of a GET/HEAD answer; checksums only for the whole object (they would not match a range). */
function objectHeaders(ctx: RequestContext, entry: ObjectEntry, whole: boolean): Record<string, string | number> {
  const out: Record<string, string | number> = {
    etag: xml.quoteEtag(entry.etag),
    'last-modified': httpDate(Number(entry.mtimeMs)),
    'accept-ranges': 'bytes',
    'content-type': 'binary/octet-stream',
  };
  for (const h of entry.headers) if (h.name) out[h.name] = h.value ?? '';
  if (entry.parts > 0) out['x-amz-mp-parts-count'] = entry.parts;
  if (whole && (header(ctx, 'x-amz-checksum-mode') ?? '').toUpperCase() === 'ENABLED') Object.assign(out, checksumHeaders(entry.checksums));
  const overrides: Record<string, string> = {
    'response-content-type': 'content-type',
    'response-content-language': 'content-language',
    'response-expires': 'expires',
    'response-cache-control': 'cache-control',
    'response-content-disposition': 'content-disposition',
    'response-content-encoding': 'content-encoding',
  };
  for (const [param, name] of Object.entries(overrides)) {
    const v = ctx.query.get(param);
    if (v !== null) out[name] = v;
  }
  return out;
}

async function getObject(ctx: RequestContext, head: boolean): Promise<void> {
  const bucket = await ownedBucket(ctx);
  checkKey(ctx.key);
  const entry = await ctx.store.getObject(bucket, ctx.key);
  checkConditions(ctx, entry, true);
  const size = Number(entry.size);
  const partNumber = ctx.query.get('partNumber');
  const range = partNumber === null ? parseRange(header(ctx, 'range'), size) : undefined;
  const headers = objectHeaders(ctx, entry, range === undefined);
  const offset = range?.offset ?? 0;
  const length = range?.length ?? size;
  if (range) headers['content-range'] = `bytes ${range.offset}-${range.offset + range.length - 1}/${size}`;
  ctx.res.writeHead(range ? 206 : 200, { ...headers, 'content-length': length });
  if (head || length === 0) {
    ctx.res.end();
    return;
  }
  for await (const chunk of ctx.store.readData(bucket, entry, offset, length)) {
    // The stripe's buffer goes back to the pool once the socket has taken it (never, if the client went away first).
    const sent = ctx.res.write(chunk, (error) => {
      if (!error) bufferPool.release(chunk);
    });
    if (!sent) await new Promise<void>((resolve) => ctx.res.once('drain', resolve).once('close', resolve));
    if (ctx.res.destroyed) return;
  }
  ctx.res.end();
}

async function deleteObject(ctx: RequestContext): Promise<void> {
  const bucket = await ownedBucket(ctx);
  checkKey(ctx.key);
  const removed = await ctx.store.deleteObject(bucket, ctx.key);
  send(ctx, 204);
  await ctx.store.retire(bucket, ctx.key, removed);
}

async function deleteObjects(ctx: RequestContext): Promise<void> {
  const bucket = await ownedBucket(ctx);
  const body = await readSmallBody(ctx);
  const request = xml.parseDeleteObjects(body);
  const deleted: { key: string }[] = [];
  const errors: { key: string; code: string; message: string }[] = [];
  for (const o of request.objects) {
    try {
      checkKey(o.key);
      await ctx.store.retire(bucket, o.key, await ctx.store.deleteObject(bucket, o.key));
      deleted.push({ key: o.key });
    } catch (error) {
      const e = error instanceof S3Error ? error : new S3Error('InternalError', 'We encountered an internal error. Please try again.');
      errors.push({ key: o.key, code: e.code, message: e.message });
    }
  }
  sendXml(ctx, xml.deleteResultXml({ deleted, errors, quiet: request.quiet }));
}

/** The bucket and key named by x-amz-copy-source (`/bucket/key` or `bucket/key`, percent-encoded, ?versionId ignored). */
function copySource(ctx: RequestContext): { bucket: string; key: string } {
  const raw = (header(ctx, 'x-amz-copy-source') ?? '').split('?')[0] ?? '';
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw).replace(/^\//, '');
  } catch {
    throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey');
  }
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey');
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) };
}

async function copyData(ctx: RequestContext, target: Bucket, targetKey: string, range?: string, uploadId?: string) {
  const source = copySource(ctx);
  const sourceBucket = await ctx.store.getBucket(source.bucket);
  if (sourceBucket.owner !== ctx.user) throw new S3Error('AccessDenied', 'Access Denied', { BucketName: source.bucket });
  const entry = await ctx.store.getObject(sourceBucket, source.key);
  const cond = (name: string) => header(ctx, `x-amz-copy-source-${name}`);
  const ifMatch = cond('if-match');
  if (ifMatch !== undefined && !etagListMatches(ifMatch, entry)) {
    throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'x-amz-copy-source-If-Match' });
  }
  const ifNoneMatch = cond('if-none-match');
  if (ifNoneMatch !== undefined && etagListMatches(ifNoneMatch, entry)) {
    throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'x-amz-copy-source-If-None-Match' });
  }
  const size = Number(entry.size);
  let offset = 0;
  let length = size;
  if (range !== undefined) {
    const m = /^bytes=(\d+)-(\d+)$/.exec(range);
    if (!m || Number(m[2]) < Number(m[1]) || Number(m[2]) >= size) throw new S3Error('InvalidRange', 'The requested range is not satisfiable');
    offset = Number(m[1]);
    length = Number(m[2]) - offset + 1;
  }
  const written = await ctx.store.writeData(target, targetKey, ctx.store.readData(sourceBucket, entry, offset, length), {
    allowInline: uploadId === undefined,
    ...(uploadId ? { uploadId } : {}),
  });
  return { entry, written };
}

async function copyObject(ctx: RequestContext): Promise<void> {
  const bucket = await ownedBucket(ctx);
  checkKey(ctx.key);
  const directive = (header(ctx, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') throw new S3Error('InvalidArgument', 'Unknown metadata directive.', { ArgumentName: 'x-amz-metadata-directive' });
  const source = copySource(ctx);
  if (source.bucket === ctx.bucketName && source.key === ctx.key && directive === 'COPY') {
    throw new S3Error('InvalidRequest', 'This copy request is illegal because it is trying to copy an object to itself without changing the object\'s metadata, storage class, website redirect location or encryption attributes.');
  }
  const headers = directive === 'REPLACE' ? headersToStore(ctx) : undefined;
  const { entry, written } = await copyData(ctx, bucket, ctx.key);
  const etag = entry.parts > 0 ? written.md5.toString('hex') : entry.etag;
  const mtimeMs = ctx.clock.nowMs();
  const replaced = await ctx.store.commitObject(bucket, ctx.key, {
    size: written.size,
    etag,
    mtimeMs,
    segments: written.segment ? [written.segment] : [],
    headers: headers ?? entry.headers,
    checksums: entry.parts > 0 ? [] : entry.checksums,
    ...(written.inline ? { inlineData: written.inline } : {}),
  });
  sendXml(ctx, xml.copyObjectResultXml({ etag, lastModified: new Date(mtimeMs) }));
  await ctx.store.retire(bucket, ctx.key, replaced, written);
}

// ---- multipart ----

async function createUpload(ctx: RequestContext): Promise<void> {
  const bucket = await ownedBucket(ctx);
  checkKey(ctx.key);
  const algorithm = (header(ctx, 'x-amz-checksum-algorithm') ?? '').toLowerCase();
  const uploadId = await ctx.store.createUpload(bucket, ctx.key, headersToStore(ctx), algorithm);
  sendXml(ctx, xml.initiateMultipartUploadXml({ bucket: bucket.name, key: ctx.key, uploadId }), algorithm ? { 'x-amz-checksum-algorithm': algorithm.toUpperCase() } : {});
}

function partNumberOf(ctx: RequestContext): number {
  const n = Number(ctx.query.get('partNumber'));
  if (!Number.isInteger(n) || n < 1 || n > partsMax) throw new S3Error('InvalidArgument', `Part number must be an integer between 1 and ${partsMax}, inclusive`, { ArgumentName: 'partNumber' });
  return n;
}

async function uploadPart(ctx: RequestContext): Promise<void> {
  const bucket = await ownedBucket(ctx);
  const uploadId = ctx.query.get('uploadId') ?? '';
  const number = partNumberOf(ctx);
  const upload = await ctx.store.getUpload(bucket, uploadId, ctx.key);
  const copying = header(ctx, 'x-amz-copy-source') !== undefined;
  const result = copying
    ? { ...(await copyData(ctx, bucket, ctx.key, header(ctx, 'x-amz-copy-source-range'), uploadId)), checksums: [] as Header[] }
    : { ...(await storeBody(ctx, bucket, ctx.key, false, uploadId, upload.checksumAlgorithm)), entry: undefined };
  const written = result.written;
  const etag = written.md5.toString('hex');
  const mtimeMs = ctx.clock.nowMs();
  await ctx.store.putPart(bucket, uploadId, ctx.key, { number, etag, size: written.size, mtimeMs, segment: written.segment ?? { instance: '', size: 0, stripeBytes: 0 }, checksums: result.checksums });
  if (copying) sendXml(ctx, xml.copyPartResultXml({ etag, lastModified: new Date(mtimeMs) }));
  else send(ctx, 200, { etag: xml.quoteEtag(etag), ...checksumHeaders(result.checksums) });
}

async function completeUpload(ctx: RequestContext): Promise<void> {
  const bucket = await ownedBucket(ctx);
  const uploadId = ctx.query.get('uploadId') ?? '';
  const upload = await ctx.store.getUpload(bucket, uploadId, ctx.key);
  const request = xml.parseCompleteMultipartUpload(await readSmallBody(ctx));
  if (request.parts.length === 0) throw new S3Error('MalformedXML', 'You must specify at least one part');
  const stored = new Map((await ctx.store.listParts(bucket, uploadId)).map((p) => [p.number, p]));
  const segments: wire.S3Segment.$Properties[] = [];
  const md5s: Buffer[] = [];
  let size = 0;
  let previous = 0;
  for (const [i, p] of request.parts.entries()) {
    if (p.partNumber <= previous) throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
    previous = p.partNumber;
    const part = stored.get(p.partNumber);
    const etag = p.etag.replace(/"/g, '').trim();
    if (!part || part.etag !== etag) throw new S3Error('InvalidPart', 'One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part\'s entity tag.', { PartNumber: String(p.partNumber), ETag: p.etag });
    if (i < request.parts.length - 1 && Number(part.size) < partSizeMin) throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', { PartNumber: String(p.partNumber) });
    if (part.segment && Number(part.segment.size) > 0) segments.push(part.segment);
    md5s.push(Buffer.from(part.etag, 'hex'));
    size += Number(part.size);
  }
  if (size > objectSizeMax) throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
  const etag = `${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${request.parts.length}`;
  const replaced = await ctx.store.commitObject(bucket, ctx.key, { size, etag, mtimeMs: ctx.clock.nowMs(), segments, headers: upload.headers, checksums: [], parts: request.parts.length });
  await ctx.store.finishUpload(bucket, uploadId, ctx.key, new Set(segments.map((s) => s.instance ?? '')));
  const host = header(ctx, 'host') ?? 'localhost';
  sendXml(ctx, xml.completeMultipartUploadXml({ location: `http://${host}/${bucket.name}/${encodeURIComponent(ctx.key)}`, bucket: bucket.name, key: ctx.key, etag }));
  await ctx.store.retire(bucket, ctx.key, replaced);
}

async function abortUpload(ctx: RequestContext): Promise<void> {
  const bucket = await ownedBucket(ctx);
  const uploadId = ctx.query.get('uploadId') ?? '';
  await ctx.store.getUpload(bucket, uploadId, ctx.key);
  await ctx.store.finishUpload(bucket, uploadId, ctx.key, new Set());
  send(ctx, 204);
}

async function listParts(ctx: RequestContext): Promise<void> {
  const bucket = await ownedBucket(ctx);
  const uploadId = ctx.query.get('uploadId') ?? '';
  await ctx.store.getUpload(bucket, uploadId, ctx.key);
  const marker = Number(ctx.query.get('part-number-marker') ?? 0);
  const maxParts = Math.min(1000, Number(ctx.query.get('max-parts') ?? 1000));
  const all = (await ctx.store.listParts(bucket, uploadId)).filter((p) => p.number > marker);
  const parts = all.slice(0, maxParts);
  sendXml(ctx, xml.listPartsXml({
    bucket: bucket.name,
    key: ctx.key,
    uploadId,
    partNumberMarker: marker,
    nextPartNumberMarker: parts.at(-1)?.number ?? marker,
    maxParts,
    isTruncated: all.length > parts.length,
    parts: parts.map((p) => ({ partNumber: p.number, lastModified: new Date(Number(p.mtimeMs)), etag: p.etag, size: Number(p.size) })),
    owner: { id: ctx.user, displayName: ctx.user },
  }));
}

async function listUploads(ctx: RequestContext): Promise<void> {
  const bucket = await ownedBucket(ctx);
  const prefix = ctx.query.get('prefix') ?? '';
  const uploads = (await ctx.store.listUploads(bucket)).filter((u) => u.upload.key.startsWith(prefix)).sort((a, b) => (a.upload.key < b.upload.key ? -1 : a.upload.key > b.upload.key ? 1 : 0));
  sendXml(ctx, xml.listMultipartUploadsXml({
    bucket: bucket.name,
    prefix,
    maxUploads: 1000,
    isTruncated: false,
    uploads: uploads.map((u) => ({ key: u.upload.key, uploadId: u.uploadId, initiated: new Date(Number(u.upload.createdMs)), owner: { id: ctx.user, displayName: ctx.user } })),
  }));
}

// ---- routing ----

async function route(ctx: RequestContext): Promise<void> {
  const method = ctx.req.method ?? 'GET';
  const q = ctx.query;
  if (ctx.bucketName === '') {
    if (method === 'GET') return listBuckets(ctx);
    throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
  }
  if (ctx.key === '') {
    switch (method) {
      case 'PUT':
        return createBucket(ctx);
      case 'HEAD':
        await ownedBucket(ctx);
        return send(ctx, 200, { 'x-amz-bucket-region': ctx.region });
      case 'DELETE':
        return deleteBucket(ctx);
      case 'POST':
        if (q.has('delete')) return deleteObjects(ctx);
        break;
      case 'GET':
        if (q.has('location')) {
          const bucket = await ownedBucket(ctx);
          return sendXml(ctx, xml.locationXml(bucket.region === 'us-east-1' ? '' : bucket.region));
        }
        if (q.has('uploads')) return listUploads(ctx);
        if (q.has('versioning')) {
          await ownedBucket(ctx);
          return sendXml(ctx, '<?xml version="1.0" encoding="UTF-8"?>\n<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>');
        }
        for (const sub of ['acl', 'policy', 'cors', 'lifecycle', 'tagging', 'website', 'encryption', 'logging', 'notification', 'replication', 'object-lock']) {
          if (q.has(sub)) throw new S3Error('NotImplemented', `The bucket ${sub} sub-resource is not implemented`);
        }
        return listObjects(ctx);
    }
    throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
  }
  switch (method) {
    case 'PUT':
      if (q.has('uploadId')) return uploadPart(ctx);
      if (q.has('acl') || q.has('tagging')) throw new S3Error('NotImplemented', 'Object ACLs and tagging are not implemented');
      if (header(ctx, 'x-amz-copy-source') !== undefined) return copyObject(ctx);
      return putObject(ctx);
    case 'GET':
      if (q.has('uploadId')) return listParts(ctx);
      if (q.has('acl') || q.has('tagging')) throw new S3Error('NotImplemented', 'Object ACLs and tagging are not implemented');
      return getObject(ctx, false);
    case 'HEAD':
      return getObject(ctx, true);
    case 'DELETE':
      if (q.has('uploadId')) return abortUpload(ctx);
      return deleteObject(ctx);
    case 'POST':
      if (q.has('uploads')) return createUpload(ctx);
      if (q.has('uploadId')) return completeUpload(ctx);
      break;
  }
  throw new S3Error('MethodNotAllowed', 'The specified method is not allowed against this resource.');
}

export const handlers = { route };
