/**
 * The one error type of Shoal. Every failure a caller can act on carries a stable `code`; messages may change between
 * versions, codes may not. Each edge (S3, NBD, FUSE, gRPC, CLI exit status) translates codes in exactly one table.
 * Programmer errors (misuse of an API) throw TypeError or fail an assertion instead, with no code.
 */

/** Stable error codes with what each means; the README's error catalogue is checked against this table. */
export const errorCatalogue = {
  INVALID_ARGUMENT: 'A request or configuration value is malformed or out of range; nothing was changed.',
  NOT_FOUND: 'The named thing (object, pool, OSD, CRUSH item, rule, user) does not exist.',
  ALREADY_EXISTS: 'Something with that name or id already exists.',
  NOT_EMPTY: 'The thing to remove still holds data (a pool with objects, a bucket with children).',
  PRECONDITION_FAILED: 'A compare-and-swap or conditional request did not match the current state.',
  STALE_EPOCH: 'The request was made with an older cluster map than the receiver has; refresh the map and retry.',
  NOT_PRIMARY: 'The receiving OSD is not the primary of the placement group for this object.',
  NOT_LEADER: 'The receiving monitor is not the Raft leader and could not forward the command.',
  NO_QUORUM: 'Fewer than a majority of monitors are reachable; the cluster map cannot change.',
  UNAVAILABLE: 'A peer could not be reached or closed the connection.',
  TIMEOUT: 'The operation did not complete within its time limit.',
  BUSY: 'A bounded queue is full; retry later.',
  INSUFFICIENT_REPLICAS: 'Fewer than min_size members of a placement group are up; I/O to it cannot proceed.',
  INSUFFICIENT_SHARDS: 'Fewer than k shards of an erasure-coded object can be read.',
  CHECKSUM_MISMATCH: 'Stored data does not match its checksum (bit rot or a torn write).',
  CORRUPT_DATA: 'Encoded bytes could not be decoded (truncated, malformed or not of the expected kind).',
  UNSUPPORTED_VERSION: 'Encoded bytes carry a format version this build does not know.',
  AUTH_FAILED: 'The peer could not prove it holds a valid key.',
  PERMISSION_DENIED: 'The authenticated peer may not perform this operation.',
  NO_SPACE: 'The store has no space left for the write.',
  TOO_LARGE: 'A message, object or value exceeds its configured maximum size.',
  SHUTTING_DOWN: 'The component is stopping and accepts no new work.',
  INTERNAL: 'An unexpected internal failure; it is logged with its cause.',
} as const satisfies Record<string, string>;

export type ErrorCode = keyof typeof errorCatalogue;

export const errorCodes = Object.keys(errorCatalogue) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCatalogue, value);
}

export class StorageError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }

  /** Wraps anything thrown into a StorageError; unknown errors become INTERNAL and keep their cause. */
  static from(error: unknown): StorageError {
    if (error instanceof StorageError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new StorageError('INTERNAL', message, { cause: error });
  }
}

export function isStorageError(error: unknown, code?: ErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}

/** Throws INVALID_ARGUMENT with `message` unless `condition` holds. For checking input, not for programmer errors. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new StorageError('INVALID_ARGUMENT', message);
}
