/**
 * AWS Signature Version 4 for S3, both sides: `verifyRequest` checks a received request (Authorization header or
 * presigned URL; no auth at all yields an anonymous result and the server decides), and `signRequest`/`presignUrl`/
 * `deriveSigningKey` sign as a client does (tests, `shoal bench s3`). Pure: no I/O, no clock reads (callers pass
 * `nowMs`). Every client fault is an S3Error with the code AWS answers with.
 *
 * S3's canonical request differs from other AWS services: the path is used as sent, not normalized (no `.`/`..` or
 * `//` removal) and not encoded twice; only characters that AWS's URI encoding would not leave raw are encoded (so
 * the documented `PUT /test$file.text` signs as `/test%24file.text`). Query parameters are decoded and re-encoded
 * (RFC 3986 unreserved kept, space `%20`), sorted by encoded key then value.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { S3Error } from './s3-error.js';

export const sigV4Algorithm = 'AWS4-HMAC-SHA256';
export const unsignedPayload = 'UNSIGNED-PAYLOAD';
export const streamingSignedPayload = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
export const streamingSignedPayloadTrailer = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
export const streamingUnsignedPayloadTrailer = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
/** sha256 of the empty string, hex. */
export const emptySha256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const defaultMaxSkewMs = 15 * 60_000;
/** Longest presigned URL validity AWS allows (7 days), seconds. */
export const presignExpiresMaxSec = 604_800;

export type IncomingHeaders = Record<string, string | string[] | undefined>;

/** A request as the server received it. */
export interface SigV4Request {
  method: string;
  /** The path as received, still percent-encoded, without the query. */
  rawPath: string;
  /** The query as received, without the `?`. */
  rawQuery: string;
  /** Lower-case names (node's IncomingHttpHeaders). */
  headers: IncomingHeaders;
}

/** What the client promised about the body (from `x-amz-content-sha256`; presigned URLs are always unsigned). */
export type PayloadMode =
  | { kind: 'unsigned' }
  | { kind: 'sha256'; hex: string }
  | { kind: 'streaming-signed'; trailer: boolean }
  | { kind: 'streaming-unsigned-trailer' };

export interface SignedAuth {
  anonymous: false;
  accessKey: string;
  payload: PayloadMode;
  /** For aws-chunked chunk signatures. */
  signingKey: Buffer;
  /** The request's signature (the seed of a chunk signature chain). */
  seedSignature: string;
  /** `yyyymmddThhmmssZ` as signed. */
  amzDate: string;
  /** `yyyymmdd/region/s3/aws4_request`. */
  scope: string;
  region: string;
  presigned: boolean;
}

export interface AnonymousAuth {
  anonymous: true;
  /** From `x-amz-content-sha256` when sent (a sha256 to check, or an unsigned trailer stream); else unsigned. */
  payload: PayloadMode;
}

export type AuthResult = SignedAuth | AnonymousAuth;

export interface VerifyOptions {
  /** How far the request's date may be from `nowMs` (default 15 minutes). */
  maxSkewMs?: number;
  /** The region requests must be signed for; any region when unset. */
  region?: string;
}

/**
 * Verifies a request's SigV4 signature. Returns the authenticated access key and what the body must satisfy
 * (`payload`: the caller checks a `sha256` payload against the body, or decodes an aws-chunked one), or
 * `{ anonymous: true, payload }` when the request carries no authentication at all (a streaming *signed* payload
 * without a signature is refused).
 */
export function verifyRequest(
  request: SigV4Request,
  lookupSecret: (accessKey: string) => string | undefined,
  nowMs: number,
  options: VerifyOptions = {},
): AuthResult {
  const query = parseQuery(request.rawQuery);
  const authorization = headerValue(request.headers, 'authorization');
  const presigned = query.some((p) => p.key === 'X-Amz-Algorithm' || p.key === 'X-Amz-Credential' || p.key === 'X-Amz-Signature');
  if (authorization !== undefined && presigned) {
    throw new S3Error(
      'InvalidArgument',
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified',
    );
  }
  if (presigned) return verifyPresigned(request, query, lookupSecret, nowMs, options);
  if (authorization !== undefined) return verifyHeader(request, query, authorization, lookupSecret, nowMs, options);
  if (query.some((p) => p.key === 'Signature' || p.key === 'AWSAccessKeyId')) throw sigV2Unsupported();
  const contentSha256 = headerValue(request.headers, 'x-amz-content-sha256');
  const payload = contentSha256 === undefined ? ({ kind: 'unsigned' } as const) : parsePayloadMode(contentSha256.trim());
  if (payload.kind === 'streaming-signed') {
    throw new S3Error('InvalidRequest', 'A streaming signed payload needs an Authorization header to chain its chunk signatures from.');
  }
  return { anonymous: true, payload };
}

