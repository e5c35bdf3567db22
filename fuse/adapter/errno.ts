/**
 * The one table from Shoal's errors to errno values for the kernel. A namespace error names its errno itself; any
 * other StorageError maps by code; anything else is EIO (and the adapter logs it).
 */
import { StorageError, type ErrorCode } from '../../src/index.js';
import { FsError, type Errno } from '../fs/index.js';

export const errnoValues: Record<Errno, number> = {
  EPERM: 1, ENOENT: 2, EIO: 5, EBADF: 9, EAGAIN: 11, EACCES: 13, EEXIST: 17, EXDEV: 18, ENOTDIR: 20, EISDIR: 21,
  EINVAL: 22, EFBIG: 27, ENOSPC: 28, EMLINK: 31, ERANGE: 34, ENAMETOOLONG: 36, ENOTEMPTY: 39, ELOOP: 40, ENODATA: 61,
  ETIMEDOUT: 110, EOPNOTSUPP: 95,
};

const byCode: Partial<Record<ErrorCode, Errno>> = {
  NOT_FOUND: 'ENOENT',
  ALREADY_EXISTS: 'EEXIST',
  NOT_EMPTY: 'ENOTEMPTY',
  INVALID_ARGUMENT: 'EINVAL',
  PRECONDITION_FAILED: 'EAGAIN',
  BUSY: 'EAGAIN',
  TIMEOUT: 'ETIMEDOUT',
  UNAVAILABLE: 'EIO',
  INSUFFICIENT_REPLICAS: 'EIO',
  NO_SPACE: 'ENOSPC',
  TOO_LARGE: 'EFBIG',
  PERMISSION_DENIED: 'EACCES',
  AUTH_FAILED: 'EACCES',
};

/** The errno name for an error thrown by the namespace. */
export function errnoNameFor(error: unknown): Errno {
  if (error instanceof FsError) return error.errno;
  if (error instanceof StorageError) return byCode[error.code] ?? 'EIO';
  return 'EIO';
}

/** The negative errno fuse-native expects. */
export function errnoFor(error: unknown): number {
  return -errnoValues[errnoNameFor(error)];
}
