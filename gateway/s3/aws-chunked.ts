/**
 * `Content-Encoding: aws-chunked` bodies (SigV4 streaming uploads), decoded incrementally over arbitrary network
 * pieces, and encoded (for tests and `shoal bench s3`).
 *
 * Signed body (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`):
 *   `<hex size>;chunk-signature=<64 hex>\r\n<data>\r\n` … `0;chunk-signature=<sig>\r\n` then either `\r\n`, or
 *   trailer lines `name:value\r\n` ending with `x-amz-trailer-signature:<sig>\r\n` and a final `\r\n`.
 * Unsigned body (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`): `<hex size>\r\n<data>\r\n` … `0\r\n`, trailer lines, `\r\n`.
 *
 * The decoder yields data as it arrives (views into the input; nothing is buffered but one header line) and checks
 * each chunk's signature when the chunk ends, so a consumer must treat what it got as trusted only once the generator
 * has returned without throwing: that is when every chunk signature, the final chunk, the trailer signature and
 * `decodedLength` have been checked.
 */
import { createHash, timingSafeEqual, type Hash } from 'node:crypto';
import { checksumAlgorithms, checksumHeaderName, verifyChecksum, type ChecksumAlgorithm } from './checksums.js';
import { S3Error } from './s3-error.js';
import { emptySha256, hmac, sha256Hex } from './sigv4.js';

/** What a signed stream's chunk signatures chain from (the verified request's `SignedAuth` fields). */
export interface ChunkSigning {
  signingKey: Buffer;
  seedSignature: string;
  amzDate: string;
  scope: string;
}

export interface AwsChunkedOptions {
  /** Chunk signatures are required and checked (absent: an unsigned stream; chunk extensions are ignored). */
  signed?: ChunkSigning;
  /** Trailer lines follow the final chunk (`x-amz-trailer` was sent). */
  trailer?: boolean;
  /** `x-amz-decoded-content-length`: the decoded total must equal it. */
  decodedLength?: number;
  /** Largest chunk accepted (default 16 MiB). */
  chunkBytesMax?: number;
  /** Called once everything has been checked (before the generator returns), with the trailers read. */
  onTrailers?: (trailers: Map<string, string>) => void;
}

export interface AwsChunkedResult {
  decodedBytes: number;
  /** Trailer headers by lower-case name (without `x-amz-trailer-signature`). */
  trailers: Map<string, string>;
}

export const defaultChunkBytesMax = 16 * 1024 * 1024;
/** Longest header line (chunk size line or trailer line), CRLF included. */
export const chunkLineBytesMax = 4096;
/** Most trailer lines accepted. */
export const trailerLinesMax = 16;

/** Decodes an aws-chunked body; see the module comment for what is checked and when. */
export async function* decodeAwsChunked(source: AsyncIterable<Uint8Array>, options: AwsChunkedOptions = {}): AsyncGenerator<Buffer, AwsChunkedResult> {
  const decoder = new ChunkedDecoder(options);
  for await (const piece of source) yield* decoder.push(piece);
  const result = decoder.end();
  options.onTrailers?.(new Map(result.trailers));
  return result;
}

type State = 'size' | 'data' | 'data-end' | 'trailer' | 'done';

class ChunkedDecoder {
  private state: State = 'size';
  private readonly line = Buffer.alloc(chunkLineBytesMax);
  private lineLength = 0;
  private remaining = 0;
  /** Bytes of the CRLF after a chunk's data still expected. */
  private crlfSeen = 0;
  private chunkSignature = '';
  private chunkHash: Hash | undefined;
  private previousSignature: string;
  private decodedBytes = 0;
  private readonly trailers = new Map<string, string>();
  private readonly trailerLines: string[] = [];
  private trailerSignature: string | undefined;
  private readonly chunkBytesMax: number;

  constructor(private readonly options: AwsChunkedOptions) {
    this.chunkBytesMax = options.chunkBytesMax ?? defaultChunkBytesMax;
    this.previousSignature = options.signed?.seedSignature ?? '';
  }

  *push(piece: Uint8Array): Generator<Buffer> {
    let at = 0;
    while (at < piece.length) {
      switch (this.state) {
        case 'size':
        case 'trailer': {
          const line = this.takeLine(piece, at);
          at = line.next;
          if (line.text === undefined) break;
          if (this.state === 'size') this.onSizeLine(line.text);
          else this.onTrailerLine(line.text);
          break;
        }
        case 'data': {
          const n = Math.min(this.remaining, piece.length - at);
          const data = Buffer.from(piece.buffer, piece.byteOffset + at, n);
          this.chunkHash?.update(data);
          this.remaining -= n;
          this.decodedBytes += n;
          at += n;
          if (this.options.decodedLength !== undefined && this.decodedBytes > this.options.decodedLength) {
            throw new S3Error('InvalidRequest', `The decoded body is longer than x-amz-decoded-content-length (${this.options.decodedLength}).`);
          }
          yield data;
          if (this.remaining === 0) this.state = 'data-end';
          break;
        }
        case 'data-end': {
          const expected = this.crlfSeen === 0 ? 0x0d : 0x0a;
          if (piece[at] !== expected) throw new S3Error('InvalidRequest', 'A chunk of the aws-chunked body does not end with CRLF.');
          at++;
          if (++this.crlfSeen === 2) {
            this.crlfSeen = 0;
            this.endChunk();
            this.state = 'size';
          }
          break;
        }
        case 'done':
          throw new S3Error('InvalidRequest', 'The aws-chunked body continues after its end.');
      }
    }
  }

