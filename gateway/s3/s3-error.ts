/**
 * S3 errors: the one table from S3 error codes to HTTP statuses, and the one translation from Shoal's StorageError
 * codes to S3 codes (DESIGN.md: each edge translates errors in exactly one table).
 */
import { StorageError, type ErrorCode } from '../../src/index.js';

/** The S3 error codes this gateway answers with, and their HTTP statuses (as AWS documents them). */
export const s3ErrorStatus = {
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BucketAlreadyExists: 409,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  ExpiredToken: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  InvalidRange: 416,
  InvalidRequest: 400,
  KeyTooLongError: 400,
  MalformedXML: 400,
  MetadataTooLarge: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  MissingSecurityHeader: 400,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  PreconditionFailed: 412,
  NotModified: 304,
  RequestTimeTooSkewed: 403,
  RequestTimeout: 400,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  SlowDown: 503,
  XAmzContentSHA256Mismatch: 400,
  InvalidChunkSizeError: 400,
} as const;

export type S3ErrorCode = keyof typeof s3ErrorStatus;

export class S3Error extends Error {
  readonly code: S3ErrorCode;
  readonly status: number;
  /** Extra elements for the XML error body (e.g. BucketName, Key, the expected and computed checksums). */
  readonly details: Record<string, string>;

  constructor(code: S3ErrorCode, message: string, details: Record<string, string> = {}) {
    super(message);
    this.name = 'S3Error';
    this.code = code;
    this.status = s3ErrorStatus[code];
    this.details = details;
  }
}

// TOO_LARGE is absent on purpose: the gateway checks client sizes itself (EntityTooLarge), so a cluster refusing a
// size is an internal limit, answered 500 and logged.
const fromStorage: Partial<Record<ErrorCode, S3ErrorCode>> = {
  NOT_FOUND: 'NoSuchKey',
  INVALID_ARGUMENT: 'InvalidArgument',
  PRECONDITION_FAILED: 'PreconditionFailed',
  TIMEOUT: 'ServiceUnavailable',
  UNAVAILABLE: 'ServiceUnavailable',
  NO_QUORUM: 'ServiceUnavailable',
  INSUFFICIENT_REPLICAS: 'ServiceUnavailable',
  BUSY: 'SlowDown',
  SHUTTING_DOWN: 'ServiceUnavailable',
  NO_SPACE: 'ServiceUnavailable',
  AUTH_FAILED: 'AccessDenied',
  PERMISSION_DENIED: 'AccessDenied',
  INSUFFICIENT_SHARDS: 'ServiceUnavailable',
  NOT_PRIMARY: 'ServiceUnavailable',
  STALE_EPOCH: 'ServiceUnavailable',
};

/** Any failure as an S3Error: S3Errors pass through, StorageErrors by the table, anything else is InternalError. */
export function toS3Error(error: unknown): S3Error {
  if (error instanceof S3Error) return error;
  if (error instanceof StorageError) {
    const code = fromStorage[error.code] ?? 'InternalError';
    return new S3Error(code, code === 'InternalError' ? 'We encountered an internal error. Please try again.' : error.message);
  }
  return new S3Error('InternalError', 'We encountered an internal error. Please try again.');
}