// ---- header authentication ----

function verifyHeader(
  request: SigV4Request,
  query: QueryParam[],
  authorization: string,
  lookupSecret: (accessKey: string) => string | undefined,
  nowMs: number,
  options: VerifyOptions,
): SignedAuth {
  const auth = parseAuthorization(authorization);
  const credential = parseCredential(auth.credential, 'AuthorizationHeaderMalformed', options.region);

  const amzDateHeader = headerValue(request.headers, 'x-amz-date');
  const dateHeader = headerValue(request.headers, 'date');
  let amzDate: string;
  let requestMs: number | undefined;
  if (amzDateHeader !== undefined) {
    amzDate = amzDateHeader.trim();
    requestMs = parseAmzDate(amzDate);
  } else if (dateHeader !== undefined) {
    const ms = Date.parse(dateHeader);
    requestMs = Number.isNaN(ms) ? undefined : ms;
    amzDate = requestMs === undefined ? '' : formatAmzDate(requestMs);
  } else {
    amzDate = '';
  }
  if (requestMs === undefined) throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  if (amzDate.slice(0, 8) !== credential.date) {
    throw new S3Error('AuthorizationHeaderMalformed', `Invalid credential date "${credential.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  }
  checkSkew(requestMs, nowMs, options);

  const contentSha256 = headerValue(request.headers, 'x-amz-content-sha256');
  if (contentSha256 === undefined) throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  const payload = parsePayloadMode(contentSha256.trim());

  if (!auth.signedHeaders.includes('host')) {
    throw new S3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed; SignedHeaders must include host.');
  }
  const unsigned = Object.keys(request.headers).filter(
    (name) => name.startsWith('x-amz-') && request.headers[name] !== undefined && !auth.signedHeaders.includes(name),
  );
  if (unsigned.length > 0) {
    throw new S3Error('AccessDenied', 'There were headers present in the request which were not signed', { HeadersNotSigned: unsigned.join(', ') });
  }

  const secret = lookupSecret(credential.accessKey);
  if (secret === undefined) throw invalidAccessKey(credential.accessKey);
  const canonical = canonicalRequest(request.method, request.rawPath, query, request.headers, auth.signedHeaders, contentSha256.trim());
  const scope = `${credential.date}/${credential.region}/s3/aws4_request`;
  const signingKey = deriveSigningKey(secret, credential.date, credential.region, 's3');
  checkSignature(signingKey, amzDate, scope, canonical, auth.signature, credential.accessKey);
  return {
    anonymous: false,
    accessKey: credential.accessKey,
    payload,
    signingKey,
    seedSignature: auth.signature,
    amzDate,
    scope,
    region: credential.region,
    presigned: false,
  };
}

interface ParsedAuthorization {
  credential: string;
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(value: string): ParsedAuthorization {
  const trimmed = value.trim();
  const space = trimmed.indexOf(' ');
  const algorithm = space < 0 ? trimmed : trimmed.slice(0, space);
  if (algorithm !== sigV4Algorithm) {
    if (algorithm === 'AWS') throw sigV2Unsupported();
    throw new S3Error('AuthorizationHeaderMalformed', `The authorization header is malformed; unsupported algorithm "${algorithm}".`);
  }
  const fields = new Map<string, string>();
  for (const part of trimmed.slice(space + 1).split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    if (eq < 0 || fields.has(name) || !['Credential', 'SignedHeaders', 'Signature'].includes(name)) {
      throw new S3Error('AuthorizationHeaderMalformed', `The authorization header is malformed; unexpected "${item}".`);
    }
    fields.set(name, item.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credential === undefined || signedHeaders === undefined || signature === undefined) {
    throw new S3Error('AuthorizationHeaderMalformed', 'The authorization header is malformed; it needs Credential, SignedHeaders and Signature.');
  }
  return { credential, signedHeaders: parseSignedHeaders(signedHeaders, 'AuthorizationHeaderMalformed'), signature };
}

// ---- presigned URLs ----

const presignParams = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'] as const;

function verifyPresigned(
  request: SigV4Request,
  query: QueryParam[],
  lookupSecret: (accessKey: string) => string | undefined,
  nowMs: number,
  options: VerifyOptions,
): SignedAuth {
  const get = (key: string): string | undefined => query.find((p) => p.key === key)?.value;
  for (const key of presignParams) {
    if (query.filter((p) => p.key === key).length !== 1) {
      throw new S3Error(
        'AuthorizationQueryParametersError',
        'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
      );
    }
  }
  const param = (key: (typeof presignParams)[number]): string => get(key) as string;
  if (param('X-Amz-Algorithm') !== sigV4Algorithm) {
    throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  }
  const credential = parseCredential(param('X-Amz-Credential'), 'AuthorizationQueryParametersError', options.region);
  const amzDate = param('X-Amz-Date');
  const requestMs = parseAmzDate(amzDate);
  if (requestMs === undefined) {
    throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"');
  }
  if (amzDate.slice(0, 8) !== credential.date) {
    throw new S3Error('AuthorizationQueryParametersError', `Invalid credential date "${credential.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  }
  const expiresText = param('X-Amz-Expires');
  if (!/^[0-9]{1,7}$/.test(expiresText)) {
    throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Expires should be a number');
  }
  const expiresSec = Number(expiresText);
  if (expiresSec < 1) throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Expires must be non-negative');
  if (expiresSec > presignExpiresMaxSec) {
    throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Expires must be less than a week (in seconds) that is 604800');
  }
  const signedHeaders = parseSignedHeaders(param('X-Amz-SignedHeaders'), 'AuthorizationQueryParametersError');
  if (!signedHeaders.includes('host')) {
    throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-SignedHeaders must include host');
  }
  const maxSkewMs = options.maxSkewMs ?? defaultMaxSkewMs;
  if (requestMs - nowMs > maxSkewMs) throw new S3Error('AccessDenied', 'Request is not valid yet');
  if (nowMs > requestMs + expiresSec * 1000) {
    throw new S3Error('AccessDenied', 'Request has expired', {
      'X-Amz-Expires': expiresText,
      Expires: new Date(requestMs + expiresSec * 1000).toISOString(),
      ServerTime: new Date(nowMs).toISOString(),
    });
  }

  const secret = lookupSecret(credential.accessKey);
  if (secret === undefined) throw invalidAccessKey(credential.accessKey);
  const signed = query.filter((p) => p.key !== 'X-Amz-Signature');
  const payloadHash = get('X-Amz-Content-Sha256') ?? unsignedPayload;
  const canonical = canonicalRequest(request.method, request.rawPath, signed, request.headers, signedHeaders, payloadHash);
  const scope = `${credential.date}/${credential.region}/s3/aws4_request`;
  const signingKey = deriveSigningKey(secret, credential.date, credential.region, 's3');
  const signature = param('X-Amz-Signature');
  checkSignature(signingKey, amzDate, scope, canonical, signature, credential.accessKey);
  return {
    anonymous: false,
    accessKey: credential.accessKey,
    payload: payloadHash === unsignedPayload ? { kind: 'unsigned' } : parsePayloadMode(payloadHash),
    signingKey,
    seedSignature: signature,
    amzDate,
    scope,
    region: credential.region,
    presigned: true,
  };
}

// ---- shared checks ----

type AuthErrorCode = 'AuthorizationHeaderMalformed' | 'AuthorizationQueryParametersError';

interface Credential {
  accessKey: string;
  date: string;
  region: string;
}

function parseCredential(value: string, code: AuthErrorCode, region: string | undefined): Credential {
  const parts = value.split('/');
  const [accessKey, date, credentialRegion, service, terminator] = parts;
  if (parts.length !== 5 || accessKey === undefined || date === undefined || credentialRegion === undefined || accessKey === '') {
    throw new S3Error(code, `Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`);
  }
  if (!/^[0-9]{8}$/.test(date)) throw new S3Error(code, `Error parsing the Credential; incorrect date format "${date}". This date should be in YYYYMMDD format.`);
  if (credentialRegion === '') throw new S3Error(code, 'Error parsing the Credential; the region is empty.');
  if (service !== 's3') throw new S3Error(code, `Error parsing the Credential; incorrect service "${service ?? ''}". This endpoint belongs to "s3".`);
  if (terminator !== 'aws4_request') {
    throw new S3Error(code, `Error parsing the Credential; incorrect terminal "${terminator ?? ''}". This endpoint uses "aws4_request".`);
  }
  if (region !== undefined && credentialRegion !== region) {
    throw new S3Error(code, `Error parsing the Credential; the region '${credentialRegion}' is wrong; expecting '${region}'`, { Region: region });
  }
  return { accessKey, date, region: credentialRegion };
}

function parseSignedHeaders(value: string, code: AuthErrorCode): string[] {
  const names = value.split(';');
  if (value === '' || names.some((n) => !/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(n))) {
    throw new S3Error(code, `SignedHeaders "${value}" must be lower-case header names separated by ';'.`);
  }
  return names;
}

function parsePayloadMode(value: string): PayloadMode {
  if (value === unsignedPayload) return { kind: 'unsigned' };
  if (value === streamingSignedPayload) return { kind: 'streaming-signed', trailer: false };
  if (value === streamingSignedPayloadTrailer) return { kind: 'streaming-signed', trailer: true };
  if (value === streamingUnsignedPayloadTrailer) return { kind: 'streaming-unsigned-trailer' };
  if (value.startsWith('STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD')) {
    throw new S3Error('NotImplemented', 'Signature Version 4A (ECDSA) streaming payloads are not supported.');
  }
  if (/^[0-9a-fA-F]{64}$/.test(value)) return { kind: 'sha256', hex: value.toLowerCase() };
  throw new S3Error('InvalidArgument', 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.', {
    ArgumentName: 'x-amz-content-sha256',
    ArgumentValue: value,
  });
}

function checkSkew(requestMs: number, nowMs: number, options: VerifyOptions): void {
  const maxSkewMs = options.maxSkewMs ?? defaultMaxSkewMs;
  if (Math.abs(requestMs - nowMs) > maxSkewMs) {
    throw new S3Error('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {
      RequestTime: new Date(requestMs).toISOString(),
      ServerTime: new Date(nowMs).toISOString(),
      MaxAllowedSkewMilliseconds: String(maxSkewMs),
    });
  }
}