  end(): AwsChunkedResult {
    if (this.state !== 'done') throw new S3Error('IncompleteBody', 'The request body terminated unexpectedly');
    return { decodedBytes: this.decodedBytes, trailers: new Map(this.trailers) };
  }

  /** Accumulates one CRLF-terminated line; `text` is the line without CRLF once complete. */
  private takeLine(piece: Uint8Array, at: number): { text: string | undefined; next: number } {
    const nl = piece.indexOf(0x0a, at);
    const end = nl < 0 ? piece.length : nl + 1;
    if (this.lineLength + (end - at) > chunkLineBytesMax) {
      if (this.state === 'size') throw new S3Error('InvalidChunkSizeError', 'The chunk size line of the aws-chunked body is too long.');
      throw new S3Error('InvalidRequest', 'A trailer line of the aws-chunked body is too long.');
    }
    this.line.set(piece.subarray(at, end), this.lineLength);
    this.lineLength += end - at;
    if (nl < 0) return { text: undefined, next: end };
    const length = this.lineLength;
    this.lineLength = 0;
    if (length < 2 || this.line[length - 2] !== 0x0d) throw new S3Error('InvalidRequest', 'A line of the aws-chunked body does not end with CRLF.');
    return { text: this.line.toString('latin1', 0, length - 2), next: end };
  }

  private onSizeLine(text: string): void {
    const semi = text.indexOf(';');
    const sizeText = semi < 0 ? text : text.slice(0, semi);
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText)) throw new S3Error('InvalidChunkSizeError', `Invalid chunk size "${sizeText.slice(0, 32)}".`);
    const size = parseInt(sizeText, 16);
    if (size > this.chunkBytesMax) throw new S3Error('InvalidChunkSizeError', `Chunk size ${size} exceeds the largest accepted (${this.chunkBytesMax}).`);
    if (this.options.signed) {
      const m = /^chunk-signature=([0-9a-f]{64})$/.exec(semi < 0 ? '' : text.slice(semi + 1));
      if (!m) throw new S3Error('SignatureDoesNotMatch', 'A chunk of the signed aws-chunked body has no valid chunk-signature.');
      this.chunkSignature = m[1] as string;
      this.chunkHash = createHash('sha256');
    }
    this.remaining = size;
    if (size > 0) {
      this.state = 'data';
      return;
    }
    this.endChunk();
    this.state = 'trailer';
  }

  private onTrailerLine(text: string): void {
    if (text === '') {
      this.finish();
      return;
    }
    if (!this.options.trailer) throw new S3Error('InvalidRequest', 'The aws-chunked body has trailers but no x-amz-trailer header announced them.');
    const colon = text.indexOf(':');
    const name = colon < 0 ? '' : trimBlanks(text.slice(0, colon)).toLowerCase();
    const value = trimBlanks(text.slice(colon + 1));
    if (!/^[a-z0-9-]+$/.test(name) || !/^[\x21-\x7e]*$/.test(value)) throw new S3Error('InvalidRequest', 'Malformed trailer line in the aws-chunked body.');
    if (this.trailerSignature !== undefined) throw new S3Error('InvalidRequest', 'x-amz-trailer-signature must be the last trailer.');
    if (name === 'x-amz-trailer-signature') {
      this.trailerSignature = value;
      return;
    }
    if (this.trailers.has(name) || this.trailers.size >= trailerLinesMax) throw new S3Error('InvalidRequest', `Duplicate or too many trailers (${name}).`);
    this.trailers.set(name, value);
    this.trailerLines.push(`${name}:${value}\n`);
  }

  /** A chunk (data and CRLF, or the final zero-length one) has been read: check its signature. */
  private endChunk(): void {
    const signing = this.options.signed;
    if (!signing || !this.chunkHash) return;
    const stringToSign = `AWS4-HMAC-SHA256-PAYLOAD\n${signing.amzDate}\n${signing.scope}\n${this.previousSignature}\n${emptySha256}\n${this.chunkHash.digest('hex')}`;
    this.chunkHash = undefined;
    checkSignature(hmac(signing.signingKey, stringToSign).toString('hex'), this.chunkSignature, 'chunk');
    this.previousSignature = this.chunkSignature;
  }

  private finish(): void {
    const signing = this.options.signed;
    if (signing && this.options.trailer) {
      if (this.trailerSignature === undefined) throw new S3Error('SignatureDoesNotMatch', 'The signed aws-chunked body has no x-amz-trailer-signature.');
      const stringToSign = `AWS4-HMAC-SHA256-TRAILER\n${signing.amzDate}\n${signing.scope}\n${this.previousSignature}\n${sha256Hex(this.trailerLines.join(''))}`;
      checkSignature(hmac(signing.signingKey, stringToSign).toString('hex'), this.trailerSignature, 'trailer');
    }
    if (this.options.decodedLength !== undefined && this.decodedBytes !== this.options.decodedLength) {
      throw new S3Error('IncompleteBody', `The decoded body has ${this.decodedBytes} bytes; x-amz-decoded-content-length says ${this.options.decodedLength}.`);
    }
    this.state = 'done';
  }
}

