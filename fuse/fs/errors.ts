/**
 * POSIX failures of the namespace. Each carries the errno name the kernel should see and the StorageError code that
 * names the same failure elsewhere in Shoal, so callers outside the FUSE adapter still get one error type.
 */
import { StorageError, type ErrorCode } from '../../src/index.js';

export type Errno =
  | 'ENOENT' | 'EEXIST' | 'ENOTEMPTY' | 'EISDIR' | 'ENOTDIR' | 'EINVAL' | 'ENAMETOOLONG' | 'EACCES' | 'EPERM'
  | 'ENODATA' | 'EBADF' | 'EFBIG' | 'ELOOP' | 'EAGAIN' | 'EMLINK' | 'ERANGE' | 'EIO' | 'ETIMEDOUT' | 'ENOSPC' | 'EXDEV' | 'EOPNOTSUPP';

const storageCodeFor: Record<Errno, ErrorCode> = {
  ENOENT: 'NOT_FOUND', EEXIST: 'ALREADY_EXISTS', ENOTEMPTY: 'NOT_EMPTY', EISDIR: 'INVALID_ARGUMENT',
  ENOTDIR: 'INVALID_ARGUMENT', EINVAL: 'INVALID_ARGUMENT', ENAMETOOLONG: 'TOO_LARGE', EACCES: 'PERMISSION_DENIED',
  EPERM: 'PERMISSION_DENIED', ENODATA: 'NOT_FOUND', EBADF: 'INVALID_ARGUMENT', EFBIG: 'TOO_LARGE', ELOOP: 'INVALID_ARGUMENT',
  EAGAIN: 'BUSY', EMLINK: 'TOO_LARGE', ERANGE: 'TOO_LARGE', EIO: 'INTERNAL', ETIMEDOUT: 'TIMEOUT', ENOSPC: 'NO_SPACE',
  EXDEV: 'INVALID_ARGUMENT', EOPNOTSUPP: 'INVALID_ARGUMENT',
};

export class FsError extends StorageError {
  readonly errno: Errno;

  constructor(errno: Errno, message: string, options?: { cause?: unknown }) {
    super(storageCodeFor[errno], `${errno}: ${message}`, options);
    this.errno = errno;
  }
}

export function isFsError(error: unknown, errno?: Errno): error is FsError {
  return error instanceof FsError && (errno === undefined || error.errno === errno);
}