function checkSignature(signingKey: Buffer, amzDate: string, scope: string, canonical: string, provided: string, accessKey: string): void {
  const stringToSign = `${sigV4Algorithm}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
  const expected = hmac(signingKey, stringToSign).toString('hex');
  if (!/^[0-9a-f]{64}$/.test(provided) || !timingSafeEqual(Buffer.from(provided, 'latin1'), Buffer.from(expected, 'latin1'))) {
    throw new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', {
      AWSAccessKeyId: accessKey,
      StringToSign: stringToSign,
      SignatureProvided: provided,
      CanonicalRequest: canonical,
    });
  }
}

function invalidAccessKey(accessKey: string): S3Error {
  return new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', { AWSAccessKeyId: accessKey });
}

function sigV2Unsupported(): S3Error {
  return new S3Error('InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.');
}

// ---- canonical request ----

interface QueryParam {
  /** Decoded. */
  key: string;
  value: string;
  /** AWS URI-encoded, for the canonical query. */
  encodedKey: string;
  encodedValue: string;
}

/** Parses a raw query: `&`-separated, `=` optional, percent-escapes (and `+` as space) decoded. */
function parseQuery(rawQuery: string): QueryParam[] {
  const params: QueryParam[] = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const keyBytes = percentDecode((eq < 0 ? part : part.slice(0, eq)).replaceAll('+', ' '));
    const valueBytes = percentDecode(eq < 0 ? '' : part.slice(eq + 1).replaceAll('+', ' '));
    params.push({
      key: keyBytes.toString('utf8'),
      value: valueBytes.toString('utf8'),
      encodedKey: uriEncodeBytes(keyBytes, true),
      encodedValue: uriEncodeBytes(valueBytes, true),
    });
  }
  return params;
}

function canonicalQuery(params: QueryParam[]): string {
  return params
    .map((p) => [p.encodedKey, p.encodedValue] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/**
 * S3's canonical URI: the path as sent, never normalized nor encoded twice. Escapes stay as they are (hex upper-cased);
 * characters a client may send raw but AWS's URI encoding does not keep (`$`, space, non-ASCII...) are encoded, as
 * is a `%` that starts no valid escape.
 */
export function canonicalUri(rawPath: string): string {
  const path = rawPath === '' ? '/' : rawPath;
  let out = '';
  for (let i = 0; i < path.length; ) {
    const escape = path.slice(i + 1, i + 3);
    if (path[i] === '%' && /^[0-9a-fA-F]{2}$/.test(escape)) {
      out += `%${escape.toUpperCase()}`;
      i += 3;
      continue;
    }
    const ch = String.fromCodePoint(path.codePointAt(i) as number);
    out += uriEncodeBytes(Buffer.from(ch, 'utf8'), false);
    i += ch.length;
  }
  return out;
}

function canonicalRequest(method: string, rawPath: string, query: QueryParam[], headers: IncomingHeaders, signedHeaders: string[], payloadHash: string): string {
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${canonicalHeaderValue(headers[name])}\n`).join('');
  return `${method}\n${canonicalUri(rawPath)}\n${canonicalQuery(query)}\n${canonicalHeaders}\n${signedHeaders.join(';')}\n${payloadHash}`;
}

