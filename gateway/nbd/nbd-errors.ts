/**
 * The one table from StorageError codes to NBD: the error of a command (transmission phase) and the option reply
 * of a failed INFO/GO (handshake phase).
 */
import type { ErrorCode } from '../../src/index.js';
import { NbdErrno, Rep, type NbdError } from './protocol.js';

const table: Partial<Record<ErrorCode, { errno: NbdError; option: number }>> = {
  INVALID_ARGUMENT: { errno: NbdErrno.EINVAL, option: Rep.ERR_INVALID },
  NOT_FOUND: { errno: NbdErrno.EINVAL, option: Rep.ERR_UNKNOWN },
  PERMISSION_DENIED: { errno: NbdErrno.EPERM, option: Rep.ERR_POLICY },
  BUSY: { errno: NbdErrno.EIO, option: Rep.ERR_POLICY },
  NO_SPACE: { errno: NbdErrno.ENOSPC, option: Rep.ERR_PLATFORM },
  TOO_LARGE: { errno: NbdErrno.EOVERFLOW, option: Rep.ERR_TOO_BIG },
  SHUTTING_DOWN: { errno: NbdErrno.ESHUTDOWN, option: Rep.ERR_SHUTDOWN },
};

export function nbdErrnoFor(code: ErrorCode): NbdError {
  return table[code]?.errno ?? NbdErrno.EIO;
}

export function optionErrorFor(code: ErrorCode): number {
  return table[code]?.option ?? Rep.ERR_PLATFORM;
}