/** Trims spaces and tabs only (a CR or other control character inside a line is malformed, not whitespace). */
function trimBlanks(text: string): string {
  return text.replace(/^[ \t]+|[ \t]+$/g, '');
}

function checkSignature(expected: string, provided: string, what: string): void {
  if (!/^[0-9a-f]{64}$/.test(provided) || !timingSafeEqual(Buffer.from(expected, 'latin1'), Buffer.from(provided, 'latin1'))) {
    throw new S3Error('SignatureDoesNotMatch', `The ${what} signature we calculated does not match the signature you provided.`);
  }
}

/**
 * The checksum algorithm announced by an `x-amz-trailer` header (`x-amz-checksum-crc32c`, …); undefined when the
 * header names something else.
 */
export function trailerChecksumAlgorithm(xAmzTrailer: string): ChecksumAlgorithm | undefined {
  const name = xAmzTrailer.trim().toLowerCase();
  return checksumAlgorithms.find((alg) => checksumHeaderName(alg) === name);
}

/**
 * Checks the `x-amz-checksum-<algorithm>` trailer the decoder read against the checksum the caller computed over the
 * data it stored (base64): a missing trailer is `InvalidRequest`, a different value `BadDigest`.
 */
export function verifyTrailerChecksum(trailers: ReadonlyMap<string, string>, algorithm: ChecksumAlgorithm, computedBase64: string): void {
  const value = trailers.get(checksumHeaderName(algorithm));
  if (value === undefined) throw new S3Error('InvalidRequest', `The aws-chunked body is missing its ${checksumHeaderName(algorithm)} trailer.`);
  verifyChecksum(algorithm, value, computedBase64);
}

// ---- client side ----

export interface EncodeAwsChunkedOptions {
  /** Sign the chunks (and trailers) chaining from this seed; unsigned when absent. */
  signed?: ChunkSigning;
  /** Trailer headers to append after the final chunk (name → value). */
  trailers?: Record<string, string>;
}

/** The signature of one chunk given the previous one (the seed for the first chunk). */
export function chunkSignature(signing: ChunkSigning, previousSignature: string, data: Uint8Array): string {
  const stringToSign = `AWS4-HMAC-SHA256-PAYLOAD\n${signing.amzDate}\n${signing.scope}\n${previousSignature}\n${emptySha256}\n${sha256Hex(data)}`;
  return hmac(signing.signingKey, stringToSign).toString('hex');
}

/** Encodes `chunks` (one aws chunk each, empty ones skipped) plus the final chunk and trailers, as a client sends. */
export function encodeAwsChunked(chunks: Iterable<Uint8Array>, options: EncodeAwsChunkedOptions = {}): Buffer {
  const out: Buffer[] = [];
  let previous = options.signed?.seedSignature ?? '';
  const header = (data: Uint8Array): string => {
    if (!options.signed) return `${data.length.toString(16)}\r\n`;
    previous = chunkSignature(options.signed, previous, data);
    return `${data.length.toString(16)};chunk-signature=${previous}\r\n`;
  };
  for (const chunk of chunks) {
    if (chunk.length === 0) continue;
    out.push(Buffer.from(header(chunk), 'latin1'), Buffer.from(chunk), Buffer.from('\r\n', 'latin1'));
  }
  out.push(Buffer.from(header(new Uint8Array(0)), 'latin1'));
  if (options.trailers) {
    const lines = Object.entries(options.trailers).map(([name, value]) => `${name.toLowerCase()}:${value}\n`);
    out.push(Buffer.from(lines.map((l) => l.replace(/\n$/, '\r\n')).join(''), 'latin1'));
    if (options.signed) {
      const s = options.signed;
      const stringToSign = `AWS4-HMAC-SHA256-TRAILER\n${s.amzDate}\n${s.scope}\n${previous}\n${sha256Hex(lines.join(''))}`;
      out.push(Buffer.from(`x-amz-trailer-signature:${hmac(s.signingKey, stringToSign).toString('hex')}\r\n`, 'latin1'));
    }
  }
  out.push(Buffer.from('\r\n', 'latin1'));
  return Buffer.concat(out);
}
