/**
 * What both ends of the messenger share: the shapes of requests and replies, the default bounds, and the one
 * translation between a StorageError and the error fields of a response frame.
 */
import { StorageError, isErrorCode } from '../common/index.js';

/** A request as the server's handler sees it. */
export interface MessengerRequest {
  op: string;
  /** The op's typed header, encoded by its owner (e.g. an OsdOpRequest); empty when none was sent. */
  header: Uint8Array;
  /**
   * The raw payload: a view of the received bytes, valid until the handler's promise settles. A large payload's
   * buffer is then reused for another request (src/common/buffer-pool.ts), so copy what you keep beyond that;
   * passing it to `MessengerClient.request` is safe (the frame writer holds it until written).
   */
  payload: Buffer;
  /** host:port of the remote end, for logs. */
  peer: string;
  /** True for a one-way message: the handler's result is dropped and errors are only logged. */
  oneWay: boolean;
}

/** What a handler returns: both parts optional (an empty reply is a plain acknowledgement). */
export interface MessengerResponse {
  header?: Uint8Array;
  /**
   * A pooled buffer (`bufferPool.acquire`, e.g. a store read) is handed over with the response: the server releases
   * the handler's hold once the frame is queued, so the handler must not keep it. The request's own payload may be
   * returned as is.
   */
  payload?: Uint8Array;
}

/** A reply as the client receives it. */
export interface MessengerReply {
  header: Uint8Array;
  payload: Buffer;
}

export type RequestHandler = (request: MessengerRequest) => Promise<MessengerResponse | void>;

export interface RequestOptions {
  /** From the call to the reply, including time spent queued and connecting. */
  timeoutMs: number;
}

/**
 * The hook for an authenticated handshake (the HMAC challenge of a later issue). When the server has one, every new
 * connection must first complete it: the client's `handshake` exchanges HANDSHAKE frames with the server's session
 * until the session says `done`; any other frame before then is refused with AUTH_FAILED and the connection closed.
 */
export interface ServerHandshakeSession {
  /** Answers one handshake message. Throwing (e.g. AUTH_FAILED) sends the error back and closes the connection. */
  step(message: { header: Uint8Array; payload: Buffer }): Promise<MessengerResponse & { done: boolean }>;
}

/** Runs the client side of the handshake on a new connection; `exchange` sends one HANDSHAKE frame and awaits its reply. */
export type ClientHandshake = (
  exchange: (header: Uint8Array, payload?: Uint8Array) => Promise<MessengerReply>,
) => Promise<void>;

export const messengerDefaults = {
  // Replies carry omap entries and xattrs in the header (an omap value may be 256 KiB), so headers get room for a
  // full page of them; data always travels in the payload.
  headerBytesMax: 2 * 1024 * 1024,
  payloadBytesMax: 128 * 1024 * 1024,
  /** Per connection, at the client: more wait in the client's queue. */
  clientInflightRequestsMax: 128,
  /** Per client: requests waiting to be sent; beyond it, BUSY. */
  clientQueuedRequestsMax: 4096,
  /** Per connection, at the server: with this many handlers running, the server stops reading that socket. */
  serverInflightRequestsMax: 128,
  /** Whole server: payload bytes held by running handlers; past it, every connection stops being read. */
  serverInflightPayloadBytesMax: 512 * 1024 * 1024,
  connectionsMax: 4096,
  connectTimeoutMs: 5000,
  /** Clients drop idle connections before servers do, so a server rarely closes one a client is about to use. */
  clientIdleTimeoutMs: 5 * 60 * 1000,
  serverIdleTimeoutMs: 15 * 60 * 1000,
  stopGraceMs: 2000,
  /** Bound on connections kept open by one MessengerPool. */
  poolPeersMax: 1024,
} as const;

/** Error fields of a response frame for a failed request; unknown errors are INTERNAL (the caller logs them). */
export function errorFields(error: unknown): { errorCode: string; errorMessage: string } {
  const storageError = StorageError.from(error);
  return { errorCode: storageError.code, errorMessage: storageError.message };
}

/** The StorageError a response frame carries; a code this build does not know becomes INTERNAL. */
export function errorFromFields(errorCode: string, errorMessage: string, op: string): StorageError {
  if (isErrorCode(errorCode)) return new StorageError(errorCode, errorMessage);
  return new StorageError('INTERNAL', `${op}: peer sent unknown error code ${errorCode}: ${errorMessage}`);
}

/** Splits `host:port` (IPv6 hosts in brackets: `[::1]:7000`). */
export function parseAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  let host = colon > 0 ? address.slice(0, colon) : '';
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new StorageError('INVALID_ARGUMENT', `bad address ${JSON.stringify(address)} (want host:port)`);
  }
  return { host, port };
}

export function peerName(remoteAddress: string | undefined, remotePort: number | undefined): string {
  if (remoteAddress === undefined) return 'unknown';
  return remoteAddress.includes(':') ? `[${remoteAddress}]:${remotePort}` : `${remoteAddress}:${remotePort}`;
}