function canonicalHeaderValue(value: string | string[] | undefined): string {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return values.map((v) => v.trim().replace(/\s+/g, ' ')).join(',');
}

function headerValue(headers: IncomingHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** Percent-decodes to bytes; a `%` not followed by two hex digits stays literal. */
function percentDecode(text: string): Buffer {
  if (!text.includes('%')) return Buffer.from(text, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < text.length; ) {
    if (text[i] === '%' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      out.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 3;
      continue;
    }
    const cp = text.codePointAt(i) as number;
    const ch = String.fromCodePoint(cp);
    for (const b of Buffer.from(ch, 'utf8')) out.push(b);
    i += ch.length;
  }
  return Buffer.from(out);
}

const unreserved = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~') unreserved[c.charCodeAt(0)] = 1;

/** AWS's UriEncode over bytes: unreserved kept, `/` kept unless `encodeSlash`, everything else `%XX` (upper case). */
function uriEncodeBytes(bytes: Uint8Array, encodeSlash: boolean): string {
  let out = '';
  for (const b of bytes) {
    if (unreserved[b] === 1 || (b === 0x2f && !encodeSlash)) out += String.fromCharCode(b);
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** AWS's UriEncode of a string (UTF-8): what a client puts in paths (`encodeSlash` false) and query parts. */
export function uriEncode(text: string, encodeSlash = true): string {
  return uriEncodeBytes(Buffer.from(text, 'utf8'), encodeSlash);
}

// ---- dates and keys ----

/** `yyyymmddThhmmssZ` → ms since the epoch; undefined when malformed. */
export function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return formatAmzDate(ms) === value ? ms : undefined;
}

/** ms since the epoch → `yyyymmddThhmmssZ`. */
export function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Derived keys by date, region, service and secret: in practice one per access key and day, so the four HMACs of the
 * chain run once a day instead of on every request (the AWS SDKs keep such a cache too). Bounded; the oldest goes.
 */
const signingKeys = new Map<string, Buffer>();
const signingKeysMax = 1024;

/** The SigV4 signing key: HMAC chain over `AWS4<secret>`, date (yyyymmdd), region, service, `aws4_request`. */
export function deriveSigningKey(secret: string, date: string, region: string, service: string): Buffer {
  const id = `${date}\n${region}\n${service}\n${secret}`;
  const known = signingKeys.get(id);
  if (known !== undefined) return known;
  const kDate = hmac(Buffer.from(`AWS4${secret}`, 'utf8'), date);
  const key = hmac(hmac(hmac(kDate, region), service), 'aws4_request');
  if (signingKeys.size >= signingKeysMax) signingKeys.delete(signingKeys.keys().next().value as string);
  signingKeys.set(id, key);
  return key;
}

export function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---- client side ----

export interface ClientCredentials {
  accessKey: string;
  secretKey: string;
  region: string;
}

export interface SignRequestInput extends ClientCredentials {
  method: string;
  /** The path exactly as it will be sent (already URI-encoded; see `uriEncode(key, false)`). */
  path: string;
  /** The query exactly as it will be sent, without `?` (default none). */
  query?: string;
  /** Headers to send and sign; must include `host`. Names in any case (they are lower-cased). */
  headers: Record<string, string>;
  nowMs: number;
  /**
   * The `x-amz-content-sha256` value: a hex sha256, `UNSIGNED-PAYLOAD` or a `STREAMING-…` mode. Default: the sha256 of
   * `body`, or of the empty body.
   */
  payloadHash?: string;
  body?: Uint8Array;
}

export interface SignedRequest {
  /** The input headers (lower-cased) plus `x-amz-date`, `x-amz-content-sha256` and `authorization`. */
  headers: Record<string, string>;
  signature: string;
  signingKey: Buffer;
  amzDate: string;
  scope: string;
}

/** Signs a request with the Authorization header, as an AWS SDK does (every given header is signed). */
export function signRequest(input: SignRequestInput): SignedRequest {
  const amzDate = formatAmzDate(input.nowMs);
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input.headers)) headers[name.toLowerCase()] = value;
  const payloadHash = input.payloadHash ?? sha256Hex(input.body ?? new Uint8Array(0));
  headers['x-amz-date'] = amzDate;
  headers['x-amz-content-sha256'] = payloadHash;
  delete headers['authorization'];
  const signedHeaders = Object.keys(headers).sort();
  const canonical = canonicalRequest(input.method, input.path, parseQuery(input.query ?? ''), headers, signedHeaders, payloadHash);
  const scope = `${date}/${input.region}/s3/aws4_request`;
  const signingKey = deriveSigningKey(input.secretKey, date, input.region, 's3');
  const signature = hmac(signingKey, `${sigV4Algorithm}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`).toString('hex');
  headers['authorization'] = `${sigV4Algorithm} Credential=${input.accessKey}/${scope}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`;
  return { headers, signature, signingKey, amzDate, scope };
}

