import type { ErrorCode } from '../common/index.js';

/**
 * The CLI's one table from error code to process exit status, so scripts can tell "bad input" from "cluster
 * trouble" from "not found" without parsing messages.
 */
const exitStatus: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 2,
  NOT_FOUND: 3,
  ALREADY_EXISTS: 4,
  NOT_EMPTY: 4,
  PRECONDITION_FAILED: 4,
  STALE_EPOCH: 5,
  NOT_PRIMARY: 5,
  NOT_LEADER: 5,
  NO_QUORUM: 6,
  UNAVAILABLE: 6,
  TIMEOUT: 6,
  BUSY: 6,
  INSUFFICIENT_REPLICAS: 6,
  INSUFFICIENT_SHARDS: 6,
  CHECKSUM_MISMATCH: 7,
  CORRUPT_DATA: 7,
  UNSUPPORTED_VERSION: 7,
  AUTH_FAILED: 8,
  PERMISSION_DENIED: 8,
  NO_SPACE: 9,
  TOO_LARGE: 2,
  SHUTTING_DOWN: 6,
  INTERNAL: 1,
};

export function exitStatusFor(code: ErrorCode): number {
  return exitStatus[code];
}