export interface PresignInput extends ClientCredentials {
  method: string;
  /** `http` or `https` (default `https`). */
  protocol?: string;
  /** Host (and port) as it will be sent in the Host header. */
  host: string;
  /** The path exactly as it will be sent (already URI-encoded). */
  path: string;
  /** Extra query parameters, as sent (without `?`). */
  query?: string;
  nowMs: number;
  /** 1..604800. */
  expiresSec: number;
}

/** A presigned URL (only `host` signed, payload `UNSIGNED-PAYLOAD`), as the AWS SDKs' presigners make. */
export function presignUrl(input: PresignInput): string {
  const amzDate = formatAmzDate(input.nowMs);
  const date = amzDate.slice(0, 8);
  const scope = `${date}/${input.region}/s3/aws4_request`;
  const auth = [
    `X-Amz-Algorithm=${sigV4Algorithm}`,
    `X-Amz-Credential=${uriEncode(`${input.accessKey}/${scope}`)}`,
    `X-Amz-Date=${amzDate}`,
    `X-Amz-Expires=${input.expiresSec}`,
    'X-Amz-SignedHeaders=host',
  ].join('&');
  const query = input.query ? `${input.query}&${auth}` : auth;
  const canonical = canonicalRequest(input.method, input.path, parseQuery(query), { host: input.host }, ['host'], unsignedPayload);
  const signingKey = deriveSigningKey(input.secretKey, date, input.region, 's3');
  const signature = hmac(signingKey, `${sigV4Algorithm}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`).toString('hex');
  return `${input.protocol ?? 'https'}://${input.host}${input.path}?${query}&X-Amz-Signature=${signature}`;
}
